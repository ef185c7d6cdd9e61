//! Interval joins: an inner equi-join whose condition bounds one side's time by the
//! other's from both sides (`b.t > a.t AND b.t < a.t + INTERVAL '30 minutes'`, impossible
//! travel).
//!
//! Each side keeps its rows per join key (and per value of a `left.x <> right.y` column,
//! see [`Differ`]), ordered by time, so a new row probes only the other side's rows inside
//! its time interval instead of every row with its key. When
//! watermarks bound both time columns, once the watermark shows that no later
//! row of the other side can fall inside a row's interval, the row is dropped: its pairs
//! stay in the output, its state goes. A change to a dropped row (a reference table updated
//! long after the fact) is listed in `rampart_late_events` and skipped.
//!
//! State: per side, the rows still inside the interval of some future row of the other
//! side (about the interval's length of rows, plus the watermark delay); without
//! watermarks, every row.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use foldhash::HashMap;

use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::Expr;
use differential_dataflow::{Hashable, VecCollection};
use rampart_repr::{Datum, Error, ErrorLog, JoinedRow, Row};
use timely::dataflow::channels::pact::Exchange;

use super::map_filter::eval_isolating;
use super::watermark::{broadcast_watermark, in_time_order, Watermark};
use super::Rows;
use crate::eval::Evaluator;
use crate::row_predicate::{Cmp, Operand, RowPredicate};
use crate::{Diff, Time};

/// The time interval of the join (see `rampart_plan::event_time::JoinInterval`).
pub(super) use rampart_plan::event_time::JoinInterval as Interval;

/// Left rows with a time below this can match no later right row.
fn left_cutoff(i: &Interval, w: i64) -> i64 {
    match i.right_lag {
        Some(lag) => w.saturating_sub(lag).saturating_sub(i.hi),
        None => i64::MIN,
    }
}

/// Right rows with a time below this can match no later left row.
fn right_cutoff(i: &Interval, w: i64) -> i64 {
    match i.left_lag {
        Some(lag) => w.saturating_sub(lag).saturating_add(i.lo),
        None => i64::MIN,
    }
}

/// A range of (time, row) map entries.
type TimeSpan = (Bound<(i64, Row)>, Bound<(i64, Row)>);

/// One key's rows whose [`Differ`] column holds one value (NULL, for every row, without a
/// `Differ`): each row under its event time, with its multiplicity (one map entry per row,
/// no list per time).
struct Bucket {
    value: Datum,
    rows: BTreeMap<(i64, Row), Diff>,
}

/// One side's rows: per join key, per [`Differ`] value, by event time, the rows and their
/// multiplicities. A probe with a `Differ` skips the buckets its value does not pass against
/// whole (most candidate pairs of impossible travel are logins from the same region), so it
/// reads only rows that pass.
struct SideState {
    rows: HashMap<Row, Vec<Bucket>>,
    /// (event time, key) of every kept row, to drop old rows.
    by_time: BTreeSet<(i64, Row)>,
    /// Rows below this time have been dropped.
    cutoff: i64,
    /// The empty row, the lowest of all: `(t, lowest)` is the lowest entry at time `t`.
    lowest: Row,
}

impl SideState {
    fn new() -> Self {
        SideState {
            rows: HashMap::default(),
            by_time: BTreeSet::new(),
            cutoff: i64::MIN,
            lowest: Row::default(),
        }
    }

    /// The map range of times `from..=to`.
    fn span(&self, from: i64, to: i64) -> TimeSpan {
        let end = match to.checked_add(1) {
            Some(e) => Bound::Excluded((e, self.lowest.clone())),
            None => Bound::Unbounded,
        };
        (Bound::Included((from, self.lowest.clone())), end)
    }

    fn apply(&mut self, key: &Row, time: i64, value: Datum, row: Row, diff: Diff) {
        let buckets = self.rows.entry(key.clone()).or_default();
        let n = match buckets.iter().position(|b| b.value == value) {
            Some(n) => n,
            None => {
                buckets.push(Bucket {
                    value,
                    rows: BTreeMap::new(),
                });
                buckets.len() - 1
            }
        };
        let rows = &mut buckets[n].rows;
        match rows.entry((time, row)) {
            Entry::Occupied(mut e) => {
                *e.get_mut() += diff;
                if *e.get() == 0 {
                    e.remove();
                }
            }
            Entry::Vacant(e) => {
                if diff != 0 {
                    e.insert(diff);
                    self.by_time.insert((time, key.clone()));
                }
            }
        }
    }

    /// The rows of `key` with a time in `from..=to`; with `differ`, only those whose
    /// [`Differ`] value passes against it.
    fn probe<'a>(
        &'a self,
        key: &Row,
        from: i64,
        to: i64,
        differ: Option<&'a Datum>,
    ) -> impl Iterator<Item = (&'a Row, &'a Diff)> + 'a {
        let span = (from <= to).then(|| self.span(from, to));
        span.as_ref()
            .and_then(|_| self.rows.get(key))
            .into_iter()
            .flatten()
            .filter(move |b| differ.is_none_or(|v| Differ::passes(v, &b.value)))
            .flat_map(move |b| {
                span.clone()
                    .into_iter()
                    .flat_map(move |s| b.rows.range(s))
                    .map(|((_, r), d)| (r, d))
            })
    }

    fn drop_below(&mut self, cutoff: i64) {
        if cutoff <= self.cutoff {
            return;
        }
        self.cutoff = cutoff;
        let first_kept = (cutoff, self.lowest.clone());
        let keep = self.by_time.split_off(&first_kept);
        let old = std::mem::replace(&mut self.by_time, keep);
        let mut last: Option<Row> = None;
        for (_, key) in old {
            if last.as_ref() == Some(&key) {
                continue;
            }
            if let Some(buckets) = self.rows.get_mut(&key) {
                for b in buckets.iter_mut() {
                    b.rows = b.rows.split_off(&first_kept);
                }
                buckets.retain(|b| !b.rows.is_empty());
                if buckets.is_empty() {
                    self.rows.remove(&key);
                }
            }
            last = Some(key);
        }
    }
}

/// A change of side `side` (0 = left) and a row of the other side, read as the joined row.
fn as_joined<'r>(side: usize, mine: &'r Row, other: &'r Row) -> JoinedRow<'r> {
    if side == 0 {
        JoinedRow {
            left: mine,
            right: other,
        }
    } else {
        JoinedRow {
            left: other,
            right: mine,
        }
    }
}

/// A residual conjunct `left.x <> right.y` over string, integer or boolean columns: each
/// side files its rows under their value of that column ([`Bucket`]), and a probe reads
/// only the buckets whose value differs from its own (most candidate pairs of impossible
/// travel are logins from the same region), instead of evaluating the conjunct on every
/// candidate pair.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Differ {
    /// The column in left rows.
    left: usize,
    /// The column in right rows.
    right: usize,
}

impl Differ {
    /// The first `left.x <> right.y` conjunct of `residual` (over `left_width` left
    /// columns), and the residual without it.
    fn split(residual: Option<&Expr>, schema: &DFSchema, left_width: usize) -> (Option<Differ>, Option<Expr>) {
        let Some(residual) = residual else { return (None, None) };
        let conjuncts = split_conjunction(residual);
        let found = conjuncts
            .iter()
            .enumerate()
            .find_map(|(n, c)| match RowPredicate::compile(c, schema)? {
                RowPredicate::Compare(Cmp::NotEq, Operand::Column(a), Operand::Column(b)) => {
                    let (l, r) = (a.min(b), a.max(b));
                    (l < left_width && r >= left_width).then(|| {
                        (
                            n,
                            Differ {
                                left: l,
                                right: r - left_width,
                            },
                        )
                    })
                }
                _ => None,
            });
        match found {
            Some((n, differ)) => {
                let rest = conjuncts
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != n)
                    .map(|(_, c)| (*c).clone());
                (Some(differ), conjunction(rest))
            }
            None => (None, Some(residual.clone())),
        }
    }

    /// Whether values `a` and `b` satisfy `<>` (NULL satisfies nothing).
    fn passes(a: &Datum, b: &Datum) -> bool {
        !a.is_null() && !b.is_null() && a != b
    }
}

/// A side's change: (key, (0 = left | 1 = right, row)).
type SideUpdate = ((Row, (u8, Row)), Time, Diff);

/// A side's change waiting for its time to complete.
type PendingChange = ((Row, (u8, Row)), Diff);

/// Joins `left` and `right` (each as (key, row)) within `interval`, filtering pairs with
/// `residual` evaluated on `left ++ right`. With `skip_late_retractions` (the view reads a
/// retained view and sees its expiry), a retraction of a row already dropped is skipped
/// without a `rampart_late_events` record.
#[allow(clippy::too_many_arguments)]
pub(super) fn render_interval_join<'s>(
    left: VecCollection<'s, Time, (Row, Row), Diff>,
    right: VecCollection<'s, Time, (Row, Row), Diff>,
    watermark: Option<&Watermark<'s>>,
    interval: Interval,
    residual: Option<&Expr>,
    joined_schema: &DFSchemaRef,
    right_width: usize,
    errors: ErrorLog,
    late: ErrorLog,
    view: String,
    skip_late_retractions: bool,
) -> Result<Rows<'s>, Error> {
    let left_width = joined_schema.fields().len() - right_width;
    let (differ, residual) = Differ::split(residual, joined_schema, left_width);
    let eval = residual
        .as_ref()
        .map(|r| Evaluator::new(std::slice::from_ref(r), joined_schema))
        .transpose()?;
    // A residual that evaluates on rows whole (`a.geo_region <> b.geo_region`) is tested
    // on each candidate pair as it is probed; only the others are collected and evaluated
    // as a batch.
    let residual_on_rows: Option<RowPredicate> = eval
        .as_ref()
        .and_then(Evaluator::row_conjuncts)
        .filter(|(_, complete)| *complete)
        .map(|(p, _)| p.clone());
    let scope = left.scope();
    let tagged = left
        .map(|(k, r)| (k, (0u8, r)))
        .concat(right.map(|(k, r)| (k, (1u8, r))));
    let by_key = Exchange::new(|((k, _), _, _): &SideUpdate| k.hashed());
    // Without watermarks on both sides nothing is ever dropped: an empty watermark stream.
    let wm = match watermark.filter(|_| interval.frees_state()) {
        Some(w) => broadcast_watermark(w),
        None => timely::dataflow::operators::generic::operator::empty(scope),
    };
    let mut sides = [SideState::new(), SideState::new()];
    Ok(in_time_order(
        tagged.inner,
        by_key,
        wm,
        "IntervalJoin",
        move |t, updates: Vec<PendingChange>, w, out| {
            let (lefts, rights): (Vec<_>, Vec<_>) = updates.into_iter().partition(|((_, (sd, _)), _)| *sd == 0);
            // Left changes against the right rows before this time, then right
            // changes against the left rows including this time's.
            for (side, changes) in [(0usize, lefts), (1usize, rights)] {
                let (col, differ_col) = if side == 0 {
                    (interval.left_col, differ.map(|d| d.left))
                } else {
                    (interval.right_col, differ.map(|d| d.right))
                };
                let (first, second) = sides.split_at_mut(1);
                let (mine, other) = if side == 0 {
                    (&mut first[0], &second[0])
                } else {
                    (&mut second[0], &first[0])
                };
                let mut live: Vec<(Row, i64, Row, Diff, Datum)> = Vec::with_capacity(changes.len());
                for ((key, (_, row)), d) in changes {
                    let Some(Datum::Timestamp(time)) = row.get(col).cloned() else {
                        continue; // a NULL time satisfies no interval
                    };
                    if time < mine.cutoff {
                        if d < 0 && skip_late_retractions {
                            continue;
                        }
                        late.record(
                            &view,
                            "interval join",
                            None,
                            &format!("{row:?}"),
                            "a change to a row the watermark had already dropped from the interval join; it was not applied",
                        );
                        continue;
                    }
                    let value = differ_col.and_then(|c| row.get(c).cloned()).unwrap_or(Datum::Null);
                    live.push((key, time, row, d, value));
                }
                let pair = |i: usize, r: &'_ Row| -> Row {
                    if side == 0 {
                        super::joined(&live[i].2, r)
                    } else {
                        super::joined(r, &live[i].2)
                    }
                };
                // Candidate pairs (change, other row) within the interval, tested
                // without building the joined rows; only matches are built.
                let mut cands: Vec<(usize, &Row, Diff)> = Vec::new();
                for (i, (key, time, _, d, value)) in live.iter().enumerate() {
                    let (from, to) = if side == 0 {
                        (time.saturating_add(interval.lo), time.saturating_add(interval.hi))
                    } else {
                        (time.saturating_sub(interval.hi), time.saturating_sub(interval.lo))
                    };
                    if differ.is_some() && value.is_null() {
                        continue; // NULL <> anything is not true
                    }
                    let probed = other.probe(key, from, to, differ.map(|_| value));
                    match (&eval, &residual_on_rows) {
                        (None, _) => out.extend(probed.map(|(r, dr)| (pair(i, r), t, d * dr))),
                        (Some(_), Some(p)) => {
                            for (r, dr) in probed {
                                if p.eval(&as_joined(side, &live[i].2, r)) == Some(true) {
                                    out.push((pair(i, r), t, d * dr));
                                }
                            }
                        }
                        (Some(_), None) => cands.extend(probed.map(|(r, dr)| (i, r, *dr))),
                    }
                }
                if let (Some(eval), None) = (&eval, &residual_on_rows) {
                    let keep: Vec<bool> = {
                        let joined: Vec<JoinedRow<'_>> =
                            cands.iter().map(|(i, r, _)| as_joined(side, &live[*i].2, r)).collect();
                        let refs: Vec<&JoinedRow<'_>> = joined.iter().collect();
                        eval_isolating(&refs, |rs| eval.eval_predicate(rs.iter().copied()), &errors, &view)
                            .into_iter()
                            .map(|k| k == Some(true))
                            .collect()
                    };
                    for ((i, r, dr), k) in cands.iter().zip(keep) {
                        if k {
                            out.push((pair(*i, r), t, live[*i].3 * dr));
                        }
                    }
                }
                drop(cands);
                for (key, time, row, d, value) in live {
                    mine.apply(&key, time, value, row, d);
                }
            }
            if let Some(w) = w {
                sides[0].drop_below(left_cutoff(&interval, w));
                sides[1].drop_below(right_cutoff(&interval, w));
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_plan::event_time::TimeBound;

    use rampart_plan::event_time::join_interval as find_interval;

    #[test]
    fn both_sided_bounds_make_an_interval_and_cutoffs() {
        // Joined row: left (t, u), right (t, u). b.t > a.t  AND  b.t < a.t + 30 min.
        let thirty = 1_800_000_000;
        let bounds = [
            TimeBound {
                bounded: 2,
                by: 0,
                offset: 1,
            },
            TimeBound {
                bounded: 0,
                by: 2,
                offset: 1 - thirty,
            },
        ];
        let lags = vec![Some(0), None];
        let i = find_interval(&bounds, 2, &lags, &lags).expect("an interval");
        assert!(i.frees_state());
        assert_eq!((i.left_col, i.right_col, i.lo, i.hi), (0, 0, 1, thirty - 1));
        // At watermark W, a later right row has t >= W, so a left row needs t + 30 min > W.
        assert_eq!(left_cutoff(&i, 10 * thirty), 9 * thirty + 1);
        // A later left row has t >= W, so a right row needs t > W.
        assert_eq!(right_cutoff(&i, 10 * thirty), 10 * thirty + 1);
        assert!(
            find_interval(&bounds[..1], 2, &lags, &lags).is_none(),
            "one-sided: unbounded"
        );
    }

    #[test]
    fn a_cross_side_inequality_is_split_off_the_residual() {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use datafusion::logical_expr::{col, lit};
        // Left (lu, lr), right (ru, rr).
        let fields = ["lu", "lr", "ru", "rr"].map(|n| Field::new(n, DataType::Utf8, true));
        let schema = DFSchema::try_from(Schema::new(fields.to_vec())).unwrap();
        let other = col("lu").eq(lit("x"));
        let residual = other.clone().and(col("rr").not_eq(col("lr")));
        let (differ, rest) = Differ::split(Some(&residual), &schema, 2);
        assert_eq!(differ, Some(Differ { left: 1, right: 1 }));
        assert_eq!(rest, Some(other.clone()));
        // Both columns on one side: not a cross-side inequality.
        let same_side = col("lu").not_eq(col("lr"));
        let (differ, rest) = Differ::split(Some(&same_side), &schema, 2);
        assert_eq!((differ, rest), (None, Some(same_side)));
        assert!(Differ::passes(&Datum::str("EU"), &Datum::str("US")));
        assert!(!Differ::passes(&Datum::str("EU"), &Datum::str("EU")));
        assert!(!Differ::passes(&Datum::Null, &Datum::str("EU")));
    }

    #[test]
    fn side_state_probes_by_time_and_drops_old_rows() {
        let mut s = SideState::new();
        let k = rampart_repr::row![Datum::Int(1)];
        for t in [10, 20, 30] {
            s.apply(&k, t, Datum::Null, rampart_repr::row![Datum::Int(t)], 1);
        }
        let hits: Vec<i64> = s.probe(&k, 15, 30, None).map(|(r, _)| r[0].as_int().unwrap()).collect();
        assert_eq!(hits, vec![20, 30]);
        s.apply(&k, 20, Datum::Null, rampart_repr::row![Datum::Int(20)], -1);
        assert_eq!(s.probe(&k, 0, 100, None).count(), 2);
        s.drop_below(25);
        assert_eq!(s.probe(&k, 0, 100, None).count(), 1);
        s.drop_below(31);
        assert!(s.rows.is_empty());
    }

    #[test]
    fn a_probe_with_a_differ_reads_only_other_values_buckets() {
        let mut s = SideState::new();
        let k = rampart_repr::row![Datum::Int(1)];
        for (t, region) in [(10, "EU"), (11, "US"), (12, "EU"), (13, "APAC")] {
            s.apply(&k, t, Datum::str(region), rampart_repr::row![Datum::Int(t)], 1);
        }
        s.apply(&k, 14, Datum::Null, rampart_repr::row![Datum::Int(14)], 1);
        let times = |s: &SideState, v: &Datum, from, to| -> Vec<i64> {
            let mut t: Vec<i64> = s
                .probe(&k, from, to, Some(v))
                .map(|(r, _)| r[0].as_int().unwrap())
                .collect();
            t.sort();
            t
        };
        assert_eq!(times(&s, &Datum::str("EU"), 0, 100), vec![11, 13], "NULL never differs");
        assert_eq!(times(&s, &Datum::str("US"), 0, 11), vec![10]);
        assert_eq!(times(&s, &Datum::Null, 0, 100), Vec::<i64>::new());
        assert_eq!(s.probe(&k, 0, 100, None).count(), 5);
        s.drop_below(12);
        assert_eq!(times(&s, &Datum::str("US"), 0, 100), vec![12, 13]);
        assert_eq!(s.rows[&k].len(), 3, "the US bucket is empty and gone");
    }
}
