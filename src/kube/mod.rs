//! Kubernetes probe conformance: the deployment's manifest judged against
//! the behaviour gonogo observed.
//!
//! - [`manifest`]: a manifest file in, the container under proof out
//!   (probes with Kubernetes' defaults, ports, preStop, grace period).
//! - [`observe`]: the [`Observations`] the judges need, recorded by the
//!   proof's steps.
//! - [`mod@judge`]: kubelet semantics applied to both, giving a
//!   [`Conformance`] (checks, what could not be judged, a table per probe).

pub mod judge;
pub mod manifest;
pub mod observe;

pub use judge::{Conformance, Judged, ProbeTable, Rule, TableRow, Unjudged, judge};
pub use manifest::{
    Container, Handler, PortRef, PreStop, Probe, ProbeKind, Selection, ServingPort,
};
#[cfg(test)]
mod tests;

pub use observe::{Answer, ColdStart, FaultWindow, Observations, Reply, Shutdown};
