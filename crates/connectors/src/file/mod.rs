//! The `file` connector: a source of JSON lines from a file or a glob of files, followed as
//! they grow (`source.rs`), and a sink appending JSON lines to a file ([`sink`], whose
//! [`JsonSink`] also prints the `stdout` sink's lines). Options: [`options`].

pub mod options;
pub mod sink;
pub(crate) mod source;

pub use options::{FileSinkOptions, FileSourceOptions};
pub use sink::JsonSink;
