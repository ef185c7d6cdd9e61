//! Watermarks inside the dataflow.
//!
//! A watermark is a collection holding, at each processing time `t`, one value `W`
//! (microseconds): rows that enter the dataflow after `t` have event times of at least
//! `W` (see `rampart_plan::event_time` for how columns derived from event times relate to
//! it). It is an ordinary differential collection, so a materialized view can arrange it
//! beside its rows and later dataflows import both.
//!
//! A source's watermark comes from its reader: each batch carries the reader's watermark
//! after it. Batches go to the workers round-robin, so the watermark at `t` is that of the
//! longest run of batches `0..n` all ingested by `t` (a batch still queued on another
//! worker could hold older rows).

use std::collections::BTreeMap;

use differential_dataflow::{AsCollection, VecCollection};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::{Scope, StreamVec};

use crate::{Diff, Time};

/// A watermark collection: one value (microseconds) at a time.
pub type Watermark<'s> = VecCollection<'s, Time, i64, Diff>;

/// What the worker loop pushes for each batch it ingests: the batch's sequence number and
/// the reader's watermark after it (`i64::MIN` before the first event).
pub type BatchWatermarks<'s> = VecCollection<'s, Time, (u64, i64), Diff>;

/// The watermark of a source feed from the `(seq, watermark)` of the batches ingested (on
/// worker 0; other workers' collections stay empty).
///
/// `resumed`: a reader that resumed at a checkpoint starts from the watermark `W` it had
/// there, and no value is given before time `hold` (once the checkpoint's restored rows are
/// all in: an operator closing windows must see them before the watermark that was already
/// past them).
pub fn safe_watermark<'s>(batches: BatchWatermarks<'s>, resumed: Option<(i64, Time)>) -> Watermark<'s> {
    let mut pending: BTreeMap<Time, Vec<(u64, i64)>> = BTreeMap::new();
    let mut ahead: BTreeMap<u64, i64> = BTreeMap::new();
    let mut next: u64 = 0;
    let first_worker = batches.inner.scope().index() == 0;
    let (mut best, hold) = match resumed {
        Some((w, hold)) if first_worker => (w, hold),
        _ => (i64::MIN, Time::MIN),
    };
    let mut current: Option<i64> = None;
    batches
        .inner
        .unary_frontier::<CapacityContainerBuilder<Vec<(i64, Time, Diff)>>, _, _, _>(
            Exchange::new(|_: &((u64, i64), Time, Diff)| 0u64),
            "SafeWatermark",
            |cap, _info| {
                let mut cap = Some(cap);
                move |(input, frontier), output| {
                    input.for_each(|_cap, data| {
                        for ((seq, w), t, d) in data.drain(..) {
                            if d > 0 {
                                pending.entry(t).or_default().push((seq, w));
                            }
                        }
                    });
                    let frontier = frontier.frontier();
                    let Some(held) = cap.as_mut() else { return };
                    if current.is_none() && best > i64::MIN {
                        // The resumed watermark, before any batch (the capability has not
                        // moved yet: it is released only below).
                        output.session(&held.delayed(&hold)).give((best, hold, 1));
                        current = Some(best);
                    }
                    while let Some(entry) = pending.first_entry() {
                        let t = *entry.key();
                        if frontier.less_equal(&t) {
                            break;
                        }
                        for (seq, w) in entry.remove() {
                            if seq >= next {
                                ahead.insert(seq, w);
                            }
                        }
                        while let Some(w) = ahead.remove(&next) {
                            best = best.max(w);
                            next += 1;
                        }
                        if best > i64::MIN && current != Some(best) {
                            let t = t.max(hold);
                            let at = held.delayed(&t);
                            let mut session = output.session(&at);
                            if let Some(old) = current {
                                session.give((old, t, -1));
                            }
                            session.give((best, t, 1));
                            current = Some(best);
                        }
                    }
                    downgrade(&mut cap, frontier.first().copied());
                }
            },
        )
        .as_collection()
}

/// Moves a held capability up to the frontier, or drops it when the input is done.
pub(super) fn downgrade(cap: &mut Option<timely::dataflow::operators::Capability<Time>>, lower: Option<Time>) {
    match lower {
        Some(t) => {
            if let Some(c) = cap.as_mut() {
                if *c.time() < t {
                    c.downgrade(&t);
                }
            }
        }
        None => *cap = None,
    }
}

/// The lower of two inputs' frontiers (`None` once both are done): how far an operator
/// reading both may release its capability.
pub(super) fn lower_of(
    a: &timely::progress::frontier::MutableAntichain<Time>,
    b: &timely::progress::frontier::MutableAntichain<Time>,
) -> Option<Time> {
    match (a.frontier().first(), b.frontier().first()) {
        (Some(x), Some(y)) => Some(*x.min(y)),
        (x, y) => x.or(y).copied(),
    }
}

/// Removes and returns the first entry of `pending` if both `a` and `b` have passed its
/// time: a binary operator that applies its inputs' changes in time order takes these until
/// `None`.
pub(super) fn pop_complete<P>(
    pending: &mut std::collections::BTreeMap<Time, P>,
    a: &timely::progress::frontier::MutableAntichain<Time>,
    b: &timely::progress::frontier::MutableAntichain<Time>,
) -> Option<(Time, P)> {
    let entry = pending.first_entry()?;
    let t = *entry.key();
    if a.less_equal(&t) || b.less_equal(&t) {
        return None;
    }
    Some((t, entry.remove()))
}

/// Runs an operator that needs its input in time order with a watermark beside it: buffers
/// `data` (distributed by `pact`) by time and, once both `data` and `watermark` have passed
/// a time, calls `step` with that time, its updates and the watermark as of that time;
/// what `step` pushes is emitted at that time.
pub(super) fn in_time_order<'s, D, P, F>(
    data: StreamVec<'s, Time, (D, Time, Diff)>,
    pact: P,
    watermark: StreamVec<'s, Time, (i64, Time, Diff)>,
    name: &str,
    mut step: F,
) -> super::Rows<'s>
where
    D: Clone + 'static,
    P: timely::dataflow::channels::pact::ParallelizationContract<Time, Vec<(D, Time, Diff)>>,
    F: FnMut(Time, Vec<(D, Diff)>, Option<i64>, &mut Vec<(rampart_repr::Row, Time, Diff)>) + 'static,
{
    data.binary_frontier::<_, CapacityContainerBuilder<Vec<(rampart_repr::Row, Time, Diff)>>, _, _, _, _>(
        watermark,
        pact,
        timely::dataflow::channels::pact::Pipeline,
        name,
        move |cap, _info| {
            let mut cap = Some(cap);
            let mut pending: BTreeMap<Time, Vec<(D, Diff)>> = BTreeMap::new();
            let mut tracker = WatermarkTracker::default();
            move |(data, data_frontier), (wm_in, wm_frontier), output| {
                data.for_each(|_cap, batch| {
                    for (d, t, r) in batch.drain(..) {
                        pending.entry(t).or_default().push((d, r));
                    }
                });
                wm_in.for_each(|_cap, batch| tracker.absorb(batch));
                let Some(held) = cap.as_mut() else { return };
                loop {
                    let t = match (pending.keys().next().copied(), tracker.next_time()) {
                        (Some(a), Some(b)) => a.min(b),
                        (Some(a), None) => a,
                        (None, Some(b)) => b,
                        (None, None) => break,
                    };
                    if data_frontier.less_equal(&t) || wm_frontier.less_equal(&t) {
                        break;
                    }
                    let updates = pending.remove(&t).unwrap_or_default();
                    let w = tracker.advance_through(t);
                    let mut out = Vec::new();
                    step(t, updates, w, &mut out);
                    if !out.is_empty() {
                        let at = held.delayed(&t);
                        output.session(&at).give_container(&mut out);
                    }
                }
                downgrade(&mut cap, lower_of(data_frontier, wm_frontier));
            }
        },
    )
    .as_collection()
}

/// The lowest of several watermarks, defined once every one of them is.
pub fn min_watermark<'s>(scope: Scope<'s, Time>, mut ws: Vec<Watermark<'s>>) -> Option<Watermark<'s>> {
    match ws.len() {
        0 => None,
        1 => ws.pop(),
        n => {
            let tagged: Vec<_> = ws
                .into_iter()
                .enumerate()
                .map(|(i, w)| w.map(move |w| ((), (i, w))))
                .collect();
            let reduced = differential_dataflow::collection::concatenate(scope, tagged).reduce(
                move |_key, input: &[(&(usize, i64), Diff)], output: &mut Vec<(i64, Diff)>| {
                    if input.len() == n {
                        if let Some(min) = input.iter().map(|((_, w), _)| *w).min() {
                            output.push((min, 1));
                        }
                    }
                },
            );
            Some(reduced.map(|((), w)| w))
        }
    }
}

/// The watermark's updates on every worker, for operators that close state with it.
pub fn broadcast_watermark<'s>(w: &Watermark<'s>) -> StreamVec<'s, Time, (i64, Time, Diff)> {
    w.inner.clone().broadcast()
}

/// Tracks a broadcast watermark inside an operator: feed it updates as they arrive and ask
/// for the value as of a time once the frontier has passed that time.
#[derive(Default)]
pub struct WatermarkTracker {
    pending: BTreeMap<Time, i64>,
    current: Option<i64>,
}

impl WatermarkTracker {
    /// Records watermark updates (only insertions matter: watermarks only grow).
    pub fn absorb(&mut self, updates: &mut Vec<(i64, Time, Diff)>) {
        for (w, t, d) in updates.drain(..) {
            if d > 0 {
                let e = self.pending.entry(t).or_insert(w);
                *e = (*e).max(w);
            }
        }
    }

    /// Earliest time with a pending watermark change.
    pub fn next_time(&self) -> Option<Time> {
        self.pending.keys().next().copied()
    }

    /// Applies the changes at times up to and including `t`; returns the watermark then.
    pub fn advance_through(&mut self, t: Time) -> Option<i64> {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > t {
                break;
            }
            let w = entry.remove();
            self.current = Some(self.current.map_or(w, |c| c.max(w)));
        }
        self.current
    }
}
