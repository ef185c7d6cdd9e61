//! Accepts the Flink SQL that users migrating from Flink paste, by rewriting it to the
//! RisingWave forms Rampart plans:
//!
//! - `` `name` `` identifiers become `"name"`;
//! - `TABLE(TUMBLE(TABLE t, DESCRIPTOR(c), size))` becomes `TUMBLE(t, c, size)` (and
//!   likewise `HOP(TABLE t, DESCRIPTOR(c), slide, size)`);
//! - `CREATE TABLE t (...) WITH ('connector' = 'kafka', ...)` is parsed as a source (see
//!   `parse.rs`), with `WATERMARK FOR c AS expr` accepted in the column list.
//!
//! Text inside single-quoted strings is never touched.

/// Rewrites Flink-only syntax; text without any is returned unchanged.
pub fn rewrite_flink_syntax(sql: &str) -> String {
    if !sql.contains('`') && !sql.to_ascii_uppercase().contains("DESCRIPTOR") {
        return sql.to_string();
    }
    let backticks = replace_outside_strings(sql, |c| if c == '`' { Some('"') } else { None });
    rewrite_window_tvfs(&backticks)
}

fn replace_outside_strings(sql: &str, f: impl Fn(char) -> Option<char>) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut in_string = false;
    for c in sql.chars() {
        if c == '\'' {
            in_string = !in_string;
        }
        out.push(if in_string { c } else { f(c).unwrap_or(c) });
    }
    out
}

/// Byte ranges of the text that lie outside single-quoted strings.
fn outside_string(sql: &str, at: usize) -> bool {
    sql[..at].chars().filter(|c| *c == '\'').count() % 2 == 0
}

fn matching_paren(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0i32;
    let mut in_string = false;
    for (i, c) in s[open..].char_indices() {
        match c {
            '\'' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `TABLE( TUMBLE|HOP ( TABLE t, DESCRIPTOR(c), ...) )` → `TUMBLE|HOP(t, c, ...)`.
fn rewrite_window_tvfs(sql: &str) -> String {
    let mut s = sql.to_string();
    let mut search_from = 0;
    loop {
        let upper = s.to_ascii_uppercase();
        let Some(rel) = upper[search_from..].find("TABLE") else {
            break;
        };
        let start = search_from + rel;
        search_from = start + 5;
        if !outside_string(&s, start) {
            continue;
        }
        let after = upper[start + 5..].trim_start();
        if !after.starts_with('(') {
            continue;
        }
        let open = s.len() - after.len();
        let inner = upper[open + 1..].trim_start();
        if !(inner.starts_with("TUMBLE") || inner.starts_with("HOP")) {
            continue;
        }
        let Some(close) = matching_paren(&s, open) else { break };
        let body = s[open + 1..close].trim().to_string();
        let body = strip_table_and_descriptor(&body);
        s.replace_range(start..=close, &body);
        search_from = start;
    }
    s
}

fn strip_table_and_descriptor(body: &str) -> String {
    let mut b = body.to_string();
    // `TABLE name` as the first argument → `name`.
    if let Some(p) = b.find('(') {
        let rest = b[p + 1..].trim_start();
        if rest.len() > 6 && rest[..6].eq_ignore_ascii_case("TABLE ") {
            let skip = b.len() - rest.len();
            b.replace_range(skip..skip + 6, "");
        }
    }
    // `DESCRIPTOR(col)` → `col`.
    loop {
        let upper = b.to_ascii_uppercase();
        let Some(d) = upper.find("DESCRIPTOR") else { break };
        let Some(open) = b[d..].find('(').map(|o| d + o) else {
            break;
        };
        let Some(close) = matching_paren(&b, open) else { break };
        let col = b[open + 1..close].trim().to_string();
        b.replace_range(d..=close, &col);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_table_functions_become_risingwave_calls() {
        let sql = "SELECT source_ip, COUNT(*) AS login_attempts FROM TABLE(\n    TUMBLE(TABLE logins, DESCRIPTOR(login_time), INTERVAL '20' seconds))\nGROUP BY source_ip";
        let out = rewrite_flink_syntax(sql);
        assert!(
            out.contains("TUMBLE(logins, login_time, INTERVAL '20' seconds)"),
            "{out}"
        );
        assert!(!out.to_uppercase().contains("DESCRIPTOR"), "{out}");
    }

    #[test]
    fn backticks_become_double_quotes_outside_strings() {
        assert_eq!(
            rewrite_flink_syntax("SELECT `a`, '`b`' FROM t"),
            "SELECT \"a\", '`b`' FROM t"
        );
    }
}
