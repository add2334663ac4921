//! DSSE (Dead Simple Signing Envelope), as cosign and the in-toto
//! Attestation Framework use it: a payload, its type, and signatures over
//! `PAE(type, payload)`, one JSON object on one line.
//!
//! ```text
//! {"payloadType":"application/vnd.in-toto+json","payload":"eyJfdHlwZSI6…",
//!  "signatures":[{"keyid":"SHA256:9f2c…","sig":"MEUCIQ…"}]}
//! ```
//!
//! `sig` is the base64 of the DER ECDSA signature, as cosign writes it, so
//! `openssl dgst -sha256 -verify gonogo.pub -signature sig.der pae.bin`
//! checks it once the PAE bytes are written to `pae.bin`.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use super::key::{SigningKey, VerifyingKey};

/// The payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Base64 of the payload bytes.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// A hint naming the key (unauthenticated: the signature decides).
    #[serde(default)]
    pub keyid: String,
    /// Base64 of the DER signature.
    pub sig: String,
}

/// The pre-authentication encoding the signature covers:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII
/// decimal bytes.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

impl Envelope {
    /// Sign `body` as an in-toto statement.
    pub fn sign(body: &[u8], key: &SigningKey) -> Envelope {
        let signature = key.sign(&pae(PAYLOAD_TYPE, body));
        Envelope {
            payload_type: PAYLOAD_TYPE.into(),
            payload: STANDARD.encode(body),
            signatures: vec![EnvelopeSignature {
                keyid: key.keyid().to_string(),
                sig: STANDARD.encode(signature),
            }],
        }
    }

    /// The envelope as one JSON line, newline-terminated (JSON Lines).
    pub fn to_line(&self) -> serde_json::Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Read an `attestation.intoto.jsonl`: exactly one envelope, on one line.
    pub fn parse(bytes: &[u8]) -> Result<Envelope, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())?;
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let [line] = lines.as_slice() else {
            return Err(format!(
                "it holds {} envelopes; gonogo writes exactly one",
                lines.len()
            ));
        };
        let envelope: Envelope =
            serde_json::from_str(line).map_err(|e| format!("it is not a DSSE envelope: {e}"))?;
        if envelope.payload_type != PAYLOAD_TYPE {
            return Err(format!(
                "its payloadType is `{}`, not `{PAYLOAD_TYPE}`",
                envelope.payload_type
            ));
        }
        if envelope.signatures.is_empty() {
            return Err("it has no signatures".into());
        }
        Ok(envelope)
    }

    /// The payload's bytes.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, String> {
        decode(&self.payload).ok_or_else(|| "its payload is not base64".to_string())
    }

    /// The key ids the signatures name.
    pub fn keyids(&self) -> Vec<&str> {
        self.signatures.iter().map(|s| s.keyid.as_str()).collect()
    }

    /// Whether one of the signatures is `key`'s over the PAE of the payload.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), String> {
        let body = self.payload_bytes()?;
        let message = pae(&self.payload_type, &body);
        let verified = self
            .signatures
            .iter()
            .filter_map(|s| decode(&s.sig))
            .any(|sig| key.verify(&message, &sig));
        if verified {
            Ok(())
        } else {
            Err(format!(
                "the signature does not verify with key {} (the envelope names key {})",
                key.keyid(),
                self.keyids().join(", ")
            ))
        }
    }
}

/// DSSE allows standard or URL-safe base64, with or without padding.
fn decode(text: &str) -> Option<Vec<u8>> {
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn a_signed_envelope_verifies_and_any_change_breaks_it() {
        let key = SigningKey::generate().unwrap();
        let envelope = Envelope::sign(br#"{"a":1}"#, &key);
        let line = envelope.to_line().unwrap();
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let parsed = Envelope::parse(&line).unwrap();
        assert_eq!(parsed, envelope);
        parsed.verify(&key.verifying_key()).unwrap();

        let other = SigningKey::generate().unwrap();
        let err = parsed.verify(&other.verifying_key()).unwrap_err();
        assert!(
            err.contains(other.keyid()) && err.contains(key.keyid()),
            "{err}"
        );

        let mut edited = parsed.clone();
        edited.payload = STANDARD.encode(br#"{"a":2}"#);
        assert!(edited.verify(&key.verifying_key()).is_err());
        let mut retyped = parsed.clone();
        retyped.payload_type = "text/plain".into();
        assert!(retyped.verify(&key.verifying_key()).is_err());
    }

    #[test]
    fn a_corrupt_envelope_is_named() {
        assert!(
            Envelope::parse(b"not json\n")
                .unwrap_err()
                .contains("not a DSSE envelope")
        );
        assert!(Envelope::parse(b"").unwrap_err().contains("0 envelopes"));
        let key = SigningKey::generate().unwrap();
        let mut two = Envelope::sign(b"{}", &key).to_line().unwrap();
        two.extend(two.clone());
        assert!(Envelope::parse(&two).unwrap_err().contains("2 envelopes"));
        let unsigned =
            br#"{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}"#;
        assert!(
            Envelope::parse(unsigned)
                .unwrap_err()
                .contains("no signatures")
        );
    }
}
