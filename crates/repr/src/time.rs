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
