//! `CREATE MATERIALIZED VIEW` and `CREATE VIEW`: validate, plan (with its retention),
//! decide how it persists and restores, install its dataflow, wait for it to catch up.

use std::sync::Arc;

use datafusion::common::TableReference;
use datafusion::sql::sqlparser::ast::{CreateTableOptions, CreateView, Query};
use rampart_dataflow::{Command, ViewSpec, ViewStore};
use rampart_plan::event_time::plan_lags;
use rampart_plan::{Plan, ViewPlan};
use rampart_sql::ast::{object_name, ObjectKind};
use rampart_sql::lower::NowMode;
use rampart_sql::{ParsedStatement, PlanError};

use super::*;
use crate::catalog::CatalogEntry;
use crate::coordinator::{Executed, State};
use crate::durability::RestorePlan;

impl State {
    /// `plan` under the retention its view's `WITH` options ask for (unchanged without
    /// one). The retention column is the one named by `retention_column`, or the view's
    /// only column that follows a source watermark.
    pub(crate) fn with_retention(
        &self,
        plan: ViewPlan,
        options: &CreateTableOptions,
        sql: &str,
    ) -> Result<ViewPlan, PlanError> {
        // ASCII lowercasing keeps byte offsets, so `i` is a char boundary of `sql`.
        let at = sql
            .to_ascii_lowercase()
            .find("retention")
            .map(|i| sql[..i].chars().count() + 1);
        let Some(retention) = rampart_sql::retention::view_retention(options).map_err(|e| e.at(at))? else {
            return Ok(plan);
        };
        let lags = plan_lags(&plan.plan, &|name| self.event_time_of(name));
        let names: Vec<&str> = plan.desc.columns.iter().map(|c| c.name.as_str()).collect();
        let timed: Vec<usize> = (0..names.len())
            .filter(|i| lags.get(*i).copied().flatten().is_some())
            .collect();
        let column = match &retention.column {
            Some(name) => {
                let i = names
                    .iter()
                    .position(|n| n.eq_ignore_ascii_case(name))
                    .ok_or_else(|| {
                        PlanError::new("42703", format!("retention_column {name} is not a column of the view")).at(at)
                    })?;
                if !timed.contains(&i) {
                    return Err(PlanError::invalid(format!(
                        "retention_column {name} does not follow a source WATERMARK, so its rows would never expire; {}",
                        timed_columns(&names, &timed)
                    ))
                    .at(at));
                }
                i
            }
            None => match timed.as_slice() {
                [one] => *one,
                [] => {
                    return Err(PlanError::invalid(
                        "a retention needs an event-time column that follows a source WATERMARK (WATERMARK FOR event_time AS event_time - INTERVAL '5 seconds' on the source); this view has none",
                    )
                    .at(at))
                }
                _ => {
                    return Err(PlanError::invalid(format!(
                        "the view has several event-time columns: name one with retention_column; {}",
                        timed_columns(&names, &timed)
                    ))
                    .at(at))
                }
            },
        };
        Ok(ViewPlan {
            plan: Arc::new(Plan::Retain {
                input: Box::new((*plan.plan).clone()),
                retention: rampart_plan::Retention {
                    column,
                    keep_us: retention.keep_us,
                },
            }),
            desc: plan.desc,
        })
    }

    /// A retained view's retention, and a NOTICE for each retained view it reads that
    /// keeps rows for less time: rows leave this view when they leave that one, and that
    /// expiry is not recognised as such by views without a retention reading this one. For
    /// a view without a retention (not while restoring): a NOTICE for each retained view it
    /// reads, saying it starts from that view's current rows and keeps them.
    pub(crate) fn retention_chain(
        &self,
        name: &str,
        plan: &ViewPlan,
    ) -> (Option<rampart_plan::Retention>, Vec<String>) {
        let Plan::Retain { retention, input } = plan.plan.as_ref() else {
            // A view without a retention keeps what it derives from a retained view, but
            // starts from that view's current rows (after a restart too: see the expiry
            // floors recorded in `create_view`).
            if self.restoring.is_some() {
                return (None, vec![]);
            }
            let notices = self
                .retained_dependencies(&plan.plan)
                .into_iter()
                .map(|dep| {
                    format!(
                        "{name} reads {dep}, which has a retention: {name} starts from the rows {dep} holds now and keeps what it derives from them, also after they leave {dep}"
                    )
                })
                .collect();
            return (None, notices);
        };
        let notices = plan
            .plan
            .dependencies()
            .into_iter()
            .filter_map(|dep| {
                let up = self.catalog.get(&dep)?.retention?.keep_us;
                (up < retention.keep_us).then(|| {
                    format!(
                        "{name} keeps rows for {} s but reads {dep}, which keeps them for {} s: its rows leave when they leave {dep}, and views without a retention that read {name} may lose them then; give {name} a retention no longer than {dep}'s",
                        retention.keep_us as f64 / 1e6,
                        up as f64 / 1e6
                    )
                })
            })
            .chain(self.retention_column_notices(name, input, retention.column, &plan.desc))
            .collect();
        (Some(*retention), notices)
    }

    /// A NOTICE for each retained view whose rows a retained view's rows are made from
    /// when it expires them by another column: rows leave with that view's expiry as well
    /// as its own, so views without a retention that read it may lose them early.
    pub(crate) fn retention_column_notices(
        &self,
        name: &str,
        input: &Plan,
        column: usize,
        desc: &rampart_repr::RelationDesc,
    ) -> Vec<String> {
        let origin = rampart_plan::lineage::column_origin(input, column);
        let column_name = desc.columns.get(column).map(|c| c.name.as_str()).unwrap_or_default();
        input
            .dependencies()
            .into_iter()
            .filter_map(|dep| {
                let entry = self.catalog.get(&dep)?;
                let up_column = entry.retention?.column;
                if !rampart_plan::lineage::rows_come_from(input, &dep) || origin == Some((dep.clone(), up_column)) {
                    return None;
                }
                let up_name = entry.desc.columns.get(up_column).map(|c| c.name.as_str()).unwrap_or_default();
                Some(format!(
                    "{name} expires rows by {column_name} but reads {dep}, which expires them by {up_name}: its rows also leave when they leave {dep}, and views without a retention that read {name} may lose them then; expire {name} by the column {dep}.{up_name} is copied to"
                ))
            })
            .collect()
    }

    /// `CREATE [MATERIALIZED] VIEW`, in its steps: [`State::validate_view`],
    /// [`State::plan_materialized_view`], [`State::persist_view`],
    /// [`State::install_view`], [`State::wait_for_view`].
    pub(crate) async fn create_view(&mut self, cv: &CreateView, stmt: &ParsedStatement) -> Result<Executed, PlanError> {
        let name = object_name(&cv.name);
        let kind = if cv.materialized {
            ObjectKind::MaterializedView
        } else {
            ObjectKind::View
        };
        if cv.if_not_exists && self.catalog.get(&name).is_some() {
            return Ok(notice_exists(kind.sql_name(), &name));
        }
        self.validate_view(cv, &name)?;
        if !cv.materialized {
            return self.create_plain_view(&name, &cv.query, stmt).await;
        }
        let planned = self.plan_materialized_view(cv, &name, stmt).await?;
        let persisted = self.persist_view(&name, &planned, &stmt.text)?;
        let installed = self.install_view(&name, cv, &stmt.text, planned, persisted)?;
        let notices = self.wait_for_view(&name, installed).await;
        Ok(Executed {
            notices,
            ..Executed::command("CREATE_MATERIALIZED_VIEW")
        })
    }

    /// What a view's statement may not ask for, before anything is planned.
    fn validate_view(&self, cv: &CreateView, name: &str) -> Result<(), PlanError> {
        if cv.or_replace {
            return Err(PlanError::unsupported(
                "CREATE OR REPLACE of views is not supported; DROP and CREATE",
            ));
        }
        self.check_free(name)?;
        if !cv.columns.is_empty() {
            return Err(PlanError::unsupported(
                "column lists on CREATE VIEW are not supported; alias the columns in the query",
            ));
        }
        if !cv.materialized && cv.options != CreateTableOptions::None {
            return Err(PlanError::unsupported(
                "WITH options on a (non-materialized) view are not supported: a retention applies to CREATE MATERIALIZED VIEW",
            ));
        }
        Ok(())
    }

    /// The view's plan (with `EMIT ON WINDOW CLOSE` and its retention), the event-time
    /// lags of what it reads, and the NOTICEs its retention chain calls for.
    async fn plan_materialized_view(
        &self,
        cv: &CreateView,
        name: &str,
        stmt: &ParsedStatement,
    ) -> Result<PlannedView, PlanError> {
        let plan = self
            .plan_streaming_view(&cv.query, NowMode::TemporalFiltersOnly, stmt.emit_on_window_close)
            .await?;
        let plan = self.with_retention(plan, &cv.options, &stmt.text)?;
        let (retention, retention_notices) = self.retention_chain(name, &plan);
        let (lags, event_time) = self.plan_event_time(&plan);
        Ok(PlannedView {
            plan,
            retention,
            retention_notices,
            lags,
            event_time,
        })
    }

    /// Decides how the view comes back after a restart and records it: a view of single
    /// source events is snapshotted (restored from its last checkpoint, its readers resume
    /// there); a view without a retention over a retained snapshotted one is saved too and
    /// rebuilt beside it. Its readers start before the statement is recorded, so one that
    /// cannot start fails the statement without leaving it in the catalog.
    fn persist_view(&mut self, name: &str, planned: &PlannedView, sql: &str) -> Result<PersistedView, PlanError> {
        let plan = &planned.plan;
        let rebuilt = match self.restore_plan(name, &plan.plan, planned.retention.is_some(), false)? {
            RestorePlan::Rebuilt(roots) => Some(roots),
            RestorePlan::AsUsual => None,
        };
        let snapshot = self.open_view_log(name, &plan.plan, rebuilt.as_ref())?;
        let checkpoint = snapshot.as_ref().and_then(|(_, cp)| cp.as_ref());
        let resume = checkpoint.map(|cp| cp.positions.clone()).unwrap_or_default();
        let feeds = self.source_feeds(plan, &resume)?;
        let created_ms = self.creation_ms();
        self.persist_created(name, sql, created_ms)?;
        Ok(PersistedView {
            rebuilt,
            snapshot,
            feeds,
        })
    }

    /// Starts the view's dataflow on every worker and enters it in the catalog.
    fn install_view(
        &mut self,
        name: &str,
        cv: &CreateView,
        sql: &str,
        planned: PlannedView,
        persisted: PersistedView,
    ) -> Result<InstalledView, PlanError> {
        let PlannedView {
            plan,
            retention,
            retention_notices,
            lags,
            event_time,
        } = planned;
        let PersistedView {
            rebuilt,
            snapshot,
            feeds,
        } = persisted;
        // Registered once the view exists, before its dataflow reads a batch.
        let (snapshot_capture, restored_rows) = self.snapshot_view(name, &plan.plan, snapshot, &feeds);
        let restore_start = rampart_dataflow::now_ms();
        let ingest_gate = self.restore_gate(restored_rows.as_ref().map(|r| r.len()), restore_start);
        let is_rebuilt = rebuilt.is_some();
        if let Some(roots) = rebuilt {
            self.register_rebuilt(name, roots);
        }
        let upstream = self.upstream_feeds(name, &feeds, &plan);
        let store = ViewStore::new(self.engine.workers(), self.engine.registry());
        let floor_report = rampart_dataflow::ExpiryFloors::default();
        let spec = ViewSpec {
            name: name.to_string(),
            plan: plan.plan.clone(),
            desc: plan.desc.clone(),
            arrange: true,
            store: Some(store.clone()),
            sink: None,
            sources: feeds,
            errors: self.errors.clone(),
            late: self.late.clone(),
            lags,
            restoring: self.restoring.is_some(),
            expiry_floors: self.restoring_floors.clone(),
            floor_report: floor_report.clone(),
            mute_until_gate: is_rebuilt && restored_rows.is_some(),
            snapshot_capture,
            restored_rows,
            restore_start,
            ingest_gate,
        };
        self.register_schema(name, plan.desc.arrow_schema())?;
        self.engine.broadcast(Command::CreateView(Box::new(spec)));
        self.catalog.insert(CatalogEntry {
            name: name.to_string(),
            kind: ObjectKind::MaterializedView,
            desc: plan.desc.clone(),
            sql: sql.to_string(),
            depends_on: self.dependencies_of(&plan, &cv.query),
            store: Some(store),
            connector: None,
            watermark: None,
            event_time,
            view_query: None,
            upstream,
            seq: 0,
            retention,
            sink: None,
        });
        Ok(InstalledView {
            floor_report,
            retention_notices,
            is_rebuilt,
        })
    }

    /// Waits for the new view to catch up (not while restoring: views then replay in the
    /// background), then records its expiry floors and, for a rebuilt view, its first
    /// checkpoint. Returns the statement's NOTICEs.
    async fn wait_for_view(&mut self, name: &str, installed: InstalledView) -> Vec<String> {
        let mut notices = if self.restoring.is_some() {
            vec![]
        } else {
            self.catch_up().await
        };
        let caught_up = notices.is_empty();
        notices.extend(self.record_expiry_floors(name, &installed.floor_report, caught_up));
        notices.extend(installed.retention_notices);
        if installed.is_rebuilt && self.restoring.is_none() {
            notices.extend(self.first_checkpoint(name).await);
        }
        notices
    }

    pub(crate) async fn create_plain_view(
        &mut self,
        name: &str,
        query: &Query,
        stmt: &ParsedStatement,
    ) -> Result<Executed, PlanError> {
        let sql = stmt.text.as_str();
        if stmt.emit_on_window_close {
            return Err(PlanError::unsupported(
                "EMIT ON WINDOW CLOSE applies to materialized views and sinks, not to CREATE VIEW",
            ));
        }
        // Check it plans as a streaming query, so views over it can be materialized.
        let plan = self.plan_view(query, NowMode::TemporalFiltersOnly).await?;
        State::register_view(&self.schema_ctx, name, query).await?;
        let deps = self.view_dependencies(query).await?;
        let created_ms = self.creation_ms();
        if let Err(e) = self.persist_created(name, sql, created_ms) {
            let _ = self.schema_ctx.deregister_table(TableReference::bare(name));
            return Err(e);
        }
        self.catalog.insert(CatalogEntry {
            name: name.to_string(),
            kind: ObjectKind::View,
            desc: plan.desc,
            sql: sql.to_string(),
            depends_on: deps,
            store: None,
            connector: None,
            watermark: None,
            event_time: None,
            view_query: Some(Box::new(query.clone())),
            upstream: vec![],
            seq: 0,
            retention: None,
            sink: None,
        });
        Ok(Executed::command("CREATE_VIEW"))
    }
}

/// "the event-time columns are a, b" (or that there are none), for retention errors.
pub(super) fn timed_columns(names: &[&str], timed: &[usize]) -> String {
    if timed.is_empty() {
        return "the view has no event-time column".into();
    }
    let list: Vec<&str> = timed.iter().map(|i| names[*i]).collect();
    format!("the event-time columns are {}", list.join(", "))
}

/// A materialized view once planned.
struct PlannedView {
    plan: ViewPlan,
    /// Its retention, if it has one.
    retention: Option<rampart_plan::Retention>,
    /// NOTICEs about its place in a chain of retained views.
    retention_notices: Vec<String>,
    /// Event-time lags of what it reads, for the dataflow.
    lags: std::collections::BTreeMap<String, rampart_plan::event_time::Lags>,
    /// Event-time lags of its own columns.
    event_time: Option<rampart_plan::event_time::Lags>,
}

/// A materialized view once recorded in the data directory, with its readers started.
struct PersistedView {
    /// For a rebuilt view, the retained views it is rebuilt from.
    rebuilt: Option<std::collections::BTreeSet<String>>,
    /// Its view log and last checkpoint, when it is snapshotted.
    snapshot: Option<(rampart_storage::ViewLog, Option<rampart_storage::ViewCheckpoint>)>,
    /// The readers feeding it.
    feeds: std::collections::BTreeMap<String, rampart_dataflow::SourceFeed>,
}

/// A materialized view once its dataflow runs.
struct InstalledView {
    floor_report: rampart_dataflow::ExpiryFloors,
    retention_notices: Vec<String>,
    is_rebuilt: bool,
}
