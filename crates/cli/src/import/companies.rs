//! `tandem import companies`: member companies, each admitted with a one-time enrolment code.
//! Rows are matched to the node's current members by reference, else by register number; a
//! member already admitted with the same record is left alone (no new code), and a row that
//! would change a member refuses the import, as an import does not change companies.

use std::collections::HashMap;

use tandem_domain::pseudonym::normalise_registry_number;
use tandem_node::NodeError;
use tandem_proto::Company;

use super::{ImportOptions, LineError, read_rows, verb, violations_at};

/// The columns of a company file: name and whether it must be present.
const COLUMNS: [(&str, bool); 4] = [
    ("legal_name", true),
    ("register_number", true),
    ("group_register_number", false),
    ("reference", false),
];

/// Reads a company file: every valid row as a company with its line, or every problem found
/// (also two rows with the same register number, in any spelling, or the same reference). A
/// problem with the file as a whole (encoding, header) stops at that problem.
pub fn parse_companies(bytes: &[u8]) -> Result<Vec<(u64, Company)>, Vec<LineError>> {
    let mut registers: HashMap<String, u64> = HashMap::new();
    let mut references: HashMap<String, u64> = HashMap::new();
    read_rows(bytes, &COLUMNS, |row| {
        let company = Company {
            legal_name: row.cell("legal_name").to_owned(),
            register_number: row.cell("register_number").to_owned(),
            group_register_number: row.cell("group_register_number").to_owned(),
            reference: row.cell("reference").to_owned(),
            ..Company::default()
        };
        let record = tandem_domain::validate::company(&company)
            .map_err(|found| violations_at(row.line, "company.", &found))?;
        let mut errors = Vec::new();
        let key = normalise_registry_number(&record.register_number);
        if let Some(first) = registers.insert(key, row.line) {
            errors.push(LineError::at(
                row.line,
                Some("register_number"),
                format!("{:?} is also on line {first}", record.register_number),
            ));
        }
        if !record.reference.is_empty()
            && let Some(first) = references.insert(record.reference.clone(), row.line)
        {
            errors.push(LineError::at(
                row.line,
                Some("reference"),
                format!("{:?} is also on line {first}", record.reference),
            ));
        }
        if errors.is_empty() {
            Ok(company)
        } else {
            Err(errors)
        }
    })
}

/// Names the file's lines in a refusal of the node, which counts the companies from 0:
/// `companies[k].reference` becomes `line N, column reference`.
fn with_lines(message: &str, lines: &[u64]) -> String {
    let mut message = message.to_owned();
    for (k, line) in lines.iter().enumerate() {
        let at = format!("companies[{k}].");
        if message.contains(&at) {
            message = message.replace(&at, &format!("line {line}, column "));
        }
    }
    message
}

/// Admits the new companies of a checked file and prints, this once, each one's enrolment
/// code.
pub(super) async fn import(
    node: &tandem_node::NodeState,
    options: &ImportOptions,
    config: &tandem_node::NodeConfig,
    rows: &[(u64, Company)],
) -> anyhow::Result<()> {
    let (lines, companies): (Vec<u64>, Vec<Company>) = rows.iter().cloned().unzip();
    let file = options.file.display();
    let report = match node
        .import_companies("cli", &companies, options.dry_run)
        .await
    {
        Ok(report) => report,
        Err(err @ (NodeError::Conflict(_) | NodeError::Invalid(_))) => {
            let message = with_lines(&err.to_string(), &lines);
            for problem in message.split("; ") {
                eprintln!("{file}: {problem}");
            }
            anyhow::bail!("{file}: the node refused the import; nothing was imported");
        }
        Err(err) => anyhow::bail!("{file}: {err}"),
    };
    println!(
        "{} {} compan{} into node {}: {} admitted, {} unchanged",
        verb(options.dry_run),
        companies.len(),
        if companies.len() == 1 { "y" } else { "ies" },
        config.node_id,
        report.admitted(),
        report.unchanged()
    );
    if options.dry_run || report.admitted() == 0 {
        return Ok(());
    }
    println!(
        "the enrolment codes are shown only this once (the node keeps only their hashes); \
         hand each company its code:"
    );
    println!("reference\tlegal_name\tcompany_id\tenrolment_code");
    for admitted in report.companies.iter().filter(|c| c.admitted) {
        println!(
            "{}\t{}\t{}\t{}",
            admitted.reference, admitted.legal_name, admitted.company_id, admitted.enrolment_code
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "legal_name;register_number;group_register_number;reference";

    #[test]
    fn a_good_file_reads_with_its_lines_and_optional_columns() {
        let file = format!(
            "{HEADER}\nMuster GmbH;HRB 1 München;;M-1\nBeispiel AG;HRB 2 Berlin;HRB 9 Berlin;\n"
        );
        let rows = parse_companies(file.as_bytes()).expect("valid");
        let read: Vec<(u64, &str, &str, &str)> = rows
            .iter()
            .map(|(line, c)| {
                (
                    *line,
                    c.legal_name.as_str(),
                    c.group_register_number.as_str(),
                    c.reference.as_str(),
                )
            })
            .collect();
        assert_eq!(
            read,
            [
                (2, "Muster GmbH", "", "M-1"),
                (3, "Beispiel AG", "HRB 9 Berlin", "")
            ]
        );
        let short = "legal_name,register_number\nMuster GmbH,HRB 1\n";
        assert_eq!(parse_companies(short.as_bytes()).expect("valid").len(), 1);
    }

    #[test]
    fn every_bad_line_is_named_with_its_column() {
        let file = format!(
            "{HEADER}\nMuster GmbH;HRB 1;;M-1\n;HRB 2;;\nKurz KG;hrb1;;M-3\nLang AG;HRB 4;;M-1\n\
             Leer AG; - ;;\n"
        );
        let errors = parse_companies(file.as_bytes()).expect_err("bad lines");
        let lines: Vec<(u64, Option<&str>)> = errors
            .iter()
            .map(|e| (e.line, e.column.as_deref()))
            .collect();
        assert_eq!(
            lines,
            [
                (3, Some("legal_name")),
                (4, Some("register_number")),
                (5, Some("reference")),
                (6, Some("register_number")),
            ]
        );
        assert!(
            errors[1].to_string().contains("also on line 2"),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn a_refusal_of_the_node_names_the_lines() {
        let message = "companies[1].reference: already admitted; companies[10].register_number: \
                       already admitted";
        let lines: Vec<u64> = (2..14).collect();
        assert_eq!(
            with_lines(message, &lines),
            "line 3, column reference: already admitted; line 12, column register_number: \
             already admitted"
        );
    }
}
