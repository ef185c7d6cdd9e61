//! Dataflow time and multiplicities: the units every update carries.

/// Processing time: milliseconds since the Unix epoch. Every update in the dataflow is
/// stamped with the processing time at which it entered.
pub type Time = u64;

/// Multiplicity change of an update.
pub type Diff = isize;

/// The wall clock as a dataflow time.
pub fn now_ms() -> Time {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How much later (ms of dataflow time) than the input that causes them the changes
/// operators derive on their own come: a retention's expiry (1 ms after the watermark step
/// that passes a row), a window closing. Whoever waits for the consequences of some input
/// waits this much past it.
pub const DERIVED_CHANGES_MS: Time = 10;
