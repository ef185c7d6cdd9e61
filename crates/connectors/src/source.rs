//! Source connectors: validated configuration from `WITH (...)` options, and readers that
//! decode input into rows and hand batches to the dataflow workers.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, Sender};
use rampart_dataflow::{SourceBatch, SourceFeed};
use rampart_repr::{ErrorLog, Positions, RelationDesc, Row};

use crate::generator::GeneratorKind;
use crate::kafka_source::KafkaStartup;

/// Rows per batch handed to a worker.
pub const BATCH_ROWS: usize = 1024;

/// Consecutive batches a reader hands to one worker before the next.
pub const BATCH_RUN: usize = 8;

/// Batches buffered per worker before a reader waits (backpressure).
pub const CHANNEL_BATCHES: usize = 64;

/// Where a source starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupMode {
    /// From the beginning of existing data.
    Earliest,
    /// Only data that arrives after the reader starts.
    Latest,
}

/// A validated source configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceConnector {
    /// JSON lines from a file or a glob of files, followed as they grow.
    File {
        /// Path or glob pattern.
        path: String,
        /// Where to start.
        startup: StartupMode,
        /// `latest` fixed at the source's creation: the byte offset each matching file had
        /// then (files that appear later are read whole). Readers started later, and after
        /// a restart, start there, so they all see the same lines.
        start_at: Option<Positions>,
    },
    /// The built-in security event generator.
    Generator {
        /// Event kind.
        kind: GeneratorKind,
        /// Events per second.
        rate: f64,
        /// Seed: same seed, same events.
        seed: u64,
        /// When event 0 happens (epoch ms): event `i` is stamped `start_ms + i / rate`, so
        /// every reader of the source, before or after a restart, sees the same events.
        start_ms: i64,
    },
    /// Every partition of a Kafka topic, one JSON object per message.
    Kafka {
        /// Topic.
        topic: String,
        /// Bootstrap servers.
        bootstrap: String,
        /// Where to start in the partitions that exist when the reader starts.
        startup: KafkaStartup,
        /// librdkafka configuration: every `properties.*` option without its prefix
        /// (`bootstrap.servers` included), so security and SASL/SSL settings pass through.
        properties: BTreeMap<String, String>,
        /// Message metadata appended as the source's last columns (`INCLUDE ...`).
        include: Vec<MetaColumn>,
        /// With a `WATERMARK`: how long a partition that has delivered no event must stay
        /// read to its end before it stops holding the watermark back
        /// (`scan.watermark.idle-timeout`, default 2 s).
        idle_timeout: std::time::Duration,
    },
}

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
    pub fn parse(word: &str) -> Result<Self, String> {
        match word.to_lowercase().as_str() {
            "key" => Ok(MetaColumn::Key),
            "partition" => Ok(MetaColumn::Partition),
            "offset" => Ok(MetaColumn::Offset),
            "timestamp" => Ok(MetaColumn::Timestamp),
            other => Err(format!(
                "INCLUDE {other} is not supported (key, partition, offset, timestamp)"
            )),
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

fn known(options: &BTreeMap<String, String>, allowed: &[&str]) -> Result<(), String> {
    for k in options.keys() {
        if !allowed.contains(&k.as_str()) && !k.starts_with("properties.") {
            return Err(format!("unknown option '{k}' (allowed: {})", allowed.join(", ")));
        }
    }
    Ok(())
}

fn startup(options: &BTreeMap<String, String>) -> Result<StartupMode, String> {
    match options.get("scan.startup.mode").map(|s| s.to_lowercase()).as_deref() {
        None | Some("earliest") | Some("earliest-offset") => Ok(StartupMode::Earliest),
        Some("latest") | Some("latest-offset") => Ok(StartupMode::Latest),
        Some(other) => Err(format!(
            "scan.startup.mode must be 'earliest' or 'latest', not '{other}'"
        )),
    }
}

impl SourceConnector {
    /// Validates a source's `WITH` options.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<Self, String> {
        let connector = options
            .get("connector")
            .ok_or("missing option 'connector' (one of 'file', 'generator', 'kafka')")?
            .to_lowercase();
        match connector.as_str() {
            "file" => {
                known(
                    options,
                    &["connector", "path", "scan.startup.mode", "format", "match_pattern"],
                )?;
                let path = options
                    .get("path")
                    .ok_or("the file connector needs option 'path' (a file or a glob)")?;
                if path.trim().is_empty() {
                    return Err("option 'path' is empty".into());
                }
                Ok(SourceConnector::File {
                    path: path.clone(),
                    startup: startup(options)?,
                    start_at: None,
                })
            }
            "generator" | "datagen" => {
                known(options, &["connector", "kind", "rate", "seed"])?;
                let kind: GeneratorKind = options
                    .get("kind")
                    .ok_or("the generator connector needs option 'kind' ('auth', 'firewall', 'endpoint' or 'web')")?
                    .parse()
                    .map_err(|e: crate::generator::ParseGeneratorKindError| e.to_string())?;
                let rate: f64 = match options.get("rate") {
                    None => 100.0,
                    Some(r) => r
                        .parse()
                        .map_err(|_| format!("option 'rate' must be a number of events per second, not '{r}'"))?,
                };
                if !(rate > 0.0 && rate <= 10_000_000.0) {
                    return Err(format!(
                        "option 'rate' must be between 0 and 10000000 events per second, not {rate}"
                    ));
                }
                let seed: u64 = match options.get("seed") {
                    None => 42,
                    Some(s) => s
                        .parse()
                        .map_err(|_| format!("option 'seed' must be a non-negative integer, not '{s}'"))?,
                };
                Ok(SourceConnector::Generator {
                    kind,
                    rate,
                    seed,
                    start_ms: chrono::Utc::now().timestamp_millis(),
                })
            }
            "kafka" => {
                known(
                    options,
                    &[
                        "connector",
                        "topic",
                        "scan.startup.mode",
                        "scan.startup.timestamp.millis",
                        "scan.watermark.idle-timeout",
                        "format",
                        "value.format",
                        "properties.bootstrap.server",
                        "properties.bootstrap.servers",
                    ],
                )?;
                let topic = options.get("topic").ok_or("the kafka connector needs option 'topic'")?;
                let bootstrap = options
                    .get("properties.bootstrap.server")
                    .or_else(|| options.get("properties.bootstrap.servers"))
                    .ok_or("the kafka connector needs option 'properties.bootstrap.server'")?;
                if topic.trim().is_empty() {
                    return Err("option 'topic' is empty".into());
                }
                let startup = match options.get("scan.startup.timestamp.millis") {
                    Some(ms) => KafkaStartup::Timestamp(ms.trim().parse().map_err(|_| {
                        format!("option 'scan.startup.timestamp.millis' must be epoch milliseconds, not '{ms}'")
                    })?),
                    None => match startup(options)? {
                        StartupMode::Earliest => KafkaStartup::Earliest,
                        StartupMode::Latest => KafkaStartup::Latest,
                    },
                };
                let properties = crate::kafka_source::librdkafka_properties(options);
                crate::kafka_source::validate_properties(&properties)?;
                let idle_timeout = match options.get("scan.watermark.idle-timeout") {
                    Some(v) => parse_duration(v).map_err(|e| format!("option 'scan.watermark.idle-timeout': {e}"))?,
                    None => crate::kafka_source::IDLE_AFTER,
                };
                Ok(SourceConnector::Kafka {
                    topic: topic.clone(),
                    bootstrap: bootstrap.clone(),
                    startup,
                    properties,
                    include: vec![],
                    idle_timeout,
                })
            }
            other => Err(format!(
                "unknown connector '{other}' (supported: 'file', 'generator', 'kafka')"
            )),
        }
    }

    /// Fixes when the source started, for sources whose data depends on it (the generator
    /// replays from its start): the catalog keeps the creation time across restarts.
    pub fn pin_start(&mut self, created_ms: i64) {
        if let SourceConnector::Generator { start_ms, .. } = self {
            *start_ms = created_ms;
        }
    }

    /// Fixes where readers start, for sources whose start depends on when they are
    /// created (`latest`: the current size of each matching file, the current end offset
    /// of each Kafka partition), or restores that fixed start after a restart. Returns the
    /// positions to keep in the catalog; an error says why a Kafka `latest` source could
    /// not be fixed (its readers then start at the latest offsets when they start).
    pub fn pin_positions(&mut self, stored: Option<Positions>) -> Result<Option<Positions>, String> {
        match self {
            SourceConnector::File {
                path,
                startup: StartupMode::Latest,
                start_at,
            } => {
                let pinned = stored.unwrap_or_else(|| crate::file_source::current_sizes(path));
                *start_at = Some(pinned.clone());
                Ok(Some(pinned))
            }
            SourceConnector::Kafka {
                topic,
                startup: startup @ KafkaStartup::Latest,
                properties,
                ..
            } => {
                let pinned = match stored {
                    Some(p) => p,
                    None => crate::kafka_source::end_offsets(topic, properties)?,
                };
                let offsets = pinned
                    .0
                    .iter()
                    .filter_map(|(k, v)| Some((k.strip_prefix("partition ")?.parse().ok()?, *v as i64)))
                    .collect();
                *startup = KafkaStartup::Offsets(offsets);
                Ok(Some(pinned))
            }
            _ => Ok(None),
        }
    }

    /// When the source started, for sources whose data depends on it.
    pub fn start_ms(&self) -> Option<i64> {
        match self {
            SourceConnector::Generator { start_ms, .. } => Some(*start_ms),
            _ => None,
        }
    }

    /// Whether Rampart can read this connector (every validated connector can today).
    pub fn check_supported(&self) -> Result<(), String> {
        Ok(())
    }

    /// Starts a reader feeding `workers` workers and returns the feed to hand to the
    /// dataflow. The reader stops when the dataflow drops the feed.
    pub fn start(&self, ctx: SourceContext, workers: usize) -> Result<SourceFeed, String> {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers.max(1)).map(|_| bounded(CHANNEL_BATCHES)).unzip();
        let resume_at = ctx.resume_at.clone();
        let resumed_watermark = resume_at
            .as_ref()
            .and_then(|at| crate::late::resumed_watermark(ctx.watermark, at));
        let out = BatchSender {
            wake: ctx.wake.clone(),
            senders,
            next: 0,
            rows: ctx.rows_read.clone(),
            positions: resume_at.clone().unwrap_or_default(),
            positions_changed: false,
            seq: 0,
            watermark: resumed_watermark,
            event_times: HashMap::new(),
            event_times_changed: false,
        };
        match self.clone() {
            SourceConnector::File {
                path,
                startup,
                start_at,
            } => {
                let start_at = match (start_at, &resume_at) {
                    (Some(mut pinned), Some(resume)) => {
                        pinned.merge(resume);
                        Some(pinned)
                    }
                    (pinned, resume) => resume.clone().or(pinned),
                };
                crate::file_source::spawn(path, startup, start_at, ctx, out)?
            }
            SourceConnector::Generator {
                kind,
                rate,
                seed,
                start_ms,
            } => {
                let skip = resume_at.as_ref().and_then(|p| p.0.get("events").copied()).unwrap_or(0);
                crate::generator_source::spawn(kind, rate, seed, start_ms, skip, ctx, out)?
            }
            SourceConnector::Kafka {
                topic,
                startup,
                properties,
                include,
                idle_timeout,
                ..
            } => crate::kafka_source::spawn(topic, startup, properties, include, idle_timeout, ctx, out)?,
        }
        let mut feed = SourceFeed::new(receivers);
        if let Some(at) = resume_at {
            feed.resumed_watermark = resumed_watermark;
            feed.progress = rampart_dataflow::FeedProgress::starting_at(at);
        }
        Ok(feed)
    }
}

/// What a reader needs besides its configuration.
#[derive(Clone)]
pub struct SourceContext {
    /// Source name, for error records.
    pub name: String,
    /// Declared columns.
    pub desc: RelationDesc,
    /// Where rejected input goes.
    pub errors: ErrorLog,
    /// Rows decoded and delivered so far.
    pub rows_read: Arc<AtomicU64>,
    /// The source's `WATERMARK`, if it declares one.
    pub watermark: Option<crate::late::Watermark>,
    /// Where late rows go (`rampart_late_events`).
    pub late: ErrorLog,
    /// The dataflow worker threads, in worker order: a reader wakes the worker it hands a
    /// batch to, so an idle worker does not have to poll.
    pub wake: Vec<std::thread::Thread>,
    /// The projection the view applies right above every read of this source, when the
    /// reader is to build its rows (the feed is then marked `projected`).
    pub projection: Option<Arc<rampart_dataflow::SourceProjection>>,
    /// Positions to resume at (a view's checkpoint) instead of the source's start: every
    /// stream listed continues after its position; streams not listed start as usual.
    pub resume_at: Option<Positions>,
}

/// Spreads batches over the workers in runs of [`BATCH_RUN`]; `send` fails once the
/// dataflow is gone.
/// Each batch carries the reader's positions ([`BatchSender::advance`]) as of its last row.
pub struct BatchSender {
    senders: Vec<Sender<SourceBatch>>,
    wake: Vec<std::thread::Thread>,
    next: usize,
    rows: Arc<AtomicU64>,
    positions: Positions,
    positions_changed: bool,
    seq: u64,
    watermark: Option<i64>,
    /// The largest event time admitted per stream (sources with a `WATERMARK`), merged
    /// into the positions of the next batch.
    event_times: HashMap<String, i64>,
    event_times_changed: bool,
}

impl BatchSender {
    /// Records that the reader has consumed `stream` up to `pos` (the next batch sent
    /// carries it, even when it has no rows, so rejected input counts as read too).
    pub fn advance(&mut self, stream: &str, pos: u64) {
        if self.positions.0.get(stream) != Some(&pos) {
            self.positions.advance(stream, pos);
            self.positions_changed = true;
        }
    }

    /// Records the source's watermark after the rows read so far (the next batch carries
    /// it).
    pub fn set_watermark(&mut self, watermark: Option<i64>) {
        if watermark > self.watermark {
            self.watermark = watermark;
            self.event_times_changed = true;
        }
    }

    /// Records the largest event time admitted from `stream` (the next batch's positions
    /// carry it: see `Positions::advance_event_time`).
    pub fn set_event_time(&mut self, stream: &str, us: i64) {
        match self.event_times.get_mut(stream) {
            Some(t) if *t >= us => return,
            Some(t) => *t = us,
            None => {
                self.event_times.insert(stream.to_string(), us);
            }
        }
        self.event_times_changed = true;
    }

    /// Sends a batch to the next worker, waiting while its buffer is full. Returns false
    /// when the dataflow no longer reads this source.
    pub fn send(&mut self, batch: Vec<Row>) -> bool {
        if batch.is_empty() && !self.positions_changed && !self.event_times_changed {
            return true;
        }
        self.positions_changed = false;
        if std::mem::take(&mut self.event_times_changed) {
            for (stream, us) in &self.event_times {
                self.positions.advance_event_time(stream, *us);
            }
            if let Some(w) = self.watermark {
                self.positions.advance_watermark(w);
            }
        }
        let n = batch.len() as u64;
        // Runs of batches to each worker in turn: a checkpointed feed's batches enter in
        // order, so a worker waits for the other's run before its own (longer runs, fewer
        // waits; the workers still share the rows evenly).
        let i = (self.next / BATCH_RUN) % self.senders.len();
        self.next = self.next.wrapping_add(1);
        let ok = self.senders[i]
            .send(SourceBatch {
                rows: batch,
                positions: self.positions.clone(),
                seq: Some(self.seq),
                watermark: self.watermark,
            })
            .is_ok();
        self.seq += 1;
        if let Some(t) = self.wake.get(i) {
            t.unpark();
        }
        if ok {
            self.rows.fetch_add(n, Ordering::Relaxed);
        }
        ok
    }

    /// Whether any worker still reads this source.
    pub fn alive(&self) -> bool {
        self.senders.iter().any(|s| {
            // A bounded channel reports disconnection through `send_timeout` only when it
            // would block; probe with an empty batch that workers ignore.
            !matches!(
                s.try_send(SourceBatch::default()),
                Err(crossbeam_channel::TrySendError::Disconnected(_))
            )
        })
    }
}

/// A duration option: a number and a unit (`500 ms`, `2 s`, `1 min`; a bare number is
/// milliseconds).
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration such as '2 s', '500 ms' or '1 min'"))?;
    let ms = match unit.trim().to_lowercase().as_str() {
        "" | "ms" | "millisecond" | "milliseconds" => n,
        "s" | "sec" | "second" | "seconds" => n.saturating_mul(1000),
        "min" | "minute" | "minutes" => n.saturating_mul(60_000),
        other => return Err(format!("unknown unit '{other}' in '{text}' (ms, s or min)")),
    };
    Ok(std::time::Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_and_bad_ones_say_what_is_expected() {
        let ms = |t: &str| parse_duration(t).map(|d| d.as_millis());
        assert_eq!(ms("500 ms"), Ok(500));
        assert_eq!(ms("2 s"), Ok(2000));
        assert_eq!(ms("10min"), Ok(600_000));
        assert_eq!(ms("250"), Ok(250));
        assert!(ms("soon").unwrap_err().contains("'2 s'"));
        assert!(ms("3 h").unwrap_err().contains("unknown unit 'h'"));
    }
}
