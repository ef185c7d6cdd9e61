//! Sink connectors: the target of `CREATE SINK ... WITH (connector = '...')`, chosen by
//! `connector` and parsed by that connector's options table (`file`, `stdout`, `kafka`).
//! The writers are [`JsonSink`] (file, stdout) and [`crate::kafka::KafkaSink`]; both encode
//! changes with [`crate::envelope`].

use std::collections::BTreeMap;

use crate::file::FileSinkOptions;
use crate::kafka::KafkaSinkOptions;
use crate::options::{ConnectorOptions, OptionsError};
use crate::stdout::StdoutSinkOptions;

pub use crate::envelope::{row_to_json, SinkFormat};
pub use crate::file::JsonSink;

/// The sink connectors, as `connector = '...'` names them first.
const SINKS: [&str; 3] = [
    FileSinkOptions::CONNECTORS[0],
    StdoutSinkOptions::CONNECTORS[0],
    KafkaSinkOptions::CONNECTORS[0],
];

/// Where a sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkTarget {
    /// Append JSON lines to this file.
    File(String),
    /// Print JSON lines to standard output.
    Stdout,
    /// Discard every change (`connector = 'blackhole'`, as in RisingWave): for measuring a
    /// pipeline without a destination.
    Blackhole,
    /// A Kafka topic, written by [`crate::kafka::KafkaSink`].
    Kafka {
        /// Topic.
        topic: String,
        /// librdkafka configuration: every `properties.*` option without its prefix
        /// (`properties.bootstrap.server` becomes `bootstrap.servers`).
        properties: BTreeMap<String, String>,
        /// Columns of the message key (option `primary_key = 'a,b'`); required for UPSERT.
        primary_key: Vec<String>,
    },
}

impl SinkTarget {
    /// Validates a sink's `WITH` options: `connector` picks the options table, which parses
    /// the rest.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<Self, OptionsError> {
        let connector = crate::options::connector(options, &SINKS)?;
        if FileSinkOptions::selected_by(connector) {
            Ok(SinkTarget::File(FileSinkOptions::from_with(options)?.path))
        } else if StdoutSinkOptions::selected_by(connector) {
            StdoutSinkOptions::from_with(options)?;
            if connector.eq_ignore_ascii_case("blackhole") {
                Ok(SinkTarget::Blackhole)
            } else {
                Ok(SinkTarget::Stdout)
            }
        } else if KafkaSinkOptions::selected_by(connector) {
            let o = KafkaSinkOptions::from_with(options)?;
            Ok(SinkTarget::Kafka {
                topic: o.topic,
                properties: o.properties,
                primary_key: o.primary_key.unwrap_or_default(),
            })
        } else {
            Err(OptionsError::UnknownConnector {
                what: "sink",
                given: connector.to_lowercase(),
                supported: SINKS.to_vec(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(options: &[(&str, &str)]) -> Result<SinkTarget, OptionsError> {
        SinkTarget::from_options(&options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn connector_picks_the_options_table() {
        assert_eq!(
            target(&[
                ("connector", "file"),
                ("path", "/tmp/out.jsonl"),
                ("force_append_only", "true")
            ]),
            Ok(SinkTarget::File("/tmp/out.jsonl".into()))
        );
        assert_eq!(target(&[("connector", "stdout")]), Ok(SinkTarget::Stdout));
        assert_eq!(target(&[("connector", "Blackhole")]), Ok(SinkTarget::Blackhole));
        assert_eq!(
            target(&[
                ("connector", "kafka"),
                ("topic", "alerts"),
                ("properties.bootstrap.server", "h:9092"),
                ("primary_key", "a, b"),
            ]),
            Ok(SinkTarget::Kafka {
                topic: "alerts".into(),
                properties: [("bootstrap.servers".to_string(), "h:9092".to_string())].into(),
                primary_key: vec!["a".into(), "b".into()],
            })
        );
    }

    #[test]
    fn errors_name_the_connector_and_the_option() {
        let error = |options: &[(&str, &str)]| target(options).unwrap_err().to_string();
        assert_eq!(
            error(&[]),
            "missing option 'connector' (one of 'file', 'stdout', 'kafka')"
        );
        assert_eq!(
            error(&[("connector", "s3")]),
            "unknown sink connector 's3' (supported: 'file', 'stdout', 'kafka')"
        );
        assert_eq!(
            error(&[("connector", "file")]),
            "the file sink needs option 'path' (file)"
        );
        assert_eq!(
            error(&[("connector", "stdout"), ("path", "/x")]),
            "unknown option 'path' for the stdout sink (allowed: connector, force_append_only)"
        );
        assert_eq!(
            error(&[("connector", "stdout"), ("force_append_only", "yes")]),
            "option 'force_append_only' must be 'true' or 'false', not 'yes'"
        );
    }
}
