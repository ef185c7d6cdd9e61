//! The boundary between the PostgreSQL wire front end and the engine: a [`SqlBackend`]
//! executes SQL text for a client [`Session`] and returns Arrow results, command tags,
//! notices or errors.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

/// What one successfully executed statement returns.
#[derive(Debug)]
pub enum QueryOutput {
    /// A result set (SELECT, SHOW, DESCRIBE, EXPLAIN).
    Rows {
        /// Column names and types.
        schema: SchemaRef,
        /// The rows, in order.
        batches: Vec<RecordBatch>,
    },
    /// A command without rows: `tag` is the PostgreSQL command tag (`CREATE_MATERIALIZED_VIEW`,
    /// `INSERT`, ...), `rows` the affected row count where the tag carries one.
    Command {
        /// Command tag, e.g. `INSERT 0` is written as tag `INSERT` and rows `Some(n)`.
        tag: String,
        /// Affected rows, when the command reports them.
        rows: Option<usize>,
    },
}

/// A statement's failure, as a PostgreSQL ErrorResponse carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// Five-character SQLSTATE, e.g. `42601` (syntax error), `42P01` (undefined table),
    /// `0A000` (feature not supported), `XX000` (internal).
    pub sqlstate: String,
    /// Human-readable message.
    pub message: String,
    /// 1-based character position in the statement text the error refers to, if known.
    pub position: Option<usize>,
    /// Optional hint telling the user what to do.
    pub hint: Option<String>,
}

impl SqlError {
    /// An error with a SQLSTATE and a message.
    pub fn new(sqlstate: &str, message: impl Into<String>) -> Self {
        SqlError {
            sqlstate: sqlstate.to_string(),
            message: message.into(),
            position: None,
            hint: None,
        }
    }

    /// The same error pointing at a 1-based character position.
    pub fn at(mut self, position: Option<usize>) -> Self {
        self.position = position;
        self
    }

    /// The same error with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.sqlstate)?;
        if let Some(p) = self.position {
            write!(f, " at position {p}")?;
        }
        Ok(())
    }
}

/// The outcome of one statement: its result and the NOTICE messages it raised.
#[derive(Debug)]
pub struct StatementOutcome {
    /// The result or the error.
    pub result: Result<QueryOutput, SqlError>,
    /// NOTICE messages to send before the result.
    pub notices: Vec<String>,
}

/// Where a session stands with respect to a transaction block, as PostgreSQL reports it
/// in ReadyForQuery (`I`, `T`, `E`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransactionStatus {
    /// Not in a transaction block.
    #[default]
    Idle,
    /// Inside a block opened by `BEGIN`.
    InBlock,
    /// Inside a block in which a statement failed: only `ROLLBACK` or `COMMIT` run.
    Failed,
}

impl TransactionStatus {
    /// The status after a statement failed: a block becomes failed, no block stays none.
    pub fn after_error(self) -> Self {
        match self {
            TransactionStatus::Idle => TransactionStatus::Idle,
            TransactionStatus::InBlock | TransactionStatus::Failed => TransactionStatus::Failed,
        }
    }
}

/// One client connection's state, kept by the front end for the connection's lifetime and
/// handed to the backend with every statement.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// The user name the client connected as.
    pub user: String,
    /// The database the client asked for.
    pub database: String,
    /// The client's address (`None` for sessions inside the process).
    pub peer: Option<std::net::SocketAddr>,
    /// The transaction block the session is in; the backend keeps it up to date.
    pub transaction: TransactionStatus,
    /// Command tags of the changes applied since `BEGIN` (each statement applies when it
    /// runs, so these are what a `ROLLBACK` could not undo).
    pub applied_in_block: Vec<String>,
}

impl Session {
    /// A session for `user` on `database`, connected from `peer`.
    pub fn new(user: &str, database: &str, peer: Option<std::net::SocketAddr>) -> Self {
        Session {
            user: user.to_string(),
            database: database.to_string(),
            peer,
            ..Session::default()
        }
    }

    /// A session for statements the process runs itself (`rampart run`, the demo, tests).
    pub fn internal() -> Self {
        Session::new("root", "dev", None)
    }
}

/// Executes SQL for a client session. Implemented by the engine's coordinator; used by the
/// pgwire front end.
#[async_trait::async_trait]
pub trait SqlBackend: Send + Sync + 'static {
    /// Executes text that may hold several `;`-separated statements for `session`. Returns
    /// one outcome per statement executed; execution stops after the first error (that
    /// outcome is last). The backend updates `session.transaction`.
    async fn execute(&self, session: &mut Session, sql: &str) -> Vec<StatementOutcome>;

    /// The result columns one statement would return, without running it: `Ok(None)` for a
    /// statement that returns no rows. Used by the extended query protocol's Describe.
    async fn describe(&self, session: &Session, sql: &str) -> Result<Option<SchemaRef>, SqlError>;
}
