//! [`Coordinator`]: executes statements. It owns the catalog, plans statements through
//! `rampart-sql`, starts source readers, sends dataflow commands to the engine, and answers
//! queries from consistent snapshots with DataFusion.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::MemTable;
use datafusion::common::TableReference;
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::ViewTable;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Query;
use rampart_dataflow::{now_ms, Engine};
use rampart_repr::ErrorLog;
use rampart_sql::planner::new_session_context;
use rampart_sql::{parse_statements, ParsedStatement, PlanError, RampartStatement};
use tokio::sync::Mutex;

use crate::catalog::Catalog;
use crate::durability::Storage;
use crate::system_tables;
use crate::transaction::{self, BlockControl};
use rampart_pgwire::{QueryOutput, Session, SqlBackend, SqlError, StatementOutcome, TransactionStatus};

/// How long a statement waits for the views it changed to catch up before returning.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// Executes statements against one engine. Statements run one at a time.
pub struct Coordinator {
    pub(crate) state: Mutex<State>,
}

/// What the coordinator owns.
pub(crate) struct State {
    pub(crate) catalog: Catalog,
    pub(crate) engine: Arc<Engine>,
    /// Tables registered with their schemas only, for planning.
    pub(crate) schema_ctx: SessionContext,
    pub(crate) errors: ErrorLog,
    /// Rows that arrived behind their source's watermark.
    pub(crate) late: ErrorLog,
    /// The data directory, when the server has one.
    pub(crate) storage: Option<Storage>,
    /// While restoring an object from the catalog log: when it was first created.
    pub(crate) restoring: Option<i64>,
    /// While restoring a source: the start positions fixed at its creation.
    pub(crate) restoring_positions: Option<rampart_repr::Positions>,
    /// While restoring a view: the expiry floors recorded for it.
    pub(crate) restoring_floors: std::collections::BTreeMap<String, i64>,
    /// After a restore, until queries have seen it: a time (ms) by which the restored
    /// table contents are in the arrangements. Queries (and DELETE's read of the rows to
    /// delete) wait for it, so the first statements after a restart do not read a table
    /// before its contents reloaded. 0: nothing to wait for.
    pub(crate) restored_tables_ms: std::sync::atomic::AtomicI64,
}

/// The result of one statement before it reaches the wire.
#[derive(Debug)]
pub(crate) struct Executed {
    pub(crate) output: QueryOutput,
    pub(crate) notices: Vec<String>,
}

impl Executed {
    /// A command without a row count.
    pub(crate) fn command(tag: &str) -> Self {
        Executed {
            output: QueryOutput::Command {
                tag: tag.to_string(),
                rows: None,
            },
            notices: vec![],
        }
    }

    /// A command that reports how many rows it affected.
    #[cfg(test)]
    pub(crate) fn command_with_rows(tag: &str, rows: usize) -> Self {
        Executed {
            output: QueryOutput::Command {
                tag: tag.to_string(),
                rows: Some(rows),
            },
            notices: vec![],
        }
    }

    /// The same result with a NOTICE.
    pub(crate) fn with_notice(mut self, notice: impl Into<String>) -> Self {
        self.notices.push(notice.into());
        self
    }

    /// The command tag as the client sees it (`INSERT 0 3`, `CREATE MATERIALIZED VIEW`);
    /// `SELECT` for a result set.
    pub(crate) fn tag_text(&self) -> String {
        match &self.output {
            QueryOutput::Rows { .. } => "SELECT".to_string(),
            QueryOutput::Command { tag, rows } => rampart_pgwire::handler::command_tag_text(tag, *rows),
        }
    }
}

impl Coordinator {
    /// A coordinator driving `engine`; rejected input is recorded in `errors`.
    pub fn new(engine: Arc<Engine>, errors: ErrorLog) -> Arc<Self> {
        Self::with_storage(engine, errors, ErrorLog::new(), None)
    }

    /// A coordinator that records objects and table changes in a data directory; `errors`
    /// and `late` are `rampart_source_errors` and `rampart_late_events`.
    pub(crate) fn with_storage(
        engine: Arc<Engine>,
        errors: ErrorLog,
        late: ErrorLog,
        storage: Option<Storage>,
    ) -> Arc<Self> {
        let schema_ctx = new_session_context();
        crate::pg_catalog::register(&schema_ctx, None);
        // Every system table, by its columns only, for planning.
        for name in system_tables::ALL {
            if let Some(schema) = system_tables::schema_of(name) {
                let _ = schema_ctx.register_table(name, Arc::new(EmptyTable::new(schema)));
            }
        }
        Arc::new(Coordinator {
            state: Mutex::new(State {
                catalog: Catalog::default(),
                engine,
                schema_ctx,
                errors,
                late,
                storage,
                restoring: None,
                restoring_positions: None,
                restoring_floors: Default::default(),
                restored_tables_ms: Default::default(),
            }),
        })
    }

    /// Executes SQL text in a session of its own and returns an error for the first failing
    /// statement.
    pub async fn execute_script(&self, sql: &str) -> Result<Vec<StatementOutcome>, SqlError> {
        let outcomes = self.execute(&mut Session::internal(), sql).await;
        if let Some(Err(e)) = outcomes.last().map(|o| o.result.as_ref()) {
            return Err(e.clone());
        }
        Ok(outcomes)
    }
}

fn to_sql_error(e: PlanError, stmt: Option<&ParsedStatement>) -> SqlError {
    let mut position = e.position;
    if let Some(s) = stmt {
        position = match position {
            Some(p) => Some(p),
            None => locate(&e, s),
        };
    }
    let mut err = SqlError::new(e.sqlstate, e.message.clone()).at(position);
    if e.sqlstate == "0A000" {
        err = err.with_hint("see docs/sql.md for the SQL Rampart runs");
    }
    err
}

/// Points an error without a position at the name it complains about, when that name
/// appears in the statement.
fn locate(e: &PlanError, s: &ParsedStatement) -> Option<usize> {
    let quoted = e.message.split(['"', '\'']).nth(1)?;
    let name = quoted.rsplit('.').next().unwrap_or(quoted).to_lowercase();
    if name.is_empty() {
        return None;
    }
    let lower = s.text.to_lowercase();
    let byte = lower.find(&name)?;
    Some(s.offset + lower[..byte].chars().count() + 1)
}

#[async_trait::async_trait]
impl SqlBackend for Coordinator {
    async fn execute(&self, session: &mut Session, sql: &str) -> Vec<StatementOutcome> {
        let stmts = match parse_statements(sql) {
            Ok(s) => s,
            Err(e) => {
                // psql's `\d NAME` uses syntax (OPERATOR(pg_catalog.~)) Rampart cannot parse.
                let e = if sql.contains("pg_catalog.") {
                    crate::query::pg_catalog_error()
                } else {
                    e
                };
                return vec![StatementOutcome {
                    result: Err(to_sql_error(e, None)),
                    notices: vec![],
                }];
            }
        };
        if stmts.is_empty() {
            return vec![StatementOutcome {
                result: Ok(QueryOutput::Command {
                    tag: "EMPTY".into(),
                    rows: None,
                }),
                notices: vec![],
            }];
        }
        let mut out = Vec::new();
        let mut state = self.state.lock().await;
        for stmt in &stmts {
            match state.execute_in_session(session, stmt).await {
                Ok(ex) => out.push(StatementOutcome {
                    result: Ok(ex.output),
                    notices: ex.notices,
                }),
                Err(e) => {
                    out.push(StatementOutcome {
                        result: Err(to_sql_error(e, Some(stmt))),
                        notices: vec![],
                    });
                    break;
                }
            }
        }
        out
    }

    async fn describe(&self, _session: &Session, sql: &str) -> Result<Option<SchemaRef>, SqlError> {
        let stmts = parse_statements(sql).map_err(|e| to_sql_error(e, None))?;
        let Some(stmt) = stmts.first() else { return Ok(None) };
        let state = self.state.lock().await;
        state
            .describe_result(stmt)
            .await
            .map_err(|e| to_sql_error(e, Some(stmt)))
    }
}

impl State {
    /// Executes one statement for `session`, keeping its transaction block: block controls
    /// run on the session, a failed block refuses everything else, a change applied in a
    /// block is recorded there, and a failure inside a block fails the block.
    async fn execute_in_session(
        &mut self,
        session: &mut Session,
        stmt: &ParsedStatement,
    ) -> Result<Executed, PlanError> {
        let result = match BlockControl::of(&stmt.stmt) {
            Ok(Some(control)) => return control.run(session),
            Err(e) => Err(e),
            Ok(None) if session.transaction == TransactionStatus::Failed => Err(transaction::aborted()),
            Ok(None) => self.execute_one(stmt).await,
        };
        match result {
            Ok(mut executed) => {
                if transaction::applies_change(&stmt.stmt) {
                    transaction::note_applied(session, &mut executed);
                }
                Ok(executed)
            }
            Err(e) => {
                session.transaction = session.transaction.after_error();
                Err(e)
            }
        }
    }

    pub(crate) async fn execute_one(&mut self, stmt: &ParsedStatement) -> Result<Executed, PlanError> {
        use datafusion::sql::sqlparser::ast::Statement as S;
        match &stmt.stmt {
            RampartStatement::CreateSource { .. } => self.create_source(&stmt.stmt, &stmt.text),
            RampartStatement::CreateSink {
                name,
                if_not_exists,
                from,
                options,
                format,
            } => {
                self.create_sink(name, *if_not_exists, from, options, format.as_ref(), stmt)
                    .await
            }
            RampartStatement::Drop {
                kind,
                names,
                if_exists,
                cascade,
            } => self.drop_objects(*kind, names, *if_exists, *cascade),
            RampartStatement::Show(kind) => self.show(*kind),
            RampartStatement::Standard(s) => match s.as_ref() {
                S::CreateTable(ct) => self.create_table(ct, &stmt.text),
                S::CreateView(cv) => self.create_view(cv, stmt).await,
                S::Insert(ins) => self.insert(ins).await,
                S::Delete(del) => self.delete(del).await,
                S::Copy {
                    source,
                    to,
                    target,
                    options,
                    legacy_options,
                    ..
                } => self.copy_from(source, *to, target, options, legacy_options).await,
                S::Query(_) if stmt.emit_on_window_close => Err(PlanError::unsupported(
                    "EMIT ON WINDOW CLOSE applies to materialized views and sinks, not to a SELECT",
                )),
                S::Query(q) => self.select(q).await,
                S::Explain { statement, .. } => self.explain(statement, stmt).await,
                S::ExplainTable { table_name, .. } => self.describe_relation(table_name),
                S::Set(_) => Ok(Executed::command("SET")),
                S::ShowVariable { variable } => self.show_variable(variable),
                other => Err(PlanError::unsupported(format!(
                    "statement not supported: {}",
                    other
                        .to_string()
                        .split_whitespace()
                        .take(3)
                        .collect::<Vec<_>>()
                        .join(" ")
                ))),
            },
        }
    }

    /// Waits, once after a restore, until the restored table contents can be read (see
    /// `State::restored_tables_ms`).
    pub(crate) async fn wait_restored_tables(&self) {
        use std::sync::atomic::Ordering;
        let target = self.restored_tables_ms.load(Ordering::Acquire);
        if target == 0 {
            return;
        }
        let registry = self.engine.registry().clone();
        let target = target as rampart_dataflow::Time;
        let _ = tokio::task::spawn_blocking(move || registry.wait_sealed(target, CATCH_UP_TIMEOUT)).await;
        self.restored_tables_ms.store(0, Ordering::Release);
    }

    /// Waits until every view reflects changes made before now.
    pub(crate) async fn catch_up(&self) -> Vec<String> {
        self.catch_up_after(None).await
    }

    /// Waits until every view reflects changes made before now and, when given, the table
    /// changes that entered at the time `entered` receives (a worker may enter them after
    /// now: waiting for now alone could return before views see them). NOTICEs when views
    /// lag for longer than [`CATCH_UP_TIMEOUT`].
    pub(crate) async fn catch_up_after(
        &self,
        entered: Option<crossbeam_channel::Receiver<rampart_dataflow::Time>>,
    ) -> Vec<String> {
        let now = now_ms() + 1;
        let registry = self.engine.registry().clone();
        let ok = tokio::task::spawn_blocking(move || {
            let target = match entered.map(|at| at.recv_timeout(CATCH_UP_TIMEOUT)) {
                Some(Ok(at)) => now.max(at + 1),
                Some(Err(_)) => return false,
                None => now,
            };
            registry.wait_sealed(target, CATCH_UP_TIMEOUT)
        })
        .await
        .unwrap_or(false);
        if ok {
            vec![]
        } else {
            vec![format!(
                "views are still catching up after {}s; results may lag until they do",
                CATCH_UP_TIMEOUT.as_secs()
            )]
        }
    }

    pub(crate) fn check_free(&self, name: &str) -> Result<(), PlanError> {
        if self.catalog.get(name).is_some() || system_tables::is_system_table(name) {
            return Err(PlanError::duplicate(name));
        }
        Ok(())
    }

    /// Registers the plain view `name` in `ctx`, planned from its query's statement tree
    /// against the relations `ctx` holds. Names are registered as written (resolved), never
    /// parsed again, so a quoted mixed-case name stays itself.
    pub(crate) async fn register_view(ctx: &SessionContext, name: &str, query: &Query) -> Result<(), PlanError> {
        let plan = rampart_sql::planner::plan_batch_query(&ctx.state(), query).await?;
        let view = ViewTable::new(plan, Some(query.to_string()));
        ctx.register_table(TableReference::bare(name), Arc::new(view))
            .map(|_| ())
            .map_err(PlanError::from_datafusion)
    }

    pub(crate) fn register_schema(&self, name: &str, schema: SchemaRef) -> Result<(), PlanError> {
        self.schema_ctx
            .register_table(TableReference::bare(name), Arc::new(EmptyTable::new(schema)))
            .map(|_| ())
            .map_err(PlanError::from_datafusion)
    }

    /// Registers snapshot data for a batch query: `MemTable`s for tables and views.
    pub(crate) fn register_snapshot(
        &self,
        ctx: &SessionContext,
        tables: Vec<(String, SchemaRef, Vec<rampart_repr::Row>)>,
    ) -> Result<(), PlanError> {
        for (name, schema, rows) in tables {
            let batch =
                rampart_repr::rows_to_batch(rows.iter(), &schema).map_err(|e| PlanError::invalid(e.to_string()))?;
            let mem = MemTable::try_new(schema, vec![vec![batch]]).map_err(PlanError::from_datafusion)?;
            ctx.register_table(TableReference::bare(name), Arc::new(mem))
                .map_err(PlanError::from_datafusion)?;
        }
        Ok(())
    }
}
