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
}
