//! View snapshots: [`SnapshotCapture`] holds a view's updates, per worker, until a
//! checkpointer takes them through a time it can name the source positions of; and
//! [`restored_rows`] puts the rows of a restored snapshot back into the view's dataflow.
//!
//! Only views whose rows are a function of single source events (reads of sources through
//! maps, filters and unions, no retention) are snapshotted: such a view only ever inserts,
//! its snapshot is the rows it holds, and nothing else in its dataflow keeps state, so the
//! rows plus the positions its readers had reached (with, for a watermarked source, each
//! stream's largest event time) are all a restart needs. A restored watermark is held back
//! until [`restored_by`]: the restored rows are all in before it closes a window.

use std::sync::Arc;

use differential_dataflow::AsCollection;
use parking_lot::Mutex;
use rampart_repr::Row;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::{source, Operator};
use timely::dataflow::Scope;

use crate::render::Rows;
use crate::{Diff, Time};

/// The rows of a view's checkpoint, with multiplicities, that its dataflow starts from.
pub type RestoredRows = Arc<Vec<(Row, Diff)>>;

/// A view's updates not yet taken by a checkpoint, on every worker.
pub struct SnapshotCapture {
    workers: Mutex<Vec<Captured>>,
}

#[derive(Default)]
struct Captured {
    /// Updates at times below `upper`, and at `upper` or later once their time closes.
    pending: Vec<(Row, Time, Diff)>,
    /// The worker's frontier: every update before it has been captured.
    upper: Time,
}

impl SnapshotCapture {
    /// A capture for a view maintained by `workers` workers.
    pub fn new(workers: usize) -> Arc<SnapshotCapture> {
        Arc::new(SnapshotCapture {
            workers: Mutex::new((0..workers.max(1)).map(|_| Captured::default()).collect()),
        })
    }

    fn push(&self, worker: usize, updates: &mut Vec<(Row, Time, Diff)>, upper: Time) {
        let mut workers = self.workers.lock();
        if let Some(w) = workers.get_mut(worker) {
            w.pending.append(updates);
            w.upper = w.upper.max(upper);
        }
    }

    /// The latest time through which every worker has captured every update, if any.
    pub fn complete_through(&self) -> Option<Time> {
        let workers = self.workers.lock();
        workers.iter().map(|w| w.upper).min().and_then(|u| u.checked_sub(1))
    }

    /// Removes and returns the updates at or before `t` (call with `t` at most
    /// [`SnapshotCapture::complete_through`]).
    pub fn take_through(&self, t: Time) -> Vec<(Row, Diff)> {
        let mut out = Vec::new();
        for w in self.workers.lock().iter_mut() {
            let (through, later): (Vec<_>, Vec<_>) = w.pending.drain(..).partition(|(_, at, _)| *at <= t);
            w.pending = later;
            out.extend(through.into_iter().map(|(row, _, diff)| (row, diff)));
        }
        out
    }

    /// Gives back updates a checkpoint took but could not write, as of time `t`, so the
    /// next checkpoint writes them.
    pub fn put_back(&self, rows: Vec<(Row, Diff)>, t: Time) {
        if let Some(w) = self.workers.lock().first_mut() {
            w.pending.extend(rows.into_iter().map(|(row, diff)| (row, t, diff)));
        }
    }
}

/// Hands every update of `rows` on this worker to `capture`, with the worker's frontier.
pub(crate) fn capture_snapshot(rows: Rows<'_>, capture: Arc<SnapshotCapture>, worker: usize) {
    let mut batch: Vec<(Row, Time, Diff)> = Vec::new();
    rows.inner.sink(Pipeline, "SnapshotCapture", move |(input, frontier)| {
        input.for_each(|_cap, data| batch.append(data));
        let upper = frontier.frontier().first().copied().unwrap_or(Time::MAX);
        capture.push(worker, &mut batch, upper);
    });
}

/// Rows of a restored snapshot a worker hands on at one time: the views downstream
/// rebuild from them chunk by chunk, as they would from a replay, rather than from one
/// batch of everything.
const RESTORE_CHUNK: usize = 16_384;

/// The first time after every worker has handed on its share of `rows` restored rows
/// ([`restored_rows`] from `start`, with `peers` workers): what a restored watermark waits
/// for.
pub fn restored_by(rows: usize, peers: usize, start: Time) -> Time {
    let share = rows.div_ceil(peers.max(1));
    start + share.div_ceil(RESTORE_CHUNK) as Time
}

/// This worker's share of a restored snapshot (every `peers`-th row), as a collection
/// starting at time `start` (`ViewSpec::restore_start`: the coordinator's clock when it
/// created the view, after the restored tables' contents, and the same on every worker),
/// [`RESTORE_CHUNK`] rows per millisecond of dataflow time.
pub(crate) fn restored_rows<'s>(
    scope: Scope<'s, Time>,
    rows: RestoredRows,
    worker: usize,
    peers: usize,
    start: Time,
) -> Rows<'s> {
    source(scope, "RestoredSnapshot", move |cap, info| {
        let activator = scope.activator_for(info.address);
        let mut cap = Some(cap.delayed(&start));
        // Let go once every row is handed on: the dataflow lives on, the list need not.
        let mut rows = Some(rows);
        let mut next = worker;
        let step = peers.max(1);
        move |output| {
            let (Some(c), Some(all)) = (cap.as_mut(), rows.as_ref()) else {
                return;
            };
            let t = *c.time();
            let mut data: Vec<(Row, Time, Diff)> = all
                .iter()
                .skip(next)
                .step_by(step)
                .take(RESTORE_CHUNK)
                .map(|(row, diff)| (row.clone(), t, *diff))
                .collect();
            next += data.len() * step;
            if !data.is_empty() {
                output.session(c).give_container(&mut data);
            }
            if next >= all.len() {
                cap = None;
                rows = None;
            } else {
                c.downgrade(&(t + 1));
                activator.activate();
            }
        }
    })
    .as_collection()
}
