//! Rampart's sources and sinks: one module per connector, plus event decoding.
//!
//! - [`generator`]: the built-in security event generator (auth, firewall, endpoint and
//!   web logs with attacks mixed in) and the reference tables its events join against.
//! - [`source`]: source configuration from `WITH` options and reader start-up;
//!   [`file_source`] and [`generator_source`] are the readers, [`json_decode`] decodes and
//!   [`row_builder`] builds the rows a reader sends (through the view's projection, if any).
//! - [`kafka_source`]: the Kafka reader (all partitions of a topic, Rampart's own offsets).
//! - [`late`]: `WATERMARK` enforcement; late rows go to `rampart_late_events`.
//! - [`sink`]: file and stdout sinks in PLAIN, UPSERT and DEBEZIUM formats;
//!   [`kafka_sink`] writes the same encodings to a Kafka topic.
//!
//! [`rdkafka`] is re-exported so tests and tools use the same client build.

pub mod file_source;
pub mod generator;
pub mod generator_source;
pub mod json_decode;
pub mod kafka_sink;
pub mod kafka_source;
pub mod late;
pub mod row_builder;
pub mod sink;
pub mod source;

pub use rdkafka;
