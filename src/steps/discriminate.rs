//! Checks about failure semantics (a body names a dependency, a JSON
//! pointer has a value) that could have failed: each is judged on the
//! failing answer and again on the healthy answer recorded before the
//! fault (or the ready gate's). One that holds on both proved nothing, and
//! the recorder reports it as not discriminating.

use super::StepRecorder;
use super::instance::pointer_text;
use crate::deps::Dependency;
use crate::http::HttpExchange;
use crate::scenario::BodyExpectation;

/// Characters quoted either side of a name found in a text body.
const QUOTE_AROUND: usize = 24;

/// Where `body` names one of `names` (case-insensitive), with a short
/// quote of it. A JSON body names a dependency in a string value: a key is
/// the body's structure (`{"redis": "ok"}` says nothing failed), which a
/// pointer expectation checks instead. Any other body may name it anywhere.
pub fn named_in(body: &str, names: &[String]) -> Option<(String, String)> {
    let lower: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(json) => {
            let mut found = None;
            walk(&json, &mut String::new(), &mut |pointer, text| {
                if found.is_some() {
                    return;
                }
                let text_lower = text.to_lowercase();
                if let Some(i) = lower.iter().position(|n| text_lower.contains(n)) {
                    found = Some((names[i].clone(), format!("{pointer} = {}", short(text))));
                }
            });
            found
        }
        Err(_) => {
            let body_lower = body.to_lowercase();
            lower.iter().enumerate().find_map(|(i, n)| {
                let at = body_lower.find(n.as_str())?;
                Some((
                    names[i].clone(),
                    quote_around(body, &body_lower, at, n.len()),
                ))
            })
        }
    }
}

/// Every string value of `json` with its JSON pointer.
fn walk(json: &serde_json::Value, pointer: &mut String, visit: &mut dyn FnMut(&str, &str)) {
    match json {
        serde_json::Value::String(text) => visit(pointer, text),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                walk(item, pointer, visit);
                pointer.truncate(len);
            }
        }
        serde_json::Value::Object(members) => {
            for (key, value) in members {
                let len = pointer.len();
                let escaped = key.replace('~', "~0").replace('/', "~1");
                pointer.push_str(&format!("/{escaped}"));
                walk(value, pointer, visit);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

/// A JSON string, cut to a few dozen characters.
fn short(text: &str) -> String {
    let cut: String = text.chars().take(2 * QUOTE_AROUND).collect();
    if cut.len() < text.len() {
        format!("\"{cut}…\"")
    } else {
        format!("\"{cut}\"")
    }
}

/// The text around a match at byte `at` of `lower` (the lower-cased
/// `body`), from `body` when lower-casing kept the byte offsets.
fn quote_around(body: &str, lower: &str, at: usize, len: usize) -> String {
    let source = if body.len() == lower.len() {
        body
    } else {
        lower
    };
    let start = source[..at]
        .char_indices()
        .rev()
        .nth(QUOTE_AROUND - 1)
        .map_or(0, |(i, _)| i);
    let end = source[at + len..]
        .char_indices()
        .nth(QUOTE_AROUND)
        .map_or(source.len(), |(i, _)| at + len + i);
    let quote = source[start..end].replace(['\n', '\r'], " ");
    format!(
        "{}{quote}{}",
        if start > 0 { "…" } else { "" },
        if end < source.len() { "…" } else { "" }
    )
}

/// What in the healthy answer satisfies "the body names one of `names`",
/// if anything does.
pub fn names_on_healthy(healthy: Option<&HttpExchange>, names: &[String]) -> Option<String> {
    let healthy = healthy?;
    let (name, quote) = named_in(&healthy.body, names)?;
    Some(format!(
        "the healthy {} body names {name} too: {quote}",
        status_text(healthy)
    ))
}

/// What in the healthy answer satisfies `expectation`, if it holds there.
pub fn pointer_on_healthy(
    healthy: Option<&HttpExchange>,
    expectation: &BodyExpectation,
) -> Option<String> {
    let healthy = healthy?;
    let (value, shown) = pointer_text(healthy, &expectation.pointer);
    (value.as_ref() == Some(&expectation.equals))
        .then(|| format!("the healthy {} body has {shown} too", status_text(healthy)))
}

fn status_text(exchange: &HttpExchange) -> String {
    exchange
        .status
        .map_or_else(|| "ready".into(), |s| format!("HTTP {s}"))
}

/// "The body names one of `names`", judged on `exchange` and on `healthy`;
/// gives whether it counts as passed.
pub fn names_check(
    step: &mut StepRecorder<'_>,
    expected: String,
    exchange: &HttpExchange,
    healthy: Option<&HttpExchange>,
    names: &[String],
) -> bool {
    let named = named_in(&exchange.body, names);
    let observed = match (&named, names) {
        (Some((name, _)), _) => format!("body mentions {name}"),
        (None, [one]) => format!("body does not mention {one}"),
        (None, _) => "body names none of them".to_string(),
    };
    step.discriminating_check(
        expected,
        observed,
        named.is_some(),
        names_on_healthy(healthy, names),
    )
}

/// Each pointer expectation, judged on `exchange` and on `healthy`; gives
/// how many count as passed.
pub fn pointer_checks(
    step: &mut StepRecorder<'_>,
    exchange: &HttpExchange,
    healthy: Option<&HttpExchange>,
    expect: &[BodyExpectation],
) -> usize {
    expect
        .iter()
        .filter(|e| {
            let (value, shown) = pointer_text(exchange, &e.pointer);
            step.discriminating_check(
                format!("{} = {}", e.pointer, e.equals),
                shown,
                value.as_ref() == Some(&e.equals),
                pointer_on_healthy(healthy, e),
            )
        })
        .count()
}

/// What a 503 says about the failure of `target`: it names the dependency,
/// and it meets the scenario's `[faults] expect` for it, each judged on
/// the healthy answer too. When none of them discriminates, the step
/// stands on the status change 200 → 503 alone, and its summary says so.
pub fn failure_semantics(
    step: &mut StepRecorder<'_>,
    exchange: &HttpExchange,
    healthy: Option<&HttpExchange>,
    target: &Dependency,
    expect: &[BodyExpectation],
) {
    let named = names_check(
        step,
        format!("503 body names {}", target.names.join(" or ")),
        exchange,
        healthy,
        &target.names,
    );
    let pointers = pointer_checks(step, exchange, healthy, expect);
    if !named && pointers == 0 {
        step.basis("the step stands on the status change 200 → 503 alone");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_json_key_is_not_a_name_but_a_value_is() {
        let healthy = r#"{"status":"ok","dependencies":{"redis":"connected"}}"#;
        assert_eq!(named_in(healthy, &names(&["Redis"])), None);
        let failed =
            r#"{"status":"fail","dependency":"Redis","dependencies":{"redis":"unreachable"}}"#;
        assert_eq!(
            named_in(failed, &names(&["Redis"])),
            Some(("Redis".into(), "/dependency = \"Redis\"".into()))
        );
        let listed = r#"{"status":"ok","checked":["Postgres","Redis"]}"#;
        assert_eq!(
            named_in(listed, &names(&["Postgres", "database"])),
            Some(("Postgres".into(), "/checked/0 = \"Postgres\"".into()))
        );
    }

    #[test]
    fn a_text_body_names_anywhere_with_a_quote_around() {
        let (name, quote) = named_in("ok: postgres up, redis up", &names(&["Redis"])).unwrap();
        assert_eq!(name, "Redis");
        assert!(quote.contains("redis up"), "{quote}");
        assert_eq!(named_in("all good", &names(&["Redis"])), None);
    }
}
