//! [`ViewLog`]: a snapshotted view's rows, appended at each checkpoint together with the
//! source positions they reflect, so a restart loads the rows and resumes its readers there
//! instead of replaying every source from its start.
//!
//! Records: `Rows` (the rows the view gained since the previous checkpoint) followed by
//! `Mark` (the checkpoint's dataflow time and, per source, the positions its readers had
//! reached at that time, and the checkpoint round it belongs to), written together and
//! synced once. Opening keeps everything up to the last `Mark` of a complete round (see
//! `RoundLog`) and cuts the rest: rows written without their mark (a kill between the two,
//! or a failed write), or in a round the server died before completing, are not part of
//! any checkpoint.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use rampart_repr::Diff;
use rampart_repr::{Positions, Row};
use serde::{Deserialize, Serialize};

use crate::record_log::RecordLog;

#[derive(Serialize, Deserialize)]
enum ViewRecord {
    Rows(Vec<(Row, Diff)>),
    /// A mark written before rounds existed: round 0.
    Mark {
        time: u64,
        positions: BTreeMap<String, Positions>,
    },
    RoundMark {
        round: u64,
        time: u64,
        positions: BTreeMap<String, Positions>,
    },
}

/// What the last checkpoint of a view holds.
#[derive(Debug, Default, PartialEq)]
pub struct ViewCheckpoint {
    /// The checkpoint round it was written in.
    pub round: u64,
    /// The dataflow time (ms) the rows and positions are taken at.
    pub time: u64,
    /// Per source the view reads, the positions its reader had reached at `time`.
    pub positions: BTreeMap<String, Positions>,
    /// The view's rows at `time`, with multiplicities.
    pub rows: Vec<(Row, Diff)>,
}

/// An open view snapshot log.
pub struct ViewLog {
    log: RecordLog,
    /// Checkpoints in the log.
    marks: u64,
    /// The log's size when it was last compacted (or opened).
    compacted_len: u64,
}

/// Rows per `Rows` record when a log is rewritten.
const ROWS_PER_RECORD: usize = 65_536;

impl ViewLog {
    /// Starts an empty log for a new view (replacing a stale file of a dropped one).
    pub fn create(path: &Path) -> io::Result<ViewLog> {
        Ok(ViewLog {
            log: RecordLog::create(path)?,
            marks: 0,
            compacted_len: 0,
        })
    }

    /// Opens a view's log: its last checkpoint in a round up to `through_round` (`None` if
    /// it has none). Records after that checkpoint's mark are cut from the file.
    pub fn open(path: &Path, through_round: u64) -> io::Result<(ViewLog, Option<ViewCheckpoint>)> {
        let mut rows: Vec<(Row, Diff)> = Vec::new();
        let mut unmarked = 0;
        // The last mark kept (its rows filled in at the end), the rows before it, its end.
        let mut last: Option<(ViewCheckpoint, usize, u64)> = None;
        let mut marks = 0;
        let mut done = false;
        let bad = |e: bincode::Error| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a record in {} does not decode: {e}", path.display()),
            )
        };
        let mut log = RecordLog::open_each(path, |payload, end| {
            if done {
                return Ok(());
            }
            let (round, time, positions) = match bincode::deserialize::<ViewRecord>(payload).map_err(bad)? {
                ViewRecord::Rows(mut more) => {
                    unmarked += more.len();
                    rows.append(&mut more);
                    return Ok(());
                }
                ViewRecord::Mark { time, positions } => (0, time, positions),
                ViewRecord::RoundMark { round, time, positions } => (round, time, positions),
            };
            if round > through_round {
                done = true;
                return Ok(());
            }
            marks += 1;
            unmarked = 0;
            let cp = ViewCheckpoint {
                round,
                time,
                positions,
                rows: vec![],
            };
            last = Some((cp, rows.len(), end));
            Ok(())
        })?;
        let Some((mut checkpoint, kept, end)) = last else {
            log.cut_to(0)?;
            return Ok((
                ViewLog {
                    log,
                    marks: 0,
                    compacted_len: 0,
                },
                None,
            ));
        };
        if unmarked > 0 || end < log.len() {
            tracing::warn!(
                file = %path.display(),
                rows = unmarked,
                "rows written after the view's last complete checkpoint are dropped (the server stopped before its mark, or before the round was complete)"
            );
            log.cut_to(end)?;
        }
        rows.truncate(kept);
        checkpoint.rows = rows;
        let compacted_len = log.len();
        Ok((
            ViewLog {
                log,
                marks,
                compacted_len,
            },
            Some(checkpoint),
        ))
    }

    /// Durably appends a checkpoint: the rows gained since the last one, then the mark.
    /// On failure the log is cut back to the previous checkpoint.
    pub fn checkpoint(
        &mut self,
        rows: &[(Row, Diff)],
        round: u64,
        time: u64,
        positions: &BTreeMap<String, Positions>,
    ) -> io::Result<()> {
        let before = self.log.len();
        let result = self.append(rows, round, time, positions);
        if result.is_err() {
            let _ = self.log.cut_to(before);
        } else {
            self.marks += 1;
        }
        result
    }

    fn append(
        &mut self,
        rows: &[(Row, Diff)],
        round: u64,
        time: u64,
        positions: &BTreeMap<String, Positions>,
    ) -> io::Result<()> {
        let encode = |r: &ViewRecord| bincode::serialize(r).map_err(|e| io::Error::other(e.to_string()));
        if !rows.is_empty() {
            self.log.append(&encode(&ViewRecord::Rows(rows.to_vec()))?)?;
        }
        self.log.append(&encode(&ViewRecord::RoundMark {
            round,
            time,
            positions: positions.clone(),
        })?)?;
        self.log.sync()
    }

    /// Whether the log has grown to twice its size after the last compaction, and by at
    /// least `min_growth` bytes: time to [`ViewLog::compact`] a view whose rows expire.
    pub fn wants_compaction(&self, min_growth: u64) -> bool {
        let len = self.log.len();
        len >= self.compacted_len.saturating_mul(2) && len - self.compacted_len >= min_growth
    }

    /// Rewrites the log as its last checkpoint with only the rows `keep` accepts (a view
    /// with a retention: the rows that have not expired by that checkpoint's watermark),
    /// atomically: a crash leaves the old log or the new one. Returns the rows kept.
    pub fn compact(&mut self, keep: impl Fn(&Row) -> bool) -> io::Result<usize> {
        let path = self.log.path().to_path_buf();
        let (_, checkpoint) = ViewLog::open(&path, u64::MAX)?;
        let Some(cp) = checkpoint else { return Ok(0) };
        let kept: Vec<(Row, Diff)> = cp.rows.into_iter().filter(|(row, _)| keep(row)).collect();
        let encode = |r: &ViewRecord| bincode::serialize(r).map_err(|e| io::Error::other(e.to_string()));
        let mut records = Vec::new();
        for chunk in kept.chunks(ROWS_PER_RECORD) {
            records.push(encode(&ViewRecord::Rows(chunk.to_vec()))?);
        }
        records.push(encode(&ViewRecord::RoundMark {
            round: cp.round,
            time: cp.time,
            positions: cp.positions,
        })?);
        self.log = RecordLog::replace(&path, &records)?;
        self.marks = 1;
        self.compacted_len = self.log.len();
        Ok(kept.len())
    }

    /// Bytes in the log.
    pub fn len(&self) -> u64 {
        self.log.len()
    }

    /// Whether the log holds no checkpoint.
    pub fn is_empty(&self) -> bool {
        self.marks == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_repr::{row, Datum};

    fn at(offset: u64) -> BTreeMap<String, Positions> {
        let mut p = Positions::default();
        p.advance("partition 0", offset);
        BTreeMap::from([("auth".to_string(), p)])
    }

    fn rows(range: std::ops::Range<i64>) -> Vec<(Row, Diff)> {
        range.map(|i| (row![Datum::Int(i), Datum::str("user")], 1)).collect()
    }

    #[test]
    fn checkpoints_reopen_with_their_rows_and_positions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.log");
        let mut log = ViewLog::create(&path).unwrap();
        assert!(log.is_empty());
        log.checkpoint(&rows(0..3), 10, 10, &at(3)).unwrap();
        log.checkpoint(&[], 11, 11, &at(3)).unwrap();
        log.checkpoint(&rows(3..5), 12, 12, &at(5)).unwrap();
        drop(log);
        let (log, cp) = ViewLog::open(&path, u64::MAX).unwrap();
        assert!(!log.is_empty());
        let cp = cp.unwrap();
        assert_eq!((cp.time, cp.positions), (12, at(5)));
        assert_eq!(cp.rows, rows(0..5));
    }

    #[test]
    fn rows_without_their_mark_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.log");
        let mut log = ViewLog::create(&path).unwrap();
        log.checkpoint(&rows(0..2), 10, 10, &at(2)).unwrap();
        let marked = log.len();
        // A kill after the rows record, before its mark.
        log.log
            .append(&bincode::serialize(&ViewRecord::Rows(rows(2..4))).unwrap())
            .unwrap();
        drop(log);
        let (mut log, cp) = ViewLog::open(&path, u64::MAX).unwrap();
        assert_eq!(cp.unwrap().rows, rows(0..2));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), marked);
        // Appends continue from the mark.
        log.checkpoint(&rows(2..3), 11, 11, &at(3)).unwrap();
        drop(log);
        let (_, cp) = ViewLog::open(&path, u64::MAX).unwrap();
        assert_eq!(cp.unwrap().rows, rows(0..3));
    }

    #[test]
    fn a_torn_mark_falls_back_to_the_previous_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.log");
        let mut log = ViewLog::create(&path).unwrap();
        log.checkpoint(&rows(0..2), 10, 10, &at(2)).unwrap();
        log.checkpoint(&rows(2..4), 11, 11, &at(4)).unwrap();
        drop(log);
        // Cut the last byte: the second mark fails its checksum.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let (_, cp) = ViewLog::open(&path, u64::MAX).unwrap();
        let cp = cp.unwrap();
        assert_eq!((cp.time, cp.positions, cp.rows), (10, at(2), rows(0..2)));
    }

    #[test]
    fn compaction_keeps_the_last_checkpoint_with_the_rows_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.log");
        let mut log = ViewLog::create(&path).unwrap();
        log.checkpoint(&rows(0..100), 10, 10, &at(100)).unwrap();
        log.checkpoint(&rows(100..200), 11, 11, &at(200)).unwrap();
        assert!(log.wants_compaction(1));
        assert!(!log.wants_compaction(u64::MAX), "not grown by that much");
        let before = log.len();
        let keep = |r: &Row| matches!(r.first(), Some(Datum::Int(i)) if *i >= 150);
        assert_eq!(log.compact(keep).unwrap(), 50);
        assert!(log.len() < before);
        assert!(!log.wants_compaction(1), "just compacted");
        // Checkpoints go on after the rewrite, and a reopen sees both.
        log.checkpoint(&rows(200..210), 12, 12, &at(210)).unwrap();
        drop(log);
        let (_, cp) = ViewLog::open(&path, u64::MAX).unwrap();
        let cp = cp.unwrap();
        assert_eq!((cp.time, cp.positions), (12, at(210)));
        assert_eq!(cp.rows, rows(150..210));
    }

    #[test]
    fn marks_of_an_incomplete_round_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.log");
        let mut log = ViewLog::create(&path).unwrap();
        log.checkpoint(&rows(0..2), 1, 10, &at(2)).unwrap();
        log.checkpoint(&rows(2..4), 3, 11, &at(4)).unwrap();
        let complete = log.len();
        log.checkpoint(&rows(4..6), 4, 12, &at(6)).unwrap();
        drop(log);
        // Round 4 never completed: the view comes back as of round 3.
        let (mut log, cp) = ViewLog::open(&path, 3).unwrap();
        let cp = cp.unwrap();
        assert_eq!((cp.round, cp.time, cp.positions), (3, 11, at(4)));
        assert_eq!(cp.rows, rows(0..4));
        assert_eq!(log.len(), complete, "cut after round 3");
        log.checkpoint(&rows(4..5), 5, 13, &at(5)).unwrap();
        drop(log);
        assert_eq!(ViewLog::open(&path, 2).unwrap().1.unwrap().rows, rows(0..2));
    }

    #[test]
    fn a_mark_written_before_rounds_is_round_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.log");
        let mut log = ViewLog::create(&path).unwrap();
        for record in [
            ViewRecord::Rows(rows(0..2)),
            ViewRecord::Mark {
                time: 7,
                positions: at(2),
            },
        ] {
            log.log.append(&bincode::serialize(&record).unwrap()).unwrap();
        }
        drop(log);
        let cp = ViewLog::open(&path, 0).unwrap().1.unwrap();
        assert_eq!((cp.round, cp.time, cp.rows), (0, 7, rows(0..2)));
    }

    #[test]
    fn a_whole_record_that_does_not_decode_is_invalid_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.log");
        let (mut raw, _) = RecordLog::open(&path).unwrap();
        raw.append(&[0xff; 16]).unwrap();
        drop(raw);
        let err = ViewLog::open(&path, u64::MAX).err().expect("undecodable");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_log_without_a_checkpoint_has_nothing_to_restore() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.log");
        let mut log = ViewLog::create(&path).unwrap();
        log.log
            .append(&bincode::serialize(&ViewRecord::Rows(rows(0..2))).unwrap())
            .unwrap();
        drop(log);
        let (log, cp) = ViewLog::open(&path, u64::MAX).unwrap();
        assert!(cp.is_none());
        assert!(log.is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }
}
