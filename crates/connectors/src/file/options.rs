//! The options of the file source and the file sink (`docs/connectors/file.md`,
//! `docs/connectors/file-sink.md` show these tables).

use crate::options::{StartupMode, Validate};

connector_options! {
    /// `CREATE SOURCE ... WITH (connector = 'file', ...)`.
    pub struct FileSourceOptions("file source", connector "file") {
        /// The file to read, or a glob (`/var/log/app/*.jsonl`): every matching file is read,
        /// in name order, and files that start to match later are read whole.
        #[option("path", type "file or glob")]
        pub path: String = required,
        /// Where the files that exist when the source is created are read from: `earliest`,
        /// their first line, or `latest`, their size at creation (only lines appended later
        /// are read). `earliest-offset` and `latest-offset` are accepted too.
        #[option("scan.startup.mode")]
        pub startup: StartupMode = default("earliest"),
        /// Accepted for compatibility and not checked: lines are always JSON objects.
        #[option("format")]
        pub format: Option<String> = optional,
        /// Accepted for compatibility (RisingWave's file sources) and ignored: put the glob
        /// in `path`.
        #[option("match_pattern")]
        pub match_pattern: Option<String> = optional,
    }
}

impl Validate for FileSourceOptions {}

connector_options! {
    /// `CREATE SINK ... WITH (connector = 'file', ...)`.
    pub struct FileSinkOptions("file sink", connector "file") {
        /// The file the sink appends JSON lines to; it and its directory are created if
        /// missing.
        #[option("path", type "file")]
        pub path: String = required,
        /// With `FORMAT PLAIN`: `true` acknowledges that deletions are not emitted, and the
        /// NOTICE saying so is not sent.
        #[option("force_append_only")]
        pub force_append_only: bool = default("false"),
    }
}

impl Validate for FileSinkOptions {}
