//! The first seed pipeline, `fixtures/seeds/risingwave-siem-pipeline.txt`: its SQL copied
//! verbatim from the document, the events fed to it, its alerts computed independently in
//! plain Rust (HashMaps and loops, never by asking the engine), and the checks of its views.
//! Shared by `seed_pipelines.rs` (file sources and a file sink in place of the seed's Kafka
//! ones) and `kafka.rs` (the seed's own Kafka sources and sinks, against a real broker).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::client::{floor_to, ts, wait_for, Row};
use crate::row;
use crate::seed::{at, json_time, replace_once, with_bootstrap, Connectors, SEED_BOOTSTRAP};

const FIVE_MIN: i64 = 300;

// ---------------------------------------------------------------------------------------
// The SQL
// ---------------------------------------------------------------------------------------

/// The seed document, copied into the test fixtures (see `fixtures/seeds/README.md`).
pub const SEED1_DOC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/seeds/risingwave-siem-pipeline.txt"
);

/// The five SQL code blocks of the seed document, character for character and in order
/// (`seed1_sql_is_the_seed_document_verbatim` checks each against the document with
/// [`crate::seed::check_blocks_against_document`]).
pub const SEED1_BLOCKS: [&str; 5] = [
    r#"-- Network flow logs from a firewall Kafka topic
CREATE SOURCE firewall_logs (
    event_time        TIMESTAMPTZ,
    src_ip            VARCHAR,
    dst_ip            VARCHAR,
    src_port          INT,
    dst_port          INT,
    protocol          VARCHAR,
    bytes_transferred BIGINT,
    action            VARCHAR,
    rule_id           VARCHAR
)
WITH (
    connector = 'kafka',
    topic     = 'firewall.events',
    properties.bootstrap.server = 'kafka:9092',
    scan.startup.mode = 'latest'
)
FORMAT PLAIN ENCODE JSON;

-- Authentication events from an identity provider
CREATE SOURCE auth_events (
    event_time   TIMESTAMPTZ,
    user_id      VARCHAR,
    source_ip    VARCHAR,
    country_code VARCHAR,
    result       VARCHAR,   -- 'success' | 'failure' | 'mfa_challenge'
    app_name     VARCHAR,
    session_id   VARCHAR
)
WITH (
    connector = 'kafka',
    topic     = 'auth.events',
    properties.bootstrap.server = 'kafka:9092',
    scan.startup.mode = 'latest'
)
FORMAT PLAIN ENCODE JSON;

-- Endpoint process execution telemetry
CREATE SOURCE endpoint_events (
    event_time   TIMESTAMPTZ,
    host_id      VARCHAR,
    process_name VARCHAR,
    parent_pid   INT,
    child_pid    INT,
    command_line VARCHAR,
    user_name    VARCHAR,
    sha256_hash  VARCHAR
)
WITH (
    connector = 'kafka',
    topic     = 'endpoint.telemetry',
    properties.bootstrap.server = 'kafka:9092',
    scan.startup.mode = 'latest'
)
FORMAT PLAIN ENCODE JSON;"#,
    r#"-- Unified normalized event view across all sources
CREATE MATERIALIZED VIEW normalized_events AS
    -- Network events
    SELECT
        event_time,
        'network'             AS event_category,
        'firewall'            AS event_source,
        rule_id               AS event_id,
        src_ip                AS actor_ip,
        NULL                  AS actor_user,
        dst_ip                AS target_resource,
        CAST(dst_port AS VARCHAR) AS target_detail,
        action                AS outcome,
        bytes_transferred     AS magnitude,
        NULL                  AS raw_command
    FROM firewall_logs

    UNION ALL

    -- Authentication events
    SELECT
        event_time,
        'authentication'      AS event_category,
        'identity_provider'   AS event_source,
        session_id            AS event_id,
        source_ip             AS actor_ip,
        user_id               AS actor_user,
        app_name              AS target_resource,
        country_code          AS target_detail,
        result                AS outcome,
        NULL                  AS magnitude,
        NULL                  AS raw_command
    FROM auth_events

    UNION ALL

    -- Endpoint process events
    SELECT
        event_time,
        'process_execution'   AS event_category,
        'edr_agent'           AS event_source,
        sha256_hash           AS event_id,
        NULL                  AS actor_ip,
        user_name             AS actor_user,
        host_id               AS target_resource,
        process_name          AS target_detail,
        'executed'            AS outcome,
        NULL                  AS magnitude,
        command_line          AS raw_command
    FROM endpoint_events;"#,
    r#"-- Enrichment view: attach asset tier and geo region
CREATE MATERIALIZED VIEW enriched_events AS
SELECT
    ne.*,
    COALESCE(at.asset_tier, 'unknown')   AS asset_tier,
    COALESCE(gi.region, 'unknown')       AS geo_region
FROM normalized_events ne
LEFT JOIN asset_taxonomy  at ON ne.target_resource = at.host_id
LEFT JOIN geo_ip_reference gi ON inet_aton(ne.actor_ip)
                                  BETWEEN gi.ip_range_start AND gi.ip_range_end;"#,
    r#"-- Rule 1: Brute-force login detection
-- Fire when a single IP has more than 10 auth failures in a 5-minute window
CREATE MATERIALIZED VIEW alert_brute_force AS
SELECT
    window_start,
    window_end,
    actor_ip,
    actor_user,
    COUNT(*)            AS failure_count,
    'brute_force'       AS rule_name,
    'high'              AS severity
FROM TUMBLE(
    enriched_events,
    event_time,
    INTERVAL '5 minutes'
)
WHERE event_category = 'authentication'
  AND outcome        = 'failure'
GROUP BY window_start, window_end, actor_ip, actor_user
HAVING COUNT(*) > 10;

-- Rule 2: Impossible travel detection
-- Fire when the same user authenticates from two different countries
-- within a 30-minute window
CREATE MATERIALIZED VIEW alert_impossible_travel AS
SELECT
    a.actor_user,
    a.actor_ip          AS ip_first,
    b.actor_ip          AS ip_second,
    a.geo_region        AS region_first,
    b.geo_region        AS region_second,
    a.event_time        AS time_first,
    b.event_time        AS time_second,
    'impossible_travel' AS rule_name,
    'critical'          AS severity
FROM enriched_events a
JOIN enriched_events b
  ON  a.actor_user   = b.actor_user
  AND a.event_category = 'authentication'
  AND b.event_category = 'authentication'
  AND a.outcome      = 'success'
  AND b.outcome      = 'success'
  AND a.geo_region  <> b.geo_region
  AND b.event_time   > a.event_time
  AND b.event_time   < a.event_time + INTERVAL '30 minutes';

-- Rule 3: Suspicious process execution on high-value assets
-- PowerShell with encoded commands on tier-1 servers
CREATE MATERIALIZED VIEW alert_suspicious_process AS
SELECT
    event_time,
    target_resource     AS host_id,
    actor_user,
    raw_command,
    asset_tier,
    'encoded_powershell' AS rule_name,
    'high'              AS severity
FROM enriched_events
WHERE event_category = 'process_execution'
  AND asset_tier     = 'tier_1'
  AND target_detail  ILIKE '%powershell%'
  AND raw_command    ILIKE '%-EncodedCommand%';

-- Aggregated alert summary: roll-up across all rule views
CREATE MATERIALIZED VIEW alert_summary AS
SELECT window_start, window_end, rule_name, severity, COUNT(*) AS alert_count
FROM TUMBLE(
    (
      SELECT event_time, rule_name, severity FROM alert_brute_force
      UNION ALL
      SELECT time_second AS event_time, rule_name, severity FROM alert_impossible_travel
      UNION ALL
      SELECT event_time, rule_name, severity FROM alert_suspicious_process
    ),
    event_time,
    INTERVAL '1 minute'
)
GROUP BY window_start, window_end, rule_name, severity;"#,
    r#"-- Sink high-severity alerts to a Kafka topic for the SOAR platform
CREATE SINK soar_alerts_sink
FROM (
    SELECT
        NOW()                                  AS alert_fired_at,
        rule_name,
        severity,
        actor_ip,
        actor_user,
        target_resource,
        failure_count                          AS signal_value,
        window_start,
        window_end
    FROM alert_brute_force
    WHERE severity IN ('high', 'critical')

    UNION ALL

    SELECT
        NOW()                                  AS alert_fired_at,
        rule_name,
        severity,
        ip_first                               AS actor_ip,
        actor_user,
        NULL                                   AS target_resource,
        NULL                                   AS signal_value,
        time_first                             AS window_start,
        time_second                            AS window_end
    FROM alert_impossible_travel
    WHERE severity = 'critical'
)
WITH (
    connector = 'kafka',
    topic     = 'siem.alerts.high',
    properties.bootstrap.server = 'kafka:9092'
)
FORMAT PLAIN ENCODE JSON;

-- Sink all alerts to an audit log topic for long-term retention
CREATE SINK alert_audit_sink
FROM alert_summary
WITH (
    connector = 'kafka',
    topic     = 'siem.alerts.audit',
    properties.bootstrap.server = 'kafka:9092'
)
FORMAT PLAIN ENCODE JSON;"#,
];

/// The seed's only deviations from valid SQL, as (text in the seed, replacement, missing
/// column): two statements select a column their relation does not have, and RisingWave
/// rejects them as well (see docs/sql.md, "Known deviation from the seed SQL").
/// - `alert_summary` selects `event_time` from `alert_brute_force`, whose time columns are
///   `window_start` and `window_end`: the brute-force branch uses `window_end AS event_time`.
/// - `soar_alerts_sink` selects `target_resource` from `alert_brute_force`: `NULL AS
///   target_resource`, as the seed's impossible-travel branch of the same sink does.
pub const SEED1_FIXES: [(&str, &str, &str); 2] = [
    (
        "      SELECT event_time, rule_name, severity FROM alert_brute_force\n",
        "      SELECT window_end AS event_time, rule_name, severity FROM alert_brute_force\n",
        "event_time",
    ),
    (
        "        target_resource,\n        failure_count ",
        "        NULL                                   AS target_resource,\n        failure_count ",
        "target_resource",
    ),
];

/// The seed's sources and their Kafka topics.
pub const SOURCE_TOPICS: [(&str, &str); 3] = [
    ("firewall_logs", "firewall.events"),
    ("auth_events", "auth.events"),
    ("endpoint_events", "endpoint.telemetry"),
];

/// The seed's sinks and their Kafka topics.
pub const SINK_TOPICS: [(&str, &str); 2] = [
    ("soar_alerts_sink", "siem.alerts.high"),
    ("alert_audit_sink", "siem.alerts.audit"),
];

/// The reference tables `enriched_events` joins (the seed names them but does not define
/// them): three assets, and geo ranges loaded by COPY from `{GEO_CSV}` (see
/// [`write_geo_csv`]) plus one INSERTed range.
const REFERENCE_SQL: &str = r#"
CREATE TABLE asset_taxonomy (host_id VARCHAR, asset_tier VARCHAR, owner VARCHAR);
INSERT INTO asset_taxonomy VALUES ('dc-01', 'tier_1', 'it'), ('db-01', 'tier_1', 'dba'), ('web-01', 'tier_2', 'web');
CREATE TABLE geo_ip_reference (ip_range_start BIGINT, ip_range_end BIGINT, region VARCHAR, country_code VARCHAR);
COPY geo_ip_reference FROM '{GEO_CSV}' WITH (FORMAT csv, HEADER true);
INSERT INTO geo_ip_reference VALUES (3221225984, 3221226239, 'north_america', 'US');
"#;

/// The content of `asset_taxonomy` as [`REFERENCE_SQL`] loads it: host -> tier.
pub fn initial_tiers() -> HashMap<&'static str, &'static str> {
    [("dc-01", "tier_1"), ("db-01", "tier_1"), ("web-01", "tier_2")].into()
}

/// Writes the CSV that [`REFERENCE_SQL`] COPYs: the first three ranges of [`GEO`].
pub fn write_geo_csv(path: &Path) {
    let mut csv = String::from("ip_range_start,ip_range_end,region,country_code\n");
    for (s, e, r, c) in &GEO[..3] {
        csv.push_str(&format!("{},{},{r},{c}\n", ip_num(s), ip_num(e)));
    }
    std::fs::write(path, csv).unwrap();
    assert_eq!(
        ip_num(GEO[3].0),
        3221225984,
        "the INSERTed range in the SQL is 192.0.2.0/24"
    );
}

/// Reads the whole geo table.
pub const GEO_QUERY: &str = "SELECT ip_range_start, ip_range_end, region, country_code FROM geo_ip_reference";

/// The rows of `geo_ip_reference` once loaded (all of [`GEO`]).
pub fn geo_rows() -> Vec<Row> {
    GEO.iter()
        .map(|(s, e, r, c)| row![ip_num(s), ip_num(e), r, c])
        .collect()
}

/// The seed's SQL blocks with [`SEED1_FIXES`] applied.
fn fixed_blocks() -> Vec<String> {
    let mut blocks: Vec<String> = SEED1_BLOCKS.iter().map(|b| b.to_string()).collect();
    for (seed, fixed, _) in SEED1_FIXES {
        let i = blocks
            .iter()
            .position(|b| b.contains(seed))
            .unwrap_or_else(|| panic!("{seed:?} is not in the seed SQL"));
        blocks[i] = replace_once(&blocks[i], seed, fixed);
    }
    blocks
}

/// The `WITH` clause of a seed source reading `topic`, as the seed writes it.
fn kafka_source_with(topic: &str) -> String {
    format!(
        "WITH (\n    connector = 'kafka',\n    topic     = '{topic}',\n    properties.bootstrap.server = \
         '{SEED_BOOTSTRAP}',\n    scan.startup.mode = 'latest'\n)"
    )
}

/// Pipeline 1 as statements for `exec_all`: the seed's sources, the reference tables
/// ([`REFERENCE_SQL`], COPY from `geo_csv`), the seed's views, and with Kafka the seed's
/// two sinks (with files, no sinks: see [`soar_sink_file_sql`]). The seed's text is kept
/// but for [`SEED1_FIXES`] and the connectors.
pub fn pipeline1_sql(conn: &Connectors, geo_csv: &Path) -> String {
    let blocks = fixed_blocks();
    let reference = REFERENCE_SQL.replace("{GEO_CSV}", geo_csv.to_str().unwrap());
    let sql = match conn {
        Connectors::Kafka { bootstrap } => {
            let sql = format!("{}\n{reference}\n{}\n", blocks[0], blocks[1..].join("\n\n"));
            with_bootstrap(&sql, 5, bootstrap)
        }
        Connectors::File { auth, fw, ep } => {
            let mut sources = blocks[0].clone();
            for ((_, topic), path) in SOURCE_TOPICS.iter().zip([fw, auth, ep]) {
                sources = replace_once(
                    &sources,
                    &kafka_source_with(topic),
                    &format!("WITH (connector = 'file', path = '{}')", path.display()),
                );
            }
            format!("{sources}\n{reference}\n{}\n", blocks[1..4].join("\n\n"))
        }
    };
    assert!(!sql.contains(&format!("'{SEED_BOOTSTRAP}'")));
    sql
}

/// The seed's `soar_alerts_sink` (fixed) writing JSON lines to `path` instead of its topic.
pub fn soar_sink_file_sql(path: &Path) -> String {
    let sinks = &fixed_blocks()[4];
    let end = sinks.find("FORMAT PLAIN ENCODE JSON;").unwrap() + "FORMAT PLAIN ENCODE JSON;".len();
    let with = format!(
        "WITH (\n    connector = 'kafka',\n    topic     = '{}',\n    properties.bootstrap.server = '{SEED_BOOTSTRAP}'\n)",
        SINK_TOPICS[0].1
    );
    format!(
        "{}\n",
        replace_once(
            &sinks[..end],
            &with,
            &format!("WITH (\n    connector = 'file',\n    path = '{}'\n)", path.display()),
        )
    )
}

/// The seed's `CREATE MATERIALIZED VIEW name AS ...` statement, as the seed writes it.
pub fn seed_view_sql(name: &str) -> String {
    let head = format!("CREATE MATERIALIZED VIEW {name} AS");
    SEED1_BLOCKS
        .iter()
        .flat_map(|b| b.split(';'))
        .map(|s| s.trim())
        .map(|s| &s[s.find("CREATE").unwrap_or(0)..])
        .find(|s| s.starts_with(&head))
        .unwrap_or_else(|| panic!("the seed has no view {name}"))
        .to_string()
}

// ---------------------------------------------------------------------------------------
// Events and expected results
// ---------------------------------------------------------------------------------------

/// Geo ranges (the first three loaded by COPY, the last by INSERT), as inet_aton integers.
pub const GEO: [(&str, &str, &str, &str); 4] = [
    ("10.0.0.0", "10.255.255.255", "internal", "ZZ"),
    ("203.0.113.0", "203.0.113.255", "apac", "AU"),
    ("198.51.100.0", "198.51.100.255", "europe", "DE"),
    ("192.0.2.0", "192.0.2.255", "north_america", "US"),
];

pub fn ip_num(ip: &str) -> i64 {
    ip.split('.').fold(0i64, |acc, o| acc * 256 + o.parse::<i64>().unwrap())
}

pub fn region(ip: &str) -> &'static str {
    let n = ip_num(ip);
    GEO.iter()
        .find(|(s, e, _, _)| ip_num(s) <= n && n <= ip_num(e))
        .map(|g| g.2)
        .unwrap_or("unknown")
}

#[derive(Clone)]
pub struct Login {
    pub user: String,
    pub ip: String,
    pub result: &'static str,
    pub t: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Exec {
    pub host: &'static str,
    pub name: &'static str,
    pub cmd: &'static str,
    pub user: &'static str,
    pub t: DateTime<Utc>,
}

pub fn login(user: &str, ip: &str, result: &'static str, t: DateTime<Utc>) -> Login {
    Login {
        user: user.into(),
        ip: ip.into(),
        result,
        t,
    }
}

pub fn login_json(l: &Login, n: usize) -> String {
    json!({"event_time": json_time(l.t, n), "user_id": l.user, "source_ip": l.ip, "country_code": "XX",
           "result": l.result, "app_name": "vpn", "session_id": format!("s-{n}")})
    .to_string()
}

pub fn exec_json(e: &Exec, n: usize) -> String {
    json!({"event_time": json_time(e.t, n), "host_id": e.host, "process_name": e.name, "parent_pid": 1,
           "child_pid": 1000 + n, "command_line": e.cmd, "user_name": e.user, "sha256_hash": format!("h{n}")})
    .to_string()
}

/// Network noise for `firewall_logs`: its target_resource (dst_ip) matches no asset, its
/// actor no alert.
pub fn firewall_noise(base: DateTime<Utc>) -> Vec<String> {
    (0..5)
        .map(|i| {
            json!({"event_time": json_time(at(base, i * 30), 0), "src_ip": "10.0.0.5", "dst_ip": "dc-01",
                   "src_port": 40000 + i, "dst_port": 445, "protocol": "tcp", "bytes_transferred": 100 * i,
                   "action": "deny", "rule_id": format!("r{i}")})
            .to_string()
        })
        .collect()
}

pub fn pipeline1_events(base: DateTime<Utc>) -> (Vec<Login>, Vec<Exec>) {
    let mut l = Vec::new();
    // 11 failures (admin) in W0: fires. 10 failures (root) in W0: does not.
    for i in 0..11 {
        l.push(login("admin", "198.51.100.20", "failure", at(base, i * 20)));
    }
    for i in 0..10 {
        l.push(login("root", "198.51.100.21", "failure", at(base, i * 20)));
    }
    // 12 failures from one IP split over two users: grouped per user, no alert.
    for i in 0..12 {
        l.push(login(
            if i % 2 == 0 { "a" } else { "b" },
            "203.0.113.9",
            "failure",
            at(base, i * 10),
        ));
    }
    // 15 failures in W1 from an internal IP: fires; plus an mfa_challenge that is no failure.
    for i in 0..15 {
        l.push(login("svc", "10.1.2.3", "failure", at(base, 300 + i * 15)));
    }
    l.push(login("svc", "10.1.2.3", "mfa_challenge", at(base, 310)));
    // Impossible travel: alice internal -> apac -> internal (two alerts, the internal pair
    // is the same region); bob 35 minutes apart; carol exactly 30 minutes apart (strict <);
    // dave from an unmapped IP then internal; erin's first login failed; frank at the same
    // instant from two regions (strict >).
    l.push(login("alice", "10.1.1.1", "success", at(base, 60)));
    l.push(login("alice", "203.0.113.50", "success", at(base, 360)));
    l.push(login("alice", "10.1.1.2", "success", at(base, 420)));
    l.push(login("bob", "198.51.100.3", "success", at(base, -2400)));
    l.push(login("bob", "192.0.2.4", "success", at(base, -300)));
    l.push(login("carol", "198.51.100.4", "success", at(base, -1800)));
    l.push(login("carol", "203.0.113.4", "success", at(base, 0)));
    l.push(login("dave", "172.16.0.1", "success", at(base, 100)));
    l.push(login("dave", "10.3.3.3", "success", at(base, 700)));
    l.push(login("erin", "203.0.113.7", "failure", at(base, 100)));
    l.push(login("erin", "198.51.100.8", "success", at(base, 200)));
    l.push(login("frank", "203.0.113.8", "success", at(base, 150)));
    l.push(login("frank", "192.0.2.8", "success", at(base, 150)));

    let e = vec![
        Exec {
            host: "dc-01",
            name: "PowerShell.exe",
            cmd: "powershell -EncodedCommand SQBFAFgA",
            user: "adm",
            t: at(base, 30),
        },
        Exec {
            host: "dc-01",
            name: "powershell.exe",
            cmd: "powershell -encodedcommand abc",
            user: "x",
            t: at(base, 95),
        },
        Exec {
            host: "web-01",
            name: "powershell.exe",
            cmd: "-EncodedCommand zz",
            user: "w",
            t: at(base, 40),
        },
        Exec {
            host: "db-01",
            name: "pwsh.exe",
            cmd: "pwsh -EncodedCommand zz",
            user: "d",
            t: at(base, 50),
        },
        Exec {
            host: "db-01",
            name: "powershell.exe",
            cmd: "Get-Process",
            user: "d",
            t: at(base, 55),
        },
        Exec {
            host: "db-01",
            name: "powershell.exe",
            cmd: "powershell.exe -EncodedCommand QQ==",
            user: "d",
            t: at(base, 65),
        },
        Exec {
            host: "ws-99",
            name: "powershell.exe",
            cmd: "-EncodedCommand zz",
            user: "u",
            t: at(base, 70),
        },
    ];
    (l, e)
}

pub struct Expected1 {
    pub brute: Vec<Row>,
    pub travel: Vec<Row>,
    pub susp: Vec<Row>,
    pub summary: Vec<Row>,
    pub sink: Vec<Row>,
}

/// Pipeline 1's alerts computed in plain Rust; `tiers` is the asset table's content.
pub fn expected1(l: &[Login], e: &[Exec], tiers: &HashMap<&str, &str>) -> Expected1 {
    let mut fails: BTreeMap<(i64, String, String), i64> = BTreeMap::new();
    for x in l.iter().filter(|x| x.result == "failure") {
        *fails
            .entry((floor_to(x.t, FIVE_MIN).timestamp(), x.ip.clone(), x.user.clone()))
            .or_default() += 1;
    }
    let mut summary_in: Vec<(DateTime<Utc>, &str, &str)> = Vec::new();
    let (mut brute, mut travel, mut susp, mut sink) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((w, ip, user), n) in fails.into_iter().filter(|(_, n)| *n > 10) {
        let ws = DateTime::from_timestamp(w, 0).unwrap();
        let we = ws + Duration::seconds(FIVE_MIN);
        brute.push(row![ts(ws), ts(we), ip, user, n, "brute_force", "high"]);
        sink.push(row!["brute_force", "high", ip, user, "NULL", n, ts(ws), ts(we)]);
        summary_in.push((we, "brute_force", "high"));
    }
    let ok: Vec<&Login> = l.iter().filter(|x| x.result == "success").collect();
    for a in &ok {
        for b in &ok {
            let (ra, rb) = (region(&a.ip), region(&b.ip));
            if a.user == b.user && ra != rb && b.t > a.t && b.t < a.t + Duration::minutes(30) {
                travel.push(row![
                    a.user,
                    a.ip,
                    b.ip,
                    ra,
                    rb,
                    ts(a.t),
                    ts(b.t),
                    "impossible_travel",
                    "critical"
                ]);
                sink.push(row![
                    "impossible_travel",
                    "critical",
                    a.ip,
                    a.user,
                    "NULL",
                    "NULL",
                    ts(a.t),
                    ts(b.t)
                ]);
                summary_in.push((b.t, "impossible_travel", "critical"));
            }
        }
    }
    for x in e {
        let tier = tiers.get(x.host).copied().unwrap_or("unknown");
        if tier == "tier_1"
            && x.name.to_lowercase().contains("powershell")
            && x.cmd.to_lowercase().contains("-encodedcommand")
        {
            susp.push(row![ts(x.t), x.host, x.user, x.cmd, tier, "encoded_powershell", "high"]);
            summary_in.push((x.t, "encoded_powershell", "high"));
        }
    }
    let mut counts: BTreeMap<(i64, &str, &str), i64> = BTreeMap::new();
    for (t, rule, sev) in summary_in {
        *counts.entry((floor_to(t, 60).timestamp(), rule, sev)).or_default() += 1;
    }
    let summary = counts
        .into_iter()
        .map(|((w, rule, sev), n)| {
            let ws = DateTime::from_timestamp(w, 0).unwrap();
            row![ts(ws), ts(ws + Duration::seconds(60)), rule, sev, n]
        })
        .collect();
    Expected1 {
        brute,
        travel,
        susp,
        summary,
        sink,
    }
}

pub async fn check_pipeline1(client: &tokio_postgres::Client, exp: &Expected1) {
    wait_for(
        client,
        "SELECT window_start, window_end, actor_ip, actor_user, failure_count, rule_name, severity FROM alert_brute_force",
        &exp.brute,
    )
    .await;
    wait_for(
        client,
        "SELECT actor_user, ip_first, ip_second, region_first, region_second, time_first, time_second, rule_name, \
         severity FROM alert_impossible_travel",
        &exp.travel,
    )
    .await;
    wait_for(
        client,
        "SELECT event_time, host_id, actor_user, raw_command, asset_tier, rule_name, severity FROM alert_suspicious_process",
        &exp.susp,
    )
    .await;
    wait_for(
        client,
        "SELECT window_start, window_end, rule_name, severity, alert_count FROM alert_summary",
        &exp.summary,
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Sink messages
// ---------------------------------------------------------------------------------------

/// The columns of a `soar_alerts_sink` row but `alert_fired_at` (the time it was sent).
pub const SOAR_COLUMNS: [&str; 8] = [
    "rule_name",
    "severity",
    "actor_ip",
    "actor_user",
    "target_resource",
    "signal_value",
    "window_start",
    "window_end",
];

/// The columns of an `alert_audit_sink` row (all of `alert_summary`).
pub const AUDIT_COLUMNS: [&str; 5] = ["window_start", "window_end", "rule_name", "severity", "alert_count"];

/// The `cols` of one JSON sink row, canonicalized like query rows (RFC 3339 timestamps
/// parsed and rendered with `ts`, `NULL` for null).
pub fn json_row(text: &str, cols: &[&str]) -> Row {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("sink row {text}: {e}"));
    cols.iter()
        .map(|c| match &v[*c] {
            serde_json::Value::Null => "NULL".to_string(),
            serde_json::Value::String(s) => match DateTime::parse_from_rfc3339(s) {
                Ok(t) => ts(t.with_timezone(&Utc)),
                Err(_) => s.clone(),
            },
            other => other.to_string(),
        })
        .collect()
}

/// The `alert_fired_at` of a `soar_alerts_sink` row, checked to lie in `[from, to]` (with
/// 5 s of slack for clocks).
pub fn check_fired_at(text: &str, from: DateTime<Utc>, to: DateTime<Utc>) {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("sink row {text}: {e}"));
    let f = v["alert_fired_at"].as_str().unwrap_or("");
    let t = DateTime::parse_from_rfc3339(f)
        .unwrap_or_else(|e| panic!("alert_fired_at {f:?}: {e}"))
        .with_timezone(&Utc);
    assert!(
        t >= from - Duration::seconds(5) && t <= to + Duration::seconds(5),
        "alert_fired_at {t} not in [{from}, {to}]: {text}"
    );
}
