//! The pgwire handler implementations: startup (no authentication), simple query,
//! extended query (Parse/Bind/Describe/Execute) and cancel, all over a [`SqlBackend`].

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use futures::future::{select, Either};
use futures::sink::{Sink, SinkExt};
use futures::stream;
use parking_lot::Mutex;
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata, DefaultServerParameterProvider,
    ServerParameterProvider, StartupHandler,
};
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{
    send_execution_response, send_query_response, send_ready_for_query, ExtendedQueryHandler, SimpleQueryHandler,
};
use pgwire::api::results::{
    DescribePortalResponse, DescribeStatementResponse, FieldFormat, FieldInfo, QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionHandle, ConnectionManager, PgWireConnectionState, PgWireServerHandlers,
    PidSecretKeyGenerator, RandomPidSecretKeyGenerator, Type, DEFAULT_NAME, METADATA_DATABASE, METADATA_USER,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult, SEVERITY_ERROR, SEVERITY_NOTICE};
use pgwire::messages::data::{NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{Describe, TARGET_TYPE_BYTE_STATEMENT};
use pgwire::messages::response::{EmptyQueryResponse, NoticeResponse, TransactionStatus as PgTransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::encode::{encode_rows, field_info, to_pgwire, type_size};
use super::params::{literal, stand_in, PositionMap, SqlTemplate};
use crate::backend::{QueryOutput, Session, SqlBackend, SqlError, StatementOutcome, TransactionStatus};

/// The `server_version` reported to clients.
pub const SERVER_VERSION: &str = "15.0 (Rampart)";

/// A statement prepared by Parse: its text, placeholders, and the result column types
/// last announced to the client by a Describe (executions convert to those).
#[derive(Debug, Clone)]
pub struct PreparedSql {
    /// The SQL text as the client sent it.
    pub sql: String,
    template: Arc<SqlTemplate>,
    described: Arc<Mutex<Option<Vec<Type>>>>,
}

impl PreparedSql {
    /// Prepares `sql`; fails on a parameter number above [`crate::params::MAX_PARAMETERS`].
    pub fn new(sql: &str) -> Result<Self, SqlError> {
        let template = SqlTemplate::parse(sql);
        template.check_parameter_numbers()?;
        Ok(PreparedSql {
            sql: sql.to_string(),
            template: Arc::new(template),
            described: Arc::new(Mutex::new(None)),
        })
    }
}

/// Parses statements into [`PreparedSql`] (the engine parses at execution).
#[derive(Debug, Default)]
pub struct Parser;

#[async_trait]
impl QueryParser for Parser {
    type Statement = PreparedSql;

    async fn parse_sql<C>(&self, _client: &C, sql: &str, _types: &[Option<Type>]) -> PgWireResult<Option<PreparedSql>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        PreparedSql::new(sql).map(Some).map_err(|e| user_error(&e, None))
    }

    fn get_parameter_types(&self, _stmt: &PreparedSql) -> PgWireResult<Vec<Type>> {
        Ok(Vec::new())
    }

    fn get_result_schema(&self, _stmt: &PreparedSql, _column_format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        Ok(Vec::new())
    }
}

/// Serves the simple and extended query protocols from a [`SqlBackend`].
pub struct QueryHandler {
    backend: Arc<dyn SqlBackend>,
    parser: Arc<Parser>,
}

impl QueryHandler {
    /// A handler over `backend`.
    pub fn new(backend: Arc<dyn SqlBackend>) -> Self {
        QueryHandler {
            backend,
            parser: Arc::new(Parser),
        }
    }
}

/// A connection's [`Session`], kept in its session extensions from startup on.
type SessionCell = tokio::sync::Mutex<Session>;

/// The session of `client`, made from its startup parameters (user, database) at its
/// startup.
fn session_of<C: ClientInfo>(client: &C) -> Arc<SessionCell> {
    client.session_extensions().get_or_insert_with(|| {
        let metadata = client.metadata();
        SessionCell::new(Session::new(
            metadata.get(METADATA_USER).map_or("", String::as_str),
            metadata.get(METADATA_DATABASE).map_or("", String::as_str),
            Some(client.socket_addr()),
        ))
    })
}

/// The ReadyForQuery status of a session's transaction status.
fn wire_status(status: TransactionStatus) -> PgTransactionStatus {
    match status {
        TransactionStatus::Idle => PgTransactionStatus::Idle,
        TransactionStatus::InBlock => PgTransactionStatus::Transaction,
        TransactionStatus::Failed => PgTransactionStatus::Error,
    }
}

/// The ErrorResponse fields of `e`, its position mapped through `map` when given.
pub fn error_info(e: &SqlError, map: Option<&PositionMap>) -> ErrorInfo {
    let mut info = ErrorInfo::new(SEVERITY_ERROR.to_string(), e.sqlstate.clone(), e.message.clone());
    info.severity_nonlocalized = Some(SEVERITY_ERROR.to_string());
    info.hint = e.hint.clone();
    info.position = e.position.map(|p| map.map_or(p, |m| m.to_original(p)).to_string());
    info
}

fn user_error(e: &SqlError, map: Option<&PositionMap>) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e, map)))
}

/// The CommandComplete tag of a command: `INSERT 0 n`, `DELETE n`, `CREATE TABLE`.
/// Underscores in the backend's tag become spaces, as PostgreSQL's tags are spelled.
pub fn command_tag(tag: &str, rows: Option<usize>) -> Tag {
    let name = tag.replace('_', " ");
    let t = Tag::new(&name);
    match rows {
        Some(n) if name == "INSERT" => t.with_oid(0).with_rows(n),
        Some(n) => t.with_rows(n),
        None => t,
    }
}

/// [`command_tag`] as the text the client reads (`INSERT 0 3`).
pub fn command_tag_text(tag: &str, rows: Option<usize>) -> String {
    pgwire::messages::response::CommandComplete::from(command_tag(tag, rows)).tag
}

async fn send_notices<C>(client: &mut C, notices: &[String]) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for notice in notices {
        let mut info = ErrorInfo::new(SEVERITY_NOTICE.to_string(), "00000".to_string(), notice.clone());
        info.severity_nonlocalized = Some(SEVERITY_NOTICE.to_string());
        client
            .feed(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(info)))
            .await?;
    }
    Ok(())
}

/// The format a client asked for column (or parameter) `idx`; text when unspecified.
fn format_at(format: &Format, idx: usize) -> FieldFormat {
    match format {
        Format::UnifiedText => FieldFormat::Text,
        Format::UnifiedBinary => FieldFormat::Binary,
        Format::Individual(codes) => codes.get(idx).map_or(FieldFormat::Text, |c| FieldFormat::from(*c)),
    }
}

fn fields_of(schema: &SchemaRef, format: &Format) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| field_info(f.name(), f.data_type(), format_at(format, i)))
        .collect()
}

/// A result set as a pgwire response, in `format`, its columns announced (and converted
/// to) `target` types if given, else the types of `schema`. The batches are converted to
/// the announced types, so the DataRows always match the RowDescription.
fn rows_response(
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    format: &Format,
    target: Option<&[Type]>,
) -> PgWireResult<QueryResponse> {
    let mut fields = fields_of(schema, format);
    if let Some(target) = target.filter(|t| t.len() == fields.len()) {
        fields = fields
            .into_iter()
            .zip(target)
            .map(|(f, t)| {
                let size = type_size(t);
                FieldInfo::new(f.name().to_string(), None, None, t.clone(), f.format()).with_type_size(size)
            })
            .collect();
    }
    let formats: Vec<FieldFormat> = fields.iter().map(|f| f.format()).collect();
    let types: Vec<Type> = fields.iter().map(|f| f.datatype().clone()).collect();
    let rows = encode_rows(batches, &formats, Some(&types)).map_err(to_pgwire)?;
    Ok(QueryResponse::new(Arc::new(fields), stream::iter(rows)))
}

/// The parameter types of a statement: those the client gave, TEXT for the others.
fn parameter_types(stmt: &StoredStatement<PreparedSql>) -> Vec<Type> {
    let n = stmt.parameter_types.len().max(stmt.statement.template.param_count());
    (0..n)
        .map(|i| stmt.parameter_types.get(i).cloned().flatten().unwrap_or(Type::TEXT))
        .collect()
}

/// The SQL of a portal with its bound parameters substituted.
fn bound_sql(portal: &Portal<PreparedSql>) -> Result<(String, PositionMap), SqlError> {
    let stmt = &portal.statement;
    let types = parameter_types(stmt);
    if portal.parameters.len() != types.len() {
        return Err(SqlError::new(
            "08P01",
            format!(
                "bind message supplies {} parameters, but prepared statement \"{}\" requires {}",
                portal.parameters.len(),
                stmt.id,
                types.len()
            ),
        ));
    }
    let literals = portal
        .parameters
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let binary = format_at(&portal.parameter_format, i) == FieldFormat::Binary;
            literal(v.as_deref(), types.get(i), binary)
        })
        .collect::<Result<Vec<_>, _>>()?;
    stmt.statement.template.render(&literals)
}

impl QueryHandler {
    /// Result columns of a statement whose parameters are not bound yet: first with
    /// typed stand-in values, then with the placeholders as written.
    async fn describe_unbound(
        &self,
        session: &Session,
        stmt: &StoredStatement<PreparedSql>,
        types: &[Type],
    ) -> PgWireResult<Option<SchemaRef>> {
        let prepared = &stmt.statement;
        if prepared.template.param_count() == 0 {
            return self
                .backend
                .describe(session, &prepared.sql)
                .await
                .map_err(|e| user_error(&e, None));
        }
        let stand_ins: Vec<String> = types.iter().map(stand_in).collect();
        let (sql, map) = prepared.template.render(&stand_ins).map_err(|e| user_error(&e, None))?;
        match self.backend.describe(session, &sql).await {
            Ok(schema) => Ok(schema),
            Err(first) => match self.backend.describe(session, &prepared.sql).await {
                Ok(schema) => Ok(schema),
                Err(_) => Err(user_error(&first, Some(&map))),
            },
        }
    }
}

impl QueryHandler {
    /// Runs simple-protocol text and sends each statement's notices and result, stopping
    /// at the first error.
    async fn run_simple<C>(&self, client: &mut C, session: &mut Session, query: &str) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let outcomes = self.backend.execute(session, query).await;
        if outcomes.is_empty() {
            client
                .feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new()))
                .await?;
            return Ok(());
        }
        // Sent as they come, so each statement's notices precede its result.
        for StatementOutcome { result, notices } in outcomes {
            send_notices(client, &notices).await?;
            match result {
                Ok(QueryOutput::Rows { schema, batches }) => {
                    let response = rows_response(&schema, batches, &Format::UnifiedText, None)?;
                    send_query_response(client, response, true).await?;
                }
                Ok(QueryOutput::Command { tag, rows }) => {
                    send_execution_response(client, command_tag(&tag, rows)).await?;
                }
                Err(e) => {
                    let info = error_info(&e, None);
                    client.feed(PgWireBackendMessage::ErrorResponse(info.into())).await?;
                    break;
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    /// Like pgwire's default, except that ReadyForQuery reports the transaction status the
    /// backend left in the session (a failed `ROLLBACK` still ends the block).
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let cell = session_of(client);
        let mut session = cell.lock().await;
        let cancel = match client.session_extensions().get::<Arc<ConnectionHandle>>() {
            Some(handle) => Some(handle.start_query().await),
            None => None,
        };
        let run = self.run_simple(client, &mut session, &query.query);
        let result = match cancel {
            Some(cancel) => match select(Box::pin(run), cancel).await {
                Either::Left((result, _)) => result,
                Either::Right(_) => Err(PgWireError::QueryCanceled),
            },
            None => run.await,
        };
        if result.is_err() {
            session.transaction = session.transaction.after_error();
        }
        client.set_transaction_status(wire_status(session.transaction));
        result?;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        send_ready_for_query(client, wire_status(session.transaction)).await
    }

    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let cell = session_of(client);
        let mut session = cell.lock().await;
        self.run_simple(client, &mut session, query).await?;
        Ok(Vec::new())
    }
}

#[async_trait]
impl ExtendedQueryHandler for QueryHandler {
    type Statement = PreparedSql;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    /// Like pgwire's default, except that a statement returning no rows answers NoData
    /// (pgwire would send an empty RowDescription when it has parameters).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        if message.target_type != TARGET_TYPE_BYTE_STATEMENT {
            return self._on_describe(client, message).await;
        }
        let stmt = match client.portal_store().get_statement(name) {
            Some(Entry::Value(stmt)) => stmt,
            Some(Entry::Empty) => return self._on_describe(client, message).await,
            None => return Err(PgWireError::StatementNotFound(name.to_string())),
        };
        let response = self.do_describe_statement(client, &stmt).await?;
        let oids = response.parameters.iter().map(|t| t.oid()).collect();
        client
            .send(PgWireBackendMessage::ParameterDescription(ParameterDescription::new(
                oids,
            )))
            .await?;
        if response.fields.is_empty() {
            client.send(PgWireBackendMessage::NoData(NoData::new())).await?;
        } else {
            let fields = response.fields.iter().map(Into::into).collect();
            client
                .send(PgWireBackendMessage::RowDescription(RowDescription::new(fields)))
                .await?;
        }
        Ok(())
    }

    async fn do_describe_statement<C>(
        &self,
        client: &mut C,
        target: &StoredStatement<PreparedSql>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let types = parameter_types(target);
        let cell = session_of(client);
        let session = cell.lock().await;
        let schema = self.describe_unbound(&session, target, &types).await?;
        let fields = schema.map(|s| fields_of(&s, &Format::UnifiedText)).unwrap_or_default();
        *target.statement.described.lock() = Some(fields.iter().map(|f| f.datatype().clone()).collect());
        Ok(DescribeStatementResponse::new(types, fields))
    }

    async fn do_describe_portal<C>(
        &self,
        client: &mut C,
        portal: &Portal<PreparedSql>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (sql, map) = bound_sql(portal).map_err(|e| user_error(&e, None))?;
        let cell = session_of(client);
        let session = cell.lock().await;
        let schema = self
            .backend
            .describe(&session, &sql)
            .await
            .map_err(|e| user_error(&e, Some(&map)))?;
        let fields = schema
            .map(|s| fields_of(&s, &portal.result_column_format))
            .unwrap_or_default();
        *portal.statement.statement.described.lock() = Some(fields.iter().map(|f| f.datatype().clone()).collect());
        Ok(DescribePortalResponse::new(fields))
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<PreparedSql>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (sql, map) = bound_sql(portal).map_err(|e| user_error(&e, None))?;
        let cell = session_of(client);
        let mut session = cell.lock().await;
        let before = session.transaction;
        let outcomes = self.backend.execute(&mut session, &sql).await;
        let mut last = None;
        for StatementOutcome { result, notices } in outcomes {
            send_notices(client, &notices).await?;
            match result {
                Ok(output) => last = Some(output),
                Err(e) => {
                    // pgwire reports this status's error state: Idle stays Idle (a failed
                    // ROLLBACK ends the block), a block becomes failed.
                    client.set_transaction_status(match session.transaction {
                        TransactionStatus::Idle => PgTransactionStatus::Idle,
                        _ => PgTransactionStatus::Transaction,
                    });
                    return Err(user_error(&e, Some(&map)));
                }
            }
        }
        match last {
            None => Ok(Response::EmptyQuery),
            Some(QueryOutput::Command { tag, rows }) => {
                let tag = command_tag(&tag, rows);
                Ok(match (before, session.transaction) {
                    (TransactionStatus::Idle, TransactionStatus::InBlock) => Response::TransactionStart(tag),
                    (TransactionStatus::InBlock | TransactionStatus::Failed, TransactionStatus::Idle) => {
                        Response::TransactionEnd(tag)
                    }
                    _ => Response::Execution(tag),
                })
            }
            Some(QueryOutput::Rows { schema, batches }) => {
                let target = portal.statement.statement.described.lock().clone();
                let response = rows_response(&schema, batches, &portal.result_column_format, target.as_deref())?;
                Ok(Response::Query(response))
            }
        }
    }
}

/// Startup without authentication: any user and database are accepted.
pub struct Startup {
    parameters: DefaultServerParameterProvider,
    pids: RandomPidSecretKeyGenerator,
    connections: Arc<ConnectionManager>,
}

impl Startup {
    /// A startup handler registering connections (for cancel requests) in `connections`.
    pub fn new(connections: Arc<ConnectionManager>) -> Self {
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = SERVER_VERSION.to_string();
        parameters.time_zone = "UTC".to_string();
        parameters.date_style = "ISO, MDY".to_string();
        parameters.interval_style = "postgres".to_string();
        parameters.client_encoding = Some("UTF8".to_string());
        parameters.server_encoding = "UTF8".to_string();
        parameters.integer_datetimes = true;
        Startup {
            parameters,
            pids: RandomPidSecretKeyGenerator::default(),
            connections,
        }
    }

    /// The ParameterStatus values sent after authentication.
    pub fn server_parameters<C: ClientInfo>(&self, client: &C) -> HashMap<String, String> {
        self.parameters.server_parameters(client).unwrap_or_default()
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(ref startup) = message {
            protocol_negotiation(client, startup).await?;
            save_startup_parameters_to_metadata(client, startup);
            let (pid, secret) = self.pids.generate(client);
            client.set_pid_and_secret_key(pid, secret.clone());
            let (handle, guard) = self.connections.register(pid, secret);
            client.session_extensions().insert(handle);
            client.session_extensions().insert(guard);
            session_of(client);
            finish_authentication(client, &self.parameters).await?;
        }
        Ok(())
    }
}

/// All handlers of one server, shared by its connections.
pub struct Handlers {
    query: Arc<QueryHandler>,
    startup: Arc<Startup>,
    cancel: Arc<DefaultCancelHandler>,
}

impl Handlers {
    /// Handlers serving `backend`.
    pub fn new(backend: Arc<dyn SqlBackend>) -> Self {
        let connections = Arc::new(ConnectionManager::new());
        Handlers {
            query: Arc::new(QueryHandler::new(backend)),
            startup: Arc::new(Startup::new(connections.clone())),
            cancel: Arc::new(DefaultCancelHandler::new(connections)),
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.query.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.query.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(command_tag_text("INSERT", Some(3)), "INSERT 0 3");
        assert_eq!(command_tag_text("DELETE", Some(3)), "DELETE 3");
        assert_eq!(
            command_tag_text("CREATE_MATERIALIZED_VIEW", None),
            "CREATE MATERIALIZED VIEW"
        );
    }

    #[test]
    fn errors_carry_position_and_hint() {
        let e = SqlError::new("42601", "syntax error")
            .at(Some(8))
            .with_hint("try again");
        let info = error_info(&e, None);
        assert_eq!(info.code, "42601");
        assert_eq!(info.position.as_deref(), Some("8"));
        assert_eq!(info.hint.as_deref(), Some("try again"));
    }

    #[tokio::test]
    async fn rows_match_the_announced_types() {
        use arrow::array::Int32Array;
        use arrow::datatypes::{DataType, Field, Schema};
        use futures::StreamExt;
        // The schema says Int64 while the batch holds Int32: rows follow the schema.
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch_schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, false)]));
        let batch = RecordBatch::try_new(batch_schema, vec![Arc::new(Int32Array::from(vec![7]))]).expect("batch");
        let mut response = rows_response(&schema, vec![batch], &Format::UnifiedBinary, None).expect("response");
        assert_eq!(response.row_schema()[0].datatype(), &Type::INT8);
        let row = response.data_rows().next().await.expect("a row").expect("encodes");
        assert_eq!(&row.data[..], &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
    }

    #[test]
    fn formats_default_to_text() {
        let f = Format::Individual(vec![1]);
        assert_eq!(format_at(&f, 0), FieldFormat::Binary);
        assert_eq!(format_at(&f, 5), FieldFormat::Text);
    }
}
