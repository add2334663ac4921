//! Signing keys: ECDSA P-256 with SHA-256, cosign's default key type, which
//! `openssl dgst -sha256 -verify` also checks.
//!
//! A private key is read from a PEM file (`--sign-key`) or from PEM text in
//! `GONOGO_SIGNING_KEY`; `gonogo keygen` writes a pair. A key is a secret:
//! [`SigningKey`] never prints it (its `Debug` shows the key id), and
//! [`SigningKey::secrets`] hands the masker every form of it that could
//! show up in text. Errors name where the key came from, never the key.
//!
//! A key id is `SHA256:` and the lower-case hex SHA-256 of the public key's
//! SPKI DER, so anyone can recompute it from `gonogo.pub`:
//! `openssl pkey -pubin -in gonogo.pub -outform DER | sha256sum`.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};

use crate::digest::sha256_hex;

/// The private key file `gonogo keygen` writes.
pub const KEY_FILE: &str = "gonogo.key";
/// The public key file `gonogo keygen` writes.
pub const PUB_FILE: &str = "gonogo.pub";
/// The environment variable that can hold the private key's PEM text.
pub const KEY_ENV: &str = "GONOGO_SIGNING_KEY";

/// Key files are small; anything bigger is not a key.
const MAX_KEY_BYTES: u64 = 64 * 1024;

/// A private key, ready to sign, with the id of its public half.
#[derive(Clone)]
pub struct SigningKey {
    key: p256::ecdsa::SigningKey,
    keyid: String,
    /// Every text form of the key the masker must know.
    secrets: Vec<String>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.keyid)
    }
}

/// A public key, to check signatures with.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    key: p256::ecdsa::VerifyingKey,
    keyid: String,
}

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<SigningKey, String> {
        loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            getrandom::fill(bytes.as_mut_slice())
                .map_err(|e| format!("read the system's random source: {e}"))?;
            // A 32-byte string is a valid scalar except with probability
            // about 2^-32 (zero, or not below the group order): draw again.
            if let Ok(secret) = p256::SecretKey::from_slice(bytes.as_slice()) {
                return SigningKey::from_secret(&secret, &[]);
            }
        }
    }

    /// Parse PEM text: PKCS#8 (`PRIVATE KEY`, as `gonogo keygen` and
    /// `openssl genpkey` write) or SEC1 (`EC PRIVATE KEY`), or the base64 of
    /// either (for CI secret stores that cannot hold newlines). The error
    /// never holds any of `text`.
    pub fn from_text(text: &str) -> Result<SigningKey, String> {
        let trimmed = text.trim();
        let decoded;
        let pem = if trimmed.starts_with("-----BEGIN ") {
            trimmed
        } else {
            decoded = STANDARD
                .decode(trimmed.replace(['\n', '\r', ' '], ""))
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .map(Zeroizing::new)
                .filter(|t| t.trim().starts_with("-----BEGIN "))
                .ok_or("it is not a PEM private key (nor base64 of one)")?;
            decoded.trim()
        };
        let pem = Zeroizing::new(format!("{}\n", pem.replace("\r\n", "\n")));
        let secret = match pem_label(&pem) {
            Some("PRIVATE KEY") => p256::SecretKey::from_pkcs8_pem(&pem)
                .map_err(|_| "it is not a PKCS#8 ECDSA P-256 private key".to_string())?,
            Some("EC PRIVATE KEY") => p256::SecretKey::from_sec1_pem(&pem)
                .map_err(|_| "it is not a SEC1 ECDSA P-256 private key".to_string())?,
            Some(label) if label.contains("ENCRYPTED") => {
                return Err(format!(
                    "it is an encrypted key ({label}); gonogo reads unencrypted PKCS#8 keys (make one with gonogo keygen, or decrypt it with openssl pkcs8)"
                ));
            }
            Some(label) if label.contains("PUBLIC KEY") => {
                return Err("it is a public key; signing needs the private key".into());
            }
            Some(label) => return Err(format!("it is a PEM `{label}`, not a private key")),
            None => return Err("it is not a PEM private key".into()),
        };
        SigningKey::from_secret(&secret, &[text.trim(), pem.trim()])
    }

    fn from_secret(secret: &p256::SecretKey, seen: &[&str]) -> Result<SigningKey, String> {
        let public = VerifyingKey::from_public(&secret.public_key())?;
        let pkcs8 = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| format!("encode the key: {e}"))?;
        let scalar = Zeroizing::new(secret.to_bytes().to_vec());
        let mut secrets = Vec::new();
        for text in seen.iter().copied().chain([pkcs8.as_str()]) {
            secrets.extend(pem_secrets(text));
        }
        let hex = lower_hex(&scalar);
        secrets.push(hex.to_ascii_uppercase());
        secrets.push(hex);
        secrets.push(STANDARD.encode(scalar.as_slice()));
        secrets.push(URL_SAFE_NO_PAD.encode(scalar.as_slice()));
        secrets.retain(|s| s.len() >= 8);
        secrets.sort();
        secrets.dedup();
        Ok(SigningKey {
            key: p256::ecdsa::SigningKey::from(secret),
            keyid: public.keyid,
            secrets,
        })
    }

    /// `SHA256:<hex>` of the public key's SPKI DER.
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// The DER-encoded ECDSA signature (SHA-256) of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: p256::ecdsa::Signature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }

    /// Text forms of the key for the masker and the evidence scan: the
    /// PEM's base64 lines and body (as given and as PKCS#8), the whole
    /// text when it was one line, and the private scalar in hex and base64.
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            key: *self.key.verifying_key(),
            keyid: self.keyid.clone(),
        }
    }

    /// The private key as PKCS#8 PEM.
    fn to_pem(&self) -> Result<Zeroizing<String>, String> {
        p256::SecretKey::from(&self.key)
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| format!("encode the private key: {e}"))
    }
}

impl VerifyingKey {
    /// Parse an SPKI PEM (`PUBLIC KEY`, as `gonogo keygen` and cosign write).
    pub fn from_pem(text: &str) -> Result<VerifyingKey, String> {
        let pem = format!("{}\n", text.trim().replace("\r\n", "\n"));
        match pem_label(&pem) {
            Some("PUBLIC KEY") => {}
            Some(label) if label.contains("PRIVATE KEY") => {
                return Err(
                    "it is a private key; verify with the public key (gonogo.pub), and keep the private key away from verifiers".into(),
                );
            }
            Some(label) => return Err(format!("it is a PEM `{label}`, not a public key")),
            None => return Err("it is not a PEM public key".into()),
        }
        let public = p256::PublicKey::from_public_key_pem(&pem)
            .map_err(|_| "it is not an ECDSA P-256 public key".to_string())?;
        VerifyingKey::from_public(&public)
    }

    fn from_public(public: &p256::PublicKey) -> Result<VerifyingKey, String> {
        let der = public
            .to_public_key_der()
            .map_err(|e| format!("encode the public key: {e}"))?;
        Ok(VerifyingKey {
            key: p256::ecdsa::VerifyingKey::from(public),
            keyid: format!("SHA256:{}", sha256_hex(der.as_bytes())),
        })
    }

    /// `SHA256:<hex>` of the SPKI DER.
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// Whether `signature` (DER) is this key's ECDSA signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        p256::ecdsa::Signature::from_der(signature)
            .is_ok_and(|sig| self.key.verify(message, &sig).is_ok())
    }

    /// The public key as SPKI PEM.
    pub fn to_pem(&self) -> Result<String, String> {
        p256::PublicKey::from(&self.key)
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| format!("encode the public key: {e}"))
    }
}

/// The signing key for a run: the file named by `--sign-key`, else the PEM
/// text from `GONOGO_SIGNING_KEY` (`env_text`), else none. A bad key is an
/// error that names its source, never its content.
pub fn signing_key(
    file: Option<&Path>,
    env_text: Option<&str>,
) -> Result<Option<SigningKey>, String> {
    if let Some(path) = file {
        let text =
            read_key_file(path).map_err(|e| format!("--sign-key {}: {e}", path.display()))?;
        return SigningKey::from_text(&text)
            .map(Some)
            .map_err(|e| format!("--sign-key {}: {e}", path.display()));
    }
    match env_text.filter(|t| !t.trim().is_empty()) {
        Some(text) => SigningKey::from_text(text)
            .map(Some)
            .map_err(|e| format!("{KEY_ENV}: {e}")),
        None => Ok(None),
    }
}

/// Take `GONOGO_SIGNING_KEY` out of this process's environment, returning
/// its value: no child (service, migrations, servers) inherits it, and the
/// copy in the process's initial environment block, which other processes
/// of the same user can read in `/proc/<pid>/environ`, is overwritten.
///
/// # Safety
///
/// No other thread may read or write the environment meanwhile: call it
/// first thing in `main`, before any thread starts.
pub unsafe fn take_from_env() -> Option<Zeroizing<String>> {
    let value = std::env::var_os(KEY_ENV)?;
    let text = Zeroizing::new(value.to_string_lossy().into_owned());
    // SAFETY: the caller guarantees no other thread touches the environment.
    unsafe {
        scrub_env_value(KEY_ENV);
        std::env::remove_var(KEY_ENV);
    }
    Some(text)
}

/// Overwrite the value of `name` in place in `environ` with NUL bytes.
///
/// # Safety
///
/// As for [`take_from_env`].
unsafe fn scrub_env_value(name: &str) {
    unsafe extern "C" {
        static mut environ: *mut *mut libc::c_char;
    }
    let prefix = format!("{name}=");
    // SAFETY: `environ` is a NULL-terminated array of NUL-terminated
    // strings, owned by the C library; no other thread uses it (the
    // caller's promise). Only bytes of a matching entry's value, which
    // lie within that string, are written.
    unsafe {
        let mut cursor = environ;
        if cursor.is_null() {
            return;
        }
        while !(*cursor).is_null() {
            let entry = *cursor;
            let len = std::ffi::CStr::from_ptr(entry).to_bytes().len();
            let head = std::slice::from_raw_parts(entry.cast::<u8>(), len.min(prefix.len()));
            if head == prefix.as_bytes() {
                std::ptr::write_bytes(entry.add(prefix.len()), 0, len - prefix.len());
            }
            cursor = cursor.add(1);
        }
    }
}

/// The public key in `path`, for `gonogo verify --key`.
pub fn verifying_key(path: &Path) -> Result<VerifyingKey, String> {
    let text = read_key_file(path).map_err(|e| format!("--key {}: {e}", path.display()))?;
    VerifyingKey::from_pem(&text).map_err(|e| format!("--key {}: {e}", path.display()))
}

/// A key file's text: a regular file (never a FIFO or device, which could
/// block), at most [`MAX_KEY_BYTES`].
fn read_key_file(path: &Path) -> Result<Zeroizing<String>, String> {
    let meta = fs::metadata(path).map_err(|e| format!("read it: {e}"))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else {
            "not a regular file"
        };
        return Err(format!("it is {what}; give the key file"));
    }
    if meta.len() > MAX_KEY_BYTES {
        return Err(format!(
            "it has {} bytes, more than a key file ({MAX_KEY_BYTES} at most)",
            meta.len()
        ));
    }
    let mut text = Zeroizing::new(String::new());
    fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY_BYTES).read_to_string(&mut text))
        .map_err(|e| format!("read it: {e}"))?;
    Ok(text)
}

/// Where `gonogo keygen` put a new pair.
#[derive(Debug)]
pub struct KeyPair {
    pub private: PathBuf,
    pub public: PathBuf,
    pub keyid: String,
}

/// Write a new key pair into `dir`: `gonogo.key` (PKCS#8 PEM, created with
/// mode 0600, never wider) and `gonogo.pub` (SPKI PEM). Existing files are
/// kept unless `force`; then each is replaced by an atomic rename.
pub fn keygen(dir: &Path, force: bool) -> Result<KeyPair, String> {
    let private = dir.join(KEY_FILE);
    let public = dir.join(PUB_FILE);
    if !force {
        for path in [&private, &public] {
            if fs::symlink_metadata(path).is_ok() {
                return Err(format!(
                    "{} exists; pass --force to replace the key pair",
                    path.display()
                ));
            }
        }
    }
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let key = SigningKey::generate()?;
    let public_pem = key.verifying_key().to_pem()?;
    write_new(&private, key.to_pem()?.as_bytes(), 0o600)?;
    write_new(&public, public_pem.as_bytes(), 0o644)?;
    Ok(KeyPair {
        private,
        public,
        keyid: key.keyid,
    })
}

/// Write `bytes` to a fresh file created with `mode` next to `path`, then
/// rename it over `path`: the file never exists with a wider mode, and a
/// crash never leaves half a key under the final name.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&temp);
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .and_then(|mut file| {
            // The umask can only narrow the mode; make it exact.
            file.set_permissions(fs::Permissions::from_mode(mode))?;
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(format!("write {}: {e}", path.display()));
    }
    Ok(())
}

/// The label of the first PEM block in `text` (`PRIVATE KEY`, …).
fn pem_label(text: &str) -> Option<&str> {
    let line = text.lines().find(|l| l.starts_with("-----BEGIN "))?;
    line.strip_prefix("-----BEGIN ")?.strip_suffix("-----")
}

/// The secret-bearing pieces of a PEM (or any) text: each base64 line of
/// its body, the body joined, and the text itself when it is one line.
fn pem_secrets(text: &str) -> Vec<String> {
    let body: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----") && !l.contains(':'))
        .collect();
    let mut out: Vec<String> = body.iter().map(|l| l.to_string()).collect();
    out.push(body.concat());
    if !text.contains('\n') {
        out.push(text.to_string());
    }
    out
}

fn lower_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_round_trips_through_pem_and_signs() {
        let key = SigningKey::generate().unwrap();
        let pem = key.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = SigningKey::from_text(&pem).unwrap();
        assert_eq!(again.keyid(), key.keyid());
        assert!(key.keyid().starts_with("SHA256:") && key.keyid().len() == 7 + 64);
        let public = VerifyingKey::from_pem(&key.verifying_key().to_pem().unwrap()).unwrap();
        assert_eq!(public.keyid(), key.keyid());
        let signature = again.sign(b"hello");
        assert!(public.verify(b"hello", &signature));
        assert!(!public.verify(b"hellO", &signature));
        assert!(!public.verify(b"hello", b"not der"));
    }

    #[test]
    fn base64_of_the_pem_is_accepted_and_every_form_is_a_secret() {
        let key = SigningKey::generate().unwrap();
        let pem = key.to_pem().unwrap();
        let one_line = STANDARD.encode(pem.as_bytes());
        let from_env = SigningKey::from_text(&one_line).unwrap();
        assert_eq!(from_env.keyid(), key.keyid());
        assert!(from_env.secrets().contains(&one_line));
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(from_env.secrets().iter().any(|s| s == line), "{line}");
        }
        let debug = format!("{from_env:?}");
        assert_eq!(debug, format!("SigningKey({})", key.keyid()));
    }

    #[test]
    fn errors_say_what_is_wrong_without_the_key() {
        let key = SigningKey::generate().unwrap();
        let public = key.verifying_key().to_pem().unwrap();
        let err = SigningKey::from_text(&public).unwrap_err();
        assert!(err.contains("public key"), "{err}");
        let err = SigningKey::from_text("hello").unwrap_err();
        assert!(err.contains("not a PEM private key"), "{err}");
        let broken = key.to_pem().unwrap().replacen('A', "B", 3);
        let err = SigningKey::from_text(&broken).unwrap_err();
        for line in broken.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!err.contains(line), "{err}");
        }
        let encrypted = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nabc\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
        assert!(
            SigningKey::from_text(encrypted)
                .unwrap_err()
                .contains("encrypted")
        );
        let err = VerifyingKey::from_pem(&key.to_pem().unwrap()).unwrap_err();
        assert!(err.contains("is a private key"), "{err}");
    }

    #[test]
    fn a_sec1_key_is_accepted() {
        let key = SigningKey::generate().unwrap();
        let sec1 = p256::SecretKey::from(&key.key)
            .to_sec1_pem(LineEnding::LF)
            .unwrap();
        assert_eq!(SigningKey::from_text(&sec1).unwrap().keyid(), key.keyid());
    }

    #[test]
    fn keygen_writes_a_private_file_with_mode_0600_and_keeps_existing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let pair = keygen(dir.path(), false).unwrap();
        let mode = fs::metadata(&pair.private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let signing = signing_key(Some(&pair.private), None).unwrap().unwrap();
        assert_eq!(signing.keyid(), pair.keyid);
        assert_eq!(verifying_key(&pair.public).unwrap().keyid(), pair.keyid);
        let err = keygen(dir.path(), false).unwrap_err();
        assert!(err.contains("--force"), "{err}");
        fs::set_permissions(&pair.private, fs::Permissions::from_mode(0o644)).unwrap();
        let again = keygen(dir.path(), true).unwrap();
        assert_ne!(again.keyid, pair.keyid);
        let mode = fs::metadata(&again.private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    }

    #[test]
    fn a_key_file_must_be_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = signing_key(Some(dir.path()), None).unwrap_err();
        assert!(err.contains("a directory"), "{err}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.display().to_string()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = signing_key(Some(&fifo), None).unwrap_err();
        assert!(err.contains("FIFO"), "{err}");
        let missing = dir.path().join("missing.key");
        let err = signing_key(Some(&missing), None).unwrap_err();
        assert!(
            err.starts_with(&format!("--sign-key {}: read it", missing.display())),
            "{err}"
        );
        let err = signing_key(None, Some("garbage")).unwrap_err();
        assert!(err.starts_with("GONOGO_SIGNING_KEY: "), "{err}");
        assert!(signing_key(None, Some("  ")).unwrap().is_none());
    }
}
