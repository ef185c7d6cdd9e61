//! [`Error`]: an error that carries its SQLSTATE ([`SqlState`]) from the crate that found
//! it to the client, so the engine, storage and connectors can say what class of failure
//! they hit (an unsupported construct, an invalid option, an I/O failure, a bug) without
//! depending on the SQL layer. The server turns it into its SQL error keeping the state.

use std::fmt;
use std::sync::Arc;

/// The SQLSTATEs Rampart's errors carry, with the codes PostgreSQL gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlState {
    /// `08006` connection_failure: an external system (a Kafka broker) cannot be reached
    /// or the connection to it failed.
    ConnectionFailure,
    /// `0A000` feature_not_supported: a construct Rampart does not run.
    FeatureNotSupported,
    /// `22000` data_exception: a value that cannot be decoded, converted or evaluated.
    DataException,
    /// `22023` invalid_parameter_value: an option or parameter with a wrong value.
    InvalidParameterValue,
    /// `28000` invalid_authorization_specification: an external system refused the
    /// credentials (Kafka SASL / SSL).
    InvalidAuthorization,
    /// `42501` insufficient_privilege: an external system refused access (a Kafka ACL).
    InsufficientPrivilege,
    /// `42704` undefined_object: a named object (a Kafka topic) that does not exist.
    UndefinedObject,
    /// `42804` datatype_mismatch: an expression of the wrong type.
    DatatypeMismatch,
    /// `42P20` windowing_error: a window construct that cannot work (`EMIT ON WINDOW
    /// CLOSE` without a window that closes).
    WindowingError,
    /// `53100` disk_full.
    DiskFull,
    /// `55000` object_not_in_prerequisite_state: an object that cannot answer now (a view
    /// whose dataflow is not running, workers that did not answer in time).
    ObjectNotInPrerequisiteState,
    /// `55006` object_in_use: a resource another process holds (the data directory).
    ObjectInUse,
    /// `58000` system_error: an external system failed (a Kafka request).
    SystemError,
    /// `58030` io_error: reading or writing a file failed.
    IoError,
    /// `XX000` internal_error: a bug (a plan the engine cannot have been given).
    InternalError,
}

impl SqlState {
    /// The five-character code.
    pub const fn code(self) -> &'static str {
        match self {
            SqlState::ConnectionFailure => "08006",
            SqlState::FeatureNotSupported => "0A000",
            SqlState::DataException => "22000",
            SqlState::InvalidParameterValue => "22023",
            SqlState::InvalidAuthorization => "28000",
            SqlState::InsufficientPrivilege => "42501",
            SqlState::UndefinedObject => "42704",
            SqlState::DatatypeMismatch => "42804",
            SqlState::WindowingError => "42P20",
            SqlState::DiskFull => "53100",
            SqlState::ObjectNotInPrerequisiteState => "55000",
            SqlState::ObjectInUse => "55006",
            SqlState::SystemError => "58000",
            SqlState::IoError => "58030",
            SqlState::InternalError => "XX000",
        }
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An error with its SQLSTATE, a message naming what failed (its `Display`), and
/// optionally the error that caused it (its `source`). Cloning shares the source.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    state: SqlState,
    message: String,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of state `state`.
    pub fn new(state: SqlState, message: impl Into<String>) -> Self {
        Error {
            state,
            message: message.into(),
            source: None,
        }
    }

    /// An unsupported construct (`0A000`).
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(SqlState::FeatureNotSupported, message)
    }

    /// An invalid option or parameter value (`22023`).
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(SqlState::InvalidParameterValue, message)
    }

    /// A value that cannot be decoded, converted or evaluated (`22000`).
    pub fn data(message: impl Into<String>) -> Self {
        Self::new(SqlState::DataException, message)
    }

    /// A bug (`XX000`).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(SqlState::InternalError, message)
    }

    /// A failed file operation: `53100` when the disk is full, else `58030`. `message`
    /// names the file; `e` is kept as the source.
    pub fn io(message: impl Into<String>, e: std::io::Error) -> Self {
        let state = if is_disk_full(&e) {
            SqlState::DiskFull
        } else {
            SqlState::IoError
        };
        Self::new(state, message).with_source(e)
    }

    /// The same error with `source` as its cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The same error (state and source) with its message prefixed: `"{prefix}: {message}"`.
    pub fn context(mut self, prefix: impl fmt::Display) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// The SQLSTATE.
    pub fn state(&self) -> SqlState {
        self.state
    }

    /// The SQLSTATE's five-character code.
    pub fn sqlstate(&self) -> &'static str {
        self.state.code()
    }

    /// The message (also the error's `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message, without the state and source.
    pub fn into_message(self) -> String {
        self.message
    }
}

/// Whether an I/O error means the disk is full (SQLSTATE `53100`).
pub fn is_disk_full(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(28) || e.kind() == std::io::ErrorKind::StorageFull
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn an_error_shows_its_message_and_keeps_its_state_and_source() {
        let e = Error::io(
            "cannot open sink file /x",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert_eq!(e.sqlstate(), "58030");
        assert_eq!(e.to_string(), "cannot open sink file /x");
        assert!(e.source().is_some());
        let e = e.context("CREATE SINK s");
        assert_eq!(e.state(), SqlState::IoError);
        assert_eq!(e.message(), "CREATE SINK s: cannot open sink file /x");
        assert!(e.clone().source().is_some(), "a clone shares the source");
    }

    #[test]
    fn a_full_disk_is_53100() {
        let full = std::io::Error::from_raw_os_error(28);
        assert_eq!(Error::io("cannot write", full).state(), SqlState::DiskFull);
        assert_eq!(Error::unsupported("x").sqlstate(), "0A000");
        assert_eq!(Error::invalid_parameter("x").sqlstate(), "22023");
        assert_eq!(Error::data("x").sqlstate(), "22000");
        assert_eq!(Error::internal("x").sqlstate(), "XX000");
    }
}
