//! Allocation-free JSON writing helpers: one object per event, written straight into a
//! `String` (no `serde_json::Value`), with proper string escaping.

use std::fmt::Write as _;

/// Writes one flat JSON object into a buffer, field by field.
pub(crate) struct ObjectWriter<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> ObjectWriter<'a> {
    /// Starts an object (`{`) at the end of `out`.
    pub fn new(out: &'a mut String) -> Self {
        out.push('{');
        ObjectWriter { out, first: true }
    }

    #[inline]
    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        // Keys are compile-time identifiers that never need escaping.
        debug_assert!(!key.bytes().any(needs_escape));
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    /// A string field, escaped.
    #[inline]
    pub fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        push_json_str(self.out, value);
    }

    /// An unsigned integer field.
    #[inline]
    pub fn uint(&mut self, key: &str, value: u64) {
        self.key(key);
        push_u64(self.out, value);
    }

    /// An IPv4 address field (dotted quad string).
    #[inline]
    pub fn ip(&mut self, key: &str, addr: u32) {
        self.key(key);
        self.out.push('"');
        push_ip(self.out, addr);
        self.out.push('"');
    }

    /// A string field made of a prefix and `digits` lowercase hex digits of `value`.
    #[inline]
    pub fn hex_id(&mut self, key: &str, prefix: &str, value: u64, digits: u32) {
        self.key(key);
        self.out.push('"');
        self.out.push_str(prefix);
        push_hex(self.out, value, digits);
        self.out.push('"');
    }

    /// A UUID (version 4 layout) string field built from two random words.
    #[inline]
    pub fn uuid(&mut self, key: &str, hi: u64, lo: u64) {
        self.key(key);
        self.out.push('"');
        push_uuid(self.out, hi, lo);
        self.out.push('"');
    }

    /// Closes the object.
    #[inline]
    pub fn finish(self) {
        self.out.push('}');
    }
}

#[inline]
fn needs_escape(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// Appends `s` as a JSON string literal (with quotes), escaping `"`, `\` and control
/// characters.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        out.push_str(&s[start..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends the decimal form of `v`.
#[inline]
pub(crate) fn push_u64(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("0"));
}

/// Appends an IPv4 address as a dotted quad.
#[inline]
pub(crate) fn push_ip(out: &mut String, addr: u32) {
    let o = addr.to_be_bytes();
    push_u64(out, o[0] as u64);
    out.push('.');
    push_u64(out, o[1] as u64);
    out.push('.');
    push_u64(out, o[2] as u64);
    out.push('.');
    push_u64(out, o[3] as u64);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the low `digits` hex digits of `v` (most significant first).
#[inline]
pub(crate) fn push_hex(out: &mut String, v: u64, digits: u32) {
    for k in (0..digits).rev() {
        out.push(HEX[((v >> (4 * k)) & 0xf) as usize] as char);
    }
}

fn push_uuid(out: &mut String, hi: u64, lo: u64) {
    // Version 4, RFC 4122 variant.
    let hi = (hi & !0xF000) | 0x4000;
    let lo = (lo & !(0xC << 60)) | (0x8 << 60);
    push_hex(out, hi >> 32, 8);
    out.push('-');
    push_hex(out, hi >> 16, 4);
    out.push('-');
    push_hex(out, hi, 4);
    out.push('-');
    push_hex(out, lo >> 48, 4);
    out.push('-');
    push_hex(out, lo, 12);
}

/// Formats microsecond timestamps as RFC 3339 UTC with milliseconds
/// (`2026-11-22T10:00:00.123Z`), caching the date-time part of the last second seen.
#[derive(Debug, Default)]
pub(crate) struct TimestampFormatter {
    second: Option<i64>,
    /// `YYYY-MM-DDTHH:MM:SS` of `second`, then `.mmmZ` of the last call.
    text: String,
    prefix_len: usize,
}

impl TimestampFormatter {
    /// The formatted timestamp for `us` microseconds since the Unix epoch.
    pub fn format(&mut self, us: i64) -> &str {
        let secs = us.div_euclid(1_000_000);
        let millis = (us.rem_euclid(1_000_000) / 1000) as u32;
        if self.second != Some(secs) {
            self.second = Some(secs);
            self.text.clear();
            let days = secs.div_euclid(86_400);
            let sod = secs.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            let _ = write!(
                self.text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                y,
                m,
                d,
                sod / 3600,
                (sod / 60) % 60,
                sod % 60
            );
            self.prefix_len = self.text.len();
        } else {
            self.text.truncate(self.prefix_len);
        }
        self.text.push('.');
        self.text.push((b'0' + (millis / 100) as u8) as char);
        self.text.push((b'0' + (millis / 10 % 10) as u8) as char);
        self.text.push((b'0' + (millis % 10) as u8) as char);
        self.text.push('Z');
        &self.text
    }
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe as i64 + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, SecondsFormat};

    #[test]
    fn timestamps_match_chrono() {
        let mut f = TimestampFormatter::default();
        let samples = [
            0i64,
            1,
            999,
            1_000,
            123_456_789,
            -1,
            -1_000_001,
            951_782_400_000_000, // 2000-02-29
            1_795_341_600_123_000,
            4_102_444_799_999_999, // 2099-12-31T23:59:59.999
        ];
        let mut x = 0x1234_5678u64;
        let more = (0..2000).map(|_| {
            x = super::super::world::mix64(x);
            (x % 8_000_000_000_000_000) as i64 - 1_000_000_000_000_000
        });
        for us in samples.into_iter().chain(more) {
            let expected = DateTime::from_timestamp_micros(us)
                .unwrap()
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            assert_eq!(f.format(us), expected, "us={us}");
            // Second call in the same second goes through the cache.
            assert_eq!(f.format(us), expected, "cached us={us}");
        }
    }

    #[test]
    fn strings_escape_like_serde_json() {
        for s in [
            "plain",
            "quote \" and back\\slash",
            "C:\\Windows\\System32\\cmd.exe /c \"dir\"",
            "ctl \u{1}\n\t\r end",
            "unicode é 日本",
            "",
        ] {
            let mut out = String::new();
            push_json_str(&mut out, s);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn numbers_ips_and_uuids() {
        let mut s = String::new();
        push_u64(&mut s, 0);
        s.push(' ');
        push_u64(&mut s, u64::MAX);
        s.push(' ');
        push_ip(&mut s, 0xC633_6401);
        assert_eq!(s, format!("0 {} 198.51.100.1", u64::MAX));
        let mut u = String::new();
        push_uuid(&mut u, u64::MAX, 0);
        assert_eq!(u, "ffffffff-ffff-4fff-8000-000000000000");
    }
}
