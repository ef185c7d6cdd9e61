//! One file per statement that creates, drops or changes something, each going through the
//! same steps: validate (names, options, columns), plan, persist (the catalog log), install
//! (the dataflow), wait (for views to catch up). Read-only statements are in `query.rs`.
//! The helpers here are the steps several statements share.

mod copy;
mod create_sink;
mod create_source;
mod create_table;
mod create_view;
mod drop;
mod insert_delete;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::Query;
use rampart_connectors::source::SourceContext;
use rampart_dataflow::{render::validate, FeedProgress, SourceFeed, SourceProjection};
use rampart_plan::event_time::{plan_lags, reads_stream, Lags};
use rampart_plan::{Plan, ViewPlan};
use rampart_sql::ast::ObjectKind;
use rampart_sql::lower::{lower_plan, NowMode};
use rampart_sql::planner::plan_streaming_query;
use rampart_sql::PlanError;

use crate::coordinator::{Executed, State};

impl State {
    /// Plans a streaming query into a view plan, checking every expression compiles.
    pub(crate) async fn plan_view(&self, query: &Query, now: NowMode) -> Result<ViewPlan, PlanError> {
        let state = self.schema_ctx.state();
        let logical = plan_streaming_query(&state, query).await?;
        let plan = lower_plan(&logical, now)?;
        validate(&plan.plan)?;
        for dep in plan.plan.dependencies() {
            if crate::system_tables::is_system_table(&dep) {
                return Err(PlanError::unsupported(format!(
                    "views over the system table {dep} are not supported; query it directly"
                )));
            }
        }
        Ok(plan)
    }

    /// [`State::plan_view`], then `EMIT ON WINDOW CLOSE` when the statement `sql` asks
    /// for it.
    pub(crate) async fn plan_streaming_view(
        &self,
        query: &Query,
        now: NowMode,
        emit_on_window_close: bool,
    ) -> Result<ViewPlan, PlanError> {
        let mut plan = self.plan_view(query, now).await?;
        if emit_on_window_close {
            let mut tree = (*plan.plan).clone();
            tree.set_emit_on_window_close(&|name| self.event_time_of(name))?;
            plan.plan = Arc::new(tree);
        }
        Ok(plan)
    }

    /// The objects `plan` reads that are materialized views with a retention.
    pub(crate) fn retained_dependencies(&self, plan: &Plan) -> Vec<String> {
        plan.dependencies()
            .into_iter()
            .filter(|dep| self.catalog.get(dep).is_some_and(|e| e.retention.is_some()))
            .collect()
    }

    /// Event-time lags of a catalog object's columns, if it has event-time columns.
    pub(crate) fn event_time_of(&self, name: &str) -> Option<Lags> {
        self.catalog.get(name).and_then(|e| e.event_time.clone())
    }

    /// Event-time lags of the objects `plan` reads, for the dataflow, and of its output.
    pub(crate) fn plan_event_time(&self, plan: &ViewPlan) -> (BTreeMap<String, Lags>, Option<Lags>) {
        let inputs: BTreeMap<String, Lags> = plan
            .plan
            .dependencies()
            .into_iter()
            .filter_map(|d| self.event_time_of(&d).map(|l| (d, l)))
            .collect();
        let lookup = |name: &str| inputs.get(name).cloned();
        let out = plan_lags(&plan.plan, &lookup);
        let stream = reads_stream(&plan.plan, &lookup);
        (inputs.clone(), stream.then_some(out))
    }

    /// Every reader feeding a dataflow that reads `plan`: its own `feeds` (as
    /// `view/source`) and those of the materialized views it reads, transitively.
    pub(crate) fn upstream_feeds(
        &self,
        view: &str,
        feeds: &BTreeMap<String, SourceFeed>,
        plan: &ViewPlan,
    ) -> Vec<(String, FeedProgress)> {
        let mut out: Vec<(String, FeedProgress)> = feeds
            .iter()
            .map(|(source, f)| (format!("{view}/{source}"), f.progress.clone()))
            .collect();
        for dep in plan.plan.dependencies() {
            if let Some(e) = self.catalog.get(&dep) {
                for u in &e.upstream {
                    if !out.iter().any(|(id, _)| *id == u.0) {
                        out.push(u.clone());
                    }
                }
            }
        }
        out
    }

    /// Starts a reader for every source the plan reads.
    /// `resume` gives, per source, the positions to resume at (a view's checkpoint).
    pub(crate) fn source_feeds(
        &self,
        plan: &ViewPlan,
        resume: &BTreeMap<String, rampart_repr::Positions>,
    ) -> Result<BTreeMap<String, SourceFeed>, PlanError> {
        let mut feeds = BTreeMap::new();
        for dep in plan.plan.dependencies() {
            let Some(entry) = self.catalog.get(&dep) else {
                return Err(PlanError::undefined_table(&dep));
            };
            if let Some(connector) = &entry.connector {
                let projection = match plan.plan.projection_over(&dep) {
                    Some((exprs, schema)) => SourceProjection::compile(exprs, schema)?.map(Arc::new),
                    None => None,
                };
                let ctx = SourceContext {
                    name: dep.clone(),
                    desc: entry.desc.clone(),
                    errors: self.errors.clone(),
                    rows_read: Default::default(),
                    watermark: entry.watermark,
                    late: self.late.clone(),
                    wake: self.engine.worker_threads(),
                    projection: projection.clone(),
                    resume_at: resume.get(&dep).cloned(),
                };
                let mut feed = connector.start(ctx, self.engine.workers())?;
                feed.watermarked = entry.watermark.is_some();
                feed.projected = projection.is_some();
                feeds.insert(dep, feed);
            }
        }
        Ok(feeds)
    }

    /// What a new view or sink reads: the objects its plan reads plus the plain views its
    /// query names (planning inlines those, so the plan alone does not show them).
    pub(crate) fn dependencies_of(&self, plan: &ViewPlan, query: &Query) -> Vec<String> {
        let mut deps = plan.plan.dependencies();
        for name in crate::query::named_relations(query) {
            if self.catalog.get(&name).is_some_and(|e| e.kind == ObjectKind::View) && !deps.contains(&name) {
                deps.push(name);
            }
        }
        deps
    }

    /// Catalog objects a (non-materialized) view's query names.
    pub(crate) async fn view_dependencies(&self, query: &Query) -> Result<Vec<String>, PlanError> {
        let state = self.schema_ctx.state();
        let plan = rampart_sql::planner::plan_batch_query(&state, query).await?;
        let mut deps = BTreeSet::new();
        crate::query::collect_scans(&plan, &mut deps);
        deps.extend(
            crate::query::named_relations(query)
                .into_iter()
                .filter(|n| self.catalog.get(n).is_some()),
        );
        Ok(deps.into_iter().collect())
    }
}

pub(super) fn notice_exists(kind: &str, name: &str) -> Executed {
    Executed {
        notices: vec![format!("{kind} \"{name}\" already exists, skipping")],
        ..Executed::command("CREATE")
    }
}
