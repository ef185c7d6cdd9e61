//! The fixed world every generator instance shares.
//!
//! Everything here is derived from constants, never from a generator's seed, so that
//! separate generator instances (separate sources, possibly with different seeds) agree
//! on users, hosts, IP geography and the attacker pool. Time-dependent choices that must
//! correlate across sources (which attacker IP is active right now) are pure functions
//! of the event time.
//!
//! IP layout: every [`Location`] is a /14 block (2^18 addresses) split by offset into
//! roles, so that benign and hostile traffic never share an address:
//!
//! | offset within the /14        | role                                                   |
//! |------------------------------|--------------------------------------------------------|
//! | `[0, 2^16)`                  | residential: users' logins and web browsing            |
//! | `[2^16, 2^17)`               | hosting: scanners, brute-force/spray sources, CDNs     |
//! | `[2^17, 2^17 + 256)`         | the blocked-attacker pool ([`World::attackers`])       |
//!
//! The organisation itself lives in `10.0.0.0/8` (hosts) and `198.51.100.0/24` (public
//! services, a documentation range that no geo row covers).

use std::sync::OnceLock;

/// Offset of the residential sub-block inside a location.
pub(crate) const RESIDENTIAL_OFFSET: u32 = 0;
/// Size of the residential sub-block.
pub(crate) const RESIDENTIAL_SIZE: u32 = 1 << 16;
/// Offset of the hosting sub-block inside a location.
pub(crate) const HOSTING_OFFSET: u32 = 1 << 16;
/// Size of the hosting sub-block.
pub(crate) const HOSTING_SIZE: u32 = 1 << 16;
/// Offset of the attacker-pool sub-block inside a location.
pub(crate) const ATTACKER_OFFSET: u32 = 1 << 17;
/// log2 of a location's size (every location is a /14).
const LOCATION_BITS: u32 = 18;

/// Number of IPs in the blocked-attacker pool.
pub const ATTACKER_POOL_SIZE: usize = 48;
/// Length of one attacker period: the attacker IP active at time `t` is a pure
/// function of `t / ATTACKER_PERIOD_US` (one attacker per minute).
pub const ATTACKER_PERIOD_US: i64 = 60_000_000;
/// The auth generator logs in from the attacker that was active this long ago, so the
/// firewall (which blocks the active attacker from the first event of each period on)
/// has already blocked it.
pub const BLOCK_TO_LOGIN_DELAY_US: i64 = 10_000_000;

/// Organisation's public service addresses: `198.51.100.0/24`.
pub(crate) const ORG_PUBLIC_BASE: u32 = ip(198, 51, 100, 0);
/// Region reported for the organisation's internal `10.0.0.0/8` network.
pub(crate) const INTERNAL_REGION: &str = "internal";

/// Builds an IPv4 address as its `inet_aton` integer.
pub(crate) const fn ip(a: u8, b: u8, c: u8, d: u8) -> u32 {
    ((a as u32) << 24) | ((b as u32) << 16) | ((c as u32) << 8) | d as u32
}

/// The region name used for IPs that no geo row covers (what the enrichment view's
/// `COALESCE(gi.region, 'unknown')` yields).
pub const UNKNOWN_REGION: &str = "unknown";

/// One geographic block of external addresses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Location {
    /// First address (`inet_aton` integer); the block is a /14.
    pub start: u32,
    /// Region as listed in `geo_ip_reference` (or [`UNKNOWN_REGION`] if unmapped).
    pub region: &'static str,
    /// ISO country code the identity provider reports for logins from here.
    pub country: &'static str,
    /// Whether `geo_ip_reference` has a row for this block.
    pub mapped: bool,
}

impl Location {
    /// Last address of the block.
    pub fn end(&self) -> u32 {
        self.start + ((1u32 << LOCATION_BITS) - 1)
    }
}

const fn loc(a: u8, b: u8, region: &'static str, country: &'static str, mapped: bool) -> Location {
    Location {
        start: ip(a, b, 0, 0),
        region,
        country,
        mapped,
    }
}

/// All external locations. The first [`HOME_LOCATIONS`] are where users live (13
/// mapped + 1 unmapped); the rest only host hostile infrastructure.
pub(crate) const LOCATIONS: [Location; 15] = [
    loc(24, 0, "north_america", "US", true),
    loc(84, 128, "europe", "DE", true),
    loc(110, 160, "asia_pacific", "JP", true),
    loc(177, 32, "south_america", "BR", true),
    loc(68, 36, "north_america", "US", true),
    loc(81, 96, "europe", "GB", true),
    loc(1, 120, "asia_pacific", "AU", true),
    loc(196, 208, "africa", "ZA", true),
    loc(5, 36, "middle_east", "AE", true),
    loc(99, 224, "north_america", "CA", true),
    loc(90, 0, "europe", "FR", true),
    loc(121, 128, "asia_pacific", "KR", true),
    loc(190, 16, "south_america", "AR", true),
    // Outside every geo row: enrichment yields region 'unknown'.
    loc(45, 128, UNKNOWN_REGION, "NL", false),
    loc(185, 220, UNKNOWN_REGION, "RO", false),
];

/// Number of locations users can live in (a prefix of [`LOCATIONS`]).
pub(crate) const HOME_LOCATIONS: usize = 14;

/// Region names, in a fixed order; a location's region id is its index here.
pub(crate) const REGIONS: [&str; 7] = [
    "north_america",
    "europe",
    "asia_pacific",
    "south_america",
    "africa",
    "middle_east",
    UNKNOWN_REGION,
];

/// Index of `region` in [`REGIONS`].
pub(crate) fn region_id(region: &str) -> usize {
    REGIONS
        .iter()
        .position(|r| *r == region)
        .expect("location region is listed in REGIONS")
}

const FIRST_NAMES: [&str; 32] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia",
    "peggy", "rupert", "sybil", "trent", "uma", "victor", "wendy", "xavier", "yara", "zane", "amir", "bianca", "chen",
    "dmitri", "elena", "farah", "gustavo", "hana", "ines",
];
const LAST_NAMES: [&str; 8] = [
    "smith", "garcia", "mueller", "tanaka", "silva", "okafor", "haddad", "kowalski",
];

/// Number of users in the world.
pub(crate) const USER_COUNT: usize = FIRST_NAMES.len() * LAST_NAMES.len();

/// One employee.
#[derive(Debug, Clone)]
pub(crate) struct User {
    /// Login name, e.g. `alice.smith` (auth `user_id`, endpoint `user_name`).
    pub name: String,
    /// Web-application account id, e.g. `u00042`.
    pub web_id: String,
    /// Index into [`LOCATIONS`] of where the user logs in from.
    pub home: usize,
    /// Fixed residential address the user browses the web application from.
    pub web_ip: u32,
}

/// Asset tier of a host, as in `asset_taxonomy.asset_tier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    /// Crown jewels: domain controllers, production databases, payments.
    One,
    /// Application and build servers.
    Two,
    /// Workstations.
    Three,
}

impl Tier {
    /// The `asset_tier` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::One => "tier_1",
            Tier::Two => "tier_2",
            Tier::Three => "tier_3",
        }
    }
}

/// One managed host.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    /// `host_id`, e.g. `dc-01`, `app-07`, `wks-0042`.
    pub id: String,
    /// Asset tier.
    pub tier: Tier,
    /// Owning team (`asset_taxonomy.owner`).
    pub owner: &'static str,
    /// Internal address in `10.0.0.0/8`.
    pub ip: u32,
    /// Windows host (else Linux).
    pub windows: bool,
    /// Index of the user who normally works on it (workstation owner or admin).
    pub primary_user: usize,
}

/// One entry of the blocked-attacker pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attacker {
    /// The attacker's address.
    pub ip: u32,
    /// Index into [`LOCATIONS`].
    pub location: usize,
}

/// The shared fixed world.
#[derive(Debug)]
pub(crate) struct World {
    /// All users.
    pub users: Vec<User>,
    /// Users grouped by the region id of their home location.
    pub users_by_region: Vec<Vec<usize>>,
    /// All hosts.
    pub hosts: Vec<Host>,
    /// Indices of tier-1 hosts.
    pub tier1: Vec<usize>,
    /// Indices of tier-1 Windows hosts (targets of encoded PowerShell).
    pub tier1_windows: Vec<usize>,
    /// The blocked-attacker pool.
    pub attackers: Vec<Attacker>,
}

/// The shared world, built once.
pub(crate) fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::build)
}

/// A fixed 64-bit mixer (SplitMix64 finaliser) for constant-derived choices.
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const TIER1_HOSTS: [(&str, bool, &str); 12] = [
    ("dc-01", true, "it-infrastructure"),
    ("dc-02", true, "it-infrastructure"),
    ("adfs-01", true, "identity"),
    ("exch-01", true, "it-infrastructure"),
    ("erp-01", true, "finance"),
    ("backup-01", true, "it-infrastructure"),
    ("db-prod-01", false, "data-platform"),
    ("db-prod-02", false, "data-platform"),
    ("db-prod-03", false, "data-platform"),
    ("pay-api-01", false, "payments"),
    ("pay-api-02", false, "payments"),
    ("vault-01", false, "security"),
];
const TIER2_OWNERS: [&str; 4] = ["engineering", "platform", "data-platform", "marketing"];
const TIER3_OWNERS: [&str; 6] = ["engineering", "finance", "sales", "marketing", "hr", "support"];
const TIER2_COUNT: usize = 36;
const TIER3_COUNT: usize = 160;

impl World {
    fn build() -> World {
        let users: Vec<User> = (0..USER_COUNT)
            .map(|i| {
                let first = FIRST_NAMES[i % FIRST_NAMES.len()];
                let last = LAST_NAMES[i / FIRST_NAMES.len()];
                let home = i % HOME_LOCATIONS;
                let web_ip = LOCATIONS[home].start
                    + RESIDENTIAL_OFFSET
                    + (mix64(0x5745_4200 ^ i as u64) as u32 % RESIDENTIAL_SIZE);
                User {
                    name: format!("{first}.{last}"),
                    web_id: format!("u{:05}", 1000 + i),
                    home,
                    web_ip,
                }
            })
            .collect();
        let mut users_by_region = vec![Vec::new(); REGIONS.len()];
        for (i, u) in users.iter().enumerate() {
            users_by_region[region_id(LOCATIONS[u.home].region)].push(i);
        }

        let mut hosts = Vec::new();
        for (i, (id, windows, owner)) in TIER1_HOSTS.iter().enumerate() {
            hosts.push(Host {
                id: (*id).to_string(),
                tier: Tier::One,
                owner,
                ip: ip(10, 0, 1, 10 + i as u8),
                windows: *windows,
                primary_user: (mix64(0x7431 ^ i as u64) % USER_COUNT as u64) as usize,
            });
        }
        for i in 0..TIER2_COUNT {
            let (id, windows) = if i % 4 == 3 {
                (format!("build-{:02}", i / 4 + 1), false)
            } else if i % 6 == 1 {
                (format!("web-{:02}", i + 1), true)
            } else {
                (format!("app-{:02}", i + 1), false)
            };
            hosts.push(Host {
                id,
                tier: Tier::Two,
                owner: TIER2_OWNERS[i % TIER2_OWNERS.len()],
                ip: ip(10, 0, 2, 10 + i as u8),
                windows,
                primary_user: (mix64(0x7432 ^ i as u64) % USER_COUNT as u64) as usize,
            });
        }
        for i in 0..TIER3_COUNT {
            hosts.push(Host {
                id: format!("wks-{:04}", i + 1),
                tier: Tier::Three,
                owner: TIER3_OWNERS[i % TIER3_OWNERS.len()],
                ip: ip(10, 1, (i / 200) as u8, 10 + (i % 200) as u8),
                windows: true,
                primary_user: i % USER_COUNT,
            });
        }
        let tier1 = hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.tier == Tier::One)
            .map(|(i, _)| i)
            .collect();
        let tier1_windows = hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.tier == Tier::One && h.windows)
            .map(|(i, _)| i)
            .collect();

        let attackers = (0..ATTACKER_POOL_SIZE)
            .map(|k| {
                let location = k % LOCATIONS.len();
                Attacker {
                    ip: LOCATIONS[location].start + ATTACKER_OFFSET + ((k as u32 * 37 + 11) % 256),
                    location,
                }
            })
            .collect();

        World {
            users,
            users_by_region,
            hosts,
            tier1,
            tier1_windows,
            attackers,
        }
    }

    /// The attacker active at `event_time_us` (a pure function of the attack period).
    pub fn attacker_at(&self, event_time_us: i64) -> &Attacker {
        let period = event_time_us.div_euclid(ATTACKER_PERIOD_US);
        let idx = mix64(0xB10C_4ED0 ^ period as u64) % self.attackers.len() as u64;
        &self.attackers[idx as usize]
    }

    /// Whether `addr` belongs to the blocked-attacker pool.
    #[cfg(test)]
    pub fn is_attacker(&self, addr: u32) -> bool {
        self.attackers.iter().any(|a| a.ip == addr)
    }
}

/// The blocked-attacker IP active at `event_time_us` (dotted quad).
///
/// The firewall generator blocks this address throughout its minute (always at the first
/// event it emits in that minute); the auth generator logs in successfully from the
/// address that was active [`BLOCK_TO_LOGIN_DELAY_US`] earlier.
pub fn active_attacker_ip(event_time_us: i64) -> String {
    let a = world().attacker_at(event_time_us).ip;
    let mut s = String::with_capacity(15);
    super::json::push_ip(&mut s, a);
    s
}

/// Geo lookup the way the enrichment view does it: region of the first geo row whose
/// range contains `addr`, else [`UNKNOWN_REGION`].
#[cfg(test)]
pub(crate) fn region_of(addr: u32) -> &'static str {
    if addr >> 24 == 10 {
        return INTERNAL_REGION;
    }
    LOCATIONS
        .iter()
        .find(|l| l.mapped && addr >= l.start && addr <= l.end())
        .map(|l| l.region)
        .unwrap_or(UNKNOWN_REGION)
}

/// Parses a dotted quad into its `inet_aton` integer.
#[cfg(test)]
pub(crate) fn parse_ip(s: &str) -> Option<u32> {
    let mut out = 0u32;
    let mut n = 0;
    for part in s.split('.') {
        out = (out << 8) | part.parse::<u8>().ok()? as u32;
        n += 1;
    }
    (n == 4).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_do_not_overlap_and_are_aligned() {
        for (i, a) in LOCATIONS.iter().enumerate() {
            assert_eq!(a.start & ((1 << LOCATION_BITS) - 1), 0, "{i} not a /14");
            for b in &LOCATIONS[i + 1..] {
                assert!(a.end() < b.start || b.end() < a.start);
            }
        }
        assert!(LOCATIONS[..HOME_LOCATIONS].iter().any(|l| !l.mapped));
    }

    #[test]
    fn every_region_has_users_and_names_are_unique() {
        let w = world();
        for (r, users) in w.users_by_region.iter().enumerate() {
            assert!(!users.is_empty(), "region {} has no users", REGIONS[r]);
        }
        let mut names: Vec<_> = w.users.iter().map(|u| &u.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), USER_COUNT);
        let mut hosts: Vec<_> = w.hosts.iter().map(|h| &h.id).collect();
        hosts.sort();
        hosts.dedup();
        assert_eq!(hosts.len(), w.hosts.len());
        assert!(!w.tier1_windows.is_empty());
    }

    #[test]
    fn attackers_sit_in_their_own_sub_block() {
        let w = world();
        for a in &w.attackers {
            let l = LOCATIONS[a.location];
            let off = a.ip - l.start;
            assert!((ATTACKER_OFFSET..ATTACKER_OFFSET + 256).contains(&off));
            assert_eq!(region_of(a.ip), l.region);
        }
        let mut ips: Vec<_> = w.attackers.iter().map(|a| a.ip).collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), ATTACKER_POOL_SIZE);
    }

    #[test]
    fn active_attacker_is_a_function_of_the_minute() {
        let t = 1_700_000_000_000_000i64;
        let minute_start = t - t.rem_euclid(ATTACKER_PERIOD_US);
        let a = active_attacker_ip(minute_start);
        assert_eq!(a, active_attacker_ip(minute_start + ATTACKER_PERIOD_US - 1));
        let distinct: std::collections::HashSet<_> = (0..60)
            .map(|m| active_attacker_ip(minute_start + m * ATTACKER_PERIOD_US))
            .collect();
        assert!(distinct.len() > 20);
        assert_eq!(parse_ip("10.0.1.2"), Some(ip(10, 0, 1, 2)));
        assert_eq!(parse_ip("10.0.1"), None);
    }
}
