//! Outer joins maintained incrementally over tables: the expected rows are written out by
//! hand from the SQL semantics of LEFT JOIN (unmatched and NULL-key left rows padded with
//! NULLs, duplicates kept), and must follow inserts and deletes on either side.

mod common;

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
    let plan = rows(
        &client,
        "EXPLAIN SELECT ev.ip FROM ev LEFT JOIN geo ON inet_aton(ev.ip) BETWEEN geo.lo AND geo.hi",
    )
    .await;
    assert!(plan.iter().any(|l| l.contains("range join")), "{plan:?}");
}
