//! [`SinkStateLog`]: what a sink has emitted, as changes, with its output length and how
//! far its inputs had been read when it emitted them.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;

use rampart_repr::Diff;
use rampart_repr::{Positions, Row};
use serde::{Deserialize, Serialize};

use crate::record_log::RecordLog;

/// One record: changes emitted since the previous record, and where things stood after.
#[derive(Serialize, Deserialize)]
struct SinkRecord {
    changes: Vec<(Row, Diff)>,
    output_len: Option<u64>,
    upstream: BTreeMap<String, Positions>,
    /// Where a destination that can be read back stood (absent in logs of other sinks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output_positions: Option<Positions>,
}

/// A sink's state as of its last record.
#[derive(Debug, Default, Clone)]
pub struct SinkCheckpoint {
    /// The collection the sink has emitted so far (row → multiplicity).
    pub emitted: HashMap<Row, Diff>,
    /// The sink's output length then, for outputs that can be cut back (files).
    pub output_len: Option<u64>,
    /// Where the output stood then, for destinations that can be read back (Kafka: the
    /// next message number and, per partition, an offset at or before the first message
    /// not covered by the log).
    pub output_positions: Option<Positions>,
    /// For each feed upstream of the sink (`view/source`), positions its reader had
    /// reached, at least as far as the input `emitted` reflects.
    pub upstream: BTreeMap<String, Positions>,
}

/// Records are appended as the sink emits; the log is rewritten as one record once it
/// holds many.
pub struct SinkStateLog {
    log: RecordLog,
    records: usize,
}

/// Rewrite the log as one record once it holds this many.
const COMPACT_AFTER_RECORDS: usize = 4096;

impl SinkStateLog {
    /// Starts an empty log for a new sink (replacing a stale file of a dropped sink).
    pub fn create(path: &Path) -> io::Result<SinkStateLog> {
        Ok(SinkStateLog {
            log: RecordLog::create(path)?,
            records: 0,
        })
    }

    /// Opens an existing sink's log and returns its checkpoint.
    pub fn open(path: &Path) -> io::Result<(SinkStateLog, SinkCheckpoint)> {
        let (log, records) = RecordLog::open(path)?;
        let mut cp = SinkCheckpoint::default();
        for (i, bytes) in records.iter().enumerate() {
            let r: SinkRecord = serde_json::from_slice(bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("sink record {i} in {} does not parse: {e}", path.display()),
                )
            })?;
            apply(&mut cp.emitted, r.changes.iter().map(|(row, d)| (row, *d)));
            if r.output_len.is_some() {
                cp.output_len = r.output_len;
            }
            if r.output_positions.is_some() {
                cp.output_positions = r.output_positions;
            }
            for (feed, p) in r.upstream {
                cp.upstream.entry(feed).or_default().merge(&p);
            }
        }
        Ok((
            SinkStateLog {
                log,
                records: records.len(),
            },
            cp,
        ))
    }

    /// Appends a record (durable at the next [`SinkStateLog::sync`]).
    pub fn append(
        &mut self,
        changes: Vec<(Row, Diff)>,
        output_len: Option<u64>,
        upstream: BTreeMap<String, Positions>,
    ) -> io::Result<()> {
        self.append_at(changes, output_len, None, upstream)
    }

    /// Appends a record that also says where the output stood (see
    /// [`SinkCheckpoint::output_positions`]).
    pub fn append_at(
        &mut self,
        changes: Vec<(Row, Diff)>,
        output_len: Option<u64>,
        output_positions: Option<Positions>,
        upstream: BTreeMap<String, Positions>,
    ) -> io::Result<()> {
        let r = SinkRecord {
            changes,
            output_len,
            upstream,
            output_positions,
        };
        self.log
            .append(&serde_json::to_vec(&r).expect("sink records serialize"))?;
        self.records += 1;
        Ok(())
    }

    /// Makes the appended records durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.log.sync()
    }

    /// Whether the log has grown enough to be rewritten by [`SinkStateLog::compact`].
    pub fn wants_compaction(&self) -> bool {
        self.records >= COMPACT_AFTER_RECORDS
    }

    /// Atomically rewrites the log as one record holding `cp`.
    pub fn compact(&mut self, cp: &SinkCheckpoint) -> io::Result<()> {
        let mut changes: Vec<(Row, Diff)> = cp.emitted.iter().map(|(r, d)| (r.clone(), *d)).collect();
        changes.sort();
        let r = SinkRecord {
            changes,
            output_len: cp.output_len,
            upstream: cp.upstream.clone(),
            output_positions: cp.output_positions.clone(),
        };
        let path = self.log.path().to_path_buf();
        self.log = RecordLog::replace(&path, &[serde_json::to_vec(&r).expect("sink records serialize")])?;
        self.records = 1;
        Ok(())
    }

    /// Where the log lives.
    pub fn path(&self) -> &Path {
        self.log.path()
    }

    /// Deletes the log of a dropped sink.
    pub fn remove(self) -> io::Result<()> {
        std::fs::remove_file(self.log.path())
    }
}

/// Adds changes to a collection, removing rows whose count reaches zero.
pub(crate) fn apply<'a>(collection: &mut HashMap<Row, Diff>, changes: impl IntoIterator<Item = (&'a Row, Diff)>) {
    for (row, d) in changes {
        let e = collection.entry(row.clone()).or_insert(0);
        *e += d;
        if *e == 0 {
            collection.remove(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_repr::Datum;

    #[test]
    fn checkpoint_accumulates_records_and_survives_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        let row = |s: &str| rampart_repr::row![Datum::Str(s.into())];
        let pos = |n: u64| {
            let mut p = Positions::default();
            p.advance("f", n);
            BTreeMap::from([("v/src".to_string(), p)])
        };
        let mut log = SinkStateLog::create(&path).unwrap();
        log.append(vec![(row("a"), 1), (row("b"), 1)], Some(20), pos(5))
            .unwrap();
        log.append(vec![(row("a"), -1)], Some(30), pos(9)).unwrap();
        let mut out = Positions::default();
        out.advance("seq", 7);
        log.append_at(vec![], None, Some(out.clone()), BTreeMap::new()).unwrap();
        drop(log);
        let (mut log, cp) = SinkStateLog::open(&path).unwrap();
        assert_eq!(cp.output_positions.as_ref(), Some(&out));
        assert_eq!(cp.emitted, HashMap::from([(row("b"), 1)]));
        assert_eq!(cp.output_len, Some(30));
        assert_eq!(cp.upstream, pos(9));
        log.compact(&cp).unwrap();
        drop(log);
        let (_, again) = SinkStateLog::open(&path).unwrap();
        assert_eq!(again.emitted, cp.emitted);
        assert_eq!(again.output_len, Some(30));
        assert_eq!(again.upstream, pos(9));
        assert_eq!(again.output_positions, Some(out));
    }
}
