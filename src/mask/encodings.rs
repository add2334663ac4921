//! The one table of encodings a secret can take on its way into text: the
//! masker replaces, and the evidence scan and the credential-hygiene check
//! look for, every form listed here.
//!
//! Each [`Encoding`] gives the byte strings that betray a secret. Where a
//! form depends on what surrounds the secret (base64 inside a longer
//! string), it gives the stable middle part, which is the same whatever
//! comes before or after.

/// One way a secret can be written.
pub struct Encoding {
    /// Shown in the evidence (`raw`, `base64`, ...), never with a value.
    pub name: &'static str,
    /// The forms of a secret in this encoding.
    pub forms: fn(&str) -> Vec<Form>,
}

/// One searchable form of a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub text: String,
    /// Hex digits (and `\u`, `&#x`) may come in either case; such forms are
    /// matched ignoring ASCII case. Only forms whose letters are all hex
    /// digits or fixed syntax are marked so, never the secret's own letters.
    pub any_case: bool,
}

impl Form {
    fn exact(text: String) -> Form {
        Form {
            text,
            any_case: false,
        }
    }

    fn any_case(text: String) -> Form {
        Form {
            text,
            any_case: true,
        }
    }
}

/// Every encoding, in the order hits are reported (first match names it).
pub const ENCODINGS: &[Encoding] = &[
    Encoding {
        name: "raw",
        forms: raw,
    },
    Encoding {
        name: "percent-encoded",
        forms: percent,
    },
    Encoding {
        name: "base64",
        forms: base64,
    },
    Encoding {
        name: "hex",
        forms: hex,
    },
    Encoding {
        name: "JSON-escaped",
        forms: json,
    },
    Encoding {
        name: "HTML entities",
        forms: html,
    },
];

/// The names of every encoding, for the evidence and the docs.
pub fn names() -> Vec<&'static str> {
    ENCODINGS.iter().map(|e| e.name).collect()
}

/// The secret itself, and what it decodes to where it looks encoded: a
/// renderer escaping that decoded text (JSON, XML/HTML, a Markdown table
/// cell) would write the secret back.
fn raw(secret: &str) -> Vec<Form> {
    let mut forms = vec![Form::exact(secret.to_string())];
    if let Ok(decoded) = serde_json::from_str::<String>(&format!("\"{secret}\"")) {
        forms.push(Form::exact(decoded));
    }
    let mut html = secret.to_string();
    for (entity, c) in [
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&apos;", "'"),
        ("&#39;", "'"),
        ("&amp;", "&"),
    ] {
        html = html.replace(entity, c);
    }
    forms.push(Form::exact(html));
    forms.push(Form::exact(
        secret
            .replace("<br>", "\n")
            .replace("\\|", "|")
            .replace("\\\\", "\\"),
    ));
    // Decoded forms are searched only when they are as long as a secret
    // must be; the secret itself always.
    let (secret_form, decoded) = forms.split_at(1);
    let mut kept = secret_form.to_vec();
    kept.extend(
        decoded
            .iter()
            .filter(|f| f.text.chars().count() >= super::names::MIN_SECRET_CHARS)
            .cloned(),
    );
    kept
}

/// Every byte as `%XX` (either case), and the forms common encoders give:
/// RFC 3986 (unreserved bytes kept), Python's `quote` (also `/`),
/// JavaScript's `encodeURIComponent` (also `!'()*`) and form encoding
/// (space as `+`), each with upper- and lower-case hex.
fn percent(secret: &str) -> Vec<Form> {
    let every: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
    let mut forms = vec![Form::any_case(every)];
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    let keep_sets: [&dyn Fn(u8) -> bool; 3] =
        [&unreserved, &|b| unreserved(b) || b == b'/', &|b| {
            unreserved(b) || matches!(b, b'!' | b'\'' | b'(' | b')' | b'*')
        }];
    for keep in keep_sets {
        for upper in [true, false] {
            forms.push(Form::exact(percent_with(secret, keep, upper, false)));
        }
    }
    for upper in [true, false] {
        forms.push(Form::exact(percent_with(secret, &unreserved, upper, true)));
    }
    forms
}

fn percent_with(secret: &str, keep: &dyn Fn(u8) -> bool, upper: bool, plus: bool) -> String {
    let mut out = String::with_capacity(secret.len() * 3);
    for byte in secret.bytes() {
        if keep(byte) {
            out.push(byte as char);
        } else if plus && byte == b' ' {
            out.push('+');
        } else if upper {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push_str(&format!("%{byte:02x}"));
        }
    }
    out
}

const BASE64_STANDARD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL_SAFE: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Standard and URL-safe base64, padded or not, with the secret at each of
/// the three byte alignments inside a longer string: the characters that
/// depend on the secret's bytes alone. Padding never falls inside them.
fn base64(secret: &str) -> Vec<Form> {
    let mut forms = Vec::new();
    for alphabet in [BASE64_STANDARD, BASE64_URL_SAFE] {
        for offset in 0..3 {
            let text = base64_middle(secret.as_bytes(), offset, alphabet);
            if !text.is_empty() {
                forms.push(Form::exact(text));
            }
        }
    }
    forms
}

/// The base64 characters of `secret` preceded by `offset` unknown bytes
/// that are fully determined by the secret: character `k` covers bits
/// `6k..6k+6`, which must lie within the secret's bits.
fn base64_middle(secret: &[u8], offset: usize, alphabet: &[u8; 64]) -> String {
    let mut bytes = vec![0u8; offset];
    bytes.extend_from_slice(secret);
    let start = (8 * offset).div_ceil(6);
    let end = 8 * bytes.len() / 6;
    (start..end)
        .map(|k| {
            let bit = 6 * k;
            let (byte, shift) = (bit / 8, bit % 8);
            let pair =
                (u16::from(bytes[byte]) << 8) | u16::from(*bytes.get(byte + 1).unwrap_or(&0));
            let sextet = (pair >> (10 - shift)) & 0x3f;
            alphabet[usize::from(sextet)] as char
        })
        .collect()
}

/// The UTF-8 bytes as hex digits, either case.
fn hex(secret: &str) -> Vec<Form> {
    vec![Form::any_case(
        secret.bytes().map(|b| format!("{b:02x}")).collect(),
    )]
}

/// JSON string escapes: what serializers write (minimal, with `\/`, with
/// `<>&` as `\u003c`-style escapes as Go does, non-ASCII as `\uXXXX` as
/// Python does), every character as `\uXXXX` (either case), and JSON
/// around the other encodings that JSON changes (HTML-escaped text,
/// base64 with `\/`).
fn json(secret: &str) -> Vec<Form> {
    let mut forms = json_of(secret);
    for nested in html_named(secret) {
        forms.push(Form::exact(json_minimal(&nested)));
    }
    for nested in base64(secret) {
        forms.push(Form::exact(nested.text.replace('/', "\\/")));
    }
    forms
}

/// The JSON string body of `text`, as `serde_json` writes it.
fn json_minimal(text: &str) -> String {
    let quoted = serde_json::to_string(text).expect("a string always serializes");
    quoted[1..quoted.len() - 1].to_string()
}

fn json_of(secret: &str) -> Vec<Form> {
    let minimal = json_minimal(secret);
    let mut html_safe = String::new();
    let mut ascii_only = String::new();
    for c in minimal.chars() {
        match c {
            '<' | '>' | '&' => html_safe.push_str(&format!("\\u{:04x}", c as u32)),
            _ => html_safe.push(c),
        }
        if c.is_ascii() {
            ascii_only.push(c);
        } else {
            ascii_only.push_str(&utf16_escapes(c));
        }
    }
    let every: String = secret.chars().map(utf16_escapes).collect();
    vec![
        Form::exact(minimal.replace('/', "\\/")),
        Form::exact(minimal),
        Form::exact(html_safe),
        Form::exact(ascii_only),
        Form::any_case(every),
    ]
}

fn utf16_escapes(c: char) -> String {
    let mut units = [0u16; 2];
    c.encode_utf16(&mut units)
        .iter()
        .map(|u| format!("\\u{u:04x}"))
        .collect()
}

/// HTML: numeric entities for every character (decimal, and hex in either
/// case), named escapes of `& < > " '` with the usual spellings of the
/// apostrophe, and the same escapes of the secret's JSON form (JSON data
/// in a page).
fn html(secret: &str) -> Vec<Form> {
    let decimal: String = secret.chars().map(|c| format!("&#{};", c as u32)).collect();
    let hex: String = secret
        .chars()
        .map(|c| format!("&#x{:x};", c as u32))
        .collect();
    let mut forms = vec![Form::any_case(decimal), Form::any_case(hex)];
    forms.extend(html_named(secret).into_iter().map(Form::exact));
    forms.extend(
        html_named(&json_minimal(secret))
            .into_iter()
            .map(Form::exact),
    );
    forms
}

/// `& < > " '` as named (or common numeric) references, one form per
/// spelling of the apostrophe, and one with quotes left alone.
fn html_named(text: &str) -> Vec<String> {
    ["&#39;", "&#x27;", "&apos;", "&#039;", "'"]
        .iter()
        .map(|apostrophe| {
            let quote = if *apostrophe == "'" { "\"" } else { "&quot;" };
            text.chars()
                .map(|c| match c {
                    '&' => "&amp;".to_string(),
                    '<' => "&lt;".to_string(),
                    '>' => "&gt;".to_string(),
                    '"' => quote.to_string(),
                    '\'' => apostrophe.to_string(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(forms: Vec<Form>) -> Vec<String> {
        forms.into_iter().map(|f| f.text).collect()
    }

    #[test]
    fn base64_middles_sit_inside_any_encoding_of_a_longer_string() {
        use base64::Engine as _;
        let secret = "p@ss w/rd\"&<";
        for prefix in ["", "x", "xy", "xyz", "wxyz"] {
            for suffix in ["", "!", "!!"] {
                let whole = format!("{prefix}{secret}{suffix}");
                let std = base64::engine::general_purpose::STANDARD.encode(&whole);
                let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&whole);
                let forms = texts(base64(secret));
                assert!(forms.iter().any(|f| std.contains(f.as_str())), "{std}");
                assert!(forms.iter().any(|f| url.contains(f.as_str())), "{url}");
            }
        }
    }

    #[test]
    fn common_encoders_are_covered() {
        let secret = "a/b c!'é<&\"";
        let p = texts(percent(secret));
        assert!(p.contains(&"a%2Fb%20c%21%27%C3%A9%3C%26%22".to_string()));
        assert!(p.contains(&"a/b%20c%21%27%C3%A9%3C%26%22".to_string()));
        assert!(p.contains(&"a%2fb+c%21%27%c3%a9%3c%26%22".to_string()));
        assert!(p.contains(&"a%2Fb%20c!'%C3%A9%3C%26%22".to_string()));
        let j = texts(json(secret));
        assert!(j.contains(&r#"a\/b c!'é<&\""#.to_string()));
        assert!(j.contains(&r#"a/b c!'\u00e9<&\""#.to_string()));
        assert!(j.contains(&r#"a/b c!'é\u003c\u0026\""#.to_string()));
        let h = texts(html(secret));
        assert!(h.contains(&"a/b c!&#x27;é&lt;&amp;&quot;".to_string()));
        assert!(h[0].starts_with("&#97;&#47;&#98;&#32;"), "{h:?}");
        assert!(h[1].starts_with("&#x61;&#x2f;"), "{h:?}");
        assert_eq!(texts(hex("A/")), ["412f"]);
        assert!(j.contains(&"a/b c!&#x27;é&lt;&amp;&quot;".to_string()));
        let nested = texts(json("q\\&z"));
        assert!(nested.contains(&r"q\\&amp;z".to_string()), "{nested:?}");
        let astral = texts(json("😀"));
        assert!(astral.contains(&r"\ud83d\ude00".to_string()), "{astral:?}");
    }
}
