//! A Kafka sink sends every change exactly once across SIGKILLs.

use std::collections::BTreeMap;
use std::time::Duration;

use rampart_testkit::broker;

use broker::Broker;
use rand::{Rng, SeedableRng};

use super::*;

/// The ids (`{"id": n}`) in the payloads of `messages`, counted.
fn id_counts(messages: &[(Option<String>, Option<String>)]) -> BTreeMap<i64, usize> {
    let mut counts = BTreeMap::new();
    for (_, payload) in messages {
        let v: serde_json::Value = serde_json::from_str(payload.as_deref().unwrap_or("null")).unwrap();
        *counts.entry(v["id"].as_i64().expect("id")).or_insert(0) += 1;
    }
    counts
}

/// A Kafka sink across SIGKILLs: its writes only queue messages and a batch is logged once
/// the broker acknowledged it, so a kill loses nothing; messages that reached the broker but
/// were not logged yet are found again by reading the topic back after the restart, so none
/// is sent twice: exactly once, counted from the alert topic itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_sink_sends_every_change_exactly_once_across_sigkill() {
    let broker = Broker::start();
    broker.create_topic("ids", 1).await;
    broker.create_topic("ids_out", 1).await;
    let tmp = tempfile::tempdir().unwrap();
    let (data, log) = (tmp.path().join("data"), tmp.path().join("server.log"));
    let mut server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ids (id INT) WITH (connector = 'kafka', topic = 'ids',
               properties.bootstrap.server = '{b}') FORMAT PLAIN ENCODE JSON;
             CREATE SINK ids_out AS SELECT id FROM ids WITH (connector = 'kafka', topic = 'ids_out',
               properties.bootstrap.server = '{b}') FORMAT PLAIN ENCODE JSON;",
            b = broker.bootstrap()
        ))
        .await
        .unwrap();
    drop(client);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let (chunks, per_chunk) = (5i64, 400i64);
    for c in 0..chunks {
        broker.produce("ids", &id_messages(c * per_chunk..(c + 1) * per_chunk));
        // Kill at a random moment while the chunk is read and sent (a restarted sink reads
        // the topic back for at least half a second before it sends again).
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1500))).await;
        server.child.kill().expect("SIGKILL");
        server.child.wait().unwrap();
        server = start(&data, &log);
    }
    let total = chunks * per_chunk;
    let out = broker.consume_until("ids_out", 1, |got| id_counts(got).len() as i64 >= total);
    let counts = id_counts(&out);
    let missing: Vec<i64> = (0..total).filter(|i| !counts.contains_key(i)).collect();
    assert!(
        missing.is_empty(),
        "{} ids never sent, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(counts.keys().all(|i| (0..total).contains(i)), "unexpected ids");
    let repeated: Vec<(&i64, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "{} ids sent more than once across {chunks} kills, first (id, times) {:?}",
        repeated.len(),
        &repeated[..repeated.len().min(10)]
    );
    let server_log = std::fs::read_to_string(&log).unwrap_or_default();
    let read_back = server_log
        .matches("counted what reached the destination after the sink's last record")
        .count();
    eprintln!("{total} ids sent across {chunks} kills, each once; {read_back} restarts read the topic back");
    assert!(read_back > 0, "a restarted sink reads its topic back:\n{server_log}");

    // Everything is acknowledged; once the sink's log is synced (every second), a kill
    // must not send any of it again.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    let _server = start(&data, &log);
    broker.produce("ids", &id_messages(total..total + 1));
    let out = broker.consume_until("ids_out", 1, |got| id_counts(got).contains_key(&total));
    let after = id_counts(&out);
    assert_eq!(after.get(&total), Some(&1), "the new id is sent once");
    let resent: Vec<i64> = (0..total).filter(|i| after.get(i) != counts.get(i)).collect();
    assert!(
        resent.is_empty(),
        "{} acknowledged and logged ids were sent again, first {:?}",
        resent.len(),
        &resent[..resent.len().min(10)]
    );
}
