//! What the evidence says about one run's masking ([`MaskingInfo`]): names
//! only, never values. The run learns the secrets themselves (from every
//! source, before anything runs) in `run::secrets`, which knows the
//! scenario; this module stays free of it.

use serde::{Deserialize, Serialize};

use super::{Masker, Skipped, encodings};

/// What the evidence says about masking: which variables the service
/// received, which secrets were known, and which values were not treated
/// as secrets and why. Names only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskingInfo {
    /// The variables the service received (it received no others), by
    /// name; empty when gonogo did not launch it (`--service-url`).
    #[serde(default)]
    pub service_env: Vec<String>,
    /// The secrets masked everywhere and looked for in what the service
    /// returned or printed, by description (`Redis password`, `DB_PASS value`).
    #[serde(default)]
    pub known_secrets: Vec<String>,
    /// The encodings each one is masked and looked for in.
    #[serde(default)]
    pub encodings: Vec<String>,
    /// Secret-looking variables whose values were not learned, and why.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
}

impl MaskingInfo {
    /// The summary of what `masker` knows, for a service that received
    /// `service_env`.
    pub fn of(masker: &Masker, service_env: Vec<String>) -> MaskingInfo {
        MaskingInfo {
            service_env,
            known_secrets: masker.table().labels(),
            encodings: encodings::names().into_iter().map(String::from).collect(),
            skipped: masker.skipped().to_vec(),
        }
    }
}
