//! The `stdout` sink connector: the file sink's JSON lines printed to the server's standard
//! output ([`crate::file::JsonSink`] writes them); under the name `blackhole` it discards
//! them. `docs/connectors/stdout.md` shows its options table.

use crate::options::Validate;

connector_options! {
    /// `CREATE SINK ... WITH (connector = 'stdout')`.
    pub struct StdoutSinkOptions("stdout sink", connector "stdout" | "blackhole") {
        /// With `FORMAT PLAIN`: `true` acknowledges that deletions are not emitted, and the
        /// NOTICE saying so is not sent.
        #[option("force_append_only")]
        pub force_append_only: bool = default("false"),
    }
}

impl Validate for StdoutSinkOptions {}
