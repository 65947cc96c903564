//! `tandem import mentors`: an association's staff bring their mentors in from a spreadsheet.
//!
//! The file is UTF-8 CSV with a header row, separated by `;` or `,`; its columns are listed in
//! `docs/import.md`. Every line is checked before anything is stored: with any bad line nothing
//! is imported and each bad line is reported with its number and column. Rows are matched by
//! the association's member number, so importing the same file again changes nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use tandem_proto::{CareerLevel, Format, Industry, Mentor, PublicationConsent, Topic};

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
    /// Mentor records (see `tandem import --help` and the module docs for the columns).
    Mentors,
}

/// The columns of a mentor file: name and whether it must be present.
const MENTOR_COLUMNS: [(&str, bool); 16] = [
    ("member_number", true),
    ("display_name", true),
    ("email", true),
    ("employer_name", true),
    ("employer_registry_number", true),
    ("group_registry_number", false),
    ("title", false),
    ("career_level", true),
    ("years_of_experience", true),
    ("industries", true),
    ("expertise", true),
    ("languages", true),
    ("region", true),
    ("formats", true),
    ("capacity", true),
    ("publication_consent", true),
];

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

/// Reads a mentor file: every valid row as a mentor, or every problem found. A problem with the
/// file as a whole (encoding, header) stops at that problem; otherwise every line is checked.
pub fn parse_mentors(bytes: &[u8]) -> Result<Vec<Mentor>, Vec<LineError>> {
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
    let columns = columns_of(&header).map_err(|e| vec![e])?;

    let mut mentors = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                errors.push(LineError::at(line, None, format!("not valid CSV: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
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
        let cell = |name: &str| columns.get(name).map_or("", |&k| &record[k]);
        match mentor_of(&cell) {
            Ok(mentor) => {
                if let Err(found) = tandem_domain::validate::mentor(&mentor) {
                    // Every wrong field of the line; `mentor.languages[1]` is the column
                    // `languages`.
                    for v in &found {
                        let field = v.field.strip_prefix("mentor.").unwrap_or(&v.field);
                        let column = field.split('[').next().unwrap_or(field);
                        errors.push(LineError::at(line, Some(column), v.description.clone()));
                    }
                } else if mentor.member_number.is_empty() {
                    errors.push(LineError::at(line, Some("member_number"), "is required"));
                } else if let Some(first) = seen.insert(mentor.member_number.clone(), line) {
                    errors.push(LineError::at(
                        line,
                        Some("member_number"),
                        format!("{:?} is also on line {first}", mentor.member_number),
                    ));
                } else {
                    mentors.push(mentor);
                }
            }
            Err((column, message)) => errors.push(LineError::at(line, Some(column), message)),
        }
    }
    if errors.is_empty() {
        Ok(mentors)
    } else {
        Err(errors)
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
fn columns_of(header: &csv::StringRecord) -> Result<HashMap<String, usize>, LineError> {
    let mut columns = HashMap::new();
    for (k, name) in header.iter().enumerate() {
        let name = name.trim().to_ascii_lowercase();
        if !MENTOR_COLUMNS.iter().any(|&(known, _)| known == name) {
            return Err(LineError::at(
                1,
                Some(&name),
                format!(
                    "unknown column; the columns are {}",
                    MENTOR_COLUMNS.map(|(c, _)| c).join(", ")
                ),
            ));
        }
        if columns.insert(name.clone(), k).is_some() {
            return Err(LineError::at(1, Some(&name), "appears twice in the header"));
        }
    }
    let missing: Vec<&str> = MENTOR_COLUMNS
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

/// A cell that cannot be read: its column and why.
type CellError = (&'static str, String);

/// Builds the mentor of one row; the domain's validation runs on it afterwards.
fn mentor_of<'a>(cell: &impl Fn(&str) -> &'a str) -> Result<Mentor, CellError> {
    let number = |column: &'static str| -> Result<u32, CellError> {
        cell(column)
            .parse()
            .map_err(|_| (column, format!("{:?} is not a whole number", cell(column))))
    };
    let consent = match cell("publication_consent").to_ascii_lowercase().as_str() {
        "yes" | "ja" | "granted" | "true" => PublicationConsent::Granted,
        "no" | "nein" | "refused" | "false" => PublicationConsent::Refused,
        other => {
            return Err(("publication_consent", format!("{other:?}: write yes or no")));
        }
    };
    Ok(Mentor {
        member_number: cell("member_number").to_owned(),
        display_name: cell("display_name").to_owned(),
        email: cell("email").to_owned(),
        employer_name: cell("employer_name").to_owned(),
        employer_registry_number: cell("employer_registry_number").to_owned(),
        group_registry_number: cell("group_registry_number").to_owned(),
        title: cell("title").to_owned(),
        career_level: name_of("career_level", cell("career_level"), "CAREER_LEVEL_", |n| {
            CareerLevel::from_str_name(n).map(|v| v as i32)
        })?,
        years_of_experience: number("years_of_experience")?,
        industries: names_of("industries", cell("industries"), "INDUSTRY_", |n| {
            Industry::from_str_name(n).map(|v| v as i32)
        })?,
        expertise: names_of("expertise", cell("expertise"), "TOPIC_", |n| {
            Topic::from_str_name(n).map(|v| v as i32)
        })?,
        languages: list(cell("languages"))
            .map(str::to_ascii_lowercase)
            .collect(),
        region: cell("region").to_ascii_uppercase(),
        formats: names_of("formats", cell("formats"), "FORMAT_", |n| {
            Format::from_str_name(n).map(|v| v as i32)
        })?,
        capacity: number("capacity")?,
        publication_consent: consent as i32,
        ..Mentor::default()
    })
}

fn list(cell: &str) -> impl Iterator<Item = &str> {
    cell.split('|').map(str::trim).filter(|s| !s.is_empty())
}

/// Reads one enumeration value by its name without the prefix, in any case.
fn name_of(
    column: &'static str,
    value: &str,
    prefix: &str,
    parse: impl Fn(&str) -> Option<i32>,
) -> Result<i32, CellError> {
    let upper = value.trim().to_ascii_uppercase().replace(['-', ' '], "_");
    let full = if upper.starts_with(prefix) {
        upper
    } else {
        format!("{prefix}{upper}")
    };
    match parse(&full) {
        Some(0) | None => Err((column, format!("{value:?} is not a known value"))),
        Some(v) => Ok(v),
    }
}

fn names_of(
    column: &'static str,
    cell: &str,
    prefix: &str,
    parse: impl Fn(&str) -> Option<i32> + Copy,
) -> Result<Vec<i32>, CellError> {
    list(cell)
        .map(|value| name_of(column, value, prefix, parse))
        .collect()
}

/// Runs `tandem import`.
pub async fn run(options: ImportOptions) -> anyhow::Result<()> {
    let ImportKind::Mentors = options.what;
    let config = crate::config::load_node(&options.config)?;
    let bytes = read(&options.file)?;
    let mentors = match parse_mentors(&bytes) {
        Ok(mentors) => mentors,
        Err(errors) => {
            for error in &errors {
                eprintln!("{}: {error}", options.file.display());
            }
            anyhow::bail!(
                "{}: {} problem(s) found; nothing was imported",
                options.file.display(),
                errors.len()
            );
        }
    };
    let db = tandem_storage::connect(&config.database_url).await?;
    crate::require_migrated::<tandem_storage::NodeMigrator>(&db, "node").await?;
    let node = tandem_node::NodeState::new(db, &config);
    let report = node
        .import_mentors("cli", &mentors, options.dry_run)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", options.file.display()))?;
    let verb = if options.dry_run {
        "would import"
    } else {
        "imported"
    };
    println!(
        "{verb} {} mentor(s) into node {}: {} created, {} updated, {} unchanged",
        mentors.len(),
        config.node_id,
        report.created,
        report.updated,
        report.unchanged
    );
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "member_number;display_name;email;employer_name;employer_registry_number;\
        career_level;years_of_experience;industries;expertise;languages;region;formats;capacity;\
        publication_consent";

    fn row(member: &str, level: &str) -> String {
        format!(
            "{member};Anna Berg;anna@example.org;Berg GmbH;HRB 1;{level};20;manufacturing;\
             leadership|financing;de|en;DE-BY;remote|hybrid;2;yes"
        )
    }

    #[test]
    fn a_good_file_reads_in_either_separator_and_any_case() {
        let file = format!(
            "{HEADER}\n{}\n{}\n",
            row("M-1", "Director"),
            row("M-2", "head-of-department")
        );
        let mentors = parse_mentors(file.as_bytes()).expect("valid");
        assert_eq!(mentors.len(), 2);
        assert_eq!(mentors[0].career_level, CareerLevel::Director as i32);
        assert_eq!(
            mentors[1].career_level,
            CareerLevel::HeadOfDepartment as i32
        );
        assert_eq!(mentors[0].expertise.len(), 2);
        assert_eq!(
            mentors[0].publication_consent,
            PublicationConsent::Granted as i32
        );
        let commas = file.replace(';', ",");
        assert_eq!(parse_mentors(commas.as_bytes()).expect("valid"), mentors);
    }

    #[test]
    fn every_bad_line_is_named_with_its_column() {
        let file = format!(
            "{HEADER}\n{}\n{}\n{}\n{}\n",
            row("M-1", "director"),
            row("M-2", "wizard"),
            row("M-1", "director"),
            row("M-3", "director").replace("DE-BY", "nowhere")
        );
        let errors = parse_mentors(file.as_bytes()).expect_err("bad lines");
        let lines: Vec<(u64, Option<&str>)> = errors
            .iter()
            .map(|e| (e.line, e.column.as_deref()))
            .collect();
        assert_eq!(
            lines,
            vec![
                (3, Some("career_level")),
                (4, Some("member_number")),
                (5, Some("region"))
            ]
        );
        assert!(
            errors[1].to_string().contains("also on line 2"),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn a_wrong_header_or_a_missing_column_is_refused_at_line_one() {
        let unknown = format!("{HEADER};shoe_size\n");
        let e = parse_mentors(unknown.as_bytes()).expect_err("unknown column");
        assert_eq!(e[0].line, 1);
        assert_eq!(e[0].column.as_deref(), Some("shoe_size"));
        let missing = HEADER.replace(";capacity", "");
        let e = parse_mentors(missing.as_bytes()).expect_err("missing column");
        assert!(e[0].message.contains("capacity"), "{}", e[0]);
    }

    #[test]
    fn bad_utf8_and_overlong_lines_are_named() {
        let mut file = format!("{HEADER}\n{}\n", row("M-1", "director")).into_bytes();
        file.extend_from_slice(b"M-2;Bad \xff name\n");
        let e = parse_mentors(&file).expect_err("bad utf-8");
        assert_eq!((e[0].line, e[0].message.contains("UTF-8")), (3, true));

        let long = format!("{HEADER}\n{}\n", "x".repeat(10 * 1024 * 1024));
        let e = parse_mentors(long.as_bytes()).expect_err("long line");
        assert_eq!(e[0].line, 2);
        assert!(e[0].message.contains("at most"), "{}", e[0]);
    }

    #[test]
    fn a_short_row_and_an_empty_file_are_refused() {
        let file = format!("{HEADER}\nM-1;Anna\n");
        let e = parse_mentors(file.as_bytes()).expect_err("short row");
        assert_eq!(e[0].line, 2);
        assert!(parse_mentors(b"").is_err());
    }
}
