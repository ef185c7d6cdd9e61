//! The `file` source: JSON lines from a file or a glob of files, followed as they grow and
//! as new files match. A line that does not decode goes to the error log with its file and
//! line number; a partial last line waits for its newline.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use rampart_repr::{Error, SqlState};

use crate::batch::{BatchSender, BATCH_ROWS};
use crate::options::StartupMode;
use crate::row_builder::RowBuilder;
use crate::source::SourceContext;

/// How long the reader sleeps at the end of every file before looking again.
const POLL: Duration = Duration::from_millis(5);

struct Followed {
    reader: BufReader<File>,
    line_no: i64,
    /// Byte offset just past the last complete line read.
    offset: u64,
    /// The bytes of a last line still waiting for its newline (a character split across
    /// two writes is whole once the rest arrives).
    partial: Vec<u8>,
}

pub(crate) fn spawn(
    path: String,
    startup: StartupMode,
    start_at: Option<rampart_repr::Positions>,
    ctx: SourceContext,
    mut out: BatchSender,
) -> Result<(), Error> {
    glob::Pattern::new(&path).map_err(|e| {
        Error::invalid_parameter(format!("option 'path' is not a valid file name or glob: {e}")).with_source(e)
    })?;
    let mut rows = RowBuilder::new(&ctx.desc, ctx.projection.clone());
    let mut late = crate::late::LateFilter::for_reader(&ctx);
    let initial: Vec<PathBuf> = matches(&path);
    std::thread::Builder::new()
        .name(format!("source-{}", ctx.name))
        .spawn(move || {
            let mut files: HashMap<PathBuf, Followed> = HashMap::new();
            let mut first = true;
            loop {
                for p in matches(&path) {
                    if files.contains_key(&p) {
                        continue;
                    }
                    let Ok(mut f) = File::open(&p) else { continue };
                    // Files present at start skip to their end in 'latest' mode; files that
                    // appear later are new data and are read whole.
                    let mut offset = 0;
                    let mut line_no = 0;
                    if let Some(at) = &start_at {
                        // 'latest' fixed when the source was created, or a checkpoint's
                        // position: lines keep their numbers from the file's start.
                        if let Some(pos) = at.0.get(&p.display().to_string()) {
                            line_no = lines_before(&p, *pos);
                            offset = f.seek(SeekFrom::Start(*pos)).unwrap_or(0);
                        }
                    } else if startup == StartupMode::Latest && first && initial.contains(&p) {
                        offset = f.seek(SeekFrom::End(0)).unwrap_or(0);
                    }
                    files.insert(
                        p,
                        Followed {
                            reader: BufReader::with_capacity(1 << 20, f),
                            line_no,
                            offset,
                            partial: Vec::new(),
                        },
                    );
                }
                first = false;
                let mut batch = Vec::with_capacity(BATCH_ROWS);
                let mut progressed = false;
                let mut names: Vec<&PathBuf> = files.keys().collect();
                names.sort();
                let names: Vec<PathBuf> = names.into_iter().cloned().collect();
                for name in names {
                    let Some(f) = files.get_mut(&name) else { continue };
                    let location = name.display().to_string();
                    loop {
                        let mut line = std::mem::take(&mut f.partial);
                        match f.reader.read_until(b'\n', &mut line) {
                            Ok(0) => {
                                f.partial = line;
                                break;
                            }
                            Ok(_) if !line.ends_with(b"\n") => {
                                f.partial = line;
                                break;
                            }
                            Ok(_) => {
                                progressed = true;
                                f.line_no += 1;
                                f.offset += line.len() as u64;
                                out.advance(&location, f.offset);
                                let line = match String::from_utf8(line) {
                                    Ok(line) => line,
                                    Err(e) => {
                                        let at = e.utf8_error().valid_up_to();
                                        let raw = String::from_utf8_lossy(e.as_bytes()).trim().to_string();
                                        ctx.errors.record(
                                            &ctx.name,
                                            &location,
                                            Some(f.line_no),
                                            &raw,
                                            format!("invalid UTF-8 at byte {at} of the line"),
                                        );
                                        continue;
                                    }
                                };
                                let text = line.trim();
                                if text.is_empty() {
                                    continue;
                                }
                                match rows.decode(text) {
                                    Ok(()) => {
                                        if late.admit(rows.values(), &location, Some(f.line_no), text) {
                                            batch.push(rows.finish());
                                            late.report(&location, &mut out);
                                        }
                                    }
                                    Err(e) => {
                                        ctx.errors
                                            .record(&ctx.name, &location, Some(f.line_no), text, e.into_message())
                                    }
                                }
                                if batch.len() >= BATCH_ROWS
                                    && !out.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS)))
                                {
                                    return;
                                }
                            }
                            Err(e) => {
                                ctx.errors.record(
                                    &ctx.name,
                                    &location,
                                    Some(f.line_no + 1),
                                    "",
                                    format!("read error: {e}"),
                                );
                                // What was read of the line stays, to be completed later.
                                f.partial = line;
                                break;
                            }
                        }
                    }
                }
                if !out.send(batch) {
                    return;
                }
                if !progressed {
                    std::thread::sleep(POLL);
                    if !out.alive() {
                        return;
                    }
                }
            }
        })
        .map_err(|e| {
            Error::new(SqlState::SystemError, format!("could not start the reader thread: {e}")).with_source(e)
        })?;
    Ok(())
}

/// How many lines the first `len` bytes of the file at `path` hold (0 if it cannot be
/// read): the number of the line before a reader that starts at byte `len`.
fn lines_before(path: &std::path::Path, len: u64) -> i64 {
    use std::io::Read;
    let Ok(f) = File::open(path) else { return 0 };
    let mut reader = BufReader::with_capacity(1 << 20, f.take(len));
    let mut lines = 0;
    loop {
        let n = match reader.fill_buf() {
            Ok([]) | Err(_) => return lines,
            Ok(buf) => {
                lines += buf.iter().filter(|b| **b == b'\n').count() as i64;
                buf.len()
            }
        };
        reader.consume(n);
    }
}

/// The size of every file matching `pattern` now, keyed like the reader's positions.
pub(crate) fn current_sizes(pattern: &str) -> rampart_repr::Positions {
    let mut p = rampart_repr::Positions::default();
    for f in matches(pattern) {
        if let Ok(m) = std::fs::metadata(&f) {
            p.advance(&f.display().to_string(), m.len());
        }
    }
    p
}

fn matches(pattern: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match glob::glob(pattern) {
        Ok(paths) => paths.filter_map(Result::ok).filter(|p| p.is_file()).collect(),
        Err(_) => vec![],
    };
    v.sort();
    v
}
