//! `tandem import mentors`: mentor records, matched by the association's member number, so
//! that a changed row updates that mentor and an unchanged one is left alone.

use std::collections::HashMap;

use tandem_proto::{CareerLevel, Format, Industry, Mentor, PublicationConsent, Topic};

use super::{ImportOptions, LineError, Row, read_rows, verb, violations_at};

/// The columns of a mentor file: name and whether it must be present.
const COLUMNS: [(&str, bool); 16] = [
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

/// Reads a mentor file: every valid row as a mentor, or every problem found. A problem with the
/// file as a whole (encoding, header) stops at that problem; otherwise every line is checked.
pub fn parse_mentors(bytes: &[u8]) -> Result<Vec<Mentor>, Vec<LineError>> {
    let mut seen: HashMap<String, u64> = HashMap::new();
    let rows = read_rows(bytes, &COLUMNS, |row| {
        let mentor = mentor_of(row)
            .map_err(|(column, message)| vec![LineError::at(row.line, Some(column), message)])?;
        if let Err(found) = tandem_domain::validate::mentor(&mentor) {
            return Err(violations_at(row.line, "mentor.", &found));
        }
        if mentor.member_number.is_empty() {
            return Err(vec![LineError::at(
                row.line,
                Some("member_number"),
                "is required",
            )]);
        }
        if let Some(first) = seen.insert(mentor.member_number.clone(), row.line) {
            return Err(vec![LineError::at(
                row.line,
                Some("member_number"),
                format!("{:?} is also on line {first}", mentor.member_number),
            )]);
        }
        Ok(mentor)
    })?;
    Ok(rows.into_iter().map(|(_, mentor)| mentor).collect())
}

/// A cell that cannot be read: its column and why.
type CellError = (&'static str, String);

/// Builds the mentor of one row; the domain's validation runs on it afterwards.
fn mentor_of(row: &Row<'_>) -> Result<Mentor, CellError> {
    let cell = |name: &str| row.cell(name);
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

/// Imports the mentors of a checked file and says what changed.
pub(super) async fn import(
    node: &tandem_node::NodeState,
    options: &ImportOptions,
    config: &tandem_node::NodeConfig,
    mentors: &[Mentor],
) -> anyhow::Result<()> {
    let report = node
        .import_mentors("cli", mentors, options.dry_run)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", options.file.display()))?;
    println!(
        "{} {} mentor(s) into node {}: {} created, {} updated, {} unchanged",
        verb(options.dry_run),
        mentors.len(),
        config.node_id,
        report.created,
        report.updated,
        report.unchanged
    );
    Ok(())
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
