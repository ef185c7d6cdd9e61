//! `CREATE SOURCE` (and Flink's connector `CREATE TABLE`): validate the options and columns,
//! fix where readers start, persist, register.

use rampart_connectors::late::Watermark;
use rampart_connectors::source::{MetaColumn, SourceConnector};
use rampart_repr::RelationDesc;
use rampart_sql::ast::ObjectKind;
use rampart_sql::{PlanError, RampartStatement, WatermarkSpec};

use super::*;
use crate::catalog::CatalogEntry;
use crate::coordinator::{Executed, State};

impl State {
    /// `CREATE SOURCE` (and Flink's connector `CREATE TABLE`): `stmt` is the parsed statement.
    pub(crate) fn create_source(&mut self, stmt: &RampartStatement, sql: &str) -> Result<Executed, PlanError> {
        let RampartStatement::CreateSource {
            name,
            if_not_exists,
            columns,
            options,
            format,
            watermark,
            includes,
        } = stmt
        else {
            return Err(PlanError::new("XX000", "create_source called with another statement"));
        };
        let (name, if_not_exists, format) = (name.as_str(), *if_not_exists, format.as_ref());
        if if_not_exists && self.catalog.get(name).is_some() {
            return Ok(notice_exists("source", name));
        }
        self.check_free(name)?;
        let mut connector = SourceConnector::from_options(options).map_err(rampart_repr::Error::from)?;
        let mut columns = columns.clone();
        if !includes.is_empty() {
            let SourceConnector::Kafka { include, .. } = &mut connector else {
                return Err(PlanError::unsupported(
                    "INCLUDE columns are only available on kafka sources",
                ));
            };
            for (what, alias) in includes {
                let meta = MetaColumn::parse(what)?;
                let col = alias.clone().unwrap_or_else(|| meta.default_name().to_string());
                if columns.index_of(&col).is_some() {
                    return Err(PlanError::new(
                        "42701",
                        format!("column \"{col}\" specified more than once"),
                    ));
                }
                columns.columns.push(rampart_repr::Column {
                    name: col,
                    ty: meta.column_type(),
                });
                include.push(meta);
            }
        }
        let columns = &columns;
        connector.check_supported()?;
        if let Some(f) = format {
            if f.format != "PLAIN" {
                return Err(PlanError::unsupported(format!(
                    "sources support FORMAT PLAIN only, not {}",
                    f.format
                )));
            }
        }
        if columns.columns.is_empty() {
            return Err(PlanError::invalid(format!("source {name} declares no columns")));
        }
        let watermark = watermark.as_ref().map(|w| watermark_column(columns, w)).transpose()?;
        let created_ms = self.creation_ms();
        connector.pin_start(created_ms);
        let mut notices = Vec::new();
        let start_positions = match connector.pin_positions(self.restoring_positions.take()) {
            Ok(p) => p,
            Err(e) => {
                notices.push(format!(
                    "the start offsets of '{name}' could not be fixed now ({e}): each reader starts at the latest offsets when it starts, and after a restart messages that arrived while the server was down are skipped"
                ));
                None
            }
        };
        self.persist_created_at(name, sql, created_ms, start_positions)?;
        self.register_schema(name, columns.arrow_schema())?;
        self.catalog.insert(CatalogEntry {
            name: name.to_string(),
            kind: ObjectKind::Source,
            desc: columns.clone(),
            sql: sql.to_string(),
            depends_on: vec![],
            store: None,
            connector: Some(connector),
            // A source is a stream: it has lags even without a WATERMARK (all None), so
            // joins know it is not a table.
            event_time: Some({
                let mut lags = vec![None; columns.columns.len()];
                if let Some(w) = &watermark {
                    lags[w.column] = Some(0);
                }
                lags
            }),
            watermark,
            view_query: None,
            upstream: vec![],
            seq: 0,
            retention: None,
            sink: None,
        });
        Ok(Executed {
            notices,
            ..Executed::command("CREATE_SOURCE")
        })
    }
}

/// Resolves `WATERMARK FOR col` to the column's index; the column must be a timestamp.
pub(super) fn watermark_column(columns: &RelationDesc, w: &WatermarkSpec) -> Result<Watermark, PlanError> {
    let Some(i) = columns.index_of(&w.column) else {
        return Err(PlanError::new(
            "42703",
            format!("WATERMARK FOR {}: the source has no such column", w.column),
        ));
    };
    if !matches!(
        columns.columns[i].ty,
        rampart_repr::ColumnType::Timestamp | rampart_repr::ColumnType::TimestampTz
    ) {
        return Err(PlanError::new(
            "42804",
            format!(
                "WATERMARK FOR {}: the column must be TIMESTAMP or TIMESTAMPTZ, not {:?}",
                w.column, columns.columns[i].ty
            ),
        ));
    }
    Ok(Watermark {
        column: i,
        delay_us: w.delay_us,
    })
}
