//! Read-only statements: SELECT over consistent snapshots, SHOW, DESCRIBE, EXPLAIN.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::MemTable;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::TableReference;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::{ObjectName, Query, Statement};
use rampart_dataflow::ViewStorage;
use rampart_sql::ast::{object_name, ObjectKind, ShowKind};
use rampart_sql::lower::NowMode;
use rampart_sql::planner::{new_session_context, plan_batch_query};
use rampart_sql::{ParsedStatement, PlanError, RampartStatement};

use crate::coordinator::{Executed, State};

/// How long a query waits for the workers to read the views it scans.
const PEEK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
use crate::system_tables;
use rampart_pgwire::QueryOutput;

/// Every relation name written in a query (views are inlined by planning, so their names
/// are only found here).
pub fn named_relations(query: &Query) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let _ = datafusion::sql::sqlparser::ast::visit_relations(query, |name| {
        out.insert(object_name(name));
        std::ops::ControlFlow::<()>::Continue(())
    });
    out
}

/// Adds the name of every table scanned in `plan` (subqueries included) to `out`.
pub fn collect_scans(plan: &LogicalPlan, out: &mut BTreeSet<String>) {
    let _ = plan.apply_with_subqueries(|p| {
        if let LogicalPlan::TableScan(s) = p {
            out.insert(s.table_name.table().to_string());
        }
        Ok(TreeNodeRecursion::Continue)
    });
}

fn text_rows(column: &str, values: Vec<String>) -> QueryOutput {
    text_table(&[column], values.into_iter().map(|v| vec![v]).collect())
}

fn text_table(columns: &[&str], rows: Vec<Vec<String>>) -> QueryOutput {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays = (0..columns.len())
        .map(|i| Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[i].as_str()))) as _)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap_or_else(|_| RecordBatch::new_empty(schema.clone()));
    QueryOutput::Rows {
        schema,
        batches: vec![batch],
    }
}

fn rows(output: QueryOutput) -> Executed {
    Executed {
        output,
        notices: vec![],
    }
}

impl State {
    /// Expands views to what they read, so snapshots cover everything a query touches.
    fn expand(&self, names: BTreeSet<String>) -> Result<BTreeSet<String>, PlanError> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<String> = names.into_iter().collect();
        while let Some(n) = todo.pop() {
            if !out.insert(n.clone()) {
                continue;
            }
            if let Some(e) = self.catalog.get(&n) {
                if e.kind == ObjectKind::View {
                    todo.extend(e.depends_on.iter().cloned());
                }
            }
        }
        Ok(out)
    }

    pub(crate) async fn select(&self, query: &Query) -> Result<Executed, PlanError> {
        self.wait_restored_tables().await;
        let (ctx, plan_query) = self.snapshot_context(query).await?;
        let state = ctx.state();
        let plan = plan_batch_query(&state, &plan_query).await?;
        let df = ctx
            .execute_logical_plan(plan)
            .await
            .map_err(PlanError::from_datafusion)?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(PlanError::from_datafusion)?;
        Ok(rows(QueryOutput::Rows { schema, batches }))
    }

    /// A DataFusion context holding a consistent snapshot of everything `query` reads.
    async fn snapshot_context(&self, query: &Query) -> Result<(datafusion::prelude::SessionContext, Query), PlanError> {
        let mut query = query.clone();
        crate::pg_catalog::unqualify_functions(&mut query);
        let query = &query;
        let schema_state = self.schema_ctx.state();
        let plan = plan_batch_query(&schema_state, query).await.map_err(|e| {
            if e.message.contains("pg_catalog")
                || e.message.contains("information_schema")
                || e.message.contains("OPERATOR")
            {
                pg_catalog_error()
            } else {
                e
            }
        })?;
        let mut scans = BTreeSet::new();
        collect_scans(&plan, &mut scans);
        let wants_pg_catalog = scans.iter().any(|s| s.starts_with("pg_"));

        scans.extend(
            named_relations(query)
                .into_iter()
                .filter(|n| self.catalog.get(n).is_some()),
        );
        let names = self.expand(scans)?;
        let mut stores: Vec<(String, SchemaRef)> = Vec::new();
        for n in &names {
            match self.catalog.get(n) {
                Some(e) if e.kind == ObjectKind::Source => {
                    return Err(PlanError::unsupported(format!(
                        "source \"{n}\" is not materialized and cannot be queried directly; CREATE MATERIALIZED VIEW ... AS SELECT ... FROM {n} and query that"
                    )))
                }
                Some(e) if e.store.is_some() => stores.push((n.clone(), e.desc.arrow_schema())),
                _ => {}
            }
        }
        let peeked: Vec<String> = stores.iter().map(|(n, _)| n.clone()).collect();
        let engine = self.engine.clone();
        let contents = tokio::task::spawn_blocking(move || engine.peek(&peeked, PEEK_TIMEOUT))
            .await
            .map_err(|e| PlanError::new("XX000", format!("reading the views failed: {e}")))??;
        let ctx = new_session_context();
        if wants_pg_catalog {
            crate::pg_catalog::register(&ctx, Some(&self.catalog));
        }
        self.register_snapshot(
            &ctx,
            stores
                .into_iter()
                .zip(contents)
                .map(|((n, schema), rows)| (n, schema, rows))
                .collect(),
        )?;
        for name in system_tables::ALL.into_iter().filter(|n| names.contains(*n)) {
            let Some(batch) = self.system_table_batch(name) else {
                continue;
            };
            let mem = MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(PlanError::from_datafusion)?;
            ctx.register_table(TableReference::bare(name), Arc::new(mem))
                .map_err(PlanError::from_datafusion)?;
        }
        for e in self.catalog.in_creation_order() {
            if let (ObjectKind::View, Some(q)) = (e.kind, &e.view_query) {
                if names.contains(&e.name) {
                    State::register_view(&ctx, &e.name, q).await?;
                }
            }
        }
        Ok((ctx, query.clone()))
    }

    /// The rows of the system table `name` now (`None`: not a system table).
    fn system_table_batch(&self, name: &str) -> Option<RecordBatch> {
        Some(match name {
            system_tables::SOURCE_ERRORS | system_tables::LATE_EVENTS => {
                let log = if name == system_tables::SOURCE_ERRORS {
                    &self.errors
                } else {
                    &self.late
                };
                system_tables::log_batch(log, system_tables::log_table_schema(name)?)
            }
            system_tables::SOURCES => system_tables::sources_batch(),
            system_tables::CHECKPOINTS => {
                let stats = self
                    .storage
                    .as_ref()
                    .map(|s| s.checkpointer.stats())
                    .unwrap_or_default();
                system_tables::checkpoints_batch(&stats)
            }
            system_tables::FRONTIERS => system_tables::frontiers_batch(&self.catalog),
            _ => return None,
        })
    }

    pub(crate) fn show(&self, kind: ShowKind) -> Result<Executed, PlanError> {
        let k = match kind {
            ShowKind::Tables => ObjectKind::Table,
            ShowKind::Sources => ObjectKind::Source,
            ShowKind::MaterializedViews => ObjectKind::MaterializedView,
            ShowKind::Views => ObjectKind::View,
            ShowKind::Sinks => ObjectKind::Sink,
        };
        let names = self.catalog.of_kind(k).into_iter().map(|e| e.name.clone()).collect();
        Ok(rows(text_rows("Name", names)))
    }

    pub(crate) fn describe_relation(&self, name: &ObjectName) -> Result<Executed, PlanError> {
        let n = object_name(name);
        let desc = if let Some(schema) = system_tables::schema_of(&n) {
            rampart_repr::RelationDesc::from_arrow(&schema)?
        } else {
            self.catalog
                .get(&n)
                .ok_or_else(|| PlanError::undefined_table(&n))?
                .desc
                .clone()
        };
        let rows_out = desc
            .columns
            .iter()
            .map(|c| vec![c.name.clone(), c.ty.sql_name().to_string()])
            .collect();
        Ok(rows(text_table(&["Name", "Type"], rows_out)))
    }

    pub(crate) async fn explain(&self, stmt: &Statement, parsed: &ParsedStatement) -> Result<Executed, PlanError> {
        let sql = parsed.text.as_str();
        let query: Box<Query> = match stmt {
            Statement::Query(q) => q.clone(),
            Statement::CreateView(cv) => cv.query.clone(),
            _ => {
                return Err(PlanError::unsupported(
                    "EXPLAIN supports SELECT and CREATE [MATERIALIZED] VIEW (for a sink, EXPLAIN its query)",
                ))
            }
        };
        let plan = self
            .plan_streaming_view(&query, NowMode::TemporalFiltersOnly, parsed.emit_on_window_close)
            .await?;
        let plan = match stmt {
            Statement::CreateView(cv) => self.with_retention(plan, &cv.options, sql)?,
            _ => plan,
        };
        let mut lines: Vec<String> = Vec::new();
        if matches!(stmt, Statement::CreateView(cv) if cv.materialized) {
            lines.push(ViewStorage::of(&plan.plan).describe().to_string());
        }
        let physical = rampart_plan::PhysicalPlan::of(
            &plan.plan,
            &rampart_plan::PlanContext {
                lags: &|name| self.event_time_of(name),
                projection_runs_on_rows: &rampart_dataflow::render::projection_runs_on_rows,
            },
        );
        lines.extend(physical.explain().lines().map(str::to_string));
        Ok(rows(text_rows("QUERY PLAN", lines)))
    }

    pub(crate) fn show_variable(
        &self,
        variable: &[datafusion::sql::sqlparser::ast::Ident],
    ) -> Result<Executed, PlanError> {
        let name = variable
            .iter()
            .map(|i| i.value.to_lowercase())
            .collect::<Vec<_>>()
            .join(" ");
        let value = match name.as_str() {
            "server_version" => "15.0 (Rampart)",
            "timezone" | "time zone" => "UTC",
            "transaction isolation level" | "transaction_isolation" => "serializable",
            "client_encoding" => "UTF8",
            "datestyle" => "ISO, MDY",
            "standard_conforming_strings" => "on",
            other => {
                return Err(PlanError::new(
                    "42704",
                    format!("unrecognized configuration parameter \"{other}\""),
                ))
            }
        };
        Ok(rows(text_rows(&name, vec![value.to_string()])))
    }

    /// The columns a statement returns, without running it.
    pub(crate) async fn describe_result(
        &self,
        stmt: &rampart_sql::ParsedStatement,
    ) -> Result<Option<SchemaRef>, PlanError> {
        match &stmt.stmt {
            RampartStatement::Show(_) => Ok(Some(Arc::new(Schema::new(vec![Field::new(
                "Name",
                DataType::Utf8,
                true,
            )])))),
            RampartStatement::Standard(s) => match s.as_ref() {
                Statement::Query(q) => {
                    let (ctx, q) = self.snapshot_context(q).await?;
                    let plan = plan_batch_query(&ctx.state(), &q).await?;
                    Ok(Some(Arc::new(plan.schema().as_arrow().clone())))
                }
                Statement::ExplainTable { .. } => Ok(Some(Arc::new(Schema::new(vec![
                    Field::new("Name", DataType::Utf8, true),
                    Field::new("Type", DataType::Utf8, true),
                ])))),
                Statement::Explain { .. } => Ok(Some(Arc::new(Schema::new(vec![Field::new(
                    "QUERY PLAN",
                    DataType::Utf8,
                    true,
                )])))),
                Statement::ShowVariable { variable } => Ok(Some(Arc::new(Schema::new(vec![Field::new(
                    variable
                        .iter()
                        .map(|i| i.value.to_lowercase())
                        .collect::<Vec<_>>()
                        .join(" "),
                    DataType::Utf8,
                    true,
                )])))),
                _ => Ok(None),
            },
            _ => Ok(None),
        }
    }
}

pub(crate) fn pg_catalog_error() -> PlanError {
    PlanError::unsupported(
        "only part of the PostgreSQL system catalog is available: psql's \\d, \\dt, \\dm and \\dv list objects, but \\d NAME and other catalog queries do not work yet; use DESCRIBE name, SHOW TABLES, SHOW SOURCES, SHOW MATERIALIZED VIEWS, SHOW VIEWS, SHOW SINKS",
    )
}
