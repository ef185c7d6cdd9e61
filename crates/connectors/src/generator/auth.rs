//! Authentication events from an identity provider.
//!
//! Emits the union of the auth schemas in the seeds: the first RisingWave pipeline's
//! `auth_events` (`event_time, user_id, source_ip, country_code, result, app_name,
//! session_id`), the second's (`event_id, user_id, source_ip, event_type, event_time`)
//! and the Flink `logins` table (`login_time, username, source_ip, status`).
//!
//! Benign logins come from the user's home location (a fresh residential address each
//! time, so no `(ip, user)` pair repeats by chance). Attack scenarios are scheduled by
//! [`Cadence`]s; their events are interleaved with benign traffic, one every
//! [`BURST_SPACING`] events.

use super::json::{ObjectWriter, TimestampFormatter};
use super::schedule::{Cadence, Rng};
use super::world::{
    region_id, world, World, BLOCK_TO_LOGIN_DELAY_US, HOSTING_OFFSET, HOSTING_SIZE, LOCATIONS, RESIDENTIAL_OFFSET,
    RESIDENTIAL_SIZE, USER_COUNT,
};

/// Brute-force scenarios started per 10,000 auth events: one hosting-block IP fails
/// [`AUTH_BRUTE_FORCE_FAILURES`] times against one user (fires `alert_brute_force`:
/// more than 10 failures per `(actor_ip, actor_user)` in a 5-minute window).
pub const AUTH_BRUTE_FORCE_PER_10K: u32 = 4;
/// Failures in one brute-force scenario (> 10, but <= 20 so it stays distinct from
/// password spraying in `brute_force_detections`).
pub const AUTH_BRUTE_FORCE_FAILURES: u32 = 15;
/// Password-spraying scenarios started per 10,000 auth events: one hosting-block IP
/// fails once against each of [`AUTH_SPRAY_FAILURES`] distinct users (fires
/// `brute_force_detections`: more than 20 failures per source IP in 5 minutes).
pub const AUTH_SPRAY_PER_10K: u32 = 3;
/// Failures (one per distinct user) in one spraying scenario.
pub const AUTH_SPRAY_FAILURES: u32 = 25;
/// Impossible-travel scenarios started per 10,000 auth events: a user succeeds from home,
/// then 50 to 400 events later from a location in another geo region (fires
/// `alert_impossible_travel`).
pub const AUTH_IMPOSSIBLE_TRAVEL_PER_10K: u32 = 4;
/// Logins from a blocked attacker per 10,000 auth events: a successful login from the
/// attacker IP that was active [`BLOCK_TO_LOGIN_DELAY_US`] earlier, for a user whose home
/// is in the attacker's geo region (fires `auth_from_blocked_ip` together with the
/// firewall generator, without also looking like impossible travel).
pub const AUTH_BLOCKED_IP_LOGIN_PER_10K: u32 = 5;
/// Benign logins that fail (wrong password), per 10,000 benign logins.
pub const AUTH_BENIGN_FAILURE_PER_10K: u32 = 500;
/// Benign logins that end in an MFA challenge, per 10,000 benign logins.
pub const AUTH_BENIGN_MFA_PER_10K: u32 = 300;

/// Events between two events of one burst (attack events alternate with benign ones).
pub(crate) const BURST_SPACING: u64 = 2;
/// Range of events between the two logins of an impossible-travel scenario.
const TRAVEL_DELAY_EVENTS: (u64, u64) = (50, 400);

const APPS: [&str; 8] = [
    "office365",
    "salesforce",
    "workday",
    "github",
    "aws-console",
    "vpn",
    "jira",
    "slack",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    MfaChallenge,
}

impl Outcome {
    /// `(result, event_type, status)`.
    fn fields(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Outcome::Success => ("success", "login_success", "success"),
            Outcome::Failure => ("failure", "login_failure", "failure"),
            // The password step succeeded; the second factor is pending.
            Outcome::MfaChallenge => ("mfa_challenge", "mfa_bypass", "success"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Login {
    user: usize,
    ip: u32,
    location: usize,
    outcome: Outcome,
    app: &'static str,
}

#[derive(Debug, Clone, Copy)]
enum Scenario {
    BruteForce {
        ip: u32,
        location: usize,
        user: usize,
        app: &'static str,
    },
    Spray {
        ip: u32,
        location: usize,
        next_user: usize,
        stride: usize,
        app: &'static str,
    },
    TravelSecond {
        user: usize,
        location: usize,
        app: &'static str,
    },
}

#[derive(Debug, Clone, Copy)]
struct Active {
    due: u64,
    remaining: u32,
    scenario: Scenario,
}

/// Generator state for auth events.
#[derive(Debug)]
pub(crate) struct AuthGenerator {
    world: &'static World,
    rng: Rng,
    seq: u64,
    ts: TimestampFormatter,
    brute: Cadence,
    spray: Cadence,
    travel: Cadence,
    blocked: Cadence,
    active: Vec<Active>,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl AuthGenerator {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed, 1);
        AuthGenerator {
            world: world(),
            brute: Cadence::new(AUTH_BRUTE_FORCE_PER_10K, &mut rng),
            spray: Cadence::new(AUTH_SPRAY_PER_10K, &mut rng),
            travel: Cadence::new(AUTH_IMPOSSIBLE_TRAVEL_PER_10K, &mut rng),
            blocked: Cadence::new(AUTH_BLOCKED_IP_LOGIN_PER_10K, &mut rng),
            rng,
            seq: 0,
            ts: TimestampFormatter::default(),
            active: Vec::with_capacity(4),
        }
    }

    fn hosting_ip(&mut self) -> (u32, usize) {
        let location = self.rng.index(LOCATIONS.len());
        let ip = LOCATIONS[location].start + HOSTING_OFFSET + self.rng.below(HOSTING_SIZE as u64) as u32;
        (ip, location)
    }

    fn home_ip(&mut self, user: usize) -> (u32, usize) {
        let location = self.world.users[user].home;
        let ip = LOCATIONS[location].start + RESIDENTIAL_OFFSET + self.rng.below(RESIDENTIAL_SIZE as u64) as u32;
        (ip, location)
    }

    /// Advances the scenario at `i` by one event.
    fn step(&mut self, i: usize) -> Login {
        let seq = self.seq;
        // Residential offset for scenarios that log in from a fresh home-like address.
        let residential = self.rng.below(RESIDENTIAL_SIZE as u64) as u32;
        let a = &mut self.active[i];
        let login = match &mut a.scenario {
            Scenario::BruteForce {
                ip,
                location,
                user,
                app,
            } => Login {
                user: *user,
                ip: *ip,
                location: *location,
                outcome: Outcome::Failure,
                app,
            },
            Scenario::Spray {
                ip,
                location,
                next_user,
                stride,
                app,
            } => {
                let user = *next_user;
                *next_user = (*next_user + *stride) % USER_COUNT;
                Login {
                    user,
                    ip: *ip,
                    location: *location,
                    outcome: Outcome::Failure,
                    app,
                }
            }
            Scenario::TravelSecond { user, location, app } => Login {
                user: *user,
                ip: LOCATIONS[*location].start + RESIDENTIAL_OFFSET + residential,
                location: *location,
                outcome: Outcome::Success,
                app,
            },
        };
        a.remaining -= 1;
        a.due = seq + BURST_SPACING;
        if a.remaining == 0 {
            self.active.swap_remove(i);
        }
        login
    }

    /// Starts a scenario whose first event is emitted now and returns that event.
    fn start(&mut self, scenario: Scenario, events: u32) -> Login {
        self.active.push(Active {
            due: self.seq,
            remaining: events,
            scenario,
        });
        let i = self.active.len() - 1;
        self.step(i)
    }

    fn choose(&mut self, event_time_us: i64) -> Login {
        let seq = self.seq;
        if let Some(i) = self.active.iter().position(|a| a.due <= seq) {
            return self.step(i);
        }
        if self.brute.due(seq) {
            self.brute.started(seq, &mut self.rng);
            let (ip, location) = self.hosting_ip();
            let user = self.rng.index(USER_COUNT);
            let app = *self.rng.pick(&APPS);
            return self.start(
                Scenario::BruteForce {
                    ip,
                    location,
                    user,
                    app,
                },
                AUTH_BRUTE_FORCE_FAILURES,
            );
        }
        if self.spray.due(seq) {
            self.spray.started(seq, &mut self.rng);
            let (ip, location) = self.hosting_ip();
            let mut stride = 1 + self.rng.index(USER_COUNT - 1);
            while gcd(stride, USER_COUNT) != 1 {
                stride += 1;
            }
            let next_user = self.rng.index(USER_COUNT);
            let app = *self.rng.pick(&["office365", "vpn", "github"]);
            return self.start(
                Scenario::Spray {
                    ip,
                    location,
                    next_user,
                    stride,
                    app,
                },
                AUTH_SPRAY_FAILURES,
            );
        }
        if self.travel.due(seq) {
            self.travel.started(seq, &mut self.rng);
            let user = self.rng.index(USER_COUNT);
            let (ip, location) = self.home_ip(user);
            let home_region = LOCATIONS[location].region;
            // A mapped location in another region, so enrichment sees two regions.
            let foreign = loop {
                let l = self.rng.index(LOCATIONS.len());
                if LOCATIONS[l].mapped && LOCATIONS[l].region != home_region {
                    break l;
                }
            };
            let app = *self.rng.pick(&APPS);
            let delay = self.rng.range(TRAVEL_DELAY_EVENTS.0, TRAVEL_DELAY_EVENTS.1);
            self.active.push(Active {
                due: seq + delay,
                remaining: 1,
                scenario: Scenario::TravelSecond {
                    user,
                    location: foreign,
                    app,
                },
            });
            return Login {
                user,
                ip,
                location,
                outcome: Outcome::Success,
                app,
            };
        }
        if self.blocked.due(seq) {
            self.blocked.started(seq, &mut self.rng);
            let attacker = *self
                .world
                .attacker_at(event_time_us.saturating_sub(BLOCK_TO_LOGIN_DELAY_US));
            let region = region_id(LOCATIONS[attacker.location].region);
            let user = *self.rng.pick(&self.world.users_by_region[region]);
            let app = *self.rng.pick(&["vpn", "aws-console", "office365"]);
            return Login {
                user,
                ip: attacker.ip,
                location: attacker.location,
                outcome: Outcome::Success,
                app,
            };
        }
        // Benign.
        let user = self.rng.index(USER_COUNT);
        let (ip, location) = self.home_ip(user);
        let r = self.rng.below(10_000) as u32;
        let outcome = if r < AUTH_BENIGN_FAILURE_PER_10K {
            Outcome::Failure
        } else if r < AUTH_BENIGN_FAILURE_PER_10K + AUTH_BENIGN_MFA_PER_10K {
            Outcome::MfaChallenge
        } else {
            Outcome::Success
        };
        let app = *self.rng.pick(&APPS);
        Login {
            user,
            ip,
            location,
            outcome,
            app,
        }
    }

    /// Appends the next event to `out`.
    pub fn write_next(&mut self, event_time_us: i64, out: &mut String) {
        let login = self.choose(event_time_us);
        self.seq += 1;
        let (id_hi, id_lo, session) = (self.rng.u64(), self.rng.u64(), self.rng.u64());
        let (result, event_type, status) = login.outcome.fields();
        let user = &self.world.users[login.user].name;
        let ts = self.ts.format(event_time_us);
        let mut w = ObjectWriter::new(out);
        w.str("event_time", ts);
        w.uuid("event_id", id_hi, id_lo);
        w.str("user_id", user);
        w.ip("source_ip", login.ip);
        w.str("country_code", LOCATIONS[login.location].country);
        w.str("result", result);
        w.str("event_type", event_type);
        w.str("app_name", login.app);
        w.hex_id("session_id", "sess_", session, 16);
        w.str("login_time", ts);
        w.str("username", user);
        w.str("status", status);
        w.finish();
    }
}
