//! Judging the manifest's probes with the kubelet's own semantics, against
//! what the proof observed. Pure functions: a [`Container`] (from the
//! manifest), the [`ServingPort`] and [`Observations`] in; a
//! [`Conformance`] (checks with expected/observed/passed, what could not be
//! judged and why, and a table per probe) out.
//!
//! The kubelet counts a probe as a success when it gets a status from 200
//! to 399 within `timeoutSeconds`; `failureThreshold` failures in a row act
//! (NotReady for readiness, a restart for liveness and startup), and
//! `successThreshold` successes in a row make a pod Ready again. The
//! proof's faults are short, so the judges do not wait for a threshold: a
//! failing answer is the fact, and when the kubelet would act follows from
//! the manifest's numbers.

use std::collections::BTreeMap;
use std::time::Duration;

use super::manifest::{Container, Handler, PortRef, PreStop, Probe, ProbeKind, ServingPort};
use super::observe::{Answer, ColdStart, FaultWindow, Observations, Shutdown};

/// Which rule a check applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// The probe's port maps to the port the service serves on.
    ProbePort,
    /// The probe's path answers success while healthy.
    ProbeAnswers,
    /// A readiness probe exists and asks the proven ready path.
    ReadinessPath,
    /// During a fault the readiness probe fails: the pod turns NotReady.
    ReadinessDuringFault,
    /// After the fault the pod is Ready again in time.
    ReadinessRecovery,
    /// Liveness never fails because a dependency is down.
    LivenessDuringFault,
    /// The cold start fits the startup (or liveness) budget.
    StartupBudget,
    /// SIGTERM to exit plus preStop fits the grace period.
    ShutdownGrace,
    /// `timeoutSeconds` is not shorter than the healthy p99.
    ProbeTimeout,
}

impl Rule {
    /// Stable id, e.g. `liveness-during-fault`.
    pub fn id(self) -> &'static str {
        match self {
            Rule::ProbePort => "probe-port",
            Rule::ProbeAnswers => "probe-answers",
            Rule::ReadinessPath => "readiness-path",
            Rule::ReadinessDuringFault => "readiness-during-fault",
            Rule::ReadinessRecovery => "readiness-recovery",
            Rule::LivenessDuringFault => "liveness-during-fault",
            Rule::StartupBudget => "startup-budget",
            Rule::ShutdownGrace => "shutdown-grace",
            Rule::ProbeTimeout => "probe-timeout",
        }
    }
}

/// One check: what the manifest implies, what was observed, and whether
/// they agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub rule: Rule,
    pub probe: Option<ProbeKind>,
    pub expected: String,
    pub observed: String,
    pub passed: bool,
}

/// A rule that could not be applied, and why (never a PASS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unjudged {
    pub rule: Rule,
    pub probe: Option<ProbeKind>,
    pub reason: String,
}

/// One row of a probe table: a setting, its manifest value, what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRow {
    pub setting: String,
    pub manifest: String,
    pub observed: String,
}

/// The manifest's settings for one probe (or the pod) against what was
/// observed, for a renderer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTable {
    pub title: String,
    pub rows: Vec<TableRow>,
}

/// Everything the judges found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conformance {
    pub checks: Vec<Judged>,
    pub unjudged: Vec<Unjudged>,
    pub tables: Vec<ProbeTable>,
}

impl Conformance {
    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Judged> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// Whether the rule was checked and failed (for tests and summaries).
    pub fn failed(&self, rule: Rule) -> bool {
        self.failures().any(|c| c.rule == rule)
    }
}

/// `4 ms`, `1.25 s`, `30 s`.
pub fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{} ms", d.as_millis());
    }
    let text = format!("{:.2}", d.as_secs_f64());
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} s")
}

/// Collects checks, reasons and table notes while judging.
struct Judge<'a> {
    container: &'a Container,
    serving: &'a ServingPort,
    obs: &'a Observations,
    out: Conformance,
    /// Observed text per (probe, setting) for the tables.
    notes: BTreeMap<(ProbeKind, &'static str), Vec<String>>,
}

impl Judge<'_> {
    fn check(
        &mut self,
        rule: Rule,
        probe: Option<ProbeKind>,
        expected: String,
        observed: String,
        passed: bool,
    ) {
        self.out.checks.push(Judged {
            rule,
            probe,
            expected,
            observed,
            passed,
        });
    }

    fn unjudged(&mut self, rule: Rule, probe: Option<ProbeKind>, reason: String) {
        self.out.unjudged.push(Unjudged {
            rule,
            probe,
            reason,
        });
    }

    fn note(&mut self, kind: ProbeKind, setting: &'static str, text: String) {
        self.notes.entry((kind, setting)).or_default().push(text);
    }
}

/// Judge every probe of `container` against `obs`.
pub fn judge(container: &Container, serving: &ServingPort, obs: &Observations) -> Conformance {
    let mut j = Judge {
        container,
        serving,
        obs,
        out: Conformance::default(),
        notes: BTreeMap::new(),
    };
    readiness_path(&mut j);
    for kind in ProbeKind::ALL {
        let Some(probe) = container.probe(kind) else {
            continue;
        };
        let Some(path) = http_target(&mut j, probe) else {
            continue;
        };
        probe_answers(&mut j, probe, &path);
        probe_timeout(&mut j, probe, &path);
        for window in &obs.faults {
            match kind {
                ProbeKind::Readiness => {
                    readiness_during_fault(&mut j, probe, &path, window);
                    readiness_recovery(&mut j, probe, &path, window);
                }
                ProbeKind::Liveness => liveness_during_fault(&mut j, probe, &path, window),
                ProbeKind::Startup => {}
            }
        }
        let fault_rule = match kind {
            ProbeKind::Readiness => Some(Rule::ReadinessDuringFault),
            ProbeKind::Liveness => Some(Rule::LivenessDuringFault),
            ProbeKind::Startup => None,
        };
        if let (true, Some(rule)) = (obs.faults.is_empty(), fault_rule) {
            j.unjudged(rule, Some(kind), "no fault was observed".into());
        }
    }
    startup_budget(&mut j);
    shutdown_grace(&mut j);
    tables(&mut j);
    j.out
}

/// The path gonogo can judge for an HTTP probe, after checking its port;
/// `None` (with the reason recorded) when the probe cannot be judged.
fn http_target(j: &mut Judge<'_>, probe: &Probe) -> Option<String> {
    let kind = probe.kind;
    let port = match &probe.handler {
        Handler::HttpGet { port, .. } | Handler::TcpSocket { port } => port.clone(),
        Handler::Grpc { port, .. } => PortRef::Number(*port),
        Handler::Exec { command } => {
            j.unjudged(
                Rule::ProbeAnswers,
                Some(kind),
                format!(
                    "{kind} runs exec `{}` inside the container; gonogo cannot judge an exec probe",
                    command.join(" ")
                ),
            );
            j.note(kind, "handler", "not judged (exec)".into());
            return None;
        }
    };
    if !port_check(j, probe, &port) {
        return None;
    }
    let reason = match &probe.handler {
        Handler::HttpGet { scheme, .. } if scheme != "HTTP" => Some(format!(
            "{kind} uses scheme {scheme}; gonogo proved the service over plain HTTP"
        )),
        Handler::HttpGet { host: Some(h), .. } => Some(format!(
            "{kind} asks host {h}, not the pod; gonogo cannot judge another host"
        )),
        Handler::HttpGet { .. } => None,
        Handler::TcpSocket { .. } => Some(format!(
            "{kind} is a tcpSocket probe: it passes whenever the port accepts connections; gonogo judges HTTP answers, not bare connects"
        )),
        Handler::Grpc { .. } => Some(format!(
            "{kind} is a grpc probe; gonogo speaks HTTP to the service and cannot judge it"
        )),
        Handler::Exec { .. } => None,
    };
    if let Some(reason) = reason {
        j.unjudged(Rule::ProbeAnswers, Some(kind), reason);
        j.note(kind, "handler", "not judged".into());
        return None;
    }
    probe.http_path().map(path_only)
}

/// The path without its query string, as the service routes it.
fn path_only(path: &str) -> String {
    path.split('?').next().unwrap_or(path).to_string()
}

/// The probe's port must be the port the service serves on.
fn port_check(j: &mut Judge<'_>, probe: &Probe, port: &PortRef) -> bool {
    let kind = probe.kind;
    let serving = j.serving.to_string();
    let expected = format!(
        "{kind} port {port} is the port the service serves on ({serving}), which gonogo gives the service"
    );
    let (observed, passed) = match port {
        PortRef::Name(name) => match j.container.named_port(name) {
            Some(n) if n == j.serving.number => (format!("`{name}` is containerPort {n}"), true),
            Some(n) => (
                format!(
                    "`{name}` is containerPort {n}, not {serving}: the service was never proven to answer there"
                ),
                false,
            ),
            None => (
                format!(
                    "container `{}` has no port named `{name}` (ports: {}): the kubelet cannot run this probe",
                    j.container.name,
                    j.container.ports_text()
                ),
                false,
            ),
        },
        PortRef::Number(n) if *n == j.serving.number => (format!("port {n}"), true),
        PortRef::Number(n) => (
            format!("port {n}, not {serving}: the service was never proven to answer there"),
            false,
        ),
    };
    j.note(kind, "handler", observed.clone());
    j.check(Rule::ProbePort, Some(kind), expected, observed, passed);
    passed
}

/// The probe's path answers success while every dependency is up.
fn probe_answers(j: &mut Judge<'_>, probe: &Probe, path: &str) {
    let kind = probe.kind;
    let Some(answers) = j.obs.healthy.get(path).filter(|a| !a.is_empty()) else {
        j.unjudged(
            Rule::ProbeAnswers,
            Some(kind),
            format!("gonogo did not ask GET {path} while healthy"),
        );
        return;
    };
    let wrong: Vec<&Answer> = answers
        .iter()
        .filter(|a| !matches!(a.reply, super::observe::Reply::Status(s) if (200..400).contains(&s)))
        .collect();
    let timeout = probe.timeout_seconds.seconds();
    let observed = match wrong.first() {
        None if answers.len() == 1 => {
            format!("GET {path} answered {}", answers[0].kubelet_view(timeout))
        }
        None => format!(
            "GET {path} answered {} (and {} more successes)",
            answers[0].kubelet_view(timeout),
            answers.len() - 1
        ),
        Some(a) => format!(
            "GET {path} answered {} while healthy: the kubelet would count every {kind} as failed",
            a.kubelet_view(timeout)
        ),
    };
    j.note(kind, "handler", observed.clone());
    j.check(
        Rule::ProbeAnswers,
        Some(kind),
        format!("GET {path} answers 200-399 while every dependency is up"),
        observed,
        wrong.is_empty(),
    );
}

/// `timeoutSeconds` must not be shorter than the healthy p99 of the path.
fn probe_timeout(j: &mut Judge<'_>, probe: &Probe, path: &str) {
    let kind = probe.kind;
    let timeout = probe.timeout_seconds.seconds();
    let figure = match j.obs.healthy_p99.get(path) {
        Some(p99) => Some((*p99, "p99")),
        None => j
            .obs
            .healthy
            .get(path)
            .and_then(|a| a.iter().map(|a| a.latency).max())
            .map(|max| (max, "slowest answer")),
    };
    let Some((latency, what)) = figure else {
        j.unjudged(
            Rule::ProbeTimeout,
            Some(kind),
            format!("no healthy latency was measured for GET {path}"),
        );
        return;
    };
    let passed = latency <= timeout;
    let observed = if passed {
        format!("healthy {what} of GET {path}: {}", secs(latency))
    } else {
        format!(
            "healthy {what} of GET {path}: {}, longer than timeoutSeconds {}: the {kind} would time out on a healthy pod",
            secs(latency),
            timeout.as_secs()
        )
    };
    j.note(
        kind,
        "timeoutSeconds",
        format!("healthy {what} {}", secs(latency)),
    );
    j.check(
        Rule::ProbeTimeout,
        Some(kind),
        format!(
            "timeoutSeconds {} is not shorter than GET {path}'s healthy {what}",
            timeout.as_secs()
        ),
        observed,
        passed,
    );
}

/// A readiness probe exists and asks the proven ready path on the serving
/// port.
fn readiness_path(j: &mut Judge<'_>) {
    let ready = j.obs.ready_path.clone();
    let expected = format!("a readinessProbe asks GET {ready}, the ready path gonogo proved");
    let (observed, passed) = match &j.container.readiness {
        None => (
            format!(
                "container `{}` has no readinessProbe: the pod would take traffic as soon as it starts and keep it during every outage",
                j.container.name
            ),
            false,
        ),
        Some(probe) => match &probe.handler {
            Handler::HttpGet { path, .. } if path_only(path) == ready => {
                (format!("readinessProbe asks GET {path}"), true)
            }
            Handler::HttpGet { path, .. } => (
                format!(
                    "readinessProbe asks GET {path}, not {ready}: the pod's readiness would not follow its dependencies as proven"
                ),
                false,
            ),
            other => (
                format!(
                    "readinessProbe is {other}, not GET {ready}: it does not follow the dependencies as proven"
                ),
                false,
            ),
        },
    };
    j.check(
        Rule::ReadinessPath,
        Some(ProbeKind::Readiness),
        expected,
        observed,
        passed,
    );
}

/// Answers of `path` in `window` before the fault cleared.
fn during<'w>(window: &'w FaultWindow, path: &str) -> Vec<&'w Answer> {
    window
        .answers
        .get(path)
        .map(|a| a.iter().filter(|a| a.at < window.cleared_at).collect())
        .unwrap_or_default()
}

/// During the fault the readiness probe fails, and keeps failing: the
/// kubelet marks the pod NotReady.
fn readiness_during_fault(j: &mut Judge<'_>, probe: &Probe, path: &str, window: &FaultWindow) {
    let answers = during(window, path);
    let label = window.label();
    if answers.is_empty() {
        j.unjudged(
            Rule::ReadinessDuringFault,
            Some(probe.kind),
            format!("no answer of GET {path} was recorded during {label}"),
        );
        return;
    }
    let timeout = probe.timeout_seconds.seconds();
    let (p, f) = (probe.period_seconds.value, probe.failure_threshold.value);
    let expected = format!(
        "during {label}, the readinessProbe (GET {path}, timeoutSeconds {}) fails, so the kubelet marks the pod NotReady after failureThreshold {f} × periodSeconds {p} s",
        timeout.as_secs()
    );
    let first_fail = answers.iter().position(|a| !a.kubelet_success(timeout));
    let (observed, passed) = match first_fail {
        None => (
            format!(
                "all {} answers of GET {path} during {label} were successes (last: {}): the kubelet would keep the pod Ready and send it traffic",
                answers.len(),
                answers[answers.len() - 1].kubelet_view(timeout)
            ),
            false,
        ),
        Some(i) => {
            let first = answers[i];
            match answers[i..].iter().find(|a| a.kubelet_success(timeout)) {
                Some(again) => (
                    format!(
                        "GET {path} failed at {} ({}) but succeeded again at {} ({}) during {label}: the kubelet's failure count would start over",
                        secs(first.at),
                        first.kubelet_view(timeout),
                        secs(again.at),
                        again.kubelet_view(timeout)
                    ),
                    false,
                ),
                None => {
                    // The kubelet's first failing probe comes at most one
                    // period after the first failing answer was asked for,
                    // and its result at most timeoutSeconds later.
                    let slow = first.latency.min(timeout);
                    let text = format!(
                        "NotReady within {} of the outage's start",
                        secs(first.at + probe.failure_window() + slow)
                    );
                    j.note(probe.kind, "failureThreshold", format!("{label}: {text}"));
                    (
                        format!(
                            "GET {path} failed from {} on ({}; {} answers until the fault cleared at {}): the kubelet would mark the pod {text}",
                            secs(first.at),
                            first.kubelet_view(timeout),
                            answers.len() - i,
                            secs(window.cleared_at)
                        ),
                        true,
                    )
                }
            }
        }
    };
    j.check(
        Rule::ReadinessDuringFault,
        Some(probe.kind),
        expected,
        observed,
        passed,
    );
}

/// After the fault clears the pod is Ready again within `successThreshold
/// × periodSeconds` plus one period of margin.
fn readiness_recovery(j: &mut Judge<'_>, probe: &Probe, path: &str, window: &FaultWindow) {
    let label = window.label();
    let after: Vec<&Answer> = window
        .answers
        .get(path)
        .map(|a| a.iter().filter(|a| a.at >= window.cleared_at).collect())
        .unwrap_or_default();
    if after.is_empty() {
        j.unjudged(
            Rule::ReadinessRecovery,
            Some(probe.kind),
            format!("no answer of GET {path} was recorded after {label} cleared"),
        );
        return;
    }
    let timeout = probe.timeout_seconds.seconds();
    let period = probe.period_seconds.seconds();
    let s = probe.success_threshold.value;
    let bound = period * (s + 1);
    let expected = format!(
        "Ready again within successThreshold {s} × periodSeconds {} s + one period = {} after {label} clears",
        period.as_secs(),
        secs(bound)
    );
    let (observed, passed) = match after.iter().find(|a| a.kubelet_success(timeout)) {
        None => (
            format!(
                "GET {path} never succeeded in the {} answers after the fault cleared (last: {}): the pod would stay NotReady",
                after.len(),
                after[after.len() - 1].kubelet_view(timeout)
            ),
            false,
        ),
        Some(a) => {
            let r = a.done().saturating_sub(window.cleared_at);
            let latest = r + period * s;
            j.note(
                probe.kind,
                "successThreshold",
                format!("{label}: Ready again ≤ {}", secs(latest)),
            );
            (
                format!(
                    "GET {path} answered {}, {} after the fault cleared: the kubelet would mark the pod Ready within {}",
                    a.kubelet_view(timeout),
                    secs(r),
                    secs(latest)
                ),
                latest <= bound,
            )
        }
    };
    j.check(
        Rule::ReadinessRecovery,
        Some(probe.kind),
        expected,
        observed,
        passed,
    );
}

/// Liveness must keep succeeding while a dependency is down: a failure
/// means the kubelet restarts healthy pods during every outage.
fn liveness_during_fault(j: &mut Judge<'_>, probe: &Probe, path: &str, window: &FaultWindow) {
    let label = window.label();
    let answers = during(window, path);
    if answers.is_empty() {
        j.unjudged(
            Rule::LivenessDuringFault,
            Some(probe.kind),
            format!("no answer of GET {path} was recorded during {label}"),
        );
        return;
    }
    let timeout = probe.timeout_seconds.seconds();
    let restart = probe.failure_window();
    let expected = format!(
        "during {label}, the livenessProbe (GET {path}, timeoutSeconds {}) keeps succeeding, so the kubelet restarts nothing",
        timeout.as_secs()
    );
    let failed: Vec<&&Answer> = answers
        .iter()
        .filter(|a| !a.kubelet_success(timeout))
        .collect();
    let observed = match failed.first() {
        None => format!(
            "all {} answers of GET {path} during {label} were successes",
            answers.len()
        ),
        Some(first) => {
            let mut text = format!(
                "GET {path} answered {} at {} ({} of {} answers failed): the kubelet would restart the pod after {} of a {} outage (failureThreshold {} × periodSeconds {} s)",
                first.kubelet_view(timeout),
                secs(first.at),
                failed.len(),
                answers.len(),
                secs(restart),
                window.dependency,
                probe.failure_threshold.value,
                probe.period_seconds.value
            );
            if path == j.obs.ready_path {
                text.push_str(&format!(
                    "; the cause: the livenessProbe asks {path}, the readiness path, which must fail when a dependency is down (point it at {})",
                    j.obs.live_path
                ));
            }
            text
        }
    };
    j.note(
        probe.kind,
        "failureThreshold",
        if failed.is_empty() {
            format!("{label}: no failure")
        } else {
            format!("{label}: restart after {}", secs(restart))
        },
    );
    j.check(
        Rule::LivenessDuringFault,
        Some(probe.kind),
        expected,
        observed,
        failed.is_empty(),
    );
}

/// The cold start must fit the startup probe's budget (or liveness's).
fn startup_budget(j: &mut Judge<'_>) {
    let c = j.container;
    let Some(probe) = c.startup.as_ref().or(c.liveness.as_ref()) else {
        j.unjudged(
            Rule::StartupBudget,
            None,
            "no startupProbe or livenessProbe: no probe restarts a slow start".into(),
        );
        return;
    };
    let Some(cold) = &j.obs.cold_start else {
        j.unjudged(
            Rule::StartupBudget,
            Some(probe.kind),
            "no cold start was observed".into(),
        );
        return;
    };
    let (measured, what) = match startup_measure(probe, cold, &j.obs.ready_path) {
        Ok(found) => found,
        Err(reason) => {
            j.unjudged(Rule::StartupBudget, Some(probe.kind), reason);
            return;
        }
    };
    let budget = probe.startup_budget();
    let expected = format!(
        "the {what} fits the {} budget: {}",
        probe.kind,
        budget_text(probe)
    );
    let (observed, passed) = match measured {
        Some(took) => {
            j.note(
                probe.kind,
                "failureThreshold",
                format!("budget {} vs {}", secs(budget), secs(took)),
            );
            if took <= budget {
                (secs(took), true)
            } else {
                (
                    format!(
                        "{}, longer than the {} budget: the kubelet would restart the container before it is up, again and again",
                        secs(took),
                        secs(budget)
                    ),
                    false,
                )
            }
        }
        None if cold.watched > budget => (
            format!(
                "not within the {} gonogo watched, already past the {} budget",
                secs(cold.watched),
                secs(budget)
            ),
            false,
        ),
        None => {
            j.unjudged(
                Rule::StartupBudget,
                Some(probe.kind),
                format!(
                    "the service did not succeed within the {} gonogo watched",
                    secs(cold.watched)
                ),
            );
            return;
        }
    };
    j.check(
        Rule::StartupBudget,
        Some(probe.kind),
        expected,
        observed,
        passed,
    );
}

/// `initialDelaySeconds 0 + failureThreshold 3 × periodSeconds 10 s = 30 s`.
fn budget_text(probe: &Probe) -> String {
    format!(
        "initialDelaySeconds {} + failureThreshold {} × periodSeconds {} s = {}",
        probe.initial_delay_seconds.value,
        probe.failure_threshold.value,
        probe.period_seconds.value,
        secs(probe.startup_budget())
    )
}

/// What the probe needs to succeed, and when it first did: its own path
/// when gonogo polled it, else the first ready 200 (the cold start); a
/// tcpSocket probe only needs the port to listen.
fn startup_measure(
    probe: &Probe,
    cold: &ColdStart,
    ready: &str,
) -> Result<(Option<Duration>, String), String> {
    match &probe.handler {
        Handler::HttpGet { path, .. } if cold.first_success.contains_key(&path_only(path)) => Ok((
            cold.first_success[&path_only(path)],
            format!("first success of GET {}", path_only(path)),
        )),
        Handler::TcpSocket { .. } => Ok((
            cold.first_answer,
            "first HTTP answer (port listening)".into(),
        )),
        Handler::Exec { .. } | Handler::Grpc { .. } => Err(format!(
            "{} is {}; gonogo cannot tell when it would first succeed",
            probe.kind, probe.handler
        )),
        Handler::HttpGet { .. } => Ok((
            cold.first_success.get(ready).copied().flatten(),
            format!("cold start (process start to the first 200 from GET {ready})"),
        )),
    }
}

/// SIGTERM to exit, plus any preStop sleep, must fit the grace period.
fn shutdown_grace(j: &mut Judge<'_>) {
    let c = j.container;
    let grace = Duration::from_secs(c.grace_period.seconds);
    let (pre_stop, pre_stop_text) = match &c.pre_stop {
        None => (Duration::ZERO, "no preStop hook".to_string()),
        Some(PreStop::Sleep { seconds, how }) => {
            (Duration::from_secs_f64(*seconds), format!("preStop {how}"))
        }
        Some(PreStop::Other { how }) => (
            Duration::ZERO,
            format!("preStop {how} (not counted: its duration cannot be known)"),
        ),
    };
    let Some(shutdown) = j.obs.shutdown else {
        j.unjudged(Rule::ShutdownGrace, None, "no shutdown was observed".into());
        return;
    };
    let expected = format!(
        "SIGTERM to exit plus the preStop sleep fits terminationGracePeriodSeconds {}",
        if c.grace_period.explicit {
            c.grace_period.seconds.to_string()
        } else {
            format!("{} (default)", c.grace_period.seconds)
        }
    );
    let (observed, passed) = match shutdown {
        Shutdown::Exited { after } => {
            let total = after + pre_stop;
            let verdict = if total <= grace {
                String::new()
            } else {
                format!(
                    ": the kubelet would SIGKILL the container {} into its shutdown",
                    secs(grace)
                )
            };
            (
                format!(
                    "SIGTERM to exit {} + {pre_stop_text} = {}{verdict}",
                    secs(after),
                    secs(total)
                ),
                total <= grace,
            )
        }
        Shutdown::StillRunning { waited } if waited + pre_stop >= grace => (
            format!(
                "still running {} after SIGTERM ({pre_stop_text}): the kubelet would SIGKILL it",
                secs(waited)
            ),
            false,
        ),
        Shutdown::StillRunning { waited } => {
            j.unjudged(
                Rule::ShutdownGrace,
                None,
                format!(
                    "the service did not exit within the {} gonogo waited, which is shorter than the grace period",
                    secs(waited)
                ),
            );
            return;
        }
    };
    j.check(Rule::ShutdownGrace, None, expected, observed, passed);
}

/// A table per probe and one for the pod.
fn tables(j: &mut Judge<'_>) {
    let c = j.container;
    for kind in ProbeKind::ALL {
        let Some(probe) = c.probe(kind) else {
            j.out.tables.push(ProbeTable {
                title: format!("{kind}: not set"),
                rows: Vec::new(),
            });
            continue;
        };
        let mut seen = |setting: &'static str| {
            j.notes
                .remove(&(kind, setting))
                .map_or_else(|| "—".to_string(), |v| v.join("; "))
        };
        let rows = vec![
            row("handler", probe.handler.to_string(), seen("handler")),
            row(
                "initialDelaySeconds",
                probe.initial_delay_seconds.to_string(),
                seen("initialDelaySeconds"),
            ),
            row(
                "periodSeconds",
                probe.period_seconds.to_string(),
                seen("periodSeconds"),
            ),
            row(
                "timeoutSeconds",
                probe.timeout_seconds.to_string(),
                seen("timeoutSeconds"),
            ),
            row(
                "failureThreshold",
                probe.failure_threshold.to_string(),
                seen("failureThreshold"),
            ),
            row(
                "successThreshold",
                probe.success_threshold.to_string(),
                seen("successThreshold"),
            ),
        ];
        j.out.tables.push(ProbeTable {
            title: format!("{kind} (line {})", probe.line),
            rows,
        });
    }
    let grace = if c.grace_period.explicit {
        c.grace_period.seconds.to_string()
    } else {
        format!("{} (default)", c.grace_period.seconds)
    };
    let shutdown = match j.obs.shutdown {
        Some(Shutdown::Exited { after }) => format!("SIGTERM to exit {}", secs(after)),
        Some(Shutdown::StillRunning { waited }) => format!("still running after {}", secs(waited)),
        None => "—".into(),
    };
    let pre_stop = match &c.pre_stop {
        None => "none".to_string(),
        Some(PreStop::Sleep { how, .. } | PreStop::Other { how }) => how.clone(),
    };
    j.out.tables.push(ProbeTable {
        title: format!("pod of {}", c.workload),
        rows: vec![
            row("terminationGracePeriodSeconds", grace, shutdown),
            row("lifecycle.preStop", pre_stop, "—".into()),
        ],
    });
}

fn row(setting: &str, manifest: String, observed: String) -> TableRow {
    TableRow {
        setting: setting.to_string(),
        manifest,
        observed,
    }
}
