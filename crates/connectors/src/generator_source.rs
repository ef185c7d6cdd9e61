//! The `generator` source: runs the built-in [`EventGenerator`] at a steady rate, stamping
//! events with the wall clock, and decodes them like any JSON input (so the generator
//! exercises the same path as files and Kafka).

use std::time::{Duration, Instant};

use crate::generator::{EventGenerator, GeneratorKind};
use crate::json_decode::JsonDecoder;
use crate::source::{BatchSender, SourceContext, BATCH_ROWS};

/// How often the generator wakes to emit the events due.
const TICK: Duration = Duration::from_millis(10);

pub(crate) fn spawn(
    kind: GeneratorKind,
    rate: f64,
    seed: u64,
    ctx: SourceContext,
    mut out: BatchSender,
) -> Result<(), String> {
    let decoder = JsonDecoder::new(&ctx.desc);
    std::thread::Builder::new()
        .name(format!("generator-{}", ctx.name))
        .spawn(move || {
            let mut generator = EventGenerator::new(kind, seed);
            let start = Instant::now();
            let mut emitted: u64 = 0;
            loop {
                let due = (start.elapsed().as_secs_f64() * rate) as u64;
                let mut batch = Vec::with_capacity(BATCH_ROWS.min((due - emitted.min(due)) as usize));
                let now_us = chrono::Utc::now().timestamp_micros();
                while emitted < due {
                    let event = generator.next_event(now_us);
                    emitted += 1;
                    match decoder.decode(&event) {
                        Ok(row) => batch.push(row),
                        Err(e) => ctx
                            .errors
                            .record(&ctx.name, "generator", Some(emitted as i64), &event, e),
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
        .map_err(|e| format!("could not start the generator thread: {e}"))?;
    Ok(())
}
