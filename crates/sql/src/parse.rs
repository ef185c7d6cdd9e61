//! Splits SQL text into statements and parses each: RisingWave's streaming DDL by hand,
//! everything else with sqlparser's PostgreSQL dialect.

use datafusion::sql::sqlparser::ast::{ColumnDef, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Location, Token};
use rampart_repr::{ColumnType, RelationDesc};

use crate::ast::{object_name, ObjectKind, RampartStatement, ShowKind, SinkFrom, WatermarkSpec};
use crate::error::PlanError;
use crate::options::{parse_format, parse_with_options};

/// One parsed statement with its text and where it starts in the submitted string.
#[derive(Debug, Clone)]
pub struct ParsedStatement {
    /// The statement.
    pub stmt: RampartStatement,
    /// The statement's own text (without the trailing `;`).
    pub text: String,
    /// 0-based character offset of the statement in the submitted string.
    pub offset: usize,
    /// Whether the statement ends with `EMIT ON WINDOW CLOSE` (blanked before parsing, see
    /// `crate::emit`).
    pub emit_on_window_close: bool,
}

/// Parses every statement in `sql`. An error carries the 1-based character position in
/// `sql` where parsing failed.
pub fn parse_statements(sql: &str) -> Result<Vec<ParsedStatement>, PlanError> {
    let rewritten = crate::flink::rewrite_flink_syntax(sql);
    let sql = rewritten.as_str();
    // Parsed without `EMIT ON WINDOW CLOSE` (blanked to the same length, so positions
    // match); each statement's text keeps it.
    let emit_clauses = crate::emit::clauses(sql);
    let blanked = crate::emit::blank_emit_clauses(sql, &emit_clauses);
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(&blanked)
        .map_err(|e| parser_error(sql, e))?;
    let mut out = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        let start = parser.peek_token();
        if start.token == Token::EOF {
            break;
        }
        let start_off = char_offset(sql, start.span.start);
        let stmt = parse_one(&mut parser).map_err(|e| match e {
            Failure::Parser(e) => parser_error(sql, e),
            Failure::Plan(e) => e.at(Some(char_offset(sql, parser.peek_token().span.start) + 1)),
            Failure::Reserved(word, at) => {
                PlanError::syntax(format!("syntax error at or near \"{word}\"")).at(Some(char_offset(sql, at) + 1))
            }
        })?;
        let end = parser.peek_token();
        if end.token != Token::SemiColon && end.token != Token::EOF {
            return Err(PlanError::syntax(format!("syntax error at or near \"{}\"", end.token))
                .at(Some(char_offset(sql, end.span.start) + 1)));
        }
        let end_off = if end.token == Token::EOF {
            sql.chars().count()
        } else {
            char_offset(sql, end.span.start)
        };
        let text: String = sql
            .chars()
            .skip(start_off)
            .take(end_off.saturating_sub(start_off))
            .collect();
        out.push(ParsedStatement {
            stmt,
            text: text.trim().to_string(),
            offset: start_off,
            emit_on_window_close: emit_clauses.iter().any(|(s, _)| (start_off..end_off).contains(s)),
        });
    }
    Ok(out)
}

enum Failure {
    Parser(ParserError),
    Plan(PlanError),
    /// A reserved keyword used as a relation name, and where it is.
    Reserved(String, Location),
}

impl From<ParserError> for Failure {
    fn from(e: ParserError) -> Self {
        Failure::Parser(e)
    }
}

impl From<PlanError> for Failure {
    fn from(e: PlanError) -> Self {
        Failure::Plan(e)
    }
}

fn is_word(parser: &Parser, n: usize, word: &str) -> bool {
    matches!(&parser.peek_nth_token(n).token, Token::Word(w) if w.value.eq_ignore_ascii_case(word))
}

fn parse_one(parser: &mut Parser) -> Result<RampartStatement, Failure> {
    if is_word(parser, 0, "create") {
        let mut n = 1;
        let or_replace = is_word(parser, 1, "or") && is_word(parser, 2, "replace");
        if or_replace {
            n = 3;
        }
        if is_word(parser, n, "source") || is_word(parser, n, "sink") {
            if or_replace {
                return Err(
                    PlanError::unsupported("CREATE OR REPLACE SOURCE/SINK is not supported; DROP and CREATE").into(),
                );
            }
            parser.next_token();
            return if is_word(parser, 0, "source") {
                parser.next_token();
                parse_create_source(parser)
            } else {
                parser.next_token();
                parse_create_sink(parser)
            };
        }
    }
    if is_word(parser, 0, "create") && is_word(parser, 1, "table") && is_connector_table(parser) {
        parser.next_token();
        parser.next_token();
        return parse_create_source(parser);
    }
    if is_word(parser, 0, "drop") && (is_word(parser, 1, "source") || is_word(parser, 1, "sink")) {
        parser.next_token();
        let kind = if is_word(parser, 0, "source") {
            ObjectKind::Source
        } else {
            ObjectKind::Sink
        };
        parser.next_token();
        return parse_drop_rest(parser, kind);
    }
    if is_word(parser, 0, "show") {
        let kind = if is_word(parser, 1, "sources") {
            Some((ShowKind::Sources, 1))
        } else if is_word(parser, 1, "sinks") {
            Some((ShowKind::Sinks, 1))
        } else if is_word(parser, 1, "materialized") && is_word(parser, 2, "views") {
            Some((ShowKind::MaterializedViews, 2))
        } else if is_word(parser, 1, "views") {
            Some((ShowKind::Views, 1))
        } else if is_word(parser, 1, "tables") {
            Some((ShowKind::Tables, 1))
        } else {
            None
        };
        if let Some((kind, words)) = kind {
            for _ in 0..=words {
                parser.next_token();
            }
            return Ok(RampartStatement::Show(kind));
        }
    }
    let stmt = parser.parse_statement()?;
    reject_reserved_relation_names(&stmt)?;
    Ok(match stmt {
        Statement::Drop {
            object_type,
            if_exists,
            names,
            cascade,
            ..
        } => {
            use datafusion::sql::sqlparser::ast::ObjectType;
            let kind = match object_type {
                ObjectType::Table => ObjectKind::Table,
                ObjectType::View => ObjectKind::View,
                ObjectType::MaterializedView => ObjectKind::MaterializedView,
                other => return Err(PlanError::unsupported(format!("DROP {other} is not supported")).into()),
            };
            RampartStatement::Drop {
                kind,
                names: names.iter().map(object_name).collect(),
                if_exists,
                cascade,
            }
        }
        other => RampartStatement::Standard(Box::new(other)),
    })
}

/// Keywords PostgreSQL reserves: as a bare (unquoted) relation name they are a syntax
/// error there, though sqlparser accepts some of them.
const RESERVED: &[&str] = &[
    "all",
    "and",
    "any",
    "as",
    "asc",
    "case",
    "create",
    "desc",
    "distinct",
    "else",
    "end",
    "except",
    "from",
    "group",
    "having",
    "in",
    "intersect",
    "into",
    "limit",
    "not",
    "offset",
    "on",
    "or",
    "order",
    "select",
    "table",
    "then",
    "union",
    "using",
    "when",
    "where",
    "window",
    "with",
];

fn reject_reserved_relation_names(stmt: &Statement) -> Result<(), Failure> {
    let mut bad: Option<(String, Location)> = None;
    let _ = datafusion::sql::sqlparser::ast::visit_relations(stmt, |name| {
        for part in &name.0 {
            if let Some(ident) = part.as_ident() {
                if ident.quote_style.is_none() && RESERVED.contains(&ident.value.to_lowercase().as_str()) {
                    bad = Some((ident.value.clone(), ident.span.start));
                    return std::ops::ControlFlow::Break(());
                }
            }
        }
        std::ops::ControlFlow::Continue(())
    });
    match bad {
        Some((word, at)) => Err(Failure::Reserved(word, at)),
        None => Ok(()),
    }
}

fn parse_if_not_exists(parser: &mut Parser) -> bool {
    parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS])
}

fn parse_create_source(parser: &mut Parser) -> Result<RampartStatement, Failure> {
    let if_not_exists = parse_if_not_exists(parser);
    let name = object_name(&parser.parse_object_name(false)?);
    let (columns, watermark) = parse_columns_and_watermark(parser)?;
    let columns = columns_to_desc(&columns)?;
    let mut includes = Vec::new();
    while is_word(parser, 0, "include") {
        parser.next_token();
        let what = match parser.next_token().token {
            Token::Word(w) => w.value.to_lowercase(),
            other => {
                return Err(PlanError::syntax(format!(
                    "expected key, partition, offset or timestamp after INCLUDE, found {other}"
                ))
                .into())
            }
        };
        let alias = if parser.parse_keyword(Keyword::AS) {
            Some(parser.parse_identifier()?.value)
        } else {
            None
        };
        includes.push((what, alias));
    }
    if !parser.parse_keyword(Keyword::WITH) {
        return Err(PlanError::syntax(format!("CREATE SOURCE {name} needs WITH (connector = '...', ...)")).into());
    }
    let options = parse_with_options(parser)?;
    let format = parse_format(parser)?;
    Ok(RampartStatement::CreateSource {
        name,
        if_not_exists,
        columns,
        options,
        format,
        watermark,
        includes,
    })
}

fn parse_create_sink(parser: &mut Parser) -> Result<RampartStatement, Failure> {
    let if_not_exists = parse_if_not_exists(parser);
    let name = object_name(&parser.parse_object_name(false)?);
    let from = if parser.parse_keyword(Keyword::FROM) {
        if parser.peek_token().token == Token::LParen {
            parser.next_token();
            let q = parser.parse_query()?;
            parser.expect_token(&Token::RParen)?;
            SinkFrom::Query(q)
        } else {
            SinkFrom::Relation(parser.parse_object_name(false)?)
        }
    } else if parser.parse_keyword(Keyword::AS) {
        // `AS SELECT ... FROM t WITH (...)`: sqlparser would read the sink's WITH as table
        // hints of `t`, so the query is parsed from the tokens before the last top-level
        // `WITH (`.
        SinkFrom::Query(parse_query_before_with(parser)?)
    } else {
        return Err(PlanError::syntax(format!("CREATE SINK {name} needs FROM relation or AS query")).into());
    };
    if !parser.parse_keyword(Keyword::WITH) {
        return Err(PlanError::syntax(format!("CREATE SINK {name} needs WITH (connector = '...', ...)")).into());
    }
    let options = parse_with_options(parser)?;
    let format = parse_format(parser)?;
    Ok(RampartStatement::CreateSink {
        name,
        if_not_exists,
        from,
        options,
        format,
    })
}

/// Whether a `CREATE TABLE` has a `WITH (...)` after its column list: a table fed by a
/// connector, as Flink declares its Kafka inputs; Rampart makes it a source.
fn is_connector_table(parser: &Parser) -> bool {
    let mut n = 2;
    loop {
        match &parser.peek_nth_token(n).token {
            Token::LParen => break,
            Token::EOF | Token::SemiColon => return false,
            _ => n += 1,
        }
    }
    let mut depth = 0;
    loop {
        match &parser.peek_nth_token(n).token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return matches!(&parser.peek_nth_token(n + 1).token, Token::Word(w) if w.keyword == Keyword::WITH);
                }
            }
            Token::EOF | Token::SemiColon => return false,
            _ => {}
        }
        n += 1;
    }
}

/// Parses `( column defs [, WATERMARK FOR col AS expr] [, PRIMARY KEY (...) [NOT ENFORCED]] )`.
/// Returns the columns and the watermark.
fn parse_columns_and_watermark(parser: &mut Parser) -> Result<(Vec<ColumnDef>, Option<WatermarkSpec>), Failure> {
    parser.expect_token(&Token::LParen)?;
    let mut columns = Vec::new();
    let mut watermark = None;
    loop {
        if parser.consume_token(&Token::RParen) {
            break;
        }
        if is_word(parser, 0, "watermark") {
            parser.next_token();
            if !parser.parse_keyword(Keyword::FOR) {
                return Err(PlanError::syntax("expected FOR after WATERMARK (WATERMARK FOR col AS expr)").into());
            }
            let col = parser.parse_identifier()?;
            if !parser.parse_keyword(Keyword::AS) {
                return Err(PlanError::syntax("expected AS in WATERMARK FOR col AS expr").into());
            }
            let expr = parser.parse_expr()?;
            watermark = Some(watermark_spec(&col.value, &expr)?);
        } else if parser.parse_keywords(&[Keyword::PRIMARY, Keyword::KEY]) {
            parser.expect_token(&Token::LParen)?;
            while !parser.consume_token(&Token::RParen) {
                if parser.next_token().token == Token::EOF {
                    return Err(PlanError::syntax("unterminated PRIMARY KEY (...)").into());
                }
            }
            let _ = parser.parse_keywords(&[Keyword::NOT, Keyword::ENFORCED]);
        } else {
            columns.push(parser.parse_column_def()?);
        }
        if !parser.consume_token(&Token::Comma) {
            parser.expect_token(&Token::RParen)?;
            break;
        }
    }
    Ok((columns, watermark))
}

/// `col AS col` or `col AS col - INTERVAL '...'`, the forms RisingWave and Flink use.
fn watermark_spec(column: &str, expr: &datafusion::sql::sqlparser::ast::Expr) -> Result<WatermarkSpec, PlanError> {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr};
    let same_column = |e: &Expr| matches!(e, Expr::Identifier(i) if i.value.eq_ignore_ascii_case(column));
    let delay_us = match expr {
        e if same_column(e) => 0,
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Minus,
            right,
        } if same_column(left) => crate::window_rewrite::interval_micros(right).ok_or_else(|| {
            PlanError::unsupported(format!(
                "WATERMARK delay must be a constant interval such as INTERVAL '5 seconds', not {right}"
            ))
        })?,
        other => {
            return Err(PlanError::unsupported(format!(
                "WATERMARK FOR {column} AS {other} is not supported: use {column} or {column} - INTERVAL '...'"
            )))
        }
    };
    if delay_us < 0 {
        return Err(PlanError::invalid("WATERMARK delay must not be negative"));
    }
    Ok(WatermarkSpec {
        column: column.to_string(),
        delay_us,
    })
}

fn parse_query_before_with(parser: &mut Parser) -> Result<Box<datafusion::sql::sqlparser::ast::Query>, Failure> {
    let mut depth = 0i32;
    let mut n = 0;
    let mut with_at = None;
    loop {
        let t = parser.peek_nth_token(n);
        match &t.token {
            Token::EOF | Token::SemiColon if depth == 0 => break,
            Token::EOF => break,
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Word(w)
                if depth == 0 && w.keyword == Keyword::WITH && parser.peek_nth_token(n + 1).token == Token::LParen =>
            {
                with_at = Some(n)
            }
            _ => {}
        }
        n += 1;
    }
    let Some(end) = with_at else {
        return Ok(parser.parse_query()?);
    };
    let tokens: Vec<_> = (0..end).map(|i| parser.peek_nth_token(i)).collect();
    let dialect = PostgreSqlDialect {};
    let mut sub = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let q = sub.parse_query()?;
    for _ in 0..end {
        parser.next_token();
    }
    Ok(q)
}

fn parse_drop_rest(parser: &mut Parser, kind: ObjectKind) -> Result<RampartStatement, Failure> {
    let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
    let mut names = vec![object_name(&parser.parse_object_name(false)?)];
    while parser.consume_token(&Token::Comma) {
        names.push(object_name(&parser.parse_object_name(false)?));
    }
    let cascade = parser.parse_keyword(Keyword::CASCADE);
    if !cascade {
        let _ = parser.parse_keyword(Keyword::RESTRICT);
    }
    Ok(RampartStatement::Drop {
        kind,
        names,
        if_exists,
        cascade,
    })
}

/// Converts sqlparser column definitions to a relation description.
pub fn columns_to_desc(columns: &[ColumnDef]) -> Result<RelationDesc, PlanError> {
    let mut out = Vec::new();
    for c in columns {
        let name = if c.name.quote_style.is_some() {
            c.name.value.clone()
        } else {
            c.name.value.to_lowercase()
        };
        let ty = sql_type(&c.data_type.to_string())
            .ok_or_else(|| PlanError::unsupported(format!("column {name}: type {} is not supported", c.data_type)))?;
        if c.options
            .iter()
            .any(|o| matches!(o.option, datafusion::sql::sqlparser::ast::ColumnOption::Check(_)))
        {
            return Err(check_unsupported());
        }
        if out.iter().any(|(n, _)| n == &name) {
            return Err(PlanError::new(
                "42701",
                format!("column \"{name}\" specified more than once"),
            ));
        }
        out.push((name, ty));
    }
    Ok(RelationDesc::new(out))
}

/// The error for a `CHECK` constraint: Rampart would not enforce it, so it is refused
/// rather than accepted and ignored.
pub fn check_unsupported() -> PlanError {
    PlanError::unsupported("CHECK constraints are not supported (Rampart would not enforce them)")
}

/// Maps a SQL type name (as sqlparser prints it) to a column type.
pub fn sql_type(name: &str) -> Option<ColumnType> {
    let lower = name.to_lowercase();
    let base = lower.split('(').next().unwrap_or("").trim();
    Some(match base {
        "bool" | "boolean" => ColumnType::Bool,
        "smallint" | "int2" | "int" | "integer" | "int4" | "tinyint" => ColumnType::Int32,
        "bigint" | "int8" | "int64" => ColumnType::Int64,
        "real" | "float" | "float4" | "float8" | "float64" | "double" | "double precision" | "numeric" | "decimal" => {
            ColumnType::Float64
        }
        "varchar" | "character varying" | "text" | "string" | "char" | "character" => ColumnType::Text,
        "timestamptz" => ColumnType::TimestampTz,
        "timestamp" => {
            if lower.contains("with time zone") && !lower.contains("without") {
                ColumnType::TimestampTz
            } else {
                ColumnType::Timestamp
            }
        }
        "timestamp_ltz" => ColumnType::TimestampTz,
        "date" => ColumnType::Date,
        "interval" => ColumnType::Interval,
        _ => return None,
    })
}

/// Converts a sqlparser location (1-based line and column) to a 0-based character offset.
pub fn char_offset(sql: &str, loc: Location) -> usize {
    if loc.line == 0 {
        return 0;
    }
    let mut offset = 0;
    for (i, line) in sql.split_inclusive('\n').enumerate() {
        if i as u64 + 1 == loc.line {
            return offset + (loc.column.saturating_sub(1) as usize).min(line.chars().count());
        }
        offset += line.chars().count();
    }
    offset
}

/// Turns a sqlparser error into a syntax error with a position, reading the
/// `Line: L, Column: C` sqlparser puts in its messages.
fn parser_error(sql: &str, e: ParserError) -> PlanError {
    let msg = e.to_string();
    let pos = msg.rfind("Line: ").and_then(|i| {
        let rest = &msg[i + 6..];
        let mut it = rest.split(", Column: ");
        let line: u64 = it.next()?.trim().parse().ok()?;
        let col: u64 = it
            .next()?
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .ok()?;
        Some(char_offset(sql, Location { line, column: col }) + 1)
    });
    let clean = msg
        .trim_start_matches("sql parser error: ")
        .split(" at Line: ")
        .next()
        .unwrap_or(&msg)
        .to_string();
    PlanError::syntax(format!("syntax error: {clean}")).at(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_risingwave_source_with_dotted_options() {
        let sql = "CREATE SOURCE auth_events (event_time TIMESTAMPTZ, user_id VARCHAR, n INT) WITH (
            connector = 'kafka', topic = 'auth.events', properties.bootstrap.server = 'kafka:9092',
            scan.startup.mode = 'latest') FORMAT PLAIN ENCODE JSON;";
        let stmts = parse_statements(sql).unwrap();
        assert_eq!(stmts.len(), 1);
        match &stmts[0].stmt {
            RampartStatement::CreateSource {
                name,
                columns,
                options,
                format,
                ..
            } => {
                assert_eq!(name, "auth_events");
                assert_eq!(columns.columns[0].ty, ColumnType::TimestampTz);
                assert_eq!(columns.columns[2].ty, ColumnType::Int32);
                assert_eq!(options["properties.bootstrap.server"], "kafka:9092");
                assert_eq!(format.as_ref().unwrap().format, "PLAIN");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_sink_from_subquery_and_relation() {
        let sql =
            "CREATE SINK a FROM (SELECT 1 AS x UNION ALL SELECT 2) WITH (connector='stdout') FORMAT PLAIN ENCODE JSON;
                   CREATE SINK b FROM v WITH (connector = 'file', path = '/tmp/x.jsonl');
                   CREATE SINK c AS SELECT * FROM v WITH (connector = 'stdout')";
        let stmts = parse_statements(sql).unwrap();
        assert!(matches!(
            &stmts[0].stmt,
            RampartStatement::CreateSink {
                from: SinkFrom::Query(_),
                ..
            }
        ));
        assert!(
            matches!(&stmts[1].stmt, RampartStatement::CreateSink { from: SinkFrom::Relation(r), .. } if object_name(r) == "v")
        );
        assert!(matches!(
            &stmts[2].stmt,
            RampartStatement::CreateSink {
                from: SinkFrom::Query(_),
                ..
            }
        ));
    }

    #[test]
    fn syntax_error_has_position_in_whole_text() {
        let sql = "SELECT 1;\nSELEC oops";
        let err = parse_statements(sql).unwrap_err();
        assert_eq!(err.sqlstate, "42601");
        assert_eq!(err.position, Some(11), "{err:?}");
    }

    #[test]
    fn statement_text_and_show_kinds() {
        let stmts = parse_statements("show materialized views; SHOW SOURCES; DROP SOURCE IF EXISTS s CASCADE").unwrap();
        assert!(matches!(
            stmts[0].stmt,
            RampartStatement::Show(ShowKind::MaterializedViews)
        ));
        assert!(matches!(stmts[1].stmt, RampartStatement::Show(ShowKind::Sources)));
        assert_eq!(stmts[1].text, "SHOW SOURCES");
        assert!(matches!(
            &stmts[2].stmt,
            RampartStatement::Drop {
                kind: ObjectKind::Source,
                cascade: true,
                if_exists: true,
                ..
            }
        ));
    }

    #[test]
    fn each_statement_records_its_own_emit_on_window_close() {
        let stmts = parse_statements(
            "CREATE MATERIALIZED VIEW a AS SELECT 1 AS x EMIT ON WINDOW CLOSE; \
             SELECT 'emit on window close'; CREATE MATERIALIZED VIEW b AS SELECT 2 AS y",
        )
        .expect("parses");
        let flags: Vec<bool> = stmts.iter().map(|s| s.emit_on_window_close).collect();
        assert_eq!(flags, vec![true, false, false]);
    }
}
