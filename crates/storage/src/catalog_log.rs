//! [`CatalogLog`]: the statements that created the live objects, in creation order.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use rampart_repr::Positions;
use serde::{Deserialize, Serialize};

use crate::record_log::RecordLog;

/// A live object as the catalog log remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    /// Object name.
    pub name: String,
    /// The statement that created it, as the user typed it.
    pub sql: String,
    /// When it was created (epoch ms); sources whose data depends on their start (the
    /// generator) are restarted with it.
    pub created_ms: i64,
    /// Where a source's readers start, when that was fixed at creation (file sources in
    /// `latest` mode: the file sizes then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_positions: Option<Positions>,
    /// For a view without retention over retained views: per retained view, the
    /// watermark whose expiries were inside what it imported at creation (see
    /// the engine's `ExpiryFloors`), recorded once the view has caught up.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expiry_floors: BTreeMap<String, i64>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CatalogRecord {
    Create(StoredObject),
    Drop {
        name: String,
    },
    ExpiryFloors {
        name: String,
        floors: BTreeMap<String, i64>,
    },
}

/// The durable list of live objects: a log of creates and drops, each synced before the
/// statement returns, compacted to the live creates when opened.
pub struct CatalogLog {
    log: RecordLog,
}

impl CatalogLog {
    /// Opens the log at `path` and returns the live objects in creation order.
    pub fn open(path: &Path) -> io::Result<(CatalogLog, Vec<StoredObject>)> {
        let (log, records) = RecordLog::open(path)?;
        let mut live: BTreeMap<String, (usize, StoredObject)> = BTreeMap::new();
        let mut dropped = 0;
        for (i, bytes) in records.iter().enumerate() {
            let record: CatalogRecord = serde_json::from_slice(bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("catalog record {i} in {} does not parse: {e}", path.display()),
                )
            })?;
            match record {
                CatalogRecord::Create(o) => {
                    live.insert(o.name.clone(), (i, o));
                }
                CatalogRecord::Drop { name } => {
                    dropped += 1;
                    live.remove(&name);
                }
                CatalogRecord::ExpiryFloors { name, floors } => {
                    if let Some((_, o)) = live.get_mut(&name) {
                        o.expiry_floors = floors;
                    }
                }
            }
        }
        let mut objects: Vec<(usize, StoredObject)> = live.into_values().collect();
        objects.sort_by_key(|(i, _)| *i);
        let objects: Vec<StoredObject> = objects.into_iter().map(|(_, o)| o).collect();
        let log = if dropped > 0 {
            let compact: Vec<Vec<u8>> = objects
                .iter()
                .map(|o| encode(&CatalogRecord::Create(o.clone())))
                .collect();
            RecordLog::replace(path, &compact)?
        } else {
            log
        };
        Ok((CatalogLog { log }, objects))
    }

    /// Durably records a new object.
    pub fn created(&mut self, object: &StoredObject) -> io::Result<()> {
        self.log.append(&encode(&CatalogRecord::Create(object.clone())))?;
        self.log.sync()
    }

    /// Durably records a view's expiry floors (after its CREATE).
    pub fn expiry_floors(&mut self, name: &str, floors: &BTreeMap<String, i64>) -> io::Result<()> {
        self.log.append(&encode(&CatalogRecord::ExpiryFloors {
            name: name.to_string(),
            floors: floors.clone(),
        }))?;
        self.log.sync()
    }

    /// Durably records that an object is gone.
    pub fn dropped(&mut self, name: &str) -> io::Result<()> {
        self.log
            .append(&encode(&CatalogRecord::Drop { name: name.to_string() }))?;
        self.log.sync()
    }
}

fn encode(record: &CatalogRecord) -> Vec<u8> {
    serde_json::to_vec(record).expect("catalog records serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(name: &str, ms: i64) -> StoredObject {
        StoredObject {
            name: name.into(),
            sql: format!("CREATE TABLE {name} (a INT)"),
            created_ms: ms,
            start_positions: None,
            expiry_floors: BTreeMap::new(),
        }
    }

    #[test]
    fn live_objects_come_back_in_creation_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.log");
        let (mut log, objects) = CatalogLog::open(&path).unwrap();
        assert!(objects.is_empty());
        log.created(&obj("a", 1)).unwrap();
        log.created(&obj("b", 2)).unwrap();
        log.created(&obj("c", 3)).unwrap();
        log.dropped("a").unwrap();
        log.created(&obj("a", 4)).unwrap();
        log.dropped("b").unwrap();
        drop(log);
        let (_, objects) = CatalogLog::open(&path).unwrap();
        assert_eq!(objects, vec![obj("c", 3), obj("a", 4)]);
        // Compacted on open: the same objects after a second reopen.
        let (_, again) = CatalogLog::open(&path).unwrap();
        assert_eq!(again, objects);
    }

    #[test]
    fn expiry_floors_join_their_object_and_survive_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.log");
        let (mut log, _) = CatalogLog::open(&path).unwrap();
        log.created(&obj("recent", 1)).unwrap();
        log.created(&obj("later", 2)).unwrap();
        let floors = BTreeMap::from([("recent".to_string(), 35_000_000)]);
        log.expiry_floors("later", &floors).unwrap();
        log.expiry_floors("gone", &floors).unwrap(); // an object not in the log: ignored
        drop(log);
        let (mut log, objects) = CatalogLog::open(&path).unwrap();
        let mut later = obj("later", 2);
        later.expiry_floors = floors;
        assert_eq!(objects, vec![obj("recent", 1), later.clone()]);
        // A drop compacts the log on the next open; the floors stay with their view.
        log.created(&obj("x", 3)).unwrap();
        log.dropped("x").unwrap();
        drop(log);
        let (_, compacted) = CatalogLog::open(&path).unwrap();
        assert_eq!(compacted, vec![obj("recent", 1), later.clone()]);
        let (_, again) = CatalogLog::open(&path).unwrap();
        assert_eq!(again, vec![obj("recent", 1), later]);
    }
}
