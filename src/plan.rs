//! The language of the step plan: what a planned step says about itself
//! ([`PlannedStep`]: id, title, the claim it proves, what it exercises), the
//! [`Precondition`]s it needs, and the [`Resource`]s it holds. A leaf: the
//! plan itself (which steps, in which order) is made by `steps`, which runs
//! it; this module only states and checks.
//!
//! A step whose precondition does not hold is NOT RUN with an [`Unmet`]
//! reason, "needs <precondition>; <what was observed>", never FAIL: it
//! proved nothing either way. The step that broke the precondition carries
//! the FAIL.

use std::fmt;

/// One step of the proof as the plan declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    /// 1-based position in the plan; progress shows `[number/total]`.
    pub number: u32,
    /// Stable id, e.g. `redis-runtime-outage`: waivers, `[[not_applicable]]`
    /// and the evidence use it.
    pub id: String,
    pub title: String,
    /// What the step proves when it passes, in one plain sentence.
    pub claim: String,
    /// What it drives to prove it (the service, a dependency, a command).
    pub exercises: String,
}

impl PlannedStep {
    /// A step not numbered yet: the plan numbers its steps in order.
    pub fn new(
        id: impl Into<String>,
        title: impl Into<String>,
        claim: impl Into<String>,
        exercises: impl Into<String>,
    ) -> PlannedStep {
        PlannedStep {
            number: 0,
            id: id.into(),
            title: title.into(),
            claim: claim.into(),
            exercises: exercises.into(),
        }
    }
}

/// Something that must hold for a step to prove anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// gonogo starts the service itself (launch mode); `because` says what
    /// the step does with an instance of its own.
    Launches { because: String },
    /// gonogo can connect to the service's database.
    Database,
    /// The ready gate saw the service healthy: ready answered the status
    /// and body `[ready]` expects.
    ReadyHealthy,
    /// The ready gate's instance answered HTTP at all (healthy or not):
    /// a step that starts an instance of its own and waits for it to
    /// answer would otherwise spend the whole startup timeout again.
    Answers,
    /// gonogo's fault proxy is between the service and this dependency.
    Faultable { dependency: String },
    /// gonogo owns this dependency's server and may change it (a
    /// server-wide fault such as read-only Postgres).
    Writable { dependency: String },
    /// The scenario says something the step needs; `unmet` is what it says
    /// instead, decided when the plan is made.
    Configured {
        needs: String,
        unmet: Option<String>,
    },
    /// An earlier step recorded this observation; `from` are the ids of
    /// the steps that record it, whose outcomes explain a missing one.
    Observed {
        observation: Observation,
        needs: String,
        from: Vec<String>,
    },
}

/// Something a step records for later steps to judge (the production
/// conformance steps read what the proof observed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// The ready gate: process start to the first ready 200, and healthy
    /// answers of every probed path.
    ColdStart,
    /// A runtime fault step: how the probed paths answered during a fault
    /// and after it cleared.
    FaultWindow,
    /// Graceful shutdown: SIGTERM to exit.
    Shutdown,
    /// The metrics step's three scrapes (healthy, outage, recovered).
    Scrapes,
}

/// A step that finished, as later preconditions quote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub id: String,
    /// `PASS`, `FAIL`, `NOT RUN`, …
    pub status: String,
    pub summary: String,
}

/// What earlier stages and steps established, which preconditions read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// gonogo started the dependencies and launches the service itself;
    /// false in target mode (`--service-url`).
    pub launched: bool,
    /// gonogo owns the dependencies' servers (embedded, docker).
    pub owns_servers: bool,
    /// What the ready gate saw.
    pub ready: Ready,
    /// What the steps so far recorded for later steps.
    pub observed: Vec<Observation>,
    /// The steps finished so far, in order.
    pub finished: Vec<Finished>,
}

impl Facts {
    /// Why the steps `from` recorded nothing: each one's status and
    /// summary, or that it is not in the plan.
    pub fn why_unobserved(&self, from: &[String]) -> String {
        let parts: Vec<String> = from
            .iter()
            .map(|id| match self.finished.iter().find(|f| &f.id == id) {
                Some(f) => format!("{id} was {}: {}", f.status, f.summary),
                None => format!("{id} is not in the plan"),
            })
            .collect();
        if parts.is_empty() {
            "no step records it".into()
        } else {
            format!("none was recorded ({})", parts.join("; "))
        }
    }
}

/// What the ready gate established about the service's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// Ready answered healthy.
    Healthy,
    /// It never did; what it answered instead.
    Unhealthy(String),
    /// The service never answered HTTP at all: it exited, or stayed
    /// silent through the startup timeout; what was seen.
    NeverAnswered(String),
    /// The ready gate did not run (yet); why.
    Unknown(String),
}

/// A precondition that does not hold, and what was observed instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// The precondition, e.g. `a healthy service`.
    pub needs: String,
    /// What was seen, e.g. `the ready gate saw HTTP 500 in 3 ms`.
    pub observed: String,
}

impl Unmet {
    pub fn new(needs: impl Into<String>, observed: impl Into<String>) -> Unmet {
        Unmet {
            needs: needs.into(),
            observed: observed.into(),
        }
    }
}

impl fmt::Display for Unmet {
    /// The NOT RUN reason: `needs <precondition>; <observed>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "needs {}; {}", self.needs, self.observed)
    }
}

/// Why target mode rules a step out.
const TARGET_MODE: &str = "target mode (--service-url)";

impl Precondition {
    /// The precondition in words, as the NOT RUN reason quotes it.
    pub fn needs(&self) -> String {
        match self {
            Precondition::Launches { because } => {
                format!("gonogo to start the service itself ({because})")
            }
            Precondition::Database => "a connection to the service's database".into(),
            Precondition::ReadyHealthy => "a healthy service".into(),
            Precondition::Answers => "a service instance that answers HTTP".into(),
            Precondition::Faultable { dependency } => {
                format!("gonogo's fault proxy between the service and {dependency}")
            }
            Precondition::Writable { dependency } => {
                format!("a {dependency} server gonogo owns and may change")
            }
            Precondition::Configured { needs, .. } | Precondition::Observed { needs, .. } => {
                needs.clone()
            }
        }
    }

    /// Whether it holds, given `facts`.
    pub fn check(&self, facts: &Facts) -> Result<(), Unmet> {
        let unmet = |observed: String| Err(Unmet::new(self.needs(), observed));
        match self {
            Precondition::Launches { .. } if !facts.launched => unmet(format!(
                "{TARGET_MODE}: gonogo does not start or control the running service"
            )),
            Precondition::Database if !facts.launched => unmet(format!(
                "{TARGET_MODE}: gonogo has no connection to the deployed service's database"
            )),
            Precondition::Faultable { .. } if !facts.launched => unmet(format!(
                "{TARGET_MODE}: gonogo's proxy is not in front of the running service's dependencies"
            )),
            Precondition::Writable { .. } if !facts.launched => unmet(format!(
                "{TARGET_MODE}: gonogo started no server and changes no one else's"
            )),
            Precondition::Writable { .. } if !facts.owns_servers => unmet(
                "the servers are external, and gonogo never changes someone else's server".into(),
            ),
            Precondition::ReadyHealthy => match &facts.ready {
                Ready::Healthy => Ok(()),
                Ready::Unhealthy(seen) | Ready::NeverAnswered(seen) => {
                    unmet(format!("the ready gate never saw one: {seen}"))
                }
                Ready::Unknown(why) => unmet(format!("the ready gate did not run: {why}")),
            },
            // Unknown (the gate not run, or declared not applicable) does
            // not rule the step out: it then finds out for itself.
            Precondition::Answers => match &facts.ready {
                Ready::NeverAnswered(seen) => {
                    unmet(format!("the ready gate's instance never did: {seen}"))
                }
                _ => Ok(()),
            },
            Precondition::Configured {
                unmet: Some(observed),
                ..
            } => unmet(observed.clone()),
            Precondition::Observed {
                observation, from, ..
            } if !facts.observed.contains(observation) => unmet(facts.why_unobserved(from)),
            _ => Ok(()),
        }
    }
}

impl Precondition {
    /// Whether it reads what the ready gate established, so that it can
    /// only be checked once the gate has finished.
    pub fn reads_ready(&self) -> bool {
        matches!(self, Precondition::ReadyHealthy | Precondition::Answers)
    }
}

/// The first precondition in `all` that does not hold, if any.
pub fn first_unmet(all: &[Precondition], facts: &Facts) -> Option<Unmet> {
    all.iter().find_map(|p| p.check(facts).err())
}

/// Something a step holds while it runs; the runner schedules by these
/// declarations (two units may overlap unless [`conflicts`] says
/// otherwise), so each must be true of what the unit does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// The shared fault proxy in front of this dependency. Every service
    /// instance gonogo starts on healthy dependencies reaches them through
    /// the shared proxies, so it uses each one (shared); nothing switches a
    /// fault on them while other units run.
    Proxy(String),
    /// A fault proxy the runner starts for one unit alone (`unit` is its
    /// label) in front of `dependency`: only that unit's service instance
    /// reaches the dependency through it, so a fault switched on it
    /// disturbs no other unit.
    OwnProxy { unit: String, dependency: String },
    /// This dependency's server, beyond the proxy: every instance uses it,
    /// a server-wide fault changes it for every client.
    Server(String),
    /// What the migrations set up in this dependency's server (its
    /// schema): the migration gate writes it, every instance that expects
    /// a migrated service reads it. A fail-fast instance, which must exit
    /// before using any dependency, does not.
    Schema(String),
    /// The one running service of target mode, which every request goes to.
    TargetService,
    /// The whole machine: a latency measurement that other load would
    /// distort.
    Machine,
}

/// How a step holds a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub resource: Resource,
    /// Nothing else may use it meanwhile.
    pub exclusive: bool,
}

impl Hold {
    pub fn uses(resource: Resource) -> Hold {
        Hold {
            resource,
            exclusive: false,
        }
    }

    pub fn holds(resource: Resource) -> Hold {
        Hold {
            resource,
            exclusive: true,
        }
    }
}

/// Whether two steps holding `a` and `b` must not run at the same time:
/// they share a resource that one of them holds exclusively, or one of them
/// holds the machine.
pub fn conflicts(a: &[Hold], b: &[Hold]) -> bool {
    let machine = |holds: &[Hold]| holds.iter().any(|h| h.resource == Resource::Machine);
    if machine(a) || machine(b) {
        return true;
    }
    a.iter().any(|x| {
        b.iter()
            .any(|y| x.resource == y.resource && (x.exclusive || y.exclusive))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(launched: bool, ready: Ready) -> Facts {
        Facts {
            launched,
            owns_servers: launched,
            ready,
            observed: Vec::new(),
            finished: Vec::new(),
        }
    }

    #[test]
    fn target_mode_rules_out_what_needs_a_launch_a_database_or_a_proxy() {
        let target = facts(false, Ready::Healthy);
        let launches = Precondition::Launches {
            because: "it sends SIGTERM to an instance it started".into(),
        };
        let unmet = launches.check(&target).unwrap_err().to_string();
        assert!(unmet.starts_with("needs gonogo to start the service itself (it sends SIGTERM"));
        assert!(unmet.contains("target mode (--service-url)"), "{unmet}");
        assert!(!unmet.contains("restart"), "{unmet}");
        for p in [
            Precondition::Database,
            Precondition::Faultable {
                dependency: "Redis".into(),
            },
        ] {
            assert!(p.check(&target).is_err());
            assert!(p.check(&facts(true, Ready::Healthy)).is_ok());
        }
    }

    #[test]
    fn readiness_comes_from_the_ready_gate() {
        let p = Precondition::ReadyHealthy;
        assert!(p.check(&facts(true, Ready::Healthy)).is_ok());
        let unmet = p
            .check(&facts(true, Ready::Unhealthy("HTTP 404 in 2 ms".into())))
            .unwrap_err();
        assert_eq!(
            unmet.to_string(),
            "needs a healthy service; the ready gate never saw one: HTTP 404 in 2 ms"
        );
    }

    #[test]
    fn a_service_that_never_answered_rules_out_a_second_wait() {
        let p = Precondition::Answers;
        assert!(p.reads_ready() && Precondition::ReadyHealthy.reads_ready());
        assert!(p.check(&facts(true, Ready::Healthy)).is_ok());
        assert!(
            p.check(&facts(true, Ready::Unhealthy("HTTP 503".into())))
                .is_ok()
        );
        assert!(
            p.check(&facts(true, Ready::Unknown("declared".into())))
                .is_ok()
        );
        let silent = facts(
            true,
            Ready::NeverAnswered("the service did not answer HTTP within 20000 ms".into()),
        );
        assert_eq!(
            p.check(&silent).unwrap_err().to_string(),
            "needs a service instance that answers HTTP; the ready gate's instance never did: the service did not answer HTTP within 20000 ms"
        );
        assert!(
            Precondition::ReadyHealthy
                .check(&silent)
                .unwrap_err()
                .to_string()
                .starts_with(
                    "needs a healthy service; the ready gate never saw one: the service did not"
                )
        );
    }

    #[test]
    fn external_servers_are_never_written() {
        let external = Facts {
            launched: true,
            owns_servers: false,
            ready: Ready::Healthy,
            observed: Vec::new(),
            finished: Vec::new(),
        };
        let p = Precondition::Writable {
            dependency: "Postgres".into(),
        };
        assert!(
            p.check(&external)
                .unwrap_err()
                .observed
                .contains("never changes")
        );
    }

    #[test]
    fn the_first_unmet_precondition_is_the_reason() {
        let all = [
            Precondition::Configured {
                needs: "fail-fast cases".into(),
                unmet: None,
            },
            Precondition::Configured {
                needs: "[migrations]".into(),
                unmet: Some("the scenario has none".into()),
            },
            Precondition::ReadyHealthy,
        ];
        let unmet = first_unmet(&all, &facts(true, Ready::Unknown("not yet".into())));
        assert_eq!(
            unmet.map(|u| u.to_string()).as_deref(),
            Some("needs [migrations]; the scenario has none")
        );
    }

    #[test]
    fn a_missing_observation_quotes_the_steps_that_record_it() {
        let p = Precondition::Observed {
            observation: Observation::FaultWindow,
            needs: "the fault windows".into(),
            from: vec![
                "redis-runtime-outage".into(),
                "postgres-runtime-outage".into(),
            ],
        };
        let mut f = facts(true, Ready::Healthy);
        f.finished.push(Finished {
            id: "redis-runtime-outage".into(),
            status: "NOT RUN".into(),
            summary: "needs a healthy service".into(),
        });
        assert_eq!(
            p.check(&f).unwrap_err().to_string(),
            "needs the fault windows; none was recorded (redis-runtime-outage was NOT RUN: needs a healthy service; postgres-runtime-outage is not in the plan)"
        );
        f.observed.push(Observation::FaultWindow);
        assert!(p.check(&f).is_ok());
    }

    #[test]
    fn exclusive_holds_and_the_machine_conflict() {
        let redis = || Resource::Proxy("redis".into());
        let fault = [Hold::holds(redis())];
        let instance = [
            Hold::uses(redis()),
            Hold::uses(Resource::Proxy("postgres".into())),
        ];
        let other_fault = [Hold::holds(Resource::Proxy("postgres".into()))];
        assert!(conflicts(&fault, &instance));
        assert!(!conflicts(&fault, &other_fault));
        assert!(!conflicts(&instance, &instance));
        assert!(conflicts(&[Hold::holds(Resource::Machine)], &[]));
        let own = |unit: &str| Resource::OwnProxy {
            unit: unit.into(),
            dependency: "redis".into(),
        };
        assert!(!conflicts(
            &[Hold::holds(own("a"))],
            &[Hold::holds(own("b"))]
        ));
        assert!(!conflicts(&[Hold::holds(own("a"))], &instance));
    }
}
