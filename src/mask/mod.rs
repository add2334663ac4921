//! Masking stage: captured text in, [`Masked`] text out.
//!
//! Every byte that reaches evidence passes through a [`Masker`]. [`Masked`]
//! can only be built here, and the evidence model holds nothing else, so a
//! renderer cannot be handed unmasked text by construction.
//!
//! Rules follow the seed (004): credentials in URLs become `user:***@host`;
//! `password=`, token, secret and Authorization values become `***`; and
//! every secret gonogo generated or learned is replaced wherever it
//! appears, in every encoding of [`encodings::ENCODINGS`] (the same table
//! the evidence scan and the credential-hygiene check search with).
//! Terminal escape sequences and control characters are removed first.

pub mod encodings;
pub mod learn;
pub mod names;
mod sanitize;
mod table;

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

pub use sanitize::strip_controls;
pub use table::{Hit, SecretTable};

/// What a masked secret is replaced with.
pub const MASK: &str = "***";

/// Starts the note gonogo writes where it cut captured text (a body past
/// its cap, a line past its length limit). The masker removes the text
/// just before it that could hold the start of a secret whose end was cut
/// off, so a cut can never leave part of a secret behind.
pub const CUT_TAG: &str = "[… cut by gonogo";

/// The note to put right where captured text was cut, e.g.
/// `[… cut by gonogo: body longer than 1 MiB; the rest was not read]`.
pub fn cut_note(detail: &str) -> String {
    format!("{CUT_TAG}: {detail}]")
}

/// Text that has been through a [`Masker`]. Only a `Masker` makes one:
/// there is no public constructor and no `Default`, and reading one back
/// from stored evidence (`gonogo render`, `gonogo verify`) passes the text
/// through a [`Masker`] again.
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

    /// A part of this text, chosen by `pick` (which can only return a
    /// slice of it, or static text): masked text cut after masking is
    /// still masked.
    pub fn part<'a>(&'a self, pick: impl FnOnce(&'a str) -> &'a str) -> Masked {
        Masked(pick(&self.0).to_string())
    }

    /// At most `max` bytes of this text, cut at a character boundary.
    pub fn truncated(&self, max: usize) -> Masked {
        self.part(|text| &text[..floor_boundary(text, max)])
    }
}

/// The largest character boundary of `text` at or below `at`.
pub fn floor_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
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
/// `NAME=` as shells, `env` and `.env` files write it; the value after it
/// is masked when NAME looks secret (whatever the value's length).
static ENV_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([A-Za-z_][A-Za-z0-9_]*)=").expect("valid regex"));

/// A variable whose value was not learned as a secret, and why (names
/// only, for the evidence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// Replaces secrets with `***`.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Every known secret in every encoding.
    table: SecretTable,
    /// Also mask hostnames/IPs inside URLs, keeping scheme and port.
    partial_hosts: bool,
    /// Names declared secret (`[masking] extra_env`), upper-cased.
    declared: Vec<String>,
    /// Names declared not secret (`[masking] not_secret`), upper-cased.
    not_secret: Vec<String>,
    /// Values not learned, by name and why.
    skipped: Vec<Skipped>,
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

    /// Names whose values are secrets although they do not look it
    /// (`extra_env`), and names that look secret but are not (`not_secret`).
    pub fn declare(&mut self, extra_env: &[String], not_secret: &[String]) {
        self.declared = extra_env.iter().map(|n| n.to_ascii_uppercase()).collect();
        self.not_secret = not_secret.iter().map(|n| n.to_ascii_uppercase()).collect();
    }

    /// Whether the value of a variable called `name` is a secret: by the
    /// name rule ([`names::looks_secret`]) or by declaration.
    pub fn is_secret_name(&self, name: &str) -> bool {
        let upper = name.to_ascii_uppercase();
        if self.not_secret.contains(&upper) {
            return false;
        }
        self.declared.contains(&upper) || names::looks_secret(name)
    }

    /// Register a secret value; it is masked wherever it appears.
    pub fn add_secret(&mut self, secret: &str) {
        self.add_named_secret("a known secret", secret);
    }

    /// Register `value` as the secret described by `label` (`Redis
    /// password`, `DB_PASS value`); gives whether it was learned. Values
    /// shorter than 8 characters and ordinary ones (`true`, digits only)
    /// are not: see [`names::too_ordinary`].
    pub fn add_named_secret(&mut self, label: &str, value: &str) -> bool {
        if names::too_ordinary(value).is_some() {
            return false;
        }
        self.table.add(label, value);
        true
    }

    /// Learn from one variable the service (or gonogo) has: the password of
    /// any URL in it, and the whole value when the name says it is secret.
    /// Values too short or ordinary are recorded as skipped, by name.
    pub fn learn_from_env(&mut self, key: &str, value: &str) {
        for caps in URL_CREDENTIALS.captures_iter(value) {
            let password = caps[3].to_string();
            if password == MASK {
                continue;
            }
            let label = format!("{key} password");
            for form in [percent_decode(&password), password.clone()] {
                if let Some(reason) = names::too_ordinary(&form) {
                    self.skip(
                        &format!("{key} (password in its URL)"),
                        &format!("{reason}; masked only inside URLs"),
                    );
                } else {
                    self.table.add(&label, &form);
                }
            }
        }
        let upper = key.to_ascii_uppercase();
        if self.not_secret.contains(&upper) {
            if names::looks_secret(key) {
                self.skip(key, "declared not secret in [masking] not_secret");
            }
            return;
        }
        if !self.is_secret_name(key) {
            return;
        }
        match names::too_ordinary(value) {
            Some(reason) => self.skip(key, reason),
            None => {
                self.table.add(&format!("{key} value"), value);
            }
        }
    }

    fn skip(&mut self, name: &str, reason: &str) {
        if !self.skipped.iter().any(|s| s.name == name) {
            self.skipped.push(Skipped {
                name: name.to_string(),
                reason: reason.to_string(),
            });
        }
    }

    /// The secrets to scan written evidence for, in every encoding.
    pub fn table(&self) -> &SecretTable {
        &self.table
    }

    /// Values not learned as secrets, by name and why.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// Which known secrets `raw` reveals, in which encodings. Looks at the
    /// text as captured and with control characters removed (a secret
    /// broken up by escape sequences is still revealed).
    pub fn revealed_in(&self, raw: &str) -> Vec<Hit> {
        let mut hits = self.table.hits(raw);
        if let std::borrow::Cow::Owned(clean) = strip_controls(raw) {
            hits.extend(self.table.hits(&clean));
            hits.sort();
            hits.dedup();
        }
        hits
    }

    pub fn mask(&self, text: &str) -> Masked {
        let clean = strip_controls(text);
        let mut out = self.table.replace(&clean, MASK).into_owned();
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
        out = self.mask_assignments(&out);
        if out.contains(CUT_TAG) {
            out = trim_before_cuts(&out, self.table.longest());
        }
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

impl Masker {
    /// `NAME=value` with a secret-looking NAME becomes `NAME=***`.
    fn mask_assignments(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for caps in ENV_NAME.captures_iter(text) {
            let whole = caps.get(0).expect("group 0 always matches");
            if whole.start() < copied || !self.is_secret_name(&caps[1]) {
                continue;
            }
            let rest = &text[whole.end()..];
            let len = assigned_value_len(rest);
            // `MASK` is done already; `"$NAME"` names a passed-through
            // variable without its value.
            let value = &rest[..len];
            if len == 0 || value == MASK || value == format!("\"${}\"", &caps[1]) {
                continue;
            }
            out.push_str(&text[copied..whole.end()]);
            out.push_str(MASK);
            copied = whole.end() + len;
        }
        out.push_str(&text[copied..]);
        out
    }
}

/// The length of the value at the start of `rest`: quoted up to its
/// closing quote (or the line's end), else up to a space or `'"&;,`.
fn assigned_value_len(rest: &str) -> usize {
    let line = rest.split('\n').next().unwrap_or("");
    match line.chars().next() {
        Some(q @ ('\'' | '"')) => line[1..].find(q).map_or(line.len(), |i| i + 2),
        _ => line
            .find(|c: char| c.is_whitespace() || "'\"&;,".contains(c))
            .unwrap_or(line.len()),
    }
}

/// Remove the `longest - 1` bytes before each cut note: a secret whose end
/// was cut off can only have started there.
fn trim_before_cuts(text: &str, longest: usize) -> String {
    if longest < 2 {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (at, _) in text.match_indices(CUT_TAG) {
        let from = floor_boundary(text, at.saturating_sub(longest - 1)).max(copied);
        out.push_str(&text[copied..from]);
        copied = at;
    }
    out.push_str(&text[copied..]);
    out
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

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((high * 16 + low) as u8);
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
        m.learn_from_env("DATABASE_URL", "postgres://u:s3cr%40t-pw@h/db");
        assert_eq!(m.mask("raw s3cr@t-pw here").as_str(), "raw *** here");
        m.learn_from_env("API_TOKEN", "tok-123456");
        assert_eq!(m.mask("x tok-123456").as_str(), "x ***");
    }

    #[test]
    fn secret_looking_assignments_are_masked_whatever_their_length() {
        let mut m = Masker::new();
        m.declare(&["MY_VAR".into()], &["SESSION_STORE".into()]);
        assert_eq!(
            m.mask("env PORT=80 DB_PASS=abc API_TOKEN='x y' MY_VAR=1 SESSION_STORE=redis x")
                .as_str(),
            "env PORT=80 DB_PASS=*** API_TOKEN=*** MY_VAR=*** SESSION_STORE=redis x"
        );
        assert_eq!(m.mask("--env=API_TOKEN=x").as_str(), "--env=API_TOKEN=***");
    }

    #[test]
    fn short_and_ordinary_values_are_skipped_by_name() {
        let mut m = Masker::new();
        m.learn_from_env("FEATURE_KEY", "true");
        m.learn_from_env("DB_PASS", "abc");
        m.learn_from_env("DATABASE_URL", "postgres://u:pw@h/db");
        m.learn_from_env("PORT", "8080");
        assert!(m.table().is_empty());
        let names: Vec<&str> = m.skipped().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "FEATURE_KEY",
                "DB_PASS",
                "DATABASE_URL (password in its URL)"
            ]
        );
        assert_eq!(m.mask("true and abc").as_str(), "true and abc");
    }

    #[test]
    fn controls_are_stripped_and_cut_secrets_trimmed() {
        let mut m = Masker::new();
        m.add_named_secret("DB_PASS value", "0123456789abcdef");
        assert_eq!(m.mask("a\u{1b}[31mred\u{7}").as_str(), "ared");
        let cut = format!("head 0123456789{}", cut_note("line longer than 16 KiB"));
        let masked = m.mask(&cut);
        assert!(!masked.as_str().contains("0123"), "{masked}");
        assert!(
            masked.as_str().ends_with("line longer than 16 KiB]"),
            "{masked}"
        );
        assert_eq!(
            m.revealed_in("x MDEyMzQ1Njc4OWFiY2RlZg== y"),
            [Hit {
                secret: "DB_PASS value".into(),
                encoding: "base64"
            }]
        );
        assert_eq!(percent_decode("%zz%4a%é%"), "%zzJ%é%");
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
