//! The options of the Kafka source and the Kafka sink (`docs/connectors/kafka.md` shows
//! these tables). Every `properties.*` option goes to librdkafka without its prefix, so
//! security settings (SASL, SSL) need no options of their own; librdkafka checks their
//! names and values when the statement runs, without connecting.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::kafka::client::client_config;
use crate::options::{OptionsError, StartupMode, Validate};

connector_options! {
    /// `CREATE SOURCE ... WITH (connector = 'kafka', ...)`.
    pub struct KafkaSourceOptions("kafka source", connector "kafka") {
        /// The topic. Every partition is read, and partitions added later are found (the
        /// topic's metadata is checked every 5 s) and read from their beginning.
        #[option("topic")]
        pub topic: String = required,
        /// The brokers to contact first, `host:port` separated by commas.
        #[option("properties.bootstrap.server" | "properties.bootstrap.servers", type "host:port list")]
        pub bootstrap: String = required,
        /// Where the partitions that exist when the reader starts begin: `earliest`, the
        /// first retained message, or `latest`, the end of each partition when the source is
        /// created. `earliest-offset` and `latest-offset` are accepted too.
        #[option("scan.startup.mode")]
        pub startup: StartupMode = default("earliest"),
        /// Start each partition at its first message with a timestamp at or after this
        /// time, in epoch milliseconds (at the end where there is none); overrides
        /// `scan.startup.mode`.
        #[option("scan.startup.timestamp.millis", type "epoch milliseconds")]
        pub startup_timestamp_millis: Option<i64> = optional,
        /// With a `WATERMARK`: how long a partition that has delivered no event must stay
        /// read to its end before it stops holding the watermark back (data produced to it
        /// meanwhile makes it hold again). Without it, a reader that sees one partition's
        /// messages before another's would move the watermark by the first alone. Quote
        /// the key: `'scan.watermark.idle-timeout' = '500 ms'`.
        #[option("scan.watermark.idle-timeout")]
        pub idle_timeout: Duration = default("2 s"),
        /// Accepted for compatibility and not checked: messages are always JSON objects.
        #[option("format" | "value.format")]
        pub format: Option<String> = optional,
        /// Passed to librdkafka without the `properties.` prefix
        /// (`properties.security.protocol`, `properties.sasl.mechanism`,
        /// `properties.ssl.ca.location`, ...); a name or value librdkafka does not accept
        /// fails the statement.
        #[option("properties.*", type "librdkafka property")]
        pub properties: BTreeMap<String, String> = passthrough,
    }
}

impl Validate for KafkaSourceOptions {
    fn validate(&mut self) -> Result<(), OptionsError> {
        librdkafka_config(&mut self.properties)
    }
}

connector_options! {
    /// `CREATE SINK ... WITH (connector = 'kafka', ...)`.
    pub struct KafkaSinkOptions("kafka sink", connector "kafka") {
        /// The topic the sink writes to (created by the broker on the first message if
        /// it allows that).
        #[option("topic")]
        pub topic: String = required,
        /// The brokers to contact first, `host:port` separated by commas; `CREATE SINK`
        /// fails if none answers within 10 s.
        #[option("properties.bootstrap.server" | "properties.bootstrap.servers", type "host:port list")]
        pub bootstrap: String = required,
        /// The columns of the message key, whose value is the JSON object of those
        /// columns. `FORMAT UPSERT` needs it; without it `PLAIN` and `DEBEZIUM` messages
        /// have no key.
        #[option("primary_key", type "comma-separated column names")]
        pub primary_key: Option<Vec<String>> = optional,
        /// With `FORMAT PLAIN`: `true` acknowledges that deletions are not emitted, and the
        /// NOTICE saying so is not sent.
        #[option("force_append_only")]
        pub force_append_only: bool = default("false"),
        /// Passed to librdkafka's producer without the `properties.` prefix, as for the
        /// source; `properties.enable.idempotence` is `true` unless given.
        #[option("properties.*", type "librdkafka property")]
        pub properties: BTreeMap<String, String> = passthrough,
    }
}

impl Validate for KafkaSinkOptions {
    fn validate(&mut self) -> Result<(), OptionsError> {
        librdkafka_config(&mut self.properties)
    }
}

/// Turns the `properties.*` options (prefix removed) into librdkafka's configuration:
/// `bootstrap.server` is librdkafka's `bootstrap.servers` (which wins if both are given),
/// and librdkafka must accept every name and value.
fn librdkafka_config(props: &mut BTreeMap<String, String>) -> Result<(), OptionsError> {
    if let Some(servers) = props.remove("bootstrap.server") {
        props.entry("bootstrap.servers".to_string()).or_insert(servers);
    }
    client_config(props)
        .create_native_config()
        .map(|_| ())
        .map_err(|e| OptionsError::Property(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::ConnectorOptions;

    fn with(options: &[(&str, &str)]) -> BTreeMap<String, String> {
        options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn properties_drop_the_prefix_and_map_bootstrap_server() {
        let o = KafkaSourceOptions::from_with(&with(&[
            ("connector", "kafka"),
            ("topic", "t"),
            ("properties.bootstrap.server", "h:9092"),
            ("properties.security.protocol", "SASL_SSL"),
            ("properties.sasl.mechanism", "PLAIN"),
        ]))
        .unwrap();
        let props = &o.properties;
        assert_eq!(o.bootstrap, "h:9092");
        assert_eq!(props.get("bootstrap.servers").map(String::as_str), Some("h:9092"));
        assert_eq!(props.get("security.protocol").map(String::as_str), Some("SASL_SSL"));
        assert_eq!(props.get("sasl.mechanism").map(String::as_str), Some("PLAIN"));
        assert_eq!(props.len(), 3, "{props:?}");
    }

    #[test]
    fn bootstrap_servers_is_accepted_and_wins_over_bootstrap_server() {
        let o = KafkaSinkOptions::from_with(&with(&[
            ("connector", "kafka"),
            ("topic", "t"),
            ("properties.bootstrap.server", "a:1"),
            ("properties.bootstrap.servers", "b:2"),
        ]))
        .unwrap();
        // The option names the first spelling given; librdkafka gets its own name's value.
        assert_eq!(o.bootstrap, "a:1");
        assert_eq!(o.properties.get("bootstrap.servers").map(String::as_str), Some("b:2"));
        assert!(!o.properties.contains_key("bootstrap.server"));
    }

    #[test]
    fn unknown_librdkafka_property_is_a_clear_error() {
        let e = KafkaSourceOptions::from_with(&with(&[
            ("connector", "kafka"),
            ("topic", "t"),
            ("properties.bootstrap.server", "h:9092"),
            ("properties.no.such.property", "1"),
        ]))
        .unwrap_err();
        assert!(matches!(e, OptionsError::Property(_)), "{e:?}");
        let e = e.to_string();
        assert!(
            e.contains("invalid Kafka property") && e.contains("no.such.property"),
            "{e}"
        );
    }

    #[test]
    fn source_startup_and_idle_timeout() {
        let base = [
            ("connector", "kafka"),
            ("topic", "t"),
            ("properties.bootstrap.servers", "h:9092"),
        ];
        let parse = |extra: &[(&str, &str)]| {
            let mut options = with(&base);
            options.extend(with(extra));
            KafkaSourceOptions::from_with(&options)
        };
        let o = parse(&[]).unwrap();
        assert_eq!(
            (o.startup, o.startup_timestamp_millis, o.idle_timeout),
            (StartupMode::Earliest, None, Duration::from_secs(2))
        );
        let o = parse(&[
            ("scan.startup.mode", "latest-offset"),
            ("scan.startup.timestamp.millis", " 1700000000000"),
            ("scan.watermark.idle-timeout", "500 ms"),
            ("value.format", "json"),
        ])
        .unwrap();
        assert_eq!(o.startup, StartupMode::Latest);
        assert_eq!(o.startup_timestamp_millis, Some(1_700_000_000_000));
        assert_eq!(o.idle_timeout, Duration::from_millis(500));
        assert_eq!(o.format.as_deref(), Some("json"));
        let e = parse(&[("scan.watermark.idle-timeout", "3 h")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'scan.watermark.idle-timeout'") && e.contains("unknown unit 'h'"),
            "{e}"
        );
        let e = parse(&[("scan.startup.mode", "middle")]).unwrap_err().to_string();
        assert_eq!(
            e,
            "option 'scan.startup.mode' must be 'earliest' or 'latest', not 'middle'"
        );
        let e = parse(&[("topic", " ")]).unwrap_err().to_string();
        assert_eq!(e, "option 'topic' is empty");
    }

    #[test]
    fn sink_primary_key_is_a_column_list() {
        let o = KafkaSinkOptions::from_with(&with(&[
            ("connector", "kafka"),
            ("topic", "t"),
            ("properties.bootstrap.server", "h:9092"),
            ("primary_key", " user, ,host "),
        ]))
        .unwrap();
        assert_eq!(o.primary_key, Some(vec!["user".to_string(), "host".to_string()]));
        let e = KafkaSinkOptions::from_with(&with(&[("connector", "kafka"), ("topic", "t")]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "the kafka sink needs option 'properties.bootstrap.server' (host:port list)"
        );
    }
}
