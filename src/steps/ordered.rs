//! Progress in plan order while units run side by side: takes each unit's
//! [`Event`]s through its own [`UnitReporter`]; gives them to the run's
//! reporter in plan order. The first unfinished unit of the plan reports
//! live; a later one's events wait in its buffer until every unit before it
//! has finished, so `[n/total]` lines never interleave or go backwards.

use std::sync::Mutex;

use crate::progress::{Event, Reporter, StepEnd};

/// An event a unit reported while it was not first: kept until its turn.
enum Kept {
    Started {
        number: u32,
        total: usize,
        title: String,
    },
    Detail(String),
    Finished(StepEnd<String>),
    Warning(String),
}

impl Kept {
    /// A copy of `event` to give later; `None` for events steps never send
    /// (they pass straight through).
    fn of(event: &Event<'_>) -> Option<Kept> {
        Some(match *event {
            Event::StepStarted {
                number,
                total,
                title,
            } => Kept::Started {
                number,
                total,
                title: title.to_string(),
            },
            Event::StepDetail { text } => Kept::Detail(text.to_string()),
            Event::StepFinished(ref end) => Kept::Finished(end.map(|text| text.to_string())),
            Event::Warning { text } => Kept::Warning(text.to_string()),
            _ => return None,
        })
    }

    fn give(&self, out: &mut dyn Reporter) {
        out.event(match self {
            Kept::Started {
                number,
                total,
                title,
            } => Event::StepStarted {
                number: *number,
                total: *total,
                title,
            },
            Kept::Detail(text) => Event::StepDetail { text },
            Kept::Finished(end) => Event::StepFinished(end.map(String::as_str)),
            Kept::Warning(text) => Event::Warning { text },
        });
    }
}

/// The run's reporter, shared by every unit of the plan.
pub struct Ordered<'r> {
    state: Mutex<State<'r>>,
}

struct State<'r> {
    out: &'r mut dyn Reporter,
    /// The first unit that has not finished: it reports live.
    head: usize,
    kept: Vec<Vec<Kept>>,
    finished: Vec<bool>,
}

impl<'r> Ordered<'r> {
    /// Progress for a plan of `units` units, given to `out`.
    pub fn new(out: &'r mut dyn Reporter, units: usize) -> Ordered<'r> {
        Ordered {
            state: Mutex::new(State {
                out,
                head: 0,
                kept: (0..units).map(|_| Vec::new()).collect(),
                finished: vec![false; units],
            }),
        }
    }

    /// The reporter unit `index` (its place in the plan) reports through.
    pub fn unit(&self, index: usize) -> UnitReporter<'_, 'r> {
        UnitReporter {
            index,
            ordered: self,
        }
    }

    fn event(&self, index: usize, event: Event<'_>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if index == state.head {
            state.out.event(event);
            return;
        }
        match Kept::of(&event) {
            Some(kept) => state.kept[index].push(kept),
            None => state.out.event(event),
        }
    }

    /// Unit `index` has reported everything: give what the units after it
    /// kept, up to the next one still running.
    pub fn finished(&self, index: usize) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *state;
        state.finished[index] = true;
        while state.head < state.finished.len() && state.finished[state.head] {
            state.head += 1;
            if let Some(kept) = state.kept.get_mut(state.head) {
                for event in kept.drain(..) {
                    event.give(&mut *state.out);
                }
            }
        }
    }
}

/// One unit's side of [`Ordered`].
pub struct UnitReporter<'o, 'r> {
    index: usize,
    ordered: &'o Ordered<'r>,
}

impl Reporter for UnitReporter<'_, '_> {
    fn event(&mut self, event: Event<'_>) {
        self.ordered.event(self.index, event);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outcome::StepStatus;

    /// Keeps the step numbers it was given.
    #[derive(Default)]
    struct Lines(Vec<String>);

    impl Reporter for Lines {
        fn event(&mut self, event: Event<'_>) {
            match event {
                Event::StepStarted { number, .. } => self.0.push(format!("start {number}")),
                Event::StepDetail { text } => self.0.push(format!("detail {text}")),
                Event::StepFinished(end) => self.0.push(format!("end {}", end.number)),
                _ => {}
            }
        }
    }

    fn started(number: u32) -> Event<'static> {
        Event::StepStarted {
            number,
            total: 3,
            title: "t",
        }
    }

    fn ended(number: u32) -> Event<'static> {
        Event::StepFinished(StepEnd {
            number,
            total: 3,
            title: "t",
            status: StepStatus::Pass,
            took: Duration::ZERO,
            summary: "s",
        })
    }

    #[test]
    fn later_units_wait_for_the_earlier_ones_and_the_first_is_live() {
        let mut lines = Lines::default();
        {
            let ordered = Ordered::new(&mut lines, 3);
            let (mut a, mut b, mut c) = (ordered.unit(0), ordered.unit(1), ordered.unit(2));
            c.event(started(3));
            a.event(started(1));
            b.event(started(2));
            c.event(ended(3));
            ordered.finished(2);
            a.event(Event::StepDetail { text: "live" });
            b.event(ended(2));
            ordered.finished(1);
            a.event(ended(1));
            ordered.finished(0);
        }
        assert_eq!(
            lines.0,
            [
                "start 1",
                "detail live",
                "end 1",
                "start 2",
                "end 2",
                "start 3",
                "end 3"
            ]
        );
    }
}
