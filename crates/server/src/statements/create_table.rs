//! `CREATE TABLE`: validate the columns, persist, start the table's dataflow.

use datafusion::sql::sqlparser::ast::CreateTable;
use rampart_dataflow::{Command, ViewStore};
use rampart_sql::ast::{object_name, ObjectKind};
use rampart_sql::parse::columns_to_desc;
use rampart_sql::PlanError;

use super::*;
use crate::catalog::CatalogEntry;
use crate::coordinator::{Executed, State};

impl State {
    pub(crate) fn create_table(&mut self, ct: &CreateTable, sql: &str) -> Result<Executed, PlanError> {
        let name = object_name(&ct.name);
        if ct.if_not_exists && self.catalog.get(&name).is_some() {
            return Ok(notice_exists("table", &name));
        }
        self.check_free(&name)?;
        if ct.query.is_some() {
            return Err(PlanError::unsupported(
                "CREATE TABLE ... AS SELECT is not supported; use CREATE MATERIALIZED VIEW",
            ));
        }
        if ct
            .constraints
            .iter()
            .any(|c| matches!(c, datafusion::sql::sqlparser::ast::TableConstraint::Check(_)))
        {
            return Err(rampart_sql::parse::check_unsupported());
        }
        let desc = columns_to_desc(&ct.columns)?;
        if desc.columns.is_empty() {
            return Err(PlanError::invalid(format!("table {name} declares no columns")));
        }
        let created_ms = self.creation_ms();
        let contents = self.open_table_log(&name)?;
        self.persist_created(&name, sql, created_ms)?;
        self.register_schema(&name, desc.arrow_schema())?;
        let store = ViewStore::new(self.engine.workers(), self.engine.registry());
        self.engine.broadcast(Command::CreateTable {
            name: name.clone(),
            store: store.clone(),
        });
        if !contents.is_empty() {
            let _entered = self.engine.update_table(&name, contents);
        }
        self.catalog.insert(CatalogEntry {
            name,
            kind: ObjectKind::Table,
            desc,
            sql: sql.to_string(),
            depends_on: vec![],
            store: Some(store),
            connector: None,
            watermark: None,
            event_time: None,
            view_query: None,
            upstream: vec![],
            seq: 0,
            retention: None,
            sink: None,
        });
        Ok(Executed::command("CREATE_TABLE"))
    }
}
