//! Joins: both inputs keyed by their equality keys (rows with a NULL key never match) and
//! joined incrementally; the residual predicate filters the concatenated pairs. Outer
//! joins add the unmatched rows of a side, padded with NULLs: that side's rows minus
//! those that appear in at least one matching pair.
//!
//! A left join on equality keys without a residual (enrichment against a reference table)
//! is one lookup operator instead ([`render_lookup_join`], chosen by the physical plan).
//!
//! State: each input arranged by key; for outer joins, the distinct matched rows of the
//! preserved side and that side's rows arranged by the whole row. A join without
//! equality keys that is not a range join (`inet_aton(ip) BETWEEN lo AND hi` is one, see
//! [`super::range_join`]) puts every row under one key, so it runs on one worker and costs
//! |left| x |right| comparisons per change: fine against small reference tables.

use datafusion::common::DFSchemaRef;
use datafusion::logical_expr::Expr;
use differential_dataflow::VecCollection;
use rampart_plan::{JoinKind, Plan};
use rampart_repr::{Datum, Error, Row};

use super::map_filter::{eval_isolating, eval_rows_isolating, map_rows};
use super::{RenderContext, Rows};
use crate::eval::Evaluator;
use crate::{Diff, Time};
use timely::dataflow::operators::generic::operator::Operator;

pub(super) fn keyed<'s>(
    input: Rows<'s>,
    keys: &[Expr],
    schema: &DFSchemaRef,
    ctx: &RenderContext<'s>,
    keep_null_keys: bool,
) -> Result<VecCollection<'s, Time, (Row, Row), Diff>, Error> {
    let eval = Evaluator::new(keys, schema)?;
    let (errors, view) = (ctx.errors.clone(), ctx.view.clone());
    let no_keys = keys.is_empty();
    Ok(map_rows(input, "JoinKey", move |data, out| {
        if no_keys {
            out.extend(data.drain(..).map(|(r, t, d)| ((Row::default(), r), t, d)));
            return;
        }
        let ks = eval_rows_isolating(&eval, data.iter().map(|(r, _, _)| r), &errors, &view);
        for ((row, t, d), k) in data.drain(..).zip(ks) {
            if let Some(k) = k {
                if keep_null_keys || !k.iter().any(Datum::is_null) {
                    out.push(((k, row), t, d));
                }
            }
        }
    }))
}

pub(super) fn render_join<'s>(
    plan: &Plan,
    left_rows: Rows<'s>,
    right_rows: Rows<'s>,
    ctx: &RenderContext<'s>,
) -> Result<Rows<'s>, Error> {
    let Plan::Join {
        kind,
        left_keys,
        right_keys,
        residual,
        left_schema,
        right_schema,
        joined_schema,
        ..
    } = plan
    else {
        return Err(Error::internal("not a join"));
    };
    let left_width = left_schema.fields().len();
    let right_width = right_schema.fields().len();

    let lk = keyed(left_rows.clone(), left_keys, left_schema, ctx, false)?;
    let rk = keyed(right_rows.clone(), right_keys, right_schema, ctx, false)?;
    // Matching pairs as (left, right), then filtered by the residual predicate.
    let pairs = lk.join(rk).map(|(_k, (l, r))| (l, r));
    let pairs = match residual {
        None => pairs,
        Some(pred) => {
            let eval = Evaluator::new(std::slice::from_ref(pred), joined_schema)?;
            let (errors, view) = (ctx.errors.clone(), ctx.view.clone());
            pairs
                .inner
                .unary::<timely::container::CapacityContainerBuilder<Vec<((Row, Row), Time, Diff)>>, _, _, _>(
                    timely::dataflow::channels::pact::Pipeline,
                    "JoinResidual",
                    move |_, _| {
                        move |input, output| {
                            input.for_each(|cap, data| {
                                let joined: Vec<Row> = data
                                    .iter()
                                    .map(|((l, r), _, _)| l.iter().chain(r.iter()).cloned().collect())
                                    .collect();
                                let refs: Vec<&Row> = joined.iter().collect();
                                let keep =
                                    eval_isolating(&refs, |rs| eval.eval_predicate(rs.iter().copied()), &errors, &view);
                                let mut out: Vec<_> = data
                                    .drain(..)
                                    .zip(keep)
                                    .filter(|(_, k)| *k == Some(true))
                                    .map(|(u, _)| u)
                                    .collect();
                                if !out.is_empty() {
                                    output.session(&cap).give_container(&mut out);
                                }
                            });
                        }
                    },
                )
                .into_collection()
        }
    };
    let mut result = pairs.clone().map(|(l, r)| super::joined(&l, &r));
    if matches!(kind, JoinKind::Left | JoinKind::Full) {
        let matched = pairs.clone().map(|(l, _)| l).distinct();
        let unmatched = left_rows
            .map(|r| (r, ()))
            .antijoin(matched)
            .map(move |(l, ())| super::padded(&l, right_width));
        result = result.concat(unmatched);
    }
    if matches!(kind, JoinKind::Right | JoinKind::Full) {
        let matched = pairs.map(|(_, r)| r).distinct();
        let unmatched = right_rows.map(|r| (r, ())).antijoin(matched).map(move |(r, ())| {
            std::iter::repeat_n(Datum::Null, left_width)
                .chain(r.iter().cloned())
                .collect::<Row>()
        });
        result = result.concat(unmatched);
    }
    Ok(result)
}

/// A left join on equality keys only ([`rampart_plan::JoinStrategy::Lookup`]): one lookup
/// operator (see [`super::lookup_join`]).
pub(super) fn render_lookup_join<'s>(
    plan: &Plan,
    left_rows: Rows<'s>,
    right_rows: Rows<'s>,
    ctx: &RenderContext<'s>,
) -> Result<Rows<'s>, Error> {
    let Plan::Join {
        left_keys,
        right_keys,
        left_schema,
        right_schema,
        ..
    } = plan
    else {
        return Err(Error::internal("not a join"));
    };
    let left = keyed(left_rows, left_keys, left_schema, ctx, true)?;
    let right = keyed(right_rows, right_keys, right_schema, ctx, false)?;
    Ok(super::lookup_join::render_lookup_left_join(
        left,
        right,
        right_schema.fields().len(),
    ))
}

trait IntoCollection<'s> {
    fn into_collection(self) -> VecCollection<'s, Time, (Row, Row), Diff>;
}

impl<'s> IntoCollection<'s> for timely::dataflow::Stream<'s, Time, Vec<((Row, Row), Time, Diff)>> {
    fn into_collection(self) -> VecCollection<'s, Time, (Row, Row), Diff> {
        differential_dataflow::AsCollection::as_collection(self)
    }
}
