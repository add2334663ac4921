//! Learning one run's secrets from every source, before anything runs:
//! gonogo's generated passwords (by the runner), the service's variables
//! (passed through, `[service.env]`, `[migrations] env`, fail-fast `set`,
//! `--env`), `[masking] extra_env` and gonogo's own secret variables.
//! Gives the [`MaskingInfo`] the evidence shows: names only, never values.

use serde::{Deserialize, Serialize};

use super::{Masker, Skipped, encodings};
use crate::scenario::placeholders::Bindings;
use crate::scenario::{MigrationSpec, Scenario};

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

/// Learn every secret the service's variables hold (see the module docs);
/// gives the names of the variables a launched service receives, in order.
pub fn learn(
    masker: &mut Masker,
    scenario: &Scenario,
    bindings: &Bindings,
    extra: &[(String, String)],
) -> Vec<String> {
    masker.declare(&scenario.masking.extra_env, &scenario.masking.not_secret);
    for (key, value) in std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
    {
        let declared = scenario
            .masking
            .extra_env
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&key));
        let own_secret = key.starts_with("GONOGO_") && super::names::looks_secret(&key);
        if declared || own_secret {
            masker.learn_from_env(&key, &value);
        }
    }
    let mut names: Vec<String> = Vec::new();
    for (key, value) in crate::service::inherited_env(&scenario.service.inherit) {
        masker.learn_from_env(&key, &value);
        note(&mut names, &key);
    }
    for (key, template) in &scenario.service.env {
        masker.learn_from_env(key, &template.render(bindings));
        note(&mut names, key);
    }
    if let Some(MigrationSpec::Command { env, .. }) = &scenario.migrations {
        for (key, template) in env {
            masker.learn_from_env(key, &template.render(bindings));
        }
    }
    for case in &scenario.failfast.cases {
        for (key, template) in &case.set {
            masker.learn_from_env(key, &template.render(bindings));
        }
    }
    for (key, value) in extra {
        masker.learn_from_env(key, value);
        note(&mut names, key);
    }
    names
}

fn note(names: &mut Vec<String>, key: &str) {
    if !names.iter().any(|n| n == key) {
        names.push(key.to_string());
    }
}
