//! Aggregates without GROUP BY keep exactly one row, as in PostgreSQL: COUNT is 0 and the
//! other aggregates NULL over no rows (expected values from PostgreSQL's semantics).

use rampart_testkit as common;

async fn row(client: &tokio_postgres::Client, sql: &str) -> String {
    let mut rows = Vec::new();
    for m in client.simple_query(sql).await.unwrap() {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            rows.push(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    assert_eq!(rows.len(), 1, "{sql} must return exactly one row: {rows:?}");
    rows.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_aggregate_has_one_row_from_empty_to_full_and_back() {
    let handle = common::server().await;
    let client = common::connect(&handle).await;
    common::exec_all(
        &client,
        "CREATE TABLE t (v INT);
         CREATE MATERIALIZED VIEW totals AS SELECT COUNT(*) AS n, SUM(v) AS s, MAX(v) AS m FROM t;",
    )
    .await;
    assert_eq!(row(&client, "SELECT n, s, m FROM totals").await, "0|NULL|NULL");
    common::exec_all(&client, "INSERT INTO t VALUES (3), (4);").await;
    assert_eq!(row(&client, "SELECT n, s, m FROM totals").await, "2|7|4");
    common::exec_all(&client, "DELETE FROM t;").await;
    assert_eq!(row(&client, "SELECT n, s, m FROM totals").await, "0|NULL|NULL");
}
