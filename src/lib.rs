//! gonogo: a go/no-go evidence harness.
//!
//! The pipeline, one module per stage:
//!
//! - [`scenario`]: a TOML file in, a validated `Scenario` out.
//! - [`deps`]: where the dependencies come from (`--deps`): embedded
//!   servers, docker containers or external servers, as one `Provisioned`.
//! - [`service`]: the service under test, started with real URLs.
//! - [`steps`]: the proof steps, each giving a `StepOutcome`.
//! - [`waiver`]: the scenario's waivers turn failed steps into WAIVED.
//! - [`verdict`]: GO, NO-GO or INCONCLUSIVE from the outcomes.
//! - [`mask`]: the only way text becomes evidence (`Masked`).
//! - [`evidence`]: the `Evidence` model and its renderers and writer.
//! - [`run`]: sequences the stages and owns the teardown; [`deadline`]
//!   bounds a whole run.
//! - [`attest`]: signs the bundle (a DSSE in-toto attestation) and reads it back.
//! - [`verify`]: checks a written bundle against its `manifest.json` and signature.
//! - [`kube`]: the Kubernetes manifest's probes judged with kubelet
//!   semantics against what the proof observed.
//! - [`alerts`]: the Prometheus alert rules proven with promtool against
//!   the series the service exported.
//!
//! Supporting modules: [`process`] (guards that own child processes),
//! [`sockets`] (who answers on a port), [`keep`] (`--keep` and `gonogo stop`),
//! [`proxy`] (the TCP fault proxy), [`http`] (probes with deadlines),
//! [`progress`] (live terminal output), [`yaml`] (YAML with positions),
//! [`install`] (`doctor --install`: the package manager's command for what
//! is missing), [`exit_codes`] and [`error`].

pub mod alerts;
pub mod attest;
pub mod cli;
pub mod command;
pub mod deadline;
pub mod deps;
pub mod digest;
pub mod doctor;
pub mod error;
pub mod evidence;
pub mod exit_codes;
pub mod http;
pub mod init;
pub mod install;
pub mod keep;
pub mod kube;
pub mod mask;
pub mod outcome;
pub mod plan;
pub mod pressure;
pub mod process;
pub mod progress;
pub mod prometheus;
pub mod proxy;
pub mod run;
pub mod scenario;
pub mod service;
pub mod sockets;
pub mod steps;
pub mod verdict;
pub mod verify;
pub mod waiver;
pub mod yaml;
