//! [`LateFilter`]: enforces a source's `WATERMARK`. Each stream of a source (a file, a
//! Kafka partition, the generator) has its own watermark, the largest event time seen on it
//! minus the allowed delay, so whether a row is late depends only on that stream's order
//! and a replay after a restart decides the same. A row whose event time is below its
//! stream's watermark is late: it goes to `rampart_late_events` and not to the views.

use std::collections::{HashMap, HashSet};

use rampart_repr::{Datum, ErrorLog};

/// A source's watermark: the event-time column and the allowed delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    /// Index of the event-time column in the source's rows.
    pub column: usize,
    /// Allowed lateness in microseconds.
    pub delay_us: i64,
}

/// Per-reader watermark state.
pub(crate) struct LateFilter {
    spec: Option<Watermark>,
    /// Largest event time seen per stream.
    max_seen: HashMap<String, i64>,
    /// Streams that may have events to deliver but have not delivered one: they hold the
    /// watermark back (a Kafka partition with unread messages, before its first).
    pending: HashSet<String>,
    late: ErrorLog,
    source: String,
}

impl LateFilter {
    pub(crate) fn new(spec: Option<Watermark>, late: ErrorLog, source: &str) -> Self {
        LateFilter {
            spec,
            max_seen: HashMap::new(),
            pending: HashSet::new(),
            late,
            source: source.to_string(),
        }
    }

    /// The filter of a reader started with `ctx`: one resuming at a checkpoint's positions
    /// starts from the largest event time each stream had reached there, so it finds late
    /// exactly the rows the reader before the restart would have.
    pub(crate) fn for_reader(ctx: &crate::source::SourceContext) -> Self {
        let mut filter = LateFilter::new(ctx.watermark, ctx.late.clone(), &ctx.name);
        if let Some(at) = &ctx.resume_at {
            filter.resume(at);
        }
        filter
    }

    /// Starts every stream of `at` from the largest event time it records.
    pub(crate) fn resume(&mut self, at: &rampart_repr::Positions) {
        if self.spec.is_none() {
            return;
        }
        for (stream, us) in at.event_times() {
            let max = self.max_seen.entry(stream.to_string()).or_insert(i64::MIN);
            *max = (*max).max(us);
        }
    }

    /// Hands the reader's watermark, and `stream`'s largest event time, to the batches
    /// `out` sends next (call after a row of `stream` was admitted).
    pub(crate) fn report(&self, stream: &str, out: &mut crate::batch::BatchSender) {
        if self.spec.is_none() {
            return;
        }
        self.report_watermark(out);
        if let Some(max) = self.max_seen.get(stream) {
            out.set_event_time(stream, *max);
        }
    }

    /// Whether `row` (read from `stream` at `offset`, as `raw`) is on time. A late row is
    /// recorded in the late-events log. Rows with a NULL event time are let through.
    pub(crate) fn admit(&mut self, row: &[Datum], stream: &str, offset: Option<i64>, raw: &str) -> bool {
        let Some(spec) = self.spec else { return true };
        let Some(Datum::Timestamp(t)) = row.get(spec.column) else {
            return true;
        };
        let max = match self.max_seen.get_mut(stream) {
            Some(m) => m,
            None => self.max_seen.entry(stream.to_string()).or_insert(i64::MIN),
        };
        let watermark = max.saturating_sub(spec.delay_us);
        if *t < watermark {
            self.late.record(
                &self.source,
                stream,
                offset,
                raw,
                format!(
                    "event time {} is behind the watermark {} (the latest event time on this stream minus the allowed delay)",
                    fmt_us(*t),
                    fmt_us(watermark)
                ),
            );
            return false;
        }
        *max = (*max).max(*t);
        self.pending.remove(stream);
        true
    }

    /// `stream` may have events to deliver: until it delivers one, or [`LateFilter::idle`]
    /// says it has none, the watermark stays where it is. Otherwise a reader that happens
    /// to read one Kafka partition's backlog before another's would move the watermark by
    /// the first alone, and the other's events would arrive behind it.
    pub(crate) fn expect(&mut self, stream: &str) {
        if self.spec.is_some() && !self.max_seen.contains_key(stream) {
            self.pending.insert(stream.to_string());
        }
    }

    /// `stream` has nothing to deliver for now (read to its end without an event): it no
    /// longer holds the watermark back. True if it did.
    pub(crate) fn idle(&mut self, stream: &str) -> bool {
        self.pending.remove(stream)
    }

    /// Whether the source has a `WATERMARK` to enforce.
    pub(crate) fn enforced(&self) -> bool {
        self.spec.is_some()
    }

    /// Whether `stream` has delivered an event (or had, before a restart).
    pub(crate) fn delivered(&self, stream: &str) -> bool {
        self.max_seen.get(stream).is_some_and(|m| *m > i64::MIN)
    }

    /// Whether some stream holds the watermark back.
    #[cfg(test)]
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Hands the reader's watermark to the batches `out` sends next (after a stream went
    /// idle: no row was admitted, but the watermark may move).
    pub(crate) fn report_watermark(&self, out: &mut crate::batch::BatchSender) {
        if self.spec.is_some() {
            out.set_watermark(self.watermark());
        }
    }

    /// The source's watermark as far as this reader has read: the lowest of its streams'
    /// watermarks (streams that have not delivered an event yet do not hold it back,
    /// unless they are expected to: then `None`, the watermark stays). `None` without a
    /// `WATERMARK` or before the first event.
    pub(crate) fn watermark(&self) -> Option<i64> {
        let spec = self.spec?;
        if !self.pending.is_empty() {
            return None;
        }
        self.max_seen
            .values()
            .filter(|m| **m > i64::MIN)
            .map(|m| m.saturating_sub(spec.delay_us))
            .min()
    }
}

/// The watermark a reader resuming at `at` starts with: the one the reader before it had
/// reported there or, in positions from before that was recorded, its streams' largest
/// event times there minus the delay, the lowest of them (`None` without a `WATERMARK` or
/// before any event).
pub fn resumed_watermark(spec: Option<Watermark>, at: &rampart_repr::Positions) -> Option<i64> {
    spec?;
    if let Some(w) = at.watermark() {
        return Some(w);
    }
    let mut filter = LateFilter::new(spec, ErrorLog::new(), "");
    filter.resume(at);
    filter.watermark()
}

fn fmt_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| us.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_behind_their_streams_watermark_are_late_and_recorded() {
        let late = ErrorLog::new();
        let mut f = LateFilter::new(
            Some(Watermark {
                column: 0,
                delay_us: 5_000_000,
            }),
            late.clone(),
            "auth",
        );
        let at = |s: i64| rampart_repr::row![Datum::Timestamp(s * 1_000_000)];
        assert!(f.admit(&at(100), "a", Some(1), "{}"));
        assert!(f.admit(&at(96), "a", Some(2), "{}"), "within the 5 s delay");
        assert!(
            f.admit(&at(95), "a", Some(3), "{}"),
            "exactly at the watermark is on time"
        );
        assert!(!f.admit(&at(94), "a", Some(4), "{\"late\":1}"));
        assert!(
            f.admit(&at(50), "b", Some(1), "{}"),
            "another stream has its own watermark"
        );
        assert!(f.admit(&rampart_repr::row![Datum::Null], "a", Some(5), "{}"));
        assert_eq!(
            f.watermark(),
            Some(45_000_000),
            "the source's watermark is its slowest stream's"
        );
        // A reader resuming where this one reported its positions decides the same.
        let mut positions = rampart_repr::Positions::default();
        for (stream, max) in &f.max_seen {
            positions.advance_event_time(stream, *max);
        }
        let mut resumed = LateFilter::new(f.spec, ErrorLog::new(), "auth");
        resumed.resume(&positions);
        assert_eq!(resumed.watermark(), Some(45_000_000));
        assert_eq!(resumed_watermark(f.spec, &positions), Some(45_000_000));
        assert!(!resumed.admit(&at(94), "a", Some(6), "{}"), "still late on stream a");
        assert!(resumed.admit(&at(95), "a", Some(7), "{}"));
        assert!(!resumed.admit(&at(44), "b", Some(2), "{}"), "and on stream b");
        assert_eq!(resumed_watermark(None, &positions), None, "no WATERMARK, no watermark");
        let recs = late.snapshot();
        assert_eq!(recs.len(), 1);
        assert_eq!((recs[0].location.as_str(), recs[0].offset), ("a", Some(4)));
        assert!(recs[0].reason.contains("behind the watermark"), "{}", recs[0].reason);
    }

    #[test]
    fn an_expected_stream_holds_the_watermark_until_it_delivers_or_is_idle() {
        let spec = Some(Watermark {
            column: 0,
            delay_us: 5_000_000,
        });
        let at = |s: i64| rampart_repr::row![Datum::Timestamp(s * 1_000_000)];
        let mut f = LateFilter::new(spec, ErrorLog::new(), "auth");
        for p in ["t/0", "t/1", "t/2"] {
            f.expect(p);
        }
        // Partition 1's backlog is read first: the watermark does not move by it alone,
        // so partition 0's older events are not behind it.
        assert!(f.admit(&at(100), "t/1", Some(1), "{}"));
        assert_eq!(f.watermark(), None);
        assert!(f.admit(&at(50), "t/0", Some(1), "{}"));
        assert_eq!(f.watermark(), None, "partition 2 has not delivered");
        assert!(f.idle("t/2"), "read to its end: it no longer holds the watermark");
        assert!(!f.has_pending());
        assert_eq!(f.watermark(), Some(45_000_000));
        // A stream that has delivered is not held again.
        f.expect("t/0");
        assert_eq!(f.watermark(), Some(45_000_000));
        // The reported watermark is what a resumed reader starts from.
        let mut positions = rampart_repr::Positions::default();
        positions.advance_event_time("t/1", 100_000_000);
        assert_eq!(resumed_watermark(spec, &positions), Some(95_000_000));
        positions.advance_watermark(45_000_000);
        assert_eq!(resumed_watermark(spec, &positions), Some(45_000_000));
    }
}
