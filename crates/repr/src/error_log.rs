//! [`ErrorLog`]: the rows of `rampart_source_errors`, bad input kept as data instead of
//! being dropped. Shared by every source reader and by the dataflow's expression
//! evaluation; read by the server when the table is queried.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Raw input kept in an error record is cut to this many bytes.
pub const MAX_RAW_BYTES: usize = 4096;

/// Records kept in memory; older ones are dropped first (the counter keeps counting).
pub const MAX_RECORDS: usize = 100_000;

/// One rejected input.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorRecord {
    /// The source (or view) that rejected it.
    pub source: String,
    /// Where it came from: a file path, a topic-partition.
    pub location: String,
    /// Line number (files) or offset (Kafka), when known.
    pub offset: Option<i64>,
    /// The raw input, cut to [`MAX_RAW_BYTES`].
    pub raw: String,
    /// Why it was rejected.
    pub reason: String,
    /// When, in microseconds since the epoch.
    pub at_us: i64,
}

/// A shared, bounded log of rejected input with a total counter.
#[derive(Debug, Clone, Default)]
pub struct ErrorLog {
    inner: Arc<Mutex<Kept>>,
    total: Arc<AtomicU64>,
}

/// Records kept, and the positions already recorded: several readers of one source (one
/// per view reading it) see the same bad line, and it is recorded once.
#[derive(Debug, Default)]
struct Kept {
    records: std::collections::VecDeque<ErrorRecord>,
    seen: std::collections::HashSet<(String, String, i64)>,
    /// Records not yet written to the data directory, when it keeps them.
    unsaved: Option<Vec<ErrorRecord>>,
}

impl ErrorLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a rejected input, once per (source, location, offset) when the offset is
    /// known; `raw` is cut to [`MAX_RAW_BYTES`] on a character boundary.
    pub fn record(&self, source: &str, location: &str, offset: Option<i64>, raw: &str, reason: impl Into<String>) {
        let mut cut = raw.len().min(MAX_RAW_BYTES);
        while !raw.is_char_boundary(cut) {
            cut -= 1;
        }
        let rec = ErrorRecord {
            source: source.to_string(),
            location: location.to_string(),
            offset,
            raw: raw[..cut].to_string(),
            reason: reason.into(),
            at_us: chrono::Utc::now().timestamp_micros(),
        };
        self.keep(rec, true);
    }

    /// Puts back records a previous run of the server saved (not saved again).
    pub fn restore(&self, records: Vec<ErrorRecord>) {
        for rec in records {
            self.keep(rec, false);
        }
    }

    /// From now on, keeps every new record for [`ErrorLog::take_unsaved`] too.
    pub fn save_new_records(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.unsaved.get_or_insert_with(Vec::new);
    }

    /// The records added since the last call (after [`ErrorLog::save_new_records`]).
    pub fn take_unsaved(&self) -> Vec<ErrorRecord> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.unsaved.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Gives back records [`ErrorLog::take_unsaved`] returned that could not be written.
    pub fn unsaved_again(&self, mut records: Vec<ErrorRecord>) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(unsaved) = g.unsaved.as_mut() {
            records.append(unsaved);
            *unsaved = records;
        }
    }

    fn keep(&self, rec: ErrorRecord, new: bool) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(off) = rec.offset {
            if !g.seen.insert((rec.source.clone(), rec.location.clone(), off)) {
                return;
            }
        }
        if new {
            if let Some(unsaved) = g.unsaved.as_mut() {
                if unsaved.len() < MAX_RECORDS {
                    unsaved.push(rec.clone());
                }
            }
        }
        self.total.fetch_add(1, Ordering::Relaxed);
        if g.records.len() >= MAX_RECORDS {
            if let Some(old) = g.records.pop_front() {
                if let Some(off) = old.offset {
                    g.seen.remove(&(old.source, old.location, off));
                }
            }
        }
        g.records.push_back(rec);
    }

    /// A copy of the records kept.
    pub fn snapshot(&self) -> Vec<ErrorRecord> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .records
            .iter()
            .cloned()
            .collect()
    }

    /// How many errors were recorded in all.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_records_come_back_once_and_are_not_saved_again() {
        let log = ErrorLog::new();
        log.record("auth", "a.jsonl", Some(3), "{", "not JSON");
        log.save_new_records();
        log.record("auth", "a.jsonl", Some(4), "{x", "not JSON");
        log.record("auth", "a.jsonl", Some(4), "{x", "again: one line, one record");
        let saved = log.take_unsaved();
        assert_eq!(saved.len(), 1, "only what came after save_new_records, once");
        assert!(log.take_unsaved().is_empty());

        let restarted = ErrorLog::new();
        restarted.save_new_records();
        restarted.restore(log.snapshot());
        assert!(
            restarted.take_unsaved().is_empty(),
            "restored records are saved already"
        );
        // A reader replaying the file meets line 4 again: still one record.
        restarted.record("auth", "a.jsonl", Some(4), "{x", "not JSON");
        assert_eq!(restarted.snapshot(), log.snapshot());
        assert_eq!(restarted.total(), 2);
    }
}
