//! Live progress: the runner emits typed [`Event`]s; a [`Reporter`] turns
//! them into terminal lines. The runner never formats for humans itself.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::outcome::StepStatus;
use crate::verdict::Verdict;

/// Something that happened during a run.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    RunStarted {
        scenario: &'a str,
        path: &'a str,
        steps: usize,
    },
    ProvisionStarted {
        what: &'a str,
    },
    Provisioned {
        name: &'a str,
        version: &'a str,
        endpoint: &'a str,
        took: Duration,
    },
    StepStarted {
        number: u32,
        total: usize,
        title: &'a str,
    },
    /// A sub-action inside a step (a request, a restart, a case).
    StepDetail {
        text: &'a str,
    },
    StepFinished(StepEnd<&'a str>),
    Cleanup {
        took: Duration,
    },
    /// The evidence is written: the SHA-256 of its manifest (which the
    /// report cannot hold, as the manifest hashes the report) and the key
    /// that signed it, if any.
    Sealed {
        manifest_sha256: &'a str,
        signed_by: Option<&'a str>,
    },
    /// Everything finished: the one verdict line.
    Finished {
        scenario: &'a str,
        verdict: Verdict,
        headline: &'a str,
        report: &'a str,
    },
    Kept {
        what: &'a str,
    },
    /// Something the operator should know that does not change the verdict
    /// (an expired or unmatched waiver, a step summary that could not be
    /// written).
    Warning {
        text: &'a str,
    },
}

/// How a step ended, for its progress line. The text is `&str` when sent
/// and `String` while a reporter keeps it for later.
#[derive(Debug, Clone)]
pub struct StepEnd<S> {
    pub number: u32,
    pub total: usize,
    pub title: S,
    pub status: StepStatus,
    pub took: Duration,
    pub summary: S,
}

impl<S> StepEnd<S> {
    /// The same end with its texts passed through `text` (to keep them, or
    /// to lend kept ones).
    pub fn map<'s, T>(&'s self, text: impl Fn(&'s S) -> T) -> StepEnd<T> {
        StepEnd {
            number: self.number,
            total: self.total,
            title: text(&self.title),
            status: self.status,
            took: self.took,
            summary: text(&self.summary),
        }
    }
}

pub trait Reporter: Send + Sync {
    fn event(&mut self, event: Event<'_>);
}

/// Writes progress to stderr and the final verdict line to stdout, with
/// colour when stderr is a terminal and `NO_COLOR` is unset.
pub struct TerminalReporter {
    color: bool,
    quiet: bool,
    /// `[name] ` before each progress line when proofs run in parallel.
    prefix: String,
}

impl TerminalReporter {
    pub fn new(quiet: bool) -> TerminalReporter {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        TerminalReporter {
            color,
            quiet,
            prefix: String::new(),
        }
    }

    /// Prefix every progress line with `[name]`, so parallel proofs can be
    /// told apart.
    pub fn with_prefix(mut self, name: &str) -> TerminalReporter {
        self.prefix = format!("[{name}] ");
        self
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn status(&self, status: StepStatus) -> String {
        match status {
            StepStatus::Pass => self.paint("32;1", "PASS"),
            StepStatus::Fail => self.paint("31;1", "FAIL"),
            StepStatus::NotRun => self.paint("33;1", "NOT RUN"),
            StepStatus::Waived => self.paint("35;1", "WAIVED"),
            StepStatus::NotApplicable => self.paint("36;1", "NOT APPLICABLE"),
        }
    }

    fn verdict(&self, verdict: Verdict) -> String {
        match verdict {
            Verdict::Go => self.paint("32;1", "GO"),
            Verdict::NoGo => self.paint("31;1", "NO-GO"),
            Verdict::Inconclusive => self.paint("33;1", "INCONCLUSIVE"),
        }
    }
}

pub fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

impl TerminalReporter {
    /// "sealed manifest.json sha256 …; signed by key …" (or "unsigned").
    fn sealed(&self, manifest_sha256: &str, signed_by: Option<&str>) -> String {
        format!(
            "  {} manifest.json sha256 {manifest_sha256}; {}",
            self.paint("36", "sealed   "),
            match signed_by {
                Some(keyid) => format!("signed by key {keyid}"),
                None => "unsigned".to_string(),
            }
        )
    }
}

impl Reporter for TerminalReporter {
    fn event(&mut self, event: Event<'_>) {
        let mut err = std::io::stderr().lock();
        let line = match event {
            Event::RunStarted {
                scenario,
                path,
                steps,
            } => format!(
                "{} {scenario} ({path}): {steps} steps",
                self.paint("1", "gonogo")
            ),
            Event::ProvisionStarted { what } => {
                format!("  {} {what}", self.paint("36", "provision"))
            }
            Event::Provisioned {
                name,
                version,
                endpoint,
                took,
            } => format!(
                "  {} {name} {version} at {endpoint}, ready in {}",
                self.paint("36", "ready    "),
                secs(took)
            ),
            Event::StepStarted {
                number,
                total,
                title,
            } => format!("  [{number}/{total}] {title} …"),
            Event::StepDetail { text } => {
                if self.quiet {
                    return;
                }
                format!("        {}", self.paint("2", text))
            }
            Event::StepFinished(end) => format!(
                "  [{}/{}] {} {} in {} — {}",
                end.number,
                end.total,
                end.title,
                self.status(end.status),
                secs(end.took),
                end.summary
            ),
            Event::Cleanup { took } => format!(
                "  {} stopped every process in {}",
                self.paint("36", "cleanup  "),
                secs(took)
            ),
            Event::Sealed {
                manifest_sha256,
                signed_by,
            } => self.sealed(manifest_sha256, signed_by),
            Event::Kept { what } => format!("  {} {what}", self.paint("33", "kept     ")),
            Event::Warning { text } => format!("  {} {text}", self.paint("33;1", "warning  ")),
            Event::Finished {
                scenario,
                verdict,
                headline,
                report,
            } => {
                drop(err);
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "{} {scenario}: {headline}; report: {report}",
                    self.verdict(verdict)
                );
                return;
            }
        };
        let _ = writeln!(err, "{}{line}", self.prefix);
    }
}
