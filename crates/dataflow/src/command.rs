//! Commands the coordinator broadcasts to every worker, in the same order to each.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crossbeam_channel::Receiver;
use rampart_plan::Plan;
use rampart_repr::{ErrorLog, FeedProgress, Positions, RelationDesc, Row, SinkWriter};

use crate::capture::ViewStore;
use crate::snapshot::SnapshotCapture;
use crate::{Diff, Time};

/// Decoded rows from a reader, with how far the reader had read once they were decoded.
#[derive(Clone, Debug, Default)]
pub struct SourceBatch {
    /// The rows.
    pub rows: Vec<Row>,
    /// The reader's positions after these rows (and any rejected input before them):
    /// cumulative, so they also cover every earlier batch.
    pub positions: Positions,
    /// The batch's number in the reader's sequence (0, 1, 2, ...); `None` for the empty
    /// probes a reader sends to see whether the dataflow still exists.
    pub seq: Option<u64>,
    /// The source's watermark (microseconds) once these rows are read: rows in later
    /// batches have event times at or above it. `None` without a `WATERMARK` or before the
    /// first event.
    pub watermark: Option<i64>,
}

/// A worker's end of a source's channel of batches.
pub type RowReceiver = Receiver<SourceBatch>;

/// Batches of decoded rows for one source, one receiver per worker: worker `i` takes
/// receiver `i`. The reader behind it stops when the receivers are dropped.
#[derive(Clone)]
pub struct SourceFeed {
    receivers: Arc<Mutex<Vec<Option<RowReceiver>>>>,
    /// What the workers have ingested from this feed.
    pub progress: FeedProgress,
    /// The source declares a `WATERMARK`: its batches carry watermarks the dataflow tracks.
    pub watermarked: bool,
    /// The reader applies the projection right above every read of the source in the
    /// view's plan ([`crate::SourceProjection`]): its rows are that projection's output.
    pub projected: bool,
    /// The watermark of the source where the reader resumed (a view checkpoint's
    /// positions): the dataflow starts from it once the checkpoint's rows are in.
    pub resumed_watermark: Option<i64>,
}

impl SourceFeed {
    /// A feed from one receiver per worker.
    pub fn new(receivers: Vec<RowReceiver>) -> Self {
        SourceFeed {
            receivers: Arc::new(Mutex::new(receivers.into_iter().map(Some).collect())),
            progress: FeedProgress::default(),
            watermarked: false,
            projected: false,
            resumed_watermark: None,
        }
    }

    /// Takes worker `index`'s receiver (once).
    pub fn take(&self, index: usize) -> Option<RowReceiver> {
        self.receivers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(index)
            .and_then(Option::take)
    }
}

/// Everything a worker needs to build a view's dataflow.
#[derive(Clone)]
pub struct ViewSpec {
    /// Catalog name of the view (or sink).
    pub name: String,
    /// The operator tree.
    pub plan: Arc<Plan>,
    /// Output columns.
    pub desc: RelationDesc,
    /// Keep an arrangement others can read (materialized views); sinks do not.
    pub arrange: bool,
    /// Where the view's contents are served from (materialized views).
    pub store: Option<Arc<ViewStore>>,
    /// Where changes are written (sinks).
    pub sink: Option<Arc<dyn SinkWriter>>,
    /// Feeds for the sources the plan reads directly, by source name.
    pub sources: BTreeMap<String, SourceFeed>,
    /// Where evaluation errors are recorded.
    pub errors: ErrorLog,
    /// Where changes that reach a closed window are recorded (`rampart_late_events`).
    pub late: ErrorLog,
    /// Event-time lags of the objects the plan reads (see `rampart_plan::event_time`).
    pub lags: BTreeMap<String, rampart_plan::event_time::Lags>,
    /// Built while the server restores its catalog: the views it reads are replaying
    /// their inputs from the start, so what they hold at the import is replay, not a
    /// snapshot to start from.
    pub restoring: bool,
    /// While restoring, the expiry floor recorded for each retained view the plan reads
    /// (see [`ExpiryFloors`]).
    pub expiry_floors: BTreeMap<String, i64>,
    /// When not restoring, where the dataflow reports the expiry floor of each retained
    /// view it reads, for the catalog.
    pub floor_report: ExpiryFloors,
    /// Where the view's updates go for checkpoints (a view snapshotted as it runs: see
    /// [`crate::snapshot`]).
    pub snapshot_capture: Option<Arc<SnapshotCapture>>,
    /// The rows of the view's last checkpoint: the view starts with them, and its readers
    /// resume at the checkpoint's positions instead of replaying from the start.
    pub restored_rows: Option<crate::snapshot::RestoredRows>,
    /// The dataflow time the restored rows start entering at, the same on every worker
    /// (each worker's own clock may differ by a few milliseconds or more), so that the
    /// restored watermark, given once they are all in, is after every one of them.
    pub restore_start: Time,
    /// While the catalog is being restored: the time from which the view's readers may
    /// enter batches, `u64::MAX` until the restore is complete (every restored row and
    /// watermark is in at earlier times). `None` outside a restore.
    pub ingest_gate: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// A view rebuilt from retained inputs next to its own restored rows (`restored_rows`):
    /// what its operators produce before `ingest_gate`'s time is already in those rows
    /// (it comes from restored input), so it is dropped.
    pub mute_until_gate: bool,
}

/// Per retained view a view without retention reads: the highest watermark whose expiries
/// were already inside the rows it imported at creation. Rows expiring at or below it had
/// left that view before the new one started; recorded in the catalog, it lets a restore
/// (which replays from the start) drop exactly those rows again.
pub type ExpiryFloors = Arc<parking_lot::Mutex<BTreeMap<String, i64>>>;

/// A command to the workers.
#[derive(Clone)]
pub enum Command {
    /// Create a table: an input every view can read, arranged.
    CreateTable {
        /// Table name.
        name: String,
        /// Where its contents are served from.
        store: Arc<ViewStore>,
    },
    /// Build a view's or sink's dataflow.
    CreateView(Box<ViewSpec>),
    /// Apply changes to a table (worker 0 applies them; every worker receives the command).
    TableUpdates {
        /// Table name.
        name: String,
        /// Rows with +1 (insert) or -1 (delete) multiplicity changes.
        updates: Vec<(Row, Diff)>,
        /// Where worker 0 reports the time the changes entered at (views reflect them once
        /// they pass it).
        entered: crossbeam_channel::Sender<crate::Time>,
    },
    /// Drop a table, view or sink and the dataflow maintaining it.
    Drop {
        /// Object name.
        name: String,
    },
    /// Read the contents of tables and materialized views from their arrangements.
    Peek(Arc<PeekRequest>),
}

/// A query's read of tables and materialized views at one time: each worker answers with
/// its part once its arrangements are complete through `at`.
pub struct PeekRequest {
    /// The objects to read.
    pub names: Vec<String>,
    /// Every update at a time at most this counts.
    pub at: Time,
    /// Where each worker sends its answer.
    pub reply: crossbeam_channel::Sender<PeekReply>,
}

/// One worker's answer to a [`PeekRequest`].
pub enum PeekReply {
    /// Per requested name, in order, this worker's rows (once per unit of multiplicity).
    Rows(Vec<Vec<Row>>),
    /// An arrangement was already compacted past `at`: ask again at a later time.
    Retry,
    /// The object is gone (dropped meanwhile) or has no arrangement.
    Missing(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: u64) -> Positions {
        let mut p = Positions::default();
        p.advance("partition 0", offset);
        p
    }

    #[test]
    fn positions_through_a_time_are_those_of_the_batches_ingested_by_then() {
        let feed = FeedProgress::starting_at(at(100));
        feed.track_times();
        assert_eq!(feed.positions_through(5), Some(at(100)), "nothing ingested yet");
        feed.ingested(0, &at(110), 10);
        feed.ingested(1, &at(120), 10);
        feed.ingested(2, &at(130), 12);
        assert_eq!(feed.positions_through(9), Some(at(100)));
        assert_eq!(feed.positions_through(10), Some(at(120)));
        assert_eq!(feed.positions_through(11), Some(at(120)));
        assert_eq!(feed.positions_through(12), Some(at(130)));
    }

    #[test]
    fn a_time_that_holds_a_later_batch_but_not_an_earlier_one_has_no_positions() {
        let feed = FeedProgress::default();
        feed.track_times();
        feed.ingested(0, &at(10), 3);
        // Worker 1 took batch 2 at time 4; worker 0 took batch 1 only at time 6.
        feed.ingested(2, &at(30), 4);
        assert_eq!(feed.positions_through(4), None, "batch 1 is missing at time 4");
        feed.ingested(1, &at(20), 6);
        assert_eq!(feed.positions_through(3), Some(at(10)));
        assert_eq!(feed.positions_through(4), None, "still: batch 2 in, batch 1 out");
        assert_eq!(feed.positions_through(5), None);
        assert_eq!(feed.positions_through(6), Some(at(30)));
        assert_eq!(feed.complete(), at(30));
    }

    #[test]
    fn forgetting_through_a_checkpoint_keeps_later_answers() {
        let feed = FeedProgress::default();
        feed.track_times();
        for seq in 0..4 {
            feed.ingested(seq, &at(10 * (seq + 1)), 2 * seq);
        }
        feed.forget_through(3);
        assert_eq!(feed.positions_through(2), None, "before the checkpoint: forgotten");
        assert_eq!(feed.positions_through(3), Some(at(20)));
        assert_eq!(feed.positions_through(6), Some(at(40)));
        feed.ingested(4, &at(50), 8);
        assert_eq!(feed.positions_through(8), Some(at(50)));
    }

    #[test]
    fn batches_entering_in_order_never_go_back_in_time() {
        let feed = FeedProgress::default();
        feed.track_times();
        assert_eq!(feed.ingest_time(1, 5), None, "batch 0 first");
        assert_eq!(feed.ingest_time(0, 5), Some(5));
        feed.ingested(0, &at(10), 5);
        // The other worker's clock is behind: batch 1 enters at batch 0's time.
        assert_eq!(feed.ingest_time(1, 3), Some(5));
        feed.ingested(1, &at(20), 5);
        assert_eq!(feed.ingest_time(2, 9), Some(9));
        feed.ingested(2, &at(30), 9);
        for t in 0..12 {
            assert!(
                feed.positions_through(t).is_some(),
                "every time splits the batches: {t}"
            );
        }
        assert_eq!(feed.positions_through(8), Some(at(20)));
    }

    #[test]
    fn untracked_feeds_keep_no_times() {
        let feed = FeedProgress::default();
        feed.ingested(0, &at(10), 3);
        assert_eq!(feed.positions_through(3), None);
        assert_eq!(feed.complete(), at(10));
    }
}
