//! [`ResumableSink`]: wraps a sink so that after a restart it emits each change once.
//!
//! While running, every batch the sink emits is appended to its [`SinkStateLog`] with the
//! output length and, per upstream reader, the positions of the furthest batch the workers
//! had ingested: an upper bound on the input the emitted changes can reflect. Output and
//! log are synced every `sync_every`.
//!
//! After a restart the rebuilt dataflow replays its input from the start. The sink stays
//! quiet and only accumulates what the dataflow produces until every batch up to those
//! positions has been ingested again, and the dataflow has caught up to the moment that
//! was observed. Then the rebuilt collection holds everything the sink had
//! emitted (and possibly more), and the sink emits the difference between the two: the
//! changes it had not emitted yet, each once. Output written after the last record (a
//! file's tail) was cut back when the sink was opened, so it is emitted again exactly once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_dataflow::{now_ms, Diff, FeedProgress, SinkWriter, Time};
use rampart_repr::{Positions, Row};

use crate::sink_state::{apply, SinkCheckpoint, SinkStateLog};

/// Warn when a restarted sink's inputs have not caught up after this long.
const CATCH_UP_WARNING: Duration = Duration::from_secs(60);

/// A sink that resumes from its [`SinkStateLog`] after a restart.
pub struct ResumableSink {
    name: String,
    inner: Arc<dyn SinkWriter>,
    upstream: Vec<(String, FeedProgress)>,
    sync_every: Duration,
    state: Mutex<State>,
}

struct State {
    log: SinkStateLog,
    checkpoint: SinkCheckpoint,
    resume: Option<Resume>,
    dirty: bool,
    last_sync: Instant,
    failed: bool,
}

/// A restarted sink waiting for its inputs to replay.
struct Resume {
    /// Positions the inputs must reach.
    target: BTreeMap<String, Positions>,
    /// What the rebuilt dataflow has produced so far.
    rebuilt: HashMap<Row, Diff>,
    /// When the inputs were seen to reach the target (wall-clock ms).
    caught_up_at: Option<Time>,
    since: Instant,
    warned: bool,
}

impl ResumableSink {
    /// Wraps `inner`. `checkpoint` is what the sink's log held when opened (empty for a new
    /// sink); `upstream` names every reader feeding the sink's dataflow, directly or
    /// through the materialized views it reads.
    pub fn new(
        name: &str,
        inner: Arc<dyn SinkWriter>,
        log: SinkStateLog,
        checkpoint: SinkCheckpoint,
        upstream: Vec<(String, FeedProgress)>,
        sync_every: Duration,
    ) -> Self {
        let resume = (!checkpoint.emitted.is_empty() || !checkpoint.upstream.is_empty()).then(|| Resume {
            target: checkpoint.upstream.clone(),
            rebuilt: HashMap::new(),
            caught_up_at: None,
            since: Instant::now(),
            warned: false,
        });
        ResumableSink {
            name: name.to_string(),
            inner,
            upstream,
            sync_every,
            state: Mutex::new(State {
                log,
                checkpoint,
                resume,
                dirty: false,
                last_sync: Instant::now(),
                failed: false,
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

    /// Emits `changes` and records them.
    fn emit(&self, st: &mut State, updates: &[(Row, Time, Diff)]) {
        self.inner.write(updates);
        let changes: Vec<(Row, Diff)> = updates.iter().map(|(r, _, d)| (r.clone(), *d)).collect();
        apply(&mut st.checkpoint.emitted, &changes);
        let upstream = self.ingested_max();
        for (id, p) in &upstream {
            st.checkpoint.upstream.entry(id.clone()).or_default().merge(p);
        }
        st.checkpoint.output_len = self.inner.output_len();
        if st.failed {
            return;
        }
        if let Err(e) = st.log.append(changes, st.checkpoint.output_len, upstream) {
            tracing::error!(sink = %self.name, "cannot record the sink's progress, it will re-emit after a restart: {}", crate::describe_io(&e));
            st.failed = true;
        }
        st.dirty = true;
    }

    fn sync(&self, st: &mut State) {
        st.last_sync = Instant::now();
        if !st.dirty || st.failed {
            return;
        }
        st.dirty = false;
        // Output first: a record must never claim output that a power cut could lose.
        if let Err(e) = self.inner.sync() {
            tracing::error!(sink = %self.name, "cannot sync sink output: {e}");
            return;
        }
        let result = if st.log.wants_compaction() {
            let cp = st.checkpoint.clone();
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
            for (row, _, d) in updates {
                let e = r.rebuilt.entry(row.clone()).or_insert(0);
                *e += d;
                if *e == 0 {
                    r.rebuilt.remove(row);
                }
            }
            return;
        }
        self.emit(&mut st, updates);
    }

    fn progress(&self, upper: Time) {
        let mut st = self.lock();
        if let Some(r) = st.resume.as_mut() {
            if r.caught_up_at.is_none() {
                let now = self.complete();
                let reached = r
                    .target
                    .iter()
                    .all(|(id, target)| now.get(id).is_none_or(|p| p.covers(target)));
                if reached {
                    // Everything ingested so far carries a time at most this.
                    r.caught_up_at = Some(now_ms());
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
                let r = st.resume.take().expect("resuming");
                let mut diff: Vec<(Row, Time, Diff)> = Vec::new();
                for (row, d) in &r.rebuilt {
                    let had = st.checkpoint.emitted.get(row).copied().unwrap_or(0);
                    if *d != had {
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

    fn row(s: &str) -> Row {
        vec![Datum::Str(s.into())]
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
        let sink = ResumableSink::new(
            "s",
            first.clone(),
            SinkStateLog::create(&path).unwrap(),
            SinkCheckpoint::default(),
            vec![("v/src".into(), feed.clone())],
            Duration::ZERO,
        );
        assert!(!sink.resuming());
        feed.ingested(0, &at(10));
        sink.write(&[(row("a"), 1, 1), (row("b"), 1, 1)]);
        sink.progress(2);
        drop(sink);

        // Restart: the replay first produces a partial state, then more than before.
        let (log, cp) = SinkStateLog::open(&path).unwrap();
        let feed = FeedProgress::default();
        let second = Arc::new(Collect::default());
        let sink = ResumableSink::new(
            "s",
            second.clone(),
            log,
            cp,
            vec![("v/src".into(), feed.clone())],
            Duration::ZERO,
        );
        assert!(sink.resuming());
        // Batch 1 arrives before batch 0: it counts only once batch 0 is in.
        feed.ingested(1, &at(12));
        assert!(feed.complete().is_empty());
        assert_eq!(feed.ingested_max(), at(12));
        sink.write(&[(row("a"), 5, 1)]);
        sink.progress(6);
        assert!(sink.resuming(), "inputs have not reached position 10");
        assert!(second.0.lock().unwrap().is_empty());
        feed.ingested(0, &at(4));
        assert_eq!(feed.complete(), at(12));
        sink.write(&[(row("b"), 7, 1), (row("c"), 7, 1)]);
        sink.progress(8);
        // Caught up at the wall clock: the frontier has to pass it.
        sink.progress(now_ms() + 1);
        assert!(!sink.resuming());
        assert_eq!(*second.0.lock().unwrap(), vec![(row("c"), 1)]);
        sink.write(&[(row("a"), now_ms() + 2, -1)]);
        assert_eq!(second.0.lock().unwrap().last(), Some(&(row("a"), -1)));
    }
}
