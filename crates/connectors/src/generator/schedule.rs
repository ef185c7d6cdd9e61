//! Randomness and attack scheduling shared by the per-kind generators.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The per-generator random stream (ChaCha8: portable and reproducible across platforms
/// and `rand` versions of the same major).
#[derive(Debug, Clone)]
pub(crate) struct Rng(ChaCha8Rng);

impl Rng {
    /// A stream for `seed`, salted by `salt` so different kinds with one seed differ.
    pub fn new(seed: u64, salt: u64) -> Self {
        Rng(ChaCha8Rng::seed_from_u64(
            seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ))
    }

    /// A uniformly random word.
    #[inline]
    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A number in `0..n` (`n > 0`), by multiply-shift (bias below 2^-32 for our `n`).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.0.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// An index into a slice of length `n`.
    #[inline]
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// A number in `lo..=hi`.
    #[inline]
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// A uniformly chosen element.
    #[inline]
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }
}

/// When the next scenario of one attack kind starts, in emitted-event sequence numbers.
///
/// Gaps between starts are uniform in `[mean/2, 3*mean/2]` with `mean = 10_000 /
/// per_10k`, so over `n` events about `n * per_10k / 10_000` scenarios start, with far
/// less spread than independent coin flips would give.
#[derive(Debug, Clone)]
pub(crate) struct Cadence {
    next: u64,
    mean_gap: u64,
}

impl Cadence {
    /// A cadence of `per_10k` starts per 10,000 events (0 = never).
    pub fn new(per_10k: u32, rng: &mut Rng) -> Self {
        let mean_gap = if per_10k == 0 {
            u64::MAX
        } else {
            (10_000 / per_10k as u64).max(1)
        };
        let mut c = Cadence { next: 0, mean_gap };
        c.next = c.gap(rng);
        c
    }

    fn gap(&self, rng: &mut Rng) -> u64 {
        if self.mean_gap == u64::MAX {
            return u64::MAX;
        }
        rng.range(self.mean_gap / 2, self.mean_gap + self.mean_gap / 2).max(1)
    }

    /// Whether a scenario is due at sequence number `seq`.
    #[inline]
    pub fn due(&self, seq: u64) -> bool {
        seq >= self.next
    }

    /// Records a start at `seq` and schedules the next one.
    pub fn started(&mut self, seq: u64, rng: &mut Rng) {
        self.next = seq.saturating_add(self.gap(rng));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cadence_hits_its_rate() {
        let mut rng = Rng::new(7, 1);
        let mut c = Cadence::new(25, &mut rng);
        let starts = (0..100_000u64)
            .filter(|&s| {
                let due = c.due(s);
                if due {
                    c.started(s, &mut rng);
                }
                due
            })
            .count();
        assert!((225..=275).contains(&starts), "{starts}");
        let never = Cadence::new(0, &mut rng);
        assert!(!never.due(u64::MAX - 1));
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = Rng::new(1, 2);
        for n in [1u64, 2, 3, 10, 1000] {
            for _ in 0..1000 {
                assert!(rng.below(n) < n);
            }
        }
        for _ in 0..1000 {
            let v = rng.range(5, 7);
            assert!((5..=7).contains(&v));
        }
    }
}
