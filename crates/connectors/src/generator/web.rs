//! Website audit logs, as in the WarpStream + RisingWave + Grafana seed.
//!
//! Emits the fields of that pipeline's `website_logs_source` (`request_timestamp,
//! ip_address, user_agent, url, http_method, status_code, response_time, referrer,
//! user_id, username, user_action, security_level`) plus `event_time` (equal to
//! `request_timestamp`). `user_action` takes the values its materialized views count
//! (`login`, `logout`, `view_page`, `navigate_page`, `submit_form`, `scroll_page`,
//! `download_file`, `upload_file`, `close_window`, `open_new_tab`); `security_level` is
//! `low`, `medium` or `high`.

use super::auth::BURST_SPACING;
use super::json::{push_u64, ObjectWriter, TimestampFormatter};
use super::schedule::{Cadence, Rng};
use super::world::{world, World, HOSTING_OFFSET, HOSTING_SIZE, LOCATIONS, USER_COUNT};

/// Vulnerability-scanner bursts started per 10,000 web events: one hosting-block IP
/// requests [`WEB_SCANNER_REQUESTS`] sensitive paths with a scanner user agent, getting
/// 401/403/404 answers, all with `security_level = 'high'`.
pub const WEB_SCANNER_PER_10K: u32 = 3;
/// Requests in one scanner burst.
pub const WEB_SCANNER_REQUESTS: u32 = 20;

const SITE: &str = "https://shop.example.com";

const USER_AGENTS: [&str; 6] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
];
const SCANNER_AGENTS: [&str; 4] = [
    "sqlmap/1.8.11#stable (https://sqlmap.org)",
    "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:Port Check)",
    "python-requests/2.32.3",
    "Mozilla/5.0 zgrab/0.x",
];
const REFERRERS: [&str; 7] = [
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://www.linkedin.com/",
    "https://twitter.com/",
    "https://shop.example.com/",
    "direct",
];
const PAGES: [&str; 8] = [
    "/",
    "/products/",
    "/category/electronics",
    "/search?q=usb-c+cable&page=2",
    "/cart",
    "/account/orders",
    "/blog/2026/security-tips",
    "/help/faq",
];
/// `(method, path, status)` probes of a scanner.
const SCANNER_PROBES: [(&str, &str, u16); 16] = [
    ("GET", "/wp-login.php", 404),
    ("GET", "/.env", 404),
    ("GET", "/.git/config", 404),
    ("GET", "/admin", 403),
    ("GET", "/phpmyadmin/", 404),
    ("GET", "/server-status", 403),
    ("GET", "/api/v1/users?id=1%27%20OR%20%271%27=%271", 403),
    ("GET", "/static/..%2f..%2f..%2fetc%2fpasswd", 404),
    ("GET", "/actuator/env", 404),
    ("GET", "/backup.zip", 404),
    ("POST", "/xmlrpc.php", 404),
    ("GET", "/cgi-bin/luci", 404),
    ("POST", "/login", 401),
    ("GET", "/config.json", 404),
    ("GET", "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", 403),
    ("POST", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", 404),
];

/// `(user_action, weight)`, weights summing to 100.
const ACTIONS: [(&str, u64); 10] = [
    ("view_page", 30),
    ("navigate_page", 18),
    ("scroll_page", 14),
    ("submit_form", 8),
    ("login", 5),
    ("logout", 4),
    ("download_file", 6),
    ("upload_file", 3),
    ("close_window", 6),
    ("open_new_tab", 6),
];

#[derive(Debug, Clone, Copy)]
struct Scanner {
    due: u64,
    ip: u32,
    agent: &'static str,
    next_probe: usize,
    remaining: u32,
}

/// One request, with the URL written to the generator's buffer.
#[derive(Debug, Clone, Copy)]
struct Request {
    ip: u32,
    agent: &'static str,
    method: &'static str,
    status: u16,
    response_ms: u64,
    referrer: &'static str,
    user: Option<usize>,
    action: &'static str,
    security: &'static str,
}

/// Generator state for web events.
#[derive(Debug)]
pub(crate) struct WebGenerator {
    world: &'static World,
    rng: Rng,
    seq: u64,
    ts: TimestampFormatter,
    scanners_cadence: Cadence,
    scanners: Vec<Scanner>,
    url: String,
}

impl WebGenerator {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed, 4);
        WebGenerator {
            world: world(),
            scanners_cadence: Cadence::new(WEB_SCANNER_PER_10K, &mut rng),
            rng,
            seq: 0,
            ts: TimestampFormatter::default(),
            scanners: Vec::with_capacity(2),
            url: String::with_capacity(96),
        }
    }

    fn scanner_step(&mut self, i: usize) -> Request {
        let response_ms = self.rng.range(2, 40);
        let s = &mut self.scanners[i];
        let (method, path, status) = SCANNER_PROBES[s.next_probe % SCANNER_PROBES.len()];
        self.url.clear();
        self.url.push_str(SITE);
        self.url.push_str(path);
        let req = Request {
            ip: s.ip,
            agent: s.agent,
            method,
            status,
            response_ms,
            referrer: "direct",
            user: None,
            action: if method == "POST" { "submit_form" } else { "view_page" },
            security: "high",
        };
        s.next_probe += 1;
        s.remaining -= 1;
        s.due = self.seq + BURST_SPACING;
        if s.remaining == 0 {
            self.scanners.swap_remove(i);
        }
        req
    }

    fn benign(&mut self) -> Request {
        let user = self.rng.index(USER_COUNT);
        let mut r = self.rng.below(100);
        let mut action = ACTIONS[0].0;
        for (a, w) in ACTIONS {
            if r < w {
                action = a;
                break;
            }
            r -= w;
        }
        self.url.clear();
        self.url.push_str(SITE);
        let (method, mut security) = match action {
            "login" => {
                self.url.push_str("/login");
                ("POST", "medium")
            }
            "logout" => {
                self.url.push_str("/logout");
                ("POST", "medium")
            }
            "submit_form" => {
                self.url
                    .push_str(self.rng.pick::<&str>(&["/checkout", "/contact", "/account/settings"]));
                ("POST", "medium")
            }
            "upload_file" => {
                self.url.push_str("/account/avatar");
                ("POST", "medium")
            }
            "download_file" => {
                self.url.push_str("/downloads/invoice-");
                push_u64(&mut self.url, self.rng.range(100_000, 999_999));
                self.url.push_str(".pdf");
                ("GET", "medium")
            }
            _ => {
                let page = *self.rng.pick(&PAGES);
                self.url.push_str(page);
                if page == "/products/" {
                    push_u64(&mut self.url, self.rng.range(1_000, 9_999));
                }
                ("GET", "low")
            }
        };
        let s = self.rng.below(1000);
        let status = if action == "login" {
            if s < 120 {
                401
            } else {
                200
            }
        } else {
            match s {
                0..=929 => {
                    if action == "upload_file" {
                        201
                    } else {
                        200
                    }
                }
                930..=949 => 304,
                950..=959 => 302,
                960..=989 => 404,
                990..=996 => 500,
                _ => 503,
            }
        };
        if status == 401 || self.url.contains("/account/") {
            security = "high";
        }
        let response_ms = if self.rng.below(100) < 3 {
            self.rng.range(800, 4_000)
        } else {
            self.rng.range(15, 350)
        };
        Request {
            ip: self.world.users[user].web_ip,
            agent: USER_AGENTS[user % USER_AGENTS.len()],
            method,
            status,
            response_ms,
            referrer: self.rng.pick::<&str>(&REFERRERS),
            user: Some(user),
            action,
            security,
        }
    }

    /// Appends the next event to `out`.
    pub fn write_next(&mut self, event_time_us: i64, out: &mut String) {
        let seq = self.seq;
        let req = if let Some(i) = self.scanners.iter().position(|s| s.due <= seq) {
            self.scanner_step(i)
        } else if self.scanners_cadence.due(seq) {
            self.scanners_cadence.started(seq, &mut self.rng);
            let l = self.rng.index(LOCATIONS.len());
            let ip = LOCATIONS[l].start + HOSTING_OFFSET + self.rng.below(HOSTING_SIZE as u64) as u32;
            let agent = *self.rng.pick(&SCANNER_AGENTS);
            let next_probe = self.rng.index(SCANNER_PROBES.len());
            self.scanners.push(Scanner {
                due: seq,
                ip,
                agent,
                next_probe,
                remaining: WEB_SCANNER_REQUESTS,
            });
            self.scanner_step(self.scanners.len() - 1)
        } else {
            self.benign()
        };
        self.seq += 1;
        let (user_id, username) = match req.user {
            Some(u) => {
                let u = &self.world.users[u];
                (u.web_id.as_str(), u.name.as_str())
            }
            None => ("anonymous", "anonymous"),
        };
        let ts = self.ts.format(event_time_us);
        let mut w = ObjectWriter::new(out);
        w.str("event_time", ts);
        w.str("request_timestamp", ts);
        w.ip("ip_address", req.ip);
        w.str("user_agent", req.agent);
        w.str("url", &self.url);
        w.str("http_method", req.method);
        w.uint("status_code", u64::from(req.status));
        w.uint("response_time", req.response_ms);
        w.str("referrer", req.referrer);
        w.str("user_id", user_id);
        w.str("username", username);
        w.str("user_action", req.action);
        w.str("security_level", req.security);
        w.finish();
    }
}
