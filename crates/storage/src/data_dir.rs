//! [`DataDir`]: the layout of a server's data directory, locked against a second server.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use rampart_repr::{Error, SqlState};

/// A data directory, exclusively locked for as long as this value lives:
///
/// ```text
/// D/LOCK             held with an exclusive lock by the running server
/// D/catalog.log      CatalogLog
/// D/tables/NAME.log  TableLog per table
/// D/sinks/NAME.log   SinkStateLog per sink
/// D/views/NAME.log   ViewLog per snapshotted view
/// D/errors.log       ErrorJournal (rampart_source_errors)
/// ```
pub struct DataDir {
    root: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates (if needed) and locks `root`. Fails if another server holds it (`55006`),
    /// or with the I/O error on the file or directory it names (`58030`).
    pub fn open(root: &Path) -> Result<DataDir, Error> {
        for dir in [
            root.to_path_buf(),
            root.join("tables"),
            root.join("sinks"),
            root.join("views"),
        ] {
            fs::create_dir_all(&dir)
                .map_err(|e| Error::io(format!("cannot create data directory {}: {e}", dir.display()), e))?;
        }
        let lock_path = root.join("LOCK");
        let lock = File::create(&lock_path)
            .map_err(|e| Error::io(format!("cannot create {}: {e}", lock_path.display()), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::new(
                    SqlState::ObjectInUse,
                    format!(
                        "data directory {} is in use by another Rampart server; stop it or pick another --data-dir",
                        root.display()
                    ),
                ))
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(Error::io(format!("cannot lock {}: {e}", lock_path.display()), e))
            }
        }
        Ok(DataDir {
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The catalog log.
    pub fn catalog_path(&self) -> PathBuf {
        self.root.join("catalog.log")
    }

    /// The journal of rejected input.
    pub fn errors_path(&self) -> PathBuf {
        self.root.join("errors.log")
    }

    /// The saved rows of `rampart_late_events`.
    pub fn late_events_path(&self) -> PathBuf {
        self.root.join("late.log")
    }

    /// The log of complete checkpoint rounds.
    pub fn rounds_path(&self) -> PathBuf {
        self.root.join("rounds.log")
    }

    /// A table's change log.
    pub fn table_path(&self, table: &str) -> PathBuf {
        self.root.join("tables").join(format!("{}.log", file_name(table)))
    }

    /// A snapshotted view's log.
    pub fn view_path(&self, view: &str) -> PathBuf {
        self.root.join("views").join(format!("{}.log", file_name(view)))
    }

    /// A sink's state log.
    pub fn sink_path(&self, sink: &str) -> PathBuf {
        self.root.join("sinks").join(format!("{}.log", file_name(sink)))
    }
}

/// An object name as a file name: safe characters kept, others hex-escaped.
fn file_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(c);
        } else {
            for b in c.to_string().bytes() {
                out.push_str(&format!("%{b:02x}"));
            }
        }
    }
    out
}

/// An I/O error's text, saying so when the disk holding the data directory is full.
pub fn describe_io(e: &io::Error) -> String {
    if crate::is_disk_full(e) {
        format!("{e} (the disk holding the data directory is full: free space, then retry)")
    } else {
        e.to_string()
    }
}

/// A failed operation on a file of the data directory as an [`Error`]: `"{what}: {e}"`
/// (with [`describe_io`]'s advice on a full disk), `53100` when the disk is full, else
/// `58030`; `what` names the file or the object it belongs to.
pub fn io_error(what: impl std::fmt::Display, e: io::Error) -> Error {
    Error::io(format!("{what}: {}", describe_io(&e)), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_server_cannot_lock_the_same_directory() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDir::open(dir.path()).unwrap();
        let err = DataDir::open(dir.path()).err().unwrap();
        assert!(err.message().contains("in use by another Rampart server"), "{err}");
        assert_eq!(err.state(), SqlState::ObjectInUse);
        drop(first);
        DataDir::open(dir.path()).unwrap();
        assert_eq!(file_name("a.b/c"), "a%2eb%2fc");
    }

    #[test]
    fn a_data_directory_that_cannot_be_created_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        let err = DataDir::open(&plain.join("data")).err().unwrap();
        assert_eq!(err.state(), SqlState::IoError);
        assert!(err.message().contains(&plain.display().to_string()), "{err}");
        let err = io_error("cannot read table t", io::Error::from_raw_os_error(28));
        assert_eq!(err.state(), SqlState::DiskFull);
        assert!(err.message().starts_with("cannot read table t: "), "{err}");
    }
}
