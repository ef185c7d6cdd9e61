//! Renders a view's [`PhysicalPlan`] (how each operator of its [`Plan`] runs, chosen once)
//! into a differential collection of rows, one file per operator family.

mod enrich_join;
mod interval_join;
mod join;
mod lookup_join;
mod map_filter;
mod range_join;
mod reduce;
mod retain;
mod row_bag;
mod temporal;
pub mod watermark;
mod window;
mod window_agg;

use std::collections::{BTreeMap, HashMap, HashSet};

use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::implementations::KeySpine;
use differential_dataflow::VecCollection;
use rampart_plan::event_time::Lags;
use rampart_plan::{JoinStrategy, Operator, PhysicalPlan, Plan, PlanContext, ReduceStrategy, Retention};
use rampart_repr::{Error, ErrorLog, Row, SqlState};
use timely::dataflow::Scope;

use crate::eval::Evaluator;
use crate::row_log::{Keep, RowLog};
use crate::{Diff, Time};

pub use map_filter::{map_rows, validate};
pub(crate) use retain::ExpiryCut;
use watermark::{min_watermark, Watermark};

/// A collection of rows in a dataflow scope.
pub type Rows<'s> = VecCollection<'s, Time, Row, Diff>;

/// A materialized view or table as imported into another dataflow: the arrangement its own
/// dataflow maintains (rows keyed by the whole row).
pub type Imported<'s> = Arranged<'s, TraceAgent<KeySpine<Row, Time, Diff>>>;

/// A rendered plan node: its rows and, when any of its inputs has one, the watermark that
/// bounds the event-time columns of rows arriving later.
#[derive(Clone)]
pub struct Rendered<'s> {
    /// The rows.
    pub rows: Rows<'s>,
    /// The lowest watermark of the inputs that have one.
    pub watermark: Option<Watermark<'s>>,
}

/// Where a later dataflow reads a table's or view's rows from.
pub enum ViewSource<'s> {
    /// Its arrangement, imported.
    Arranged(Imported<'s>),
    /// Its log (read by an importer per read of it in the plan).
    Log(RowLog),
}

impl<'s> ViewSource<'s> {
    /// The rows, or only those `keep` passes (the others are never copied).
    fn rows(&self, scope: Scope<'s, Time>, keep: Option<Keep>) -> Rows<'s> {
        match (self, keep) {
            (ViewSource::Arranged(a), None) => a.clone().as_collection(|row: &Row, _: &()| row.clone()),
            (ViewSource::Arranged(a), Some(keep)) => a
                .clone()
                .flat_map_ref(move |row: &Row, _: &()| keep(row).then(|| row.clone())),
            (ViewSource::Log(log), keep) => log.import(scope, keep),
        }
    }
}

/// A materialized view or table as another dataflow reads it.
pub struct ImportedView<'s> {
    /// Where its rows come from.
    pub source: ViewSource<'s>,
    /// Its watermark, when its rows have event-time columns.
    pub watermark: Option<Watermark<'s>>,
    /// Its retention, when it has one.
    pub retention: Option<Retention>,
    /// The arrangement's upper when it was imported: updates before it are the view's
    /// contents then (a snapshot), later ones its changes.
    pub snapshot_upper: Time,
    /// How expiry retractions of a retained view are told apart (see `retain::drop_expiry`).
    pub(crate) expiry: retain::ExpiryCut,
}

/// What rendering needs besides the plan.
pub struct RenderContext<'s> {
    /// Collections (and watermarks) of the sources the plan reads, by name.
    pub inputs: HashMap<String, Rendered<'s>>,
    /// The sources of `inputs` whose readers apply the projection above every read of
    /// them (`SourceFeed::projected`): their rows are that projection's output already.
    pub projected: HashSet<String>,
    /// The materialized views and tables the plan reads, by name: their arrangements and
    /// watermarks. Rows are copied out of an arrangement where the plan reads it, and a
    /// filter right above the read copies only the rows it keeps.
    pub imported: HashMap<String, ImportedView<'s>>,
    /// Whether the view being rendered has a retention: then it sees the expiry of the
    /// retained views it reads (and its state is freed with them); otherwise it keeps what
    /// it derived from their expired rows.
    pub retained: bool,
    /// Event-time lags of the catalog objects the plan reads (objects without event-time
    /// columns are absent).
    pub lags: BTreeMap<String, Lags>,
    /// The scope to build in.
    pub scope: Scope<'s, Time>,
    /// Name of the view being built, for error records.
    pub view: String,
    /// Where evaluation errors go.
    pub errors: ErrorLog,
    /// Where changes that arrive after their window closed go (`rampart_late_events`).
    pub late: ErrorLog,
}

impl RenderContext<'_> {
    /// How `plan` runs here: the physical plan chosen from it and the lags of what it
    /// reads (what `EXPLAIN` prints, see [`PhysicalPlan`]).
    pub fn physical<'p>(&self, plan: &'p Plan) -> PhysicalPlan<'p> {
        PhysicalPlan::of(
            plan,
            &PlanContext {
                lags: &|name| self.lags.get(name).cloned(),
                projection_runs_on_rows: &projection_runs_on_rows,
            },
        )
    }

    /// Whether rows of this view's inputs may be retracted by a retention's expiry: then a
    /// retraction that arrives after an operator freed its row's state is that expiry, not
    /// a late change, and is skipped without a `rampart_late_events` record.
    fn sees_expiry(&self) -> bool {
        self.retained && self.imported.values().any(|v| v.retention.is_some())
    }
}

/// Renders a view's `plan` with `rows_entered` applied to the rows the view takes in: its
/// output, or for a view with a retention the rows before the `Retain` at its root, so that
/// rows added there (a restored snapshot) expire like any other. `resumed_watermark` is the
/// watermark the view's retention starts from (its restored sources' watermark): restored
/// rows already past their expiry are not let in again.
pub fn render_view<'s>(
    plan: &Plan,
    ctx: &RenderContext<'s>,
    resumed_watermark: Option<i64>,
    rows_entered: impl FnOnce(Rows<'s>) -> Rows<'s>,
) -> Result<Rendered<'s>, Error> {
    let physical = ctx.physical(plan);
    match (&physical.operator, physical.inputs.as_slice()) {
        (Operator::Retain(retention), [input]) => {
            let i = render(input, ctx)?;
            let Some(watermark) = &i.watermark else {
                return Err(Error::unsupported(format!(
                    "the retention of {} needs an event-time column from a source with a WATERMARK",
                    ctx.view
                )));
            };
            let rows = rows_entered(i.rows.clone());
            Ok(Rendered {
                rows: retain::render_retain(rows, watermark, *retention, resumed_watermark),
                watermark: i.watermark,
            })
        }
        _ => {
            let Rendered { rows, watermark } = render(&physical, ctx)?;
            Ok(Rendered {
                rows: rows_entered(rows),
                watermark,
            })
        }
    }
}

/// Renders one operator of a physical plan as it was chosen, returning its output
/// collection and watermark.
pub fn render<'s>(node: &PhysicalPlan<'_>, ctx: &RenderContext<'s>) -> Result<Rendered<'s>, Error> {
    let same = |input: &Rendered<'s>, rows: Rows<'s>| Rendered {
        rows,
        watermark: input.watermark.clone(),
    };
    let input = |i: usize| -> Result<Rendered<'s>, Error> {
        render(
            node.inputs
                .get(i)
                .ok_or_else(|| Error::internal("internal error: an operator lacks an input"))?,
            ctx,
        )
    };
    Ok(match (&node.operator, node.plan) {
        (Operator::Read, Plan::Get { name, .. }) if ctx.projected.contains(name) => {
            return Err(Error::internal(format!(
                "internal error: source {name} is read without the projection its reader applies"
            )))
        }
        (Operator::Read, Plan::Get { name, .. }) => match (ctx.inputs.get(name), ctx.imported.get(name)) {
            (Some(rendered), _) => rendered.clone(),
            (None, Some(view)) => Rendered {
                rows: without_expiry(view, view.source.rows(ctx.scope, None), ctx),
                watermark: view.watermark.clone(),
            },
            (None, None) => return Err(Error::internal(format!("input {name} is not available"))),
        },
        (Operator::Constant, Plan::Constant { rows }) => Rendered {
            rows: constant(ctx, rows.clone()),
            watermark: None,
        },
        (
            Operator::Map { built_by_join },
            Plan::Map {
                input: below,
                exprs,
                input_schema,
            },
        ) => {
            // The source's reader built these rows (see `crate::SourceProjection`).
            if let Plan::Get { name, .. } = below.as_ref() {
                if let (true, Some(rendered)) = (ctx.projected.contains(name), ctx.inputs.get(name)) {
                    return Ok(rendered.clone());
                }
            }
            if *built_by_join {
                let project = Evaluator::new(exprs, input_schema)?.row_exprs().ok_or_else(|| {
                    Error::internal("internal error: a projection built by a join does not run on rows")
                })?;
                return render_join(&node.inputs[0], Some(project), ctx);
            }
            let i = input(0)?;
            same(&i, map_filter::render_map(i.rows.clone(), exprs, input_schema, ctx)?)
        }
        (
            Operator::Filter,
            Plan::Filter {
                input: below,
                predicate,
                input_schema,
            },
        ) => {
            if let Plan::Get { name, .. } = below.as_ref() {
                if let Some(view) = ctx.imported.get(name) {
                    if let Some(rows) = map_filter::render_filter_imported(&view.source, predicate, input_schema, ctx)?
                    {
                        return Ok(Rendered {
                            rows: without_expiry(view, rows, ctx),
                            watermark: view.watermark.clone(),
                        });
                    }
                }
            }
            let i = input(0)?;
            same(
                &i,
                map_filter::render_filter(i.rows.clone(), predicate, input_schema, ctx)?,
            )
        }
        (
            Operator::TemporalFilter,
            Plan::TemporalFilter {
                bound, input_schema, ..
            },
        ) => {
            let i = input(0)?;
            same(
                &i,
                temporal::render_temporal_filter(i.rows.clone(), &bound.expires_at, input_schema, ctx)?,
            )
        }
        (Operator::Retain(_), _) => {
            return Err(Error::internal(format!(
                "internal error: a retention below the root of {}",
                ctx.view
            )))
        }
        (Operator::Union, Plan::Union { .. }) => {
            let rendered = (0..node.inputs.len()).map(input).collect::<Result<Vec<_>, _>>()?;
            combine(ctx, rendered, |rows| {
                differential_dataflow::collection::concatenate(ctx.scope, rows)
            })
        }
        (Operator::Join(_), Plan::Join { .. }) => render_join(node, None, ctx)?,
        (
            Operator::Reduce(strategy),
            Plan::Reduce {
                group_exprs,
                aggregates,
                input_schema,
                emit_on_window_close,
                ..
            },
        ) => {
            let i = input(0)?;
            let window = match (strategy, &i.watermark) {
                (ReduceStrategy::Windowed { keys }, Some(w)) => Some((
                    w,
                    window_agg::WindowClose {
                        keys: keys.clone(),
                        emit_on_close: *emit_on_window_close,
                        skip_late_retractions: ctx.sees_expiry(),
                    },
                )),
                _ if *emit_on_window_close => {
                    return Err(Error::new(
                        SqlState::WindowingError,
                        format!(
                            "EMIT ON WINDOW CLOSE in {} needs a GROUP BY on a window of a source with a WATERMARK",
                            ctx.view
                        ),
                    ))
                }
                _ => None,
            };
            let rows = reduce::render_reduce(i.rows.clone(), group_exprs, aggregates, input_schema, window, ctx)?;
            same(&i, rows)
        }
        (Operator::Distinct, Plan::Distinct { .. }) => {
            let i = input(0)?;
            same(&i, i.rows.clone().distinct())
        }
        (
            Operator::Window,
            Plan::Window {
                partition_by,
                order_by,
                funcs,
                input_schema,
                ..
            },
        ) => {
            let i = input(0)?;
            same(
                &i,
                window::render_window(i.rows.clone(), partition_by, order_by, funcs, input_schema, ctx)?,
            )
        }
        (operator, _) => {
            return Err(Error::internal(format!(
                "internal error: operator {operator:?} does not match its plan node"
            )))
        }
    })
}

/// Renders a join by its strategy; `project`: the projection right above it, when the join
/// builds it (enrichment and range joins).
fn render_join<'s>(
    node: &PhysicalPlan<'_>,
    project: Option<Vec<crate::row_expr::RowExpr>>,
    ctx: &RenderContext<'s>,
) -> Result<Rendered<'s>, Error> {
    let Operator::Join(strategy) = &node.operator else {
        return Err(Error::internal("internal error: not a join"));
    };
    let plan = node.plan;
    if *strategy == JoinStrategy::Enrichment {
        let spec = plan
            .enrich_join()
            .ok_or_else(|| Error::internal("internal error: an enrichment join's plan is not one"))?;
        return render_enrich(&spec, &node.inputs, project, ctx);
    }
    let [left, right] = node.inputs.as_slice() else {
        return Err(Error::internal("internal error: a join without two inputs"));
    };
    let (l, r) = (render(left, ctx)?, render(right, ctx)?);
    let rows = match strategy {
        JoinStrategy::Range => {
            let spec = plan
                .range_join()
                .ok_or_else(|| Error::internal("internal error: a range join's plan is not one"))?;
            range_join::render_range_join(plan, spec, l.rows.clone(), r.rows.clone(), project, ctx)?
        }
        JoinStrategy::Interval(interval) => render_interval(plan, &l, &r, *interval, ctx)?,
        JoinStrategy::Lookup => join::render_lookup_join(plan, l.rows.clone(), r.rows.clone(), ctx)?,
        JoinStrategy::Arranged => join::render_join(plan, l.rows.clone(), r.rows.clone(), ctx)?,
        JoinStrategy::Enrichment => unreachable!("handled above"),
    };
    Ok(combine(ctx, vec![l, r], |_| rows))
}

/// `rows` read from `view` (all of them, or those a filter kept), without the
/// retractions by which its rows expire when `view` has a retention and the view being
/// rendered has none.
fn without_expiry<'s>(view: &ImportedView<'s>, rows: Rows<'s>, ctx: &RenderContext<'s>) -> Rows<'s> {
    match (&view.retention, &view.watermark) {
        (Some(retention), Some(watermark)) if !ctx.retained => {
            retain::drop_expiry(rows, watermark, *retention, view.snapshot_upper, view.expiry.clone())
        }
        _ => rows,
    }
}

fn render_interval<'s>(
    plan: &Plan,
    l: &Rendered<'s>,
    r: &Rendered<'s>,
    interval: interval_join::Interval,
    ctx: &RenderContext<'s>,
) -> Result<Rows<'s>, Error> {
    let Plan::Join {
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
    let lk = join::keyed(l.rows.clone(), left_keys, left_schema, ctx, false)?;
    let rk = join::keyed(r.rows.clone(), right_keys, right_schema, ctx, false)?;
    let w = match (&l.watermark, &r.watermark) {
        (Some(wl), Some(wr)) => min_watermark(ctx.scope, vec![wl.clone(), wr.clone()]),
        _ => None,
    };
    // The probe covers the interval exactly: only the rest of the residual is tested.
    let residual = rampart_plan::event_time::residual_beyond_interval(
        residual.as_ref(),
        joined_schema,
        &interval,
        left_schema.fields().len(),
    );
    interval_join::render_interval_join(
        lk,
        rk,
        w.as_ref(),
        interval,
        residual.as_ref(),
        joined_schema,
        right_schema.fields().len(),
        ctx.errors.clone(),
        ctx.late.clone(),
        ctx.view.clone(),
        ctx.sees_expiry(),
    )
}

/// Renders an enrichment join (see [`enrich_join`]), its output projected by `project`.
fn render_enrich<'s>(
    spec: &enrich_join::EnrichJoin<'_>,
    inputs: &[PhysicalPlan<'_>],
    project: Option<Vec<crate::row_expr::RowExpr>>,
    ctx: &RenderContext<'s>,
) -> Result<Rendered<'s>, Error> {
    let [input, table, ranges] = inputs else {
        return Err(Error::internal(
            "internal error: an enrichment join without its three inputs",
        ));
    };
    let (x, t1, t2) = (render(input, ctx)?, render(table, ctx)?, render(ranges, ctx)?);
    // `x` read whole from a view's log: the join finds the rows a table change touches
    // there instead of filing every row itself.
    let input_log = match spec.input {
        Plan::Get { name, .. } => match ctx.imported.get(name) {
            Some(ImportedView {
                source: ViewSource::Log(log),
                retention: None,
                ..
            }) => Some(log.clone()),
            _ => None,
        },
        _ => None,
    };
    let rows = enrich_join::render_enrich_join(
        spec,
        x.rows.clone(),
        input_log,
        t1.rows.clone(),
        t2.rows.clone(),
        project,
        ctx,
    )?;
    Ok(combine(ctx, vec![x, t1, t2], |_| rows))
}

/// Whether every expression of a projection evaluates on rows (then an enrichment or range
/// join right below it builds its output directly). EXPLAIN asks the same question.
pub fn projection_runs_on_rows(
    exprs: &[datafusion::logical_expr::Expr],
    schema: &datafusion::common::DFSchemaRef,
) -> bool {
    Evaluator::new(exprs, schema)
        .map(|e| e.row_exprs().is_some())
        .unwrap_or(false)
}

/// Rows built from several inputs, watermarked by the lowest of their watermarks.
fn combine<'s>(
    ctx: &RenderContext<'s>,
    inputs: Vec<Rendered<'s>>,
    rows: impl FnOnce(Vec<Rows<'s>>) -> Rows<'s>,
) -> Rendered<'s> {
    let watermarks: Vec<Watermark<'s>> = inputs.iter().filter_map(|i| i.watermark.clone()).collect();
    Rendered {
        rows: rows(inputs.into_iter().map(|i| i.rows).collect()),
        watermark: min_watermark(ctx.scope, watermarks),
    }
}

/// A left row followed by a right row: one row of a join's output.
pub(super) fn joined(left: &Row, right: &Row) -> Row {
    left.iter().chain(right.iter()).cloned().collect()
}

/// A left row followed by `right_width` NULLs: an unmatched row of a left join.
pub(super) fn padded(left: &Row, right_width: usize) -> Row {
    left.iter()
        .cloned()
        .chain(std::iter::repeat_n(rampart_repr::Datum::Null, right_width))
        .collect()
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
