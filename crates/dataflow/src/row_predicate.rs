//! [`RowPredicate`]: the common filter shapes (comparisons of string, integer and boolean
//! columns with each other or with constants, `IN` lists, `IS [NOT] NULL`, `AND`, `OR`,
//! `NOT`, `[NOT] LIKE` / `ILIKE` a constant pattern) evaluated directly on rows, with SQL's
//! three-valued logic, instead of converting every row to Arrow first. Anything else
//! (casts, functions, floats, timestamps) is not compiled, and the
//! [`crate::eval::Evaluator`] uses DataFusion as before.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{BinaryExpr, Expr, Like, Operator};
use rampart_repr::{Datum, RowRef};

/// The kinds of values a compiled predicate compares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Str,
    Int,
    Bool,
}

fn kind_of(dt: &DataType) -> Option<Kind> {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(Kind::Str),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => Some(Kind::Int),
        DataType::Boolean => Some(Kind::Bool),
        _ => None,
    }
}

/// A column of the row or a constant.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Operand {
    Column(usize),
    Value(Datum),
}

impl Operand {
    fn compile(expr: &Expr, schema: &DFSchema) -> Option<(Operand, Kind)> {
        match expr {
            Expr::Alias(a) => Operand::compile(&a.expr, schema),
            Expr::Column(c) => {
                let i = schema.index_of_column(c).ok()?;
                Some((Operand::Column(i), kind_of(schema.field(i).data_type())?))
            }
            Expr::Literal(v, _) => {
                let kind = kind_of(&v.data_type())?;
                let datum = if v.is_null() {
                    Datum::Null
                } else {
                    match v {
                        ScalarValue::Utf8(Some(s))
                        | ScalarValue::LargeUtf8(Some(s))
                        | ScalarValue::Utf8View(Some(s)) => Datum::str(s),
                        ScalarValue::Boolean(Some(b)) => Datum::Bool(*b),
                        ScalarValue::Int8(Some(i)) => Datum::Int(*i as i64),
                        ScalarValue::Int16(Some(i)) => Datum::Int(*i as i64),
                        ScalarValue::Int32(Some(i)) => Datum::Int(*i as i64),
                        ScalarValue::Int64(Some(i)) => Datum::Int(*i),
                        ScalarValue::UInt8(Some(i)) => Datum::Int(*i as i64),
                        ScalarValue::UInt16(Some(i)) => Datum::Int(*i as i64),
                        ScalarValue::UInt32(Some(i)) => Datum::Int(*i as i64),
                        _ => return None,
                    }
                };
                Some((Operand::Value(datum), kind))
            }
            _ => None,
        }
    }

    fn get<'a, R: RowRef + ?Sized>(&'a self, row: &'a R) -> &'a Datum {
        match self {
            Operand::Column(i) => row.datum(*i),
            Operand::Value(d) => d,
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Cmp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

/// A boolean expression compiled for evaluation on rows.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RowPredicate {
    Compare(Cmp, Operand, Operand),
    And(Box<RowPredicate>, Box<RowPredicate>),
    Or(Box<RowPredicate>, Box<RowPredicate>),
    Not(Box<RowPredicate>),
    /// `IS NULL` (or `IS NOT NULL` when the flag is set).
    IsNull(Operand, bool),
    /// `value [NOT] IN (list)`.
    InList(Operand, Vec<Datum>, bool),
    /// A boolean operand used as a predicate.
    Value(Operand),
    /// `value [NOT] LIKE pattern` (`ILIKE` when the pattern was compiled case-insensitive).
    Like(Operand, LikePattern, bool),
}

/// A constant `LIKE` pattern compiled once to a regular expression, the way Arrow's `like`
/// and `ilike` kernels translate it (`%` any characters, `_` one character, `\` escapes
/// the next character; `ILIKE` folds case by Unicode rules), so a row gets the result
/// DataFusion would give. Arrow compiles the pattern again for every batch it evaluates.
#[derive(Clone, Debug)]
pub(crate) struct LikePattern {
    pattern: String,
    case_insensitive: bool,
    regex: regex::Regex,
}

impl PartialEq for LikePattern {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.case_insensitive == other.case_insensitive
    }
}

impl LikePattern {
    /// Compiles `pattern`; `None` for a pattern the translation would not mirror exactly
    /// (a trailing escape), which stays with DataFusion.
    fn compile(pattern: &str, case_insensitive: bool) -> Option<LikePattern> {
        let mut re = String::with_capacity(pattern.len() * 2 + 2);
        re.push('^');
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => push_literal(&mut re, chars.next()?),
                '%' => re.push_str(".*"),
                '_' => re.push('.'),
                c => push_literal(&mut re, c),
            }
        }
        re.push('$');
        let regex = regex::RegexBuilder::new(&re)
            .case_insensitive(case_insensitive)
            .dot_matches_new_line(true)
            .build()
            .ok()?;
        Some(LikePattern {
            pattern: pattern.to_string(),
            case_insensitive,
            regex,
        })
    }

    fn matches(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

/// Appends `c` to a regular expression as a character matched literally.
fn push_literal(re: &mut String, c: char) {
    re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
}

impl RowPredicate {
    /// Compiles `expr` (already simplified, over `schema`) if it has a supported shape.
    pub(crate) fn compile(expr: &Expr, schema: &DFSchema) -> Option<RowPredicate> {
        match expr {
            Expr::Alias(a) => RowPredicate::compile(&a.expr, schema),
            Expr::Not(e) => Some(RowPredicate::Not(Box::new(RowPredicate::compile(e, schema)?))),
            Expr::IsNull(e) => Some(RowPredicate::IsNull(Operand::compile(e, schema)?.0, false)),
            Expr::IsNotNull(e) => Some(RowPredicate::IsNull(Operand::compile(e, schema)?.0, true)),
            Expr::InList(l) => {
                let (value, kind) = Operand::compile(&l.expr, schema)?;
                let mut list = Vec::with_capacity(l.list.len());
                for item in &l.list {
                    match Operand::compile(item, schema)? {
                        (Operand::Value(d), k) if k == kind => list.push(d),
                        _ => return None,
                    }
                }
                Some(RowPredicate::InList(value, list, l.negated))
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let cmp = match op {
                    Operator::And | Operator::Or => {
                        let (l, r) = (
                            Box::new(RowPredicate::compile(left, schema)?),
                            Box::new(RowPredicate::compile(right, schema)?),
                        );
                        return Some(if *op == Operator::And {
                            RowPredicate::And(l, r)
                        } else {
                            RowPredicate::Or(l, r)
                        });
                    }
                    Operator::Eq => Cmp::Eq,
                    Operator::NotEq => Cmp::NotEq,
                    Operator::Lt => Cmp::Lt,
                    Operator::LtEq => Cmp::LtEq,
                    Operator::Gt => Cmp::Gt,
                    Operator::GtEq => Cmp::GtEq,
                    _ => return None,
                };
                let (l, lk) = Operand::compile(left, schema)?;
                let (r, rk) = Operand::compile(right, schema)?;
                (lk == rk).then_some(RowPredicate::Compare(cmp, l, r))
            }
            Expr::Like(Like {
                negated,
                expr,
                pattern,
                escape_char,
                case_insensitive,
            }) => {
                if !matches!(escape_char, None | Some('\\')) {
                    return None;
                }
                let value = match Operand::compile(expr, schema)? {
                    (value, Kind::Str) => value,
                    _ => return None,
                };
                let pattern = match Operand::compile(pattern, schema)? {
                    (Operand::Value(Datum::Str(p)), Kind::Str) => p,
                    _ => return None,
                };
                let compiled = LikePattern::compile(pattern.as_str(), *case_insensitive)?;
                Some(RowPredicate::Like(value, compiled, *negated))
            }
            Expr::Column(_) | Expr::Literal(..) => match Operand::compile(expr, schema)? {
                (o, Kind::Bool) => Some(RowPredicate::Value(o)),
                _ => None,
            },
            _ => None,
        }
    }

    /// The predicate's value on `row`: `None` is SQL NULL.
    pub(crate) fn eval<R: RowRef + ?Sized>(&self, row: &R) -> Option<bool> {
        match self {
            RowPredicate::Compare(cmp, l, r) => {
                let (a, b) = (l.get(row), r.get(row));
                if a.is_null() || b.is_null() {
                    return None;
                }
                Some(match cmp {
                    Cmp::Eq => a == b,
                    Cmp::NotEq => a != b,
                    Cmp::Lt => a < b,
                    Cmp::LtEq => a <= b,
                    Cmp::Gt => a > b,
                    Cmp::GtEq => a >= b,
                })
            }
            RowPredicate::And(l, r) => match l.eval(row) {
                Some(false) => Some(false),
                a => match (a, r.eval(row)) {
                    (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                },
            },
            RowPredicate::Or(l, r) => match l.eval(row) {
                Some(true) => Some(true),
                a => match (a, r.eval(row)) {
                    (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                },
            },
            RowPredicate::Not(e) => e.eval(row).map(|b| !b),
            RowPredicate::IsNull(o, negated) => Some(o.get(row).is_null() != *negated),
            RowPredicate::InList(o, list, negated) => {
                let v = o.get(row);
                if v.is_null() {
                    return None;
                }
                if list.iter().any(|d| d == v) {
                    Some(!negated)
                } else if list.iter().any(Datum::is_null) {
                    None
                } else {
                    Some(*negated)
                }
            }
            RowPredicate::Value(o) => match o.get(row) {
                Datum::Bool(b) => Some(*b),
                _ => None,
            },
            RowPredicate::Like(o, pattern, negated) => match o.get(row) {
                Datum::Str(s) => Some(pattern.matches(s.as_str()) != *negated),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::common::DFSchemaRef;
    use datafusion::prelude::{col, lit};

    use super::*;
    use crate::eval::Evaluator;
    use crate::test_rows::{every_combination, nullable_schema};

    fn schema() -> DFSchemaRef {
        nullable_schema(&[
            ("s", DataType::Utf8),
            ("t", DataType::Utf8),
            ("i", DataType::Int64),
            ("b", DataType::Boolean),
            ("f", DataType::Float64),
        ])
    }

    /// Every combination of a few values, NULL included.
    fn rows() -> Vec<rampart_repr::Row> {
        let strs = [Datum::Null, Datum::str("a"), Datum::str("b"), Datum::str("")];
        let ints = [Datum::Null, Datum::Int(-1), Datum::Int(5)];
        let bools = [Datum::Null, Datum::Bool(false), Datum::Bool(true)];
        every_combination(&[&strs, &strs, &ints, &bools, &[Datum::Null]])
    }

    /// The expected values come from DataFusion itself: the same predicate through Arrow.
    #[test]
    fn row_predicates_agree_with_datafusion_on_every_row() {
        let s = schema();
        let null_str = Expr::Literal(ScalarValue::Utf8(None), None);
        let predicates = [
            col("s").eq(lit("a")),
            col("s").not_eq(lit("a")),
            col("s").lt(col("t")),
            col("s").gt_eq(lit("b")),
            col("i").gt(lit(0i64)),
            col("i").lt_eq(lit(-1i64)),
            col("s").eq(lit("a")).and(col("i").gt(lit(0i64))),
            col("s").eq(lit("a")).or(col("b")),
            !col("b"),
            col("b").and(col("s").is_null()),
            col("t").is_not_null().or(col("i").eq(lit(5i64))),
            col("s").in_list(vec![lit("a"), lit("")], false),
            col("s").in_list(vec![lit("a"), lit("b")], true),
            col("s").in_list(vec![lit("a"), null_str.clone()], false),
            col("s").in_list(vec![lit("a"), null_str], true),
            col("s").eq(lit("a")).and(col("t").eq(lit("b")).or(!col("b"))),
        ];
        let rows = rows();
        for p in &predicates {
            let e = Evaluator::new(std::slice::from_ref(p), &s).unwrap();
            let direct = e.eval_predicate(rows.iter()).unwrap();
            assert!(RowPredicate::compile(p, &s).is_some(), "{p} should compile");
            assert!(e.uses_row_predicate(), "{p} simplified should compile too");
            let reference = Evaluator::reference(std::slice::from_ref(p), &s);
            let expected = reference.eval_predicate(rows.iter()).unwrap();
            assert_eq!(direct, expected, "{p}");
        }
    }

    /// `LIKE` and `ILIKE` with constant patterns on rows give what DataFusion's Arrow
    /// kernels give (the expected values are DataFusion's, on the same strings): wildcards,
    /// escapes, regex metacharacters taken literally, newlines, non-ASCII case folding.
    #[test]
    fn like_patterns_agree_with_datafusion() {
        let s = nullable_schema(&[("s", DataType::Utf8)]);
        let strings = [
            "",
            "a",
            "A",
            "abc",
            "ABC",
            "xabcx",
            "a.c",
            "a%c",
            "a_c",
            "a\\c",
            "line\nbreak",
            "PowerShell -EncodedCommand",
            "powershell.exe -encodedcommand ZQB4AA==",
            "ÄBC",
            "äbc",
            "straße",
            "(x)+[y]",
            "mimikatz",
            "Kelvin \u{212A}",
            "k",
        ];
        let rows: Vec<rampart_repr::Row> = strings
            .iter()
            .map(|v| rampart_repr::Row::from(vec![Datum::str(v)]))
            .chain(std::iter::once(rampart_repr::Row::from(vec![Datum::Null])))
            .collect();
        let patterns = [
            "a",
            "a%",
            "%c",
            "%b%",
            "_",
            "a_c",
            "%",
            "",
            "a\\%c",
            "a\\_c",
            "a\\\\c",
            "a.c",
            "(x)+[y]",
            "%powershell%",
            "%-EncodedCommand%",
            "äbc",
            "%K%",
            "line%break",
            "_%_",
            "%\\%%",
            "straße",
            "%MIMI%",
        ];
        for pattern in patterns {
            for (negated, insensitive) in [(false, false), (true, false), (false, true), (true, true)] {
                let p = Expr::Like(Like::new(
                    negated,
                    Box::new(col("s")),
                    Box::new(lit(pattern)),
                    None,
                    insensitive,
                ));
                let compiled = RowPredicate::compile(&p, &s).unwrap_or_else(|| panic!("{p} should compile"));
                let direct: Vec<bool> = rows.iter().map(|r| compiled.eval(r) == Some(true)).collect();
                let reference = Evaluator::reference(std::slice::from_ref(&p), &s);
                let expected = reference.eval_predicate(rows.iter()).unwrap();
                assert_eq!(direct, expected, "{p}");
                // Through the evaluator too (the simplifier may rewrite some patterns first).
                let e = Evaluator::new(std::slice::from_ref(&p), &s).unwrap();
                assert_eq!(e.eval_predicate(rows.iter()).unwrap(), expected, "{p} simplified");
            }
        }
        // The seed's suspicious-process rule runs on rows, without Arrow.
        let seed = col("s")
            .ilike(lit("%powershell%"))
            .and(col("s").ilike(lit("%-EncodedCommand%")));
        assert!(Evaluator::new(&[seed], &s).unwrap().uses_row_predicate());
    }

    #[test]
    fn other_shapes_are_left_to_datafusion() {
        let s = schema();
        for p in [
            col("f").gt(lit(1.0)),
            col("i").gt(col("f")),
            col("s").like(col("t")),
            Expr::Like(Like::new(
                false,
                Box::new(col("s")),
                Box::new(lit("a#%")),
                Some('#'),
                false,
            )),
            datafusion::functions::expr_fn::upper(col("s")).eq(lit("A")),
        ] {
            assert!(RowPredicate::compile(&p, &s).is_none(), "{p}");
        }
    }
}
