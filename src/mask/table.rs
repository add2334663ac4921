//! Every known secret in every encoding, compiled into Aho-Corasick
//! automata: one pass over a text finds them all, whether to replace them
//! (the masker), to refuse a file (the evidence scan) or to say which
//! credential a service revealed (the hygiene check).

use std::borrow::Cow;

use aho_corasick::AhoCorasick;

use super::encodings::ENCODINGS;

/// A secret the table knows: its description and its value.
#[derive(Clone)]
struct Known {
    label: String,
    value: String,
}

/// What a search found: which secret, in which encoding (never the value).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    /// e.g. `Redis password`, `DB_PASS value`.
    pub secret: String,
    /// e.g. `raw`, `base64` (an entry of the encodings table).
    pub encoding: &'static str,
}

/// Which secret and encoding one pattern stands for.
#[derive(Debug, Clone, Copy)]
struct Origin {
    secret: usize,
    encoding: usize,
}

/// One automaton and the origin of each of its patterns.
#[derive(Debug, Clone)]
struct Automaton {
    matcher: AhoCorasick,
    origins: Vec<Origin>,
}

/// Known secrets and their encodings, searchable in one pass.
#[derive(Clone, Default)]
pub struct SecretTable {
    known: Vec<Known>,
    /// Case-sensitive forms.
    exact: Option<Automaton>,
    /// Forms made of hex digits and fixed syntax, matched in any case.
    any_case: Option<Automaton>,
    /// Length in bytes of the longest pattern.
    longest: usize,
}

impl std::fmt::Debug for SecretTable {
    /// Never the values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretTable")
            .field("secrets", &self.known.len())
            .field("longest", &self.longest)
            .finish()
    }
}

impl SecretTable {
    pub fn new() -> SecretTable {
        SecretTable::default()
    }

    /// A table of `values`, each labelled `a known secret` (for tests and
    /// callers that only scan).
    pub fn of(values: &[&str]) -> SecretTable {
        let mut table = SecretTable::new();
        for value in values {
            table.add("a known secret", value);
        }
        table
    }

    /// Add `value` under `label`; false when it was already known (the
    /// first label stays).
    pub fn add(&mut self, label: &str, value: &str) -> bool {
        if value.is_empty() || self.known.iter().any(|k| k.value == value) {
            return false;
        }
        self.known.push(Known {
            label: label.to_string(),
            value: value.to_string(),
        });
        self.rebuild();
        true
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// How many secrets the table knows.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// Their labels, each once, in the order they were learned.
    pub fn labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = Vec::new();
        for known in &self.known {
            if !labels.contains(&known.label) {
                labels.push(known.label.clone());
            }
        }
        labels
    }

    /// The longest pattern in bytes: a cut closer than this to a secret may
    /// have left part of it behind.
    pub fn longest(&self) -> usize {
        self.longest
    }

    fn rebuild(&mut self) {
        let mut exact: (Vec<String>, Vec<Origin>) = Default::default();
        let mut any_case: (Vec<String>, Vec<Origin>) = Default::default();
        for (secret, known) in self.known.iter().enumerate() {
            for (encoding, entry) in ENCODINGS.iter().enumerate() {
                for form in (entry.forms)(&known.value) {
                    let target = if form.any_case {
                        &mut any_case
                    } else {
                        &mut exact
                    };
                    if form.text.is_empty() || target.0.contains(&form.text) {
                        continue;
                    }
                    target.0.push(form.text);
                    target.1.push(Origin { secret, encoding });
                }
            }
        }
        self.longest = exact
            .0
            .iter()
            .chain(&any_case.0)
            .map(String::len)
            .max()
            .unwrap_or(0);
        self.exact = build(exact, false);
        self.any_case = build(any_case, true);
    }

    /// Every match, as (start, end, origin), overlapping ones included.
    fn matches(&self, text: &str) -> Vec<(usize, usize, Origin)> {
        let mut found = Vec::new();
        for automaton in [&self.exact, &self.any_case].into_iter().flatten() {
            for m in automaton.matcher.find_overlapping_iter(text) {
                found.push((
                    m.start(),
                    m.end(),
                    automaton.origins[m.pattern().as_usize()],
                ));
            }
        }
        found
    }

    /// Replace every occurrence of every form with `mask`; overlapping and
    /// adjacent occurrences become one.
    pub fn replace<'t>(&self, text: &'t str, mask: &str) -> Cow<'t, str> {
        let mut spans: Vec<(usize, usize)> = self
            .matches(text)
            .into_iter()
            .map(|(s, e, _)| (s, e))
            .collect();
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut current: Option<(usize, usize)> = None;
        for (start, end) in spans {
            match current {
                Some((s, e)) if start <= e => current = Some((s, e.max(end))),
                _ => {
                    if let Some((s, e)) = current {
                        out.push_str(&text[copied..s]);
                        out.push_str(mask);
                        copied = e;
                    }
                    current = Some((start, end));
                }
            }
        }
        if let Some((s, e)) = current {
            out.push_str(&text[copied..s]);
            out.push_str(mask);
            copied = e;
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }

    /// Which secrets appear in `text`, in which encodings (each pair once,
    /// sorted).
    pub fn hits(&self, text: &str) -> Vec<Hit> {
        let mut hits: Vec<Hit> = self
            .matches(text)
            .into_iter()
            .map(|(_, _, origin)| Hit {
                secret: self.known[origin.secret].label.clone(),
                encoding: ENCODINGS[origin.encoding].name,
            })
            .collect();
        hits.sort();
        hits.dedup();
        hits
    }

    /// Whether any form of any secret appears in `text`.
    pub fn found_in(&self, text: &str) -> bool {
        [&self.exact, &self.any_case]
            .into_iter()
            .flatten()
            .any(|a| a.matcher.is_match(text))
    }
}

fn build((patterns, origins): (Vec<String>, Vec<Origin>), any_case: bool) -> Option<Automaton> {
    if patterns.is_empty() {
        return None;
    }
    let matcher = AhoCorasick::builder()
        .ascii_case_insensitive(any_case)
        .build(&patterns)
        .expect("a few hundred literal patterns always build");
    Some(Automaton { matcher, origins })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_replaces_every_encoding() {
        let table = SecretTable::of(&["s3cr@t pass"]);
        for text in [
            "s3cr@t pass",
            "s3cr%40t%20pass",
            "%73%33%63%72%40%74%20%70%61%73%73",
            "%73%33%63%72%40%74%20%70%61%73%73".to_uppercase().as_str(),
            "czNjckB0IHBhc3M=",
            "7333637240742070617373",
            "7333637240742070617373".to_uppercase().as_str(),
            "\\u0073\\u0033\\u0063\\u0072\\u0040\\u0074\\u0020\\u0070\\u0061\\u0073\\u0073",
            "&#115;&#51;&#99;&#114;&#64;&#116;&#32;&#112;&#97;&#115;&#115;",
        ] {
            let wrapped = format!("<{text}>");
            assert!(table.found_in(&wrapped), "{text}");
            let masked = table.replace(&wrapped, "***");
            assert!(!table.found_in(&masked), "{text} -> {masked}");
            assert!(masked.starts_with('<') && masked.ends_with('>'), "{masked}");
        }
        let hits = table.hits("x czNjckB0IHBhc3M= and s3cr@t pass");
        assert_eq!(
            hits.iter().map(|h| h.encoding).collect::<Vec<_>>(),
            ["base64", "raw"]
        );
        assert_eq!(hits[0].secret, "a known secret");
    }

    #[test]
    fn overlapping_secrets_are_masked_as_one() {
        let table = SecretTable::of(&["abcdefgh", "efghijkl"]);
        assert_eq!(table.replace("x abcdefghijkl y", "***"), "x *** y");
        assert_eq!(table.replace("nothing here", "***"), "nothing here");
    }
}
