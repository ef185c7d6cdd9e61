//! Temporal filters (`expr > NOW() - INTERVAL '...'`): a row enters the view when it
//! arrives and leaves it when processing time reaches `expires_at(row)`, by emitting its
//! retraction at that future time. Negative updates get the mirrored treatment, so a row
//! retracted early cancels its scheduled retraction.
//!
//! State: none in this operator; the scheduled retractions wait in the downstream
//! arrangement's batcher until their time comes, then free their row.

use datafusion::common::DFSchemaRef;
use datafusion::logical_expr::Expr;
use rampart_repr::{Error, Row};

use super::map_filter::{eval_isolating, map_rows};
use super::{RenderContext, Rows};
use crate::eval::{timestamps_micros, Evaluator};
use crate::Time;

pub(super) fn render_temporal_filter<'s>(
    input: Rows<'s>,
    expires_at: &Expr,
    schema: &DFSchemaRef,
    ctx: &RenderContext<'s>,
) -> Result<Rows<'s>, Error> {
    let eval = Evaluator::new(std::slice::from_ref(expires_at), schema)?;
    let (errors, view) = (ctx.errors.clone(), ctx.view.clone());
    Ok(map_rows(input, "TemporalFilter", move |data, out| {
        let rows: Vec<&Row> = data.iter().map(|(r, _, _)| r).collect();
        let expiries = eval_isolating(
            &rows,
            |rs| {
                let cols = eval.eval_columns(rs.iter().copied())?;
                timestamps_micros(&cols[0])
            },
            &errors,
            &view,
        );
        for ((row, t, d), exp) in data.drain(..).zip(expiries) {
            let Some(Some(us)) = exp else { continue };
            let expires_ms = (us.max(0) as u64).div_ceil(1000) as Time;
            if expires_ms > t {
                out.push((row.clone(), expires_ms, -d));
                out.push((row, t, d));
            }
        }
    }))
}
