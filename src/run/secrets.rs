//! Learning one run's secrets from every source, before anything runs:
//! gonogo's generated passwords (by the runner), the service's variables
//! (passed through, `[service.env]`, `[migrations] env`, fail-fast `set`,
//! `--env`), `[masking] extra_env` and gonogo's own secret variables.

use crate::mask::Masker;
use crate::scenario::placeholders::Bindings;
use crate::scenario::{MigrationSpec, Scenario};

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
        let own_secret = key.starts_with("GONOGO_") && crate::mask::names::looks_secret(&key);
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
