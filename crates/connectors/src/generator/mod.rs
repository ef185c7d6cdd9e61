//! The `generator` connector: the built-in security event generator, its options
//! ([`GeneratorOptions`]) and the source that runs it at a steady rate (`source.rs`).
//!
//! Produces JSON events for the `CREATE SOURCE` schemas of the seed pipelines: each
//! kind's object is a superset of the fields every seed source of that kind declares.
//! Traffic is mostly benign, with attack scenarios mixed in at the documented rates
//! (the `*_PER_10K` constants: scenario starts per 10,000 events of that kind).
//!
//! Determinism: the same `(kind, seed)` fed the same sequence of event times produces
//! byte-identical events. Everything that must agree *across* generator instances
//! (users, hosts, geo ranges, the attacker pool, the attacker active in a given minute)
//! comes from a fixed world derived from constants and the event time, never from the
//! seed, so a firewall source and an auth source with different seeds still correlate.
//!
//! ```
//! use rampart_connectors::generator::{EventGenerator, GeneratorKind};
//!
//! let mut g = EventGenerator::new("auth".parse::<GeneratorKind>().unwrap(), 42);
//! let event = g.next_event(1_795_341_600_123_000);
//! assert!(event.starts_with(r#"{"event_time":"2026-11-22T10:00:00.123Z""#));
//! ```

mod auth;
mod endpoint;
mod firewall;
mod json;
mod options;
mod reference;
mod schedule;
pub(crate) mod source;
mod web;
mod world;

use std::fmt;
use std::str::FromStr;

pub use auth::{
    AUTH_BENIGN_FAILURE_PER_10K, AUTH_BENIGN_MFA_PER_10K, AUTH_BLOCKED_IP_LOGIN_PER_10K, AUTH_BRUTE_FORCE_FAILURES,
    AUTH_BRUTE_FORCE_PER_10K, AUTH_IMPOSSIBLE_TRAVEL_PER_10K, AUTH_SPRAY_FAILURES, AUTH_SPRAY_PER_10K,
};
pub use endpoint::{ENDPOINT_ENCODED_POWERSHELL_PER_10K, ENDPOINT_RECON_CHAIN_LEN, ENDPOINT_RECON_PER_10K};
pub use firewall::{
    FIREWALL_ATTACKER_BLOCKS_PER_10K, FIREWALL_BENIGN_DENY_PER_10K, FIREWALL_PORT_SCAN_PER_10K,
    FIREWALL_PORT_SCAN_PROBES,
};
pub use options::GeneratorOptions;
pub use reference::{asset_taxonomy_csv, geo_ip_reference_csv, ASSET_TAXONOMY_DDL, GEO_IP_REFERENCE_DDL};
pub use web::{WEB_SCANNER_PER_10K, WEB_SCANNER_REQUESTS};
pub use world::{active_attacker_ip, ATTACKER_PERIOD_US, ATTACKER_POOL_SIZE, BLOCK_TO_LOGIN_DELAY_US, UNKNOWN_REGION};

/// Which kind of security log a generator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GeneratorKind {
    /// Identity-provider authentication events (`auth_events`, `logins`).
    Auth,
    /// Firewall flow logs (`firewall_logs`).
    Firewall,
    /// Endpoint process-execution telemetry (`endpoint_events`, `process_events`).
    Endpoint,
    /// Website audit logs (`website_logs_source`).
    Web,
}

impl GeneratorKind {
    /// Every kind, in a fixed order.
    pub const ALL: [GeneratorKind; 4] = [
        GeneratorKind::Auth,
        GeneratorKind::Firewall,
        GeneratorKind::Endpoint,
        GeneratorKind::Web,
    ];

    /// The name `FromStr` accepts (`auth`, `firewall`, `endpoint`, `web`).
    pub fn as_str(self) -> &'static str {
        match self {
            GeneratorKind::Auth => "auth",
            GeneratorKind::Firewall => "firewall",
            GeneratorKind::Endpoint => "endpoint",
            GeneratorKind::Web => "web",
        }
    }
}

impl fmt::Display for GeneratorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unrecognised generator kind name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseGeneratorKindError {
    /// The name that was given.
    pub given: String,
}

impl fmt::Display for ParseGeneratorKindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown generator kind '{}': valid kinds are auth, firewall, endpoint, web",
            self.given
        )
    }
}

impl std::error::Error for ParseGeneratorKindError {}

impl FromStr for GeneratorKind {
    type Err = ParseGeneratorKindError;

    /// Parses `auth`, `firewall`, `endpoint` or `web` (ASCII case-insensitive, trimmed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        GeneratorKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| ParseGeneratorKindError { given: s.to_string() })
    }
}

#[derive(Debug)]
enum Inner {
    Auth(auth::AuthGenerator),
    Firewall(firewall::FirewallGenerator),
    Endpoint(endpoint::EndpointGenerator),
    Web(web::WebGenerator),
}

/// A deterministic stream of JSON security events of one kind.
#[derive(Debug)]
pub struct EventGenerator {
    kind: GeneratorKind,
    inner: Inner,
}

impl EventGenerator {
    /// A generator of `kind` events whose randomness derives from `seed`.
    pub fn new(kind: GeneratorKind, seed: u64) -> Self {
        let inner = match kind {
            GeneratorKind::Auth => Inner::Auth(auth::AuthGenerator::new(seed)),
            GeneratorKind::Firewall => Inner::Firewall(firewall::FirewallGenerator::new(seed)),
            GeneratorKind::Endpoint => Inner::Endpoint(endpoint::EndpointGenerator::new(seed)),
            GeneratorKind::Web => Inner::Web(web::WebGenerator::new(seed)),
        };
        EventGenerator { kind, inner }
    }

    /// The kind of events this generator produces.
    pub fn kind(&self) -> GeneratorKind {
        self.kind
    }

    /// The next event as one JSON object (no trailing newline), stamped with
    /// `event_time_us` (microseconds since the Unix epoch, UTC).
    pub fn next_event(&mut self, event_time_us: i64) -> String {
        let mut out = String::with_capacity(400);
        self.write_next_event(event_time_us, &mut out);
        out
    }

    /// Like [`next_event`](Self::next_event) but appends the object to `out`, so a
    /// caller can reuse one buffer (or build newline-delimited batches) without an
    /// allocation per event. Produces exactly the bytes `next_event` would.
    pub fn write_next_event(&mut self, event_time_us: i64, out: &mut String) {
        match &mut self.inner {
            Inner::Auth(g) => g.write_next(event_time_us, out),
            Inner::Firewall(g) => g.write_next(event_time_us, out),
            Inner::Endpoint(g) => g.write_next(event_time_us, out),
            Inner::Web(g) => g.write_next(event_time_us, out),
        }
    }
}

#[cfg(test)]
mod tests;
