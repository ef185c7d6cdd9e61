//! The `kafka` connector: a source reading every partition of a topic with Rampart's own
//! offsets ([`source`]), a sink writing a view's changes to a topic exactly once across
//! restarts ([`sink`]), their options ([`options`]) and the client configuration they share.

pub(crate) mod client;
pub mod options;
pub mod sink;
pub mod source;

pub use options::{KafkaSinkOptions, KafkaSourceOptions};
pub use sink::KafkaSink;
pub use source::{statuses, KafkaReaderStatus, KafkaStartup, MetaColumn};
