//! Saying what is wrong with a scenario file where the user wrote it: each problem at its line
//! and column, in the file's own words (TOML keys, "a whole number ≥ 0" rather than `u32`),
//! with a "did you mean" for a misspelt key, fault kind or policy.

use std::fmt;

/// Where a problem is in the file (1-based), when it can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line.
    pub line: usize,
    /// Column.
    pub column: usize,
}

/// One problem of a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where it is; `None` when the value is a default (not written) or the file is not TOML.
    pub at: Option<Position>,
    /// What is wrong, naming the key (`faults[1].scheduler`, `cluster.nodes`).
    pub message: String,
    /// What to change, when it can be said.
    pub hint: Option<String>,
}

impl Problem {
    /// Writes the problem as `PATH:LINE:COLUMN: invalid scenario: message`, its hint on the
    /// next line.
    pub(super) fn write(&self, f: &mut fmt::Formatter<'_>, path: &str) -> fmt::Result {
        match self.at {
            Some(p) => write!(
                f,
                "{path}:{}:{}: invalid scenario: {}",
                p.line, p.column, self.message
            )?,
            None => write!(f, "{path}: invalid scenario: {}", self.message)?,
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n    hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem of a file, one a line.
pub(super) struct Listed<'a> {
    pub(super) path: &'a str,
    pub(super) problems: &'a [Problem],
}

impl fmt::Display for Listed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            problem.write(f, self.path)?;
        }
        Ok(())
    }
}

/// Which table a key is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Section {
    /// Before any `[table]` header.
    Top,
    /// `[name]`.
    Table(String),
    /// The `index`-th `[[faults]]` (0-based).
    Fault(usize),
}

/// The positions of a TOML scenario's tables and keys, from its text (line by line: headers
/// `[name]` and `[[faults]]`, and `key = value` lines). Keys written in inline tables are not
/// found, and their problems are reported without a position.
#[derive(Debug, Default)]
pub(super) struct Locator {
    /// `(section, key, position)` for every `key =` line.
    keys: Vec<(Section, String, Position)>,
    /// The line of each `[[faults]]` header.
    faults: Vec<usize>,
}

impl Locator {
    pub(super) fn new(text: &str) -> Self {
        let mut located = Self::default();
        let mut section = Section::Top;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim_start();
            let column = raw.len() - trimmed.len() + 1;
            let content = trimmed.split('#').next().unwrap_or("").trim_end();
            if let Some(name) = content
                .strip_prefix("[[")
                .and_then(|r| r.strip_suffix("]]"))
            {
                section = if name.trim() == "faults" {
                    located.faults.push(line);
                    Section::Fault(located.faults.len() - 1)
                } else {
                    Section::Table(name.trim().to_string())
                };
            } else if let Some(name) = content.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                section = Section::Table(name.trim().to_string());
            } else if let Some((key, _)) = content.split_once('=') {
                let key = key.trim().trim_matches('"');
                if !key.is_empty() {
                    located.keys.push((
                        section.clone(),
                        key.to_string(),
                        Position { line, column },
                    ));
                }
            }
        }
        located
    }

    /// Where `key` is written in `section`.
    pub(super) fn key(&self, section: &Section, key: &str) -> Option<Position> {
        self.keys
            .iter()
            .find(|(s, k, _)| s == section && k == key)
            .map(|(_, _, p)| *p)
    }

    /// Where `key` is first written, in any table but the faults.
    pub(super) fn any_key(&self, key: &str) -> Option<Position> {
        self.keys
            .iter()
            .find(|(s, k, _)| !matches!(s, Section::Fault(_)) && k == key)
            .map(|(_, _, p)| *p)
    }

    /// Where the `index`-th `[[faults]]` header is.
    pub(super) fn fault(&self, index: usize) -> Option<Position> {
        self.faults
            .get(index)
            .map(|&line| Position { line, column: 1 })
    }

    /// Where the field a validation message names is (`faults[1].duration_s`, `cluster.nodes`,
    /// `heal_s`): its key, else its fault's header.
    pub(super) fn field(&self, field: &str) -> Option<Position> {
        if let Some(rest) = field.strip_prefix("faults[") {
            let (index, key) = rest.split_once("].")?;
            let index: usize = index.parse().ok()?;
            return self
                .key(&Section::Fault(index), key)
                .or_else(|| self.fault(index));
        }
        match field.split_once('.') {
            Some((table, key)) => self.key(&Section::Table(table.to_string()), key),
            None => self.key(&Section::Top, field),
        }
    }
}

/// The closest of `known` to `typed`, when it is close enough to be a typo.
pub(super) fn did_you_mean<'a>(
    typed: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let typed_norm = typed.to_ascii_lowercase().replace('-', "_");
    known
        .into_iter()
        .map(|k| (edit_distance(&typed_norm, &k.replace('-', "_")), k))
        .filter(|&(d, k)| d <= (k.len() / 3).max(1))
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance between two strings, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// A deserializer's message in the file's words: Rust type names become what they mean.
pub(super) fn plain(message: &str) -> String {
    let mut out = message.trim().to_string();
    for (rust, user) in [
        ("expected u8", "expected a whole number ≥ 0"),
        ("expected u16", "expected a whole number ≥ 0"),
        ("expected u32", "expected a whole number ≥ 0"),
        ("expected u64", "expected a whole number ≥ 0"),
        ("expected usize", "expected a whole number ≥ 0"),
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected f32", "expected a number"),
        ("expected f64", "expected a number"),
        ("floating point", "number"),
        ("invalid type: ", "wrong type: found "),
        ("invalid value: ", "out of range: found "),
    ] {
        out = out.replace(rust, user);
    }
    out
}

/// The backquoted names of a serde message (``unknown field `x`, expected one of `a`, `b` ``):
/// the first is what was written, the rest what is known.
pub(super) fn quoted(message: &str) -> Vec<&str> {
    message.split('`').skip(1).step_by(2).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_finds_typos_and_the_other_spelling() {
        let kinds = ["sigterm_storm", "partition", "crash_scheduler"];
        assert_eq!(did_you_mean("sigterm-storm", kinds), Some("sigterm_storm"));
        assert_eq!(did_you_mean("partiton", kinds), Some("partition"));
        assert_eq!(did_you_mean("meteor", kinds), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn the_locator_finds_each_fault_and_key() {
        let l = Locator::new("heal_s = 1\n[cluster]\n  nodes = 2 # n\n[[faults]]\nkind = \"a\"\n[[faults]]\nat_s = 3\n");
        assert_eq!(l.field("heal_s"), Some(Position { line: 1, column: 1 }));
        assert_eq!(
            l.field("cluster.nodes"),
            Some(Position { line: 3, column: 3 })
        );
        assert_eq!(
            l.field("faults[1].at_s"),
            Some(Position { line: 7, column: 1 })
        );
        assert_eq!(
            l.field("faults[0].at_s"),
            Some(Position { line: 4, column: 1 })
        );
        assert_eq!(l.field("schedulers"), None);
    }

    #[test]
    fn rust_type_names_become_the_users_words() {
        assert_eq!(
            plain("invalid value: integer `-1`, expected u32"),
            "out of range: found integer `-1`, expected a whole number ≥ 0"
        );
    }
}
