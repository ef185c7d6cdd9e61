//! Enrichment joins: `x LEFT JOIN t1 ON key(x) = key(t1) [LEFT] JOIN t2 ON probe(x)
//! BETWEEN low(t2) AND high(t2)` (the seed's `enriched_events`: asset tier by host, region
//! by IP range), as one operator instead of a lookup join feeding a range join.
//!
//! As two operators, the range join kept every row the lookup join built (the event with its
//! asset columns, a new row per event) to answer later range changes. Here the operator
//! keeps the rows of `x` themselves (shared with the arrangement they come from), each
//! filed by its key and by its probe value, and both tables whole on every worker (they
//! are broadcast, as a range join's ranges always were; reference tables are small). The
//! rows of `x` are spread over the workers by row.
//!
//! At each time, in time order: a row change leaves as its outputs against the tables as
//! they stand; then every row of `x` that a `t1` change touches (same key) leaves as its
//! outputs retracted, the changes are applied, and its outputs are inserted again; then
//! the same for `t2` changes (rows whose probe value lies in a changed range). A row's
//! outputs are the product of its `t1` matches (NULLs if none) and its `t2` matches (NULLs
//! if none and the range join is a left join; none at all if it is inner), each built
//! directly as the projection right above the join when there is one.
//!
//! When `x` is a materialized view's log read whole (`enriched_events` over
//! `normalized_events`), the operator keeps no rows of its own: it reads the rows of `x` on
//! its worker from the log (rows stay on the worker whose log holds them), and a table
//! change scans them there (reference tables change rarely; every event is filed nowhere).
//! A [`Pin`] keeps the log's consolidation from moving rows past the times the operator
//! has processed.
//!
//! State: both tables, and unless `x` is a view's log, every row of `x` twice by reference
//! (by key, by probe value).

use std::collections::{BTreeMap, BTreeSet};

use differential_dataflow::{AsCollection, Hashable};
use foldhash::{HashMap, HashMapExt};
use rampart_repr::{Datum, Error, ErrorLog, Row, RowRef};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::Concat;

use super::map_filter::{eval_rows_isolating, map_rows};
use super::range_join::{apply_range, covering, Ranges};
use super::row_bag::{update_exact, RowBag};
use super::watermark::{downgrade, lower_of, pop_complete};
use super::{RenderContext, Rows};
use crate::eval::Evaluator;
use crate::row_expr::RowExpr;
use crate::row_log::{Pin, RowLog};
use crate::{Diff, Time};

pub(super) use rampart_plan::EnrichJoin;

/// An input change: a row of `x` (with its key and probe value), of `t1` (with its key) or
/// of `t2` (with its bounds).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Change {
    Row { key: Row, probe: Datum, row: Row },
    Table { key: Row, row: Row },
    Range { low: Datum, high: Datum, row: Row },
}

/// Changes waiting for their time: (rows, table rows, ranges).
type PendingAt = (
    Vec<(Row, Datum, Row, Diff)>,
    Vec<(Row, Row, Diff)>,
    Vec<(Datum, Datum, Row, Diff)>,
);

/// Three rows read as one: a row of `x`, its `t1` match and its `t2` match.
struct Three<'a>(&'a Row, &'a Row, &'a Row);

impl RowRef for Three<'_> {
    fn datum(&self, i: usize) -> &Datum {
        let (a, b) = (self.0.len(), self.1.len());
        if i < a {
            self.0.datum(i)
        } else if i < a + b {
            self.1.datum(i - a)
        } else {
            self.2.datum(i - a - b)
        }
    }
}

/// Where the operator finds the rows of `x` that a table change touches.
enum Kept {
    /// Filed by the operator as they arrive.
    Bags {
        /// Rows of `x` by key (rows with a NULL in their key match no `t1` row: not kept).
        by_key: HashMap<Row, RowBag>,
        /// Rows of `x` by probe value (NULL: not kept). Hashed, not ordered: a row change
        /// looks its value up, and a range change (rare) reads every value once.
        by_probe: HashMap<Datum, RowBag>,
    },
    /// In the log of the view `x` reads, on this worker; the pin follows the times the
    /// operator has processed.
    Log { log: RowLog, pin: Pin },
}

impl Kept {
    /// Files a change of a row of `x` (with its key and probe value).
    fn update(&mut self, key: Row, probe: Datum, row: Row, d: Diff) {
        let Kept::Bags { by_key, by_probe } = self else { return };
        if !probe.is_null() {
            let bag = by_probe.entry(probe.clone()).or_default();
            bag.update(row.clone(), d);
            if bag.is_empty() {
                by_probe.remove(&probe);
            }
        }
        if !key.iter().any(Datum::is_null) {
            let bag = by_key.entry(key.clone()).or_default();
            bag.update(row, d);
            if bag.is_empty() {
                by_key.remove(&key);
            }
        }
    }
}

/// Rows of `x` a table change touches (with multiplicities), and their keys and probe
/// values.
type Touched = (Vec<(Row, Diff)>, Vec<(Row, Datum)>);

/// The rows of `x` in `log` at times through `t` whose key and probe value pass `touched`,
/// with those parts. Rows whose parts fail to evaluate were recorded when they arrived and
/// match nothing: they are skipped without a second record.
fn touched_in_log(
    log: &RowLog,
    t: Time,
    eval: &Evaluator,
    split: &impl Fn(Row) -> (Row, Datum),
    view: &str,
    touched: impl Fn(&Row, &Datum) -> bool,
) -> Touched {
    let (mut rows, mut parts) = (Vec::new(), Vec::new());
    let recorded_on_arrival = ErrorLog::new();
    log.for_each_chunk_through(t, |chunk| {
        let values = eval_rows_isolating(eval, chunk.iter().map(|(r, _)| r), &recorded_on_arrival, view);
        for ((row, d), v) in chunk.iter().zip(values) {
            let Some((key, probe)) = v.map(split) else { continue };
            if touched(&key, &probe) {
                rows.push((row.clone(), *d));
                parts.push((key, probe));
            }
        }
    });
    (rows, parts)
}

/// What the operator keeps and how it builds outputs.
struct State {
    /// `t1` rows by key.
    table: HashMap<Row, Vec<(Row, Diff)>>,
    /// `t2` rows by low end.
    ranges: Ranges,
    /// Where the rows of `x` a table change touches are found.
    kept: Kept,
    /// The `t1` side of a row without a match: one row of NULLs.
    table_pad: Vec<(Row, Diff)>,
    /// The `t2` side of an unmatched row of a left range join: NULLs.
    range_nulls: Row,
    /// Whether `t2` is left-joined (unmatched rows padded) or inner-joined (dropped).
    range_left: bool,
    project: Option<Vec<RowExpr>>,
}

impl State {
    /// The outputs of `row` (with `key` and `probe`) against the tables as they stand, each
    /// with `d` times the multiplicities of its matches.
    fn outputs(&self, row: &Row, key: &Row, probe: &Datum, d: Diff, t: Time, out: &mut Vec<(Row, Time, Diff)>) {
        let table: &[(Row, Diff)] = match self.table.get(key) {
            Some(rs) if !key.iter().any(Datum::is_null) && !rs.is_empty() => rs,
            _ => &self.table_pad,
        };
        let mut matched = false;
        let ranges = (!probe.is_null()).then(|| covering(&self.ranges, probe));
        for (g, dg) in ranges.into_iter().flatten() {
            matched = true;
            for (a, da) in table {
                out.push((self.build(row, a, g), t, d * da * dg));
            }
        }
        if !matched && self.range_left {
            for (a, da) in table {
                out.push((self.build(row, a, &self.range_nulls), t, d * da));
            }
        }
    }

    /// Retracts the outputs of the `touched` rows (with their key and probe value in
    /// `parts`), applies `change` to the tables, and inserts their outputs as they now are.
    fn reemit(
        &mut self,
        touched: &[(Row, Diff)],
        parts: &[(Row, Datum)],
        t: Time,
        out: &mut Vec<(Row, Time, Diff)>,
        change: impl FnOnce(&mut State),
    ) {
        for ((row, n), (key, probe)) in touched.iter().zip(parts) {
            self.outputs(row, key, probe, -n, t, out);
        }
        change(self);
        for ((row, n), (key, probe)) in touched.iter().zip(parts) {
            self.outputs(row, key, probe, *n, t, out);
        }
    }

    fn build(&self, row: &Row, a: &Row, g: &Row) -> Row {
        match &self.project {
            Some(exprs) => {
                let three = Three(row, a, g);
                exprs.iter().map(|e| e.eval(&three)).collect()
            }
            None => row.iter().chain(a.iter()).chain(g.iter()).cloned().collect(),
        }
    }
}

/// Renders `spec` over the rendered `input`, `table` and `ranges`; with `project`, each
/// output row is that projection of the joined row.
///
/// With `input_log`, `input` is that log's rows on each worker, read whole (see the module
/// documentation).
pub(super) fn render_enrich_join<'s>(
    spec: &EnrichJoin<'_>,
    input: Rows<'s>,
    input_log: Option<RowLog>,
    table: Rows<'s>,
    ranges: Rows<'s>,
    project: Option<Vec<RowExpr>>,
    ctx: &RenderContext<'s>,
) -> Result<Rows<'s>, Error> {
    let key_width = spec.input_keys.len();
    let mut input_exprs = spec.input_keys.to_vec();
    input_exprs.push(spec.range.probe.clone());
    // Keys and probe values of `x` rows: as they arrive, and again for the rows a table
    // change touches.
    let on_arrival = std::rc::Rc::new(Evaluator::new(&input_exprs, spec.input_schema)?);
    let on_change = on_arrival.clone();
    let table_keys = Evaluator::new(spec.table_keys, spec.table_schema)?;
    let bounds = Evaluator::new(&[spec.range.low.clone(), spec.range.high.clone()], spec.ranges_schema)?;
    let (errors, view) = (ctx.errors.clone(), ctx.view.clone());
    let split = move |v: Row| -> (Row, Datum) {
        let key: Row = v.iter().take(key_width).cloned().collect();
        (key, v.get(key_width).cloned().unwrap_or(Datum::Null))
    };
    let rows = map_rows(input, "EnrichKeys", move |data, out| {
        let vals = eval_rows_isolating(&on_arrival, data.iter().map(|(r, _, _)| r), &errors, &view);
        for ((row, t, d), v) in data.drain(..).zip(vals) {
            if let Some(v) = v {
                let (key, probe) = split(v);
                out.push((Change::Row { key, probe, row }, t, d));
            }
        }
    });
    let (errors, view) = (ctx.errors.clone(), ctx.view.clone());
    let table = map_rows(table, "EnrichTableKeys", move |data, out| {
        let keys = eval_rows_isolating(&table_keys, data.iter().map(|(r, _, _)| r), &errors, &view);
        for ((row, t, d), k) in data.drain(..).zip(keys) {
            match k {
                Some(key) if !key.iter().any(Datum::is_null) => out.push((Change::Table { key, row }, t, d)),
                _ => {}
            }
        }
    });
    let (errors, view) = (ctx.errors.clone(), ctx.view.clone());
    let ranges = map_rows(ranges, "EnrichRangeBounds", move |data, out| {
        let vals = eval_rows_isolating(&bounds, data.iter().map(|(r, _, _)| r), &errors, &view);
        for ((row, t, d), v) in data.drain(..).zip(vals) {
            let Some(v) = v else { continue };
            let bound = |i: usize| v.get(i).cloned().unwrap_or(Datum::Null);
            let (low, high) = (bound(0), bound(1));
            // NULL BETWEEN bounds is never true: a range with a NULL bound covers nothing.
            if !low.is_null() && !high.is_null() {
                out.push((Change::Range { low, high, row }, t, d));
            }
        }
    });
    let tables = table.inner.concat(ranges.inner).broadcast();
    // A log's rows are on the worker whose log holds them, where a table change looks.
    let (in_place, me) = (input_log.is_some(), ctx.scope.index() as u64);
    let spread = Exchange::new(move |(c, _, _): &(Change, Time, Diff)| match c {
        Change::Row { .. } if in_place => me,
        Change::Row { row, .. } => row.hashed(),
        _ => 0,
    });
    let kept = match input_log {
        Some(log) => Kept::Log { pin: log.pin(), log },
        None => Kept::Bags {
            by_key: HashMap::new(),
            by_probe: HashMap::new(),
        },
    };
    let mut state = State {
        table: HashMap::new(),
        ranges: BTreeMap::new(),
        kept,
        table_pad: vec![(
            std::iter::repeat_n(Datum::Null, spec.table_schema.fields().len()).collect(),
            1,
        )],
        range_nulls: std::iter::repeat_n(Datum::Null, spec.ranges_schema.fields().len()).collect(),
        range_left: spec.range.left,
        project,
    };
    let (errors, view) = (ctx.errors.clone(), ctx.view.clone());
    Ok(rows
        .inner
        .binary_frontier::<_, CapacityContainerBuilder<Vec<(Row, Time, Diff)>>, _, _, _, _>(
            tables,
            spread,
            Pipeline,
            "EnrichJoin",
            move |cap, _info| {
                let mut cap = Some(cap);
                let mut pending: BTreeMap<Time, PendingAt> = BTreeMap::new();
                move |(rows_in, rows_frontier), (tables_in, tables_frontier), output| {
                    let mut file = |batch: &mut Vec<(Change, Time, Diff)>| {
                        for (c, t, d) in batch.drain(..) {
                            let at = pending.entry(t).or_default();
                            match c {
                                Change::Row { key, probe, row } => at.0.push((key, probe, row, d)),
                                Change::Table { key, row } => at.1.push((key, row, d)),
                                Change::Range { low, high, row } => at.2.push((low, high, row, d)),
                            }
                        }
                    };
                    rows_in.for_each(|_cap, batch| file(batch));
                    tables_in.for_each(|_cap, batch| file(batch));
                    let Some(held) = cap.as_mut() else { return };
                    while let Some((t, (row_changes, table_changes, range_changes))) =
                        pop_complete(&mut pending, rows_frontier, tables_frontier)
                    {
                        let mut out: Vec<(Row, Time, Diff)> = Vec::new();
                        // Rows against the tables before this time ...
                        for (key, probe, row, d) in row_changes {
                            state.outputs(&row, &key, &probe, d, t, &mut out);
                            state.kept.update(key, probe, row, d);
                        }
                        // ... then table changes against the rows, this time's included: the
                        // rows they touch leave as retracted and return as they now match.
                        if !table_changes.is_empty() {
                            let keys: BTreeSet<&Row> = table_changes.iter().map(|(k, _, _)| k).collect();
                            let (touched, parts) = match &state.kept {
                                Kept::Bags { by_key, .. } => {
                                    let touched: Vec<(Row, Diff)> = keys
                                        .iter()
                                        .filter_map(|k| by_key.get(*k))
                                        .flat_map(|bag| bag.rows.iter().cloned())
                                        .collect();
                                    let parts = parts_of(&touched, &on_change, &split, &errors, &view);
                                    (touched, parts)
                                }
                                Kept::Log { log, .. } => {
                                    touched_in_log(log, t, &on_change, &split, &view, |k, _| keys.contains(k))
                                }
                            };
                            state.reemit(&touched, &parts, t, &mut out, |state| {
                                for (key, row, d) in table_changes {
                                    let rs = state.table.entry(key.clone()).or_default();
                                    update_exact(rs, row, d);
                                    if rs.is_empty() {
                                        state.table.remove(&key);
                                    }
                                }
                            });
                        }
                        if !range_changes.is_empty() {
                            let changed = Spans::of(range_changes.iter().map(|(low, high, _, _)| (low, high)));
                            let (touched, parts) = match &state.kept {
                                Kept::Bags { by_probe, .. } => {
                                    let touched: Vec<(Row, Diff)> = by_probe
                                        .iter()
                                        .filter(|(v, _)| changed.cover(v))
                                        .flat_map(|(_, bag)| bag.rows.iter().cloned())
                                        .collect();
                                    let parts = parts_of(&touched, &on_change, &split, &errors, &view);
                                    (touched, parts)
                                }
                                Kept::Log { log, .. } => touched_in_log(log, t, &on_change, &split, &view, |_, p| {
                                    !p.is_null() && changed.cover(p)
                                }),
                            };
                            state.reemit(&touched, &parts, t, &mut out, |state| {
                                for (low, high, range, d) in range_changes {
                                    apply_range(&mut state.ranges, low, high, range, d);
                                }
                            });
                        }
                        if !out.is_empty() {
                            let at = held.delayed(&t);
                            output.session(&at).give_container(&mut out);
                        }
                    }
                    let lower = lower_of(rows_frontier, tables_frontier);
                    if let Kept::Log { pin, .. } = &state.kept {
                        pin.advance(lower.unwrap_or(Time::MAX));
                    }
                    downgrade(&mut cap, lower);
                }
            },
        )
        .as_collection())
}

/// Some ranges, to ask whether any of them covers a value: sorted by low end, with the
/// highest high end among each range and those before it.
struct Spans<'a> {
    lows: Vec<&'a Datum>,
    max_high: Vec<&'a Datum>,
}

impl<'a> Spans<'a> {
    fn of(ranges: impl Iterator<Item = (&'a Datum, &'a Datum)>) -> Self {
        let mut sorted: Vec<(&Datum, &Datum)> = ranges.filter(|(low, high)| low <= high).collect();
        sorted.sort();
        let mut max_high: Vec<&Datum> = Vec::with_capacity(sorted.len());
        for (_, high) in &sorted {
            let m = match max_high.last() {
                Some(m) if *m > *high => *m,
                _ => *high,
            };
            max_high.push(m);
        }
        Spans {
            lows: sorted.into_iter().map(|(low, _)| low).collect(),
            max_high,
        }
    }

    /// Whether some range has `low <= v <= high`: the highest high end among the ranges
    /// starting at or below `v` reaches it.
    fn cover(&self, v: &Datum) -> bool {
        let n = self.lows.partition_point(|low| *low <= v);
        n > 0 && self.max_high[n - 1] >= v
    }
}

/// The key and probe value of each kept row, evaluated again (they evaluated when the rows
/// arrived, so an error now is not expected; a row that fails gets a NULL key and probe
/// value, which match nothing, and the error is recorded).
fn parts_of(
    rows: &[(Row, Diff)],
    eval: &Evaluator,
    split: &impl Fn(Row) -> (Row, Datum),
    errors: &ErrorLog,
    view: &str,
) -> Vec<(Row, Datum)> {
    eval_rows_isolating(eval, rows.iter().map(|(r, _)| r), errors, view)
        .into_iter()
        .map(|v| match v {
            Some(v) => split(v),
            None => (std::iter::once(Datum::Null).collect(), Datum::Null),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_exactly_the_values_inside_some_range() {
        let d = Datum::Int;
        let bounds = [(d(10), d(20)), (d(0), d(5)), (d(12), d(14)), (d(30), d(29))];
        let spans = Spans::of(bounds.iter().map(|(l, h)| (l, h)));
        for v in -1..35 {
            let inside = bounds.iter().any(|(l, h)| *l <= d(v) && d(v) <= *h);
            assert_eq!(spans.cover(&d(v)), inside, "{v}");
        }
        assert!(!Spans::of(std::iter::empty()).cover(&d(1)));
    }
}
