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
//! Delivery: `write` only queues its messages; librdkafka's thread sends them at once
//! (within `linger.ms`). The worker that writes never waits for the broker. Each message
//! carries the number of the `write` it belongs to, and the delivery callbacks count the
//! writes the broker has fully acknowledged ([`SinkWriter::acknowledged_writes`]), so a
//! resumable sink records a change as emitted only once the broker has it. Failures are
//! logged, counted in [`KafkaSink::failures`] and reported through
//! [`SinkWriter::take_error`]. Without transactions, changes the broker had received but not
//! yet acknowledged when the server died are sent again after a restart: at-least-once.

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

/// How long `sync` (and dropping the sink) waits for the broker to acknowledge the messages
/// written so far. Short: it runs on a worker thread, which every dataflow waits for.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening the sink waits for the broker's metadata.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Counts failed deliveries, keeps the last error, and tracks which writes the broker has
/// acknowledged.
#[derive(Default)]
pub struct DeliveryLog {
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
    acks: Mutex<WriteAcks>,
}

/// Which writes still have messages on their way.
#[derive(Default)]
struct WriteAcks {
    /// Writes started so far (the last one's number).
    started: u64,
    /// Per write with messages not yet acknowledged, how many.
    outstanding: BTreeMap<u64, usize>,
}

impl DeliveryLog {
    fn acks(&self) -> std::sync::MutexGuard<'_, WriteAcks> {
        self.acks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the next write with `messages` messages; returns its number.
    fn start_write(&self, messages: usize) -> u64 {
        let mut a = self.acks();
        a.started += 1;
        let write = a.started;
        if messages > 0 {
            a.outstanding.insert(write, messages);
        }
        write
    }

    /// One message of `write` is settled: acknowledged, failed, or never queued.
    fn settle(&self, write: u64) {
        let mut a = self.acks();
        if let Some(n) = a.outstanding.get_mut(&write) {
            *n -= 1;
            if *n == 0 {
                a.outstanding.remove(&write);
            }
        }
    }

    /// Writes whose messages, and those of every write before, are all settled.
    fn acknowledged(&self) -> u64 {
        let a = self.acks();
        a.outstanding.keys().next().map(|w| w - 1).unwrap_or(a.started)
    }

    fn fail(&self, e: String) {
        self.failures.fetch_add(1, Ordering::SeqCst);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }
}

impl ClientContext for DeliveryLog {}

impl ProducerContext for DeliveryLog {
    /// The number of the write the message belongs to.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, write: usize) {
        if let Err((e, _msg)) = result {
            tracing::error!("kafka sink: delivery failed: {e}");
            // Recorded before the write counts as acknowledged (see `acknowledged_writes`).
            self.fail(e.to_string());
        }
        self.settle(write as u64);
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
    /// [`KafkaSink::failures`] at the last [`SinkWriter::take_error`].
    reported_failures: AtomicU64,
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
            reported_failures: AtomicU64::new(0),
        })
    }

    /// Messages whose delivery failed so far.
    pub fn failures(&self) -> u64 {
        self.producer.context().failures.load(Ordering::SeqCst)
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

    /// Queues one message of write number `write`.
    fn send(&self, key: Option<&str>, payload: Option<&str>, write: u64) {
        loop {
            let mut record: BaseRecord<'_, str, str, usize> = BaseRecord::with_opaque_to(&self.topic, write as usize);
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
                    tracing::error!("kafka sink: cannot send to topic '{}': {e}", self.topic);
                    let context = self.producer.context();
                    context.fail(e.to_string());
                    context.settle(write);
                    return;
                }
            }
        }
    }
}

impl Drop for KafkaSink {
    /// Dropping a librdkafka producer purges what it has not delivered: wait for it first.
    fn drop(&mut self) {
        if let Err(e) = self.producer.flush(FLUSH_TIMEOUT) {
            tracing::warn!(
                "kafka sink: messages to topic '{}' not acknowledged before the sink stopped: {e}",
                self.topic
            );
        }
    }
}

impl SinkWriter for KafkaSink {
    fn write(&self, updates: &[(Row, Time, Diff)]) {
        let messages = self.encode(updates);
        // Every call is numbered, with or without messages (see `acknowledged_writes`).
        let write = self.producer.context().start_write(messages.len());
        for (key, payload) in &messages {
            self.send(key.as_deref(), payload.as_deref(), write);
        }
    }

    fn sync(&self) -> Result<(), String> {
        self.producer.flush(FLUSH_TIMEOUT).map_err(|e| {
            let why = format!("flush to topic '{}' failed: {e}", self.topic);
            tracing::error!("kafka sink: {why}");
            why
        })
    }

    fn acknowledged_writes(&self) -> Option<u64> {
        Some(self.producer.context().acknowledged())
    }

    fn take_error(&self) -> Option<String> {
        let failures = self.failures();
        if self.reported_failures.swap(failures, Ordering::SeqCst) < failures {
            return Some(self.last_error().unwrap_or_else(|| "delivery failed".into()));
        }
        None
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
    fn a_write_counts_as_acknowledged_once_it_and_every_earlier_write_are_settled() {
        let log = DeliveryLog::default();
        assert_eq!(log.acknowledged(), 0);
        let first = log.start_write(2);
        let empty = log.start_write(0);
        let third = log.start_write(1);
        assert_eq!((first, empty, third), (1, 2, 3));
        assert_eq!(log.acknowledged(), 0, "write 1 has two messages on their way");
        log.settle(first);
        log.settle(third);
        assert_eq!(log.acknowledged(), 0, "write 1 still has a message on its way");
        log.settle(first);
        assert_eq!(log.acknowledged(), 3);
        let fourth = log.start_write(1);
        assert_eq!(log.acknowledged(), 3);
        log.fail("broker down".into());
        log.settle(fourth);
        assert_eq!(log.acknowledged(), 4, "a failed message is settled too");
        assert_eq!(log.failures.load(Ordering::SeqCst), 1);
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
                reported_failures: AtomicU64::new(0),
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
