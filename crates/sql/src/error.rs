//! [`PlanError`]: a SQL error with its SQLSTATE and position, as the client will see it.

/// A failure to parse, bind or plan a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// Five-character SQLSTATE (`42601` syntax error, `42P01` undefined table, `42703`
    /// undefined column, `0A000` feature not supported, `42710` duplicate object, `22023`
    /// invalid parameter value; an error converted from [`rampart_repr::Error`] keeps its
    /// own).
    pub sqlstate: &'static str,
    /// What went wrong, naming the construct.
    pub message: String,
    /// 1-based character position in the statement text, when known.
    pub position: Option<usize>,
}

impl PlanError {
    /// A syntax error (42601).
    pub fn syntax(message: impl Into<String>) -> Self {
        PlanError {
            sqlstate: "42601",
            message: message.into(),
            position: None,
        }
    }

    /// An unsupported construct (0A000).
    pub fn unsupported(message: impl Into<String>) -> Self {
        PlanError {
            sqlstate: "0A000",
            message: message.into(),
            position: None,
        }
    }

    /// An invalid option or parameter value (22023).
    pub fn invalid(message: impl Into<String>) -> Self {
        PlanError {
            sqlstate: "22023",
            message: message.into(),
            position: None,
        }
    }

    /// A missing relation (42P01).
    pub fn undefined_table(name: &str) -> Self {
        PlanError {
            sqlstate: "42P01",
            message: format!("relation \"{name}\" does not exist"),
            position: None,
        }
    }

    /// A duplicate object (42P07).
    pub fn duplicate(name: &str) -> Self {
        PlanError {
            sqlstate: "42P07",
            message: format!("relation \"{name}\" already exists"),
            position: None,
        }
    }

    /// An error of any SQLSTATE.
    pub fn new(sqlstate: &'static str, message: impl Into<String>) -> Self {
        PlanError {
            sqlstate,
            message: message.into(),
            position: None,
        }
    }

    /// The same error pointing at a position, unless it already has one.
    pub fn at(mut self, position: Option<usize>) -> Self {
        if self.position.is_none() {
            self.position = position;
        }
        self
    }

    /// Maps a DataFusion error to a SQL error, recognising the common binder failures.
    pub fn from_datafusion(e: datafusion::error::DataFusionError) -> Self {
        let e = e.find_root().to_string();
        let (state, msg) = if e.contains("not found") && e.contains("table") {
            ("42P01", e)
        } else if e.contains("No field named") || e.contains("Schema error") {
            ("42703", e)
        } else if e.contains("not implemented") || e.contains("Unsupported") || e.contains("NotImplemented") {
            ("0A000", e)
        } else if e.contains("SQL error") || e.contains("ParserError") {
            ("42601", e)
        } else {
            ("42804", e)
        };
        PlanError {
            sqlstate: state,
            message: clean_message(&msg),
            position: None,
        }
    }
}

fn clean_message(m: &str) -> String {
    m.trim_start_matches("Error during planning: ")
        .trim_start_matches("Schema error: ")
        .trim_start_matches("This feature is not implemented: ")
        .to_string()
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for PlanError {}

/// An error from the engine, storage or a connector reaches the client with the SQLSTATE it
/// carries and its message.
impl From<rampart_repr::Error> for PlanError {
    fn from(e: rampart_repr::Error) -> Self {
        PlanError {
            sqlstate: e.sqlstate(),
            message: e.into_message(),
            position: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_repr::{Error, SqlState};

    #[test]
    fn an_error_from_another_crate_keeps_its_sqlstate_and_message() {
        for (e, state) in [
            (Error::unsupported("INCLUDE foo is not supported"), "0A000"),
            (
                Error::invalid_parameter("unknown option 'pth' for the file source"),
                "22023",
            ),
            (
                Error::io(
                    "cannot create sinks/s.log: Permission denied",
                    std::io::Error::from(std::io::ErrorKind::PermissionDenied),
                ),
                "58030",
            ),
            (
                Error::new(SqlState::WindowingError, "EMIT ON WINDOW CLOSE needs a GROUP BY"),
                "42P20",
            ),
            (Error::internal("an operator lacks an input"), "XX000"),
        ] {
            let message = e.to_string();
            let p = PlanError::from(e);
            assert_eq!(p.sqlstate, state, "{message}");
            assert_eq!(p.message, message);
            assert_eq!(p.position, None);
        }
    }
}
