//! Renders Rampart's dataflow IR onto timely + differential dataflow and runs it on a pool
//! of worker threads. The coordinator talks to the workers through [`Engine`]: it creates
//! tables and views, feeds table changes, and reads view contents from the workers'
//! arrangements at a consistent time ([`Engine::peek`]).

pub mod capture;
pub mod command;
pub mod engine;
pub mod eval;
pub mod render;
mod row_expr;
pub mod row_log;
mod row_predicate;
pub mod snapshot;
pub mod source_projection;
mod stored;
#[cfg(test)]
mod test_rows;
mod worker;

pub use capture::{StoreRegistry, ViewStore, WatchedSink};
pub use command::{Command, ExpiryFloors, PeekReply, PeekRequest, SourceBatch, SourceFeed, ViewSpec};
pub use engine::Engine;
pub use snapshot::SnapshotCapture;
pub use source_projection::SourceProjection;
pub use stored::ViewStorage;

pub use rampart_repr::{now_ms, Delivered, Diff, FeedProgress, SinkWriter, Time};
