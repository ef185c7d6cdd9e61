//! What a restart keeps besides rows: `latest` start positions of file and Kafka sources,
//! and dropped objects staying dropped.

use std::io::Write;

use rampart_testkit::broker;

use broker::Broker;

use super::*;

/// What a restart must keep besides rows: a `latest` file source starts where it started
/// when it was created (not at the end of the file again, which would lose the lines
/// appended while the server was down), and a dropped object stays dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_latest_start_positions_and_drops() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let file = dir.join("ids.jsonl");
    let ids = |r: std::ops::Range<i64>| r.map(|i| format!("{{\"id\": {i}}}\n")).collect::<String>();
    std::fs::write(&file, ids(0..5)).unwrap();

    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ids (id INT) WITH (connector = 'file', path = '{}', scan.startup.mode = 'latest')
               FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW new_ids AS SELECT id FROM ids;
             CREATE MATERIALIZED VIEW doomed AS SELECT COUNT(*) AS n FROM ids;
             DROP MATERIALIZED VIEW doomed;",
            file.display()
        ))
        .await
        .unwrap();
    let append = |text: String| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    append(ids(5..8));
    let want = |r: std::ops::Range<i64>| r.map(|i| vec![i.to_string()]).collect::<Vec<_>>();
    wait_rows(&client, "SELECT id FROM new_ids", &want(5..8)).await;
    drop(client);

    sigkill(server);
    append(ids(8..10)); // while the server is down
    let server = start(&data, &log);
    let client = connect(&server).await;
    wait_rows(&client, "SELECT id FROM new_ids", &want(5..10)).await;
    let views = rows(&client, "SHOW MATERIALIZED VIEWS").await;
    assert_eq!(views, vec![vec!["new_ids".to_string()]]);
}

/// A Kafka `latest` source keeps the offsets it started at when it was created: after a
/// restart it replays from them, including what arrived while the server was down. (The
/// topic starts empty: the test broker reports too-low end offsets after batches, see
/// `rampart_testkit::broker`, so "latest" over existing messages is not testable with it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_latest_start_survives_restart() {
    let broker = Broker::start();
    broker.create_topic("ids", 1).await;
    let tmp = tempfile::tempdir().unwrap();
    let (data, log) = (tmp.path().join("data"), tmp.path().join("server.log"));
    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ids (id INT) WITH (connector = 'kafka', topic = 'ids',
               properties.bootstrap.server = '{}', scan.startup.mode = 'latest') FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW new_ids AS SELECT id FROM ids;",
            broker.bootstrap()
        ))
        .await
        .unwrap();
    broker.produce("ids", &id_messages(0..3));
    let want = |r: std::ops::Range<i64>| r.map(|i| vec![i.to_string()]).collect::<Vec<_>>();
    wait_rows(&client, "SELECT id FROM new_ids", &want(0..3)).await;
    drop(client);
    sigkill(server);
    broker.produce("ids", &id_messages(3..5)); // while the server is down
    let server = start(&data, &log);
    let client = connect(&server).await;
    wait_rows(&client, "SELECT id FROM new_ids", &want(0..5)).await;
}
