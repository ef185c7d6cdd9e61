//! The `kafka` sink: a sink's changes as JSON messages on one topic, encoded as keyed
//! messages (`crate::envelope::keyed_messages`): PLAIN, UPSERT (key = the `primary_key`
//! columns, a tombstone for a deleted key) or DEBEZIUM.
//!
//! Delivery: `write` only queues its messages; librdkafka's thread sends them at once
//! (within `linger.ms`). The worker that writes never waits for the broker. Each message
//! carries the number of the `write` it belongs to, and the delivery callbacks count the
//! writes the broker has fully acknowledged ([`SinkWriter::acknowledged_writes`]), so a
//! resumable sink records a change as emitted only once the broker has it. Failures are
//! logged, counted in [`KafkaSink::failures`] and reported through
//! [`SinkWriter::take_error`].
//!
//! Exactly once across restarts, without transactions: every message carries three headers,
//! `rampart-sink` (the sink's name), `rampart-seq` (its number in the sink's output, counted
//! across restarts) and `rampart-changes` (the changes it stands for, as the sink's log
//! records them). With the acknowledged writes the sink's log records its output positions:
//! the next message number, and per partition an offset at or before the first message
//! that is not in the log yet ([`SinkWriter::output_positions`]). After a restart
//! [`SinkWriter::delivered_since`] reads every partition from those offsets and returns the
//! changes of this sink's messages numbered from there: delivered before the server died but
//! not yet acknowledged or logged. The resumable sink counts them as emitted, so they are not
//! sent again. The idempotent producer (`enable.idempotence`, on by default) keeps the
//! broker from storing a retried message twice.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rampart_dataflow::{Delivered, Diff, SinkWriter, Time};
use rampart_repr::{Error, Positions, RelationDesc, Row, SqlState};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::envelope::{keyed_messages, KeyedMessage, SinkFormat};
use crate::kafka::client::{assign_config, client_config, kafka_error};
use crate::sink::SinkTarget;

/// How long `sync` (and dropping the sink) waits for the broker to acknowledge the messages
/// written so far. Short: it runs on a worker thread, which every dataflow waits for.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening the sink waits for the broker's metadata.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a readback after a restart may take in all.
const READBACK_TIMEOUT: Duration = Duration::from_secs(120);
/// A readback past every partition's high watermark stops after this long without a message
/// (some brokers report a high watermark below their last message).
const READBACK_IDLE: Duration = Duration::from_millis(500);

/// Write starts kept for [`DeliveryLog::positions_after`]. The resumable sink asks about
/// the last acknowledged write and everything before it is dropped then; this bounds the
/// map of a sink that nobody asks (no data directory).
const MAX_WRITE_STARTS: usize = 100_000;

/// Message header: the name of the sink that wrote the message.
pub const SINK_HEADER: &str = "rampart-sink";
/// Message header: the message's number in the sink's output (decimal).
pub const SEQ_HEADER: &str = "rampart-seq";
/// Message header: the changes the message stands for (JSON `[[row, diff], ...]`).
pub const CHANGES_HEADER: &str = "rampart-changes";
/// Output position key of the next message number.
const SEQ_POSITION: &str = "seq";

/// Output position key of a partition's readback offset.
fn partition_position(partition: i32) -> String {
    format!("partition {partition}")
}

/// Counts failed deliveries, keeps the last error, and tracks which writes the broker has
/// acknowledged.
#[derive(Default)]
pub struct DeliveryLog {
    failures: AtomicU64,
    last_error: Mutex<Option<Error>>,
    acks: Mutex<WriteAcks>,
}

/// Which writes still have messages on their way, and where the output stood when each
/// started.
#[derive(Default)]
struct WriteAcks {
    /// Writes started so far (the last one's number).
    started: u64,
    /// Per write with messages not yet acknowledged, how many.
    outstanding: BTreeMap<u64, usize>,
    /// The number of the next message.
    next_seq: u64,
    /// Per partition, one past the highest offset delivered so far (at open: the end
    /// offsets then). Every message sent later lands at or after it.
    delivered_end: BTreeMap<i32, i64>,
    /// Per write not yet asked for by [`DeliveryLog::positions_after`]: `next_seq` and
    /// `delivered_end` when it started.
    starts: BTreeMap<u64, (u64, BTreeMap<i32, i64>)>,
}

impl DeliveryLog {
    fn acks(&self) -> std::sync::MutexGuard<'_, WriteAcks> {
        self.acks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the next write with `messages` messages; returns its number and the number
    /// of its first message.
    fn start_write(&self, messages: usize) -> (u64, u64) {
        let mut a = self.acks();
        a.started += 1;
        let write = a.started;
        if messages > 0 {
            a.outstanding.insert(write, messages);
        }
        let first_seq = a.next_seq;
        let start = (first_seq, a.delivered_end.clone());
        a.starts.insert(write, start);
        if a.starts.len() > MAX_WRITE_STARTS {
            // Nobody asks (a sink without a data directory): keep the map bounded.
            a.starts.pop_first();
        }
        a.next_seq += messages as u64;
        (write, first_seq)
    }

    /// A message landed at `offset` of `partition`.
    fn delivered(&self, partition: i32, offset: i64) {
        let mut a = self.acks();
        let end = a.delivered_end.entry(partition).or_insert(0);
        *end = (*end).max(offset + 1);
    }

    /// Output positions right after write `write`: the next message number then, and per
    /// partition an offset at or before every message of later writes.
    fn positions_after(&self, write: u64) -> Positions {
        let mut a = self.acks();
        let (seq, floor) = match a.starts.get(&(write + 1)) {
            Some((seq, floor)) => (*seq, floor.clone()),
            None => (a.next_seq, a.delivered_end.clone()),
        };
        a.starts = a.starts.split_off(&(write + 1));
        let mut p = Positions::default();
        p.advance(SEQ_POSITION, seq);
        for (partition, offset) in floor {
            p.advance(&partition_position(partition), offset.max(0) as u64);
        }
        p
    }

    /// Continues after what a readback found: message numbers from `positions`' next one,
    /// offsets from its partitions'.
    fn resume_at(&self, positions: &Positions) {
        let mut a = self.acks();
        if let Some(seq) = positions.0.get(SEQ_POSITION) {
            a.next_seq = a.next_seq.max(*seq);
        }
        for (key, offset) in &positions.0 {
            if let Some(p) = key.strip_prefix("partition ").and_then(|p| p.parse::<i32>().ok()) {
                let end = a.delivered_end.entry(p).or_insert(0);
                *end = (*end).max(*offset as i64);
            }
        }
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

    fn fail(&self, e: Error) {
        self.failures.fetch_add(1, Ordering::SeqCst);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }
}

impl ClientContext for DeliveryLog {}

impl ProducerContext for DeliveryLog {
    /// The number of the write the message belongs to.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, write: usize) {
        match result {
            Ok(m) => self.delivered(m.partition(), m.offset()),
            Err((e, _msg)) => {
                tracing::error!("kafka sink: delivery failed: {e}");
                // Recorded before the write counts as acknowledged (see `acknowledged_writes`).
                self.fail(kafka_error(e.to_string(), e.clone()));
            }
        }
        self.settle(write as u64);
    }
}

/// Writes a sink's changes to a Kafka topic as JSON.
pub struct KafkaSink {
    /// The sink's name (the `rampart-sink` header).
    name: String,
    topic: String,
    /// The connection properties (`properties.*`), for the readback consumer.
    properties: BTreeMap<String, String>,
    desc: RelationDesc,
    format: SinkFormat,
    /// Indexes of the primary key columns in `desc`.
    key_columns: Vec<usize>,
    producer: ThreadedProducer<DeliveryLog>,
    /// [`KafkaSink::failures`] at the last [`SinkWriter::take_error`].
    reported_failures: AtomicU64,
}

impl KafkaSink {
    /// Connects to the broker of a [`SinkTarget::Kafka`] target for sink `name` and checks
    /// the options: the primary key columns exist (and are given for UPSERT: else `22023`)
    /// and the broker answers (else the Kafka error's state, [`kafka_error`]).
    pub fn open(name: &str, target: &SinkTarget, desc: RelationDesc, format: SinkFormat) -> Result<Self, Error> {
        let SinkTarget::Kafka {
            topic,
            properties,
            primary_key,
        } = target
        else {
            return Err(Error::internal("KafkaSink::open needs a kafka target"));
        };
        if format == SinkFormat::Upsert && primary_key.is_empty() {
            return Err(Error::invalid_parameter(
                "FORMAT UPSERT needs option primary_key = 'col1,col2' (the columns of the message key)",
            ));
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
                    Error::invalid_parameter(format!(
                        "primary_key column '{k}' is not a column of the sink (columns: {})",
                        names.join(", ")
                    ))
                })?;
            key_columns.push(i);
        }
        let mut cfg = client_config(properties);
        if !properties.contains_key("enable.idempotence") {
            // A retried message is stored once (and in order).
            cfg.set("enable.idempotence", "true");
        }
        let producer: ThreadedProducer<DeliveryLog> = cfg
            .create_with_context(DeliveryLog::default())
            .map_err(|e| kafka_error(format!("cannot create the Kafka producer for topic '{topic}': {e}"), e))?;
        let metadata = producer.client().fetch_metadata(None, CONNECT_TIMEOUT).map_err(|e| {
            let servers = properties.get("bootstrap.servers").map(String::as_str).unwrap_or("?");
            kafka_error(format!("cannot reach the Kafka broker at '{servers}': {e}"), e)
        })?;
        // Where the topic ends now: every message this sink sends lands after it. (A topic
        // that does not exist yet is created by the first message: its partitions start at 0.)
        if let Some(t) = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
        {
            for p in t.partitions() {
                let (_low, high) = producer
                    .client()
                    .fetch_watermarks(topic, p.id(), CONNECT_TIMEOUT)
                    .map_err(|e| {
                        kafka_error(
                            format!(
                                "cannot read the end offset of partition {} of topic '{topic}': {e}",
                                p.id()
                            ),
                            e,
                        )
                    })?;
                producer.context().delivered(p.id(), high - 1);
            }
        }
        Ok(KafkaSink {
            name: name.to_string(),
            properties: properties.clone(),
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
    pub fn last_error(&self) -> Option<Error> {
        self.producer
            .context()
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Queues message number `seq`, of write number `write`.
    fn send(&self, message: &KeyedMessage, write: u64, seq: u64) {
        let seq_text = seq.to_string();
        let changes = serde_json::to_vec(&message.changes).expect("rows serialize");
        loop {
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: SINK_HEADER,
                    value: Some(self.name.as_bytes()),
                })
                .insert(Header {
                    key: SEQ_HEADER,
                    value: Some(seq_text.as_bytes()),
                })
                .insert(Header {
                    key: CHANGES_HEADER,
                    value: Some(&changes),
                });
            let mut record: BaseRecord<'_, str, str, usize> =
                BaseRecord::with_opaque_to(&self.topic, write as usize).headers(headers);
            if let Some(k) = message.key.as_deref() {
                record = record.key(k);
            }
            if let Some(p) = message.payload.as_deref() {
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
                    context.fail(kafka_error(e.to_string(), e));
                    context.settle(write);
                    return;
                }
            }
        }
    }
}

/// Reads `topic` back from the partition offsets in `recorded` (output positions of sink
/// `name`'s last record) and returns the changes of the sink's messages numbered from
/// `recorded`'s next message number on, each message once, and the output positions after
/// them.
fn read_back(
    name: &str,
    topic: &str,
    properties: &BTreeMap<String, String>,
    recorded: &Positions,
) -> Result<Delivered, Error> {
    let from_seq = recorded.0.get(SEQ_POSITION).copied().unwrap_or(0);
    let consumer: BaseConsumer = assign_config(properties, &format!("readback-{name}"))
        .create()
        .map_err(|e| {
            kafka_error(
                format!("cannot create a Kafka consumer to read topic '{topic}' back: {e}"),
                e,
            )
        })?;
    let metadata = consumer
        .fetch_metadata(Some(topic), CONNECT_TIMEOUT)
        .map_err(|e| kafka_error(format!("cannot fetch metadata of topic '{topic}': {e}"), e))?;
    let Some(t) = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
    else {
        // No topic: nothing was delivered.
        return Ok((Vec::new(), recorded.clone()));
    };
    let mut assignment = TopicPartitionList::new();
    // Partition → the high watermark the readback must reach.
    let mut pending: BTreeMap<i32, i64> = BTreeMap::new();
    // Partition → the offset after everything read (or known to exist).
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for p in t.partitions() {
        let (low, high) = consumer.fetch_watermarks(topic, p.id(), CONNECT_TIMEOUT).map_err(|e| {
            kafka_error(
                format!(
                    "cannot read the offsets of partition {} of topic '{topic}': {e}",
                    p.id()
                ),
                e,
            )
        })?;
        let start = recorded
            .0
            .get(&partition_position(p.id()))
            .map(|o| *o as i64)
            .unwrap_or(0)
            .max(low);
        ends.insert(p.id(), start.max(high));
        if start < high {
            pending.insert(p.id(), high);
        }
        assignment
            .add_partition_offset(topic, p.id(), Offset::Offset(start))
            .map_err(|e| kafka_error(format!("cannot assign partition {} of topic '{topic}': {e}", p.id()), e))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|e| kafka_error(format!("cannot assign the partitions of topic '{topic}': {e}"), e))?;
    let started = std::time::Instant::now();
    let mut last_message = started;
    let mut seen = std::collections::BTreeSet::new();
    let mut changes = Vec::new();
    let mut next_seq = from_seq;
    while !(pending.is_empty() && last_message.elapsed() >= READBACK_IDLE) {
        if started.elapsed() > READBACK_TIMEOUT {
            return Err(Error::new(
                SqlState::ConnectionFailure,
                format!(
                    "reading topic '{topic}' back did not finish within {}s",
                    READBACK_TIMEOUT.as_secs()
                ),
            ));
        }
        let Some(message) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let m = message.map_err(|e| kafka_error(format!("cannot read topic '{topic}' back: {e}"), e))?;
        last_message = std::time::Instant::now();
        let (partition, offset) = (m.partition(), m.offset());
        let end = ends.entry(partition).or_insert(0);
        *end = (*end).max(offset + 1);
        if pending.get(&partition).is_some_and(|high| offset + 1 >= *high) {
            pending.remove(&partition);
        }
        if let Some((seq, carried)) = sink_message(name, &m) {
            if seq >= from_seq && seen.insert(seq) {
                next_seq = next_seq.max(seq + 1);
                changes.extend(carried);
            }
        }
    }
    let mut positions = Positions::default();
    positions.advance(SEQ_POSITION, next_seq);
    for (partition, offset) in ends {
        positions.advance(&partition_position(partition), offset.max(0) as u64);
    }
    tracing::info!(
        sink = name,
        topic,
        messages = seen.len(),
        ms = started.elapsed().as_millis() as u64,
        "read back the messages the sink sent after its last record"
    );
    Ok((changes, positions))
}

/// The number and changes of a message written by sink `name` (see the headers above);
/// `None` for other messages. A message of this sink with unreadable headers is skipped
/// with a warning.
fn sink_message<M: Message>(name: &str, m: &M) -> Option<(u64, Vec<(Row, Diff)>)> {
    let headers = m.headers()?;
    let header = |key: &str| headers.iter().find(|h| h.key == key).and_then(|h| h.value);
    if header(SINK_HEADER)? != name.as_bytes() {
        return None;
    }
    let seq = header(SEQ_HEADER)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<u64>().ok());
    let changes = header(CHANGES_HEADER).and_then(|v| serde_json::from_slice::<Vec<(Row, Diff)>>(v).ok());
    match (seq, changes) {
        (Some(seq), Some(changes)) => Some((seq, changes)),
        _ => {
            tracing::warn!(
                sink = name,
                partition = m.partition(),
                offset = m.offset(),
                "a message of this sink has unreadable {SEQ_HEADER} / {CHANGES_HEADER} headers; skipped"
            );
            None
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
        let messages = keyed_messages(self.format, &self.desc, &self.key_columns, updates);
        // Every call is numbered, with or without messages (see `acknowledged_writes`).
        let (write, first_seq) = self.producer.context().start_write(messages.len());
        for (i, message) in messages.iter().enumerate() {
            self.send(message, write, first_seq + i as u64);
        }
    }

    fn output_positions(&self, write: u64) -> Option<Positions> {
        Some(self.producer.context().positions_after(write))
    }

    fn delivered_since(&self, recorded: &Positions) -> Result<Delivered, Error> {
        let found = read_back(&self.name, &self.topic, &self.properties, recorded)?;
        self.producer.context().resume_at(&found.1);
        Ok(found)
    }

    fn sync(&self) -> Result<(), Error> {
        self.producer.flush(FLUSH_TIMEOUT).map_err(|e| {
            let why = format!("flush to topic '{}' failed: {e}", self.topic);
            tracing::error!("kafka sink: {why}");
            kafka_error(why, e)
        })
    }

    fn acknowledged_writes(&self) -> Option<u64> {
        Some(self.producer.context().acknowledged())
    }

    fn take_error(&self) -> Option<Error> {
        let failures = self.failures();
        if self.reported_failures.swap(failures, Ordering::SeqCst) < failures {
            return Some(
                self.last_error()
                    .unwrap_or_else(|| Error::new(SqlState::SystemError, "delivery failed")),
            );
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_repr::{Column, ColumnType};

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
        let e = KafkaSink::open("s", &target, desc(), SinkFormat::Upsert).err().unwrap();
        assert!(e.message().contains("primary_key"), "{e}");
        assert_eq!(e.sqlstate(), "22023");
        let target = SinkTarget::Kafka {
            topic: "t".into(),
            properties: [("bootstrap.servers".to_string(), "127.0.0.1:1".to_string())].into(),
            primary_key: vec!["nope".into()],
        };
        let e = KafkaSink::open("s", &target, desc(), SinkFormat::Upsert).err().unwrap();
        assert!(e.message().contains("'nope'"), "{e}");
        assert_eq!(e.sqlstate(), "22023");
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
        let e = KafkaSink::open("s", &target, desc(), SinkFormat::Plain).err().unwrap();
        assert!(
            e.message().contains("cannot reach the Kafka broker at '127.0.0.1:1'"),
            "{e}"
        );
        assert_eq!(e.sqlstate(), "08006", "a broker that cannot be reached: {e}");
    }

    #[test]
    fn a_write_counts_as_acknowledged_once_it_and_every_earlier_write_are_settled() {
        let log = DeliveryLog::default();
        assert_eq!(log.acknowledged(), 0);
        let first = log.start_write(2).0;
        let empty = log.start_write(0).0;
        let third = log.start_write(1).0;
        assert_eq!((first, empty, third), (1, 2, 3));
        assert_eq!(log.acknowledged(), 0, "write 1 has two messages on their way");
        log.settle(first);
        log.settle(third);
        assert_eq!(log.acknowledged(), 0, "write 1 still has a message on its way");
        log.settle(first);
        assert_eq!(log.acknowledged(), 3);
        let fourth = log.start_write(1).0;
        assert_eq!(log.acknowledged(), 3);
        log.fail(Error::new(SqlState::ConnectionFailure, "broker down"));
        log.settle(fourth);
        assert_eq!(log.acknowledged(), 4, "a failed message is settled too");
        assert_eq!(log.failures.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn output_positions_after_a_write_bound_every_later_message() {
        let log = DeliveryLog::default();
        log.delivered(0, 9); // the topic ended at offset 10 when the sink opened
        let (w1, s1) = log.start_write(2);
        assert_eq!((w1, s1), (1, 0));
        log.delivered(0, 10);
        log.delivered(1, 0);
        let (w2, s2) = log.start_write(1);
        assert_eq!((w2, s2), (2, 2));
        log.delivered(0, 11);
        let after_first = log.positions_after(1);
        // Write 2's message went out after offsets 10 (partition 0) and 0 (partition 1)
        // were delivered, so it landed after them.
        assert_eq!(after_first.0.get(SEQ_POSITION), Some(&2));
        assert_eq!(after_first.0.get("partition 0"), Some(&11));
        assert_eq!(after_first.0.get("partition 1"), Some(&1));
        let after_second = log.positions_after(2);
        assert_eq!(after_second.0.get(SEQ_POSITION), Some(&3));
        assert_eq!(after_second.0.get("partition 0"), Some(&12));
        // A readback that found messages up to number 7 continues after them.
        let mut found = Positions::default();
        found.advance(SEQ_POSITION, 8);
        found.advance("partition 2", 4);
        log.resume_at(&found);
        assert_eq!(log.start_write(1).1, 8);
        assert_eq!(log.positions_after(3).0.get("partition 2"), Some(&4));
    }
}
