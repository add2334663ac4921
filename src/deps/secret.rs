//! Secrets of the provision stage: the generated server passwords and the
//! URLs that carry them. Takes randomness from the OS; gives a [`Secret`]
//! that prints as `***` unless explicitly exposed.

use std::{fmt, io};

/// A string that never shows up in `Debug` or `Display` output. Read it with
/// [`expose`](Secret::expose), only where the real value must go (a child's
/// environment, a connection) and never into evidence.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Length of generated passwords.
    pub const GENERATED_LEN: usize = 24;

    /// Wraps a value that must not be printed.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// A fresh random password: [`GENERATED_LEN`](Secret::GENERATED_LEN)
    /// ASCII letters and digits, so it needs no escaping in URLs, config
    /// files or RESP.
    pub fn generate() -> io::Result<Secret> {
        random_alphanumeric(Secret::GENERATED_LEN).map(Secret)
    }

    /// The real value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `len` random ASCII letters and digits, each equally likely.
pub fn random_alphanumeric(len: usize) -> io::Result<String> {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // Bytes at or above this are rejected so no character is favoured.
    const UNBIASED_LIMIT: u8 = 248; // 62 * 4
    let mut text = String::with_capacity(len);
    let mut random = [0u8; 64];
    while text.len() < len {
        getrandom::fill(&mut random).map_err(random_error)?;
        let usable = random.iter().filter(|&&byte| byte < UNBIASED_LIMIT);
        for &byte in usable.take(len - text.len()) {
            text.push(char::from(ALPHABET[usize::from(byte % 62)]));
        }
    }
    Ok(text)
}

/// `getrandom::Error` implements `std::error::Error` only with its `std`
/// feature; keep the OS error code when there is one.
fn random_error(error: getrandom::Error) -> io::Error {
    match error.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::other(format!("read random bytes: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn prints_as_stars() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn generated_passwords_are_alphanumeric_and_distinct() {
        let first = Secret::generate().expect("random bytes");
        let second = Secret::generate().expect("random bytes");
        assert_eq!(first.expose().len(), Secret::GENERATED_LEN);
        assert!(first.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(first, second);
    }
}
