//! Rampart's sources and sinks: one module per connector, plus what they share.
//!
//! Connectors, each with its options table ([`options`]):
//! - [`file`](mod@file): JSON-lines files and globs as a source, and the file sink.
//! - [`generator`]: the built-in security event generator (auth, firewall, endpoint and
//!   web logs with attacks mixed in), the reference tables its events join against, and
//!   the source that runs it.
//! - [`kafka`]: the Kafka source (all partitions of a topic, Rampart's own offsets) and the
//!   exactly-once Kafka sink.
//! - [`stdout`]: the sink that prints the file sink's lines.
//!
//! Shared:
//! - [`source`] and [`sink`]: a `WITH` clause to a connector's configuration, and reader
//!   start-up.
//! - [`options`]: how option tables are declared and parsed; [`docs`] renders them for
//!   `docs/connectors/`.
//! - [`envelope`]: the PLAIN, UPSERT and DEBEZIUM JSON encodings every sink writes.
//! - [`batch`]: how readers hand batches to the dataflow workers; [`json_decode`] decodes
//!   and [`row_builder`] builds the rows a reader sends (through the view's projection, if
//!   any); [`late`]: `WATERMARK` enforcement (late rows go to `rampart_late_events`).
//!
//! [`kafka_source`] and [`kafka_sink`] name the Kafka modules by their paths in other
//! crates; [`rdkafka`] is re-exported so tests and tools use the same client build.

#[macro_use]
pub mod options;

pub mod batch;
pub mod docs;
pub mod envelope;
pub mod file;
pub mod generator;
pub mod json_decode;
pub mod kafka;
pub mod late;
pub mod row_builder;
pub mod sink;
pub mod source;
pub mod stdout;

pub use kafka::sink as kafka_sink;
pub use kafka::source as kafka_source;
pub use rdkafka;
