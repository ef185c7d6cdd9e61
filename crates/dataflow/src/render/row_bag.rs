//! [`RowBag`]: the rows an operator keeps under one key (a probe value, a join key), with
//! multiplicities, cheap to change however many rows share the key; and [`update_exact`]
//! for the few rows of a reference table under one key, whose emptiness must be known
//! after every change.

use rampart_repr::Row;

use crate::Diff;

/// Lists up to this long are consolidated on every retraction.
const SHORT: usize = 8;

/// Rows with multiplicities. Changes are appended; only retractions make the list longer
/// than its contents (an entry and the entry that cancels it), so the list is consolidated
/// (sorted, equal rows summed, zeros dropped) once the retractions since the last time
/// reach a third of its length: a retraction costs amortized O(log n) however many rows
/// share the key (an internal IP seen in thousands of events, an application every login
/// names) instead of a scan of all of them, and an insertion costs a push. Between
/// consolidations a row may appear more than once; its entries sum to its multiplicity.
#[derive(Default)]
pub(super) struct RowBag {
    /// The rows and multiplicities, possibly unconsolidated.
    pub(super) rows: Vec<(Row, Diff)>,
    /// Retractions appended since the last consolidation.
    retractions: usize,
    /// The sum of the multiplicities: zero when every row has been retracted.
    total: Diff,
}

impl RowBag {
    /// Adds `d` to the multiplicity of `row`.
    pub(super) fn update(&mut self, row: Row, d: Diff) {
        self.rows.push((row, d));
        self.total += d;
        if d >= 0 {
            return;
        }
        self.retractions += 1;
        // A retraction in a short list, or one that brings the total to zero, consolidates
        // at once, so a key whose rows are all retracted (an IP seen once, expired by a
        // retention) is known to be empty and can be dropped.
        if self.total == 0 || self.rows.len() <= SHORT || 3 * self.retractions >= self.rows.len() {
            differential_dataflow::consolidation::consolidate(&mut self.rows);
            self.retractions = 0;
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
        assert_eq!(bag.rows.len(), 100, "insertions are appended, not consolidated");
        for i in 0..95 {
            bag.update(rampart_repr::row![Datum::Int(i % 10)], -1);
            assert!(bag.rows.len() < 150, "retractions are consolidated along the way");
        }
        for v in 0..10 {
            assert_eq!(total(&bag, v), if v < 5 { 0 } else { 1 });
        }
        for i in 95..100 {
            bag.update(rampart_repr::row![Datum::Int(i % 10)], -1);
        }
        assert!(bag.is_empty(), "{:?}", bag.rows);
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
