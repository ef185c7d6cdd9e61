//! Plans queries through DataFusion: window functions are rewritten, `SqlToRel` binds and
//! types the query, the analyzer coerces types, and a few optimizer rules that keep
//! semantics (equi-join extraction, filter push-down) shape the plan for streaming.

use std::sync::Arc;

use datafusion::execution::context::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::extract_equijoin_predicate::ExtractEquijoinPredicate;
use datafusion::optimizer::filter_null_join_keys::FilterNullJoinKeys;
use datafusion::optimizer::optimizer::Optimizer;
use datafusion::optimizer::push_down_filter::PushDownFilter;
use datafusion::optimizer::OptimizerContext;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Query, Statement};

use crate::error::PlanError;
use crate::udf::all_udfs;
use crate::window_rewrite::rewrite_windows;

/// A DataFusion session configured for Rampart: PostgreSQL-style identifiers, Rampart's
/// UDFs registered, one target partition (Rampart parallelises in the dataflow instead).
pub fn new_session_context() -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(1)
        .with_information_schema(false)
        .with_default_catalog_and_schema("dev", "public");
    let ctx = SessionContext::new_with_config(config);
    for udf in all_udfs() {
        ctx.register_udf(udf);
    }
    ctx
}

/// Binds `query` against the tables registered in `state` and returns a typed, analyzed
/// logical plan ready to lower into the dataflow IR.
pub async fn plan_streaming_query(state: &SessionState, query: &Query) -> Result<LogicalPlan, PlanError> {
    reject_table_hints(query)?;
    let mut query = query.clone();
    rewrite_windows(&mut query)?;
    let stmt = DfStatement::Statement(Box::new(Statement::Query(Box::new(query))));
    let plan = state
        .statement_to_plan(stmt)
        .await
        .map_err(PlanError::from_datafusion)?;
    let plan = state
        .analyzer()
        .execute_and_check(plan, state.config_options(), |_, _| {})
        .map_err(PlanError::from_datafusion)?;
    let optimizer = Optimizer::with_rules(vec![
        Arc::new(ExtractEquijoinPredicate::new()),
        Arc::new(PushDownFilter::new()),
        Arc::new(FilterNullJoinKeys::default()),
    ]);
    let ctx = OptimizerContext::new();
    optimizer
        .optimize(plan, &ctx, |_, _| {})
        .map_err(PlanError::from_datafusion)
}

/// Refuses `FROM t WITH (...)` table hints, which the parser accepts and DataFusion would
/// ignore: `CREATE MATERIALIZED VIEW v AS SELECT ... FROM t WITH (retention = '1 hour')`
/// must not silently lose its options (they go before `AS`).
fn reject_table_hints(query: &Query) -> Result<(), PlanError> {
    use datafusion::sql::sqlparser::ast::{TableFactor, Visit, Visitor};
    struct Hints(Option<String>);
    impl Visitor for Hints {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> std::ops::ControlFlow<()> {
            if let TableFactor::Table { name, with_hints, .. } = factor {
                if !with_hints.is_empty() {
                    self.0 = Some(name.to_string());
                    return std::ops::ControlFlow::Break(());
                }
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let mut hints = Hints(None);
    let _ = query.visit(&mut hints);
    match hints.0 {
        Some(table) => Err(PlanError::syntax(format!(
            "WITH (...) after the table {table} is not supported; a materialized view's options go before AS: CREATE MATERIALIZED VIEW v WITH (retention = '1 hour') AS SELECT ..."
        ))),
        None => Ok(()),
    }
}

/// Plans an ad-hoc query (SELECT) for batch execution over snapshots: the same rewrite of
/// window functions, then DataFusion's full planner.
pub async fn plan_batch_query(state: &SessionState, query: &Query) -> Result<LogicalPlan, PlanError> {
    reject_table_hints(query)?;
    let mut query = query.clone();
    rewrite_windows(&mut query)?;
    let stmt = DfStatement::Statement(Box::new(Statement::Query(Box::new(query))));
    state.statement_to_plan(stmt).await.map_err(PlanError::from_datafusion)
}
