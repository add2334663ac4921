//! What the report's appendix shows of a step's actions: each one as what
//! was run (the command, or a request's `curl` equivalent) and what came
//! back; a response with only the headers that matter (the status line,
//! the content type and any header a check of the step names); and a run
//! of identical consecutive answers folded into one ("the same answer 3
//! times (12–19 ms)").
//!
//! Everything here is cut from [`Masked`] text (or is gonogo's own static
//! text), so it stays masked; the full responses remain in `evidence.json`.

use serde::Serialize;

use crate::mask::Masked;
use crate::outcome::{Action, ActionKind, Check, StepOutcome};

/// Headers every response keeps.
const ALWAYS_KEPT: [&str; 1] = ["content-type"];

/// Up to this many folded answers, each duration is listed; beyond it,
/// their range.
const LISTED_DURATIONS: usize = 3;

/// One action, or a run of identical consecutive ones, as the appendix
/// shows it: a line naming it, what was run (`invocation`) and what came
/// back (`response` lines, then `one_line` or `output`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shown {
    /// The labels of the folded actions, each once, in order.
    pub labels: Vec<Masked>,
    pub kind: ActionKind,
    /// `EXIT_CODE=1`, or `HTTP 503` for a request whose response is not
    /// shown line by line; otherwise empty.
    pub outcome: String,
    /// How many identical answers this stands for.
    pub count: usize,
    /// `81 ms`, `4 ms, 3 ms` or `12–19 ms`.
    pub timing: String,
    /// What a human would type to repeat it (a request's `curl`).
    pub invocation: Masked,
    /// A response's status line and the headers that matter.
    pub response: Vec<String>,
    /// The output, or a response's body, when it is one line (a process's
    /// `answered HTTP after 81 ms`): shown inline.
    pub one_line: Option<String>,
    /// The output, or a response's body, otherwise; with a marker where
    /// lines were left out.
    pub output: Option<String>,
    /// Header names left out of the response, e.g. `content-length, date`.
    pub headers_left_out: Vec<String>,
    /// Bytes kept when the output was cut.
    pub kept_bytes: Option<u64>,
}

/// The actions of `step`, identical consecutive answers folded.
pub fn shown(step: &StepOutcome) -> Vec<Shown> {
    let mut out: Vec<(Shown, Vec<u64>)> = Vec::new();
    for action in &step.actions {
        let one = show(action, &step.checks);
        match out.last_mut() {
            Some((last, durations)) if same_answer(last, &one) => {
                if !last.labels.contains(&one.labels[0]) {
                    last.labels.push(one.labels[0].clone());
                }
                last.count += 1;
                durations.push(action.duration_ms);
            }
            _ => out.push((one, vec![action.duration_ms])),
        }
    }
    out.into_iter()
        .map(|(mut shown, durations)| {
            shown.timing = timing(&durations);
            shown
        })
        .collect()
}

/// Whether `b` repeats `a`'s answer: the same request and the same shown
/// response (requests only; commands and processes are always listed).
fn same_answer(a: &Shown, b: &Shown) -> bool {
    a.kind == ActionKind::Request
        && b.kind == ActionKind::Request
        && a.outcome == b.outcome
        && a.invocation == b.invocation
        && a.response == b.response
        && a.one_line == b.one_line
        && a.output == b.output
        && a.kept_bytes == b.kept_bytes
}

fn show(action: &Action, checks: &[Check]) -> Shown {
    let head = action.output.head.as_str();
    let is_response = action.kind == ActionKind::Request && head.starts_with("HTTP/");
    let (response, headers_left_out, body) = if is_response {
        split_response(head, checks)
    } else {
        (Vec::new(), Vec::new(), head.to_string())
    };
    let outcome = match (action.exit_code, action.http_status) {
        (Some(code), _) => format!("EXIT_CODE={code}"),
        (None, Some(status)) if !is_response => format!("HTTP {status}"),
        _ => String::new(),
    };
    let mut whole = body;
    if let Some(tail) = &action.output.tail {
        match action.output.omitted_lines {
            0 => whole.push_str("\n… bytes omitted …\n"),
            n => whole.push_str(&format!("\n… {n} lines omitted …\n")),
        }
        whole.push_str(tail.as_str());
    }
    let (one_line, output) = if whole.is_empty() {
        let nothing = if is_response {
            "(empty body)"
        } else {
            "(no output)"
        };
        (Some(nothing.to_string()), None)
    } else if !is_response && !whole.contains('\n') {
        (Some(whole), None)
    } else {
        (None, Some(whole))
    };
    Shown {
        labels: vec![action.label.clone()],
        kind: action.kind,
        outcome,
        count: 1,
        timing: String::new(),
        invocation: action.invocation.clone(),
        response,
        one_line,
        output,
        headers_left_out,
        kept_bytes: action.output.kept_bytes.filter(|_| action.output.truncated),
    }
}

/// A response's first lines split into the status line and the headers
/// that matter, the names of the headers left out, and the body.
fn split_response(head: &str, checks: &[Check]) -> (Vec<String>, Vec<String>, String) {
    let (top, body) = match head.split_once("\n\n") {
        Some((top, body)) => (top, body),
        // Headers alone, or cut before the body began.
        None => (head, ""),
    };
    let mut lines = top.split('\n');
    let mut response: Vec<String> = lines.next().map(str::to_string).into_iter().collect();
    let mut left_out = Vec::new();
    for line in lines {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if matters(&name, checks) {
            response.push(line.to_string());
        } else {
            left_out.push(name);
        }
    }
    (response, left_out, body.to_string())
}

/// Whether a response header is worth showing: always for the content
/// type, otherwise when a check of the step names it.
fn matters(name: &str, checks: &[Check]) -> bool {
    !name.is_empty()
        && (ALWAYS_KEPT.contains(&name)
            || checks
                .iter()
                .any(|c| names(c.expected.as_str(), name) || names(c.observed.as_str(), name)))
}

/// Whether `text` mentions the header `name` as a word of its own.
fn names(text: &str, name: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-');
    lower.match_indices(name).any(|(at, _)| {
        !word(lower[..at].chars().next_back()) && !word(lower[at + name.len()..].chars().next())
    })
}

/// `81 ms`; `4 ms, 3 ms`; `12–19 ms`.
fn timing(durations: &[u64]) -> String {
    if durations.len() == 1 {
        return ms(durations[0]);
    }
    if durations.len() <= LISTED_DURATIONS {
        return durations
            .iter()
            .map(|&d| ms(d))
            .collect::<Vec<_>>()
            .join(", ");
    }
    let min = durations.iter().copied().min().unwrap_or(0);
    let max = durations.iter().copied().max().unwrap_or(0);
    if max < 1000 {
        format!("{min}–{max} ms")
    } else {
        format!("{}–{}", ms(min), ms(max))
    }
}

/// Milliseconds as a short human duration (as the template's `ms` filter).
pub fn ms(value: u64) -> String {
    if value < 1000 {
        format!("{value} ms")
    } else {
        format!("{:.2} s", value as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::Masker;
    use crate::steps::StepRecorder;

    fn response(status: u16, body: &str, date: &str) -> crate::http::HttpExchange {
        crate::http::HttpExchange {
            url: "http://127.0.0.1:1234/ready".into(),
            status: Some(status),
            version: "HTTP/1.1".into(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("content-length".into(), body.len().to_string()),
                ("retry-after".into(), "5".into()),
                ("date".into(), date.into()),
            ],
            body: body.into(),
            body_truncated: false,
            elapsed: std::time::Duration::from_millis(u64::from(status) / 10),
            timeout: std::time::Duration::from_secs(5),
            error: None,
            timed_out: false,
        }
    }

    #[test]
    fn identical_answers_fold_and_headers_are_trimmed() {
        let masker = Masker::new();
        let mut step = StepRecorder::new(
            &masker,
            &crate::plan::PlannedStep::new("x", "X", "x holds", "nothing"),
        );
        step.check("HTTP 503", "HTTP 503", true);
        for n in 0..5 {
            let mut r = response(503, "{\"status\":\"fail\"}", &format!("Mon, 0{n} GMT"));
            r.elapsed = std::time::Duration::from_millis(12 + n);
            step.request(
                if n < 2 {
                    "GET /ready"
                } else {
                    "GET /ready again"
                },
                &r,
            );
        }
        step.request("GET /ready after", &response(200, "", "Mon"));
        let shown = shown(&step.finish());
        assert_eq!(shown.len(), 2, "{shown:#?}");
        let folded = &shown[0];
        assert_eq!(folded.count, 5);
        assert_eq!(folded.timing, "12–16 ms");
        assert_eq!(
            folded.labels.iter().map(Masked::as_str).collect::<Vec<_>>(),
            ["GET /ready", "GET /ready again"]
        );
        assert_eq!(
            folded.invocation.as_str(),
            "curl -sS -i --max-time 5 http://127.0.0.1:1234/ready"
        );
        assert_eq!(
            folded.response,
            [
                "HTTP/1.1 503 Service Unavailable",
                "content-type: application/json"
            ]
        );
        assert_eq!(folded.output.as_deref(), Some("{\"status\":\"fail\"}"));
        assert_eq!(folded.outcome, "");
        assert_eq!(
            folded.headers_left_out,
            ["content-length", "retry-after", "date"]
        );
        assert_eq!(shown[1].count, 1);
        assert_eq!(shown[1].timing, "20 ms");
        assert_eq!(shown[1].one_line.as_deref(), Some("(empty body)"));
    }

    #[test]
    fn a_header_a_check_names_is_kept() {
        let masker = Masker::new();
        let mut step = StepRecorder::new(
            &masker,
            &crate::plan::PlannedStep::new("x", "X", "x holds", "nothing"),
        );
        step.check("Retry-After header is set", "retry-after: 5", true);
        step.request("GET /ready", &response(503, "{}", "Mon"));
        let shown = shown(&step.finish());
        assert!(
            shown[0].response.contains(&"retry-after: 5".to_string()),
            "{shown:#?}"
        );
        assert_eq!(shown[0].headers_left_out, ["content-length", "date"]);
        assert!(!names("update is due", "date"));
        assert!(names("the Date header", "date"));
    }

    #[test]
    fn long_output_keeps_both_ends_with_a_marker_and_commands_never_fold() {
        let masker = Masker::new();
        let mut step = StepRecorder::new(
            &masker,
            &crate::plan::PlannedStep::new("x", "X", "x holds", "nothing"),
        );
        let long: String = (1..=30).map(|n| format!("line {n}\n")).collect();
        step.command("migrate", "tool up", Some(0), &long, Default::default());
        step.command("migrate", "tool up", Some(0), &long, Default::default());
        step.process(
            "start",
            "svc",
            None,
            "answered HTTP after 3 ms",
            Default::default(),
        );
        step.check("ok", "ok", true);
        let shown = shown(&step.finish());
        assert_eq!(shown.len(), 3);
        let text = shown[0].output.as_deref().unwrap();
        assert!(text.starts_with("line 1\n"), "{text}");
        assert!(
            text.contains("line 10\n… 10 lines omitted …\nline 21\n"),
            "{text}"
        );
        assert!(text.ends_with("line 30"), "{text}");
        assert_eq!(shown[0].outcome, "EXIT_CODE=0");
        assert_eq!(
            shown[2].one_line.as_deref(),
            Some("answered HTTP after 3 ms")
        );
        assert_eq!(shown[2].output, None);
    }

    #[test]
    fn few_durations_are_listed_many_are_a_range() {
        assert_eq!(timing(&[4, 3]), "4 ms, 3 ms");
        assert_eq!(timing(&[900, 1200, 1500, 1000]), "900 ms–1.50 s");
        assert_eq!(timing(&[12, 19, 15, 13]), "12–19 ms");
    }
}
