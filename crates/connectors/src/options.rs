//! `WITH (...)` options. Every connector declares its options once, in a
//! `connector_options!` block: a struct whose field doc comments are the option docs, and
//! per field the option's name, aliases, type and default. The block also produces the
//! struct's options table ([`ConnectorOptions::OPTIONS`]), and parsing reads that table:
//! the names and aliases looked up, the defaults parsed, the names an unknown-option error
//! lists. The pages under `docs/connectors/` show the same tables, rendered by
//! [`crate::docs`] (a test keeps them equal).
//!
//! ```
//! use std::collections::BTreeMap;
//! use rampart_connectors::generator::GeneratorOptions;
//! use rampart_connectors::options::ConnectorOptions;
//!
//! let with: BTreeMap<String, String> = [("connector", "generator"), ("kind", "auth")]
//!     .into_iter()
//!     .map(|(k, v)| (k.to_string(), v.to_string()))
//!     .collect();
//! let options = GeneratorOptions::from_with(&with).unwrap();
//! assert_eq!(options.rate, 100.0); // the documented default
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

/// Declares a connector's options struct and its options table (see the module docs).
///
/// ```text
/// connector_options! {
///     /// Options of `CREATE SOURCE ... WITH (connector = 'file')`.
///     pub struct FileSourceOptions("file source", connector "file") {
///         /// What the option means (this text is also the table's description).
///         #[option("path", type "file or glob")]
///         pub path: String = required,
///         /// ...
///         #[option("scan.startup.mode")]
///         pub startup: StartupMode = default("earliest"),
///     }
/// }
/// ```
///
/// Each field is `= required`, `= default("text")` (the text is parsed like a given value),
/// `= optional` (the field is an `Option`) or `= passthrough` (a name ending in `*`: every
/// option with that prefix, without it, into a map). `#[option("name" | "alias", type
/// "...")]` gives the aliases and the type shown in the table (default: the field type's
/// [`OptionValue::TYPE`]). A struct's [`Validate`] impl checks what one value alone cannot
/// say (ranges, combinations).
macro_rules! connector_options {
    (
        $(#[$attr:meta])*
        pub struct $name:ident($what:literal, connector $($connector:literal)|+) {
            $(
                $(#[doc = $doc:literal])*
                #[option($opt:literal $(| $alias:literal)* $(, type $ty_name:literal)?)]
                pub $field:ident: $ty:ty = $kind:ident $(($default:literal))?,
            )*
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                pub $field: $ty,
            )*
        }

        impl $crate::options::ConnectorOptions for $name {
            const WHAT: &'static str = $what;
            const CONNECTORS: &'static [&'static str] = &[$($connector),+];
            const OPTIONS: &'static [$crate::options::OptionDoc] = &[$(
                $crate::options::OptionDoc {
                    name: $opt,
                    aliases: &[$($alias),*],
                    ty: connector_options!(@type $ty $(, $ty_name)?),
                    kind: connector_options!(@kind $kind $(($default))?),
                    doc: &[$($doc),*],
                },
            )*];

            fn from_with(
                options: &std::collections::BTreeMap<String, String>,
            ) -> Result<Self, $crate::options::OptionsError> {
                let with = $crate::options::With::new::<Self>(options)?;
                let mut parsed = $name {
                    $($field: with.$kind($opt)?,)*
                };
                $crate::options::Validate::validate(&mut parsed)?;
                Ok(parsed)
            }
        }
    };
    (@type $ty:ty, $ty_name:literal) => {
        $ty_name
    };
    (@type $ty:ty) => {
        <$ty as $crate::options::OptionValue>::TYPE
    };
    (@kind required) => {
        $crate::options::OptionKind::Required
    };
    (@kind default($default:literal)) => {
        $crate::options::OptionKind::Default($default)
    };
    (@kind optional) => {
        $crate::options::OptionKind::Optional
    };
    (@kind passthrough) => {
        $crate::options::OptionKind::Prefix
    };
}

/// How an option is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// It must be given.
    Required,
    /// When absent, this text (parsed like a given value).
    Default(&'static str),
    /// It may be left out (the field is then `None`).
    Optional,
    /// Every option whose name starts with the prefix before `*` (`properties.*`), passed on
    /// without the prefix.
    Prefix,
}

/// One row of a connector's options table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionDoc {
    /// The option's name in `WITH (...)` (lower case; a prefix family ends in `*`).
    pub name: &'static str,
    /// Other names accepted for it (the first one given wins: the name, then each alias).
    pub aliases: &'static [&'static str],
    /// The type or the allowed values, as a phrase (`number`, `'earliest' or 'latest'`).
    pub ty: &'static str,
    /// Required, defaulted, optional or a prefix family.
    pub kind: OptionKind,
    /// The field's doc comment, one entry per line.
    pub doc: &'static [&'static str],
}

impl OptionDoc {
    /// Whether `key` names this option (or, for a prefix family, one of its members).
    pub fn accepts(&self, key: &str) -> bool {
        match self.kind {
            OptionKind::Prefix => key.starts_with(self.prefix()),
            _ => self.name == key || self.aliases.contains(&key),
        }
    }

    /// The prefix of a prefix family (`properties.`).
    fn prefix(&self) -> &'static str {
        self.name.trim_end_matches('*')
    }

    /// The doc comment as one paragraph.
    pub fn description(&self) -> String {
        let lines: Vec<&str> = self.doc.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect();
        lines.join(" ")
    }
}

/// A connector's options: a struct declared with `connector_options!`.
pub trait ConnectorOptions: Sized {
    /// What the options configure, for messages (`file source`, `kafka sink`).
    const WHAT: &'static str;
    /// The names `connector = '...'` accepts for it (the first is the one documented first).
    const CONNECTORS: &'static [&'static str];
    /// The options table, in the order of the struct's fields.
    const OPTIONS: &'static [OptionDoc];

    /// Parses and validates a `WITH` clause (keys lower-cased, `connector` included).
    fn from_with(options: &BTreeMap<String, String>) -> Result<Self, OptionsError>;

    /// Whether `connector = 'name'` selects these options (ASCII case-insensitive).
    fn selected_by(name: &str) -> bool {
        Self::CONNECTORS.iter().any(|c| c.eq_ignore_ascii_case(name))
    }

    /// Every name the `WITH` clause accepts: `connector`, then each option and its aliases.
    fn allowed() -> Vec<&'static str> {
        let mut names = vec!["connector"];
        for o in Self::OPTIONS {
            names.push(o.name);
            names.extend(o.aliases);
        }
        names
    }
}

/// Checks of an options struct that go beyond one value's type (ranges, combinations),
/// run after every field is parsed. Most structs need none: `impl Validate for X {}`.
pub trait Validate {
    /// Checks (and may normalize) the parsed options.
    fn validate(&mut self) -> Result<(), OptionsError> {
        Ok(())
    }
}

/// Why a `WITH` clause was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// No `connector` option.
    #[error("missing option 'connector' (one of {})", quoted(supported))]
    MissingConnector {
        /// The connectors of this statement.
        supported: Vec<&'static str>,
    },
    /// A `connector` that no connector answers to.
    #[error("unknown {what} connector '{given}' (supported: {})", quoted(supported))]
    UnknownConnector {
        /// `source` or `sink`.
        what: &'static str,
        /// The name given.
        given: String,
        /// The connectors of this statement.
        supported: Vec<&'static str>,
    },
    /// A required option is absent.
    #[error("the {what} needs option '{option}' ({expected})")]
    Missing {
        /// The connector (`file source`).
        what: &'static str,
        /// The option.
        option: &'static str,
        /// Its type or allowed values.
        expected: &'static str,
    },
    /// An option the connector does not have.
    #[error("unknown option '{option}' for the {what} (allowed: {})", allowed.join(", "))]
    Unknown {
        /// The connector (`file source`).
        what: &'static str,
        /// The option given.
        option: String,
        /// Every option the connector accepts.
        allowed: Vec<&'static str>,
    },
    /// A required option given as blank text.
    #[error("option '{option}' is empty")]
    Empty {
        /// The option.
        option: &'static str,
    },
    /// A value that does not parse or is out of range.
    #[error("option '{option}' must be {expected}, not '{value}'")]
    Invalid {
        /// The option.
        option: &'static str,
        /// The value given.
        value: String,
        /// What it must be.
        expected: String,
    },
    /// librdkafka refused a `properties.*` option.
    #[error("invalid Kafka property: {0}")]
    Property(String),
}

/// A refused `WITH` clause is an invalid parameter value (`22023`); the message names the
/// option (or the connector) and says what is allowed.
impl From<OptionsError> for rampart_repr::Error {
    fn from(e: OptionsError) -> Self {
        rampart_repr::Error::invalid_parameter(e.to_string()).with_source(e)
    }
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
}

/// The `connector` option; when absent, the error lists the `supported` connectors.
pub(crate) fn connector<'a>(
    options: &'a BTreeMap<String, String>,
    supported: &[&'static str],
) -> Result<&'a str, OptionsError> {
    options
        .get("connector")
        .map(String::as_str)
        .ok_or_else(|| OptionsError::MissingConnector {
            supported: supported.to_vec(),
        })
}

/// A `WITH` clause being parsed against one options table (used by `connector_options!`).
pub struct With<'a> {
    options: &'a BTreeMap<String, String>,
    what: &'static str,
    table: &'static [OptionDoc],
}

impl<'a> With<'a> {
    /// Checks that every option given is in `T`'s table.
    pub fn new<T: ConnectorOptions>(options: &'a BTreeMap<String, String>) -> Result<Self, OptionsError> {
        if let Some(unknown) = options
            .keys()
            .find(|k| *k != "connector" && !T::OPTIONS.iter().any(|o| o.accepts(k)))
        {
            return Err(OptionsError::Unknown {
                what: T::WHAT,
                option: unknown.clone(),
                allowed: T::allowed(),
            });
        }
        Ok(With {
            options,
            what: T::WHAT,
            table: T::OPTIONS,
        })
    }

    fn doc(&self, name: &str) -> &'static OptionDoc {
        self.table
            .iter()
            .find(|o| o.name == name)
            .expect("the option is in the table the macro built")
    }

    /// The text given for `doc`, under its name or else its first alias given.
    fn text(&self, doc: &OptionDoc) -> Option<&'a str> {
        std::iter::once(&doc.name)
            .chain(doc.aliases)
            .find_map(|n| self.options.get(*n))
            .map(String::as_str)
    }

    /// A required option: absent or blank is an error.
    pub fn required<T: OptionValue>(&self, name: &str) -> Result<T, OptionsError> {
        let doc = self.doc(name);
        let text = self.text(doc).ok_or(OptionsError::Missing {
            what: self.what,
            option: doc.name,
            expected: doc.ty,
        })?;
        if text.trim().is_empty() {
            return Err(OptionsError::Empty { option: doc.name });
        }
        parse(doc, text)
    }

    /// An option with a default: the table's default text when absent.
    pub fn default<T: OptionValue>(&self, name: &str) -> Result<T, OptionsError> {
        let doc = self.doc(name);
        let OptionKind::Default(default) = doc.kind else {
            unreachable!("option '{name}' is declared with a default")
        };
        parse(doc, self.text(doc).unwrap_or(default))
    }

    /// An optional option: `None` when absent.
    pub fn optional<T: OptionValue>(&self, name: &str) -> Result<Option<T>, OptionsError> {
        let doc = self.doc(name);
        self.text(doc).map(|text| parse(doc, text)).transpose()
    }

    /// A prefix family: every option with the prefix, without it.
    pub fn passthrough(&self, name: &str) -> Result<BTreeMap<String, String>, OptionsError> {
        let prefix = self.doc(name).prefix();
        Ok(self
            .options
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
            .collect())
    }
}

fn parse<T: OptionValue>(doc: &OptionDoc, text: &str) -> Result<T, OptionsError> {
    T::parse(text).map_err(|expected| OptionsError::Invalid {
        option: doc.name,
        value: text.to_string(),
        expected,
    })
}

/// A type an option's text parses into.
pub trait OptionValue: Sized {
    /// The type or the allowed values, as the options table shows them.
    const TYPE: &'static str;

    /// Parses an option's text; the error says what the text must be ("a number").
    fn parse(text: &str) -> Result<Self, String>;
}

/// An optional option's field: its table shows the inner type.
impl<T: OptionValue> OptionValue for Option<T> {
    const TYPE: &'static str = T::TYPE;

    fn parse(text: &str) -> Result<Self, String> {
        T::parse(text).map(Some)
    }
}

impl OptionValue for String {
    const TYPE: &'static str = "text";

    fn parse(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
}

impl OptionValue for f64 {
    const TYPE: &'static str = "number";

    fn parse(text: &str) -> Result<Self, String> {
        text.trim().parse().map_err(|_| "a number".to_string())
    }
}

impl OptionValue for u64 {
    const TYPE: &'static str = "non-negative integer";

    fn parse(text: &str) -> Result<Self, String> {
        text.trim().parse().map_err(|_| "a non-negative integer".to_string())
    }
}

impl OptionValue for i64 {
    const TYPE: &'static str = "integer";

    fn parse(text: &str) -> Result<Self, String> {
        text.trim().parse().map_err(|_| "an integer".to_string())
    }
}

impl OptionValue for bool {
    const TYPE: &'static str = "'true' or 'false'";

    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("'true' or 'false'".to_string()),
        }
    }
}

/// A comma-separated list (blank entries dropped).
impl OptionValue for Vec<String> {
    const TYPE: &'static str = "comma-separated list";

    fn parse(text: &str) -> Result<Self, String> {
        Ok(text
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect())
    }
}

/// A number and a unit (`500 ms`, `2 s`, `1 min`; a bare number is milliseconds).
impl OptionValue for Duration {
    const TYPE: &'static str = "duration ('500 ms', '2 s', '1 min')";

    fn parse(text: &str) -> Result<Self, String> {
        parse_duration(text)
    }
}

/// A duration: a number and a unit (`500 ms`, `2 s`, `1 min`; a bare number is
/// milliseconds). The error says what the text must be.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| "a duration such as '2 s', '500 ms' or '1 min'".to_string())?;
    let ms = match unit.trim().to_lowercase().as_str() {
        "" | "ms" | "millisecond" | "milliseconds" => n,
        "s" | "sec" | "second" | "seconds" => n.saturating_mul(1000),
        "min" | "minute" | "minutes" => n.saturating_mul(60_000),
        other => return Err(format!("a duration in ms, s or min (unknown unit '{other}')")),
    };
    Ok(Duration::from_millis(ms))
}

/// Where a source starts reading (`scan.startup.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupMode {
    /// From the beginning of existing data.
    Earliest,
    /// Only data that arrives after the reader starts.
    Latest,
}

/// `earliest` or `latest`, ASCII case-insensitive; Flink's `earliest-offset` and
/// `latest-offset` too.
impl OptionValue for StartupMode {
    const TYPE: &'static str = "'earliest' or 'latest'";

    fn parse(text: &str) -> Result<Self, String> {
        match text.to_lowercase().as_str() {
            "earliest" | "earliest-offset" => Ok(StartupMode::Earliest),
            "latest" | "latest-offset" => Ok(StartupMode::Latest),
            _ => Err(Self::TYPE.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_and_bad_ones_say_what_is_expected() {
        let ms = |t: &str| parse_duration(t).map(|d| d.as_millis());
        assert_eq!(ms("500 ms"), Ok(500));
        assert_eq!(ms("2 s"), Ok(2000));
        assert_eq!(ms("10min"), Ok(600_000));
        assert_eq!(ms("250"), Ok(250));
        assert!(ms("soon").unwrap_err().contains("'2 s'"));
        assert!(ms("3 h").unwrap_err().contains("unknown unit 'h'"));
    }

    #[test]
    fn startup_modes_accept_flinks_names() {
        assert_eq!(StartupMode::parse("Earliest-Offset"), Ok(StartupMode::Earliest));
        assert_eq!(StartupMode::parse("latest"), Ok(StartupMode::Latest));
        assert_eq!(StartupMode::parse("middle"), Err("'earliest' or 'latest'".to_string()));
    }

    #[test]
    fn errors_read_as_sentences() {
        let e = OptionsError::Invalid {
            option: "rate",
            value: "fast".into(),
            expected: "a number".into(),
        };
        assert_eq!(e.to_string(), "option 'rate' must be a number, not 'fast'");
        let e = rampart_repr::Error::from(e);
        assert_eq!(e.sqlstate(), "22023");
        assert_eq!(e.message(), "option 'rate' must be a number, not 'fast'");
        let e = OptionsError::MissingConnector {
            supported: vec!["file", "kafka"],
        };
        assert_eq!(e.to_string(), "missing option 'connector' (one of 'file', 'kafka')");
    }
}
