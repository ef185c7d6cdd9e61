//! `DROP SOURCE | TABLE | VIEW | MATERIALIZED VIEW | SINK [CASCADE]`.

use datafusion::common::TableReference;
use rampart_dataflow::Command;
use rampart_sql::ast::ObjectKind;
use rampart_sql::PlanError;

use crate::coordinator::{Executed, State};

impl State {
    pub(crate) fn drop_objects(
        &mut self,
        kind: ObjectKind,
        names: &[String],
        if_exists: bool,
        cascade: bool,
    ) -> Result<Executed, PlanError> {
        let mut notices = Vec::new();
        for name in names {
            let Some(entry) = self.catalog.get(name) else {
                if if_exists {
                    notices.push(format!("{} \"{name}\" does not exist, skipping", kind.sql_name()));
                    continue;
                }
                return Err(PlanError::new(
                    "42P01",
                    format!("{} \"{name}\" does not exist", kind.sql_name()),
                ));
            };
            if entry.kind != kind {
                return Err(PlanError::new(
                    "42809",
                    format!(
                        "\"{name}\" is a {}, not a {}; use DROP {}",
                        entry.kind.sql_name(),
                        kind.sql_name(),
                        entry.kind.sql_name().to_uppercase()
                    ),
                ));
            }
            let order = self.catalog.drop_order(name);
            if order.len() > 1 && !cascade {
                let deps: Vec<&String> = order.iter().filter(|n| *n != name).collect();
                return Err(PlanError::new(
                    "2BP01",
                    format!(
                        "cannot drop {} {name} because other objects depend on it: {}; use DROP ... CASCADE",
                        kind.sql_name(),
                        deps.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            for victim in order {
                self.persist_dropped(&victim)?;
                if let Some(e) = self.catalog.remove(&victim) {
                    let _ = self.schema_ctx.deregister_table(TableReference::bare(victim.as_str()));
                    if matches!(
                        e.kind,
                        ObjectKind::Table | ObjectKind::MaterializedView | ObjectKind::Sink
                    ) {
                        self.engine.broadcast(Command::Drop { name: victim.clone() });
                    }
                    if victim != *name {
                        notices.push(format!("drop cascades to {} {victim}", e.kind.sql_name()));
                    }
                }
            }
        }
        let tag = format!("DROP_{}", kind.sql_name().to_uppercase().replace(' ', "_"));
        Ok(Executed {
            notices,
            ..Executed::command(&tag)
        })
    }
}
