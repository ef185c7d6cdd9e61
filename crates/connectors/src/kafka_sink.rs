//! The `kafka` sink: a sink's changes as JSON messages on one topic, encoded like the file
//! sink ([`row_to_json`]).
//!
//! - `FORMAT PLAIN`: one message per inserted row (and per new version of an updated row);
//!   deletions are not emitted. Key: the primary key columns when `primary_key` is given,
//!   else none.
//! - `FORMAT UPSERT`: key = JSON object of the `primary_key` columns (required), value =
//!   the row; a deleted key gets a tombstone (null payload). Within one time, a key that is
//!   both deleted and inserted (an update) gets only the new value.
//! - `FORMAT DEBEZIUM`: Debezium's `{"before", "after", "op"}` envelope.
//!
//! Delivery: every `write` waits until the broker acknowledged its messages (or the
//! flush timeout passed), so messages go out promptly. Failures are logged and counted in
//! [`KafkaSink::failures`]. There are no checkpoints yet, so after a restart views are
//! rebuilt and rows may be sent again: at-least-once from the sink's perspective.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rampart_dataflow::{Diff, SinkWriter, Time};
use rampart_repr::{RelationDesc, Row};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use serde_json::{Map, Value};

use crate::kafka_source::client_config;
use crate::sink::{row_to_json, SinkFormat, SinkTarget};

/// How long `write` waits for the broker to acknowledge its messages.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening the sink waits for the broker's metadata.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Counts failed deliveries and keeps the last error.
#[derive(Default)]
pub struct DeliveryLog {
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryLog {}

impl ProducerContext for DeliveryLog {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        if let Err((e, _msg)) = result {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!("kafka sink: delivery failed: {e}");
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
    }
}

/// Writes a sink's changes to a Kafka topic as JSON.
pub struct KafkaSink {
    topic: String,
    desc: RelationDesc,
    format: SinkFormat,
    /// Indexes of the primary key columns in `desc`.
    key_columns: Vec<usize>,
    producer: ThreadedProducer<DeliveryLog>,
    /// A failed delivery or flush since the last [`SinkWriter::take_error`].
    write_error: Mutex<Option<String>>,
}

impl KafkaSink {
    /// Connects to the broker of a [`SinkTarget::Kafka`] target and checks the options:
    /// the primary key columns exist (and are given for UPSERT) and the broker answers.
    pub fn open(target: &SinkTarget, desc: RelationDesc, format: SinkFormat) -> Result<Self, String> {
        let SinkTarget::Kafka {
            topic,
            properties,
            primary_key,
        } = target
        else {
            return Err("KafkaSink::open needs a kafka target".into());
        };
        if format == SinkFormat::Upsert && primary_key.is_empty() {
            return Err("FORMAT UPSERT needs option primary_key = 'col1,col2' (the columns of the message key)".into());
        }
        let mut key_columns = Vec::with_capacity(primary_key.len());
        for k in primary_key {
            let i = desc
                .columns
                .iter()
                .position(|c| c.name == *k)
                .or_else(|| desc.columns.iter().position(|c| c.name.eq_ignore_ascii_case(k)))
                .ok_or_else(|| {
                    let names: Vec<&str> = desc.columns.iter().map(|c| c.name.as_str()).collect();
                    format!(
                        "primary_key column '{k}' is not a column of the sink (columns: {})",
                        names.join(", ")
                    )
                })?;
            key_columns.push(i);
        }
        let producer: ThreadedProducer<DeliveryLog> = client_config(properties)
            .create_with_context(DeliveryLog::default())
            .map_err(|e| format!("cannot create the Kafka producer for topic '{topic}': {e}"))?;
        producer.client().fetch_metadata(None, CONNECT_TIMEOUT).map_err(|e| {
            let servers = properties.get("bootstrap.servers").map(String::as_str).unwrap_or("?");
            format!("cannot reach the Kafka broker at '{servers}': {e}")
        })?;
        Ok(KafkaSink {
            topic: topic.clone(),
            desc,
            format,
            key_columns,
            producer,
            write_error: Mutex::new(None),
        })
    }

    /// Messages whose delivery failed so far.
    pub fn failures(&self) -> u64 {
        self.producer.context().failures.load(Ordering::Relaxed)
    }

    /// The last delivery error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.producer
            .context()
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn key(&self, row: &Row) -> Option<String> {
        if self.key_columns.is_empty() {
            return None;
        }
        let full = row_to_json(&self.desc, row);
        let mut m = Map::new();
        for &i in &self.key_columns {
            let name = &self.desc.columns[i].name;
            m.insert(name.clone(), full.get(name).cloned().unwrap_or(Value::Null));
        }
        Some(Value::Object(m).to_string())
    }

    /// The messages (key, payload) of a batch of changes sorted by time.
    fn encode(&self, updates: &[(Row, Time, Diff)]) -> Vec<(Option<String>, Option<String>)> {
        let mut out = Vec::new();
        match self.format {
            SinkFormat::Plain => {
                for (row, _t, diff) in updates {
                    if *diff > 0 {
                        let value = row_to_json(&self.desc, row).to_string();
                        let key = self.key(row);
                        for _ in 0..*diff {
                            out.push((key.clone(), Some(value.clone())));
                        }
                    }
                }
            }
            SinkFormat::Debezium => {
                for (row, _t, diff) in updates {
                    let value = row_to_json(&self.desc, row);
                    let v = if *diff > 0 {
                        serde_json::json!({"before": null, "after": value, "op": "c"})
                    } else {
                        serde_json::json!({"before": value, "after": null, "op": "d"})
                    }
                    .to_string();
                    let key = self.key(row);
                    for _ in 0..diff.abs() {
                        out.push((key.clone(), Some(v.clone())));
                    }
                }
            }
            SinkFormat::Upsert => {
                // Per time: the last state of each key (an insert wins over a delete of the
                // same key at the same time: that is an update).
                let mut start = 0;
                while start < updates.len() {
                    let t = updates[start].1;
                    let end = start + updates[start..].iter().take_while(|u| u.1 == t).count();
                    let mut keys: BTreeMap<String, Option<String>> = BTreeMap::new();
                    for (row, _t, diff) in &updates[start..end] {
                        let key = self.key(row).unwrap_or_default();
                        if *diff > 0 {
                            keys.insert(key, Some(row_to_json(&self.desc, row).to_string()));
                        } else {
                            keys.entry(key).or_insert(None);
                        }
                    }
                    out.extend(keys.into_iter().map(|(k, v)| (Some(k), v)));
                    start = end;
                }
            }
        }
        out
    }

    fn send(&self, key: Option<&str>, payload: Option<&str>) {
        loop {
            let mut record: BaseRecord<'_, str, str> = BaseRecord::to(&self.topic);
            if let Some(k) = key {
                record = record.key(k);
            }
            if let Some(p) = payload {
                record = record.payload(p);
            }
            match self.producer.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // The local queue is full: let the background thread deliver some.
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    self.producer.context().failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!("kafka sink: cannot send to topic '{}': {e}", self.topic);
                    *self
                        .producer
                        .context()
                        .last_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                    return;
                }
            }
        }
    }
}

impl SinkWriter for KafkaSink {
    fn write(&self, updates: &[(Row, Time, Diff)]) {
        let messages = self.encode(updates);
        if messages.is_empty() {
            return;
        }
        let failures_before = self.failures();
        for (key, payload) in &messages {
            self.send(key.as_deref(), payload.as_deref());
        }
        let flushed = self.producer.flush(FLUSH_TIMEOUT);
        if let Err(e) = &flushed {
            tracing::error!("kafka sink: flush to topic '{}' failed: {e}", self.topic);
        }
        if flushed.is_err() || self.failures() > failures_before {
            let why = match flushed {
                Err(e) => format!("flush to topic '{}' failed: {e}", self.topic),
                Ok(()) => self.last_error().unwrap_or_else(|| "delivery failed".into()),
            };
            *self.write_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        }
    }

    fn take_error(&self) -> Option<String> {
        self.write_error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_repr::{Column, ColumnType, Datum};

    fn desc() -> RelationDesc {
        RelationDesc {
            columns: vec![
                Column {
                    name: "k".into(),
                    ty: ColumnType::Text,
                },
                Column {
                    name: "n".into(),
                    ty: ColumnType::Int64,
                },
            ],
        }
    }

    #[test]
    fn upsert_without_primary_key_is_rejected() {
        let target = SinkTarget::Kafka {
            topic: "t".into(),
            properties: [("bootstrap.servers".to_string(), "127.0.0.1:1".to_string())].into(),
            primary_key: vec![],
        };
        let e = KafkaSink::open(&target, desc(), SinkFormat::Upsert).err().unwrap();
        assert!(e.contains("primary_key"), "{e}");
        let target = SinkTarget::Kafka {
            topic: "t".into(),
            properties: [("bootstrap.servers".to_string(), "127.0.0.1:1".to_string())].into(),
            primary_key: vec!["nope".into()],
        };
        let e = KafkaSink::open(&target, desc(), SinkFormat::Upsert).err().unwrap();
        assert!(e.contains("'nope'"), "{e}");
    }

    #[test]
    fn unreachable_broker_is_a_clear_error() {
        let target = SinkTarget::Kafka {
            topic: "t".into(),
            properties: [
                ("bootstrap.servers".to_string(), "127.0.0.1:1".to_string()),
                ("socket.connection.setup.timeout.ms".to_string(), "1000".to_string()),
            ]
            .into(),
            primary_key: vec![],
        };
        let e = KafkaSink::open(&target, desc(), SinkFormat::Plain).err().unwrap();
        assert!(e.contains("cannot reach the Kafka broker at '127.0.0.1:1'"), "{e}");
    }

    #[test]
    fn upsert_update_at_one_time_is_one_value() {
        let row = |k: &str, n: i64| vec![Datum::Str(k.into()), Datum::Int(n)];
        let sink_encode = |updates: &[(Row, Time, Diff)]| {
            // Encoding needs no broker; build the struct around a producer that is never used.
            let producer: ThreadedProducer<DeliveryLog> =
                client_config(&[("bootstrap.servers".to_string(), "127.0.0.1:1".to_string())].into())
                    .create_with_context(DeliveryLog::default())
                    .unwrap();
            let sink = KafkaSink {
                topic: "t".into(),
                desc: desc(),
                format: SinkFormat::Upsert,
                key_columns: vec![0],
                producer,
                write_error: Mutex::new(None),
            };
            sink.encode(updates)
        };
        let got = sink_encode(&[
            (row("a", 2), 1, 1),
            (row("a", 1), 1, -1),
            (row("b", 5), 1, -1),
            (row("a", 2), 2, -1),
        ]);
        assert_eq!(
            got,
            vec![
                (Some(r#"{"k":"a"}"#.into()), Some(r#"{"k":"a","n":2}"#.into())),
                (Some(r#"{"k":"b"}"#.into()), None),
                (Some(r#"{"k":"a"}"#.into()), None),
            ]
        );
    }
}
