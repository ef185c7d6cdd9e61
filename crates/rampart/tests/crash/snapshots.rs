//! Snapshotted views come back from their checkpoints instead of replaying their sources,
//! with their watermarks.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

use super::*;

/// A view of single source events (`normalized_events` as the seed writes it) is written to
/// a checkpoint as it runs; after a kill it comes back from its last checkpoint, and its
/// readers resume at the checkpoint's positions instead of replaying the file from its
/// start. The test proves where the rows came from: while the server is down it overwrites
/// the lines already read with lines of the same length but other values. A replay from
/// the start would read those; a restore from the checkpoint keeps the values the server
/// had read, and reads only the lines appended after. A view over it (a GROUP BY, rebuilt
/// from the restored rows) and the file sink over it agree, and the malformed line read
/// before the kill is still in `rampart_source_errors`. (Expected sums by hand: ids 0..N,
/// each line's `v` is 1 before the overwrite and 7 after.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshotted_view_resumes_at_its_checkpoint_instead_of_replaying() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let file = dir.join("events.jsonl");
    let line = |id: i64, v: i64| format!("{{\"id\": {id:<5}, \"v\": {v}}}\n");
    let lines = |r: std::ops::Range<i64>, v: i64| r.map(|i| line(i, v)).collect::<String>();
    const READ: i64 = 3000;
    // Line 1 is malformed: it goes to rampart_source_errors, and stays there after the
    // restart although nothing reads it again.
    const BAD: &str = "{\"id\": \n";
    std::fs::write(&file, BAD.to_string() + &lines(0..READ, 1)).unwrap();

    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE events (id INT, v INT) WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW scaled AS SELECT id, v * 10 AS v10 FROM events WHERE id >= 0;
             CREATE MATERIALIZED VIEW totals AS SELECT COUNT(*) AS n, SUM(v10) AS s FROM scaled;
             CREATE SINK scaled_out FROM scaled
               WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;",
            file.display(),
            dir.join("scaled.jsonl").display()
        ))
        .await
        .unwrap();
    let total = |n: i64, s: i64| vec![vec![n.to_string(), s.to_string()]];
    wait_rows(&client, "SELECT n, s FROM totals", &total(READ, READ * 10)).await;
    wait_checkpoint_settled(&client, "scaled").await;
    drop(client);
    sigkill(server);

    // While the server is down: the lines it read now say v = 7, and 500 more arrive.
    const MORE: i64 = 500;
    std::fs::write(
        &file,
        BAD.to_string() + &lines(0..READ, 7) + &lines(READ..READ + MORE, 1) + BAD,
    )
    .unwrap();
    let server = start(&data, &log);
    let client = connect(&server).await;
    let n = READ + MORE;
    wait_rows(&client, "SELECT n, s FROM totals", &total(n, n * 10)).await;
    // Line numbers count from the file's start, also for the reader that resumed.
    let last_line = (1 + READ + MORE + 1).to_string();
    wait_rows(
        &client,
        "SELECT line_or_offset FROM rampart_source_errors",
        &[vec!["1".to_string()], vec![last_line]],
    )
    .await;
    let distinct = rows(&client, "SELECT COUNT(DISTINCT id), MIN(v10), MAX(v10) FROM scaled").await;
    assert_eq!(distinct, vec![vec![n.to_string(), "10".into(), "10".into()]]);
    let restored = std::fs::read_to_string(&log).unwrap();
    assert!(
        restored.contains("restoring from its last checkpoint"),
        "the server log says where scaled came from"
    );
    // The sink emitted every row once, across the kill.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = std::fs::read_to_string(dir.join("scaled.jsonl")).unwrap_or_default();
        let ids: BTreeSet<i64> = out
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        if ids.len() as i64 == n {
            assert_eq!(out.lines().count() as i64, n, "no row emitted twice");
            break;
        }
        assert!(Instant::now() < deadline, "sink holds {} of {n} ids", ids.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A view of a source with a `WATERMARK` is snapshotted too, and after a kill the
/// watermark comes back with it. The source's reader resumes with the largest event time it
/// had read, so the first line after the restart that is behind that watermark is late, as
/// it would have been without the kill; the window aggregate over the view closes the
/// windows the watermark had closed from the restored rows alone (before any new line),
/// and the late line read before the kill is still in `rampart_late_events`. The lines
/// read before the kill are overwritten while the server is down (user `a` becomes `z`,
/// same length), so a replay from the file's start would show `z`. Expected windows by
/// hand: one event per second, 10-second windows, 5 seconds of delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watermarked_snapshotted_view_resumes_with_its_watermark() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let file = dir.join("ev.jsonl");
    // Seconds 0..30, then second 3: behind the watermark (29 - 5), so late.
    std::fs::write(&file, ev_lines("a", 0..30) + &ev_line("a", 3)).unwrap();

    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ev (u VARCHAR, t TIMESTAMPTZ, WATERMARK FOR t AS t - INTERVAL '5 seconds')
               WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW evs AS SELECT u, t FROM ev;
             CREATE MATERIALIZED VIEW per_window AS
               SELECT window_start, u, COUNT(*) AS n FROM TUMBLE(evs, t, INTERVAL '10 seconds')
               GROUP BY window_start, window_end, u EMIT ON WINDOW CLOSE;",
            file.display()
        ))
        .await
        .unwrap();
    let windows = |closed: &[(u32, i64)]| {
        closed
            .iter()
            .map(|(s, n)| vec![format!("2026-11-22 10:00:{s:02}+00"), "a".to_string(), n.to_string()])
            .collect::<Vec<_>>()
    };
    const WINDOWS: &str = "SELECT window_start, u, n FROM per_window ORDER BY window_start";
    const LATE: &str = "SELECT line_or_offset FROM rampart_late_events ORDER BY line_or_offset";
    wait_rows(&client, WINDOWS, &windows(&[(0, 10), (10, 10)])).await;
    wait_rows(&client, LATE, &[vec!["31".to_string()]]).await;
    wait_checkpoint_settled(&client, "evs").await;
    drop(client);
    sigkill(server);

    std::fs::write(&file, ev_lines("z", 0..30) + &ev_line("z", 3)).unwrap();
    let server = start(&data, &log);
    let client = connect(&server).await;
    // From the restored rows and watermark alone: nothing new has been read.
    wait_rows(&client, WINDOWS, &windows(&[(0, 10), (10, 10)])).await;
    wait_rows(&client, LATE, &[vec!["31".to_string()]]).await;
    let users = rows(&client, "SELECT u, COUNT(*) FROM evs GROUP BY u").await;
    assert_eq!(
        users,
        vec![vec!["a".to_string(), "30".to_string()]],
        "restored, not replayed"
    );

    // Second 22 is behind the restored watermark (29 - 5): late. Then seconds 30..50 close
    // the windows at 20 (still 10 events: not 11) and 30.
    let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
    f.write_all((ev_line("a", 22) + &ev_lines("a", 30..50)).as_bytes())
        .unwrap();
    drop(f);
    wait_rows(&client, WINDOWS, &windows(&[(0, 10), (10, 10), (20, 10), (30, 10)])).await;
    wait_rows(&client, LATE, &[vec!["31".to_string()], vec!["32".to_string()]]).await;
    let restored = std::fs::read_to_string(&log).unwrap();
    assert!(restored.contains("restoring from its last checkpoint"));
    drop(client);
    sigkill(server);
}

/// The restored watermark waits until every restored row is in: with 40,000 restored rows
/// (more than the 16,384 a worker puts in per dataflow time, so restoring spans several
/// times), a watermark that came first would close windows before their rows arrived, and
/// those rows would be late. Expected by hand: one event per second for 40,000 s, 10-second
/// windows, 5 s of delay: the watermark 39,994 s closes the 3,999 windows before 39,990 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_watermark_waits_for_every_restored_row() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let file = dir.join("ev.jsonl");
    const EVENTS: u32 = 40_000;
    let text: String = (0..EVENTS)
        .map(|s| {
            let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
            format!("{{\"t\": \"2026-11-22T{h:02}:{m:02}:{s:02}Z\"}}\n")
        })
        .collect();
    std::fs::write(&file, text).unwrap();
    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ev (t TIMESTAMPTZ, WATERMARK FOR t AS t - INTERVAL '5 seconds')
               WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW evs AS SELECT t FROM ev;
             CREATE MATERIALIZED VIEW per_window AS
               SELECT window_start, COUNT(*) AS n FROM TUMBLE(evs, t, INTERVAL '10 seconds')
               GROUP BY window_start, window_end EMIT ON WINDOW CLOSE;",
            file.display()
        ))
        .await
        .unwrap();
    const SUMMARY: &str = "SELECT COUNT(*), SUM(n), MAX(n) FROM per_window";
    let closed = vec![vec!["3999".to_string(), "39990".to_string(), "10".to_string()]];
    wait_rows(&client, SUMMARY, &closed).await;
    wait_checkpoint_settled(&client, "evs").await;
    drop(client);
    sigkill(server);

    let server = start(&data, &log);
    let client = connect(&server).await;
    wait_rows(&client, SUMMARY, &closed).await;
    let late = rows(&client, "SELECT COUNT(*) FROM rampart_late_events").await;
    assert_eq!(late, vec![vec!["0".to_string()]], "no restored row was late");
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("restoring from its last checkpoint"));
    drop(client);
    sigkill(server);
}
