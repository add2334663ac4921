//! Property: a secret learned through the name rule never reaches any
//! artifact, in any encoding, whatever it contains and wherever the
//! service put it (check observations, responses, headers, logs, process
//! output, the metadata, the fault timeline). Evidence is built through
//! the real recorder and masker and rendered by the real renderers: every
//! artifact of the bundle, and the CI step summary. The forms are computed
//! here independently of `mask::encodings`.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use proptest::prelude::*;

use super::Evidence;
use super::bundle::{self, BundleOptions};
use super::summary::{self, SummaryLinks};
use crate::http::HttpExchange;
use crate::mask::Masker;
use crate::outcome::{FaultTimeline, TimelineEvent};
use crate::steps::StepRecorder;

/// Characters secrets are made of: the ones that break naive masking.
const ALPHABET: &[char] = &[
    'a', 'Z', 'q', '7', '0', '@', ':', '%', '/', '#', '"', '\\', '&', '<', ' ', '+', '=', 'é',
];

fn secret() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(ALPHABET), 8..28)
        .prop_map(|chars| chars.into_iter().collect::<String>())
        .prop_filter("a value the rules treat as a secret", |s| {
            crate::mask::names::too_ordinary(s).is_none()
        })
}

/// Ways the service might write `secret`, as (name, text) — each with a
/// prefix of 0, 1 or 2 bytes so base64 lands at every alignment.
fn written_forms(secret: &str) -> Vec<(String, String)> {
    let bytes = secret.as_bytes();
    let mut forms = vec![
        ("raw".to_string(), secret.to_string()),
        (
            "percent".into(),
            bytes.iter().map(|b| format!("%{b:02X}")).collect(),
        ),
        (
            "percent-lower".into(),
            bytes.iter().map(|b| format!("%{b:02x}")).collect(),
        ),
        (
            "hex".into(),
            bytes.iter().map(|b| format!("{b:02x}")).collect(),
        ),
        (
            "HEX".into(),
            bytes.iter().map(|b| format!("{b:02X}")).collect(),
        ),
        ("json".into(), serde_json::to_string(secret).unwrap()),
        (
            "json-u".into(),
            secret
                .encode_utf16()
                .map(|u| format!("\\u{u:04X}"))
                .collect(),
        ),
        (
            "html-dec".into(),
            secret.chars().map(|c| format!("&#{};", c as u32)).collect(),
        ),
        (
            "html-hex".into(),
            secret
                .chars()
                .map(|c| format!("&#x{:X};", c as u32))
                .collect(),
        ),
        (
            "html-named".into(),
            secret
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;"),
        ),
    ];
    for prefix in ["", "u", "us"] {
        let data = [prefix.as_bytes(), bytes].concat();
        forms.push((format!("base64+{}", prefix.len()), STANDARD.encode(&data)));
        forms.push((
            format!("base64url+{}", prefix.len()),
            URL_SAFE_NO_PAD.encode(&data),
        ));
    }
    forms
}

/// What must never appear in an artifact for `secret`: the secret, its
/// full single-encoding forms, and the part of each base64 encoding that
/// only the secret's bits decide.
fn betrayals(secret: &str) -> Vec<(String, String)> {
    let bytes = secret.as_bytes();
    let mut out: Vec<(String, String)> = written_forms(secret)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("base64"))
        .collect();
    for prefix in 0..3usize {
        let data = [vec![b'u'; prefix], bytes.to_vec()].concat();
        let start = (8 * prefix).div_ceil(6);
        let end = 8 * data.len() / 6;
        for (name, encoded) in [
            ("base64", STANDARD.encode(&data)),
            ("base64url", URL_SAFE_NO_PAD.encode(&data)),
        ] {
            out.push((
                format!("{name} at {prefix}"),
                encoded[start..end].to_string(),
            ));
        }
    }
    out
}

/// A step that saw every form everywhere the service can put text.
fn evidence_with(masker: &Masker, forms: &[(String, String)]) -> Evidence {
    let all: String = forms
        .iter()
        .map(|(name, text)| format!("{name}: <{text}>\n"))
        .collect();
    let mut step = StepRecorder::new(
        masker,
        &crate::plan::PlannedStep {
            number: 1,
            ..crate::plan::PlannedStep::new("ready-gate", "Ready gate", "", "")
        },
    );
    let exchange = HttpExchange {
        url: "http://127.0.0.1:1/ready".into(),
        status: Some(200),
        version: "HTTP/1.1".into(),
        headers: forms
            .iter()
            .map(|(name, text)| (format!("x-{name}"), text.clone()))
            .collect(),
        body: all.clone(),
        body_truncated: false,
        elapsed: std::time::Duration::from_millis(3),
        timeout: std::time::Duration::from_secs(5),
        error: None,
        timed_out: false,
    };
    step.request("GET /ready", &exchange);
    for (name, text) in forms {
        step.check(
            format!("{name} expected"),
            format!("observed {text}|x"),
            true,
        );
    }
    step.process(
        "start service",
        "env DB_PASS=x server",
        Some(1),
        &all,
        Default::default(),
    );
    step.log(&all);
    let mut evidence = super::sample::evidence();
    evidence.steps = vec![step.finish()];
    evidence.metadata.command_line = masker.mask(&format!("gonogo run --env X={all}"));
    evidence.metadata.service_version = Some(masker.mask(&all).truncated(200));
    evidence.timelines = vec![FaultTimeline {
        dependency: "Redis".into(),
        events: vec![TimelineEvent {
            at_utc: "2026-03-01T10:00:00Z".into(),
            offset_ms: 0,
            event: "first 503".into(),
            detail: masker.mask(&all),
        }],
    }];
    evidence
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn no_encoding_of_a_secret_reaches_any_artifact(secret in secret()) {
        let mut masker = Masker::new();
        masker.learn_from_env("DB_PASS", &secret);
        prop_assert_eq!(masker.table().len(), 1);
        let evidence = evidence_with(&masker, &written_forms(&secret));
        let mut sinks: Vec<(String, String)> = bundle::artifacts(&evidence, &BundleOptions::default())
            .unwrap()
            .into_iter()
            .map(|a| (a.name, String::from_utf8(a.contents).unwrap()))
            .collect();
        sinks.push(("step summary".into(), summary::render(&evidence, &SummaryLinks::default())));
        prop_assert_eq!(sinks.len(), 6);
        for (sink, text) in &sinks {
            for (form, betrayal) in betrayals(&secret) {
                prop_assert!(
                    !text.contains(&betrayal),
                    "{} holds the secret {:?} ({})", sink, secret, form
                );
            }
            prop_assert!(!masker.table().found_in(text), "the evidence scan would refuse {}", sink);
        }
        let hygiene = evidence.steps[0].checks.last().unwrap();
        prop_assert!(!hygiene.passed, "the step saw the secret: {:?}", hygiene);
    }
}
