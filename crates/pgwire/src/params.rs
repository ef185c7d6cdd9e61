//! Parameters of the extended query protocol: finding `$n` placeholders in SQL text,
//! decoding bound values (text or binary), and substituting them as SQL literals, with a
//! map from positions in the substituted text back to the client's text.

use pgwire::api::Type;

use super::encode::{format_date, format_timestamp, PG_EPOCH_UNIX_DAYS, PG_EPOCH_UNIX_SECS};
use crate::backend::SqlError;

/// A piece of SQL text: literal text or a `$n` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// 0-based parameter index, and the placeholder's character offset and length.
    Param {
        index: usize,
        start: usize,
        len: usize,
    },
}

/// The most parameters a statement may have (the protocol counts them in 16 bits, and
/// PostgreSQL allows as many).
pub const MAX_PARAMETERS: usize = 65_535;

/// SQL text split at its `$n` placeholders (ignoring those inside string literals, quoted
/// identifiers, dollar-quoted strings and comments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlTemplate {
    pieces: Vec<Piece>,
    param_count: usize,
    /// The first `$n` above [`MAX_PARAMETERS`], as written, if any (the statement is
    /// refused).
    out_of_range: Option<String>,
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

impl SqlTemplate {
    /// Splits `sql` at its placeholders.
    pub fn parse(sql: &str) -> SqlTemplate {
        let chars: Vec<char> = sql.chars().collect();
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut param_count = 0;
        let mut out_of_range = None;
        let mut i = 0;
        let prev_is_ident = |i: usize| i > 0 && is_ident_char(chars[i - 1]);
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            let end = match c {
                '\'' => {
                    let escapes = i > 0 && matches!(chars[i - 1], 'e' | 'E') && !(i > 1 && is_ident_char(chars[i - 2]));
                    skip_quoted(&chars, i, '\'', escapes)
                }
                '"' => skip_quoted(&chars, i, '"', false),
                '-' if next == Some('-') => {
                    let mut j = i + 2;
                    while j < chars.len() && chars[j] != '\n' {
                        j += 1;
                    }
                    j
                }
                '/' if next == Some('*') => skip_block_comment(&chars, i),
                '$' if !prev_is_ident(i) => {
                    if next.is_some_and(|n| n.is_ascii_digit()) {
                        let mut j = i + 1;
                        while j < chars.len() && chars[j].is_ascii_digit() {
                            j += 1;
                        }
                        let digits: String = chars[i + 1..j].iter().collect();
                        match digits.parse::<usize>() {
                            Ok(0) => j,
                            Ok(n) if n <= MAX_PARAMETERS => {
                                if !text.is_empty() {
                                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                                }
                                pieces.push(Piece::Param {
                                    index: n - 1,
                                    start: i,
                                    len: j - i,
                                });
                                param_count = param_count.max(n);
                                i = j;
                                continue;
                            }
                            // Beyond the limit, or beyond any number at all.
                            _ => {
                                out_of_range.get_or_insert(format!("${digits}"));
                                j
                            }
                        }
                    } else {
                        skip_dollar_quoted(&chars, i)
                    }
                }
                _ => i + 1,
            };
            text.extend(&chars[i..end]);
            i = end;
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        SqlTemplate {
            pieces,
            param_count,
            out_of_range,
        }
    }

    /// An error if the text names a parameter above [`MAX_PARAMETERS`] (SQLSTATE 54023,
    /// too many arguments): such a statement is refused before anything is sized by it.
    pub fn check_parameter_numbers(&self) -> Result<(), SqlError> {
        match &self.out_of_range {
            None => Ok(()),
            Some(named) => Err(SqlError::new(
                "54023",
                format!("parameter {named} is out of range: a statement has at most {MAX_PARAMETERS} parameters"),
            )),
        }
    }

    /// The highest `$n` referenced.
    pub fn param_count(&self) -> usize {
        self.param_count
    }

    /// The SQL text with placeholder `$n` replaced by `literals[n - 1]`, and the map back
    /// to the template's character positions.
    pub fn render(&self, literals: &[String]) -> Result<(String, PositionMap), SqlError> {
        let mut out = String::new();
        let mut out_chars = 0;
        let mut map = PositionMap::default();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => {
                    out.push_str(t);
                    out_chars += t.chars().count();
                }
                Piece::Param { index, start, len } => {
                    let literal = literals.get(*index).ok_or_else(|| {
                        SqlError::new("42P02", format!("there is no parameter ${}", index + 1)).at(Some(start + 1))
                    })?;
                    let n = literal.chars().count();
                    map.segments.push(Segment {
                        new_start: out_chars,
                        new_len: n,
                        orig_start: *start,
                        orig_len: *len,
                    });
                    out.push_str(literal);
                    out_chars += n;
                }
            }
        }
        Ok((out, map))
    }
}

/// Index just past a quoted string or identifier starting at `start`.
fn skip_quoted(chars: &[char], start: usize, quote: char, backslash_escapes: bool) -> usize {
    let mut j = start + 1;
    while j < chars.len() {
        if backslash_escapes && chars[j] == '\\' {
            j += 2;
            continue;
        }
        if chars[j] == quote {
            if chars.get(j + 1) == Some(&quote) {
                j += 2;
                continue;
            }
            return j + 1;
        }
        j += 1;
    }
    chars.len()
}

/// Index just past a (nested) block comment starting at `start`.
fn skip_block_comment(chars: &[char], start: usize) -> usize {
    let mut depth = 0usize;
    let mut j = start;
    while j < chars.len() {
        if chars[j] == '/' && chars.get(j + 1) == Some(&'*') {
            depth += 1;
            j += 2;
        } else if chars[j] == '*' && chars.get(j + 1) == Some(&'/') {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return j;
            }
        } else {
            j += 1;
        }
    }
    chars.len()
}

/// Index just past a `$tag$...$tag$` string starting at `start`, or `start + 1` when the
/// `$` does not open one.
fn skip_dollar_quoted(chars: &[char], start: usize) -> usize {
    let mut j = start + 1;
    if chars.get(j).is_some_and(|c| c.is_ascii_digit()) {
        return start + 1;
    }
    while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
        j += 1;
    }
    if chars.get(j) != Some(&'$') {
        return start + 1;
    }
    let tag = &chars[start..=j];
    let mut k = j + 1;
    while k + tag.len() <= chars.len() {
        if &chars[k..k + tag.len()] == tag {
            return k + tag.len();
        }
        k += 1;
    }
    chars.len()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    new_start: usize,
    new_len: usize,
    orig_start: usize,
    orig_len: usize,
}

/// Maps character positions in substituted SQL back to the text the client sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PositionMap {
    segments: Vec<Segment>,
}

impl PositionMap {
    /// The 1-based position in the client's text of 1-based position `pos` in the
    /// substituted text; a position inside a substituted value maps to its `$n`.
    pub fn to_original(&self, pos: usize) -> usize {
        let p = pos.saturating_sub(1);
        let mut delta: isize = 0;
        for s in &self.segments {
            if p < s.new_start {
                break;
            }
            if p < s.new_start + s.new_len {
                return s.orig_start + 1;
            }
            delta = (s.orig_start + s.orig_len) as isize - (s.new_start + s.new_len) as isize;
        }
        (p as isize + delta).max(0) as usize + 1
    }
}

/// A single-quoted SQL string literal, `'` doubled.
pub fn quote_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn invalid(ty: &Type, detail: impl std::fmt::Display) -> SqlError {
    SqlError::new(
        "22P02",
        format!("invalid input for parameter of type {}: {detail}", ty.name()),
    )
}

/// A literal for a number: negatives parenthesized so `1-$1` cannot become a comment.
fn number_literal(s: String) -> String {
    if s.starts_with('-') {
        format!("({s})")
    } else {
        s
    }
}

fn float_literal(v: f64) -> String {
    if v.is_finite() {
        number_literal(format!("{v:e}"))
    } else {
        let name = if v.is_nan() {
            "NaN"
        } else if v > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        };
        format!("CAST('{name}' AS DOUBLE)")
    }
}

fn fixed<const N: usize>(ty: &Type, bytes: &[u8]) -> Result<[u8; N], SqlError> {
    bytes
        .try_into()
        .map_err(|_| invalid(ty, format!("expected {N} bytes, got {}", bytes.len())))
}

fn utf8<'a>(ty: &Type, bytes: &'a [u8]) -> Result<&'a str, SqlError> {
    std::str::from_utf8(bytes)
        .map_err(|_| SqlError::new("22021", format!("invalid UTF-8 in parameter of type {}", ty.name())))
}

/// A string literal, refusing NUL characters as PostgreSQL does.
fn string_literal(s: &str) -> Result<String, SqlError> {
    if s.contains('\0') {
        return Err(SqlError::new(
            "22021",
            "invalid byte sequence for encoding \"UTF8\": 0x00",
        ));
    }
    Ok(quote_literal(s))
}

fn parse_bool(ty: &Type, s: &str) -> Result<bool, SqlError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Ok(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Ok(false),
        other => Err(invalid(ty, format!("\"{other}\""))),
    }
}

fn bool_literal(v: bool) -> String {
    if v { "TRUE" } else { "FALSE" }.to_string()
}

/// Whether `s` is a plain decimal number (`-12.5`, `3`, `.5`, `1e-3`).
fn is_decimal_text(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    !(int_part.is_empty() && frac_part.is_empty())
        && digits(int_part)
        && digits(frac_part)
        && exp.is_none_or(|e| {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && digits(e)
        })
}

/// The SQL literal for one bound parameter: `value` (`None` is SQL NULL) of type `ty`
/// (`None`: unknown, treated as text) in binary or text format.
pub fn literal(value: Option<&[u8]>, ty: Option<&Type>, binary: bool) -> Result<String, SqlError> {
    let Some(bytes) = value else {
        return Ok("NULL".to_string());
    };
    let ty = ty.unwrap_or(&Type::TEXT);
    if binary {
        binary_literal(ty, bytes)
    } else {
        text_literal(ty, utf8(ty, bytes)?)
    }
}

fn text_literal(ty: &Type, s: &str) -> Result<String, SqlError> {
    match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => {
            let v: i64 = s.trim().parse().map_err(|_| invalid(ty, format!("\"{s}\"")))?;
            Ok(number_literal(v.to_string()))
        }
        Type::FLOAT4 | Type::FLOAT8 => {
            let t = s.trim();
            let v: f64 = match t.to_ascii_lowercase().as_str() {
                "nan" => f64::NAN,
                "infinity" | "+infinity" | "inf" => f64::INFINITY,
                "-infinity" | "-inf" => f64::NEG_INFINITY,
                _ => t.parse().map_err(|_| invalid(ty, format!("\"{s}\"")))?,
            };
            Ok(float_literal(v))
        }
        Type::NUMERIC => {
            let t = s.trim();
            if t.eq_ignore_ascii_case("nan") {
                return Ok(float_literal(f64::NAN));
            }
            if !is_decimal_text(t) {
                return Err(invalid(ty, format!("\"{s}\"")));
            }
            Ok(number_literal(t.to_string()))
        }
        Type::BOOL => Ok(bool_literal(parse_bool(ty, s)?)),
        _ => string_literal(s),
    }
}

fn binary_literal(ty: &Type, b: &[u8]) -> Result<String, SqlError> {
    match *ty {
        Type::INT2 => Ok(number_literal(i16::from_be_bytes(fixed(ty, b)?).to_string())),
        Type::INT4 => Ok(number_literal(i32::from_be_bytes(fixed(ty, b)?).to_string())),
        Type::OID => Ok(u32::from_be_bytes(fixed(ty, b)?).to_string()),
        Type::INT8 => Ok(number_literal(i64::from_be_bytes(fixed(ty, b)?).to_string())),
        Type::FLOAT4 => Ok(float_literal(f64::from(f32::from_be_bytes(fixed(ty, b)?)))),
        Type::FLOAT8 => Ok(float_literal(f64::from_be_bytes(fixed(ty, b)?))),
        Type::BOOL => Ok(bool_literal(fixed::<1>(ty, b)?[0] != 0)),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON => {
            string_literal(utf8(ty, b)?)
        }
        Type::JSONB => match b.split_first() {
            Some((1, rest)) => string_literal(utf8(ty, rest)?),
            _ => Err(invalid(ty, "unsupported jsonb version")),
        },
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            let pg_micros = i64::from_be_bytes(fixed(ty, b)?);
            match pg_micros {
                i64::MAX => return Ok("'infinity'".to_string()),
                i64::MIN => return Ok("'-infinity'".to_string()),
                _ => {}
            }
            let micros = pg_micros
                .checked_add(PG_EPOCH_UNIX_SECS * 1_000_000)
                .ok_or_else(|| invalid(ty, "timestamp out of range"))?;
            let text = format_timestamp(micros).ok_or_else(|| invalid(ty, "timestamp out of range"))?;
            if *ty == Type::TIMESTAMPTZ {
                Ok(quote_literal(&format!("{text}+00:00")))
            } else {
                Ok(quote_literal(&text))
            }
        }
        Type::DATE => {
            let days = i64::from(i32::from_be_bytes(fixed(ty, b)?)) + i64::from(PG_EPOCH_UNIX_DAYS);
            let text = format_date(days).ok_or_else(|| invalid(ty, "date out of range"))?;
            Ok(quote_literal(&text))
        }
        Type::NUMERIC => numeric_from_binary(ty, b),
        _ => Err(SqlError::new(
            "0A000",
            format!("binary format for parameters of type {} is not supported", ty.name()),
        )
        .with_hint("send the parameter in text format")),
    }
}

/// The decimal text of PostgreSQL's binary `numeric`.
fn numeric_from_binary(ty: &Type, b: &[u8]) -> Result<String, SqlError> {
    let short = || invalid(ty, "truncated numeric");
    let word =
        |i: usize| -> Result<u16, SqlError> { Ok(u16::from_be_bytes(fixed(ty, b.get(i..i + 2).ok_or_else(short)?)?)) };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i16 as i64;
    let sign = word(4)?;
    let dscale = word(6)? as usize;
    match sign {
        0xC000 => return Ok(float_literal(f64::NAN)),
        0xD000 => return Ok(float_literal(f64::INFINITY)),
        0xF000 => return Ok(float_literal(f64::NEG_INFINITY)),
        0 | 0x4000 => {}
        _ => return Err(invalid(ty, "bad numeric sign")),
    }
    let mut digits = Vec::with_capacity(ndigits);
    for k in 0..ndigits {
        let d = word(8 + 2 * k)?;
        if d > 9999 {
            return Err(invalid(ty, "bad numeric digit"));
        }
        digits.push(d);
    }
    if weight.unsigned_abs() > 10_000 || dscale > 20_000 {
        return Err(invalid(ty, "numeric out of range"));
    }
    // Integer part: groups with exponent weight..=0.
    let mut int_part = String::new();
    for e in (0..=weight).rev() {
        let idx = weight - e;
        let d = usize::try_from(idx)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or(0);
        if int_part.is_empty() {
            if d != 0 {
                int_part = d.to_string();
            }
        } else {
            int_part.push_str(&format!("{d:04}"));
        }
    }
    if int_part.is_empty() {
        int_part.push('0');
    }
    // Fraction: groups with exponent -1, -2, ... cut to dscale digits.
    let mut frac = String::new();
    let mut e = -1i64;
    while frac.len() < dscale {
        let idx = weight - e;
        let d = usize::try_from(idx)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or(0);
        frac.push_str(&format!("{d:04}"));
        e -= 1;
    }
    frac.truncate(dscale);
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    out.push_str(&int_part);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(&frac);
    }
    Ok(number_literal(out))
}

/// A stand-in literal for a parameter of type `ty`, used to describe a statement before
/// its values are known: of the same SQL type as the literal [`literal`] would produce.
pub fn stand_in(ty: &Type) -> String {
    match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => "0".to_string(),
        Type::FLOAT4 | Type::FLOAT8 => "0e0".to_string(),
        Type::NUMERIC => "0.0".to_string(),
        Type::BOOL => "FALSE".to_string(),
        _ => "''".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn finds_placeholders_outside_quotes_and_comments() {
        let t = SqlTemplate::parse("SELECT $1, '$2', \"$3\", $$ $4 $$, $q$ $5 $q$ -- $6\n/* $7 /* $8 */ */ a$9, $10");
        assert_eq!(t.param_count(), 10);
        let args: Vec<String> = (1..=10).map(|i| format!("<{i}>")).collect();
        let (sql, _) = t.render(&args).expect("renders");
        assert_eq!(
            sql,
            "SELECT <1>, '$2', \"$3\", $$ $4 $$, $q$ $5 $q$ -- $6\n/* $7 /* $8 */ */ a$9, <10>"
        );
        let t = SqlTemplate::parse("SELECT E'it\\'s $1', 'a''$2', $2");
        let (sql, _) = t.render(&lits(&["x", "y"])).expect("renders");
        assert_eq!(sql, "SELECT E'it\\'s $1', 'a''$2', y");
        assert_eq!(SqlTemplate::parse("SELECT 1").param_count(), 0);
        assert!(SqlTemplate::parse("SELECT $2").render(&lits(&["a"])).is_err());
    }

    #[test]
    fn positions_map_back() {
        // "SELECT $1 + x" -> "SELECT 'abcdef' + x"
        let t = SqlTemplate::parse("SELECT $1 + x");
        let (sql, map) = t.render(&lits(&["'abcdef'"])).expect("renders");
        assert_eq!(sql, "SELECT 'abcdef' + x");
        assert_eq!(map.to_original(1), 1);
        assert_eq!(map.to_original(8), 8); // start of the literal -> $1
        assert_eq!(map.to_original(12), 8); // inside the literal -> $1
        assert_eq!(map.to_original(19), 13); // x
    }

    #[test]
    fn text_literals() {
        let l = |v: &str, ty: &Type| literal(Some(v.as_bytes()), Some(ty), false);
        assert_eq!(l("O'Brien", &Type::TEXT).expect("ok"), "'O''Brien'");
        assert_eq!(literal(Some(b"x"), None, false).expect("ok"), "'x'");
        assert_eq!(literal(None, Some(&Type::INT8), true).expect("ok"), "NULL");
        assert_eq!(l("42", &Type::INT8).expect("ok"), "42");
        assert_eq!(l("-42", &Type::INT4).expect("ok"), "(-42)");
        assert!(l("1; DROP TABLE t", &Type::INT8).is_err());
        assert_eq!(l("1.5", &Type::FLOAT8).expect("ok"), "1.5e0");
        assert_eq!(l("NaN", &Type::FLOAT8).expect("ok"), "CAST('NaN' AS DOUBLE)");
        assert_eq!(l("12.50", &Type::NUMERIC).expect("ok"), "12.50");
        assert!(l("12.5)", &Type::NUMERIC).is_err());
        assert_eq!(l("on", &Type::BOOL).expect("ok"), "TRUE");
        assert_eq!(l("2024-01-01", &Type::TIMESTAMP).expect("ok"), "'2024-01-01'");
        assert!(l("a\0b", &Type::TEXT).is_err());
    }

    #[test]
    fn binary_literals() {
        let b = |v: &[u8], ty: &Type| literal(Some(v), Some(ty), true);
        assert_eq!(b(&7i16.to_be_bytes(), &Type::INT2).expect("ok"), "7");
        assert_eq!(b(&(-7i32).to_be_bytes(), &Type::INT4).expect("ok"), "(-7)");
        assert_eq!(
            b(&i64::MAX.to_be_bytes(), &Type::INT8).expect("ok"),
            "9223372036854775807"
        );
        assert!(b(&[1, 2, 3], &Type::INT8).is_err());
        assert_eq!(b(&2.5f32.to_be_bytes(), &Type::FLOAT4).expect("ok"), "2.5e0");
        assert_eq!(b(&(-0.125f64).to_be_bytes(), &Type::FLOAT8).expect("ok"), "(-1.25e-1)");
        assert_eq!(b(&[1], &Type::BOOL).expect("ok"), "TRUE");
        assert_eq!(b("it's".as_bytes(), &Type::VARCHAR).expect("ok"), "'it''s'");
        assert!(b(&[0xff, 0xfe], &Type::TEXT).is_err());
        // 2024-01-01 12:00:00.5 since 2000-01-01
        let micros = (1_704_110_400i64 - PG_EPOCH_UNIX_SECS) * 1_000_000 + 500_000;
        assert_eq!(
            b(&micros.to_be_bytes(), &Type::TIMESTAMP).expect("ok"),
            "'2024-01-01 12:00:00.5'"
        );
        assert_eq!(
            b(&micros.to_be_bytes(), &Type::TIMESTAMPTZ).expect("ok"),
            "'2024-01-01 12:00:00.5+00:00'"
        );
        assert_eq!(b(&0i32.to_be_bytes(), &Type::DATE).expect("ok"), "'2000-01-01'");
        assert!(b(&[0], &Type::BYTEA).is_err());
    }

    #[test]
    fn binary_numeric_round_trips() {
        for s in ["123.45", "-0.00001", "10000", "0.00", "1", "99999999.9999"] {
            let bytes = crate::encode::numeric_binary(s).expect("encodes");
            let want = if s.starts_with('-') {
                format!("({s})")
            } else {
                s.to_string()
            };
            assert_eq!(
                literal(Some(&bytes), Some(&Type::NUMERIC), true).expect("decodes"),
                want
            );
        }
        assert!(literal(Some(&[0, 1]), Some(&Type::NUMERIC), true).is_err());
    }
}
