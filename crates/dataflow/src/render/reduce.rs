//! Grouped aggregation (`GROUP BY` with `COUNT`, `COUNT(DISTINCT)`, `FILTER (WHERE ...)`,
//! `SUM`, `MIN`, `MAX`, `AVG`).
//!
//! Each input row is evaluated once into (group key, one datum per aggregate); a datum
//! that should not count (NULL argument, or `FILTER` false) is NULL. Differential's
//! `reduce` then recomputes a group's aggregates whenever the group changes.
//!
//! State: the evaluated (key, datums) of every input row, and each group's result. When
//! the group key holds an event-time column and the input has a watermark, the windowed
//! operator in `window_agg.rs` runs instead and frees closed windows.

use std::collections::BTreeSet;

use datafusion::common::DFSchemaRef;
use datafusion::logical_expr::Expr;
use ordered_float::OrderedFloat;
use rampart_plan::{Aggregate, AggregateFunc};
use rampart_repr::{Datum, Error, Row};

use super::map_filter::{eval_rows_isolating, map_rows};
use super::watermark::Watermark;
use super::window_agg::{render_windowed_reduce, WindowClose};
use super::{RenderContext, Rows};
use crate::eval::Evaluator;
use crate::Diff;

pub(super) fn render_reduce<'s>(
    input: Rows<'s>,
    group_exprs: &[Expr],
    aggregates: &[Aggregate],
    schema: &DFSchemaRef,
    window: Option<(&Watermark<'s>, WindowClose)>,
    ctx: &RenderContext<'s>,
) -> Result<Rows<'s>, Error> {
    // One evaluator for keys, arguments and filters; remember where each lands.
    let mut exprs = group_exprs.to_vec();
    let mut layout = Vec::new();
    for a in aggregates {
        let arg = a.arg.as_ref().map(|e| {
            exprs.push(e.clone());
            exprs.len() - 1
        });
        let filter = a.filter.as_ref().map(|e| {
            exprs.push(e.clone());
            exprs.len() - 1
        });
        layout.push((arg, filter));
    }
    let eval = Evaluator::new(&exprs, schema)?;
    let nkeys = group_exprs.len();
    let (errors, view) = (ctx.errors.clone(), ctx.view.clone());
    let keyed = map_rows(input, "AggregateInput", move |data, out| {
        let evaluated = eval_rows_isolating(&eval, data.iter().map(|(r, _, _)| r), &errors, &view);
        for ((_, t, d), e) in data.drain(..).zip(evaluated) {
            let Some(e) = e else { continue };
            let vals: Row = layout
                .iter()
                .map(|(arg, filter)| {
                    let passes = filter.is_none_or(|f| e[f] == Datum::Bool(true));
                    match (passes, arg) {
                        (false, _) => Datum::Null,
                        (true, None) => Datum::Bool(true),
                        (true, Some(i)) => e[*i].clone(),
                    }
                })
                .collect();
            out.push(((e[..nkeys].iter().cloned().collect(), vals), t, d));
        }
    });
    // An aggregate without GROUP BY has one row even over no input (COUNT 0, the others
    // NULL): its single group always holds one constant row of NULLs, which no aggregate
    // counts, so the group never empties.
    let keyed = if group_exprs.is_empty() {
        let nulls: Row = vec![Datum::Null; aggregates.len()].into();
        keyed.concat(super::constant(ctx, vec![nulls]).map(|r| (Row::default(), r)))
    } else {
        keyed
    };
    if let Some((watermark, close)) = window {
        return Ok(render_windowed_reduce(
            keyed,
            watermark,
            aggregates.to_vec(),
            close,
            ctx.late.clone(),
            ctx.view.clone(),
        ));
    }
    let aggs = aggregates.to_vec();
    let reduced = keyed.reduce(move |_key, input: &[(&Row, Diff)], output: &mut Vec<(Row, Diff)>| {
        let row: Row = aggs.iter().enumerate().map(|(i, a)| compute(a, i, input)).collect();
        output.push((row, 1));
    });
    Ok(reduced.map(|(k, v)| super::joined(&k, &v)))
}

/// One aggregate's value over a group's consolidated inputs (datum `i` of each row).
pub(super) fn compute(agg: &Aggregate, i: usize, input: &[(&Row, Diff)]) -> Datum {
    let values = input
        .iter()
        .filter(|(v, c)| *c > 0 && !v[i].is_null())
        .map(|(v, c)| (&v[i], *c));
    let values: Vec<(&Datum, Diff)> = if agg.distinct {
        let set: BTreeSet<&Datum> = values.map(|(v, _)| v).collect();
        set.into_iter().map(|v| (v, 1)).collect()
    } else {
        values.collect()
    };
    match agg.func {
        AggregateFunc::Count => Datum::Int(values.iter().map(|(_, c)| *c as i64).sum()),
        AggregateFunc::Min => values.iter().map(|(v, _)| *v).min().cloned().unwrap_or(Datum::Null),
        AggregateFunc::Max => values.iter().map(|(v, _)| *v).max().cloned().unwrap_or(Datum::Null),
        AggregateFunc::Sum | AggregateFunc::Avg => {
            if values.is_empty() {
                return Datum::Null;
            }
            let count: i64 = values.iter().map(|(_, c)| *c as i64).sum();
            if agg.func == AggregateFunc::Avg || agg.float_result {
                let sum: f64 = values.iter().map(|(v, c)| v.as_f64().unwrap_or(0.0) * *c as f64).sum();
                if agg.func == AggregateFunc::Avg {
                    Datum::Float(OrderedFloat(sum / count as f64))
                } else {
                    Datum::Float(OrderedFloat(sum))
                }
            } else {
                let sum: i64 = values
                    .iter()
                    .map(|(v, c)| v.as_int().unwrap_or(0).wrapping_mul(*c as i64))
                    .sum();
                Datum::Int(sum)
            }
        }
    }
}
