//! Tests of the generator as a whole: determinism, schemas, attack rates, cross-source
//! correlation and the reference tables.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::world::{parse_ip, region_of, world, LOCATIONS};
use super::*;

/// 2026-11-22T10:00:00Z, minute aligned.
const T0: i64 = 1_795_341_600_000_000;
/// 200 events per second.
const STEP_200: i64 = 5_000;
const FIVE_MIN: i64 = 300_000_000;

type Event = Map<String, Value>;

fn generate(kind: GeneratorKind, seed: u64, n: usize, step_us: i64) -> Vec<(i64, String)> {
    let mut g = EventGenerator::new(kind, seed);
    (0..n as i64)
        .map(|i| {
            let t = T0 + i * step_us;
            (t, g.next_event(t))
        })
        .collect()
}

fn parse(kind: GeneratorKind, seed: u64, n: usize, step_us: i64) -> Vec<(i64, Event)> {
    generate(kind, seed, n, step_us)
        .into_iter()
        .map(|(t, s)| {
            let v: Value = serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {s}"));
            match v {
                Value::Object(m) => (t, m),
                other => panic!("not an object: {other}"),
            }
        })
        .collect()
}

fn s<'a>(e: &'a Event, key: &str) -> &'a str {
    e.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{key} missing or not a string in {e:?}"))
}

fn within(actual: usize, expected: f64, tolerance: f64, what: &str) {
    let lo = expected * (1.0 - tolerance);
    let hi = expected * (1.0 + tolerance);
    eprintln!("{what}: {actual} (expected {expected:.1})");
    assert!(
        (lo..=hi).contains(&(actual as f64)),
        "{what}: {actual} not within {tolerance} of {expected}"
    );
}

/// `(start, end, region)` rows of the geo CSV.
fn geo_rows() -> Vec<(u64, u64, String)> {
    let csv = geo_ip_reference_csv();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("ip_range_start,ip_range_end,region,country_code"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 4, "{l}");
            (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2].to_string())
        })
        .collect()
}

/// The enrichment join: `inet_aton(ip) BETWEEN start AND end`, else 'unknown'.
fn enrich(rows: &[(u64, u64, String)], ip: &str) -> String {
    let a = u64::from(parse_ip(ip).unwrap_or_else(|| panic!("bad ip {ip}")));
    rows.iter()
        .find(|(lo, hi, _)| (*lo..=*hi).contains(&a))
        .map(|r| r.2.clone())
        .unwrap_or_else(|| UNKNOWN_REGION.to_string())
}

fn asset_tiers() -> HashMap<String, String> {
    let csv = asset_taxonomy_csv();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("host_id,asset_tier,owner"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 3, "{l}");
            assert!(["tier_1", "tier_2", "tier_3"].contains(&f[1]), "{l}");
            assert!(!f[2].is_empty());
            (f[0].to_string(), f[1].to_string())
        })
        .collect()
}

#[test]
fn kinds_parse_and_errors_list_the_valid_kinds() {
    for k in GeneratorKind::ALL {
        assert_eq!(k.as_str().parse::<GeneratorKind>(), Ok(k));
        assert_eq!(k.to_string().to_uppercase().parse::<GeneratorKind>(), Ok(k));
    }
    let err = "netflow".parse::<GeneratorKind>().unwrap_err().to_string();
    for k in ["netflow", "auth", "firewall", "endpoint", "web"] {
        assert!(err.contains(k), "{err}");
    }
}

#[test]
fn same_seed_same_events_different_seed_different_events() {
    for kind in GeneratorKind::ALL {
        let a = generate(kind, 7, 3_000, 1_234);
        let b = generate(kind, 7, 3_000, 1_234);
        assert_eq!(a, b, "{kind}");
        let c = generate(kind, 8, 3_000, 1_234);
        let differing = a.iter().zip(&c).filter(|(x, y)| x.1 != y.1).count();
        assert!(differing > 2_900, "{kind}: only {differing} differ");
        // The buffer-reusing API produces the same bytes.
        let mut g = EventGenerator::new(kind, 7);
        let mut buf = String::new();
        for (t, expected) in &a {
            buf.clear();
            g.write_next_event(*t, &mut buf);
            assert_eq!(&buf, expected);
        }
        assert_eq!(g.kind(), kind);
    }
}

#[test]
fn events_are_json_with_every_required_field() {
    #[derive(Clone, Copy)]
    enum Ty {
        Str,
        Int,
        Time,
    }
    use Ty::*;
    let schemas: [(GeneratorKind, &[(&str, Ty)]); 4] = [
        (
            GeneratorKind::Auth,
            &[
                ("event_time", Time),
                ("event_id", Str),
                ("user_id", Str),
                ("source_ip", Str),
                ("country_code", Str),
                ("result", Str),
                ("event_type", Str),
                ("app_name", Str),
                ("session_id", Str),
                ("login_time", Time),
                ("username", Str),
                ("status", Str),
            ],
        ),
        (
            GeneratorKind::Firewall,
            &[
                ("event_time", Time),
                ("log_time", Time),
                ("log_id", Str),
                ("src_ip", Str),
                ("dst_ip", Str),
                ("src_port", Int),
                ("dst_port", Int),
                ("protocol", Str),
                ("bytes_transferred", Int),
                ("bytes", Int),
                ("action", Str),
                ("rule_id", Str),
            ],
        ),
        (
            GeneratorKind::Endpoint,
            &[
                ("event_time", Time),
                ("event_id", Str),
                ("host_id", Str),
                ("process_name", Str),
                ("parent_pid", Int),
                ("child_pid", Int),
                ("command_line", Str),
                ("user_name", Str),
                ("sha256_hash", Str),
            ],
        ),
        (
            GeneratorKind::Web,
            &[
                ("event_time", Time),
                ("request_timestamp", Time),
                ("ip_address", Str),
                ("user_agent", Str),
                ("url", Str),
                ("http_method", Str),
                ("status_code", Int),
                ("response_time", Int),
                ("referrer", Str),
                ("user_id", Str),
                ("username", Str),
                ("user_action", Str),
                ("security_level", Str),
            ],
        ),
    ];
    for (kind, fields) in schemas {
        let mut g = EventGenerator::new(kind, 3);
        for i in 0..20_000i64 {
            let t = T0 + i * 3_001;
            let raw = g.next_event(t);
            assert!(!raw.ends_with('\n'));
            let e: Event = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{e}: {raw}"));
            assert_eq!(e.len(), fields.len(), "{kind}: {raw}");
            let expected_time = chrono::DateTime::from_timestamp_micros(t)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            for (name, ty) in fields {
                let v = e.get(*name).unwrap_or_else(|| panic!("{kind}: no {name}: {raw}"));
                match ty {
                    Str => assert!(v.is_string(), "{kind}.{name}: {raw}"),
                    Int => assert!(v.as_u64().is_some(), "{kind}.{name}: {raw}"),
                    Time => assert_eq!(v.as_str(), Some(expected_time.as_str()), "{name}"),
                }
            }
            check_values(kind, &e);
        }
    }
}

fn check_values(kind: GeneratorKind, e: &Event) {
    match kind {
        GeneratorKind::Auth => {
            let expected = match s(e, "result") {
                "success" => ("login_success", "success"),
                "failure" => ("login_failure", "failure"),
                "mfa_challenge" => ("mfa_bypass", "success"),
                other => panic!("result {other}"),
            };
            assert_eq!((s(e, "event_type"), s(e, "status")), expected);
            assert_eq!(s(e, "username"), s(e, "user_id"));
            assert!(parse_ip(s(e, "source_ip")).is_some());
            assert_eq!(s(e, "country_code").len(), 2);
        }
        GeneratorKind::Firewall => {
            assert!(["allow", "deny", "drop"].contains(&s(e, "action")));
            assert_eq!(e["bytes"], e["bytes_transferred"]);
            assert!(["TCP", "UDP", "ICMP"].contains(&s(e, "protocol")));
            assert!(parse_ip(s(e, "src_ip")).is_some() && parse_ip(s(e, "dst_ip")).is_some());
            assert!(e["dst_port"].as_u64().unwrap() <= 65_535);
        }
        GeneratorKind::Endpoint => {
            let h = s(e, "sha256_hash");
            assert!(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()), "{h}");
            assert!(e["parent_pid"].as_u64().unwrap() <= i32::MAX as u64);
            assert!(e["child_pid"].as_u64().unwrap() <= i32::MAX as u64);
        }
        GeneratorKind::Web => {
            assert!(["low", "medium", "high"].contains(&s(e, "security_level")));
            assert!(["GET", "POST"].contains(&s(e, "http_method")));
            assert!(s(e, "url").starts_with("https://"));
            assert!(parse_ip(s(e, "ip_address")).is_some());
        }
    }
}

#[test]
fn auth_attack_rates() {
    let n = 100_000;
    let events = parse(GeneratorKind::Auth, 11, n, STEP_200);
    let geo = geo_rows();
    let w = world();
    let user_home: HashMap<&str, String> = w
        .users
        .iter()
        .map(|u| {
            let mut ip = String::new();
            super::json::push_ip(&mut ip, LOCATIONS[u.home].start);
            (u.name.as_str(), enrich(&geo, &ip))
        })
        .collect();

    // alert_brute_force: failures per (window, ip, user) > 10.
    let mut per_pair: HashMap<(i64, &str, &str), usize> = HashMap::new();
    // brute_force_detections: failures per (window, ip) > 20.
    let mut per_ip: HashMap<(i64, &str), (usize, HashSet<&str>)> = HashMap::new();
    let mut travel = 0;
    let mut from_pool = 0;
    let mut successes = 0;
    for (t, e) in &events {
        let window = t.div_euclid(FIVE_MIN);
        let (ip, user) = (s(e, "source_ip"), s(e, "user_id"));
        match s(e, "result") {
            "failure" => {
                *per_pair.entry((window, ip, user)).or_default() += 1;
                let entry = per_ip.entry((window, ip)).or_default();
                entry.0 += 1;
                entry.1.insert(user);
            }
            "success" => {
                successes += 1;
                if enrich(&geo, ip) != user_home[user] {
                    travel += 1;
                }
                if w.is_attacker(parse_ip(ip).unwrap()) {
                    from_pool += 1;
                    // Same region as the victim's home: no accidental impossible travel.
                    assert_eq!(enrich(&geo, ip), user_home[user]);
                }
            }
            _ => {}
        }
    }
    let per_10k = |r: u32| n as f64 * r as f64 / 10_000.0;
    let brute = per_pair.values().filter(|&&c| c > 10).count();
    within(brute, per_10k(AUTH_BRUTE_FORCE_PER_10K), 0.25, "brute force");
    // Benign failures never pile up on one (ip, user) pair.
    assert!(per_pair.values().all(|&c| c <= 2 || c > 10));
    let spray: Vec<_> = per_ip.values().filter(|(c, _)| *c > 20).collect();
    within(spray.len(), per_10k(AUTH_SPRAY_PER_10K), 0.25, "spraying");
    assert!(spray.iter().all(|(c, users)| users.len() == *c));
    within(
        travel,
        per_10k(AUTH_IMPOSSIBLE_TRAVEL_PER_10K),
        0.25,
        "impossible travel",
    );
    within(
        from_pool,
        per_10k(AUTH_BLOCKED_IP_LOGIN_PER_10K),
        0.25,
        "blocked-ip logins",
    );
    assert!(successes as f64 > 0.85 * n as f64, "mostly successful logins");
}

#[test]
fn firewall_attack_rates() {
    let n = 100_000;
    let events = parse(GeneratorKind::Firewall, 12, n, STEP_200);
    let w = world();
    let mut pool_blocks = 0;
    let mut allowed = 0;
    let mut scan_ports: HashMap<&str, HashSet<u64>> = HashMap::new();
    for (_, e) in &events {
        match s(e, "action") {
            "allow" => allowed += 1,
            _ => {
                let src = s(e, "src_ip");
                if w.is_attacker(parse_ip(src).unwrap()) {
                    pool_blocks += 1;
                }
                if s(e, "rule_id") == "FW-9200" {
                    scan_ports
                        .entry(src)
                        .or_default()
                        .insert(e["dst_port"].as_u64().unwrap());
                }
            }
        }
    }
    let minutes = (n as i64 * STEP_200).div_euclid(ATTACKER_PERIOD_US) as f64 + 1.0;
    let expected = n as f64 * FIREWALL_ATTACKER_BLOCKS_PER_10K as f64 / 10_000.0 + minutes;
    within(pool_blocks, expected, 0.25, "attacker blocks");
    let scans = scan_ports
        .values()
        .filter(|p| p.len() == FIREWALL_PORT_SCAN_PROBES as usize)
        .count();
    within(
        scans,
        n as f64 * FIREWALL_PORT_SCAN_PER_10K as f64 / 10_000.0,
        0.3,
        "port scans",
    );
    assert!(allowed as f64 > 0.85 * n as f64, "mostly allowed traffic");
}

/// The `suspicious_process_chains` predicate of the second seed pipeline.
fn is_recon(e: &Event) -> bool {
    let cmd = s(e, "command_line");
    ["cmd.exe", "powershell.exe", "bash", "sh"].contains(&s(e, "process_name"))
        && ["net user", "whoami", "net localgroup", "mimikatz", "procdump"]
            .iter()
            .any(|n| cmd.contains(n))
}

/// The `alert_suspicious_process` predicate of the first seed pipeline, minus the tier.
fn is_encoded_powershell(e: &Event) -> bool {
    s(e, "process_name").to_lowercase().contains("powershell")
        && s(e, "command_line").to_lowercase().contains("-encodedcommand")
}

#[test]
fn endpoint_attack_rates() {
    let n = 100_000;
    let events = parse(GeneratorKind::Endpoint, 13, n, STEP_200);
    let tiers = asset_tiers();
    let mut encoded = 0;
    let mut recon = 0;
    for (_, e) in &events {
        let tier = tiers
            .get(s(e, "host_id"))
            .unwrap_or_else(|| panic!("host {} not in asset_taxonomy", s(e, "host_id")));
        if is_encoded_powershell(e) {
            encoded += 1;
            assert_eq!(tier, "tier_1");
            assert!(!is_recon(e));
        }
        if is_recon(e) {
            recon += 1;
        }
    }
    let per_10k = |r: u32| n as f64 * r as f64 / 10_000.0;
    within(
        encoded,
        per_10k(ENDPOINT_ENCODED_POWERSHELL_PER_10K),
        0.25,
        "encoded powershell",
    );
    within(
        recon,
        per_10k(ENDPOINT_RECON_PER_10K) * ENDPOINT_RECON_CHAIN_LEN as f64,
        0.25,
        "recon commands",
    );
}

#[test]
fn web_attack_rates() {
    let n = 100_000;
    let events = parse(GeneratorKind::Web, 14, n, STEP_200);
    let scanner = events
        .iter()
        .filter(|(_, e)| s(e, "user_id") == "anonymous")
        .inspect(|(_, e)| assert_eq!(s(e, "security_level"), "high"))
        .count();
    within(
        scanner,
        n as f64 * (WEB_SCANNER_PER_10K * WEB_SCANNER_REQUESTS) as f64 / 10_000.0,
        0.25,
        "scanner requests",
    );
    let ok = events
        .iter()
        .filter(|(_, e)| e["status_code"].as_u64().unwrap() < 400)
        .count();
    assert!(ok as f64 > 0.9 * n as f64, "mostly normal requests");
    let actions: HashSet<&str> = events.iter().map(|(_, e)| s(e, "user_action")).collect();
    assert_eq!(actions.len(), 10, "{actions:?}");
}

#[test]
fn auth_logins_from_ips_a_separate_firewall_blocked() {
    // Separate instances, different seeds and rates, same wall-clock span (10 minutes).
    let span = 600_000_000i64;
    let fw_step = 5_000;
    let auth_step = 7_000;
    let firewall = parse(GeneratorKind::Firewall, 1, (span / fw_step) as usize, fw_step);
    let auth = parse(GeneratorKind::Auth, 99, (span / auth_step) as usize, auth_step);

    let mut first_block: HashMap<String, i64> = HashMap::new();
    for (t, e) in &firewall {
        if s(e, "action") != "allow" {
            first_block.entry(s(e, "src_ip").to_string()).or_insert(*t);
        }
    }
    let w = world();
    let mut pool_logins = 0;
    let mut correlated = 0;
    let mut first_correlated = None;
    for (t, e) in &auth {
        if s(e, "event_type") != "login_success" {
            continue;
        }
        let ip = s(e, "source_ip");
        let blocked_before = first_block.get(ip).is_some_and(|b| b < t);
        if w.is_attacker(parse_ip(ip).unwrap()) {
            pool_logins += 1;
            if *t >= T0 + BLOCK_TO_LOGIN_DELAY_US {
                assert!(blocked_before, "attacker login from {ip} at {t} was never blocked");
            }
        } else {
            assert!(!first_block.contains_key(ip), "benign login from blocked {ip}");
        }
        if blocked_before {
            correlated += 1;
            first_correlated.get_or_insert(*t);
        }
    }
    let expected = auth.len() as f64 * AUTH_BLOCKED_IP_LOGIN_PER_10K as f64 / 10_000.0;
    within(pool_logins, expected, 0.3, "attacker-pool logins");
    assert!(correlated + 2 >= pool_logins, "{correlated} of {pool_logins}");
    assert!(first_correlated.unwrap() < T0 + 60_000_000);
}

#[test]
fn every_attack_shows_up_within_a_minute_at_200_events_per_second() {
    let n = 12_000; // one minute at 200 events/s
    for seed in 0..4 {
        let auth = parse(GeneratorKind::Auth, seed, n, STEP_200);
        let mut pairs: HashMap<(&str, &str), usize> = HashMap::new();
        let mut ips: HashMap<&str, usize> = HashMap::new();
        let mut regions: HashMap<&str, HashSet<&str>> = HashMap::new();
        for (_, e) in &auth {
            let (ip, user) = (s(e, "source_ip"), s(e, "user_id"));
            if s(e, "result") == "failure" {
                *pairs.entry((ip, user)).or_default() += 1;
                *ips.entry(ip).or_default() += 1;
            } else if s(e, "result") == "success" {
                regions
                    .entry(user)
                    .or_default()
                    .insert(region_of(parse_ip(ip).unwrap()));
            }
        }
        assert!(pairs.values().any(|&c| c > 10), "seed {seed}: brute force");
        assert!(ips.values().any(|&c| c > 20), "seed {seed}: spraying");
        assert!(regions.values().any(|r| r.len() > 1), "seed {seed}: travel");

        let endpoint = parse(GeneratorKind::Endpoint, seed, n, STEP_200);
        assert!(endpoint.iter().any(|(_, e)| is_encoded_powershell(e)));
        assert!(endpoint.iter().any(|(_, e)| is_recon(e)));
    }
}

#[test]
fn reference_tables_cover_generated_hosts_and_ips() {
    let tiers = asset_tiers();
    let w = world();
    assert_eq!(tiers.len(), w.hosts.len());
    for t in ["tier_1", "tier_2", "tier_3"] {
        assert!(tiers.values().any(|v| v == t));
    }
    let geo = geo_rows();
    for (lo, hi, region) in &geo {
        assert!(lo <= hi && *hi <= u64::from(u32::MAX), "{lo}..{hi}");
        assert_ne!(region, UNKNOWN_REGION);
    }
    // inet_aton encoding.
    assert!(geo.iter().any(|(lo, _, _)| *lo == 24 * (1 << 24)));

    // Most external IPs of every kind enrich to a region; some do not.
    for (kind, field) in [
        (GeneratorKind::Auth, "source_ip"),
        (GeneratorKind::Firewall, "src_ip"),
        (GeneratorKind::Web, "ip_address"),
    ] {
        let events = parse(kind, 5, 20_000, STEP_200);
        let unknown = events
            .iter()
            .filter(|(_, e)| enrich(&geo, s(e, field)) == UNKNOWN_REGION)
            .count();
        assert!(unknown > 0, "{kind}: every IP mapped");
        assert!(
            (unknown as f64) < 0.2 * events.len() as f64,
            "{kind}: {unknown} unknown"
        );
        // The CSV and the world agree on every lookup.
        for (_, e) in events.iter().take(2_000) {
            let ip = s(e, field);
            assert_eq!(enrich(&geo, ip), region_of(parse_ip(ip).unwrap()));
        }
    }
    assert!(ASSET_TAXONOMY_DDL.starts_with("CREATE TABLE asset_taxonomy ("));
    assert!(GEO_IP_REFERENCE_DDL.starts_with("CREATE TABLE geo_ip_reference ("));
}

/// Release-mode timing: `cargo test --release -p rampart-connectors generator_throughput
/// -- --ignored --nocapture`.
#[test]
#[ignore]
fn generator_throughput() {
    let n = 2_000_000i64;
    for kind in GeneratorKind::ALL {
        let mut g = EventGenerator::new(kind, 1);
        println!("{}", g.next_event(T0));
        let start = std::time::Instant::now();
        let mut bytes = 0usize;
        for i in 0..n {
            bytes += g.next_event(T0 + i * 1_000).len();
        }
        let per_event = start.elapsed().as_nanos() as f64 / n as f64;
        let mut buf = String::with_capacity(512);
        let start = std::time::Instant::now();
        for i in 0..n {
            buf.clear();
            g.write_next_event(T0 + i * 1_000, &mut buf);
            bytes += buf.len();
        }
        let reuse = start.elapsed().as_nanos() as f64 / n as f64;
        println!("{kind}: next_event {per_event:.0} ns/event, write_next_event {reuse:.0} ns/event ({bytes} bytes)");
    }
}
