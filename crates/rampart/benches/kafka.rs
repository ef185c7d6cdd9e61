//! The first seed pipeline from Kafka topics to a Kafka alert topic, on a real
//! Kafka-protocol broker (Tansu, started here on 127.0.0.1 and stopped at the end).
//!
//! `cargo bench -p rampart --bench kafka -- [EVENTS_PER_SOURCE] [PROBE_SECONDS]`
//! (defaults 100000 and 20; the full run is 3333334 per source, 10M in all).
//! `RAMPART_BENCH_SPAN_S=N` spreads the pre-produced events' event time over the last N
//! seconds (default 3600), as in the pipeline benchmark.
//!
//! 1. Throughput: the events are produced to the three source topics before the pipeline
//!    starts, followed by a marker burst of failed logins; the pipeline reads them from
//!    `earliest`, and the time until `enriched_events` counts them all and the marker's
//!    alert is on the alert topic gives events/s.
//! 2. Latency at half that rate: generated events keep being produced at half the measured
//!    rate for PROBE_SECONDS, and every 100 ms a brute-force burst of 11 failed logins from a
//!    fresh IP. The latency of a burst is from handing its 11th failure to the producer to
//!    consuming its alert from the `siem.alerts.high` topic. The probe's events continue
//!    the pre-produced timeline at the same spacing (generated before the probe starts), so
//!    the half rate is half of the same workload; `RAMPART_BENCH_PROBE_TIME=now` stamps them
//!    with the current time instead (a much denser workload: see `main`). Prints the rate
//!    achieved, the alert messages read, latency over the probe and p50 / p99 / max, and
//!    peak RSS. `RAMPART_BENCH_RATE=N` sets the probe's rate; `RAMPART_BENCH_SINK_OPTIONS`
//!    adds options to the alert sink.
//!
//! The broker runs with every thread on the last CPU (`RAMPART_BENCH_BROKER_CPU=N|none`)
//! and the producer compresses with lz4 (`RAMPART_BENCH_COMPRESSION`) and lingers 20 ms
//! per batch (`RAMPART_BENCH_LINGER_MS`); the probe prints
//! the producer's longest queue of unacknowledged messages, which grows when the broker
//! falls behind. `RAMPART_BENCH_SOURCE_OPTIONS` adds options to every source.
//! `RAMPART_BENCH_DURABLE=1` gives the server a data directory, as `rampart serve` has by
//! default, and prints its size and the views' checkpoints at the end;
//! `RAMPART_BENCH_CHECKPOINT_MS` sets the checkpoint interval.

use rampart_testkit::broker;
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use broker::Broker;
use common::{count, print_checkpoints, rss_mib};
use rampart_connectors::generator::{EventGenerator, GeneratorKind};
use rampart_connectors::rdkafka::config::ClientConfig;
use rampart_connectors::rdkafka::consumer::{BaseConsumer, Consumer};
use rampart_connectors::rdkafka::message::Message;
use rampart_connectors::rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rampart_connectors::rdkafka::{Offset, TopicPartitionList};
use rampart_pgwire::SqlBackend;
use rampart_server::{start_server, ServerConfig};

const TOPICS: [(GeneratorKind, &str); 3] = [
    (GeneratorKind::Firewall, "firewall_logs"),
    (GeneratorKind::Auth, "auth_events"),
    (GeneratorKind::Endpoint, "endpoint_events"),
];
const ALERTS: &str = "siem.alerts.high";

fn send(p: &BaseProducer, topic: &str, payload: &str) {
    let mut rec: BaseRecord<'_, (), str> = BaseRecord::to(topic).payload(payload);
    loop {
        match p.send(rec) {
            Ok(()) => return,
            Err((_, r)) => {
                rec = r;
                p.poll(Duration::from_millis(5));
            }
        }
    }
}

/// Produces 11 failed logins from `ip` with event time `at_us`: enough for a brute-force
/// alert. Returns when the 11th was handed to the producer: by then all 11 were, so the
/// latency measured from it includes any wait for the first ten. Nothing is flushed (a flush
/// would wait for the whole stream's queue and stall the steady rate).
fn burst(p: &BaseProducer, ip: &str, user: &str, at_us: i64) -> Instant {
    let event_time = chrono::DateTime::from_timestamp_micros(at_us)
        .unwrap_or_default()
        .to_rfc3339();
    for k in 0..11 {
        let ev = serde_json::json!({
            "event_time": event_time,
            "user_id": user,
            "source_ip": ip,
            "country_code": "US",
            "result": "failure",
            "app_name": "vpn",
            "session_id": format!("{user}-{k}"),
        });
        send(p, "auth_events", &ev.to_string());
    }
    let handed_over = Instant::now();
    p.poll(Duration::from_millis(0));
    handed_over
}

/// Reads the alert topic on its own thread (so producing never delays a read) and sends
/// each alert's `actor_ip` with the moment it was consumed. `consumed` counts every
/// message read from the topic.
fn alert_reader(
    bootstrap: &str,
    consumed: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> std::sync::mpsc::Receiver<(String, Instant)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-alerts")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(ALERTS, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || loop {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(5)) {
            let at = Instant::now();
            consumed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let ip = m
                .payload()
                .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
                .and_then(|v| v["actor_ip"].as_str().map(str::to_string));
            if let Some(ip) = ip {
                if tx.send((ip, at)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Takes the alerts read so far: a latency for each one whose IP is in `sent`.
fn take_alerts(
    alerts: &std::sync::mpsc::Receiver<(String, Instant)>,
    sent: &mut HashMap<String, Instant>,
    latencies: &mut Vec<f64>,
) {
    while let Ok((ip, at)) = alerts.try_recv() {
        if let Some(t) = sent.remove(&ip) {
            latencies.push(at.saturating_duration_since(t).as_secs_f64() * 1000.0);
        }
    }
}

/// Options from the environment variable `var`, as `, a = 'x', ...` to append to a WITH
/// list (empty when unset).
fn extra_options(var: &str) -> String {
    std::env::var(var).map(|o| format!(", {o}")).unwrap_or_default()
}

fn pipeline_sql(dir: &std::path::Path, bootstrap: &str) -> String {
    // `RAMPART_BENCH_SOURCE_OPTIONS` adds options to every source.
    let source_extra = extra_options("RAMPART_BENCH_SOURCE_OPTIONS");
    let mut sql = common::pipeline_sql(dir, |kind| {
        let topic = TOPICS
            .iter()
            .find(|(k, _)| k.as_str() == kind)
            .map(|(_, t)| *t)
            .unwrap_or(kind);
        format!(
            "connector = 'kafka', topic = '{topic}', properties.bootstrap.server = '{bootstrap}', scan.startup.mode = 'earliest'{source_extra}"
        )
    });
    let file_sink = format!(
        "WITH (connector = 'file', path = '{}')",
        dir.join("alerts.jsonl").display()
    );
    assert!(sql.contains(&file_sink), "the pipeline's alert sink writes to a file");
    // `RAMPART_BENCH_SINK_OPTIONS` adds options to the alert sink (for example
    // `properties.enable.idempotence = 'false'`).
    let extra = extra_options("RAMPART_BENCH_SINK_OPTIONS");
    sql = sql.replace(
        &file_sink,
        &format!("WITH (connector = 'kafka', topic = '{ALERTS}', properties.bootstrap.server = '{bootstrap}'{extra})"),
    );
    sql.push_str("\nCREATE MATERIALIZED VIEW bench_progress AS SELECT COUNT(*) AS n FROM enriched_events;\n");
    sql
}

fn main() {
    common::alloc::tune();
    let mut args = std::env::args().skip(1).filter_map(|a| a.parse::<u64>().ok());
    let per_source = args.next().unwrap_or(100_000);
    let probe_secs = args.next().unwrap_or(20);
    let dir = std::env::temp_dir().join(format!("rampart-kafka-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The broker runs on the last CPU (`RAMPART_BENCH_BROKER_CPU`, `none` leaves it
    // unpinned): see `Broker::start_pinned`.
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let broker = match std::env::var("RAMPART_BENCH_BROKER_CPU").ok().as_deref() {
        Some("none") => Broker::start(),
        Some(cpu) => Broker::start_pinned(cpu.parse().expect("RAMPART_BENCH_BROKER_CPU: a CPU number or none")),
        None => Broker::start_pinned(cpus - 1),
    };
    match broker.pinned_cpu() {
        Some(cpu) => println!("broker: every thread on CPU {cpu}"),
        None => println!("broker: unpinned"),
    }
    let bootstrap = broker.bootstrap();
    rt.block_on(async {
        for (_, topic) in TOPICS {
            broker.create_topic(topic, 2).await;
        }
        broker.create_topic(ALERTS, 1).await;
    });

    // `RAMPART_BENCH_COMPRESSION` (default `lz4`, as Kafka producers of log data usually
    // run; `none` for uncompressed): the broker shares the two cores with the engine, and
    // compressed batches are far less for it to copy and keep.
    let compression = std::env::var("RAMPART_BENCH_COMPRESSION").unwrap_or_else(|_| "lz4".into());
    // `RAMPART_BENCH_LINGER_MS` (default 20): how long the producer gathers messages into
    // one batch per partition. At 5 ms and 150,000 events/s the broker, on one core beside
    // the engine, took about 1,200 produce requests a second and fell behind (93,000
    // messages queued in the producer); at 20 ms, a quarter of the requests, it kept up.
    // The linger is part of the latency measured.
    let linger_ms = std::env::var("RAMPART_BENCH_LINGER_MS").unwrap_or_else(|_| "20".into());
    println!("producer compression: {compression}, linger.ms: {linger_ms}");
    // Pre-produce: event times spread over the RAMPART_BENCH_SPAN_S seconds (default an
    // hour) before now.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", &linger_ms)
        .set("queue.buffering.max.messages", "1000000")
        .set("compression.type", &compression)
        .create()
        .expect("producer");
    let now_us = chrono::Utc::now().timestamp_micros();
    let span_us = common::event_time_span_us();
    let t0 = Instant::now();
    for (kind, topic) in TOPICS {
        let mut g = EventGenerator::new(kind, 7);
        for i in 0..per_source {
            let t = now_us - span_us + (i as i64 * span_us / per_source as i64);
            send(&producer, topic, &g.next_event(t));
        }
    }
    // The last auth messages: a burst whose alert marks the end of the backlog.
    let _ = burst(&producer, "198.19.0.1", "marker", now_us);
    producer.flush(Duration::from_secs(300)).expect("flush");
    let total = 3 * per_source as i64;
    println!(
        "produced {total} events in {:.1}s to 3 topics of 2 partitions",
        t0.elapsed().as_secs_f64()
    );

    let sql = pipeline_sql(&dir, &bootstrap);
    rt.block_on(async {
        let workers = cpus;
        let mut config = ServerConfig::ephemeral("127.0.0.1:0".parse().unwrap(), workers);
        // `RAMPART_BENCH_DURABLE=1`: a data directory, as `rampart serve` keeps by default
        // (catalog, sink log, view checkpoints every second).
        let durable = std::env::var("RAMPART_BENCH_DURABLE").is_ok_and(|v| v == "1");
        if durable {
            config.data_dir = Some(dir.join("data"));
        }
        // `RAMPART_BENCH_CHECKPOINT_MS`: the checkpoint interval (default 1000, as `rampart serve`).
        if let Some(ms) = std::env::var("RAMPART_BENCH_CHECKPOINT_MS").ok().and_then(|v| v.parse().ok()) {
            config.checkpoint_interval = Duration::from_millis(ms);
        }
        if durable {
            println!("data directory: yes (checkpoints every {} ms)", config.checkpoint_interval.as_millis());
        } else {
            println!("data directory: none");
        }
        let server = start_server(config).await.expect("server");
        let backend: &dyn SqlBackend = server.coordinator.as_ref();
        let consumed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let alerts = alert_reader(&bootstrap, consumed.clone());
        let start = Instant::now();
        server.coordinator.execute_script(&sql).await.expect("pipeline");
        // Done when every event is enriched and the marker's alert is on the alert topic.
        let mut marker: HashMap<String, Instant> = [("198.19.0.1".to_string(), Instant::now())].into();
        let mut ignored = Vec::new();
        while count(backend, "SELECT n FROM bench_progress").await < total + 11 || !marker.is_empty() {
            take_alerts(&alerts, &mut marker, &mut ignored);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let secs = start.elapsed().as_secs_f64();
        let max_rate = total as f64 / secs;
        println!("throughput: {total} events in {secs:.2}s = {max_rate:.0} events/s (source topics -> every view -> alert topic), workers: {workers}");

        // Latency probe at half the measured rate.
        // RAMPART_BENCH_RATE overrides the probe rate (events/s).
        let rate = std::env::var("RAMPART_BENCH_RATE")
            .ok()
            .and_then(|r| r.parse::<f64>().ok())
            .unwrap_or((max_rate / 2.0).max(30.0));
        // The probe's event time: by default it carries on the pre-produced stream's
        // timeline at the same spacing (the same generators, so every event costs what it
        // cost in the throughput run: the maximum and its half are rates of one workload).
        // `RAMPART_BENCH_PROBE_TIME=now` stamps each event with the current time instead:
        // at tens of thousands of events/s over the generator's 256 users that is a far
        // denser workload (every user logs in many times a second, and each travel login
        // pairs with all of them for 30 minutes of impossible travel).
        let stamp_now = std::env::var("RAMPART_BENCH_PROBE_TIME").is_ok_and(|v| v == "now");
        let spacing_us = span_us / per_source.max(1) as i64;
        let mut next_time_us = [now_us; 3];
        let mut gens: Vec<EventGenerator> = TOPICS.iter().map(|(k, _)| EventGenerator::new(*k, 99)).collect();
        // On the timeline the payloads do not depend on when they are sent: generate them
        // now, so the probe's producer spends the two cores' time only on sending.
        let mut ready: std::collections::VecDeque<(usize, i64, String)> = if stamp_now {
            Default::default()
        } else {
            (0..(rate * probe_secs as f64) as u64 + 1)
                .map(|n| {
                    let i = (n % 3) as usize;
                    next_time_us[i] += spacing_us;
                    (i, next_time_us[i], gens[i].next_event(next_time_us[i]))
                })
                .collect()
        };
        let mut sent_time_us = [now_us; 3];
        let alerts_before = consumed.load(std::sync::atomic::Ordering::Relaxed);
        let mut sent_at: HashMap<String, Instant> = HashMap::new();
        let mut latencies: Vec<f64> = Vec::new();
        let begin = Instant::now();
        let mut produced: u64 = 0;
        let mut bursts: u64 = 0;
        // `RAMPART_BENCH_BURST_MS` (default 100): the time between bursts. Ten a second give
        // 200 latencies in a 20 s probe, so the p99 is not just the slowest burst; each burst
        // adds 11 events to the probe's rate.
        let burst_ms: u64 = std::env::var("RAMPART_BENCH_BURST_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        let mut max_in_flight: i32 = 0;
        let end = begin + Duration::from_secs(probe_secs);
        while Instant::now() < end || (!sent_at.is_empty() && Instant::now() < end + Duration::from_secs(10)) {
            if Instant::now() < end {
                let due = (begin.elapsed().as_secs_f64() * rate) as u64;
                while produced < due {
                    let (i, t, ev) = match ready.pop_front() {
                        Some(ready) => ready,
                        None => {
                            let i = (produced % 3) as usize;
                            let t = chrono::Utc::now().timestamp_micros();
                            (i, t, gens[i].next_event(t))
                        }
                    };
                    sent_time_us[i] = t;
                    send(&producer, TOPICS[i].1, &ev);
                    produced += 1;
                }
                if begin.elapsed() >= Duration::from_millis(burst_ms * bursts) {
                    let ip = format!("198.18.{}.{}", bursts / 250, bursts % 250 + 1);
                    // A burst's event time is the last auth event's: on the timeline, or now.
                    let at_us = if stamp_now { chrono::Utc::now().timestamp_micros() } else { sent_time_us[1] };
                    let sent = burst(&producer, &ip, &format!("bench{bursts}"), at_us);
                    sent_at.insert(ip, sent);
                    bursts += 1;
                }
                producer.poll(Duration::from_millis(0));
                // Messages handed to the producer and not yet acknowledged by the broker: if
                // this grows, the broker (not the engine) is what falls behind the rate.
                max_in_flight = max_in_flight.max(producer.in_flight_count());
            }
            take_alerts(&alerts, &mut sent_at, &mut latencies);
            std::thread::sleep(Duration::from_millis(1));
        }
        let probe_secs_run = begin.elapsed().as_secs_f64().min(probe_secs as f64);
        println!(
            "probe: {produced} events produced = {:.0} events/s (asked {rate:.0}), {} messages read from {ALERTS}, event time {}",
            produced as f64 / probe_secs_run,
            consumed.load(std::sync::atomic::Ordering::Relaxed) - alerts_before,
            if stamp_now { "now" } else { "continuing the pre-produced timeline" },
        );
        println!(
            "producer queue: at most {max_in_flight} messages awaiting the broker's acknowledgement ({:.0} ms of the rate)",
            max_in_flight as f64 * 1000.0 / rate
        );
        // In the order the alerts arrived: a latency that grows over the probe means the
        // pipeline falls behind the rate; a flat one is a delay on the path.
        let step = (latencies.len() / 10).max(1);
        let over_time: Vec<String> = latencies.iter().step_by(step).map(|l| format!("{l:.0}")).collect();
        println!("latency over the probe (ms, every {step}th alert): {}", over_time.join(" "));
        latencies.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let pct = |p: usize| latencies.get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1)));
        println!(
            "latency at {rate:.0} events/s for {probe_secs}s: {} bursts, {} alerts consumed, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (11th failure handed to the producer -> alert consumed from {ALERTS})",
            bursts,
            latencies.len(),
            pct(50).copied().unwrap_or(f64::NAN),
            pct(99).copied().unwrap_or(f64::NAN),
            latencies.last().copied().unwrap_or(f64::NAN),
        );
        println!("peak RSS: {:.0} MiB", rss_mib("VmHWM:"));
        if durable {
            print_checkpoints(backend, &dir.join("data")).await;
        }
    });
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}
