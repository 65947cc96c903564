//! `tandem import`: an association's staff bring their mentors ([`mentors`]) or their member
//! companies ([`companies`]) in from a spreadsheet.
//!
//! A file is UTF-8 CSV with a header row, separated by `;` or `,`; the columns of each kind are
//! listed in `docs/import.md`. Every line is checked before anything is stored: with any bad
//! line nothing is imported and each bad line is reported with its number and column. Rows
//! are matched to what the node holds (mentors by member number, companies by reference or
//! register number), so importing the same file again changes nothing. This module reads the
//! file for both kinds; each kind builds its records from the cells.

mod companies;
mod mentors;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};

pub use companies::parse_companies;
pub use mentors::parse_mentors;

/// Longest line the importer reads, in bytes.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// `tandem import`.
#[derive(Debug, Clone, Args)]
pub struct ImportOptions {
    /// What the file holds.
    pub what: ImportKind,
    /// The node's configuration file (its `database_url` is used).
    #[arg(long)]
    pub config: PathBuf,
    /// Checks every line and says what an import would do, without storing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// The CSV file.
    pub file: PathBuf,
}

/// What an import file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportKind {
    /// Mentor records (see docs/import.md for the columns).
    Mentors,
    /// Member companies, each admitted with a one-time enrolment code (see docs/import.md).
    Companies,
}

/// The columns of a kind of file: name and whether it must be present.
type Columns = [(&'static str, bool)];

/// One problem of an import file, at a line (1-based; the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    /// The column, when the problem is in one.
    pub column: Option<String>,
    pub message: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(column) => write!(f, "line {}, column {column}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

impl LineError {
    fn at(line: u64, column: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            line,
            column: column.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// One data row of a file: its line and its cells, by column name.
struct Row<'a> {
    line: u64,
    record: &'a csv::StringRecord,
    columns: &'a HashMap<String, usize>,
}

impl<'a> Row<'a> {
    /// Returns the cell of a column, empty when the file has no such column.
    fn cell(&self, name: &str) -> &'a str {
        let record: &'a csv::StringRecord = self.record;
        self.columns.get(name).map_or("", |&k| &record[k])
    }
}

/// Reads a file with the given columns: every data row through `build`, which returns the
/// row's record or every problem of its line. Returns each record with its line, or every
/// problem found; a problem with the file as a whole (encoding, line length, header) stops at
/// that problem.
fn read_rows<T>(
    bytes: &[u8],
    known: &Columns,
    mut build: impl FnMut(&Row<'_>) -> Result<T, Vec<LineError>>,
) -> Result<Vec<(u64, T)>, Vec<LineError>> {
    let text = text_of(bytes)?;
    let delimiter = delimiter_of(text.lines().next().unwrap_or_default());
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| {
            vec![LineError::at(
                1,
                None,
                format!("cannot read the header: {e}"),
            )]
        })?
        .clone();
    let columns = columns_of(&header, known).map_err(|e| vec![e])?;

    let mut lines = LineCounter::new(text);
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
                errors.push(LineError::at(line, None, format!("not valid CSV: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
        if record.len() != header.len() {
            errors.push(LineError::at(
                line,
                None,
                format!(
                    "has {} fields, the header has {}",
                    record.len(),
                    header.len()
                ),
            ));
            continue;
        }
        let row = Row {
            line,
            record: &record,
            columns: &columns,
        };
        match build(&row) {
            Ok(value) => rows.push((line, value)),
            Err(found) => errors.extend(found),
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// Numbers the lines of a text as the file has them, blank ones included (the CSV reader's own
/// line numbers skip blank lines); positions are asked for in increasing order.
struct LineCounter<'a> {
    text: &'a [u8],
    byte: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            byte: 0,
            line: 1,
        }
    }

    /// Returns the line of the record that the reader says starts at `byte`: the reader puts
    /// the start of a record after blank lines at the first of them, so they are skipped.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut byte = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        while matches!(self.text.get(byte), Some(b'\n' | b'\r')) {
            byte += 1;
        }
        if byte >= self.byte {
            let newlines = self.text[self.byte..byte].iter().filter(|&&b| b == b'\n');
            self.line += newlines.count() as u64;
            self.byte = byte;
        }
        self.line
    }
}

/// Checks the encoding and the line lengths before the CSV reader sees the file.
fn text_of(bytes: &[u8]) -> Result<&str, Vec<LineError>> {
    let mut errors = Vec::new();
    for (k, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let number = k as u64 + 1;
        if line.len() > MAX_LINE_BYTES {
            errors.push(LineError::at(
                number,
                None,
                format!(
                    "is {} bytes long; lines may have at most {MAX_LINE_BYTES}",
                    line.len()
                ),
            ));
        } else if let Err(e) = std::str::from_utf8(line) {
            errors.push(LineError::at(
                number,
                None,
                format!(
                    "is not UTF-8 (invalid byte at position {})",
                    e.valid_up_to() + 1
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        vec![LineError::at(
            1,
            None,
            format!("the file is not UTF-8: {e}"),
        )]
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(vec![LineError::at(1, None, "the file is empty")]);
    }
    Ok(text)
}

/// Picks the separator the header uses: `;` (as spreadsheets in Germany write) or `,`.
fn delimiter_of(header: &str) -> u8 {
    if header.matches(';').count() > header.matches(',').count() {
        b';'
    } else {
        b','
    }
}

/// Maps column names to their positions; refuses unknown, repeated and missing columns.
fn columns_of(
    header: &csv::StringRecord,
    known: &Columns,
) -> Result<HashMap<String, usize>, LineError> {
    let mut columns = HashMap::new();
    for (k, name) in header.iter().enumerate() {
        let name = name.trim().to_ascii_lowercase();
        if !known.iter().any(|&(column, _)| column == name) {
            let names: Vec<&str> = known.iter().map(|&(column, _)| column).collect();
            return Err(LineError::at(
                1,
                Some(&name),
                format!("unknown column; the columns are {}", names.join(", ")),
            ));
        }
        if columns.insert(name.clone(), k).is_some() {
            return Err(LineError::at(1, Some(&name), "appears twice in the header"));
        }
    }
    let missing: Vec<&str> = known
        .iter()
        .filter(|&&(name, required)| required && !columns.contains_key(name))
        .map(|&(name, _)| name)
        .collect();
    if !missing.is_empty() {
        return Err(LineError::at(
            1,
            None,
            format!("the header lacks the columns {}", missing.join(", ")),
        ));
    }
    Ok(columns)
}

/// Returns the problems the domain's validation found in one row, each at its column:
/// `mentor.languages[1]` is the column `languages`.
fn violations_at(line: u64, prefix: &str, found: &tandem_domain::Violations) -> Vec<LineError> {
    found
        .iter()
        .map(|v| {
            let field = v.field.strip_prefix(prefix).unwrap_or(&v.field);
            let column = field.split('[').next().unwrap_or(field);
            LineError::at(line, Some(column), v.description.clone())
        })
        .collect()
}

/// Runs `tandem import`.
pub async fn run(options: ImportOptions) -> anyhow::Result<()> {
    let config = crate::config::load_node(&options.config)?;
    let bytes = read(&options.file)?;
    let parse_error = |errors: Vec<LineError>| {
        for error in &errors {
            eprintln!("{}: {error}", options.file.display());
        }
        anyhow::anyhow!(
            "{}: {} problem(s) found; nothing was imported",
            options.file.display(),
            errors.len()
        )
    };
    // The file is checked whole before the database is opened.
    let records = match options.what {
        ImportKind::Mentors => Records::Mentors(parse_mentors(&bytes).map_err(parse_error)?),
        ImportKind::Companies => Records::Companies(parse_companies(&bytes).map_err(parse_error)?),
    };
    let db = tandem_storage::connect(&config.database_url).await?;
    crate::require_migrated::<tandem_storage::NodeMigrator>(&db, "node").await?;
    let node = tandem_node::NodeState::new(db, &config);
    match records {
        Records::Mentors(mentors) => mentors::import(&node, &options, &config, &mentors).await,
        Records::Companies(rows) => companies::import(&node, &options, &config, &rows).await,
    }
}

/// The records of a file that passed every check.
enum Records {
    Mentors(Vec<tandem_proto::Mentor>),
    /// Each company with its line.
    Companies(Vec<(u64, tandem_proto::Company)>),
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Returns the word for what a run did.
fn verb(dry_run: bool) -> &'static str {
    if dry_run { "would import" } else { "imported" }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [(&str, bool); 2] = [("name", true), ("note", false)];

    fn names(bytes: &[u8]) -> Result<Vec<(u64, String)>, Vec<LineError>> {
        read_rows(bytes, &COLUMNS, |row| Ok(row.cell("name").to_owned()))
    }

    #[test]
    fn rows_carry_their_lines_in_either_separator() {
        let rows = names(b"name;note\nAnna;x\n\nBen;\n").expect("valid");
        assert_eq!(rows, [(2, "Anna".to_owned()), (4, "Ben".to_owned())]);
        assert_eq!(
            names(b"\xef\xbb\xbfname,note\nAnna,x\n").expect("bom"),
            [(2, "Anna".to_owned())]
        );
    }

    #[test]
    fn a_wrong_header_or_a_missing_column_is_refused_at_line_one() {
        let e = names(b"name;shoe_size\n").expect_err("unknown column");
        assert_eq!((e[0].line, e[0].column.as_deref()), (1, Some("shoe_size")));
        assert!(
            e[0].message.contains("the columns are name, note"),
            "{}",
            e[0]
        );
        let e = names(b"note\n").expect_err("missing column");
        assert!(e[0].message.contains("lacks the columns name"), "{}", e[0]);
        let e = names(b"name;name\n").expect_err("twice");
        assert!(e[0].message.contains("twice"), "{}", e[0]);
    }

    #[test]
    fn bad_utf8_overlong_and_short_lines_are_named() {
        let e = names(b"name;note\nAnna;x\nB\xffn;y\n").expect_err("bad utf-8");
        assert_eq!((e[0].line, e[0].message.contains("UTF-8")), (3, true));
        let long = format!("name;note\n{};x\n", "x".repeat(10 * 1024 * 1024));
        let e = names(long.as_bytes()).expect_err("long line");
        assert_eq!(e[0].line, 2);
        assert!(e[0].message.contains("at most"), "{}", e[0]);
        let e = names(b"name;note\nAnna\n").expect_err("short row");
        assert_eq!(e[0].line, 2);
        let e = names(b"name;note\r\n\r\n\nAnna\n").expect_err("after blank lines");
        assert_eq!(e[0].line, 4, "blank lines count");
        assert!(names(b"").is_err());
    }
}
