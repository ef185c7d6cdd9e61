//! `WITH (key = value, ...)` option lists and `FORMAT ... ENCODE ...` clauses, parsed
//! token by token because their keys are dotted (`properties.bootstrap.server`).

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::ast::Value;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::ast::FormatSpec;
use crate::error::PlanError;

/// Parses `( key = value [, ...] )` after the `WITH` keyword. Keys are lower-cased and may be
/// dotted or quoted (`'connector' = 'kafka'` as Flink writes them); values are literals or
/// bare words.
pub fn parse_with_options(parser: &mut Parser) -> Result<BTreeMap<String, String>, PlanError> {
    let mut out = BTreeMap::new();
    expect(parser, Token::LParen, "( after WITH")?;
    if parser.consume_token(&Token::RParen) {
        return Ok(out);
    }
    loop {
        let key = parse_option_key(parser)?;
        expect(parser, Token::Eq, &format!("= after option {key}"))?;
        let value = parse_option_value(parser, &key)?;
        if out.insert(key.clone(), value).is_some() {
            return Err(PlanError::invalid(format!("option {key} is given twice")));
        }
        if parser.consume_token(&Token::Comma) {
            continue;
        }
        expect(parser, Token::RParen, ", or ) in WITH options")?;
        return Ok(out);
    }
}

fn expect(parser: &mut Parser, token: Token, what: &str) -> Result<(), PlanError> {
    let t = parser.next_token();
    if t.token == token {
        Ok(())
    } else {
        Err(PlanError::syntax(format!("expected {what}, found {}", t.token)))
    }
}

fn parse_option_key(parser: &mut Parser) -> Result<String, PlanError> {
    let mut parts = Vec::new();
    loop {
        let t = parser.next_token();
        match &t.token {
            Token::Word(w) => parts.push(w.value.to_lowercase()),
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => parts.push(s.to_lowercase()),
            other => return Err(PlanError::syntax(format!("expected an option name, found {other}"))),
        }
        if !parser.consume_token(&Token::Period) {
            break;
        }
    }
    Ok(parts.join("."))
}

fn parse_option_value(parser: &mut Parser, key: &str) -> Result<String, PlanError> {
    let t = parser.peek_token();
    if let Token::Word(w) = &t.token {
        parser.next_token();
        return Ok(w.value.clone());
    }
    let v = parser
        .parse_value()
        .map_err(|e| PlanError::syntax(format!("bad value for option {key}: {e}")))?;
    Ok(match v.value {
        Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s,
        Value::Number(n, _) => n,
        Value::Boolean(b) => b.to_string(),
        other => other.to_string(),
    })
}

/// Parses an optional `FORMAT PLAIN|UPSERT|DEBEZIUM ENCODE JSON [( ... )]`.
pub fn parse_format(parser: &mut Parser) -> Result<Option<FormatSpec>, PlanError> {
    let is_format = matches!(&parser.peek_token().token, Token::Word(w) if w.value.eq_ignore_ascii_case("format"));
    if !is_format {
        return Ok(None);
    }
    parser.next_token();
    let format = word(parser, "a format (PLAIN, UPSERT or DEBEZIUM) after FORMAT")?.to_uppercase();
    let is_encode = matches!(&parser.peek_token().token, Token::Word(w) if w.value.eq_ignore_ascii_case("encode"));
    if !is_encode {
        return Err(PlanError::syntax(format!("expected ENCODE after FORMAT {format}")));
    }
    parser.next_token();
    let encode = word(parser, "an encoding (JSON) after ENCODE")?.to_uppercase();
    if parser.peek_token().token == Token::LParen {
        // Encode options such as `(timestamptz.handling.mode = 'utc_string')`: accepted, ignored.
        parse_with_options(parser)?;
    }
    if !matches!(format.as_str(), "PLAIN" | "UPSERT" | "DEBEZIUM") {
        return Err(PlanError::unsupported(format!(
            "FORMAT {format} is not supported; use PLAIN, UPSERT or DEBEZIUM"
        )));
    }
    if encode != "JSON" {
        return Err(PlanError::unsupported(format!(
            "ENCODE {encode} is not supported yet; use ENCODE JSON"
        )));
    }
    Ok(Some(FormatSpec { format, encode }))
}

fn word(parser: &mut Parser, what: &str) -> Result<String, PlanError> {
    let t = parser.next_token();
    match t.token {
        Token::Word(w) => Ok(w.value),
        other => Err(PlanError::syntax(format!("expected {what}, found {other}"))),
    }
}

/// Whether the next token is the keyword.
pub fn peek_keyword(parser: &Parser, kw: Keyword) -> bool {
    matches!(&parser.peek_token().token, Token::Word(w) if w.keyword == kw)
}
