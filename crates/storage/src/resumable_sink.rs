//! [`ResumableSink`]: wraps a sink so that after a restart it emits each change once.
//!
//! While running, every batch the sink emits is appended to its [`SinkStateLog`] with the
//! output length and, per upstream reader, the positions of the furthest batch the workers
//! had ingested: an upper bound on the input the emitted changes can reflect. Output and
//! log are synced every `sync_every`. For a sink whose `write` only queues its output
//! (Kafka, see [`SinkWriter::acknowledged_writes`]) a batch is appended to the log once the
//! destination has acknowledged it; until then it waits in memory, and the worker that
//! wrote it carries on.
//!
//! After a restart the rebuilt dataflow replays its input from the start. The sink stays
//! quiet and only accumulates what the dataflow produces until every batch up to those
//! positions has been ingested again, and the dataflow has caught up to the moment that
//! was observed. Then the rebuilt collection holds everything the sink had
//! emitted (and possibly more), and the sink emits the difference between the two: the
//! changes it had not emitted yet, each once. Output written after the last record (a
//! file's tail) was cut back when the sink was opened, so it is emitted again exactly once.
//!
//! A sink whose destination can be read back (Kafka, see [`SinkWriter::output_positions`])
//! records where its output stood with every record. After a restart it reads the
//! destination back from there (on its own thread) and counts what reached it after the
//! last record as emitted before it emits the difference, so changes delivered but not yet
//! acknowledged when the server died are not sent again.
//!
//! Columns computed from the emission time (`NOW()` in the sink's query) differ every time
//! a row is evaluated, so the sink keeps its record of what it emitted, and compares the
//! rebuilt output, with those columns blanked: an alert emitted before the crash is not sent
//! again with a new time, and one emitted after it carries the time it was emitted.
//!
//! The same path handles a write that fails (a full disk): the sink stops emitting, keeps
//! accumulating what the dataflow produces, and every `RETRY_AFTER` reloads its log, cuts
//! its output back to the last record and emits the difference, until writing works again.
//! Nothing is lost or repeated, and the views keep running meanwhile.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_repr::{now_ms, Delivered, Diff, FeedProgress, SinkWriter, Time, DERIVED_CHANGES_MS};
use rampart_repr::{Error, Positions, Row};

use crate::sink_state::{apply, SinkCheckpoint, SinkStateLog};

/// Warn when a restarted sink's inputs have not caught up after this long.
const CATCH_UP_WARNING: Duration = Duration::from_secs(60);

/// How long a sink whose output or log failed waits before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A batch written to a sink that only queues its output, not yet acknowledged.
struct Unacknowledged {
    /// The number of the `write` call that carried it.
    write: u64,
    /// The changes as recorded (emission-time columns blanked).
    changes: Vec<(Row, Diff)>,
    /// The rows as written, when they differ from the recorded ones.
    written: Vec<Row>,
    upstream: BTreeMap<String, Positions>,
}

/// A sink that resumes from its [`SinkStateLog`] after a restart.
pub struct ResumableSink {
    name: String,
    inner: Arc<dyn SinkWriter>,
    /// While the server restores: the dataflow time from which its inputs are live
    /// (`u64::MAX` until every object is back). Restored rows enter, and what they cause
    /// (a retention's expiry of rows that had expired before the stop) happens, before it,
    /// so a resuming sink compares what it emitted with its rebuilt input only past it.
    restore_gate: Option<Arc<std::sync::atomic::AtomicU64>>,
    upstream: Vec<(String, FeedProgress)>,
    sync_every: Duration,
    /// Output columns computed from the emission time.
    emit_time_columns: Vec<usize>,
    state: Mutex<State>,
}

struct State {
    log: SinkStateLog,
    checkpoint: SinkCheckpoint,
    resume: Option<Resume>,
    dirty: bool,
    last_sync: Instant,
    /// When writing failed, when to try again.
    retry_at: Option<Instant>,
    /// Calls to the inner sink's `write` so far.
    writes: u64,
    /// Batches written but not acknowledged yet, oldest first (sinks that count
    /// acknowledged writes only). `checkpoint.emitted` includes them; the log does not.
    unacknowledged: VecDeque<Unacknowledged>,
}

/// Reading back what reached a destination after the sink's last record
/// ([`SinkWriter::delivered_since`]), on its own thread: it waits for the broker.
struct Readback {
    /// The output positions of the sink's last record.
    from: Positions,
    /// The readback's answer, once it is in.
    answer: std::sync::mpsc::Receiver<Result<Delivered, Error>>,
    /// After a failed readback: when to try again.
    retry_at: Option<Instant>,
}

impl Readback {
    fn start(name: &str, inner: &Arc<dyn SinkWriter>, from: Positions) -> Readback {
        let (tx, answer) = std::sync::mpsc::channel();
        let (inner, from_) = (inner.clone(), from.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("sink-readback-{name}"))
            .spawn(move || {
                let _ = tx.send(inner.delivered_since(&from_));
            });
        if let Err(e) = spawned {
            // The receiver then reports a disconnected channel: a failed readback, retried.
            tracing::error!(sink = name, "cannot start reading the sink's destination back: {e}");
        }
        Readback {
            from,
            answer,
            retry_at: None,
        }
    }

    /// The readback's answer once it is in; a failure is logged and retried later.
    fn poll(&mut self, name: &str, inner: &Arc<dyn SinkWriter>) -> Option<Delivered> {
        if let Some(at) = self.retry_at {
            if Instant::now() < at {
                return None;
            }
            *self = Readback::start(name, inner, self.from.clone());
        }
        let failure = match self.answer.try_recv() {
            Ok(Ok(delivered)) => return Some(delivered),
            Ok(Err(e)) => e,
            Err(std::sync::mpsc::TryRecvError::Empty) => return None,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => Error::internal("the readback thread stopped"),
        };
        tracing::warn!(
            sink = name,
            "cannot read back what reached the sink's destination before it stopped: {failure}; the sink emits nothing until it can, retrying in {}s",
            RETRY_AFTER.as_secs()
        );
        self.retry_at = Some(Instant::now() + RETRY_AFTER);
        None
    }
}

/// A restarted sink waiting for its inputs to replay.
struct Resume {
    /// Positions the inputs must reach.
    target: BTreeMap<String, Positions>,
    /// What the rebuilt dataflow has produced so far (emission-time columns blanked).
    rebuilt: HashMap<Row, Diff>,
    /// For rows of `rebuilt` whose emission-time columns were blanked: the row as produced.
    produced: HashMap<Row, Row>,
    /// When the inputs were seen to reach the target (wall-clock ms).
    caught_up_at: Option<Time>,
    /// For destinations that can be read back: what reached it after the last record,
    /// counted as emitted before the difference is emitted.
    readback: Option<Readback>,
    since: Instant,
    warned: bool,
}

impl ResumableSink {
    /// The same sink, resuming only once the server's restore `gate` has opened and its
    /// input has passed it: what the restore brought back has settled by then.
    pub fn with_restore_gate(mut self, gate: Option<Arc<std::sync::atomic::AtomicU64>>) -> Self {
        self.restore_gate = gate;
        self
    }

    /// Wraps `inner`. `checkpoint` is what the sink's log held when opened (empty for a new
    /// sink); `upstream` names every reader feeding the sink's dataflow, directly or
    /// through the materialized views it reads; `emit_time_columns` are the output columns
    /// computed from the emission time.
    pub fn new(
        name: &str,
        inner: Arc<dyn SinkWriter>,
        log: SinkStateLog,
        checkpoint: SinkCheckpoint,
        upstream: Vec<(String, FeedProgress)>,
        sync_every: Duration,
        emit_time_columns: Vec<usize>,
    ) -> Self {
        let mut log = log;
        let mut checkpoint = checkpoint;
        let fresh = checkpoint.emitted.is_empty() && checkpoint.upstream.is_empty();
        // A restart of a sink whose destination can be read back: what reached the
        // destination after the last record must count as emitted.
        let readback_from = checkpoint.output_positions.clone();
        if fresh && checkpoint.output_len.is_none() && readback_from.is_none() {
            // A first record holding where the output stands before anything is written,
            // so a failed or interrupted first write is cut back (files) or read back
            // (Kafka) too.
            let (len, positions) = (inner.output_len(), inner.output_positions(0));
            if len.is_some() || positions.is_some() {
                if let Err(e) = log
                    .append_at(vec![], len, positions.clone(), BTreeMap::new())
                    .and_then(|_| log.sync())
                {
                    tracing::error!(
                        sink = name,
                        "cannot record the sink's start: {}",
                        crate::describe_io(&e)
                    );
                }
                checkpoint.output_positions = positions;
            }
        }
        let restarted = !fresh || readback_from.is_some();
        let resume = restarted.then(|| Resume {
            target: checkpoint.upstream.clone(),
            rebuilt: HashMap::new(),
            produced: HashMap::new(),
            caught_up_at: None,
            readback: readback_from.map(|from| Readback::start(name, &inner, from)),
            since: Instant::now(),
            warned: false,
        });
        ResumableSink {
            name: name.to_string(),
            inner,
            restore_gate: None,
            upstream,
            sync_every,
            emit_time_columns,
            state: Mutex::new(State {
                log,
                checkpoint,
                resume,
                dirty: false,
                last_sync: Instant::now(),
                retry_at: None,
                writes: 0,
                unacknowledged: VecDeque::new(),
            }),
        }
    }

    /// Per upstream feed, how far every batch is in the dataflow.
    fn complete(&self) -> BTreeMap<String, Positions> {
        self.upstream.iter().map(|(id, p)| (id.clone(), p.complete())).collect()
    }

    /// Per upstream feed, beyond what nothing is in the dataflow: the positions recorded
    /// with emitted changes, so that a restarted sink waits for at least the input they
    /// may reflect.
    fn ingested_max(&self) -> BTreeMap<String, Positions> {
        self.upstream
            .iter()
            .map(|(id, p)| (id.clone(), p.ingested_max()))
            .collect()
    }

    /// Whether the sink is still waiting for its inputs to replay after a restart.
    pub fn resuming(&self) -> bool {
        self.lock().resume.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `row` as the sink records it: emission-time columns blanked (`None`: `row` itself).
    fn recorded(&self, row: &Row) -> Option<Row> {
        if self.emit_time_columns.is_empty() {
            return None;
        }
        let blanked = row.iter().enumerate().map(|(i, d)| {
            if self.emit_time_columns.contains(&i) {
                rampart_repr::Datum::Null
            } else {
                d.clone()
            }
        });
        Some(blanked.collect())
    }

    /// Emits `changes` and records them. If the output or the log fails, the sink stalls.
    fn emit(&self, st: &mut State, updates: &[(Row, Time, Diff)]) {
        self.inner.write(updates);
        st.writes += 1;
        let mut written = Vec::new();
        let changes: Vec<(Row, Diff)> = updates
            .iter()
            .map(|(r, _, d)| match self.recorded(r) {
                Some(rec) => {
                    written.push(r.clone());
                    (rec, *d)
                }
                None => (r.clone(), *d),
            })
            .collect();
        apply(&mut st.checkpoint.emitted, changes.iter().map(|(r, d)| (r, *d)));
        if let Some(e) = self.inner.take_error() {
            self.stall(st, format!("cannot write the sink's output: {e}"), written);
            return;
        }
        let upstream = self.ingested_max();
        for (id, p) in &upstream {
            st.checkpoint.upstream.entry(id.clone()).or_default().merge(p);
        }
        if self.inner.acknowledged_writes().is_some() {
            st.unacknowledged.push_back(Unacknowledged {
                write: st.writes,
                changes,
                written,
                upstream,
            });
            self.log_acknowledged(st);
            return;
        }
        st.checkpoint.output_len = self.inner.output_len();
        if let Err(e) = st.log.append(changes, st.checkpoint.output_len, upstream) {
            self.stall(
                st,
                format!("cannot record the sink's progress: {}", crate::describe_io(&e)),
                written,
            );
            return;
        }
        st.dirty = true;
    }

    /// Appends the batches the destination has acknowledged to the log, as one record.
    /// False when the sink stalled instead (a failed delivery or log write).
    fn log_acknowledged(&self, st: &mut State) -> bool {
        let Some(acknowledged) = self.inner.acknowledged_writes() else {
            return true;
        };
        if st.unacknowledged.front().is_none_or(|u| u.write > acknowledged) {
            return true;
        }
        // A failed delivery reports its error before its write counts as acknowledged.
        if let Some(e) = self.inner.take_error() {
            self.stall(st, format!("cannot write the sink's output: {e}"), vec![]);
            return false;
        }
        let mut changes = Vec::new();
        let mut written = Vec::new();
        let mut upstream: BTreeMap<String, Positions> = BTreeMap::new();
        let logged = st.unacknowledged.partition_point(|u| u.write <= acknowledged);
        for u in st.unacknowledged.drain(..logged) {
            changes.extend(u.changes);
            written.extend(u.written);
            for (id, p) in &u.upstream {
                upstream.entry(id.clone()).or_default().merge(p);
            }
        }
        let positions = self.inner.output_positions(acknowledged);
        if let Err(e) = st.log.append_at(changes, None, positions.clone(), upstream) {
            self.stall(
                st,
                format!("cannot record the sink's progress: {}", crate::describe_io(&e)),
                written,
            );
            return false;
        }
        if positions.is_some() {
            st.checkpoint.output_positions = positions;
        }
        st.dirty = true;
        true
    }

    /// Counts what a readback found at the destination (written after the last record) as
    /// emitted, and records it.
    fn count_delivered(&self, st: &mut State, delivered: Vec<(Row, Diff)>, positions: Positions) -> Result<(), Error> {
        let changes: Vec<(Row, Diff)> = delivered
            .into_iter()
            .map(|(row, d)| (self.recorded(&row).unwrap_or(row), d))
            .collect();
        tracing::info!(
            sink = %self.name,
            changes = changes.len(),
            "counted what reached the destination after the sink's last record"
        );
        apply(&mut st.checkpoint.emitted, changes.iter().map(|(r, d)| (r, *d)));
        st.checkpoint.output_positions = Some(positions.clone());
        st.log
            .append_at(changes, None, Some(positions), BTreeMap::new())
            .and_then(|_| st.log.sync())
            .map_err(|e| crate::io_error("cannot record the sink's progress", e))
    }

    /// What the log holds: the checkpoint without the batches still unacknowledged.
    fn logged_checkpoint(st: &State) -> SinkCheckpoint {
        let mut cp = st.checkpoint.clone();
        for u in &st.unacknowledged {
            apply(&mut cp.emitted, u.changes.iter().map(|(r, d)| (r, -*d)));
        }
        cp
    }

    /// Stops emitting after a failed write: what the dataflow produces is accumulated
    /// (starting from everything meant to be emitted so far) until a retry succeeds.
    /// `written` are the rows of the failed write as produced (when they are recorded
    /// blanked), so a retry sends them as they were.
    fn stall(&self, st: &mut State, why: String, written: Vec<Row>) {
        tracing::error!(
            sink = %self.name,
            "{why}; the sink pauses and retries every {}s (views keep running)",
            RETRY_AFTER.as_secs()
        );
        st.retry_at = Some(Instant::now() + RETRY_AFTER);
        st.resume = Some(Resume {
            target: BTreeMap::new(),
            // Everything meant to be emitted so far; the checkpoint is reloaded from the log
            // on retry, so it must not be left emptied meanwhile.
            rebuilt: st.checkpoint.emitted.clone(),
            produced: self.originals(st.unacknowledged.iter().flat_map(|u| u.written.iter()).chain(&written)),
            caught_up_at: Some(0),
            readback: None,
            since: Instant::now(),
            warned: true,
        });
    }

    /// Recorded row → row as produced, for rows whose emission-time columns are blanked.
    fn originals<'a>(&self, rows: impl Iterator<Item = &'a Row>) -> HashMap<Row, Row> {
        rows.filter_map(|r| self.recorded(r).map(|rec| (rec, r.clone())))
            .collect()
    }

    /// Back to the last record that reached the log: reload it and cut the output to its
    /// length, so the difference emitted next starts from what is really there.
    fn rewind(&self, st: &mut State) -> Result<(), Error> {
        let path = st.log.path().to_path_buf();
        let (log, cp) = SinkStateLog::open(&path)
            .map_err(|e| crate::io_error(format!("cannot read the sink's log {}", path.display()), e))?;
        if let Some(len) = cp.output_len {
            self.inner.cut_back(len)?;
        }
        // Unacknowledged batches are not in the log: the difference emitted next sends
        // again those that did not reach the destination.
        if let (Some(from), Some(r)) = (cp.output_positions.clone(), st.resume.as_mut()) {
            r.readback = Some(Readback::start(&self.name, &self.inner, from));
        }
        st.log = log;
        st.checkpoint = cp;
        st.unacknowledged.clear();
        Ok(())
    }

    fn sync(&self, st: &mut State) {
        st.last_sync = Instant::now();
        // A stalled sink's in-memory checkpoint is ahead of its log: never write it out.
        if !st.dirty || st.retry_at.is_some() {
            return;
        }
        st.dirty = false;
        // Output first: a record must never claim output that a power cut could lose. A
        // sink counting acknowledged writes logs only what the destination has, so it
        // needs no waiting here.
        if self.inner.acknowledged_writes().is_none() {
            if let Err(e) = self.inner.sync() {
                tracing::error!(sink = %self.name, "cannot sync sink output: {e}");
                return;
            }
        }
        let result = if st.log.wants_compaction() {
            let cp = Self::logged_checkpoint(st);
            st.log.compact(&cp)
        } else {
            st.log.sync()
        };
        if let Err(e) = result {
            tracing::error!(sink = %self.name, "cannot sync the sink's progress: {}", crate::describe_io(&e));
        }
    }
}

impl SinkWriter for ResumableSink {
    fn write(&self, updates: &[(Row, Time, Diff)]) {
        let mut st = self.lock();
        if let Some(r) = st.resume.as_mut() {
            if self.emit_time_columns.is_empty() {
                apply(&mut r.rebuilt, updates.iter().map(|(row, _, d)| (row, *d)));
            } else {
                let recorded: Vec<(Row, Diff)> = updates
                    .iter()
                    .filter_map(|(row, _, d)| {
                        let rec = self.recorded(row)?;
                        if *d > 0 {
                            r.produced.insert(rec.clone(), row.clone());
                        }
                        Some((rec, *d))
                    })
                    .collect();
                apply(&mut r.rebuilt, recorded.iter().map(|(row, d)| (row, *d)));
            }
            return;
        }
        self.emit(&mut st, updates);
    }

    fn progress(&self, upper: Time) {
        let mut st = self.lock();
        if let Some(at) = st.retry_at {
            if Instant::now() < at {
                return;
            }
            st.retry_at = None;
            if let Err(e) = self.rewind(&mut st) {
                st.retry_at = Some(Instant::now() + RETRY_AFTER);
                tracing::error!(sink = %self.name, "still cannot resume the sink: {e}");
                return;
            }
        }
        if !self.log_acknowledged(&mut st) {
            return;
        }
        if let Some(r) = st.resume.as_mut() {
            if r.caught_up_at.is_none() {
                let now = self.complete();
                let reached = r
                    .target
                    .iter()
                    .all(|(id, target)| now.get(id).is_none_or(|p| p.covers(target)));
                let live_from = self
                    .restore_gate
                    .as_ref()
                    .map_or(0, |g| g.load(std::sync::atomic::Ordering::Acquire));
                if reached && live_from != u64::MAX {
                    // Everything ingested so far carries a time at most now, and what the
                    // restore brought back has settled before the gate; what operators
                    // derive from that input on their own (a retention's expiry of rows
                    // that had expired before the stop) comes within DERIVED_CHANGES_MS.
                    r.caught_up_at = Some(now_ms().max(live_from) + DERIVED_CHANGES_MS);
                    tracing::info!(sink = %self.name, target = ?r.target, now = ?now, "sink inputs replayed to its checkpoint");
                } else if !r.warned && r.since.elapsed() > CATCH_UP_WARNING {
                    r.warned = true;
                    tracing::warn!(
                        sink = %self.name,
                        "after {}s its inputs have not replayed to where the sink stopped (target {:?}, now {:?}); the sink emits nothing until they do",
                        CATCH_UP_WARNING.as_secs(),
                        r.target,
                        now
                    );
                }
            }
            if r.caught_up_at.is_some_and(|t| upper > t) {
                let delivered = match r.readback.as_mut() {
                    Some(rb) => match rb.poll(&self.name, &self.inner) {
                        Some(found) => Some(found),
                        None => return,
                    },
                    None => None,
                };
                let r = st.resume.take().expect("resuming");
                if let Some((changes, positions)) = delivered {
                    if let Err(why) = self.count_delivered(&mut st, changes, positions) {
                        // Retried from the log: the readback is repeated then, and the
                        // rebuilt collection kept.
                        self.stall(&mut st, why.into_message(), vec![]);
                        if let Some(stalled) = st.resume.as_mut() {
                            stalled.rebuilt = r.rebuilt;
                            stalled.produced = r.produced;
                        }
                        return;
                    }
                }
                let mut diff: Vec<(Row, Time, Diff)> = Vec::new();
                for (row, d) in &r.rebuilt {
                    let had = st.checkpoint.emitted.get(row).copied().unwrap_or(0);
                    if *d > had {
                        // New rows go out as produced (with their emission time).
                        let out = r.produced.get(row).unwrap_or(row);
                        diff.push((out.clone(), upper - 1, d - had));
                    } else if *d < had {
                        diff.push((row.clone(), upper - 1, d - had));
                    }
                }
                for (row, had) in &st.checkpoint.emitted {
                    if !r.rebuilt.contains_key(row) {
                        diff.push((row.clone(), upper - 1, -had));
                    }
                }
                diff.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
                tracing::info!(
                    sink = %self.name,
                    rebuilt = r.rebuilt.len(),
                    emitted_before = st.checkpoint.emitted.len(),
                    inserts = diff.iter().filter(|c| c.2 > 0).count(),
                    deletes = diff.iter().filter(|c| c.2 < 0).count(),
                    replay_ms = r.since.elapsed().as_millis() as u64,
                    "sink resumed after its inputs replayed"
                );
                if !diff.is_empty() {
                    self.emit(&mut st, &diff);
                }
                self.sync(&mut st);
            }
            return;
        }
        if st.last_sync.elapsed() >= self.sync_every {
            self.sync(&mut st);
        }
    }
}

impl Drop for ResumableSink {
    /// A sink that is dropped (DROP SINK, shutdown) waits for its queued output and records
    /// what the destination acknowledged, so a restart does not send it again.
    fn drop(&mut self) {
        let mut st = self.lock();
        if st.unacknowledged.is_empty() || st.retry_at.is_some() {
            return;
        }
        if let Err(e) = self.inner.sync() {
            tracing::warn!(sink = %self.name, "output not acknowledged before the sink stopped: {e}");
        }
        if self.log_acknowledged(&mut st) {
            if let Err(e) = st.log.sync() {
                tracing::error!(sink = %self.name, "cannot sync the sink's progress: {}", crate::describe_io(&e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_repr::Datum;

    /// Collects what it is given.
    #[derive(Default)]
    struct Collect(Mutex<Vec<(Row, Diff)>>);

    impl SinkWriter for Collect {
        fn write(&self, updates: &[(Row, Time, Diff)]) {
            self.0
                .lock()
                .unwrap()
                .extend(updates.iter().map(|(r, _, d)| (r.clone(), *d)));
        }
    }

    /// A sink named `s` over `out` with `log` and its checkpoint, fed by `feed` (feed id
    /// `v/src`), syncing at every progress.
    fn sink_over(
        log: SinkStateLog,
        cp: SinkCheckpoint,
        out: Arc<dyn SinkWriter>,
        feed: &FeedProgress,
        emit_time_columns: Vec<usize>,
    ) -> ResumableSink {
        ResumableSink::new(
            "s",
            out,
            log,
            cp,
            vec![("v/src".into(), feed.clone())],
            Duration::ZERO,
            emit_time_columns,
        )
    }

    fn row(s: &str) -> Row {
        rampart_repr::row![Datum::Str(s.into())]
    }

    fn at(p: u64) -> Positions {
        let mut x = Positions::default();
        x.advance("f", p);
        x
    }

    #[test]
    fn a_restarted_sink_emits_only_what_it_had_not_emitted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        let feed = FeedProgress::default();
        let first = Arc::new(Collect::default());
        let sink = sink_over(
            SinkStateLog::create(&path).unwrap(),
            SinkCheckpoint::default(),
            first.clone(),
            &feed,
            vec![],
        );
        assert!(!sink.resuming());
        feed.ingested(0, &at(10), 0);
        sink.write(&[(row("a"), 1, 1), (row("b"), 1, 1)]);
        sink.progress(2);
        drop(sink);

        // Restart: the replay first produces a partial state, then more than before.
        let (log, cp) = SinkStateLog::open(&path).unwrap();
        let feed = FeedProgress::default();
        let second = Arc::new(Collect::default());
        let sink = sink_over(log, cp, second.clone(), &feed, vec![]);
        assert!(sink.resuming());
        // Batch 1 arrives before batch 0: it counts only once batch 0 is in.
        feed.ingested(1, &at(12), 0);
        assert!(feed.complete().is_empty());
        assert_eq!(feed.ingested_max(), at(12));
        sink.write(&[(row("a"), 5, 1)]);
        sink.progress(6);
        assert!(sink.resuming(), "inputs have not reached position 10");
        assert!(second.0.lock().unwrap().is_empty());
        feed.ingested(0, &at(4), 0);
        assert_eq!(feed.complete(), at(12));
        sink.write(&[(row("b"), 7, 1), (row("c"), 7, 1)]);
        sink.progress(8);
        // Caught up at the wall clock: the frontier has to pass it, and the time within
        // which operators derive changes from that input.
        sink.progress(now_ms() + DERIVED_CHANGES_MS + 1);
        assert!(!sink.resuming());
        assert_eq!(*second.0.lock().unwrap(), vec![(row("c"), 1)]);
        sink.write(&[(row("a"), now_ms() + DERIVED_CHANGES_MS + 2, -1)]);
        assert_eq!(second.0.lock().unwrap().last(), Some(&(row("a"), -1)));
    }

    /// An alert with the time it was emitted (`NOW()` in the sink query, column 1).
    fn alert(s: &str, emitted_at: i64) -> Row {
        rampart_repr::row![Datum::Str(s.into()), Datum::Timestamp(emitted_at)]
    }

    #[test]
    fn a_restarted_sink_does_not_resend_an_alert_because_its_emission_time_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        let feed = FeedProgress::default();
        let first = Arc::new(Collect::default());
        let open = |log, cp, out: Arc<Collect>, feed: &FeedProgress| sink_over(log, cp, out, feed, vec![1]);
        let sink = open(
            SinkStateLog::create(&path).unwrap(),
            SinkCheckpoint::default(),
            first.clone(),
            &feed,
        );
        feed.ingested(0, &at(10), 0);
        sink.write(&[(alert("a", 100), 1, 1)]);
        sink.progress(2);
        drop(sink);

        // The replay evaluates NOW() again: "a" comes back with another time, "b" is new.
        let (log, cp) = SinkStateLog::open(&path).unwrap();
        let feed = FeedProgress::default();
        let second = Arc::new(Collect::default());
        let sink = open(log, cp, second.clone(), &feed);
        assert!(sink.resuming());
        feed.ingested(0, &at(12), 0);
        sink.write(&[(alert("a", 900), 5, 1), (alert("b", 901), 5, 1)]);
        sink.progress(now_ms() + DERIVED_CHANGES_MS + 1);
        sink.progress(now_ms() + DERIVED_CHANGES_MS + 2);
        assert!(!sink.resuming());
        assert_eq!(
            *second.0.lock().unwrap(),
            vec![(alert("b", 901), 1)],
            "only the new alert, with the time it was emitted"
        );
    }

    /// A file-like output that can be told to fail (as on a full disk): a failing write
    /// still leaves its lines behind, like a partial write.
    #[derive(Default)]
    struct FlakyFile {
        lines: Mutex<Vec<(Row, Diff)>>,
        fail: std::sync::atomic::AtomicBool,
        error: Mutex<Option<Error>>,
    }

    impl SinkWriter for FlakyFile {
        fn write(&self, updates: &[(Row, Time, Diff)]) {
            self.lines
                .lock()
                .unwrap()
                .extend(updates.iter().map(|(r, _, d)| (r.clone(), *d)));
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                *self.error.lock().unwrap() = Some(Error::io(
                    "No space left on device",
                    std::io::Error::from_raw_os_error(28),
                ));
            }
        }
        fn output_len(&self) -> Option<u64> {
            Some(self.lines.lock().unwrap().len() as u64)
        }
        fn take_error(&self) -> Option<Error> {
            self.error.lock().unwrap().take()
        }
        fn cut_back(&self, len: u64) -> Result<(), Error> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(Error::io(
                    "No space left on device",
                    std::io::Error::from_raw_os_error(28),
                ));
            }
            self.lines.lock().unwrap().truncate(len as usize);
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_pauses_the_sink_and_a_retry_emits_each_change_once() {
        let dir = tempfile::tempdir().unwrap();
        let out = Arc::new(FlakyFile::default());
        let sink = ResumableSink::new(
            "s",
            out.clone(),
            SinkStateLog::create(&dir.path().join("s.log")).unwrap(),
            SinkCheckpoint::default(),
            vec![],
            Duration::ZERO,
            vec![],
        );
        sink.write(&[(row("a"), 1, 1), (row("b"), 1, 1)]);
        sink.progress(2);
        out.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        sink.write(&[(row("c"), 2, 1)]);
        assert!(sink.resuming(), "paused after the failed write");
        sink.write(&[(row("d"), 3, 1), (row("a"), 3, -1)]);
        sink.progress(4);
        // Still failing at the first retry: nothing changes.
        std::thread::sleep(RETRY_AFTER + Duration::from_millis(50));
        sink.progress(5);
        assert!(sink.resuming());
        out.fail.store(false, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(RETRY_AFTER + Duration::from_millis(50));
        sink.progress(6);
        assert!(!sink.resuming());
        let mut lines = out.lines.lock().unwrap().clone();
        // The partial write of c was cut back; a, b, then the difference: a's delete, c, d.
        assert_eq!(lines.drain(..2).collect::<Vec<_>>(), vec![(row("a"), 1), (row("b"), 1)]);
        lines.sort();
        assert_eq!(lines, vec![(row("a"), -1), (row("c"), 1), (row("d"), 1)]);
    }

    /// An output that only queues what it is given (like Kafka): the test says how many
    /// writes the destination has acknowledged; `sync` acknowledges everything.
    #[derive(Default)]
    struct Queued {
        writes: std::sync::atomic::AtomicU64,
        acked: std::sync::atomic::AtomicU64,
        error: Mutex<Option<Error>>,
    }

    impl SinkWriter for Queued {
        fn write(&self, _updates: &[(Row, Time, Diff)]) {
            self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        fn sync(&self) -> Result<(), Error> {
            let w = self.writes.load(std::sync::atomic::Ordering::SeqCst);
            self.acked.store(w, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
        fn acknowledged_writes(&self) -> Option<u64> {
            Some(self.acked.load(std::sync::atomic::Ordering::SeqCst))
        }
        fn take_error(&self) -> Option<Error> {
            self.error.lock().unwrap().take()
        }
    }

    /// A sink named `s` over `out`, resumed from the log at `path`, fed by `feed`.
    fn reopen(path: &std::path::Path, out: Arc<dyn SinkWriter>, feed: &FeedProgress) -> ResumableSink {
        let (log, cp) = SinkStateLog::open(path).unwrap();
        sink_over(log, cp, out, feed, vec![])
    }

    /// A destination that queues, acknowledges on demand, and can be read back: every
    /// change written is one message, numbered in order (shared across "restarts").
    #[derive(Default)]
    struct Readable {
        messages: Arc<Mutex<Vec<(Row, Diff)>>>,
        /// Messages in each write, in order.
        write_sizes: Mutex<Vec<u64>>,
        acked: std::sync::atomic::AtomicU64,
        /// The first message number of this incarnation (after a readback).
        first_seq: std::sync::atomic::AtomicU64,
    }

    impl SinkWriter for Readable {
        fn write(&self, updates: &[(Row, Time, Diff)]) {
            self.messages
                .lock()
                .unwrap()
                .extend(updates.iter().map(|(r, _, d)| (r.clone(), *d)));
            self.write_sizes.lock().unwrap().push(updates.len() as u64);
        }
        fn acknowledged_writes(&self) -> Option<u64> {
            Some(self.acked.load(std::sync::atomic::Ordering::SeqCst))
        }
        fn output_positions(&self, write: u64) -> Option<Positions> {
            let sizes = self.write_sizes.lock().unwrap();
            let seq = self.first_seq.load(std::sync::atomic::Ordering::SeqCst)
                + sizes.iter().take(write as usize).sum::<u64>();
            let mut p = Positions::default();
            p.advance("seq", seq);
            Some(p)
        }
        fn delivered_since(&self, recorded: &Positions) -> Result<Delivered, Error> {
            let from = recorded.0.get("seq").copied().unwrap_or(0) as usize;
            let messages = self.messages.lock().unwrap();
            let mut p = Positions::default();
            p.advance("seq", messages.len() as u64);
            self.first_seq
                .store(messages.len() as u64, std::sync::atomic::Ordering::SeqCst);
            Ok((messages[from.min(messages.len())..].to_vec(), p))
        }
    }

    #[test]
    fn a_restarted_sink_counts_what_reached_the_destination_after_its_last_record() {
        use std::sync::atomic::Ordering::SeqCst;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        let feed = FeedProgress::default();
        let open = |out: &Arc<Readable>, feed: &FeedProgress| reopen(&path, out.clone(), feed);
        SinkStateLog::create(&path).unwrap();
        let first = Arc::new(Readable::default());
        let sink = open(&first, &feed);
        assert_eq!(
            SinkStateLog::open(&path)
                .unwrap()
                .1
                .output_positions
                .and_then(|p| p.0.get("seq").copied()),
            Some(0),
            "a new sink records where its output starts"
        );
        feed.ingested(0, &at(10), 0);
        sink.write(&[(row("a"), 1, 1)]);
        feed.ingested(1, &at(20), 0);
        sink.write(&[(row("b"), 2, 1)]);
        first.acked.store(1, SeqCst);
        sink.progress(3);
        // Killed after the destination got both batches but before the second was logged.
        std::mem::forget(sink);
        let (_, cp) = SinkStateLog::open(&path).unwrap();
        assert_eq!(cp.emitted, [(row("a"), 1)].into());
        assert_eq!(cp.output_positions.as_ref().and_then(|p| p.0.get("seq")), Some(&1));

        let second = Arc::new(Readable {
            messages: first.messages.clone(),
            ..Default::default()
        });
        let feed = FeedProgress::default();
        let sink = open(&second, &feed);
        assert!(sink.resuming());
        feed.ingested(0, &at(10), 0);
        feed.ingested(1, &at(20), 0);
        sink.write(&[(row("a"), 1, 1), (row("b"), 2, 1), (row("c"), 3, 1)]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.resuming() {
            assert!(Instant::now() < deadline, "the readback never finished");
            std::thread::sleep(Duration::from_millis(5));
            sink.progress(now_ms() + DERIVED_CHANGES_MS + 1);
        }
        assert_eq!(
            *second.messages.lock().unwrap(),
            vec![(row("a"), 1), (row("b"), 1), (row("c"), 1)],
            "b reached the destination before the kill: only c is sent after it"
        );
        second.acked.store(1, SeqCst);
        sink.progress(now_ms() + DERIVED_CHANGES_MS + 2);
        drop(sink);
        let (_, cp) = SinkStateLog::open(&path).unwrap();
        assert_eq!(cp.emitted, [(row("a"), 1), (row("b"), 1), (row("c"), 1)].into());
        assert_eq!(
            cp.output_positions.as_ref().and_then(|p| p.0.get("seq")),
            Some(&3),
            "numbering continues after what was found"
        );
    }

    #[test]
    fn a_queued_sink_logs_a_batch_once_the_destination_acknowledged_it() {
        use std::sync::atomic::Ordering::SeqCst;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        let feed = FeedProgress::default();
        let out = Arc::new(Queued::default());
        let open = |out: &Arc<Queued>, feed: &FeedProgress| reopen(&path, out.clone(), feed);
        SinkStateLog::create(&path).unwrap();
        let sink = open(&out, &feed);
        feed.ingested(0, &at(10), 0);
        sink.write(&[(row("a"), 1, 1)]);
        sink.progress(2);
        feed.ingested(1, &at(20), 0);
        sink.write(&[(row("b"), 2, 1)]);
        sink.progress(3);
        assert_eq!(out.writes.load(SeqCst), 2, "writes do not wait for the destination");
        out.acked.store(1, SeqCst);
        sink.progress(4);
        // Killed: nothing runs on the way down.
        std::mem::forget(sink);
        let (_, cp) = SinkStateLog::open(&path).unwrap();
        assert_eq!(
            cp.emitted,
            [(row("a"), 1)].into(),
            "only the acknowledged batch is logged"
        );
        assert_eq!(cp.upstream.get("v/src"), Some(&at(10)));

        // A failed delivery stalls the sink before its batch is logged.
        let feed = FeedProgress::default();
        let out = Arc::new(Queued::default());
        SinkStateLog::create(&path).unwrap();
        let sink = open(&out, &feed);
        feed.ingested(0, &at(5), 0);
        sink.write(&[(row("c"), 1, 1)]);
        *out.error.lock().unwrap() = Some(Error::new(rampart_repr::SqlState::ConnectionFailure, "broker down"));
        out.acked.store(1, SeqCst);
        sink.progress(2);
        std::mem::forget(sink);
        let (_, cp) = SinkStateLog::open(&path).unwrap();
        assert!(cp.emitted.is_empty(), "a failed batch is not logged: {:?}", cp.emitted);

        // Stopping waits for the destination and logs what it acknowledged.
        let out = Arc::new(Queued::default());
        SinkStateLog::create(&path).unwrap();
        let sink = open(&out, &feed);
        sink.write(&[(row("d"), 1, 1)]);
        sink.progress(2);
        drop(sink);
        let (_, cp) = SinkStateLog::open(&path).unwrap();
        assert_eq!(cp.emitted, [(row("d"), 1)].into());
    }
}
