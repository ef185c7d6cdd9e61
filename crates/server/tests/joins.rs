//! Outer joins maintained incrementally over tables: the expected rows are written out by
//! hand from the SQL semantics of LEFT JOIN (unmatched and NULL-key left rows padded with
//! NULLs, duplicates kept), and must follow inserts and deletes on either side.

use rampart_testkit as common;

use tokio_postgres::Client;

/// The view's rows as sorted text, NULL as "-".
async fn rows(client: &Client, sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    for m in client.simple_query(sql).await.unwrap() {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            let cells: Vec<String> = (0..r.len()).map(|i| r.get(i).unwrap_or("-").to_string()).collect();
            out.push(cells.join("|"));
        }
    }
    out.sort();
    out
}

async fn expect(client: &Client, sql: &str, expected: &[&str]) {
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(rows(client, sql).await, want, "{sql}");
}

const VIEW: &str = "SELECT k, v, x FROM lj";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equi_left_join_pads_unmatched_and_null_keys_and_follows_changes() {
    let handle = common::server().await;
    let client = common::connect(&handle).await;
    common::exec_all(
        &client,
        "CREATE TABLE l (k VARCHAR, v INT);
         CREATE TABLE r (k VARCHAR, x VARCHAR);
         INSERT INTO l VALUES ('a', 1), ('a', 1), ('b', 2), (NULL, 3);
         INSERT INTO r VALUES ('a', 'A');
         CREATE MATERIALIZED VIEW lj AS SELECT l.k, l.v, r.x FROM l LEFT JOIN r ON l.k = r.k;",
    )
    .await;
    // Duplicated left rows match twice; 'b' has no match; the NULL key never matches.
    expect(&client, VIEW, &["a|1|A", "a|1|A", "b|2|-", "-|3|-"]).await;

    // A second right row for 'a' doubles its matches; a right row for 'b' replaces the padding.
    common::exec_all(&client, "INSERT INTO r VALUES ('a', 'A2'), ('b', 'B');").await;
    expect(&client, VIEW, &["a|1|A", "a|1|A", "a|1|A2", "a|1|A2", "b|2|B", "-|3|-"]).await;

    // Deleting the right rows retracts the matches and brings the padding back.
    common::exec_all(&client, "DELETE FROM r WHERE k = 'a';").await;
    expect(&client, VIEW, &["a|1|-", "a|1|-", "b|2|B", "-|3|-"]).await;

    // Left-side deletes remove exactly the rows of that left row.
    common::exec_all(&client, "DELETE FROM l WHERE k = 'b';").await;
    expect(&client, VIEW, &["a|1|-", "a|1|-", "-|3|-"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_left_join_matches_by_between_and_pads_the_rest() {
    let handle = common::server().await;
    let client = common::connect(&handle).await;
    common::exec_all(
        &client,
        "CREATE TABLE ev (ip VARCHAR);
         CREATE TABLE geo (lo BIGINT, hi BIGINT, region VARCHAR);
         INSERT INTO ev VALUES ('10.0.0.5'), ('192.168.1.1'), ('not-an-ip');
         INSERT INTO geo VALUES (167772160, 184549375, 'internal');
         CREATE MATERIALIZED VIEW g AS SELECT ev.ip, COALESCE(geo.region, 'unknown') AS region
             FROM ev LEFT JOIN geo ON inet_aton(ev.ip) BETWEEN geo.lo AND geo.hi;",
    )
    .await;
    // 10.0.0.5 = 167772165 lies in 10.0.0.0/8; the others match no range.
    let q = "SELECT ip, region FROM g";
    expect(
        &client,
        q,
        &["10.0.0.5|internal", "192.168.1.1|unknown", "not-an-ip|unknown"],
    )
    .await;
    // 192.168.0.0/16 = 3232235520 ..= 3232301055.
    common::exec_all(&client, "INSERT INTO geo VALUES (3232235520, 3232301055, 'lan');").await;
    expect(
        &client,
        q,
        &["10.0.0.5|internal", "192.168.1.1|lan", "not-an-ip|unknown"],
    )
    .await;
    // An overlapping range (10.0.0.0/24 = 167772160 ..= 167772415) matches too; removing
    // ranges retracts their matches, and with none left the row is padded again.
    common::exec_all(&client, "INSERT INTO geo VALUES (167772160, 167772415, 'office');").await;
    expect(
        &client,
        q,
        &[
            "10.0.0.5|internal",
            "10.0.0.5|office",
            "192.168.1.1|lan",
            "not-an-ip|unknown",
        ],
    )
    .await;
    common::exec_all(&client, "DELETE FROM geo WHERE region = 'internal';").await;
    expect(&client, q, &["10.0.0.5|office", "192.168.1.1|lan", "not-an-ip|unknown"]).await;
    common::exec_all(&client, "DELETE FROM geo WHERE region = 'office';").await;
    common::exec_all(&client, "DELETE FROM ev WHERE ip = '192.168.1.1';").await;
    expect(&client, q, &["10.0.0.5|unknown", "not-an-ip|unknown"]).await;
    // A range with a NULL bound covers nothing (`x BETWEEN NULL AND h` is never true), for
    // rows already there and rows that come later.
    common::exec_all(
        &client,
        "INSERT INTO geo VALUES (NULL, 4000000000, 'null-low'), (0, NULL, 'null-high');
         INSERT INTO ev VALUES ('10.9.9.9');",
    )
    .await;
    expect(
        &client,
        q,
        &["10.0.0.5|unknown", "10.9.9.9|unknown", "not-an-ip|unknown"],
    )
    .await;
    let plan = rows(
        &client,
        "EXPLAIN SELECT ev.ip FROM ev LEFT JOIN geo ON inet_aton(ev.ip) BETWEEN geo.lo AND geo.hi",
    )
    .await;
    assert!(
        plan.iter()
            .any(|l| l.contains("Range join (left) inet_aton(ev.ip) between geo.lo and geo.hi")),
        "{plan:?}"
    );
}

/// An equi left join feeding a range join on a column of its left input (the seed's
/// `enriched_events`) runs as one enrichment operator: it must give what the two joins give
/// by the SQL semantics, written out by hand here, and follow changes to either table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrichment_join_follows_both_tables_and_its_input() {
    let handle = common::server().await;
    let client = common::connect(&handle).await;
    // 10.0.0.0/8 = 167772160 ..= 184549375; 10.0.0.0/24 = 167772160 ..= 167772415;
    // 192.168.0.0/16 = 3232235520 ..= 3232301055.
    common::exec_all(
        &client,
        "CREATE TABLE ev (host VARCHAR, ip VARCHAR, n INT);
         CREATE TABLE assets (host_id VARCHAR, tier VARCHAR);
         CREATE TABLE geo (lo BIGINT, hi BIGINT, region VARCHAR);
         INSERT INTO assets VALUES ('h1', 'tier_1'), ('h2', 'tier_2');
         INSERT INTO geo VALUES (167772160, 184549375, 'internal'), (3232235520, 3232301055, 'lan');
         INSERT INTO ev VALUES ('h1', '10.0.0.5', 1), ('h1', '10.0.0.5', 1), ('h2', '192.168.1.1', 2),
                               ('h3', '10.1.2.3', 3), (NULL, '192.168.9.9', 4), ('h2', NULL, 5),
                               ('h1', '8.8.8.8', 6);
         CREATE MATERIALIZED VIEW enriched AS
             SELECT ev.*, COALESCE(a.tier, 'unknown') AS tier, COALESCE(g.region, 'unknown') AS region
             FROM ev LEFT JOIN assets a ON ev.host = a.host_id
                     LEFT JOIN geo g ON inet_aton(ev.ip) BETWEEN g.lo AND g.hi;
         CREATE MATERIALIZED VIEW enriched_wide AS
             SELECT * FROM ev LEFT JOIN assets a ON ev.host = a.host_id
                              LEFT JOIN geo g ON inet_aton(ev.ip) BETWEEN g.lo AND g.hi;
         CREATE MATERIALIZED VIEW enriched_inner AS
             SELECT ev.n, a.tier, g.region FROM ev LEFT JOIN assets a ON ev.host = a.host_id
                                                   JOIN geo g ON inet_aton(ev.ip) BETWEEN g.lo AND g.hi;",
    )
    .await;
    let plan = rows(
        &client,
        "EXPLAIN SELECT ev.n, a.tier, g.region FROM ev LEFT JOIN assets a ON ev.host = a.host_id
                LEFT JOIN geo g ON inet_aton(ev.ip) BETWEEN g.lo AND g.hi",
    )
    .await;
    assert!(plan.iter().any(|l| l.contains("enrichment operator")), "{plan:?}");
    // The enrichment join retracts an output on the worker of the input row it came from
    // (the views below check every change of both tables): its view keeps rows in place.
    let plan = rows(
        &client,
        "EXPLAIN CREATE MATERIALIZED VIEW e2 AS SELECT ev.n, a.tier, g.region FROM ev \
         LEFT JOIN assets a ON ev.host = a.host_id LEFT JOIN geo g ON inet_aton(ev.ip) BETWEEN g.lo AND g.hi",
    )
    .await;
    assert!(
        plan.iter()
            .any(|l| l.contains("each kept on the worker that produced it")),
        "{plan:?}"
    );
    let q = "SELECT n, tier, region FROM enriched";
    let wide = "SELECT n, host_id, tier, lo, region FROM enriched_wide";
    let inner = "SELECT n, tier, region FROM enriched_inner";
    // Duplicates stay duplicated; a NULL host or IP, an unknown host and an IP in no range
    // are padded.
    expect(
        &client,
        q,
        &[
            "1|tier_1|internal",
            "1|tier_1|internal",
            "2|tier_2|lan",
            "3|unknown|internal",
            "4|unknown|lan",
            "5|tier_2|unknown",
            "6|tier_1|unknown",
        ],
    )
    .await;
    expect(
        &client,
        wide,
        &[
            "1|h1|tier_1|167772160|internal",
            "1|h1|tier_1|167772160|internal",
            "2|h2|tier_2|3232235520|lan",
            "3|-|-|167772160|internal",
            "4|-|-|3232235520|lan",
            "5|h2|tier_2|-|-",
            "6|h1|tier_1|-|-",
        ],
    )
    .await;
    expect(
        &client,
        inner,
        &[
            "1|tier_1|internal",
            "1|tier_1|internal",
            "2|tier_2|lan",
            "3|-|internal",
            "4|-|lan",
        ],
    )
    .await;

    // Table changes: h3 appears, h1 changes tier, an overlapping range adds a second match
    // for 10.0.0.5, the lan range goes.
    common::exec_all(
        &client,
        "INSERT INTO assets VALUES ('h3', 'tier_3');
         DELETE FROM assets WHERE host_id = 'h1';
         INSERT INTO assets VALUES ('h1', 'tier_0');
         INSERT INTO geo VALUES (167772160, 167772415, 'office');
         DELETE FROM geo WHERE region = 'lan';",
    )
    .await;
    expect(
        &client,
        q,
        &[
            "1|tier_0|internal",
            "1|tier_0|internal",
            "1|tier_0|office",
            "1|tier_0|office",
            "2|tier_2|unknown",
            "3|tier_3|internal",
            "4|unknown|unknown",
            "5|tier_2|unknown",
            "6|tier_0|unknown",
        ],
    )
    .await;
    expect(
        &client,
        inner,
        &[
            "1|tier_0|internal",
            "1|tier_0|internal",
            "1|tier_0|office",
            "1|tier_0|office",
            "3|tier_3|internal",
        ],
    )
    .await;

    // A second asset row for h2 doubles its matches; input deletes and inserts follow the
    // tables as they now are.
    common::exec_all(
        &client,
        "INSERT INTO assets VALUES ('h2', 'tier_2b');
         DELETE FROM ev WHERE n = 1;
         INSERT INTO ev VALUES ('h3', '192.168.1.1', 7), ('h1', '10.0.0.1', 8);",
    )
    .await;
    expect(
        &client,
        q,
        &[
            "2|tier_2|unknown",
            "2|tier_2b|unknown",
            "3|tier_3|internal",
            "4|unknown|unknown",
            "5|tier_2|unknown",
            "5|tier_2b|unknown",
            "6|tier_0|unknown",
            "7|tier_3|unknown",
            "8|tier_0|internal",
            "8|tier_0|office",
        ],
    )
    .await;
    // Emptying both tables pads every row.
    common::exec_all(&client, "DELETE FROM assets; DELETE FROM geo;").await;
    expect(
        &client,
        q,
        &[
            "2|unknown|unknown",
            "3|unknown|unknown",
            "4|unknown|unknown",
            "5|unknown|unknown",
            "6|unknown|unknown",
            "7|unknown|unknown",
            "8|unknown|unknown",
        ],
    )
    .await;
    expect(&client, inner, &[]).await;
}

/// The seed's shape over a file source read in several batches, so both workers read some
/// of it: `norm` (a projection of the source) keeps its rows on the worker that read them,
/// and the enrichment join over it reads them there. A change to either table must retract
/// and re-emit each affected output on the worker that emitted it. The expected counts are
/// computed here from the events and the tables as the SQL defines them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrichment_join_over_a_view_read_by_both_workers_follows_table_changes() {
    let handle = common::server().await;
    let client = common::connect(&handle).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ev.jsonl");
    // About six reader batches of 1,024 lines, handed to the workers in turn.
    const N: usize = 6300;
    let (hosts, ips) = (["h1", "h2", "h3"], ["10.0.0.5", "192.168.1.1", "8.8.8.8"]);
    let event = |i: usize| (hosts[i % 3], ips[(i / 3) % 3]);
    let lines: Vec<String> = (0..N)
        .map(|i| format!(r#"{{"host":"{}","ip":"{}","n":{i}}}"#, event(i).0, event(i).1))
        .collect();
    common::append_lines(&path, &lines);
    common::exec_all(
        &client,
        &format!(
            "CREATE SOURCE ev (host VARCHAR, ip VARCHAR, n INT) \
             WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;
             CREATE TABLE assets (host_id VARCHAR, tier VARCHAR);
             CREATE TABLE geo (lo BIGINT, hi BIGINT, region VARCHAR);
             INSERT INTO assets VALUES ('h1', 'tier_1'), ('h2', 'tier_2');
             INSERT INTO geo VALUES (167772160, 184549375, 'internal'), (3232235520, 3232301055, 'lan');
             CREATE MATERIALIZED VIEW norm AS SELECT host, ip, n FROM ev;
             CREATE MATERIALIZED VIEW enriched AS
                 SELECT norm.n, COALESCE(a.tier, 'unknown') AS tier, COALESCE(g.region, 'unknown') AS region
                 FROM norm LEFT JOIN assets a ON norm.host = a.host_id
                           LEFT JOIN geo g ON inet_aton(norm.ip) BETWEEN g.lo AND g.hi;",
            path.display()
        ),
    )
    .await;
    // 10.0.0.5 is in 10.0.0.0/8 ('internal'), 192.168.1.1 in 192.168.0.0/16 ('lan').
    let counts = |tier: &dyn Fn(&str) -> &'static str, region: &dyn Fn(&str) -> &'static str| {
        let mut by: std::collections::BTreeMap<(&str, &str), usize> = Default::default();
        for i in 0..N {
            let (host, ip) = event(i);
            *by.entry((tier(host), region(ip))).or_default() += 1;
        }
        by.into_iter()
            .map(|((t, r), n)| vec![t.to_string(), r.to_string(), n.to_string()])
            .collect::<Vec<_>>()
    };
    let q = "SELECT tier, region, COUNT(*) FROM enriched GROUP BY tier, region";
    let region = |ip: &str| match ip {
        "10.0.0.5" => "internal",
        "192.168.1.1" => "lan",
        _ => "unknown",
    };
    let tiers = |h1: &'static str, h3: &'static str| {
        move |host: &str| match host {
            "h1" => h1,
            "h2" => "tier_2",
            _ => h3,
        }
    };
    common::wait_for(&client, q, &counts(&tiers("tier_1", "unknown"), &region)).await;

    common::exec_all(&client, "DELETE FROM assets WHERE host_id = 'h1';").await;
    common::wait_for(&client, q, &counts(&tiers("unknown", "unknown"), &region)).await;
    common::exec_all(&client, "INSERT INTO assets VALUES ('h3', 'tier_3');").await;
    common::wait_for(&client, q, &counts(&tiers("unknown", "tier_3"), &region)).await;
    common::exec_all(&client, "DELETE FROM geo WHERE region = 'lan';").await;
    let no_lan = |ip: &str| if ip == "10.0.0.5" { "internal" } else { "unknown" };
    common::wait_for(&client, q, &counts(&tiers("unknown", "tier_3"), &no_lan)).await;
    // Every event is still there exactly once.
    common::wait_for(&client, "SELECT COUNT(*) FROM enriched", &[vec![N.to_string()]]).await;
}
