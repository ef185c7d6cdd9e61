//! librdkafka client configurations shared by the Kafka source, the sink and the sink's
//! readback.

use std::collections::BTreeMap;

use rdkafka::config::ClientConfig;

/// A client configuration holding `props`.
pub(crate) fn client_config(props: &BTreeMap<String, String>) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    for (k, v) in props {
        cfg.set(k, v);
    }
    cfg
}

/// Configuration of a consumer that `assign`s partitions itself and never commits: the
/// user's `props`, a group id `rampart-{name}-{pid}` unless one is given (librdkafka needs
/// one to `assign`; no group is joined, so any unique id does), and fetches that wait at
/// most 10 ms for new messages unless `fetch.wait.max.ms` says otherwise (librdkafka's
/// 500 ms default, which brokers that do not answer early add to every alert's latency).
pub(crate) fn assign_config(props: &BTreeMap<String, String>, name: &str) -> ClientConfig {
    let mut cfg = client_config(props);
    cfg.set("enable.auto.commit", "false");
    if !props.contains_key("fetch.wait.max.ms") {
        cfg.set("fetch.wait.max.ms", "10");
    }
    if !props.contains_key("group.id") {
        cfg.set("group.id", format!("rampart-{name}-{}", std::process::id()));
    }
    cfg
}
