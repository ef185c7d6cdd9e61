//! Rampart's data model: the dynamically typed [`Datum`], the [`Row`] that carries a
//! tuple of them through the dataflow, the SQL [`ColumnType`]s a relation declares, and
//! conversion between rows and Arrow record batches (the format DataFusion evaluates); and
//! the types the engine, connectors and storage exchange without depending on each other:
//! dataflow [`Time`] and [`Diff`], a reader's [`FeedProgress`], and the [`SinkWriter`]
//! a sink's destination implements; and the [`Error`] every crate returns, carrying its
//! SQLSTATE.

pub mod arrow_convert;
pub mod datum;
pub mod error;
pub mod error_log;
pub mod feed_progress;
pub mod positions;
pub mod row;
pub mod sink_writer;
pub mod text;
pub mod time;
pub mod types;

pub use arrow_convert::{batch_to_rows, rows_to_batch, rows_to_batch_projected, JoinedRow, RowRef};
pub use datum::Datum;
pub use error::{Error, SqlState};
pub use error_log::{ErrorLog, ErrorRecord, MAX_RECORDS};
pub use feed_progress::FeedProgress;
pub use positions::Positions;
pub use row::{Row, RowIntoIter};
pub use sink_writer::{Delivered, SinkWriter};
pub use text::Str;
pub use time::{now_ms, Diff, Time, DERIVED_CHANGES_MS};
pub use types::{Column, ColumnType, RelationDesc};
