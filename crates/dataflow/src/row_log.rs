//! [`RowLog`]: a materialized view's rows on one worker, kept as the updates that made them
//! in the order they arrived, instead of in a differential arrangement.
//!
//! An arrangement sorts every update in its batcher and its spine merges each one about
//! log2(rows / batch) times, cloning and dropping the row's reference at every merge: for
//! the seed pipeline's two views of every event (`normalized_events`, `enriched_events`)
//! that was a quarter of the engine's CPU. Nothing needs those views' rows in order: a
//! query copies them out whole and later views import them whole. A log appends each update
//! once; only retractions make it longer than its contents, so it is consolidated (sorted,
//! equal rows at equal times summed, times before the compaction frontier advanced to it)
//! only once the retractions appended since the last time reach a third of its length:
//! never for a view fed only by sources, amortized O(log n) per retraction otherwise.
//! Views with a retention (a steady stream of expiries) keep an arrangement, whose merges
//! are spread out in time.
//!
//! Invariants: every update is appended to the log of the worker its row hashes to (so a
//! row's insertions and retractions meet there), or of the worker that produced it in a
//! view whose plan retracts each row where it inserted it ([`Placement::InPlace`]: they
//! meet there); updates appended after the log's upper was `u` have times at or after
//! `u`; consolidation rewrites only the updates every reader has already read (all of
//! them, or it waits), so a reader's position stays valid; it advances no update past the
//! compaction frontier nor past any live [`Pin`], so an operator that reads the log by
//! time finds every update it processed before its pin.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::cell::{Cell, RefCell};
use std::hash::BuildHasher;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::AsCollection;
use rampart_repr::Row;
use timely::dataflow::channels::pact::{Exchange, ParallelizationContract, Pipeline};
use timely::dataflow::operators::generic::operator::{source, Operator};
use timely::dataflow::Scope;
use timely::scheduling::Activator;

use crate::capture::ViewStore;
use crate::render::Rows;
use crate::{Diff, Time};

/// Updates per chunk: the log grows by chunks, so it never copies itself to grow.
const CHUNK: usize = 1 << 15;

/// Updates an importer emits per activation: a view created over a large one takes its
/// history in steps instead of one burst.
const IMPORT_STEP: usize = 1 << 16;

type Update = (Row, Time, Diff);

/// Updates [`RowLog::for_each_chunk_through`] hands over at a time.
const SCAN_CHUNK: usize = 1 << 14;

/// Which rows an importer passes on (cloned only if kept).
pub type Keep = Rc<dyn Fn(&Row) -> bool>;

/// Which worker's log a view's update is appended to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The worker its row hashes to: a row's insertions and retractions meet in one log,
    /// where consolidation can cancel them.
    ByRow,
    /// The worker that produced it, with no exchange between workers: only for a view whose
    /// plan produces every retraction on the worker that produced the insertion it cancels
    /// (`Plan::retracts_where_it_inserted`: reads, maps, filters, unions and enrichment
    /// joins, such as `normalized_events` and `enriched_events`), so they still meet.
    /// Saves hashing every row and handing about half of them to the other worker.
    InPlace,
}

/// One worker's share of a view's updates, shared by the dataflow that appends them and
/// the dataflows that import them (all on this worker's thread).
#[derive(Clone, Default)]
pub struct RowLog(Rc<RefCell<LogState>>);

#[derive(Default)]
struct LogState {
    /// The updates in arrival order (after consolidations, those consolidated first).
    chunks: Vec<Vec<Update>>,
    len: usize,
    /// Updates with a negative multiplicity in the log.
    negatives: usize,
    /// Of those, the ones appended since the last consolidation.
    fresh_negatives: usize,
    /// Every update appended from now on has a time at or after this (`Time::MAX`: no
    /// more updates).
    upper: Time,
    /// Reads are only asked for at or after this time: earlier times may be merged into it.
    since: Time,
    /// Importers by id: how far each has read and how to wake it.
    readers: Vec<Option<Reader>>,
    /// Times below which operators that read the log's updates by time (see [`Pin`]) have
    /// processed everything: consolidation advances no update past the lowest of them.
    pins: Vec<Weak<Cell<Time>>>,
}

struct Reader {
    cursor: usize,
    activator: Activator,
}

impl LogState {
    fn push(&mut self, update: Update) {
        if update.2 < 0 {
            self.negatives += 1;
            self.fresh_negatives += 1;
        }
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push(update),
            _ => {
                let mut c = Vec::with_capacity(CHUNK);
                c.push(update);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }

    fn updates_from(&self, start: usize) -> impl Iterator<Item = &Update> {
        let (first, offset) = (start / CHUNK, start % CHUNK);
        self.chunks
            .iter()
            .skip(first)
            .enumerate()
            .flat_map(move |(i, c)| c[if i == 0 { offset.min(c.len()) } else { 0 }..].iter())
    }

    fn wake_readers(&self) {
        for r in self.readers.iter().flatten() {
            r.activator.activate();
        }
    }

    /// Consolidates the whole log if every reader has read all of it and retractions
    /// appended since the last time are a third of it.
    fn maybe_consolidate(&mut self) {
        let caught_up = self.readers.iter().flatten().all(|r| r.cursor == self.len);
        if self.fresh_negatives == 0 || 3 * self.fresh_negatives < self.len || !caught_up {
            return;
        }
        self.pins.retain(|p| p.strong_count() > 0);
        let since = self
            .pins
            .iter()
            .filter_map(Weak::upgrade)
            .fold(self.since, |s, p| s.min(p.get()));
        let mut all: Vec<Update> = Vec::with_capacity(self.len);
        for c in self.chunks.drain(..) {
            all.extend(c.into_iter().map(|(r, t, d)| (r, t.max(since), d)));
        }
        consolidate_updates(&mut all);
        self.len = 0;
        self.negatives = 0;
        for u in all {
            self.push(u);
        }
        self.fresh_negatives = 0;
        for r in self.readers.iter_mut().flatten() {
            r.cursor = self.len;
        }
    }
}

impl RowLog {
    /// Every update appended from now on has a time at or after this (`Time::MAX` once the
    /// view's dataflow is gone).
    pub fn upper(&self) -> Time {
        self.0.borrow().upper
    }

    /// Reads are only asked for at or after this time.
    pub fn since(&self) -> Time {
        self.0.borrow().since
    }

    /// Allows times before `since` to be merged into it, and consolidates when retractions
    /// have piled up.
    pub fn compact(&self, since: Time) {
        let mut s = self.0.borrow_mut();
        s.since = s.since.max(since);
        s.maybe_consolidate();
    }

    /// The rows as of `at` (at or after [`RowLog::since`]): every update at a time at most
    /// `at`, once per unit of multiplicity.
    pub fn rows_at(&self, at: Time) -> Vec<Row> {
        let s = self.0.borrow();
        let upto = || s.updates_from(0).filter(|(_, t, _)| *t <= at);
        // Rows with a retraction are summed; the others (all of them in a log without
        // retractions) are copied out as they are.
        let retracted: HashSet<&Row> = if s.negatives == 0 {
            HashSet::new()
        } else {
            upto().filter(|(_, _, d)| *d < 0).map(|(r, _, _)| r).collect()
        };
        let mut summed: HashMap<&Row, Diff> = HashMap::new();
        let mut rows = Vec::with_capacity(s.len);
        for (r, _, d) in upto() {
            if retracted.contains(r) {
                *summed.entry(r).or_default() += d;
            } else {
                rows.extend(std::iter::repeat_n(r, (*d).max(0) as usize).cloned());
            }
        }
        for (r, d) in summed {
            rows.extend(std::iter::repeat_n(r, d.max(0) as usize).cloned());
        }
        rows
    }

    /// Calls `f` with the log's updates at times at most `t` (row and multiplicity), a
    /// chunk of clones at a time. `f` must not use the log.
    pub fn for_each_chunk_through(&self, t: Time, mut f: impl FnMut(&[(Row, Diff)])) {
        let s = self.0.borrow();
        let mut chunk = Vec::with_capacity(SCAN_CHUNK);
        for (r, _, d) in s.updates_from(0).filter(|(_, time, _)| *time <= t) {
            chunk.push((r.clone(), *d));
            if chunk.len() == SCAN_CHUNK {
                f(&chunk);
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            f(&chunk);
        }
    }

    /// A pin for an operator that reads this log by time: until the operator advances it
    /// to `p`, consolidation moves no update to a time at or after `p`, so every update the
    /// operator processed at a time before `p` is found at a time before `p`.
    pub fn pin(&self) -> Pin {
        let cell = Rc::new(Cell::new(Time::MIN));
        self.0.borrow_mut().pins.push(Rc::downgrade(&cell));
        Pin(cell)
    }

    /// Appends `rows`' updates to this worker's log (where `placement` sends them), advances
    /// the logs' uppers with `rows`' frontier, wakes the importers, and reports that
    /// frontier to `store` (how far the view is complete on this worker) when given.
    pub fn append_from<'s>(&self, rows: Rows<'s>, store: Option<Arc<ViewStore>>, shard: usize, placement: Placement) {
        match placement {
            Placement::ByRow => {
                let hasher = foldhash::fast::FixedState::with_seed(0);
                self.append_through(
                    rows,
                    Exchange::new(move |(r, _, _): &Update| hasher.hash_one(r)),
                    store,
                    shard,
                )
            }
            Placement::InPlace => self.append_through(rows, Pipeline, store, shard),
        }
    }

    /// [`RowLog::append_from`] with the channel `pact` between the view's dataflow and the log.
    fn append_through<'s, P>(&self, rows: Rows<'s>, pact: P, store: Option<Arc<ViewStore>>, shard: usize)
    where
        P: ParallelizationContract<Time, Vec<Update>>,
    {
        let writer = Writer(self.clone());
        rows.inner.sink(pact, "RowLog", move |(input, frontier)| {
            let mut log = writer.0 .0.borrow_mut();
            let mut changed = false;
            input.for_each(|_cap, data| {
                if data.iter().any(|(_, _, d)| *d < 0) {
                    consolidate_updates(data);
                }
                changed |= !data.is_empty();
                for u in data.drain(..) {
                    log.push(u);
                }
            });
            let upper = frontier.frontier().first().copied().unwrap_or(Time::MAX);
            if upper > log.upper {
                log.upper = upper;
                changed = true;
            }
            if changed {
                log.wake_readers();
            }
            drop(log);
            if let Some(store) = &store {
                store.advance(shard, upper);
            }
        });
    }

    /// The log's rows as a collection in `scope`: its updates so far (at their times, or
    /// the compaction frontier where consolidated), then each one as it is appended; only
    /// the rows `keep` passes, when given.
    pub fn import<'s>(&self, scope: Scope<'s, Time>, keep: Option<Keep>) -> Rows<'s> {
        let log = self.clone();
        source(scope, "ImportLog", move |cap, info| {
            let activator = scope.activator_for(info.address);
            let reader = ReaderHandle::register(log, activator.clone());
            let mut cap = Some(cap);
            move |output| {
                let Some(held) = cap.as_mut() else { return };
                let (updates, upper, more) = reader.read(keep.as_deref());
                let mut batch: Vec<Update> = Vec::new();
                let mut at = *held.time();
                for (r, t, d) in updates {
                    let t = t.max(*held.time());
                    if t != at && !batch.is_empty() {
                        output.session(&held.delayed(&at)).give_container(&mut batch);
                    }
                    at = t;
                    batch.push((r, t, d));
                }
                if !batch.is_empty() {
                    output.session(&held.delayed(&at)).give_container(&mut batch);
                }
                if more {
                    activator.activate();
                } else if upper == Time::MAX {
                    cap = None;
                } else if upper > *held.time() {
                    held.downgrade(&upper);
                }
            }
        })
        .as_collection()
    }
}

/// See [`RowLog::pin`]; dropping it releases the log.
pub struct Pin(Rc<Cell<Time>>);

impl Pin {
    /// The operator has processed every update at a time before `t`.
    pub fn advance(&self, t: Time) {
        self.0.set(self.0.get().max(t));
    }
}

/// The appending side: when the view's dataflow is dropped, the log ends (upper
/// `Time::MAX`) and its importers release their capabilities.
struct Writer(RowLog);

impl Drop for Writer {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0 .0.try_borrow_mut() {
            s.upper = Time::MAX;
            s.wake_readers();
        }
    }
}

/// An importer's place in the log, given up when its dataflow is dropped (so it no longer
/// holds back consolidation).
struct ReaderHandle {
    log: RowLog,
    id: usize,
}

impl ReaderHandle {
    fn register(log: RowLog, activator: Activator) -> ReaderHandle {
        let id = {
            let mut s = log.0.borrow_mut();
            let reader = Some(Reader { cursor: 0, activator });
            match s.readers.iter().position(Option::is_none) {
                Some(free) => {
                    s.readers[free] = reader;
                    free
                }
                None => {
                    s.readers.push(reader);
                    s.readers.len() - 1
                }
            }
        };
        ReaderHandle { log, id }
    }

    /// Up to [`IMPORT_STEP`] updates not read yet (those `keep` passes), the log's upper,
    /// and whether more updates wait.
    fn read(&self, keep: Option<&dyn Fn(&Row) -> bool>) -> (Vec<Update>, Time, bool) {
        let mut s = self.log.0.borrow_mut();
        let Some(cursor) = s.readers.get(self.id).and_then(|r| r.as_ref()).map(|r| r.cursor) else {
            return (Vec::new(), s.upper, false);
        };
        let end = s.len.min(cursor + IMPORT_STEP);
        let updates: Vec<Update> = s
            .updates_from(cursor)
            .take(end - cursor)
            .filter(|(r, _, _)| keep.is_none_or(|k| k(r)))
            .cloned()
            .collect();
        let (upper, more) = (s.upper, end < s.len);
        if let Some(Some(r)) = s.readers.get_mut(self.id) {
            r.cursor = end;
        }
        (updates, upper, more)
    }
}

impl Drop for ReaderHandle {
    fn drop(&mut self) {
        if let Ok(mut s) = self.log.0.try_borrow_mut() {
            if let Some(r) = s.readers.get_mut(self.id) {
                *r = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rampart_repr::{row, Datum};

    use super::*;

    fn log_of(updates: &[(i64, Time, Diff)]) -> RowLog {
        let log = RowLog::default();
        {
            let mut s = log.0.borrow_mut();
            for (v, t, d) in updates {
                s.push((row![Datum::Int(*v)], *t, *d));
            }
        }
        log
    }

    fn ints(rows: Vec<Row>) -> Vec<i64> {
        let mut v: Vec<i64> = rows.iter().filter_map(|r| r[0].as_int()).collect();
        v.sort();
        v
    }

    #[test]
    fn rows_at_a_time_count_the_updates_up_to_it() {
        // By hand: 1 and 2 at time 10, 1 retracted and 3 added at 20, 2 twice more at 30.
        let log = log_of(&[(1, 10, 1), (2, 10, 1), (1, 20, -1), (3, 20, 1), (2, 30, 2)]);
        assert_eq!(ints(log.rows_at(5)), Vec::<i64>::new());
        assert_eq!(ints(log.rows_at(10)), vec![1, 2]);
        assert_eq!(ints(log.rows_at(25)), vec![2, 3]);
        assert_eq!(ints(log.rows_at(30)), vec![2, 2, 2, 3]);
    }

    #[test]
    fn consolidation_keeps_every_read_at_or_after_since() {
        let mut updates = Vec::new();
        for i in 0..30 {
            updates.push((i % 3, 10 + i as Time, 1));
            updates.push((i % 3, 10 + i as Time, -1));
        }
        updates.push((7, 100, 1));
        let log = log_of(&updates);
        let before: Vec<Vec<i64>> = [50, 99, 100].iter().map(|t| ints(log.rows_at(*t))).collect();
        log.compact(50);
        assert!(log.0.borrow().len <= 1, "inserted and retracted rows cancel");
        let after: Vec<Vec<i64>> = [50, 99, 100].iter().map(|t| ints(log.rows_at(*t))).collect();
        assert_eq!(before, after);
        assert_eq!(after[2], vec![7]);
    }

    #[test]
    fn a_log_of_insertions_is_never_rewritten() {
        let log = log_of(&[(1, 10, 1), (1, 11, 1), (2, 12, 1)]);
        log.compact(100);
        assert_eq!(log.0.borrow().len, 3);
        assert_eq!(ints(log.rows_at(100)), vec![1, 1, 2]);
    }

    /// A log appended to by a dataflow on `worker`, with `ints` inserted at time 0 on this
    /// worker, stepped until the log is complete through time 0; the input stays open.
    fn appended_log(
        worker: &mut timely::worker::Worker,
        placement: Placement,
        ints: std::ops::Range<i64>,
    ) -> (RowLog, differential_dataflow::input::InputSession<Time, Row, Diff>) {
        use differential_dataflow::input::Input;

        let log = RowLog::default();
        let mut input = worker.dataflow::<Time, _, _>(|scope| {
            let (input, rows) = scope.new_collection::<Row, Diff>();
            log.append_from(rows, None, 0, placement);
            input
        });
        for i in ints {
            input.update(row![Datum::Int(i)], 1);
        }
        input.advance_to(1);
        input.flush();
        while log.upper() < 1 {
            worker.step();
        }
        (log, input)
    }

    #[test]
    fn a_dataflow_importing_a_log_sees_its_history_then_its_changes() {
        use timely::dataflow::operators::probe::Handle;
        use timely::dataflow::operators::Probe;

        // Expected by hand: history is 0..N (more than one import step), then 5 is
        // retracted and N added; the importer's consolidated output must be exactly that.
        const N: i64 = IMPORT_STEP as i64 + 1000;
        timely::execute_directly(|worker| {
            let (log, mut input) = appended_log(worker, Placement::ByRow, 0..N);
            let seen: Rc<RefCell<Vec<Update>>> = Rc::default();
            let probe = Handle::new();
            worker.dataflow::<Time, _, _>(|scope| {
                let seen = seen.clone();
                log.import(scope, None).inner.probe_with(&probe).sink(
                    timely::dataflow::channels::pact::Pipeline,
                    "Seen",
                    move |(input, _)| {
                        input.for_each(|_, data| seen.borrow_mut().append(data));
                    },
                );
            });
            input.update(row![Datum::Int(5)], -1);
            input.update(row![Datum::Int(N)], 1);
            input.advance_to(2);
            input.flush();
            while probe.less_than(&2) {
                worker.step();
            }
            let mut got: Vec<(Row, Diff)> = seen.borrow().iter().map(|(r, _, d)| (r.clone(), *d)).collect();
            differential_dataflow::consolidation::consolidate(&mut got);
            let want: Vec<(Row, Diff)> = (0..=N).filter(|i| *i != 5).map(|i| (row![Datum::Int(i)], 1)).collect();
            assert_eq!(got, want);
            assert!(seen
                .borrow()
                .iter()
                .any(|(r, t, d)| r[0] == Datum::Int(5) && *t == 1 && *d == -1));
        });
    }

    /// Two workers; only worker 0 produces rows. In place, they all stay in its log; by row,
    /// the other worker's log gets the rows that hash to it. Counted per worker by hand.
    #[test]
    fn rows_appended_in_place_stay_on_the_worker_that_produced_them() {
        use std::sync::{Arc, Mutex};

        const N: i64 = 1000;
        for placement in [Placement::InPlace, Placement::ByRow] {
            let held: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new(vec![0; 2]));
            let counts = held.clone();
            timely::execute(timely::Config::process(2), move |worker| {
                let produced = if worker.index() == 0 { 0..N } else { 0..0 };
                let (log, _input) = appended_log(worker, placement, produced);
                counts.lock().unwrap()[worker.index()] = log.rows_at(1).len();
            })
            .unwrap();
            let held = held.lock().unwrap().clone();
            assert_eq!(
                held.iter().sum::<usize>(),
                N as usize,
                "{placement:?}: every row in one log"
            );
            match placement {
                Placement::InPlace => assert_eq!(held, vec![N as usize, 0]),
                Placement::ByRow => assert!(held[1] > 0, "some rows hash to worker 1: {held:?}"),
            }
        }
    }

    #[test]
    fn updates_are_read_across_chunks_from_any_position() {
        let log = RowLog::default();
        {
            let mut s = log.0.borrow_mut();
            for i in 0..(CHUNK + 10) {
                s.push((row![Datum::Int(i as i64)], 1, 1));
            }
        }
        let s = log.0.borrow();
        let from = CHUNK - 3;
        let read: Vec<i64> = s.updates_from(from).filter_map(|(r, _, _)| r[0].as_int()).collect();
        assert_eq!(read, ((from as i64)..(CHUNK as i64 + 10)).collect::<Vec<_>>());
    }
}
