//! Range joins: `LEFT JOIN ranges r ON probe(l) BETWEEN r.low AND r.high` (GeoIP
//! enrichment: `inet_aton(ip) BETWEEN ip_range_start AND ip_range_end`) and the inner form.
//!
//! Without an equality key a generic join would pair every row with every range on one
//! worker and test each pair. Here the probe value is computed once per row, ranges are
//! kept ordered by their low end, and each row finds the ranges containing it by a range
//! lookup. Rows are spread over the workers; range rows (a reference table, small) are
//! broadcast so every worker holds them all.
//!
//! A range change re-probes the rows whose value it covers (rows are also kept ordered by
//! value), so reference-table updates retract and re-enrich exactly as a generic join
//! would. For a left join, a row without a covering range is emitted padded with NULLs.
//!
//! State: every row (by probe value) and every range (by low end).

use std::collections::BTreeMap;

use differential_dataflow::{AsCollection, Hashable};
use rampart_plan::Plan;
use rampart_repr::{Datum, Error, JoinedRow, Row};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::Broadcast;

use super::map_filter::{eval_rows_isolating, map_rows};
use super::row_bag::RowBag;
use super::watermark::{downgrade, lower_of, pop_complete};
use super::{joined, padded, RenderContext, Rows};
use crate::eval::Evaluator;
use crate::row_expr::RowExpr;
use crate::{Diff, Time};

pub(super) use rampart_plan::RangeJoin as RangeSpec;

/// Ranges by low end: (high, range row, multiplicity).
pub(super) type Ranges = BTreeMap<Datum, Vec<(Datum, Row, Diff)>>;

/// The range rows covering `v`.
pub(super) fn covering<'a>(ranges: &'a Ranges, v: &'a Datum) -> impl Iterator<Item = (&'a Row, Diff)> + 'a {
    ranges
        .range(..=v.clone())
        .flat_map(move |(_, rs)| rs.iter().filter(move |(high, _, _)| v <= high && !high.is_null()))
        .map(|(_, r, d)| (r, *d))
}

/// Adds `d` to the multiplicity of the range `low..=high` with row `range`, dropping it
/// (and its low end, when no other range starts there) at zero.
pub(super) fn apply_range(ranges: &mut Ranges, low: Datum, high: Datum, range: Row, d: Diff) {
    let at = ranges.entry(low.clone()).or_default();
    match at.iter_mut().find(|(h, r, _)| *h == high && *r == range) {
        Some((_, _, n)) => *n += d,
        None => at.push((high, range, d)),
    }
    at.retain(|(_, _, n)| *n != 0);
    if at.is_empty() {
        ranges.remove(&low);
    }
}

/// Changes waiting for their time: rows (probe value, row, diff) and ranges (low, high,
/// range row, diff).
type PendingAt = (Vec<(Datum, Row, Diff)>, Vec<(Datum, Datum, Row, Diff)>);

/// A row or range change: (0 = row with its probe value | 1 = range with low and high).
type Change = ((u8, Datum, Datum, Row), Time, Diff);

/// How the join builds an output row from a row and a matching range (or none).
struct OutputRow {
    /// The projection right above the join, when it runs on rows: the output row is
    /// built from the pair directly. `None`: the joined row itself.
    project: Option<Vec<RowExpr>>,
    /// The range side of an unmatched row of a left join: NULLs.
    nulls: Row,
}

impl OutputRow {
    fn pair(&self, row: &Row, range: &Row) -> Row {
        match &self.project {
            Some(exprs) => {
                let pair = JoinedRow {
                    left: row,
                    right: range,
                };
                exprs.iter().map(|e| e.eval(&pair)).collect()
            }
            None => joined(row, range),
        }
    }

    fn pad(&self, row: &Row) -> Row {
        match &self.project {
            Some(_) => self.pair(row, &self.nulls),
            None => padded(row, self.nulls.len()),
        }
    }
}

/// Renders the range join `plan`; with `project`, each output row is that projection of
/// the joined row (see [`OutputRow`]).
pub(super) fn render_range_join<'s>(
    plan: &Plan,
    spec: RangeSpec,
    left: Rows<'s>,
    right: Rows<'s>,
    project: Option<Vec<RowExpr>>,
    ctx: &RenderContext<'s>,
) -> Result<Rows<'s>, Error> {
    let Plan::Join {
        left_schema,
        right_schema,
        ..
    } = plan
    else {
        return Err(Error::internal("not a join"));
    };
    let right_width = right_schema.fields().len();
    let (errors, view) = (ctx.errors.clone(), ctx.view.clone());
    let probe = Evaluator::new(std::slice::from_ref(&spec.probe), left_schema)?;
    let rows = map_rows(left, "RangeProbe", move |data, out| {
        let vals = eval_rows_isolating(&probe, data.iter().map(|(r, _, _)| r), &errors, &view);
        for ((row, t, d), v) in data.drain(..).zip(vals) {
            if let Some(v) = v {
                out.push(((0u8, v.first().cloned().unwrap_or(Datum::Null), Datum::Null, row), t, d));
            }
        }
    });
    let (errors, view) = (ctx.errors.clone(), ctx.view.clone());
    let bounds = Evaluator::new(&[spec.low.clone(), spec.high.clone()], right_schema)?;
    let ranges = map_rows(right, "RangeBounds", move |data, out| {
        let vals = eval_rows_isolating(&bounds, data.iter().map(|(r, _, _)| r), &errors, &view);
        for ((row, t, d), v) in data.drain(..).zip(vals) {
            if let Some(v) = v {
                let low = v.first().cloned().unwrap_or(Datum::Null);
                let high = v.get(1).cloned().unwrap_or(Datum::Null);
                // `x BETWEEN NULL AND h` is never true: a range with a NULL bound covers
                // nothing (NULL sorts lowest, so kept it would cover every value up to h).
                if !low.is_null() && !high.is_null() {
                    out.push(((1u8, low, high, row), t, d));
                }
            }
        }
    });
    let left_join = spec.left;
    let spread = Exchange::new(|(c, _, _): &Change| c.3.hashed());
    Ok(rows
        .inner
        .binary_frontier::<_, CapacityContainerBuilder<Vec<(Row, Time, Diff)>>, _, _, _, _>(
            ranges.inner.broadcast(),
            spread,
            timely::dataflow::channels::pact::Pipeline,
            "RangeJoin",
            move |cap, _info| {
                let mut cap = Some(cap);
                let mut pending: BTreeMap<Time, PendingAt> = BTreeMap::new();
                let mut ranges: Ranges = BTreeMap::new();
                // Rows by probe value (rows with a NULL value never match and are not kept).
                let mut probes: BTreeMap<Datum, RowBag> = BTreeMap::new();
                let shape = OutputRow {
                    project,
                    nulls: std::iter::repeat_n(Datum::Null, right_width).collect(),
                };
                move |(rows_in, rows_frontier), (ranges_in, ranges_frontier), output| {
                    rows_in.for_each(|_cap, batch| {
                        for ((_, v, _, row), t, d) in batch.drain(..) {
                            pending.entry(t).or_default().0.push((v, row, d));
                        }
                    });
                    ranges_in.for_each(|_cap, batch| {
                        for ((_, low, high, row), t, d) in batch.drain(..) {
                            pending.entry(t).or_default().1.push((low, high, row, d));
                        }
                    });
                    let Some(held) = cap.as_mut() else { return };
                    while let Some((t, (row_changes, range_changes))) =
                        pop_complete(&mut pending, rows_frontier, ranges_frontier)
                    {
                        let mut out: Vec<(Row, Time, Diff)> = Vec::new();
                        // Rows against the ranges before this time ...
                        for (v, row, d) in row_changes {
                            if v.is_null() {
                                if left_join {
                                    out.push((shape.pad(&row), t, d));
                                }
                                continue;
                            }
                            let mut matched = false;
                            for (r, dr) in covering(&ranges, &v) {
                                matched = true;
                                out.push((shape.pair(&row, r), t, d * dr));
                            }
                            if !matched && left_join {
                                out.push((shape.pad(&row), t, d));
                            }
                            let at = probes.entry(v.clone()).or_default();
                            at.update(row, d);
                            if at.is_empty() {
                                probes.remove(&v);
                            }
                        }
                        // ... then each range change against the rows, this time's included.
                        for (low, high, range, d) in range_changes {
                            let affected: Vec<(Datum, Row, Diff)> = if low.is_null() || high.is_null() || high < low {
                                Vec::new()
                            } else {
                                probes
                                    .range(low.clone()..=high.clone())
                                    .flat_map(|(v, rs)| rs.rows.iter().map(move |(r, n)| (v.clone(), r.clone(), *n)))
                                    .collect()
                            };
                            let before: Vec<bool> = affected
                                .iter()
                                .map(|(v, _, _)| covering(&ranges, v).next().is_some())
                                .collect();
                            apply_range(&mut ranges, low, high, range.clone(), d);
                            for ((v, row, n), was) in affected.into_iter().zip(before) {
                                out.push((shape.pair(&row, &range), t, d * n));
                                if left_join {
                                    let now = covering(&ranges, &v).next().is_some();
                                    if was && !now {
                                        out.push((shape.pad(&row), t, n));
                                    } else if !was && now {
                                        out.push((shape.pad(&row), t, -n));
                                    }
                                }
                            }
                        }
                        if !out.is_empty() {
                            let at = held.delayed(&t);
                            output.session(&at).give_container(&mut out);
                        }
                    }
                    downgrade(&mut cap, lower_of(rows_frontier, ranges_frontier));
                }
            },
        )
        .as_collection())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covering_finds_every_range_holding_a_value() {
        let mut ranges: Ranges = BTreeMap::new();
        for (lo, hi, name) in [(0, 9, "a"), (10, 19, "b"), (5, 15, "overlap")] {
            ranges.entry(Datum::Int(lo)).or_default().push((
                Datum::Int(hi),
                rampart_repr::row![Datum::Str(name.into())],
                1,
            ));
        }
        let names = |v: i64| -> Vec<String> {
            let v = Datum::Int(v);
            let mut n: Vec<String> = covering(&ranges, &v).map(|(r, _)| format!("{:?}", r[0])).collect();
            n.sort();
            n
        };
        assert_eq!(names(3).len(), 1);
        assert_eq!(names(12).len(), 2, "b and overlap");
        assert_eq!(names(15).len(), 2, "bounds are inclusive");
        assert!(names(20).is_empty());
    }
}
