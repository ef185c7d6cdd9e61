//! [`FeedProgress`]: how far the batches of a source's reader that the dataflow has taken
//! in reach. Shared by the engine (which counts batches), the checkpointer and resumable
//! sinks (which read positions from it).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::time::Time;
use crate::Positions;

/// How far the batches a feed's workers have pushed into the dataflow reach. Batches go to
/// the workers round-robin, so batch 5 may be ingested before batch 4, and two bounds
/// matter:
///
/// - [`FeedProgress::complete`]: the positions of the longest run of batches `0..n` that
///   are all ingested. Everything up to them is in the dataflow.
/// - [`FeedProgress::ingested_max`]: the positions of the furthest batch ingested. Nothing
///   beyond them is in the dataflow.
///
/// A batch is counted before the worker advances its input past the batch's time, so once
/// a dataflow's frontier passes a time observed after reading these, its output reflects
/// at least `complete` and at most `ingested_max` (as read then).
#[derive(Clone, Default)]
pub struct FeedProgress(Arc<Mutex<ProgressState>>);

#[derive(Default)]
struct ProgressState {
    /// The next batch number not yet ingested.
    next: u64,
    /// Positions after batch `next - 1`.
    positions: Positions,
    /// Batches ingested ahead of `next`.
    ahead: BTreeMap<u64, Positions>,
    /// Positions of the furthest batch ingested.
    max: Positions,
    /// The dataflow time each batch since `timed_from` was ingested at, with its positions:
    /// what [`FeedProgress::positions_through`] reads.
    timed: BTreeMap<u64, (Time, Positions)>,
    /// The first batch number `timed` can hold; every batch before it was ingested at or
    /// before `timed_base_time`, and `timed_base` are the positions after them.
    timed_from: u64,
    timed_base: Positions,
    timed_base_time: Time,
    /// Whether ingestion times are kept (a checkpointer reads them; nothing else does).
    timed_enabled: bool,
    /// The latest time a batch entered at.
    last_time: Time,
}

/// How many ingested batches a feed remembers the time of before it forgets the oldest
/// (they are only asked about for the last second or two: see
/// [`FeedProgress::positions_through`]).
const TIMED_BATCHES: usize = 1 << 16;

impl FeedProgress {
    /// Progress of a reader that resumes at `positions` (a checkpoint's): everything up to
    /// them counts as ingested before the first batch arrives.
    pub fn starting_at(positions: Positions) -> FeedProgress {
        let st = ProgressState {
            positions: positions.clone(),
            max: positions.clone(),
            timed_base: positions,
            ..ProgressState::default()
        };
        FeedProgress(Arc::new(Mutex::new(st)))
    }

    /// Keeps the dataflow time of every batch ingested from now on, for
    /// [`FeedProgress::positions_through`] (call before the dataflow reading the feed is
    /// built; a checkpointer then calls [`FeedProgress::forget_through`] as it goes).
    pub fn track_times(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).timed_enabled = true;
    }

    /// Whether ingestion times are kept ([`FeedProgress::track_times`]).
    pub fn tracks_times(&self) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).timed_enabled
    }

    /// For a feed whose batches enter in order: the time batch `seq` enters at, if every
    /// batch before it has entered (`None`: wait). That is the worker's input time `now`,
    /// or the time of the batch before if that is later (another worker's clock ran
    /// ahead), so times never go back along the batches and every time splits them at a
    /// position ([`FeedProgress::positions_through`] always answers).
    pub fn ingest_time(&self, seq: u64, now: Time) -> Option<Time> {
        let st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (seq == st.next).then_some(now.max(st.last_time))
    }

    /// Counts batch `seq` (with its cumulative positions) as ingested at dataflow time `at`.
    pub fn ingested(&self, seq: u64, positions: &Positions, at: Time) {
        let mut st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if seq < st.next {
            return;
        }
        if st.timed_enabled && seq >= st.timed_from {
            st.timed.insert(seq, (at, positions.clone()));
            if st.timed.len() > TIMED_BATCHES {
                let oldest = st.timed.keys().nth(TIMED_BATCHES / 2).copied().unwrap_or(seq);
                st.forget_before(oldest);
            }
        }
        st.last_time = st.last_time.max(at);
        st.max.merge(positions);
        st.ahead.insert(seq, positions.clone());
        loop {
            let next = st.next;
            let Some(p) = st.ahead.remove(&next) else { break };
            st.positions.merge(&p);
            st.next += 1;
        }
    }

    /// Positions up to which every batch has been ingested.
    pub fn complete(&self) -> Positions {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).positions.clone()
    }

    /// Positions of the furthest batch ingested.
    pub fn ingested_max(&self) -> Positions {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).max.clone()
    }

    /// Exactly what the dataflow holds from this feed at time `t`, once its frontier has
    /// passed `t` (every batch ingested at or before `t` is then counted): the positions
    /// after the batches ingested at or before `t`, if they are batches `0..n` with no gap.
    /// `None` when a later batch was ingested at or before `t` while an earlier one came
    /// after it (two workers take batches in turn), or when `t` is before what this feed
    /// still remembers: no position separates what is in from what is not.
    pub fn positions_through(&self, t: Time) -> Option<Positions> {
        let st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !st.timed_enabled || t < st.timed_base_time {
            return None;
        }
        let mut positions = st.timed_base.clone();
        let mut expect = st.timed_from;
        let mut open = true;
        for (seq, (at, p)) in &st.timed {
            if *at > t {
                open = false;
                continue;
            }
            if !open || *seq != expect {
                return None;
            }
            positions.merge(p);
            expect += 1;
        }
        Some(positions)
    }

    /// Forgets the times of the batches ingested at or before `t` (a checkpoint at `t` is
    /// durable: no later one asks about times before it), when they are a prefix.
    pub fn forget_through(&self, t: Time) {
        let mut st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = st.timed_from;
        for (seq, (at, _)) in &st.timed {
            if *at > t || *seq != next {
                break;
            }
            next += 1;
        }
        st.forget_before(next);
        st.timed_base_time = st.timed_base_time.max(t);
    }
}

impl ProgressState {
    /// Folds the times of batches before `seq` into the base: times before the latest of
    /// them can no longer be asked about.
    fn forget_before(&mut self, seq: u64) {
        let keep = self.timed.split_off(&seq);
        for (_, (at, p)) in std::mem::replace(&mut self.timed, keep) {
            self.timed_base.merge(&p);
            self.timed_base_time = self.timed_base_time.max(at);
        }
        self.timed_from = self.timed_from.max(seq);
    }
}
