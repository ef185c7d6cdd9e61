//! [`Positions`]: how far a source reader has read, per stream it reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How far a reader has read, per stream: a file path to a byte offset, a Kafka partition
/// to the next offset, the generator to its event count. Each stream is read in order, so
/// positions only grow and two positions merge by taking the larger.
///
/// Readers replay deterministically from their start, so "the reader has delivered data up
/// to these positions" identifies exactly which input a view has seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Positions(pub BTreeMap<String, u64>);

impl Positions {
    /// Raises `stream`'s position to `pos` (never lowers it).
    pub fn advance(&mut self, stream: &str, pos: u64) {
        match self.0.get_mut(stream) {
            Some(p) => *p = (*p).max(pos),
            None => {
                self.0.insert(stream.to_string(), pos);
            }
        }
    }

    /// Raises every position to at least `other`'s.
    pub fn merge(&mut self, other: &Positions) {
        for (k, v) in &other.0 {
            self.advance(k, *v);
        }
    }

    /// Whether every stream of `target` has been read at least as far.
    pub fn covers(&self, target: &Positions) -> bool {
        target.0.iter().all(|(k, v)| self.0.get(k).is_some_and(|p| p >= v))
    }

    /// Whether no stream has a position.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Raises the largest event time (microseconds) read from `stream` to `us`: a source
    /// with a `WATERMARK` keeps it beside the stream's position, so a reader that resumes
    /// at these positions decides which rows are late as the reader before it would have.
    pub fn advance_event_time(&mut self, stream: &str, us: i64) {
        self.advance(&format!("{EVENT_TIME_KEY}{stream}"), order_preserving(us));
    }

    /// Raises the watermark the reader reported with these positions to `us`: a resumed
    /// reader starts from exactly it (it may be below what the streams' event times give,
    /// while a stream that has not delivered yet holds it back).
    pub fn advance_watermark(&mut self, us: i64) {
        self.advance(WATERMARK_KEY, order_preserving(us));
    }

    /// The watermark reported with these positions ([`Positions::advance_watermark`]).
    pub fn watermark(&self) -> Option<i64> {
        self.0.get(WATERMARK_KEY).map(|v| from_order_preserving(*v))
    }

    /// The largest event time read per stream ([`Positions::advance_event_time`]).
    pub fn event_times(&self) -> impl Iterator<Item = (&str, i64)> {
        self.0
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(EVENT_TIME_KEY)?, from_order_preserving(*v))))
    }
}

/// Key prefix of the entries that hold a stream's largest event time. No reader names a
/// stream so (file paths, `partition N`, `events`), and readers look their streams up by
/// name, so the entries pass through them unread.
const EVENT_TIME_KEY: &str = "\u{1}max event time of ";

/// Key of the entry holding the reported watermark (no stream is named so either).
const WATERMARK_KEY: &str = "\u{1}watermark";

/// An `i64` as a `u64` with the same order, so merging positions (the larger wins) keeps the
/// larger event time.
fn order_preserving(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

fn from_order_preserving(v: u64) -> i64 {
    (v ^ (1 << 63)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_takes_the_larger_and_covers_compares_every_stream() {
        let mut a = Positions::default();
        a.advance("p0", 10);
        a.advance("p0", 4);
        let mut b = Positions::default();
        b.advance("p0", 7);
        b.advance("p1", 3);
        assert!(!a.covers(&b), "p1 missing");
        a.merge(&b);
        assert_eq!(a.0.get("p0"), Some(&10));
        assert!(a.covers(&b));
        assert!(a.covers(&Positions::default()));
        b.advance("p1", 11);
        assert!(!a.covers(&b));
    }

    #[test]
    fn event_times_keep_the_largest_including_negative_ones_and_leave_streams_alone() {
        let mut a = Positions::default();
        a.advance("p0", 3);
        a.advance_event_time("p0", -5);
        a.advance_event_time("p0", -9);
        let mut b = Positions::default();
        b.advance_event_time("p0", 1_700_000_000_000_000);
        b.advance_event_time("p1", i64::MIN);
        let before = a.clone();
        a.merge(&b);
        assert!(a.covers(&before));
        let times: Vec<(&str, i64)> = a.event_times().collect();
        assert_eq!(times, vec![("p0", 1_700_000_000_000_000), ("p1", i64::MIN)]);
        assert_eq!(a.0.get("p0"), Some(&3), "the stream's position is its own entry");
        assert_eq!(before.event_times().collect::<Vec<_>>(), vec![("p0", -5)]);
    }
}
