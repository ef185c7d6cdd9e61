//! Commands the coordinator broadcasts to every worker, in the same order to each.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crossbeam_channel::Receiver;
use rampart_plan::Plan;
use rampart_repr::{ErrorLog, Positions, RelationDesc, Row};

use crate::capture::{SinkWriter, ViewStore};
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
}

impl FeedProgress {
    /// Counts batch `seq` (with its cumulative positions) as ingested.
    pub fn ingested(&self, seq: u64, positions: &Positions) {
        let mut st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if seq < st.next {
            return;
        }
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
}

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
}

impl SourceFeed {
    /// A feed from one receiver per worker.
    pub fn new(receivers: Vec<RowReceiver>) -> Self {
        SourceFeed {
            receivers: Arc::new(Mutex::new(receivers.into_iter().map(Some).collect())),
            progress: FeedProgress::default(),
            watermarked: false,
            projected: false,
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
