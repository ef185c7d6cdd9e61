//! Commands the coordinator broadcasts to every worker, in the same order to each.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crossbeam_channel::Receiver;
use rampart_plan::Plan;
use rampart_repr::{ErrorLog, RelationDesc, Row};

use crate::capture::{SinkWriter, ViewStore};
use crate::Diff;

/// A worker's end of a source's channel of row batches.
pub type RowReceiver = Receiver<Vec<Row>>;

/// Batches of decoded rows for one source, one receiver per worker: worker `i` takes
/// receiver `i`. The reader behind it stops when the receivers are dropped.
#[derive(Clone)]
pub struct SourceFeed {
    receivers: Arc<Mutex<Vec<Option<RowReceiver>>>>,
}

impl SourceFeed {
    /// A feed from one receiver per worker.
    pub fn new(receivers: Vec<Receiver<Vec<Row>>>) -> Self {
        SourceFeed {
            receivers: Arc::new(Mutex::new(receivers.into_iter().map(Some).collect())),
        }
    }

    /// Takes worker `index`'s receiver (once).
    pub fn take(&self, index: usize) -> Option<Receiver<Vec<Row>>> {
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
}

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
}
