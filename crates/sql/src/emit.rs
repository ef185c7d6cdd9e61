//! RisingWave's `EMIT ON WINDOW CLOSE` clause, which ends a materialized view's or a
//! sink's query (`CREATE MATERIALIZED VIEW v AS SELECT ... GROUP BY ... EMIT ON WINDOW
//! CLOSE`). sqlparser does not know it, so before parsing the four words are found once
//! ([`clauses`]) and blanked into a comment of the same length (positions in errors stay
//! right); each parsed statement records whether it held one
//! (`ParsedStatement::emit_on_window_close`).

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

const WORDS: [&str; 4] = ["emit", "on", "window", "close"];

/// Character ranges (start, end exclusive) of every `EMIT ON WINDOW CLOSE` in `sql`.
pub(crate) fn clauses(sql: &str) -> Vec<(usize, usize)> {
    let dialect = PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize_with_location() else {
        return vec![];
    };
    let words: Vec<&TokenWithSpan> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let mut out = Vec::new();
    for w in words.windows(4) {
        let matches = w.iter().zip(WORDS).all(|(t, word)| {
            matches!(&t.token, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(word))
        });
        if matches {
            let start = crate::parse::char_offset(sql, w[0].span.start);
            let end = crate::parse::char_offset(sql, w[3].span.end);
            out.push((start, end));
        }
    }
    out
}

/// `sql` with the clauses at `ranges` (from [`clauses`]) turned into comments of the same
/// length.
pub(crate) fn blank_emit_clauses(sql: &str, ranges: &[(usize, usize)]) -> String {
    if ranges.is_empty() {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len());
    for (i, c) in sql.chars().enumerate() {
        match ranges.iter().find(|(s, e)| (*s..*e).contains(&i)) {
            Some((s, e)) => {
                let k = i - s;
                out.push(if k < 2 {
                    ['/', '*'][k]
                } else if i + 2 >= *e {
                    ['*', '/'][i + 2 - e]
                } else {
                    ' '
                });
            }
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clause_becomes_a_same_length_comment_and_is_detected() {
        let sql = "SELECT a FROM t GROUP BY a EMIT ON  WINDOW CLOSE; SELECT 'emit on window close'";
        let blanked = blank_emit_clauses(sql, &clauses(sql));
        assert_eq!(blanked.chars().count(), sql.chars().count());
        assert_eq!(
            blanked,
            "SELECT a FROM t GROUP BY a /*                 */; SELECT 'emit on window close'"
        );
        assert_eq!(clauses(sql).len(), 1);
        assert!(clauses("SELECT 'emit on window close'").is_empty());
        assert!(clauses(&blanked).is_empty());
    }
}
