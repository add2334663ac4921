//! What a running unit shares with the runner beyond the outcomes it
//! gives at the end:
//!
//! - it may **release** its holds before it finishes: the migration gate,
//!   once the migrations are applied and only its read-only `current`
//!   check remains, lets the units that need the migrated schema start;
//! - it may **wait for the ready gate's verdict**: a unit that starts its
//!   own instance beside the gate (the negative proof) judges what it saw
//!   only once the gate has finished, and is NOT RUN when the gate saw no
//!   healthy service;
//! - it may **hand on a healthy instance**: the ready gate's instance,
//!   once healthy, is kept for the latency measurement and then for the
//!   graceful shutdown, instead of each starting another; the runner
//!   stops it once no unit that could take it is left.
//!
//! Every unit's context has its own [`Link`]; they share one [`Shared`],
//! which the runner reads. A context outside the runner (one unit run on
//! its own) gets a [`Link::detached`] one: nothing waits on its releases,
//! and it has no gate to wait for.

use std::cell::RefCell;
use std::rc::Rc;

use tokio::sync::watch;

use crate::http::HttpExchange;
use crate::plan::Ready;
use crate::service::RunningService;

/// What the ready gate established, as a unit that waits for it reads it.
#[derive(Debug, Clone)]
pub struct Gate {
    pub ready: Ready,
    /// Ready's healthy answer, when it gave one (what a check about
    /// failures is judged against too).
    pub healthy: Option<HttpExchange>,
}

/// A healthy instance one unit hands on to the next.
pub struct Spare {
    pub service: RunningService,
    /// The step that started it, e.g. `ready gate`.
    pub started_by: String,
    /// The steps that used it since, in order.
    pub used_by: Vec<String>,
    /// How many lines of its output earlier steps already recorded: a
    /// step records only the lines that came while it held the instance.
    pub log_mark: u64,
}

/// What every unit's link shares with the runner.
#[derive(Default)]
pub struct Shared {
    /// The units (by plan index) that released their holds early.
    released: RefCell<Vec<usize>>,
    /// `None` in a detached link: no gate will ever publish.
    gate: Option<watch::Sender<Option<Gate>>>,
    spare: RefCell<Option<Spare>>,
}

impl Shared {
    pub fn new() -> Rc<Shared> {
        let (gate, _) = watch::channel(None);
        Rc::new(Shared {
            released: RefCell::new(Vec::new()),
            gate: Some(gate),
            spare: RefCell::new(None),
        })
    }

    /// How many units have released their holds so far.
    pub fn releases(&self) -> usize {
        self.released.borrow().len()
    }

    /// Whether the unit at `index` released its holds.
    pub fn released(&self, index: usize) -> bool {
        self.released.borrow().contains(&index)
    }

    /// The ready gate finished: what it established.
    pub fn publish_gate(&self, gate: Gate) {
        if let Some(sender) = &self.gate {
            sender.send_replace(Some(gate));
        }
    }

    /// Whether the ready gate has published its verdict.
    pub fn gate_known(&self) -> bool {
        self.gate
            .as_ref()
            .is_some_and(|sender| sender.borrow().is_some())
    }

    /// Whether an instance is kept for a later unit.
    pub fn has_spare(&self) -> bool {
        self.spare.borrow().is_some()
    }

    /// The instance nobody took, if any.
    pub fn take_spare(&self) -> Option<Spare> {
        self.spare.borrow_mut().take()
    }
}

/// One unit's side of what it shares with the runner.
pub struct Link {
    index: usize,
    shared: Rc<Shared>,
}

impl Link {
    /// The link of the unit at `index` of the plan.
    pub fn new(index: usize, shared: Rc<Shared>) -> Link {
        Link { index, shared }
    }

    /// A link to no runner: releases change nothing, and no gate will
    /// publish (the runner gives each unit a real one).
    pub fn detached() -> Link {
        Link {
            index: usize::MAX,
            shared: Rc::new(Shared::default()),
        }
    }

    /// The unit holds nothing that conflicts any more, though it has not
    /// finished: units waiting for its holds may start.
    pub fn release(&self) {
        let mut released = self.shared.released.borrow_mut();
        if !released.contains(&self.index) {
            released.push(self.index);
        }
    }

    /// What the ready gate established, once it has finished. `None` when
    /// no gate will ever publish (a detached link).
    pub async fn gate(&self) -> Option<Gate> {
        let mut receiver = self.shared.gate.as_ref()?.subscribe();
        let seen = receiver.wait_for(Option::is_some).await.ok()?;
        seen.clone()
    }

    /// Hand `spare` on to a later unit (the runner stops it when none is
    /// left to take it).
    pub fn offer(&self, spare: Spare) {
        *self.shared.spare.borrow_mut() = Some(spare);
    }

    /// The instance an earlier unit handed on, if any (it may have
    /// exited meanwhile: the taker looks).
    pub fn take(&self) -> Option<Spare> {
        self.shared.take_spare()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_unit_waiting_for_the_gate_reads_what_it_published() {
        let shared = Shared::new();
        let waiting = Link::new(2, shared.clone());
        let published = async {
            tokio::task::yield_now().await;
            shared.publish_gate(Gate {
                ready: Ready::Unhealthy("HTTP 500".into()),
                healthy: None,
            });
        };
        assert!(!shared.gate_known());
        let (gate, ()) = tokio::join!(waiting.gate(), published);
        assert!(shared.gate_known());
        assert_eq!(
            gate.map(|g| g.ready),
            Some(Ready::Unhealthy("HTTP 500".into()))
        );
        assert!(Link::detached().gate().await.is_none());
    }

    #[test]
    fn a_release_is_counted_once_per_unit() {
        let shared = Shared::new();
        let link = Link::new(0, shared.clone());
        link.release();
        link.release();
        assert_eq!(shared.releases(), 1);
        assert!(shared.released(0) && !shared.released(1));
    }
}
