//! Rampart's durable state, kept in the data directory (`--data-dir`):
//!
//! - [`CatalogLog`]: every statement that created a live object, so a restarted server
//!   comes back with the same sources, tables, views and sinks;
//! - [`TableLog`]: each table's changes, written before the statement that made them is
//!   acknowledged;
//! - [`SinkStateLog`] and [`ResumableSink`]: what each sink has emitted and how far its
//!   inputs had been read, so that after a restart a sink emits neither a change twice
//!   nor loses one;
//! - [`ErrorJournal`]: the rows of `rampart_source_errors`, so a restart still shows input
//!   rejected before it;
//! - [`ViewLog`]: the rows of each view that reads sources only through maps, filters and
//!   unions (no watermark), with the source positions they reflect, appended at each
//!   checkpoint, so a restart loads them and resumes those readers there.
//!
//! Every file is a [`RecordLog`]: length- and CRC-framed records, so a torn write (a kill
//! during an append) or a corrupt byte is detected and the file is cut back to its last
//! whole record.
//!
//! Recovery model: readers replay deterministically from their start (files and Kafka from
//! their startup position, the generator from its creation time), or from a snapshotted
//! view's last checkpoint, so re-running the catalog's statements rebuilds every view
//! exactly; sinks then emit only the difference between what the rebuilt view holds and
//! what they had emitted.

mod catalog_log;
mod data_dir;
mod error_journal;
mod record_log;
mod resumable_sink;
mod round_log;
mod sink_state;
mod table_log;
mod view_log;

pub use catalog_log::{CatalogLog, StoredObject};
pub use data_dir::{describe_io, io_error, DataDir};
pub use error_journal::ErrorJournal;
pub use record_log::RecordLog;
pub use resumable_sink::ResumableSink;
pub use round_log::RoundLog;
pub use sink_state::{SinkCheckpoint, SinkStateLog};
pub use table_log::TableLog;
pub use view_log::{ViewCheckpoint, ViewLog};

/// Whether an I/O error means the disk is full (so callers can say so, SQLSTATE 53100).
pub use rampart_repr::error::is_disk_full;
