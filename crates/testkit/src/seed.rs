//! What the seed-pipeline modules ([`crate::seed1`], [`crate::seed2`]) share: event times,
//! JSON timestamps, the connectors a pipeline runs with, and the check that a module's SQL
//! blocks are its seed document's, character for character.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};

use crate::client::floor_to;

/// Event times: `base` is the 5-minute boundary 10 minutes before the current window, so
/// windows W0 = [base, base+5m) and W1 = [base+5m, base+10m) lie entirely in the past hour.
pub fn base_time() -> DateTime<Utc> {
    floor_to(Utc::now(), 300) - Duration::minutes(10)
}

pub fn at(base: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    base + Duration::seconds(secs)
}

/// Alternates RFC 3339 and PostgreSQL-style timestamps so both decodings are exercised.
pub fn json_time(t: DateTime<Utc>, n: usize) -> String {
    if n.is_multiple_of(2) {
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    } else {
        t.format("%Y-%m-%d %H:%M:%S+00:00").to_string()
    }
}

/// The bootstrap address every Kafka source and sink of the seeds names.
pub const SEED_BOOTSTRAP: &str = "kafka:9092";

/// Where a seed pipeline's events come from and its alerts go.
pub enum Connectors<'a> {
    /// The seed as written: its Kafka sources and sinks, with the broker at `bootstrap` in
    /// place of `kafka:9092` (the only change).
    Kafka { bootstrap: &'a str },
    /// JSON-lines files in place of the seed's three Kafka sources (authentication,
    /// firewall, and endpoint process events), and no sinks.
    File { auth: &'a Path, fw: &'a Path, ep: &'a Path },
}

/// Replaces the only occurrence of `from` in `text`.
pub fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "expected exactly one {from:?} in\n{text}"
    );
    text.replacen(from, to, 1)
}

/// `sql` with the broker of its `sources_and_sinks` Kafka connectors at `bootstrap`.
pub fn with_bootstrap(sql: &str, sources_and_sinks: usize, bootstrap: &str) -> String {
    let addr = format!("'{SEED_BOOTSTRAP}'");
    assert_eq!(
        sql.matches(&addr).count(),
        sources_and_sinks,
        "every source and sink names the broker"
    );
    sql.replace(&addr, &format!("'{bootstrap}'"))
}

/// Checks that every one of `blocks` occurs in the seed document at `doc_path`, in order,
/// and that no CREATE of the document is left out. Panics when the document is missing.
pub fn check_blocks_against_document(doc_path: &str, blocks: &[&str]) {
    let doc = std::fs::read_to_string(doc_path).unwrap_or_else(|e| panic!("the seed fixture {doc_path}: {e}"));
    let mut from = 0;
    for (i, block) in blocks.iter().enumerate() {
        let at = doc[from..]
            .find(block)
            .unwrap_or_else(|| panic!("block {i} is not in {doc_path} (after the previous one)"));
        from += at + block.len();
    }
    // Nothing of the document's SQL is left out: every CREATE in it is in a block.
    let creates = |s: &str| s.lines().filter(|l| l.starts_with("CREATE ")).count();
    assert_eq!(
        creates(&doc),
        blocks.iter().map(|b| creates(b)).sum::<usize>(),
        "CREATE statements of {doc_path} missing from the blocks"
    );
}
