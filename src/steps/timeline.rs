//! Builds a [`FaultTimeline`]: what happened when, while a step broke a
//! dependency, with offsets from the timeline's first event.

use std::time::Instant;

use chrono::{SecondsFormat, Utc};

use super::StepRecorder;
use crate::mask::Masker;
use crate::outcome::{FaultTimeline, TimelineEvent};
use crate::service::RunningService;

/// A step watching its service while a dependency is broken: the step's
/// record (requests, checks), the fault timeline, and the instance.
pub struct Watch<'w, 'm> {
    pub step: &'w mut StepRecorder<'m>,
    pub timeline: &'w mut TimelineRecorder<'m>,
    pub service: &'w RunningService,
}

/// A timeline under construction, anchored at its first event.
pub struct TimelineRecorder<'m> {
    masker: &'m Masker,
    dependency: String,
    started: Option<Instant>,
    events: Vec<TimelineEvent>,
}

impl<'m> TimelineRecorder<'m> {
    /// An empty timeline for `dependency` (its heading in the report).
    pub fn new(masker: &'m Masker, dependency: impl Into<String>) -> Self {
        TimelineRecorder {
            masker,
            dependency: dependency.into(),
            started: None,
            events: Vec::new(),
        }
    }

    /// Record `event` now, with its `detail` masked.
    pub fn record(&mut self, event: &str, detail: &str) {
        let now = Instant::now();
        let started = *self.started.get_or_insert(now);
        self.events.push(TimelineEvent {
            at_utc: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            offset_ms: now.duration_since(started).as_millis() as u64,
            event: event.to_string(),
            detail: self.masker.mask(detail),
        });
    }

    pub fn finish(self) -> FaultTimeline {
        FaultTimeline {
            dependency: self.dependency,
            events: self.events,
        }
    }
}
