//! Firewall flow logs.
//!
//! Emits the union of the firewall schemas in the seeds: the first RisingWave
//! pipeline's `firewall_logs` (`event_time, src_ip, dst_ip, src_port, dst_port, protocol,
//! bytes_transferred, action, rule_id`) and the second's (`log_id, src_ip, dst_ip,
//! dst_port, action, bytes, log_time`). `log_time` equals `event_time` and `bytes`
//! equals `bytes_transferred`.
//!
//! Benign traffic: inbound web to the organisation's public addresses, outbound web/DNS/NTP
//! from internal hosts, east-west traffic to tier-1 servers, and background internet
//! scanners being denied. Scanners come from the hosting sub-blocks, never from the
//! residential sub-blocks users log in from, so a benign login never matches a block.

use super::json::{ObjectWriter, TimestampFormatter};
use super::schedule::{Cadence, Rng};
use super::world::{
    world, World, ATTACKER_PERIOD_US, HOME_LOCATIONS, HOSTING_OFFSET, HOSTING_SIZE, LOCATIONS, ORG_PUBLIC_BASE,
    RESIDENTIAL_OFFSET, RESIDENTIAL_SIZE,
};

/// Blocks of the currently active attacker IP per 10,000 firewall events, in addition to
/// the guaranteed block at the first event of every attacker period (minute). The auth
/// generator later logs in from these addresses.
pub const FIREWALL_ATTACKER_BLOCKS_PER_10K: u32 = 20;
/// Port scans started per 10,000 firewall events: one hosting-block IP probes
/// [`FIREWALL_PORT_SCAN_PROBES`] distinct ports of one public address, all dropped.
pub const FIREWALL_PORT_SCAN_PER_10K: u32 = 2;
/// Probes (distinct destination ports) in one port scan.
pub const FIREWALL_PORT_SCAN_PROBES: u32 = 30;
/// Benign events that are internet background noise denied or dropped, per 10,000
/// benign events (everything else benign is allowed).
pub const FIREWALL_BENIGN_DENY_PER_10K: u32 = 800;

const SCAN_PORTS: [u16; FIREWALL_PORT_SCAN_PROBES as usize] = [
    21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 389, 443, 445, 636, 993, 995, 1433, 1521, 1723, 3306, 3389, 5432,
    5900, 6379, 8080, 8443, 9200, 11211, 27017,
];
const NOISE_PORTS: [u16; 8] = [22, 23, 445, 1433, 3389, 5900, 8080, 2323];
const ATTACKER_PORTS: [u16; 5] = [22, 3389, 443, 445, 8443];
const EAST_WEST_PORTS: [u16; 6] = [445, 389, 88, 5432, 3389, 636];

#[derive(Debug, Clone, Copy)]
struct Flow {
    src: u32,
    dst: u32,
    src_port: u16,
    dst_port: u16,
    protocol: &'static str,
    bytes: u64,
    action: &'static str,
    rule: &'static str,
}

#[derive(Debug, Clone, Copy)]
struct PortScan {
    due: u64,
    src: u32,
    dst: u32,
    next_port: usize,
    remaining: u32,
}

/// Generator state for firewall events.
#[derive(Debug)]
pub(crate) struct FirewallGenerator {
    world: &'static World,
    rng: Rng,
    seq: u64,
    ts: TimestampFormatter,
    attacker_blocks: Cadence,
    port_scans: Cadence,
    scans: Vec<PortScan>,
    last_period: Option<i64>,
}

impl FirewallGenerator {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed, 2);
        FirewallGenerator {
            world: world(),
            attacker_blocks: Cadence::new(FIREWALL_ATTACKER_BLOCKS_PER_10K, &mut rng),
            port_scans: Cadence::new(FIREWALL_PORT_SCAN_PER_10K, &mut rng),
            rng,
            seq: 0,
            ts: TimestampFormatter::default(),
            scans: Vec::with_capacity(2),
            last_period: None,
        }
    }

    fn ephemeral_port(&mut self) -> u16 {
        self.rng.range(32_768, 60_999) as u16
    }

    fn public_ip(&mut self) -> u32 {
        ORG_PUBLIC_BASE + self.rng.range(10, 40) as u32
    }

    fn hosting_ip(&mut self) -> u32 {
        let l = self.rng.index(LOCATIONS.len());
        LOCATIONS[l].start + HOSTING_OFFSET + self.rng.below(HOSTING_SIZE as u64) as u32
    }

    fn deny_or_drop(&mut self) -> &'static str {
        if self.rng.below(2) == 0 {
            "deny"
        } else {
            "drop"
        }
    }

    fn attacker_block(&mut self, event_time_us: i64) -> Flow {
        let src = self.world.attacker_at(event_time_us).ip;
        Flow {
            src,
            dst: self.public_ip(),
            src_port: self.ephemeral_port(),
            dst_port: *self.rng.pick(&ATTACKER_PORTS),
            protocol: "TCP",
            bytes: self.rng.range(40, 120),
            action: self.deny_or_drop(),
            rule: "FW-9100",
        }
    }

    fn scan_probe(&mut self, i: usize) -> Flow {
        let src_port = self.ephemeral_port();
        let bytes = self.rng.range(40, 60);
        let s = &mut self.scans[i];
        let flow = Flow {
            src: s.src,
            dst: s.dst,
            src_port,
            dst_port: SCAN_PORTS[s.next_port],
            protocol: "TCP",
            bytes,
            action: "drop",
            rule: "FW-9200",
        };
        s.next_port = (s.next_port + 1) % SCAN_PORTS.len();
        s.remaining -= 1;
        s.due = self.seq + 1;
        if s.remaining == 0 {
            self.scans.swap_remove(i);
        }
        flow
    }

    fn benign(&mut self) -> Flow {
        let r = self.rng.below(10_000) as u32;
        if r < FIREWALL_BENIGN_DENY_PER_10K {
            // Internet background noise.
            return Flow {
                src: self.hosting_ip(),
                dst: self.public_ip(),
                src_port: self.ephemeral_port(),
                dst_port: *self.rng.pick(&NOISE_PORTS),
                protocol: "TCP",
                bytes: self.rng.range(40, 180),
                action: self.deny_or_drop(),
                rule: "FW-9001",
            };
        }
        let r = r - FIREWALL_BENIGN_DENY_PER_10K;
        if r < 5_000 {
            // Inbound web from users and customers.
            let l = self.rng.index(HOME_LOCATIONS);
            let src = LOCATIONS[l].start + RESIDENTIAL_OFFSET + self.rng.below(RESIDENTIAL_SIZE as u64) as u32;
            let https = self.rng.below(10) < 8;
            return Flow {
                src,
                dst: self.public_ip(),
                src_port: self.ephemeral_port(),
                dst_port: if https { 443 } else { 80 },
                protocol: "TCP",
                bytes: self.rng.range(400, 250_000),
                action: "allow",
                rule: if https { "FW-1001" } else { "FW-1002" },
            };
        }
        let host = self.rng.pick(&self.world.hosts).ip;
        if r < 8_200 {
            // Outbound from internal hosts.
            let dst = self.hosting_ip();
            let src_port = self.ephemeral_port();
            let k = self.rng.below(10);
            let (dst_port, protocol, rule, bytes) = match k {
                0..=5 => (443, "TCP", "FW-2001", self.rng.range(600, 2_000_000)),
                6 => (80, "TCP", "FW-2001", self.rng.range(400, 300_000)),
                7 | 8 => (53, "UDP", "FW-2002", self.rng.range(60, 512)),
                _ => (123, "UDP", "FW-2003", 76),
            };
            return Flow {
                src: host,
                dst,
                src_port,
                dst_port,
                protocol,
                bytes,
                action: "allow",
                rule,
            };
        }
        if r < 9_100 {
            // East-west to tier-1 servers.
            let dst = self.world.hosts[*self.rng.pick(&self.world.tier1)].ip;
            return Flow {
                src: host,
                dst,
                src_port: self.ephemeral_port(),
                dst_port: *self.rng.pick(&EAST_WEST_PORTS),
                protocol: "TCP",
                bytes: self.rng.range(200, 80_000),
                action: "allow",
                rule: "FW-3001",
            };
        }
        // Internal ICMP monitoring.
        let dst = self.rng.pick(&self.world.hosts).ip;
        Flow {
            src: host,
            dst,
            src_port: 0,
            dst_port: 0,
            protocol: "ICMP",
            bytes: 84,
            action: "allow",
            rule: "FW-3002",
        }
    }

    fn choose(&mut self, event_time_us: i64) -> Flow {
        let seq = self.seq;
        let period = event_time_us.div_euclid(ATTACKER_PERIOD_US);
        if self.last_period != Some(period) {
            // First event of an attacker period: block the newly active attacker.
            self.last_period = Some(period);
            return self.attacker_block(event_time_us);
        }
        if let Some(i) = self.scans.iter().position(|s| s.due <= seq) {
            return self.scan_probe(i);
        }
        if self.attacker_blocks.due(seq) {
            self.attacker_blocks.started(seq, &mut self.rng);
            return self.attacker_block(event_time_us);
        }
        if self.port_scans.due(seq) {
            self.port_scans.started(seq, &mut self.rng);
            let src = self.hosting_ip();
            let dst = self.public_ip();
            let next_port = self.rng.index(SCAN_PORTS.len());
            self.scans.push(PortScan {
                due: seq,
                src,
                dst,
                next_port,
                remaining: FIREWALL_PORT_SCAN_PROBES,
            });
            return self.scan_probe(self.scans.len() - 1);
        }
        self.benign()
    }

    /// Appends the next event to `out`.
    pub fn write_next(&mut self, event_time_us: i64, out: &mut String) {
        let flow = self.choose(event_time_us);
        self.seq += 1;
        let (id_hi, id_lo) = (self.rng.u64(), self.rng.u64());
        let ts = self.ts.format(event_time_us);
        let mut w = ObjectWriter::new(out);
        w.str("event_time", ts);
        w.str("log_time", ts);
        w.uuid("log_id", id_hi, id_lo);
        w.ip("src_ip", flow.src);
        w.ip("dst_ip", flow.dst);
        w.uint("src_port", flow.src_port as u64);
        w.uint("dst_port", flow.dst_port as u64);
        w.str("protocol", flow.protocol);
        w.uint("bytes_transferred", flow.bytes);
        w.uint("bytes", flow.bytes);
        w.str("action", flow.action);
        w.str("rule_id", flow.rule);
        w.finish();
    }
}
