//! What the steps observe for the production-conformance steps that come
//! after them: each step gives its observations as typed [`Observed`]
//! values in its [`super::Ran`], the runner folds them into one
//! [`Recorded`] on the step context, and `kubernetes-probes` and
//! `alert-rules` read it. Plain data; nothing here touches a process.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::alerts::ScrapedPhases;
use crate::http::HttpExchange;
use crate::kube::{Answer, ColdStart, FaultWindow, Observations, Reply, Shutdown};
use crate::plan::Observation;
use crate::scenario::Scenario;

/// One observation a step made.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// Process start to the first success of each probed path.
    ColdStart(ColdStart),
    /// Answers of each probed path while every dependency was up.
    Healthy(BTreeMap<String, Vec<Answer>>),
    /// The latency step's healthy p99 of one path.
    HealthyP99 {
        path: String,
        p99: Duration,
    },
    Shutdown(Shutdown),
    Fault(FaultWindow),
    Scrapes(ScrapedPhases),
    /// The ready gate's healthy answer: what checks about a failure are
    /// judged against too, by steps that record none of their own.
    HealthyReady(HttpExchange),
}

impl Observed {
    /// Which kind of observation it is, for preconditions.
    pub fn kind(&self) -> Option<Observation> {
        match self {
            Observed::ColdStart(_) => Some(Observation::ColdStart),
            Observed::Fault(_) => Some(Observation::FaultWindow),
            Observed::Shutdown(_) => Some(Observation::Shutdown),
            Observed::Scrapes(_) => Some(Observation::Scrapes),
            Observed::Healthy(_) | Observed::HealthyP99 { .. } | Observed::HealthyReady(_) => None,
        }
    }
}

/// Everything observed so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    pub kube: Observations,
    pub scrapes: Option<ScrapedPhases>,
    /// The ready gate's healthy answer, once it saw one.
    pub healthy_ready: Option<HttpExchange>,
}

impl Recorded {
    /// An empty record for `scenario` (its ready and live paths).
    pub fn new(scenario: &Scenario) -> Recorded {
        Recorded {
            kube: Observations {
                ready_path: scenario.service.ready_path.clone(),
                live_path: scenario.service.live_path.clone(),
                ..Observations::default()
            },
            scrapes: None,
            healthy_ready: None,
        }
    }

    /// Add one observation.
    pub fn absorb(&mut self, observed: Observed) {
        let kube = &mut self.kube;
        match observed {
            Observed::ColdStart(c) => kube.cold_start = Some(c),
            Observed::Healthy(answers) => {
                for (path, list) in answers {
                    kube.healthy.entry(path).or_default().extend(list);
                }
            }
            Observed::HealthyP99 { path, p99 } => {
                kube.healthy_p99.insert(path, p99);
            }
            Observed::Shutdown(s) => kube.shutdown = Some(s),
            Observed::Fault(w) => kube.faults.push(w),
            Observed::Scrapes(s) => self.scrapes = Some(s),
            Observed::HealthyReady(exchange) => self.healthy_ready = Some(exchange),
        }
    }
}

/// The paths the kubelet would probe, as the service routes them (query
/// strings cut): the ready and live paths, and every httpGet probe path of
/// the `[kubernetes]` manifest, each once.
pub fn probe_paths(scenario: &Scenario) -> Vec<String> {
    let mut paths = vec![
        scenario.service.ready_path.clone(),
        scenario.service.live_path.clone(),
    ];
    if let Some(k) = &scenario.kubernetes {
        for kind in crate::kube::ProbeKind::ALL {
            if let Some(path) = k.container.probe(kind).and_then(|p| p.http_path()) {
                let path = path.split('?').next().unwrap_or(path).to_string();
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
        }
    }
    paths
}

/// `exchange`, sent at `sent`, as a timed answer from `origin`.
pub fn answer(exchange: &HttpExchange, sent: Instant, origin: Instant) -> Answer {
    let reply = match exchange.status {
        Some(status) => Reply::Status(status),
        None if exchange.timed_out => Reply::TimedOut,
        None => Reply::Failed(
            exchange
                .error
                .clone()
                .unwrap_or_else(|| "no response".into()),
        ),
    };
    Answer {
        at: sent.saturating_duration_since(origin),
        reply,
        latency: exchange.elapsed,
    }
}
