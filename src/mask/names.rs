//! Which variables hold secrets, by name, and which values are too
//! ordinary to be treated as one.

/// Parts of a variable name that mark its value as a secret.
pub const SECRET_MARKERS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASS",
    "PWD",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "CREDS",
    "AUTH",
    "COOKIE",
    "SESSION",
    "DSN",
    "PRIVATE",
    "API_KEY",
];

/// Name endings that say the value is where a secret is kept, not the
/// secret itself (`DB_PASSWORD_FILE=/run/secrets/db`).
const LOCATION_SUFFIXES: &[&str] = &["_FILE", "_PATH", "_DIR"];

/// Values shorter than this are never learned as secrets: masking them
/// would shred ordinary text, and a scan would find them in gonogo's own.
pub const MIN_SECRET_CHARS: usize = 8;

/// Whether a variable called `name` holds a secret by the name rule:
/// it contains one of [`SECRET_MARKERS`] (any case) and does not name a
/// location (`*_FILE`, `*_PATH`, `*_DIR`).
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_MARKERS.iter().any(|m| upper.contains(m))
        && !LOCATION_SUFFIXES.iter().any(|s| upper.ends_with(s))
}

/// Why `value` is not treated as a secret, or `None` when it is one.
pub fn too_ordinary(value: &str) -> Option<&'static str> {
    let lower = value.trim().to_ascii_lowercase();
    if [
        "true", "false", "yes", "no", "on", "off", "none", "null", "enabled", "disabled",
    ]
    .contains(&lower.as_str())
    {
        return Some("a boolean-like word, not a secret");
    }
    if !lower.is_empty() && lower.chars().all(|c| c.is_ascii_digit()) {
        return Some("digits only");
    }
    if value.chars().count() < MIN_SECRET_CHARS {
        return Some("shorter than 8 characters");
    }
    None
}

/// The command line as the evidence shows it: the value of every
/// `--env KEY=VALUE` (or `-e`, `--env=`) whose KEY looks secret is `***`.
/// Learned secrets are masked later by the masker as anywhere else.
pub fn command_line(args: &[String]) -> String {
    let mut out: Vec<String> = Vec::with_capacity(args.len());
    let mut value_next = false;
    for arg in args {
        let shown = if value_next {
            mask_assignment(arg, "")
        } else if let Some(rest) = arg.strip_prefix("--env=") {
            mask_assignment(rest, "--env=")
        } else if let Some(rest) = arg.strip_prefix("-e").filter(|r| r.contains('=')) {
            mask_assignment(rest, "-e")
        } else {
            arg.clone()
        };
        value_next = arg == "--env" || arg == "-e";
        out.push(shown);
    }
    out.join(" ")
}

fn mask_assignment(text: &str, prefix: &str) -> String {
    match text.split_once('=') {
        Some((key, _)) if looks_secret(key) => format!("{prefix}{key}={}", super::MASK),
        _ => format!("{prefix}{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_rule_covers_the_issue_examples() {
        for name in [
            "DB_PASS",
            "MYSQL_PWD",
            "AUTH_HEADER",
            "SESSION_COOKIE",
            "SENTRY_DSN",
            "CREDS",
            "GH_TOKEN",
            "PGPASSWORD",
            "stripe_api_key",
            "PRIVATE_PEM",
            "REDIS_PASSWORD",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in [
            "DATABASE_URL",
            "PORT",
            "ENV",
            "DB_PASSWORD_FILE",
            "TLS_KEY_PATH",
        ] {
            assert!(!looks_secret(name), "{name}");
        }
    }

    #[test]
    fn ordinary_values_are_not_secrets() {
        for value in [
            "true",
            "FALSE",
            "yes",
            "no",
            "on",
            "off",
            "12345678901",
            "short",
        ] {
            assert!(too_ordinary(value).is_some(), "{value}");
        }
        assert_eq!(too_ordinary("hunter2hunter2"), None);
    }

    #[test]
    fn command_lines_mask_secret_env_values() {
        let args: Vec<String> = [
            "gonogo",
            "run",
            "s.toml",
            "--env",
            "DB_PASS=abc",
            "--env=API_TOKEN=x y",
            "-eSESSION=1",
            "-e",
            "FEATURE_X=1",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            command_line(&args),
            "gonogo run s.toml --env DB_PASS=*** --env=API_TOKEN=*** -eSESSION=*** -e FEATURE_X=1"
        );
    }
}
