//! Masking stage: captured text in, [`Masked`] text out.
//!
//! Every byte that reaches evidence passes through a [`Masker`]. [`Masked`]
//! can only be built here, and the evidence model holds nothing else, so a
//! renderer cannot be handed unmasked text by construction.
//!
//! Rules follow the seed (004): credentials in URLs become `user:***@host`;
//! `password=`, token, secret and Authorization values become `***`; and
//! every secret gonogo generated or read is replaced wherever it appears.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// What a masked secret is replaced with.
pub const MASK: &str = "***";

/// Text that has been through a [`Masker`]. Only a `Masker` makes one:
/// there is no public constructor and no `Default`, and reading one back
/// from stored evidence (`gonogo render`) passes the text through a
/// [`Masker`] again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Masked(String);

impl<'de> Deserialize<'de> for Masked {
    /// Stored evidence was masked when gonogo wrote it, but the file may
    /// have been edited since: the rules apply again (masking is
    /// idempotent, so text gonogo wrote reads back unchanged).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Masked, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Masker::new().mask(&text))
    }
}

impl Masked {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Masked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

static URL_CREDENTIALS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^:/@\s]*):([^@\s/]+)@").expect("valid regex")
});
static KEY_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|requirepass|pgpassword)["']?\s*[=:]\s*["']?)([^\s"'&,;}\]]+)"#,
    )
    .expect("valid regex")
});
static AUTHORIZATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(\bauthorization\s*[:=]\s*(?:(?:bearer|basic|token)\s+)?)(\S+)")
        .expect("valid regex")
});
static BEARER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/=\-]{8,})").expect("valid regex")
});
static URL_HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([a-z][a-z0-9+.\-]*://(?:[^@\s/]*@)?)([a-z0-9.\-]+)").expect("valid regex")
});

/// Replaces secrets with `***`.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Known secret values, longest first so overlapping ones mask fully.
    secrets: Vec<String>,
    /// Also mask hostnames/IPs inside URLs, keeping scheme and port.
    partial_hosts: bool,
}

impl Masker {
    pub fn new() -> Masker {
        Masker::default()
    }

    /// Mask URL hosts partially (`10.1.*.*`, `db.***.example.com`).
    pub fn with_partial_hosts(mut self, on: bool) -> Masker {
        self.partial_hosts = on;
        self
    }

    /// Register a secret value; it is masked wherever it appears. Values
    /// shorter than 4 characters are ignored: masking them would shred
    /// ordinary text and they are not secrets worth the name.
    pub fn add_secret(&mut self, secret: &str) {
        if secret.len() < 4 || self.secrets.iter().any(|s| s == secret) {
            return;
        }
        self.secrets.push(secret.to_string());
        let encoded = percent_encode(secret);
        if encoded != secret && !self.secrets.contains(&encoded) {
            self.secrets.push(encoded);
        }
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Register the password inside a URL, and values of secret-looking
    /// variables (`*PASSWORD*`, `*SECRET*`, `*TOKEN*`, `*KEY*`).
    pub fn learn_from_env(&mut self, key: &str, value: &str) {
        for caps in URL_CREDENTIALS.captures_iter(value) {
            let password = caps[3].to_string();
            if password != MASK {
                self.add_secret(&password);
                self.add_secret(&percent_decode(&password));
            }
        }
        let upper = key.to_ascii_uppercase();
        if ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL"]
            .iter()
            .any(|marker| upper.contains(marker))
        {
            self.add_secret(value);
        }
    }

    /// The secrets to scan written evidence for.
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    pub fn mask(&self, text: &str) -> Masked {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out = URL_CREDENTIALS
            .replace_all(&out, |c: &regex::Captures| {
                format!("{}{}:{MASK}@", &c[1], &c[2])
            })
            .into_owned();
        out = AUTHORIZATION
            .replace_all(&out, |c: &regex::Captures| format!("{}{MASK}", &c[1]))
            .into_owned();
        out = BEARER
            .replace_all(&out, |c: &regex::Captures| format!("{}{MASK}", &c[1]))
            .into_owned();
        out = KEY_VALUE
            .replace_all(&out, |c: &regex::Captures| {
                if &c[2] == MASK {
                    c[0].to_string()
                } else {
                    format!("{}{MASK}", &c[1])
                }
            })
            .into_owned();
        if self.partial_hosts {
            out = URL_HOST
                .replace_all(&out, |c: &regex::Captures| {
                    format!("{}{}", &c[1], partial_host(&c[2]))
                })
                .into_owned();
        }
        Masked(out)
    }

    /// Mask a host name on its own (runner host in the metadata).
    pub fn mask_host(&self, host: &str) -> Masked {
        let masked = self.mask(host);
        Masked(partial_host(masked.as_str()))
    }
}

/// Keep enough of a host to diagnose: the first two octets of an IPv4
/// address, or the first and last labels of a name.
fn partial_host(host: &str) -> String {
    let octets: Vec<&str> = host.split('.').collect();
    if octets.len() == 4 && octets.iter().all(|o| o.parse::<u8>().is_ok()) {
        return format!("{}.{}.*.*", octets[0], octets[1]);
    }
    match octets.as_slice() {
        [single] if single.len() > 3 => format!("{}***", &single[..3]),
        [single] => format!("{single}***"),
        [first, .., last] => format!("{first}.***.{last}"),
        [] => MASK.to_string(),
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(value) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(value);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_masked_text_back_masks_it_again_and_changes_nothing_masked() {
        let m = Masker::new();
        let written = m.mask("postgresql://app:hunter22@db:5432/app password=x1");
        let json = serde_json::to_string(&written).unwrap();
        let read: Masked = serde_json::from_str(&json).unwrap();
        assert_eq!(read, written);
        let edited: Masked = serde_json::from_str(r#""redis://:s3cret@cache:6379/0""#).unwrap();
        assert_eq!(edited.as_str(), "redis://:***@cache:6379/0");
    }

    #[test]
    fn masks_seed_examples() {
        let m = Masker::new();
        assert_eq!(
            m.mask("postgresql+asyncpg://user:PASS@host:5432/db")
                .as_str(),
            "postgresql+asyncpg://user:***@host:5432/db"
        );
        assert_eq!(
            m.mask("redis://:PASS@host:6379/0").as_str(),
            "redis://:***@host:6379/0"
        );
    }

    #[test]
    fn masks_key_values_and_authorization() {
        let m = Masker::new();
        assert_eq!(m.mask("password=hunter22 x").as_str(), "password=*** x");
        assert_eq!(
            m.mask(r#"{"token": "abc123xyz"}"#).as_str(),
            r#"{"token": "***"}"#
        );
        assert_eq!(
            m.mask("Authorization: Bearer abc.def.ghi").as_str(),
            "Authorization: Bearer ***"
        );
        assert_eq!(m.mask("api_key: sk-live-1").as_str(), "api_key: ***");
    }

    #[test]
    fn masks_known_secrets_anywhere() {
        let mut m = Masker::new();
        m.add_secret("Zk3v9QpL2mX8");
        assert_eq!(
            m.mask("connecting with Zk3v9QpL2mX8 now").as_str(),
            "connecting with *** now"
        );
        m.learn_from_env("DATABASE_URL", "postgres://u:s3cr%40t@h/db");
        assert_eq!(m.mask("raw s3cr@t here").as_str(), "raw *** here");
        m.learn_from_env("API_TOKEN", "tok-123456");
        assert_eq!(m.mask("x tok-123456").as_str(), "x ***");
    }

    #[test]
    fn partial_hosts_keep_scheme_and_port() {
        let m = Masker::new().with_partial_hosts(true);
        assert_eq!(
            m.mask("redis://:pw@10.20.30.40:6379/0").as_str(),
            "redis://:***@10.20.*.*:6379/0"
        );
        assert_eq!(
            m.mask("postgresql://app@db.internal.example.com:5432/x")
                .as_str(),
            "postgresql://app@db.***.com:5432/x"
        );
        assert_eq!(m.mask_host("build-runner-7").as_str(), "bui***");
    }
}
