//! Secret redaction: masks passwords in connection URLs and scrubs known secrets
//! out of error text before anything is logged or returned in a response body.

/// What replaces a secret, matching the `***` convention of the evidence masking rules.
pub const MASK: &str = "***";

/// Returns `url` with its password (userinfo after `:`, or a `password=` query
/// value) replaced by `***`. Text that is not a URL is returned unchanged.
pub fn mask_url(url: &str) -> String {
    let mut masked = url.to_owned();
    if let Some((start, end)) = userinfo_password_span(url) {
        masked.replace_range(start..end, MASK);
    }
    mask_query_password(&masked)
}

/// Every form in which `url`'s password could show up in text: as written, and
/// percent-decoded (drivers report the decoded form).
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Some((start, end)) = userinfo_password_span(url) {
        secrets.push(url[start..end].to_owned());
    }
    if let Some(query) = url.split_once('?').map(|(_, q)| q) {
        for pair in query.split('&') {
            if let Some(value) = pair.strip_prefix("password=") {
                secrets.push(value.to_owned());
            }
        }
    }
    let decoded: Vec<String> = secrets.iter().map(|s| percent_decode(s)).collect();
    secrets.extend(decoded);
    secrets.retain(|s| !s.is_empty());
    secrets.sort();
    secrets.dedup();
    secrets
}

/// Replaces every known secret in a piece of text with `***`.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    secrets: Vec<String>,
}

impl Scrubber {
    pub fn new(urls: &[Option<&str>]) -> Self {
        let mut secrets: Vec<String> = urls.iter().flatten().flat_map(|u| url_secrets(u)).collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    pub fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_owned(), |acc, secret| acc.replace(secret, MASK))
    }
}

/// Byte range of the password in `scheme://user:password@host/...`, if any.
fn userinfo_password_span(url: &str) -> Option<(usize, usize)> {
    let authority_start = url.find("://")? + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    // The last `@` ends the userinfo: passwords may contain `@` unescaped.
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    let start = authority_start + colon + 1;
    let end = authority_start + at;
    (start < end).then_some((start, end))
}

fn mask_query_password(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.strip_prefix("password=") {
            Some(value) if !value.is_empty() => format!("password={MASK}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_userinfo_password() {
        assert_eq!(
            mask_url("postgresql+asyncpg://user:PASS@host:5432/db"),
            "postgresql+asyncpg://user:***@host:5432/db"
        );
        assert_eq!(
            mask_url("redis://:PASS@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(mask_url("redis://host:6379/0"), "redis://host:6379/0");
        assert_eq!(mask_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn masks_password_with_at_sign_and_query_password() {
        assert_eq!(mask_url("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            mask_url("postgres://u@h/db?sslmode=disable&password=x"),
            "postgres://u@h/db?sslmode=disable&password=***"
        );
    }

    #[test]
    fn scrubber_replaces_raw_and_decoded_passwords() {
        let scrubber = Scrubber::new(&[Some("postgres://u:p%40ss@h/db"), None]);
        assert_eq!(scrubber.scrub("bad p@ss and p%40ss"), "bad *** and ***");
    }
}
