//! Rampart's system tables, queryable like any table.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use rampart_repr::ErrorLog;

/// Name of the table of rejected input.
pub const SOURCE_ERRORS: &str = "rampart_source_errors";

/// Name of the table of rows dropped for arriving behind their source's watermark.
pub const LATE_EVENTS: &str = "rampart_late_events";

/// Every system table's name.
pub const ALL: [&str; 5] = [SOURCE_ERRORS, LATE_EVENTS, SOURCES, CHECKPOINTS, FRONTIERS];

/// Whether `name` is a system table.
pub fn is_system_table(name: &str) -> bool {
    ALL.contains(&name)
}

/// Columns of `rampart_source_errors`.
pub fn source_errors_schema() -> SchemaRef {
    log_schema("error_time")
}

/// Columns of `rampart_late_events` (`reason` names the event time and the watermark).
pub fn late_events_schema() -> SchemaRef {
    log_schema("arrived_at")
}

/// The columns of the system table `name`, if it is one.
pub fn schema_of(name: &str) -> Option<SchemaRef> {
    match name {
        SOURCES => Some(sources_schema()),
        CHECKPOINTS => Some(checkpoints_schema()),
        FRONTIERS => Some(frontiers_schema()),
        _ => log_table_schema(name),
    }
}

/// The columns of `name` if it is one of the log-backed system tables.
pub fn log_table_schema(name: &str) -> Option<SchemaRef> {
    match name {
        SOURCE_ERRORS => Some(source_errors_schema()),
        LATE_EVENTS => Some(late_events_schema()),
        _ => None,
    }
}

/// The columns of a table backed by an [`ErrorLog`].
fn log_schema(time_column: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("location", DataType::Utf8, false),
        Field::new("line_or_offset", DataType::Int64, true),
        Field::new("raw", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new(
            time_column,
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            false,
        ),
    ]))
}

/// The current contents of `rampart_source_errors` (`schema` = [`source_errors_schema`])
/// or `rampart_late_events` (`schema` = [`late_events_schema`]).
pub fn log_batch(log: &ErrorLog, schema: SchemaRef) -> RecordBatch {
    let recs = log.snapshot();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(recs.iter().map(|r| r.source.as_str()))),
        Arc::new(StringArray::from_iter_values(recs.iter().map(|r| r.location.as_str()))),
        Arc::new(Int64Array::from_iter(recs.iter().map(|r| r.offset))),
        Arc::new(StringArray::from_iter_values(recs.iter().map(|r| r.raw.as_str()))),
        Arc::new(StringArray::from_iter_values(recs.iter().map(|r| r.reason.as_str()))),
        Arc::new(TimestampMicrosecondArray::from_iter_values(recs.iter().map(|r| r.at_us)).with_timezone("+00:00")),
    ];
    RecordBatch::try_new(schema.clone(), cols).unwrap_or_else(|_| RecordBatch::new_empty(schema))
}

/// Name of the table of source readers and their state.
pub const SOURCES: &str = "rampart_sources";

/// Columns of `rampart_sources`.
pub fn sources_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("connector", DataType::Utf8, false),
        Field::new("topic", DataType::Utf8, true),
        Field::new("state", DataType::Utf8, false),
        Field::new("partitions", DataType::Int64, true),
        Field::new("messages", DataType::Int64, true),
        Field::new("lag", DataType::Int64, true),
        Field::new("last_error", DataType::Utf8, true),
    ]))
}

/// One row per running Kafka reader (one per materialized view reading a Kafka source).
pub fn sources_batch() -> RecordBatch {
    let mut st = rampart_connectors::kafka_source::statuses();
    st.sort_by(|a, b| (&a.source, a.id).cmp(&(&b.source, b.id)));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(st.iter().map(|s| s.source.as_str()))),
        Arc::new(StringArray::from_iter_values(st.iter().map(|_| "kafka"))),
        Arc::new(StringArray::from_iter(st.iter().map(|s| Some(s.topic.as_str())))),
        Arc::new(StringArray::from_iter_values(st.iter().map(|s| s.state.as_str()))),
        Arc::new(Int64Array::from_iter(st.iter().map(|s| Some(s.partitions as i64)))),
        Arc::new(Int64Array::from_iter(st.iter().map(|s| Some(s.messages as i64)))),
        Arc::new(Int64Array::from_iter(st.iter().map(|s| s.lag.map(|l| l as i64)))),
        Arc::new(StringArray::from_iter(st.iter().map(|s| s.last_error.as_deref()))),
    ];
    RecordBatch::try_new(sources_schema(), cols).unwrap_or_else(|_| RecordBatch::new_empty(sources_schema()))
}

/// Name of the table of snapshotted views and their last checkpoint.
pub const CHECKPOINTS: &str = "rampart_checkpoints";

/// Columns of `rampart_checkpoints`.
pub fn checkpoints_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("view", DataType::Utf8, false),
        Field::new("checkpoints", DataType::Int64, false),
        Field::new("last_rows", DataType::Int64, false),
        Field::new("last_duration_ms", DataType::Float64, false),
        Field::new("log_bytes", DataType::Int64, false),
        Field::new("last_error", DataType::Utf8, true),
    ]))
}

/// One row per snapshotted view that has written (or failed to write) a checkpoint since
/// the server started.
pub(crate) fn checkpoints_batch(
    stats: &std::collections::BTreeMap<String, crate::durability::checkpoint::CheckpointStats>,
) -> RecordBatch {
    use datafusion::arrow::array::Float64Array;
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(stats.keys().map(String::as_str))),
        Arc::new(Int64Array::from_iter_values(stats.values().map(|s| s.count as i64))),
        Arc::new(Int64Array::from_iter_values(stats.values().map(|s| s.rows as i64))),
        Arc::new(Float64Array::from_iter_values(
            stats.values().map(|s| s.duration.as_secs_f64() * 1e3),
        )),
        Arc::new(Int64Array::from_iter_values(stats.values().map(|s| s.log_bytes as i64))),
        Arc::new(StringArray::from_iter(stats.values().map(|s| s.error.as_deref()))),
    ];
    RecordBatch::try_new(checkpoints_schema(), cols).unwrap_or_else(|_| RecordBatch::new_empty(checkpoints_schema()))
}

/// Name of the table of how far each table, materialized view and sink is complete.
pub const FRONTIERS: &str = "rampart_frontiers";

/// Columns of `rampart_frontiers`.
pub fn frontiers_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new(
            "frontier",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]))
}

/// One row per table, materialized view and sink: the dataflow time (processing time)
/// before which its contents, or for a sink its output, reflect every change that entered
/// (NULL until it has one). Everything a view held at time `t` has reached a sink once the
/// sink's frontier passes `t`; tests wait on this instead of sleeping.
pub(crate) fn frontiers_batch(catalog: &crate::catalog::Catalog) -> RecordBatch {
    let mut names = Vec::new();
    let mut kinds = Vec::new();
    let mut frontiers: Vec<Option<i64>> = Vec::new();
    for e in catalog.in_creation_order() {
        let upper = match (&e.store, &e.sink) {
            (Some(store), _) => Some(store.upper()),
            (None, Some(sink)) => Some(sink.upper()),
            (None, None) => continue,
        };
        names.push(e.name.clone());
        kinds.push(e.kind.sql_name().to_string());
        frontiers.push(upper.filter(|u| *u > 0).map(|u| (u as i64).saturating_mul(1000)));
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(names)),
        Arc::new(StringArray::from_iter_values(kinds)),
        Arc::new(TimestampMicrosecondArray::from(frontiers).with_timezone("UTC")),
    ];
    RecordBatch::try_new(frontiers_schema(), cols).unwrap_or_else(|_| RecordBatch::new_empty(frontiers_schema()))
}
