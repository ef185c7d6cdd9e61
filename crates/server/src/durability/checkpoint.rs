//! [`Checkpointer`]: every checkpoint interval, writes each snapshotted view's new rows and
//! the positions its readers had reached to the view's [`ViewLog`], so a restart loads the
//! rows and resumes the readers there. All views are taken at one dataflow time, in one
//! numbered round, which the [`RoundLog`] records as complete once every view's part is
//! written: a restart brings every view back from the same complete round.
//!
//! A view is snapshotted when it reads sources only through maps, filters and unions
//! (`Plan::keeps_no_state`, `normalized_events` as the seed writes it): it only ever
//! inserts, and nothing in its dataflow keeps state besides its rows. For a source with a
//! `WATERMARK` the positions also carry each stream's largest event time, from which the
//! restart rebuilds the watermark.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rampart_dataflow::{FeedProgress, SnapshotCapture, Time};
use rampart_repr::ErrorLog;
use rampart_repr::Positions;
use rampart_storage::{describe_io, ErrorJournal, RoundLog, ViewLog};

/// How many earlier times a checkpoint tries, from the latest complete one back, to find
/// one that splits every reader's batches exactly (see `FeedProgress::positions_through`).
const TIMES_TRIED: u64 = 2_000;

/// A view the checkpointer writes.
pub(crate) struct SnapshottedView {
    /// The view's updates not yet written.
    pub(crate) capture: Arc<SnapshotCapture>,
    /// Its log in the data directory.
    pub(crate) log: ViewLog,
    /// Its readers' progress, by source name.
    pub(crate) feeds: Vec<(String, FeedProgress)>,
    /// The positions of the last checkpoint written (or restored).
    pub(crate) last: Option<BTreeMap<String, Positions>>,
    /// For a view with a retention: how its log drops expired rows.
    pub(crate) expiry: Option<Expiry>,
}

/// How a retained view's log is compacted: its rows expire once the watermark passes
/// their event time plus the retention, and the watermark at a checkpoint follows from
/// its positions (each stream's largest event time).
pub(crate) struct Expiry {
    /// The view's retention.
    pub(crate) retention: rampart_plan::Retention,
    /// The view's watermark at a checkpoint with these positions (`None`: none yet).
    pub(crate) watermark_at: WatermarkAt,
}

/// The watermark a view's sources had at a checkpoint's positions.
pub(crate) type WatermarkAt = Box<dyn Fn(&BTreeMap<String, Positions>) -> Option<i64> + Send>;

/// How much a retained view's log grows (and at least doubles) before it is rewritten
/// without its expired rows.
const COMPACT_AFTER_BYTES: u64 = 64 << 20;

/// What the last checkpoint of a view cost, for `rampart_checkpoints`.
#[derive(Clone, Debug, Default)]
pub(crate) struct CheckpointStats {
    /// Rows written by it.
    pub(crate) rows: usize,
    /// How long writing and syncing it took.
    pub(crate) duration: Duration,
    /// The log's size after it (bytes).
    pub(crate) log_bytes: u64,
    /// Checkpoints written since the server started.
    pub(crate) count: u64,
    /// Why the last attempt failed, if it did.
    pub(crate) error: Option<String>,
}

/// Writes the checkpoints of every snapshotted view, on its own thread.
pub(crate) struct Checkpointer {
    views: Mutex<BTreeMap<String, SnapshottedView>>,
    /// `rampart_source_errors` and `rampart_late_events`, and where their new records are
    /// saved.
    errors: Mutex<Vec<(ErrorLog, ErrorJournal)>>,
    stats: Mutex<BTreeMap<String, CheckpointStats>>,
    /// The complete rounds, the last one restored from, and the last round's time.
    /// Locked after `views`.
    rounds: Mutex<Rounds>,
    stopped: AtomicBool,
}

/// The checkpointer's rounds.
struct Rounds {
    log: RoundLog,
    /// The last complete round when the server started: views restore from it.
    restored: u64,
    /// The number of the next round (every round written gets a new one, complete or not).
    next: u64,
    /// The dataflow time of the last round this process wrote (complete or not).
    last_time: Option<Time>,
}

impl Checkpointer {
    /// Starts the checkpoint thread, writing every `interval`; `rounds` says which rounds
    /// are complete.
    pub(crate) fn start(interval: Duration, rounds: RoundLog) -> Arc<Checkpointer> {
        let restored = rounds.last().unwrap_or(0);
        let me = Arc::new(Checkpointer {
            views: Mutex::new(BTreeMap::new()),
            errors: Mutex::new(Vec::new()),
            stats: Mutex::new(BTreeMap::new()),
            rounds: Mutex::new(Rounds {
                log: rounds,
                restored,
                // Marks of rounds after `restored` were cut when the logs were opened.
                next: restored + 1,
                last_time: None,
            }),
            stopped: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&me);
        let spawned = std::thread::Builder::new()
            .name("checkpointer".into())
            .spawn(move || loop {
                std::thread::sleep(interval);
                match weak.upgrade() {
                    Some(c) if !c.stopped.load(Ordering::Relaxed) => c.checkpoint_all(),
                    _ => return,
                }
            });
        if let Err(e) = spawned {
            tracing::error!("could not start the checkpoint thread ({e}): views replay their sources after a restart");
        }
        me
    }

    /// Saves the new records of `errors` to `journal` at every checkpoint.
    pub(crate) fn save_errors(&self, errors: ErrorLog, journal: ErrorJournal) {
        errors.save_new_records();
        self.errors.lock().push((errors, journal));
    }

    /// Adds a view to checkpoint.
    pub(crate) fn register(&self, name: &str, view: SnapshottedView) {
        for (_, feed) in &view.feeds {
            feed.track_times();
        }
        self.views.lock().insert(name.to_string(), view);
    }

    /// Whether `name` is a view this checkpointer writes.
    pub(crate) fn is_registered(&self, name: &str) -> bool {
        self.views.lock().contains_key(name)
    }

    /// Stops checkpointing a view (dropped).
    pub(crate) fn unregister(&self, name: &str) {
        self.views.lock().remove(name);
        self.stats.lock().remove(name);
    }

    /// The last checkpoint of each view, by name.
    pub(crate) fn stats(&self) -> BTreeMap<String, CheckpointStats> {
        self.stats.lock().clone()
    }

    /// The last complete round when the server started: views restore from it.
    pub(crate) fn restored_round(&self) -> u64 {
        self.rounds.lock().restored
    }

    /// The last checkpoint before the server stops: a round of every view that has
    /// progressed, then the rejected and late input not saved yet (a round saves those only
    /// when some view has new rows).
    pub(crate) fn final_checkpoint(&self) {
        self.checkpoint_all();
        for (errors, journal) in self.errors.lock().iter_mut() {
            let new = errors.take_unsaved();
            if new.is_empty() {
                continue;
            }
            if let Err(e) = journal.append(&new) {
                tracing::error!(
                    "cannot save rejected or late input to the data directory: {}",
                    describe_io(&e)
                );
                errors.unsaved_again(new);
            }
        }
    }

    /// Writes a round: every view that has progressed, at one dataflow time, then the
    /// round's number to the round log.
    pub(crate) fn checkpoint_all(&self) {
        let mut views = self.views.lock();
        let mut rounds = self.rounds.lock();
        // What the round will hold, fixed first: every input rejected before those
        // positions is in the error log by now.
        let Some((time, prepared)) = prepare_round(&mut views, rounds.last_time) else {
            return;
        };
        // Errors and late rows next: a view checkpoint past a bad or late line must not
        // outlive its record.
        for (errors, journal) in self.errors.lock().iter_mut() {
            let new = errors.take_unsaved();
            if let Err(e) = journal.append(&new) {
                tracing::error!(
                    "cannot save rejected or late input to the data directory: {}",
                    describe_io(&e)
                );
                errors.unsaved_again(new);
                for (name, p) in prepared {
                    if let Some(view) = views.get(&name) {
                        view.capture.put_back(p.rows, time);
                    }
                }
                return;
            }
            if journal.oversized() {
                if let Err(e) = journal.compact(&errors.snapshot()) {
                    tracing::warn!("cannot compact the error journal: {}", describe_io(&e));
                }
            }
        }
        let round = rounds.next;
        rounds.next += 1;
        // Even if this round is not completed, the next one must not be taken at an
        // earlier time: the views whose parts were written are past it.
        rounds.last_time = Some(time);
        let mut complete = true;
        for (name, p) in prepared {
            let Some(view) = views.get_mut(&name) else { continue };
            let result = write(view, p, round, time);
            let mut stats = self.stats.lock();
            let s = stats.entry(name.clone()).or_default();
            match result {
                Ok(written) => {
                    *s = CheckpointStats {
                        count: s.count + 1,
                        error: None,
                        ..written
                    }
                }
                Err(e) => {
                    complete = false;
                    let e = describe_io(&e);
                    if s.error.is_none() {
                        tracing::error!(view = %name, "cannot write a checkpoint: {e}; its rows stay in memory and the next checkpoint tries again");
                    }
                    s.error = Some(e);
                }
            }
        }
        // A round with a view's part missing is never complete: a restart goes back to the
        // previous one, and the next round writes the missing rows.
        if !complete {
            return;
        }
        if let Err(e) = rounds.log.complete(round) {
            tracing::error!("cannot record a complete checkpoint round: {}", describe_io(&e));
            return;
        }
        for view in views.values_mut() {
            compact_if_grown(view);
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
    }
}

/// A view's part of the next round, taken from its capture but not written yet.
struct Prepared {
    positions: BTreeMap<String, Positions>,
    rows: Vec<(rampart_repr::Row, rampart_dataflow::Diff)>,
}

/// Takes the next round if any view has progressed: one dataflow time every view has
/// captured through and every reader can name its positions at, and each view's part
/// (views with no new rows and no new positions have none). `None`: nothing to write.
fn prepare_round(
    views: &mut BTreeMap<String, SnapshottedView>,
    last_time: Option<Time>,
) -> Option<(Time, Vec<(String, Prepared)>)> {
    let complete = views
        .values()
        .map(|v| v.capture.complete_through())
        .collect::<Option<Vec<Time>>>()?
        .into_iter()
        .min()?;
    let floor = last_time.map_or(0, |t| t + 1);
    // The latest time whose batches every reader can name exactly.
    let (time, positions) = (0..TIMES_TRIED)
        .map_while(|back| complete.checked_sub(back).filter(|t| *t >= floor))
        .find_map(|t| {
            let positions: Option<Vec<BTreeMap<String, Positions>>> = views
                .values()
                .map(|view| {
                    view.feeds
                        .iter()
                        .map(|(source, feed)| Some((source.clone(), feed.positions_through(t)?)))
                        .collect()
                })
                .collect();
            positions.map(|p| (t, p))
        })?;
    let mut prepared = Vec::new();
    for ((name, view), positions) in views.iter_mut().zip(positions) {
        let rows = view.capture.take_through(time);
        if rows.is_empty() && view.last.as_ref() == Some(&positions) {
            continue;
        }
        prepared.push((name.clone(), Prepared { positions, rows }));
    }
    (!prepared.is_empty()).then_some((time, prepared))
}

/// Rewrites a retained view's log without the rows expired by its last checkpoint, once
/// it has grown enough. A failure leaves the longer log, which is as good.
fn compact_if_grown(view: &mut SnapshottedView) {
    let (Some(expiry), Some(positions)) = (&view.expiry, &view.last) else {
        return;
    };
    if !view.log.wants_compaction(COMPACT_AFTER_BYTES) {
        return;
    }
    let Some(watermark) = (expiry.watermark_at)(positions) else {
        return;
    };
    let started = Instant::now();
    let before = view.log.len();
    let retention = expiry.retention;
    let keep = |row: &rampart_repr::Row| retention.expires(row).is_none_or(|e| e > watermark);
    match view.log.compact(keep) {
        Ok(kept) => tracing::info!(
            rows_kept = kept,
            bytes_before = before,
            bytes_after = view.log.len(),
            ms = started.elapsed().as_millis() as u64,
            "compacted a retained view's checkpoint log"
        ),
        Err(e) => tracing::warn!("cannot compact a retained view's checkpoint log: {}", describe_io(&e)),
    }
}

/// Writes a view's part of round `round` at `time`; on failure its rows go back to the
/// capture.
fn write(view: &mut SnapshottedView, p: Prepared, round: u64, time: Time) -> std::io::Result<CheckpointStats> {
    let started = Instant::now();
    match view.log.checkpoint(&p.rows, round, time, &p.positions) {
        Ok(()) => {
            for (_, feed) in &view.feeds {
                feed.forget_through(time);
            }
            view.last = Some(p.positions);
            Ok(CheckpointStats {
                rows: p.rows.len(),
                duration: started.elapsed(),
                log_bytes: view.log.len(),
                count: 0,
                error: None,
            })
        }
        Err(e) => {
            view.capture.put_back(p.rows, time);
            Err(e)
        }
    }
}
