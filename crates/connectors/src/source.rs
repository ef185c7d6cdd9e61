//! Source connectors: the configuration of `CREATE SOURCE ... WITH (connector = '...')`,
//! chosen by `connector` and parsed by that connector's options table (the `file`,
//! `generator` and `kafka` modules), and reader start-up, at the source's start or at a
//! checkpoint's positions.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use rampart_dataflow::SourceFeed;
use rampart_repr::{Error, ErrorLog, Positions, RelationDesc};

use crate::batch::BatchSender;
use crate::file::FileSourceOptions;
use crate::generator::{GeneratorKind, GeneratorOptions};
use crate::kafka::{KafkaSourceOptions, KafkaStartup};
use crate::options::{ConnectorOptions, OptionsError};

pub use crate::kafka::MetaColumn;
pub use crate::options::StartupMode;

/// The source connectors, as `connector = '...'` names them first.
const SOURCES: [&str; 3] = [
    FileSourceOptions::CONNECTORS[0],
    GeneratorOptions::CONNECTORS[0],
    KafkaSourceOptions::CONNECTORS[0],
];

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
        /// (`scan.watermark.idle-timeout`).
        idle_timeout: std::time::Duration,
    },
}

impl SourceConnector {
    /// Validates a source's `WITH` options: `connector` picks the options table, which
    /// parses the rest.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<Self, OptionsError> {
        let connector = crate::options::connector(options, &SOURCES)?;
        if FileSourceOptions::selected_by(connector) {
            let o = FileSourceOptions::from_with(options)?;
            Ok(SourceConnector::File {
                path: o.path,
                startup: o.startup,
                start_at: None,
            })
        } else if GeneratorOptions::selected_by(connector) {
            let o = GeneratorOptions::from_with(options)?;
            Ok(SourceConnector::Generator {
                kind: o.kind,
                rate: o.rate,
                seed: o.seed,
                start_ms: chrono::Utc::now().timestamp_millis(),
            })
        } else if KafkaSourceOptions::selected_by(connector) {
            let o = KafkaSourceOptions::from_with(options)?;
            let startup = match o.startup_timestamp_millis {
                Some(ms) => KafkaStartup::Timestamp(ms),
                None => match o.startup {
                    StartupMode::Earliest => KafkaStartup::Earliest,
                    StartupMode::Latest => KafkaStartup::Latest,
                },
            };
            Ok(SourceConnector::Kafka {
                topic: o.topic,
                bootstrap: o.bootstrap,
                startup,
                properties: o.properties,
                include: vec![],
                idle_timeout: o.idle_timeout,
            })
        } else {
            Err(OptionsError::UnknownConnector {
                what: "source",
                given: connector.to_lowercase(),
                supported: SOURCES.to_vec(),
            })
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
    pub fn pin_positions(&mut self, stored: Option<Positions>) -> Result<Option<Positions>, Error> {
        match self {
            SourceConnector::File {
                path,
                startup: StartupMode::Latest,
                start_at,
            } => {
                let pinned = stored.unwrap_or_else(|| crate::file::source::current_sizes(path));
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
                    None => crate::kafka::source::end_offsets(topic, properties)?,
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

    /// Whether Rampart can read this connector (every validated connector can today); an
    /// error would be `0A000`.
    pub fn check_supported(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Starts a reader feeding `workers` workers and returns the feed to hand to the
    /// dataflow. The reader stops when the dataflow drops the feed.
    pub fn start(&self, ctx: SourceContext, workers: usize) -> Result<SourceFeed, Error> {
        let resume_at = ctx.resume_at.clone();
        let resumed_watermark = resume_at
            .as_ref()
            .and_then(|at| crate::late::resumed_watermark(ctx.watermark, at));
        let (out, receivers) = BatchSender::new(
            workers,
            ctx.wake.clone(),
            ctx.rows_read.clone(),
            resume_at.clone(),
            resumed_watermark,
        );
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
                crate::file::source::spawn(path, startup, start_at, ctx, out)?
            }
            SourceConnector::Generator {
                kind,
                rate,
                seed,
                start_ms,
            } => {
                let skip = resume_at.as_ref().and_then(|p| p.0.get("events").copied()).unwrap_or(0);
                crate::generator::source::spawn(kind, rate, seed, start_ms, skip, ctx, out)?
            }
            SourceConnector::Kafka {
                topic,
                startup,
                properties,
                include,
                idle_timeout,
                ..
            } => crate::kafka::source::spawn(topic, startup, properties, include, idle_timeout, ctx, out)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with(options: &[(&str, &str)]) -> BTreeMap<String, String> {
        options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn error(options: &[(&str, &str)]) -> String {
        SourceConnector::from_options(&with(options)).unwrap_err().to_string()
    }

    #[test]
    fn a_refused_option_is_an_invalid_parameter_naming_the_option() {
        let e = rampart_repr::Error::from(
            SourceConnector::from_options(&with(&[("connector", "file"), ("path", "/x"), ("pth", "/y")])).unwrap_err(),
        );
        assert_eq!(e.sqlstate(), "22023");
        assert!(
            e.message().starts_with("unknown option 'pth' for the file source"),
            "{e}"
        );
    }

    #[test]
    fn connector_picks_the_options_table() {
        let file = SourceConnector::from_options(&with(&[
            ("connector", "FILE"),
            ("path", "/tmp/*.jsonl"),
            ("scan.startup.mode", "latest"),
        ]))
        .unwrap();
        assert_eq!(
            file,
            SourceConnector::File {
                path: "/tmp/*.jsonl".into(),
                startup: StartupMode::Latest,
                start_at: None
            }
        );
        let SourceConnector::Generator { kind, rate, seed, .. } =
            SourceConnector::from_options(&with(&[("connector", "datagen"), ("kind", "Web")])).unwrap()
        else {
            panic!("'datagen' is the generator");
        };
        assert_eq!((kind, rate, seed), (GeneratorKind::Web, 100.0, 42));
        let SourceConnector::Kafka { startup, bootstrap, .. } = SourceConnector::from_options(&with(&[
            ("connector", "kafka"),
            ("topic", "t"),
            ("properties.bootstrap.servers", "h:9092"),
            ("scan.startup.mode", "latest"),
            ("scan.startup.timestamp.millis", "1700000000000"),
        ]))
        .unwrap() else {
            panic!("a kafka source");
        };
        assert_eq!(startup, KafkaStartup::Timestamp(1_700_000_000_000));
        assert_eq!(bootstrap, "h:9092");
    }

    #[test]
    fn errors_name_the_connector_and_the_option() {
        assert_eq!(
            error(&[("path", "/x")]),
            "missing option 'connector' (one of 'file', 'generator', 'kafka')"
        );
        assert_eq!(
            error(&[("connector", "S3")]),
            "unknown source connector 's3' (supported: 'file', 'generator', 'kafka')"
        );
        assert_eq!(
            error(&[("connector", "file"), ("path", "/x"), ("properties.a", "1")]),
            "unknown option 'properties.a' for the file source \
             (allowed: connector, path, scan.startup.mode, format, match_pattern)"
        );
        assert_eq!(
            error(&[("connector", "generator")]),
            "the generator source needs option 'kind' ('auth', 'firewall', 'endpoint' or 'web')"
        );
        assert_eq!(
            error(&[("connector", "generator"), ("kind", "dns")]),
            "option 'kind' must be 'auth', 'firewall', 'endpoint' or 'web', not 'dns'"
        );
        assert_eq!(
            error(&[("connector", "generator"), ("kind", "auth"), ("rate", "0")]),
            "option 'rate' must be more than 0 and at most 10000000 events per second, not '0'"
        );
        assert_eq!(
            error(&[("connector", "generator"), ("kind", "auth"), ("rate", "fast")]),
            "option 'rate' must be a number, not 'fast'"
        );
        assert_eq!(
            error(&[("connector", "generator"), ("kind", "auth"), ("seed", "-1")]),
            "option 'seed' must be a non-negative integer, not '-1'"
        );
        assert_eq!(error(&[("connector", "file"), ("path", " ")]), "option 'path' is empty");
    }
}
