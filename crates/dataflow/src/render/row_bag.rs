//! [`RowBag`]: the rows an operator keeps under one key (a probe value, a join key), with
//! multiplicities, cheap to change however many rows share the key; and [`update_exact`]
//! for the few rows of a reference table under one key, whose emptiness must be known
//! after every change.

use rampart_repr::Row;

use crate::Diff;

/// Lists up to this long are consolidated on every retraction.
const SHORT: usize = 8;

/// Rows with multiplicities. Changes are appended and the list is consolidated (sorted,
/// equal rows summed, zeros dropped) once it has doubled since the last time, so a change
/// costs amortized O(log n) however many rows share the key (an internal IP seen in
/// thousands of events) instead of a scan of all of them. Between consolidations a row may
/// appear more than once; its entries sum to its multiplicity.
#[derive(Default)]
pub(super) struct RowBag {
    /// The rows and multiplicities, possibly unconsolidated.
    pub(super) rows: Vec<(Row, Diff)>,
    /// Length after the last consolidation.
    consolidated: usize,
}

impl RowBag {
    /// Adds `d` to the multiplicity of `row`.
    pub(super) fn update(&mut self, row: Row, d: Diff) {
        self.rows.push((row, d));
        // A retraction in a short list consolidates at once, so a key whose few rows are
        // all retracted (an IP seen once, expired by a retention) is known to be empty and
        // can be dropped, instead of waiting for a doubling that never comes.
        if (d < 0 && self.rows.len() <= SHORT) || self.rows.len() >= 2 * self.consolidated.max(SHORT) {
            differential_dataflow::consolidation::consolidate(&mut self.rows);
            self.consolidated = self.rows.len();
        }
    }

    /// Whether no row is left (known only right after a consolidation).
    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Adds `d` to the multiplicity of `row` in `rows`, dropping it at zero: the list stays
/// consolidated, so `rows.is_empty()` says whether any row is left. A scan per change, for
/// lists of a handful of rows.
pub(super) fn update_exact(rows: &mut Vec<(Row, Diff)>, row: Row, d: Diff) {
    match rows.iter_mut().find(|(r, _)| *r == row) {
        Some((_, n)) => *n += d,
        None => rows.push((row, d)),
    }
    rows.retain(|(_, n)| *n != 0);
}

#[cfg(test)]
mod tests {
    use rampart_repr::Datum;

    use super::*;

    #[test]
    fn multiplicities_sum_and_empty_bags_are_seen() {
        let mut bag = RowBag::default();
        for i in 0..100 {
            bag.update(rampart_repr::row![Datum::Int(i % 10)], 1);
        }
        let total = |bag: &RowBag, v: i64| -> Diff {
            bag.rows
                .iter()
                .filter(|(r, _)| r[0] == Datum::Int(v))
                .map(|(_, d)| d)
                .sum()
        };
        assert_eq!(total(&bag, 3), 10);
        assert!(bag.rows.len() < 100, "consolidated along the way");
        for i in 0..100 {
            bag.update(rampart_repr::row![Datum::Int(i % 10)], -1);
        }
        for v in 0..10 {
            assert_eq!(total(&bag, v), 0);
        }
    }

    #[test]
    fn a_short_list_is_seen_empty_when_its_rows_are_retracted() {
        let mut bag = RowBag::default();
        bag.update(rampart_repr::row![Datum::Int(1)], 1);
        bag.update(rampart_repr::row![Datum::Int(2)], 1);
        bag.update(rampart_repr::row![Datum::Int(1)], -1);
        assert!(!bag.is_empty());
        bag.update(rampart_repr::row![Datum::Int(2)], -1);
        assert!(bag.is_empty(), "{:?}", bag.rows);
    }
}
