//! Every connector's options table ([`tables`]) and its markdown. The pages under
//! `docs/connectors/` hold each table between `<!-- options:KEY -->` and `<!-- /options -->`
//! markers; a test checks that the pages show exactly the tables the code parses with, and
//! `RAMPART_BLESS_DOCS=1 cargo test -p rampart-connectors` rewrites them.

use crate::file::{FileSinkOptions, FileSourceOptions};
use crate::generator::GeneratorOptions;
use crate::kafka::{KafkaSinkOptions, KafkaSourceOptions};
use crate::options::{ConnectorOptions, OptionDoc, OptionKind};
use crate::stdout::StdoutSinkOptions;

/// One connector's options table and the page that shows it.
#[derive(Debug, Clone, Copy)]
pub struct OptionsTable {
    /// The page under `docs/connectors/`.
    pub page: &'static str,
    /// The table's marker key on that page (`kafka-source`).
    pub key: &'static str,
    /// The names `connector = '...'` accepts.
    pub connectors: &'static [&'static str],
    /// The options besides `connector`.
    pub options: &'static [OptionDoc],
}

impl OptionsTable {
    fn of<T: ConnectorOptions>(page: &'static str, key: &'static str) -> Self {
        OptionsTable {
            page,
            key,
            connectors: T::CONNECTORS,
            options: T::OPTIONS,
        }
    }

    /// The table in markdown: a row for `connector`, then one per option.
    pub fn markdown(&self) -> String {
        let mut out = String::from("| option | type | default | description |\n|---|---|---|---|\n");
        let connectors: Vec<String> = self.connectors.iter().map(|c| format!("`'{c}'`")).collect();
        out.push_str(&format!(
            "| `connector` | text | required | {} |\n",
            connectors.join(" or ")
        ));
        for o in self.options {
            let names: Vec<String> = std::iter::once(&o.name)
                .chain(o.aliases)
                .map(|n| format!("`{n}`"))
                .collect();
            let default = match o.kind {
                OptionKind::Required => "required".to_string(),
                OptionKind::Default(d) => format!("`'{d}'`"),
                OptionKind::Optional => "not set".to_string(),
                OptionKind::Prefix => String::new(),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                names.join(" or "),
                cell(o.ty),
                cell(&default),
                cell(&o.description())
            ));
        }
        out
    }

    /// The marker that opens the table on its page.
    pub fn start_marker(&self) -> String {
        format!("<!-- options:{} -->", self.key)
    }
}

/// The marker that closes every table.
pub const END_MARKER: &str = "<!-- /options -->";

/// Text for a table cell: a `|` would end the cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Every connector's options table.
pub fn tables() -> [OptionsTable; 6] {
    [
        OptionsTable::of::<FileSourceOptions>("file.md", "file-source"),
        OptionsTable::of::<GeneratorOptions>("generator.md", "generator-source"),
        OptionsTable::of::<KafkaSourceOptions>("kafka.md", "kafka-source"),
        OptionsTable::of::<KafkaSinkOptions>("kafka.md", "kafka-sink"),
        OptionsTable::of::<FileSinkOptions>("file-sink.md", "file-sink"),
        OptionsTable::of::<StdoutSinkOptions>("stdout.md", "stdout-sink"),
    ]
}

/// `page` with `table` rendered between its markers, or why the page has no place for it.
pub fn with_table(page: &str, table: &OptionsTable) -> Result<String, String> {
    let start = table.start_marker();
    let begin = page
        .find(&start)
        .ok_or_else(|| format!("no `{start}` ... `{END_MARKER}` block for the {} table", table.key))?
        + start.len();
    let end = page[begin..]
        .find(END_MARKER)
        .ok_or_else(|| format!("`{start}` has no `{END_MARKER}` after it"))?
        + begin;
    Ok(format!("{}\n{}{}", &page[..begin], table.markdown(), &page[end..]))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fmt::Debug;
    use std::path::PathBuf;

    use super::*;
    use crate::options::OptionsError;

    fn docs_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/connectors")
    }

    /// The pages show the tables the code parses with. With `RAMPART_BLESS_DOCS` set, the
    /// tables on the pages are rewritten instead (the markers must be there already).
    #[test]
    fn connector_pages_show_the_option_tables() {
        let bless = std::env::var_os("RAMPART_BLESS_DOCS").is_some();
        let dir = docs_dir();
        let tables = tables();
        let mut problems = Vec::new();
        let mut pages: Vec<&str> = tables.iter().map(|t| t.page).collect();
        pages.sort_unstable();
        pages.dedup();
        for page in pages {
            let path = dir.join(page);
            let shown = format!("docs/connectors/{page}");
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) => {
                    problems.push(format!("{shown}: cannot read it ({e})"));
                    continue;
                }
            };
            let mut updated = text.clone();
            for table in tables.iter().filter(|t| t.page == page) {
                match with_table(&updated, table) {
                    Ok(t) => updated = t,
                    Err(e) => problems.push(format!("{shown}: {e}")),
                }
            }
            if updated != text {
                if bless {
                    std::fs::write(&path, &updated).expect("the page is writable");
                } else {
                    problems.push(format!("{shown}: an options table differs from the code"));
                }
            }
        }
        // Every table on a page is one of the code's.
        for entry in std::fs::read_dir(&dir).expect("docs/connectors exists") {
            let path = entry.expect("readable").path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for (i, _) in text.match_indices("<!-- options:") {
                let key = text[i + "<!-- options:".len()..].split(" -->").next().unwrap_or("");
                let page = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if !tables.iter().any(|t| t.key == key && t.page == page) {
                    problems.push(format!(
                        "docs/connectors/{page}: no options table '{key}' belongs on this page"
                    ));
                }
            }
        }
        assert!(
            problems.is_empty(),
            "{}\nRun `RAMPART_BLESS_DOCS=1 cargo test -p rampart-connectors` to regenerate the tables \
             (a missing page or marker has to be added by hand first).",
            problems.join("\n")
        );
    }

    #[test]
    fn a_table_is_replaced_between_its_markers_only() {
        let table = tables()[0];
        let page = format!("intro\n{}\nold\n{END_MARKER}\nafter\n", table.start_marker());
        let new = with_table(&page, &table).unwrap();
        assert_eq!(
            new,
            format!(
                "intro\n{}\n{}{END_MARKER}\nafter\n",
                table.start_marker(),
                table.markdown()
            )
        );
        assert_eq!(
            with_table(&new, &table).unwrap(),
            new,
            "rendering twice changes nothing"
        );
        assert!(with_table("no markers", &table).unwrap_err().contains("file-source"));
    }

    #[test]
    fn markdown_rows_show_aliases_defaults_and_escape_pipes() {
        let kafka = tables().into_iter().find(|t| t.key == "kafka-source").unwrap();
        let md = kafka.markdown();
        assert!(md.contains(
            "| `properties.bootstrap.server` or `properties.bootstrap.servers` | host:port list | required |"
        ));
        assert!(md.contains("| `scan.watermark.idle-timeout` | duration ('500 ms', '2 s', '1 min') | `'2 s'` |"));
        let generator = tables().into_iter().find(|t| t.key == "generator-source").unwrap();
        assert!(generator
            .markdown()
            .contains("| `connector` | text | required | `'generator'` or `'datagen'` |"));
        assert_eq!(cell("a | b"), "a \\| b");
    }

    /// A value for each required option, to parse a table's defaults with.
    fn sample(option: &str) -> &'static str {
        match option {
            "path" => "/tmp/rampart/events.jsonl",
            "kind" => "auth",
            "topic" => "events",
            "properties.bootstrap.server" => "127.0.0.1:9092",
            other => panic!("give required option '{other}' a sample value"),
        }
    }

    /// `connector` and every required option of `T`.
    fn required<T: ConnectorOptions>() -> BTreeMap<String, String> {
        let mut with: BTreeMap<String, String> = [("connector".to_string(), T::CONNECTORS[0].to_string())].into();
        for o in T::OPTIONS.iter().filter(|o| o.kind == OptionKind::Required) {
            with.insert(o.name.to_string(), sample(o.name).to_string());
        }
        with
    }

    /// `T` parses with only its required options; giving a defaulted option its documented
    /// default changes nothing; an unknown option is refused with every allowed name; a
    /// missing required option is named.
    fn check_table<T: ConnectorOptions + PartialEq + Debug>() {
        let base = T::from_with(&required::<T>()).unwrap_or_else(|e| panic!("{}: {e}", T::WHAT));
        for o in T::OPTIONS {
            if let OptionKind::Default(default) = o.kind {
                let mut with = required::<T>();
                with.insert(o.name.to_string(), default.to_string());
                assert_eq!(
                    T::from_with(&with).unwrap(),
                    base,
                    "{}: '{}' documents default '{default}'",
                    T::WHAT,
                    o.name
                );
            }
        }
        let mut with = required::<T>();
        with.insert("no_such_option".into(), "1".into());
        let e = T::from_with(&with).unwrap_err();
        assert_eq!(
            e,
            OptionsError::Unknown {
                what: T::WHAT,
                option: "no_such_option".into(),
                allowed: T::allowed(),
            }
        );
        let message = e.to_string();
        for o in T::OPTIONS {
            assert!(message.contains(o.name), "{message} names '{}'", o.name);
        }
        for o in T::OPTIONS.iter().filter(|o| o.kind == OptionKind::Required) {
            let mut with = required::<T>();
            with.remove(o.name);
            let e = T::from_with(&with).unwrap_err();
            assert!(
                matches!(e, OptionsError::Missing { option, .. } if option == o.name),
                "{}: {e}",
                T::WHAT
            );
        }
    }

    #[test]
    fn every_table_parses_its_defaults_and_refuses_unknown_options() {
        check_table::<FileSourceOptions>();
        check_table::<FileSinkOptions>();
        check_table::<GeneratorOptions>();
        check_table::<KafkaSourceOptions>();
        check_table::<KafkaSinkOptions>();
        check_table::<StdoutSinkOptions>();
    }

    #[test]
    fn every_option_has_a_description() {
        for t in tables() {
            for o in t.options {
                assert!(
                    !o.description().is_empty(),
                    "{}: '{}' has no doc comment",
                    t.key,
                    o.name
                );
            }
        }
    }
}
