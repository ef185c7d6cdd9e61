//! [`RecordLog`]: an append-only file of checksummed records.
//!
//! Each record is `len: u32 LE | crc32(payload): u32 LE | payload`. Opening a log reads
//! every whole, valid record; anything after the first record that is cut short or fails
//! its checksum is a torn or corrupt tail: the tail is copied aside (`*.corrupt`) and the
//! file cut back to the valid prefix, so appends continue from a clean end.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const HEADER: usize = 8;

/// Largest record accepted when reading (guards against a corrupt length).
const MAX_RECORD: u32 = 1 << 30;

/// An open append-only log.
pub struct RecordLog {
    path: PathBuf,
    file: File,
    len: u64,
}

impl RecordLog {
    /// Opens (creating if missing) the log at `path` and returns it with its valid records.
    pub fn open(path: &Path) -> io::Result<(RecordLog, Vec<Vec<u8>>)> {
        let mut records = Vec::new();
        let log = Self::open_each(path, |payload, _| {
            records.push(payload.to_vec());
            Ok(())
        })?;
        Ok((log, records))
    }

    /// Opens (creating if missing) the log at `path`, handing each valid record to `each`
    /// in order, with the log's length just past it. The file is read record by record,
    /// so a log larger than memory can be opened.
    pub fn open_each(path: &Path, mut each: impl FnMut(&[u8], u64) -> io::Result<()>) -> io::Result<RecordLog> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
        let size = file.metadata()?.len();
        let mut reader = io::BufReader::with_capacity(1 << 20, &file);
        let mut valid: u64 = 0;
        let mut payload = Vec::new();
        while let Some(len) = next_record(&mut reader, size - valid, &mut payload)? {
            valid += len;
            each(&payload, valid)?;
        }
        drop(reader);
        if valid < size {
            let aside = path.with_extension("corrupt");
            tracing::warn!(
                file = %path.display(),
                valid_bytes = valid,
                dropped_bytes = size - valid,
                "torn or corrupt tail in a log: keeping the valid records, a copy of the tail is at {}",
                aside.display()
            );
            let mut tail = Vec::new();
            file.seek(SeekFrom::Start(valid))?;
            (&file).read_to_end(&mut tail)?;
            fs::write(&aside, &tail)?;
            file.set_len(valid)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::End(0))?;
        Ok(RecordLog {
            path: path.to_path_buf(),
            file,
            len: valid,
        })
    }

    /// Creates an empty log at `path`, replacing any file there.
    pub fn create(path: &Path) -> io::Result<RecordLog> {
        Self::replace(path, &[])
    }

    /// Atomically replaces the log at `path` with exactly `records` (write a temporary
    /// file, fsync, rename over, fsync the directory): a crash leaves the old or the new.
    pub fn replace(path: &Path, records: &[Vec<u8>]) -> io::Result<RecordLog> {
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let tmp = path.with_extension("tmp");
        let mut buf = Vec::new();
        for r in records {
            frame(r, &mut buf);
        }
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        sync_dir(dir)?;
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(RecordLog {
            path: path.to_path_buf(),
            file,
            len: buf.len() as u64,
        })
    }

    /// Appends one record (not yet durable: see [`RecordLog::sync`]). A failed append
    /// cuts the file back, so a partial record never precedes later ones.
    pub fn append(&mut self, payload: &[u8]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(payload.len() + HEADER);
        frame(payload, &mut buf);
        if let Err(e) = self.file.write_all(&buf) {
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Cuts the log back to its first `len` bytes (a record boundary: a length this log
    /// reported), dropping every record after them, durably.
    pub fn cut_to(&mut self, len: u64) -> io::Result<()> {
        if len < self.len {
            self.file.set_len(len)?;
            self.file.sync_data()?;
            self.len = len;
        }
        Ok(())
    }

    /// Makes every appended record durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Bytes in the log.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the log holds no records.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the log lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Reads the next record's payload into `payload` if a whole, valid one follows within the
/// `left` bytes of the file not read yet; returns its framed length. `None` at the end, and
/// at a record cut short or failing its checksum.
fn next_record(reader: &mut impl Read, left: u64, payload: &mut Vec<u8>) -> io::Result<Option<u64>> {
    if left < HEADER as u64 {
        return Ok(None);
    }
    let mut header = [0u8; HEADER];
    reader.read_exact(&mut header)?;
    let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    if len > MAX_RECORD || left - (HEADER as u64) < len as u64 {
        return Ok(None);
    }
    payload.resize(len as usize, 0);
    reader.read_exact(payload)?;
    if crc32fast::hash(payload) != crc {
        return Ok(None);
    }
    Ok(Some(HEADER as u64 + len as u64))
}

/// Fsyncs a directory, so a rename or a new file in it survives a power cut.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let (mut log, records) = RecordLog::open(&path).unwrap();
        assert!(records.is_empty());
        log.append(b"one").unwrap();
        log.append(b"two").unwrap();
        log.sync().unwrap();
        drop(log);
        // A kill in the middle of an append: half a record at the end.
        let mut bytes = fs::read(&path).unwrap();
        let whole = bytes.len();
        bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
        fs::write(&path, &bytes).unwrap();
        let (mut log, records) = RecordLog::open(&path).unwrap();
        assert_eq!(records, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(fs::metadata(&path).unwrap().len(), whole as u64);
        assert!(path.with_extension("corrupt").exists());
        log.append(b"three").unwrap();
        drop(log);
        let (_, records) = RecordLog::open(&path).unwrap();
        assert_eq!(records.len(), 3);
    }

    #[test]
    fn a_flipped_byte_fails_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let (mut log, _) = RecordLog::open(&path).unwrap();
        log.append(b"first").unwrap();
        log.append(b"second").unwrap();
        drop(log);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        let (_, records) = RecordLog::open(&path).unwrap();
        assert_eq!(records, vec![b"first".to_vec()]);
    }

    #[test]
    fn replace_swaps_contents_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let (mut log, _) = RecordLog::open(&path).unwrap();
        log.append(b"a").unwrap();
        log.append(b"b").unwrap();
        let mut log = RecordLog::replace(&path, &[b"ab".to_vec()]).unwrap();
        log.append(b"c").unwrap();
        drop(log);
        let (_, records) = RecordLog::open(&path).unwrap();
        assert_eq!(records, vec![b"ab".to_vec(), b"c".to_vec()]);
        assert!(!path.with_extension("tmp").exists());
    }
}
