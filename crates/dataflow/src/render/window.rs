//! Ranking window functions (`ROW_NUMBER`, `RANK`, `DENSE_RANK` over `PARTITION BY ...
//! ORDER BY ...`), maintained per partition: when a partition changes, its rows are
//! re-sorted and re-ranked, and only rows whose rank changed are updated downstream.
//! Top-N (`WHERE rank <= N` above) is a filter on the result.
//!
//! State: every input row, grouped by partition, and the ranked output.

use std::cmp::Ordering;

use datafusion::common::DFSchemaRef;
use datafusion::logical_expr::Expr;
use rampart_plan::{RankFunc, SortKey};
use rampart_repr::{Datum, Error, Row};

use super::map_filter::{eval_rows_isolating, map_rows};
use super::{RenderContext, Rows};
use crate::eval::Evaluator;
use crate::Diff;

pub(super) fn render_window<'s>(
    input: Rows<'s>,
    partition_by: &[Expr],
    order_by: &[SortKey],
    funcs: &[RankFunc],
    schema: &DFSchemaRef,
    ctx: &RenderContext<'s>,
) -> Result<Rows<'s>, Error> {
    let mut exprs = partition_by.to_vec();
    exprs.extend(order_by.iter().map(|s| s.expr.clone()));
    let eval = Evaluator::new(&exprs, schema)?;
    let nparts = partition_by.len();
    let (errors, view) = (ctx.errors.clone(), ctx.view.clone());
    let keyed = map_rows(input, "WindowInput", move |data, out| {
        let evaluated = eval_rows_isolating(&eval, data.iter().map(|(r, _, _)| r), &errors, &view);
        for ((row, t, d), e) in data.drain(..).zip(evaluated) {
            let Some(e) = e else { continue };
            let (parts, sort) = e.split_at(nparts.min(e.len()));
            out.push(((Row::from(parts), (Row::from(sort), row)), t, d));
        }
    });
    let order: Vec<(bool, bool)> = order_by.iter().map(|s| (s.asc, s.nulls_first)).collect();
    let funcs = funcs.to_vec();
    Ok(keyed
        .reduce(
            move |_key, input: &[(&(Row, Row), Diff)], output: &mut Vec<(Row, Diff)>| {
                let mut rows: Vec<&(Row, Row)> = Vec::new();
                for (v, c) in input {
                    for _ in 0..(*c).max(0) {
                        rows.push(v);
                    }
                }
                rows.sort_by(|a, b| compare_keys(&a.0, &b.0, &order).then_with(|| a.1.cmp(&b.1)));
                let (mut rank, mut dense) = (0i64, 0i64);
                for (n, r) in rows.iter().enumerate() {
                    let tie = n > 0 && compare_keys(&rows[n - 1].0, &r.0, &order) == Ordering::Equal;
                    if !tie {
                        rank = n as i64 + 1;
                        dense += 1;
                    }
                    let ranks = funcs.iter().map(|f| {
                        Datum::Int(match f {
                            RankFunc::RowNumber => n as i64 + 1,
                            RankFunc::Rank => rank,
                            RankFunc::DenseRank => dense,
                        })
                    });
                    let out: Row = r.1.iter().cloned().chain(ranks).collect();
                    output.push((out, 1));
                }
            },
        )
        .map(|(_k, v)| v))
}

fn compare_keys(a: &Row, b: &Row, order: &[(bool, bool)]) -> Ordering {
    for (i, (asc, nulls_first)) in order.iter().enumerate() {
        let (x, y) = (&a[i], &b[i]);
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if *nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if *nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, false) => {
                if *asc {
                    x.cmp(y)
                } else {
                    y.cmp(x)
                }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}
