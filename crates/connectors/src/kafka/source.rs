//! The `kafka` source: every partition of one topic, read by a librdkafka consumer with
//! manual assignment. Offsets are Rampart's own (the reader keeps the next offset of each
//! partition; nothing is committed to a consumer group). Each message payload is one JSON
//! object; a message that does not decode goes to the error log with location
//! `topic/partition` and its offset. An unreachable broker or a missing topic is retried with
//! backoff and shown in [`statuses`]; it never stops the reader.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rampart_repr::{Error, SqlState};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::batch::{BatchSender, BATCH_ROWS};
use crate::kafka::client::{assign_config, client_config, kafka_error};
use crate::row_builder::RowBuilder;
use crate::source::SourceContext;

/// How often a reader measures its lag.
const LAG_REFRESH: Duration = Duration::from_secs(1);

/// How often the reader looks for partitions added to the topic.
const METADATA_REFRESH: Duration = Duration::from_secs(5);
/// First wait after a failed connection attempt; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Timeout of one metadata / offset request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The next offset per partition after the messages of the batch being read, applied to
/// the reader's positions once per batch (not once per message: a position's key is a
/// string, and a batch holds up to `BATCH_ROWS` messages of a few partitions).
#[derive(Default)]
struct ReadTo(Vec<(i32, i64)>);

impl ReadTo {
    /// Records that `partition` has been read up to (not including) offset `next`.
    fn note(&mut self, partition: i32, next: i64) {
        match self.0.iter_mut().find(|(p, _)| *p == partition) {
            Some((_, n)) => *n = next,
            None => self.0.push((partition, next)),
        }
    }

    /// The partitions read since the last call, with their next offsets.
    fn take(&mut self) -> std::vec::Drain<'_, (i32, i64)> {
        self.0.drain(..)
    }
}

/// How long one poll waits for a message when the topic is idle.
const POLL: Duration = Duration::from_millis(50);

/// Kafka message metadata a source can expose as a column (`INCLUDE key | partition |
/// offset | timestamp [AS name]`, as RisingWave spells it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaColumn {
    /// The message key as text (NULL when absent).
    Key,
    /// The partition number, as text (RisingWave's type).
    Partition,
    /// The offset, as text (RisingWave's type).
    Offset,
    /// The message timestamp (TIMESTAMPTZ).
    Timestamp,
}

impl MetaColumn {
    /// The metadata for an `INCLUDE` keyword.
    pub fn parse(word: &str) -> Result<Self, Error> {
        match word.to_lowercase().as_str() {
            "key" => Ok(MetaColumn::Key),
            "partition" => Ok(MetaColumn::Partition),
            "offset" => Ok(MetaColumn::Offset),
            "timestamp" => Ok(MetaColumn::Timestamp),
            other => Err(Error::unsupported(format!(
                "INCLUDE {other} is not supported (key, partition, offset, timestamp)"
            ))),
        }
    }

    /// RisingWave's default column name for it.
    pub fn default_name(self) -> &'static str {
        match self {
            MetaColumn::Key => "_rw_key",
            MetaColumn::Partition => "_rw_kafka_partition",
            MetaColumn::Offset => "_rw_kafka_offset",
            MetaColumn::Timestamp => "_rw_kafka_timestamp",
        }
    }

    /// The column's type.
    pub fn column_type(self) -> rampart_repr::ColumnType {
        match self {
            MetaColumn::Timestamp => rampart_repr::ColumnType::TimestampTz,
            _ => rampart_repr::ColumnType::Text,
        }
    }
}

/// Where a Kafka source starts reading the partitions that exist when it starts.
/// Partitions discovered later are always read from their beginning (all their data is new).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaStartup {
    /// From the earliest retained message (`scan.startup.mode = 'earliest'`, the default).
    Earliest,
    /// From the end: only messages produced after the reader starts (`'latest'`).
    Latest,
    /// From the first message whose timestamp is at or after these epoch milliseconds
    /// (`scan.startup.timestamp.millis`).
    Timestamp(i64),
    /// `latest` as it was when the source was created: these offsets per partition
    /// (partitions not listed start at their beginning).
    Offsets(BTreeMap<i32, i64>),
}

/// The end offset of every partition of `topic` now, keyed like reader positions
/// (`partition N`): what `latest` means at this moment.
pub fn end_offsets(topic: &str, props: &BTreeMap<String, String>) -> Result<rampart_repr::Positions, Error> {
    let mut cfg = client_config(props);
    cfg.set("group.id", format!("rampart-pin-{}", std::process::id()));
    let consumer: BaseConsumer = cfg
        .create()
        .map_err(|e| kafka_error(format!("cannot create a Kafka consumer: {e}"), e))?;
    let md = consumer
        .fetch_metadata(Some(topic), PIN_TIMEOUT)
        .map_err(|e| kafka_error(format!("cannot fetch metadata of topic '{topic}': {e}"), e))?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
        .ok_or_else(|| topic_not_found(topic))?;
    let mut out = rampart_repr::Positions::default();
    for p in t.partitions() {
        let (_low, high) = consumer
            .fetch_watermarks(topic, p.id(), PIN_TIMEOUT)
            .map_err(|e| describe_offsets_error(topic, p.id(), e))?;
        out.advance(&format!("partition {}", p.id()), high.max(0) as u64);
    }
    Ok(out)
}

/// How long CREATE SOURCE waits for the broker to pin `latest` offsets.
const PIN_TIMEOUT: Duration = Duration::from_secs(3);

/// What one Kafka source reader is doing, for status views and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaReaderStatus {
    /// Reader id (unique in the process).
    pub id: u64,
    /// Source name.
    pub source: String,
    /// Topic.
    pub topic: String,
    /// `starting`, `connecting` (retrying with backoff) or `reading`.
    pub state: String,
    /// Partitions assigned.
    pub partitions: usize,
    /// Messages consumed (decoded or rejected).
    pub messages: u64,
    /// Messages in the assigned partitions not read yet (high watermark minus the next
    /// offset, summed), as of the last check (every second); `None` before the first.
    pub lag: Option<u64>,
    /// The last error met (connection, metadata, fetch), if any.
    pub last_error: Option<String>,
}

fn registry() -> &'static Mutex<BTreeMap<u64, KafkaReaderStatus>> {
    static REGISTRY: OnceLock<Mutex<BTreeMap<u64, KafkaReaderStatus>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The status of every running Kafka source reader (one per dataflow reading a source).
pub fn statuses() -> Vec<KafkaReaderStatus> {
    registry()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect()
}

/// A reader's entry in the status registry; removed when the reader ends.
struct StatusEntry {
    id: u64,
}

impl StatusEntry {
    fn register(source: &str, topic: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let status = KafkaReaderStatus {
            id,
            source: source.to_string(),
            topic: topic.to_string(),
            state: "starting".into(),
            partitions: 0,
            messages: 0,
            lag: None,
            last_error: None,
        };
        registry().lock().unwrap_or_else(|p| p.into_inner()).insert(id, status);
        StatusEntry { id }
    }

    fn update(&self, f: impl FnOnce(&mut KafkaReaderStatus)) {
        if let Some(s) = registry().lock().unwrap_or_else(|p| p.into_inner()).get_mut(&self.id) {
            f(s);
        }
    }

    fn error(&self, state: &str, e: impl ToString) {
        let e = e.to_string();
        tracing::warn!("kafka source: {e}");
        self.update(|s| {
            s.state = state.to_string();
            s.last_error = Some(e);
        });
    }
}

impl Drop for StatusEntry {
    fn drop(&mut self) {
        registry().lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

/// The value of a metadata column for a message.
fn meta_datum(m: MetaColumn, msg: &rdkafka::message::BorrowedMessage<'_>) -> rampart_repr::Datum {
    use rampart_repr::Datum;
    match m {
        MetaColumn::Key => msg
            .key()
            .map(|k| Datum::str(&String::from_utf8_lossy(k)))
            .unwrap_or(Datum::Null),
        MetaColumn::Partition => Datum::str(&msg.partition().to_string()),
        MetaColumn::Offset => Datum::str(&msg.offset().to_string()),
        MetaColumn::Timestamp => msg
            .timestamp()
            .to_millis()
            .map(|ms| Datum::Timestamp(ms * 1000))
            .unwrap_or(Datum::Null),
    }
}

/// Starts a reader thread for `topic`.
pub(crate) fn spawn(
    topic: String,
    startup: KafkaStartup,
    props: BTreeMap<String, String>,
    include: Vec<MetaColumn>,
    idle_after: Duration,
    ctx: SourceContext,
    out: BatchSender,
) -> Result<(), Error> {
    let mut cfg = assign_config(&props, &ctx.name);
    // Offsets are Rampart's own: never store them either.
    cfg.set("enable.auto.offset.store", "false");
    cfg.set("enable.partition.eof", "false");
    let consumer: BaseConsumer = cfg
        .create()
        .map_err(|e| kafka_error(format!("cannot create the Kafka consumer for topic '{topic}': {e}"), e))?;
    let status = StatusEntry::register(&ctx.name, &topic);
    std::thread::Builder::new()
        .name(format!("kafka-{}", ctx.name))
        .spawn(move || {
            let reader = Reader {
                consumer,
                topic,
                startup,
                ctx,
                out,
                status,
                include,
                idle_after,
                positions: BTreeMap::new(),
                initialized: false,
            };
            reader.run();
        })
        .map_err(|e| {
            Error::new(SqlState::SystemError, format!("could not start the reader thread: {e}")).with_source(e)
        })?;
    Ok(())
}

struct Reader {
    consumer: BaseConsumer,
    topic: String,
    startup: KafkaStartup,
    ctx: SourceContext,
    out: BatchSender,
    status: StatusEntry,
    /// Metadata columns appended after the decoded JSON columns.
    include: Vec<MetaColumn>,
    /// How long a partition without events stays at its end before it stops holding the
    /// watermark back.
    idle_after: Duration,
    /// Next offset to read per partition (Rampart's own offsets).
    positions: BTreeMap<i32, Offset>,
    /// Whether the first metadata answer has been seen (partitions in it use the startup
    /// mode; later ones start at the beginning).
    initialized: bool,
}

impl Reader {
    fn run(mut self) {
        // The JSON columns are the declared ones; metadata columns come last.
        let json_columns = self.ctx.desc.columns.len().saturating_sub(self.include.len());
        let mut late = crate::late::LateFilter::for_reader(&self.ctx);
        let mut rows = RowBuilder::new(
            &rampart_repr::RelationDesc {
                columns: self.ctx.desc.columns[..json_columns].to_vec(),
            },
            self.ctx.projection.clone(),
        );
        let mut backoff = MIN_BACKOFF;
        // Connect: wait until the topic has partitions, retrying with backoff.
        loop {
            match self.refresh_partitions() {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => self.status.error("connecting", e),
            }
            if !self.sleep_alive(backoff) {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        let mut last_refresh = Instant::now();
        let mut last_lag = Instant::now().checked_sub(LAG_REFRESH).unwrap_or_else(Instant::now);
        let mut last_alive_check = Instant::now();
        let location_prefix = format!("{}/", self.topic);
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut read_to = ReadTo::default();
        let mut idle_since: BTreeMap<i32, Instant> = BTreeMap::new();
        loop {
            // Before reading: every assigned partition that has not delivered an event
            // yet (new ones included) holds the watermark back.
            self.hold_watermark(&mut late, &mut idle_since, &location_prefix);
            let mut consumed = 0u64;
            let mut timeout = POLL;
            while batch.len() < BATCH_ROWS {
                let Some(result) = self.consumer.poll(timeout) else {
                    break;
                };
                timeout = Duration::ZERO;
                match result {
                    Ok(msg) => {
                        consumed += 1;
                        let (partition, offset) = (msg.partition(), msg.offset());
                        read_to.note(partition, offset + 1);
                        let Some(payload) = msg.payload() else { continue };
                        let location = || format!("{location_prefix}{partition}");
                        match std::str::from_utf8(payload) {
                            Ok(text) => {
                                let text = text.trim();
                                if text.is_empty() {
                                    continue;
                                }
                                match rows.decode(text) {
                                    Ok(()) => {
                                        for m in &self.include {
                                            rows.push_value(meta_datum(*m, &msg));
                                        }
                                        let stream = location();
                                        if late.admit(rows.values(), &stream, Some(offset), text) {
                                            batch.push(rows.finish());
                                            late.report(&stream, &mut self.out);
                                        }
                                    }
                                    Err(e) => self.ctx.errors.record(
                                        &self.ctx.name,
                                        &location(),
                                        Some(offset),
                                        text,
                                        e.into_message(),
                                    ),
                                }
                            }
                            Err(e) => self.ctx.errors.record(
                                &self.ctx.name,
                                &location(),
                                Some(offset),
                                &String::from_utf8_lossy(payload),
                                format!("message is not UTF-8: {e}"),
                            ),
                        }
                    }
                    Err(e) => {
                        self.status.error("reading", e);
                        break;
                    }
                }
            }
            if consumed > 0 {
                self.status.update(|s| s.messages += consumed);
            }
            for (partition, next) in read_to.take() {
                self.positions.insert(partition, Offset::Offset(next));
                self.out.advance(&format!("partition {partition}"), next as u64);
            }
            if (consumed > 0 || !batch.is_empty())
                && !self
                    .out
                    .send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS)))
            {
                return;
            }
            if consumed == 0 && last_alive_check.elapsed() >= POLL {
                last_alive_check = Instant::now();
                if !self.out.alive() {
                    return;
                }
            }
            if last_lag.elapsed() >= LAG_REFRESH {
                last_lag = Instant::now();
                if let Some(lag) = self.lag() {
                    self.status.update(|s| s.lag = Some(lag));
                }
            }
            if last_refresh.elapsed() >= METADATA_REFRESH {
                last_refresh = Instant::now();
                if let Err(e) = self.refresh_partitions() {
                    self.status.error("reading", e);
                }
            }
        }
    }

    /// Sleeps `d` in small steps; false when the dataflow no longer reads this source.
    fn sleep_alive(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            std::thread::sleep(POLL.min(end.saturating_duration_since(Instant::now())));
            if !self.out.alive() {
                return false;
            }
        }
        true
    }

    /// With a `WATERMARK`: a partition that has not delivered an event holds the watermark
    /// while it has unread messages, and until it has been read to its end for
    /// `idle_after` (`idle_since`: since when each has been at its end).
    fn hold_watermark(
        &mut self,
        late: &mut crate::late::LateFilter,
        idle_since: &mut BTreeMap<i32, Instant>,
        location_prefix: &str,
    ) {
        if !late.enforced() {
            return;
        }
        let waiting: Vec<(i32, String)> = self
            .positions
            .keys()
            .map(|p| (*p, format!("{location_prefix}{p}")))
            .filter(|(_, stream)| !late.delivered(stream))
            .collect();
        idle_since.retain(|p, _| waiting.iter().any(|(w, _)| w == p));
        if waiting.is_empty() {
            return;
        }
        let at_end = self.read_to_end();
        for (p, stream) in waiting {
            if !at_end.contains(&p) {
                idle_since.remove(&p);
                late.expect(&stream);
            } else if idle_since.entry(p).or_insert_with(Instant::now).elapsed() < self.idle_after {
                late.expect(&stream);
            } else if late.idle(&stream) {
                late.report_watermark(&mut self.out);
            }
        }
    }

    /// The assigned partitions read to their end (as far as librdkafka's cached high
    /// offsets tell: a partition not fetched from yet is not among them).
    fn read_to_end(&self) -> Vec<i32> {
        self.positions
            .iter()
            .filter(|(p, off)| {
                cached_watermarks(&self.consumer, &self.topic, **p).is_some_and(|(low, high)| match off {
                    Offset::Offset(n) => *n >= high,
                    // Not read from yet: at its end only if it is empty.
                    _ => low.is_some_and(|low| low >= high),
                })
            })
            .map(|(p, _)| *p)
            .collect()
    }

    /// Messages behind the high watermarks of the assigned partitions, from the offsets
    /// librdkafka caches with every fetch (no broker round trip, so the reader never waits
    /// for it); `None` until every assigned partition has been fetched from.
    fn lag(&self) -> Option<u64> {
        let mut total = 0u64;
        for (p, off) in &self.positions {
            let (low, high) = cached_watermarks(&self.consumer, &self.topic, *p)?;
            let next = match off {
                Offset::Offset(n) => *n,
                _ => low.unwrap_or(high),
            };
            total += high.saturating_sub(next).max(0) as u64;
        }
        Some(total)
    }

    /// Looks up the topic's partitions and assigns any new ones. Ok(true) once at least
    /// one partition is assigned.
    fn refresh_partitions(&mut self) -> Result<bool, Error> {
        let md = self
            .consumer
            .fetch_metadata(Some(&self.topic), REQUEST_TIMEOUT)
            .map_err(|e| kafka_error(format!("cannot fetch metadata of topic '{}': {e}", self.topic), e))?;
        let first = !self.initialized;
        let Some(t) = md.topics().iter().find(|t| t.name() == self.topic) else {
            self.initialized = true;
            return Err(topic_not_found(&self.topic));
        };
        if let Some(err) = t.error() {
            // The broker answered: partitions that appear from now on are new data.
            self.initialized = true;
            return Err(kafka_error(
                format!("topic '{}': {err:?}", self.topic),
                KafkaError::MetadataFetch(err.into()),
            ));
        }
        let new: Vec<i32> = t
            .partitions()
            .iter()
            .map(|p| p.id())
            .filter(|id| !self.positions.contains_key(id))
            .collect();
        if new.is_empty() {
            return Ok(!self.positions.is_empty());
        }
        let starts: Vec<(i32, Offset)> = if first {
            self.startup_offsets(&new)?
        } else {
            new.iter().map(|p| (*p, Offset::Beginning)).collect()
        };
        // A reader resuming at a checkpoint starts each partition it had read there.
        let starts = starts
            .into_iter()
            .map(|(p, off)| (p, self.resumed_offset(p).unwrap_or(off)))
            .collect::<Vec<_>>();
        self.initialized = true;
        self.positions.extend(starts);
        let mut tpl = TopicPartitionList::new();
        for (p, off) in &self.positions {
            tpl.add_partition_offset(&self.topic, *p, *off)
                .map_err(|e| kafka_error(format!("cannot assign partition {p}: {e}"), e))?;
        }
        self.consumer.assign(&tpl).map_err(|e| {
            kafka_error(
                format!("cannot assign the partitions of topic '{}': {e}", self.topic),
                e,
            )
        })?;
        let n = self.positions.len();
        self.status.update(|s| {
            s.state = "reading".into();
            s.partitions = n;
        });
        Ok(true)
    }

    /// The next offset of `partition` in the checkpoint this reader resumes at, if any.
    fn resumed_offset(&self, partition: i32) -> Option<Offset> {
        let at = self.ctx.resume_at.as_ref()?;
        at.0.get(&format!("partition {partition}"))
            .map(|o| Offset::Offset(*o as i64))
    }

    /// Where each of the partitions present at start-up begins, as concrete offsets where
    /// the broker answers (so positions are Rampart's own from the first message).
    fn startup_offsets(&self, partitions: &[i32]) -> Result<Vec<(i32, Offset)>, Error> {
        match &self.startup {
            KafkaStartup::Earliest => Ok(partitions.iter().map(|p| (*p, Offset::Beginning)).collect()),
            KafkaStartup::Latest => partitions
                .iter()
                .map(|p| {
                    let (_low, high) = self
                        .consumer
                        .fetch_watermarks(&self.topic, *p, REQUEST_TIMEOUT)
                        .map_err(|e| describe_offsets_error(&self.topic, *p, e))?;
                    Ok((*p, Offset::Offset(high)))
                })
                .collect(),
            KafkaStartup::Offsets(pinned) => Ok(partitions
                .iter()
                .map(|p| (*p, pinned.get(p).map_or(Offset::Beginning, |o| Offset::Offset(*o))))
                .collect()),
            KafkaStartup::Timestamp(ms) => {
                let mut tpl = TopicPartitionList::new();
                for p in partitions {
                    tpl.add_partition_offset(&self.topic, *p, Offset::Offset(*ms))
                        .map_err(|e| kafka_error(format!("partition {p}: {e}"), e))?;
                }
                let found = self.consumer.offsets_for_times(tpl, REQUEST_TIMEOUT).map_err(|e| {
                    kafka_error(
                        format!("cannot look up offsets by timestamp in topic '{}': {e}", self.topic),
                        e,
                    )
                })?;
                Ok(found
                    .elements()
                    .iter()
                    .map(|e| {
                        let off = match e.offset() {
                            Offset::Offset(o) if o >= 0 => Offset::Offset(o),
                            // No message at or after the timestamp: start at the end.
                            _ => Offset::End,
                        };
                        (e.partition(), off)
                    })
                    .collect())
            }
        }
    }
}

fn describe_offsets_error(topic: &str, partition: i32, e: KafkaError) -> Error {
    kafka_error(format!("cannot fetch the end offset of {topic}/{partition}: {e}"), e)
}

/// The broker does not know `topic` (`42704`).
fn topic_not_found(topic: &str) -> Error {
    Error::new(SqlState::UndefinedObject, format!("topic '{topic}' not found"))
}

/// The low and high offsets librdkafka last saw for `topic`/`partition` (the high one is
/// updated by every fetch response); `None` while the high offset is unknown.
fn cached_watermarks(consumer: &BaseConsumer, topic: &str, partition: i32) -> Option<(Option<i64>, i64)> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid for the consumer's lifetime, `topic` is a
    // NUL-terminated string that outlives the call, and `low`/`high` are valid for writes.
    // rd_kafka_get_watermark_offsets only reads cached state and never blocks.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    let valid = |o: i64| o >= 0;
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && valid(high))
        .then_some((valid(low).then_some(low), high))
}
