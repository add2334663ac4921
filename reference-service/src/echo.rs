//! The `echo-credentials` flaw: the service repeats every value it was
//! given (and the password inside every URL) in its boot log, its `/ready`
//! headers and its `/ready` body, raw and in the encodings an attacker
//! would try (percent, base64 at each alignment, hex, JSON `\u` escapes,
//! HTML entities). gonogo must mask them all and fail the credential
//! hygiene check.

use axum::http::{HeaderName, HeaderValue};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Variables that carry nothing the flaw should echo.
const QUIET: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "TZ",
    "PORT",
    "HOST",
    "ENV",
    "CI_STRICT",
    "REFERENCE_FLAW",
    "GONOGO_TEST_MARKER",
    "PROBE_TIMEOUT_MS",
    "EXTRA_TCP_DEPS",
    "GIT_SHA",
];

/// The values to echo, by name.
#[derive(Debug, Clone, Default)]
pub struct Echo {
    entries: Vec<(String, String)>,
}

impl Echo {
    /// Every variable of this process (but [`QUIET`] and `LC_*`), and the
    /// password of every URL among them.
    pub fn from_env() -> Echo {
        let mut entries = Vec::new();
        let mut vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, v)| !v.is_empty() && !QUIET.contains(&k.as_str()) && !k.starts_with("LC_"))
            .collect();
        vars.sort();
        for (name, value) in vars {
            if let Some(password) = url_password(&value) {
                entries.push((format!("{name} password"), password));
            }
            entries.push((name, value));
        }
        Echo { entries }
    }

    /// One log line per value and encoding.
    pub fn log_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (name, value) in &self.entries {
            for (encoding, form) in forms(value) {
                lines.push(format!("echo: {name} {encoding}={form}"));
            }
        }
        lines
    }

    /// `x-echo-<n>-<encoding>` headers (only forms a header can carry).
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = Vec::new();
        for (index, (_, value)) in self.entries.iter().enumerate() {
            for (encoding, form) in forms(value) {
                if !matches!(encoding, "raw" | "base64" | "hex" | "percent") {
                    continue;
                }
                let name = HeaderName::try_from(format!("x-echo-{index}-{encoding}"));
                if let (Ok(name), Ok(value)) = (name, HeaderValue::from_str(&form)) {
                    headers.push((name, value));
                }
            }
        }
        headers
    }

    /// A JSON array with one object per value: each encoding as a string
    /// member, written as the encoding itself where JSON allows (so `\u`
    /// escapes reach the body as such).
    pub fn json(&self) -> String {
        let objects: Vec<String> = self
            .entries
            .iter()
            .map(|(name, value)| {
                let mut members = vec![format!("\"name\":{}", quote(name))];
                for (index, (encoding, form)) in forms(value).into_iter().enumerate() {
                    let literal = if encoding == "json" || is_json_safe(&form) {
                        format!("\"{form}\"")
                    } else {
                        quote(&form)
                    };
                    members.push(format!("\"{encoding}{index}\":{literal}"));
                }
                format!("{{{}}}", members.join(","))
            })
            .collect();
        format!("[{}]", objects.join(","))
    }
}

fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

fn is_json_safe(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
}

/// The password in `scheme://user:password@host…`, percent-decoded.
fn url_password(value: &str) -> Option<String> {
    let rest = value.split_once("://")?.1;
    let userinfo = rest.split('/').next()?.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then(|| percent_decode(password))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `value` raw and encoded, as (encoding, text).
fn forms(value: &str) -> Vec<(&'static str, String)> {
    let bytes = value.as_bytes();
    let with = |prefix: &str| [prefix.as_bytes(), bytes].concat();
    vec![
        ("raw", value.to_owned()),
        (
            "percent",
            bytes.iter().map(|b| format!("%{b:02X}")).collect(),
        ),
        (
            "percent",
            bytes.iter().map(|b| format!("%{b:02x}")).collect(),
        ),
        ("base64", STANDARD.encode(bytes)),
        ("base64", STANDARD.encode(with("u"))),
        ("base64", URL_SAFE_NO_PAD.encode(with("us"))),
        ("hex", bytes.iter().map(|b| format!("{b:02X}")).collect()),
        ("hex", bytes.iter().map(|b| format!("{b:02x}")).collect()),
        (
            "json",
            value
                .encode_utf16()
                .map(|u| format!("\\u{u:04X}"))
                .collect(),
        ),
        (
            "html",
            value.chars().map(|c| format!("&#{};", c as u32)).collect(),
        ),
        (
            "html",
            value
                .chars()
                .map(|c| format!("&#x{:X};", c as u32))
                .collect(),
        ),
        (
            "html",
            value
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
                .replace('\'', "&#39;"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_decoded() {
        assert_eq!(
            url_password("redis://:p%40ss%2Fw@127.0.0.1:6379/0").as_deref(),
            Some("p@ss/w")
        );
        assert_eq!(url_password("redis://127.0.0.1:6379/0"), None);
    }

    #[test]
    fn the_json_stays_json() {
        let echo = Echo {
            entries: vec![("DB_PASS".into(), "a\"b\\c é<&".into())],
        };
        let parsed: serde_json::Value = serde_json::from_str(&echo.json()).unwrap();
        assert_eq!(parsed[0]["json8"], "a\"b\\c é<&");
        assert_eq!(parsed[0]["raw0"], "a\"b\\c é<&");
    }
}
