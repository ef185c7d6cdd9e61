//! A graceful stop: SIGTERM (how systemd and Kubernetes stop a service) while events are
//! being read ends the process with exit code 0 after a last checkpoint, and a restart on
//! the same data directory carries on exactly.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;

use super::*;

/// Events are appended while the server reads them; SIGTERM arrives mid-way. The process
/// exits 0 and logs its last checkpoint; after a restart, the rest of the file is read and
/// every view equals the hand count of the whole file (each id once; sums by hand).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_with_a_last_checkpoint_and_exit_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let file = dir.join("ids.jsonl");
    let ids = |r: std::ops::Range<i64>| {
        r.map(|i| format!("{{\"id\": {i}, \"v\": {}}}\n", i % 7))
            .collect::<String>()
    };
    std::fs::write(&file, ids(0..2000)).unwrap();
    let append = |text: String| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };

    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ids (id BIGINT, v BIGINT) WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW all_ids AS SELECT id, v FROM ids;
             CREATE MATERIALIZED VIEW totals AS SELECT COUNT(*) AS n, SUM(v) AS s FROM all_ids;",
            file.display()
        ))
        .await
        .unwrap();
    append(ids(2000..4000));
    drop(client);

    // SIGTERM while the reader may still be reading the appended lines.
    let mut server = server;
    server.sigterm();
    let status = server.wait_exit(Duration::from_secs(30)).await;
    let server_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        (status.code(), status.signal()),
        (Some(0), None),
        "exit 0 on SIGTERM; log:\n{server_log}"
    );
    assert!(server_log.contains("SIGTERM: stopping"), "{server_log}");
    assert!(server_log.contains("last checkpoint written"), "{server_log}");
    assert!(
        !server_log.contains('\u{1b}'),
        "a log written to a file has no colour codes"
    );

    append(ids(4000..5000)); // while the server is down
    let server = start(&data, &log);
    let client = connect(&server).await;
    let n = 5000i64;
    let s: i64 = (0..n).map(|i| i % 7).sum();
    wait_rows(
        &client,
        "SELECT n, s FROM totals",
        &[vec![n.to_string(), s.to_string()]],
    )
    .await;
    wait_rows(
        &client,
        "SELECT COUNT(DISTINCT id), COUNT(*) FROM all_ids",
        &[vec![n.to_string(), n.to_string()]],
    )
    .await;
    drop(server);
}
