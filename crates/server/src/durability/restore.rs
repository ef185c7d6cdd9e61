//! The restart: every object of the catalog log re-created in creation order, from its
//! checkpoint where it has one, with readers held at a gate until all are back.

use super::*;

impl Coordinator {
    /// Re-executes the statements of the objects in the catalog log, in creation order.
    /// Returns one message per object that could not be restored (it stays in the log, so a
    /// later restart retries it once the cause is fixed).
    pub async fn restore(&self, objects: Vec<StoredObject>) -> Vec<String> {
        let mut failures = Vec::new();
        let mut state = self.state.lock().await;
        // Readers created while restoring wait at this gate until every object is back.
        if let Some(storage) = state.storage.as_ref() {
            *storage.restore.lock() = Some(RestoreProgress {
                gate: Arc::new(AtomicU64::new(u64::MAX)),
                until: 0,
                from_checkpoint: HashSet::new(),
            });
        }
        for object in objects {
            state.restoring = Some(object.created_ms);
            state.restoring_positions = object.start_positions.clone();
            state.restoring_floors = object.expiry_floors.clone();
            let result = match rampart_sql::parse_statements(&object.sql) {
                Ok(stmts) if stmts.len() == 1 => state.execute_one(&stmts[0]).await.map(|_| ()),
                Ok(_) => Err(PlanError::invalid("stored statement is not a single statement")),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                failures.push(format!(
                    "cannot restore {}: {} ({})",
                    object.name, e.message, e.sqlstate
                ));
            }
        }
        state.restoring = None;
        state.restoring_positions = None;
        state.restoring_floors.clear();
        // Every restored row and watermark enters before this time, and what the rebuilt
        // views make of them too (their expiries and windows closing at most a few
        // milliseconds later): new input enters from here on, and rebuilt views stop
        // muting their output.
        if let Some(storage) = state.storage.as_ref() {
            if let Some(r) = storage.restore.lock().take() {
                // What operators produce from restored input lands at most this much later.
                let live = now_ms().max(r.until) + rampart_repr::DERIVED_CHANGES_MS;
                r.gate.store(live, std::sync::atomic::Ordering::Release);
            }
        }
        state
            .restored_tables_ms
            .store(now_ms() as i64 + 1, std::sync::atomic::Ordering::Release);
        failures
    }
}
