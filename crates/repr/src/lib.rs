//! Rampart's data model: the dynamically typed [`Datum`], the [`Row`] that carries a
//! tuple of them through the dataflow, the SQL [`ColumnType`]s a relation declares, and
//! conversion between rows and Arrow record batches (the format DataFusion evaluates).

pub mod arrow_convert;
pub mod datum;
pub mod error_log;
pub mod positions;
pub mod row;
pub mod text;
pub mod types;

pub use arrow_convert::{batch_to_rows, rows_to_batch, rows_to_batch_projected, JoinedRow, RowRef};
pub use datum::Datum;
pub use error_log::{ErrorLog, ErrorRecord, MAX_RECORDS};
pub use positions::Positions;
pub use row::{Row, RowIntoIter};
pub use text::Str;
pub use types::{Column, ColumnType, RelationDesc};
