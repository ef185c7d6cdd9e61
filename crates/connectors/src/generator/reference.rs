//! Reference tables the first seed pipeline's `enriched_events` view joins, consistent
//! with the generated hosts and IPs.

use std::fmt::Write as _;

use super::world::{world, INTERNAL_REGION, LOCATIONS};

/// DDL for the asset classification table ([`asset_taxonomy_csv`] holds its rows).
pub const ASSET_TAXONOMY_DDL: &str = "CREATE TABLE asset_taxonomy (host_id VARCHAR, asset_tier VARCHAR, owner VARCHAR)";

/// DDL for the IP geolocation table ([`geo_ip_reference_csv`] holds its rows).
pub const GEO_IP_REFERENCE_DDL: &str =
    "CREATE TABLE geo_ip_reference (ip_range_start BIGINT, ip_range_end BIGINT, region VARCHAR, country_code VARCHAR)";

/// Country code of the internal-network row (ISO 3166 "unknown or unspecified").
const INTERNAL_COUNTRY: &str = "ZZ";

/// CSV (with header `host_id,asset_tier,owner`) classifying every host the endpoint
/// generator emits; `asset_tier` is `tier_1`, `tier_2` or `tier_3`.
pub fn asset_taxonomy_csv() -> String {
    let w = world();
    let mut out = String::with_capacity(32 * (w.hosts.len() + 1));
    out.push_str("host_id,asset_tier,owner\n");
    for h in &w.hosts {
        let _ = writeln!(out, "{},{},{}", h.id, h.tier.as_str(), h.owner);
    }
    out
}

/// CSV (with header `ip_range_start,ip_range_end,region,country_code`) of the geo ranges
/// the generators draw external IPs from, as `inet_aton` integers
/// (`a.b.c.d` = `a*2^24 + b*2^16 + c*2^8 + d`), plus the internal `10.0.0.0/8` network
/// (region `internal`). Two deliberately unmapped blocks (`45.128.0.0/14`,
/// `185.220.0.0/14`) are absent, so some IPs enrich to region `unknown`.
pub fn geo_ip_reference_csv() -> String {
    let mut out = String::with_capacity(48 * (LOCATIONS.len() + 2));
    out.push_str("ip_range_start,ip_range_end,region,country_code\n");
    for l in LOCATIONS.iter().filter(|l| l.mapped) {
        let _ = writeln!(out, "{},{},{},{}", l.start, l.end(), l.region, l.country);
    }
    let _ = writeln!(
        out,
        "{},{},{},{}",
        10u32 << 24,
        (11u32 << 24) - 1,
        INTERNAL_REGION,
        INTERNAL_COUNTRY
    );
    out
}
