//! Renders a [`Plan`] into a differential collection of rows, one file per operator family.

mod join;
mod map_filter;
mod reduce;
mod temporal;
mod window;

use std::collections::HashMap;

use differential_dataflow::VecCollection;
use rampart_plan::Plan;
use rampart_repr::{ErrorLog, Row};
use timely::dataflow::Scope;

use crate::{Diff, Time};

pub use map_filter::{map_rows, validate};

/// A collection of rows in a dataflow scope.
pub type Rows<'s> = VecCollection<'s, Time, Row, Diff>;

/// What rendering needs besides the plan.
pub struct RenderContext<'s> {
    /// Collections of the catalog objects the plan reads, by name.
    pub inputs: HashMap<String, Rows<'s>>,
    /// The scope to build in.
    pub scope: Scope<'s, Time>,
    /// Name of the view being built, for error records.
    pub view: String,
    /// Where evaluation errors go.
    pub errors: ErrorLog,
}

/// Renders `plan`, returning its output collection.
pub fn render<'s>(plan: &Plan, ctx: &RenderContext<'s>) -> Result<Rows<'s>, String> {
    Ok(match plan {
        Plan::Get { name, .. } => ctx
            .inputs
            .get(name)
            .cloned()
            .ok_or_else(|| format!("input {name} is not available"))?,
        Plan::Constant { rows } => {
            let rows = rows.clone();
            constant(ctx, rows)
        }
        Plan::Map {
            input,
            exprs,
            input_schema,
        } => map_filter::render_map(render(input, ctx)?, exprs, input_schema, ctx)?,
        Plan::Filter {
            input,
            predicate,
            input_schema,
        } => map_filter::render_filter(render(input, ctx)?, predicate, input_schema, ctx)?,
        Plan::TemporalFilter {
            input,
            bound,
            input_schema,
        } => temporal::render_temporal_filter(render(input, ctx)?, &bound.expires_at, input_schema, ctx)?,
        Plan::Union { inputs } => {
            let mut rendered = Vec::new();
            for i in inputs {
                rendered.push(render(i, ctx)?);
            }
            differential_dataflow::collection::concatenate(ctx.scope, rendered)
        }
        Plan::Join { .. } => join::render_join(plan, ctx)?,
        Plan::Reduce {
            input,
            group_exprs,
            aggregates,
            input_schema,
        } => reduce::render_reduce(render(input, ctx)?, group_exprs, aggregates, input_schema, ctx)?,
        Plan::Distinct { input } => render(input, ctx)?.distinct(),
        Plan::Window {
            input,
            partition_by,
            order_by,
            funcs,
            input_schema,
        } => window::render_window(render(input, ctx)?, partition_by, order_by, funcs, input_schema, ctx)?,
    })
}

pub(super) fn constant<'s>(ctx: &RenderContext<'s>, rows: Vec<Row>) -> Rows<'s> {
    use differential_dataflow::AsCollection;
    use timely::dataflow::operators::generic::operator::source;
    let worker0 = ctx.scope.index() == 0;
    source(ctx.scope, "Constant", move |cap, _info| {
        let mut cap = Some(cap);
        let mut rows = Some(rows);
        move |output| {
            if let Some(c) = cap.take() {
                if worker0 {
                    let t = *c.time();
                    let mut data: Vec<(Row, Time, Diff)> =
                        rows.take().unwrap_or_default().into_iter().map(|r| (r, t, 1)).collect();
                    output.session(&c).give_container(&mut data);
                }
            }
        }
    })
    .as_collection()
}
