//! The `generator` source: runs the built-in [`EventGenerator`] at a steady rate and
//! decodes its events like any JSON input (so the generator exercises the same path as
//! files and Kafka).
//!
//! Event `i` is stamped `start + i / rate` and released once the wall clock reaches that
//! time, where `start` is when the source was created. A reader started later (a second
//! view, or the same view after a restart) first catches up on the events it missed, so
//! every reader sees the same events: the generator replays like a file. A reader resuming
//! at a checkpoint's event count regenerates the events before it without sending them.

use std::time::Duration;

use rampart_repr::{Error, SqlState};

use crate::batch::{BatchSender, BATCH_ROWS};
use crate::generator::{EventGenerator, GeneratorKind};
use crate::row_builder::RowBuilder;
use crate::source::SourceContext;

/// How often the generator wakes to emit the events due.
const TICK: Duration = Duration::from_millis(10);

pub(crate) fn spawn(
    kind: GeneratorKind,
    rate: f64,
    seed: u64,
    start_ms: i64,
    skip: u64,
    ctx: SourceContext,
    mut out: BatchSender,
) -> Result<(), Error> {
    let mut rows = RowBuilder::new(&ctx.desc, ctx.projection.clone());
    let mut late = crate::late::LateFilter::for_reader(&ctx);
    std::thread::Builder::new()
        .name(format!("generator-{}", ctx.name))
        .spawn(move || {
            let mut generator = EventGenerator::new(kind, seed);
            let start_us = start_ms.saturating_mul(1000);
            // Resuming at a checkpoint: the events before it are generated (the generator's
            // state depends on them) but not decoded or sent.
            for i in 0..skip {
                generator.next_event(start_us + (i as f64 * 1e6 / rate) as i64);
            }
            let mut emitted: u64 = skip;
            loop {
                let elapsed_us = chrono::Utc::now().timestamp_micros().saturating_sub(start_us).max(0);
                let due = (elapsed_us as f64 / 1e6 * rate) as u64;
                let mut batch = Vec::with_capacity(BATCH_ROWS.min((due - emitted.min(due)) as usize));
                while emitted < due {
                    let event_us = start_us + (emitted as f64 * 1e6 / rate) as i64;
                    let event = generator.next_event(event_us);
                    emitted += 1;
                    out.advance("events", emitted);
                    match rows.decode(&event) {
                        Ok(()) => {
                            if late.admit(rows.values(), "generator", Some(emitted as i64), &event) {
                                batch.push(rows.finish());
                                late.report("generator", &mut out);
                            }
                        }
                        Err(e) => {
                            ctx.errors
                                .record(&ctx.name, "generator", Some(emitted as i64), &event, e.into_message())
                        }
                    }
                    if batch.len() >= BATCH_ROWS && !out.send(std::mem::take(&mut batch)) {
                        return;
                    }
                }
                if !out.send(batch) || !out.alive() {
                    return;
                }
                std::thread::sleep(TICK);
            }
        })
        .map_err(|e| {
            Error::new(
                SqlState::SystemError,
                format!("could not start the generator thread: {e}"),
            )
            .with_source(e)
        })?;
    Ok(())
}
