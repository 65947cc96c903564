//! The tandem-arcs format: the plain-text instance format of `tandem solve` and
//! `tandem bench match --export-arcs`:
//!
//! ```text
//! # comment lines start with '#'
//! <mentees> <mentors> <arcs>
//! <cap_0> <cap_1> ... <cap_{mentors-1}>
//! <mentee> <mentor> <weight>        (one line per arc, 0-based, weight 1..=1000000)
//! ```
//!
//! A mentee is an agent, a mentor a target and an arc an [`Edge`] (the file keeps the words of
//! Tandem's matching rounds, where it comes from). [`write_instance`] writes the header, the
//! capacities and one line per edge, without comments; [`read_instance`] also takes comment and
//! blank lines, and refuses, with the line number, a file whose numbers disagree with its
//! header, an out-of-range agent, target or weight, and a pair listed twice.

use std::collections::HashSet;
use std::fmt;
use std::io::{self, BufRead, Write};

use crate::{Assignment, Edge, Instance};

/// Largest weight an arc may carry.
pub const MAX_WEIGHT: i64 = 1_000_000;

/// What is wrong with an instance file, and on which line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

fn numbers<T: std::str::FromStr>(
    line: usize,
    text: &str,
    what: &str,
) -> Result<Vec<T>, ParseError> {
    text.split_ascii_whitespace()
        .map(|t| {
            t.parse()
                .map_err(|_| err(line, format!("{what}: {t:?} is not a valid number")))
        })
        .collect()
}

/// Reads an instance, refusing malformed input with the line number.
pub fn read_instance(input: impl BufRead) -> Result<Instance, ParseError> {
    let mut header: Option<(usize, usize, usize)> = None;
    let mut instance = Instance::default();
    let mut seen = HashSet::new();
    let mut last_line = 0;
    let mut caps_read = false;
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        last_line = number;
        let line = line.map_err(|e| err(number, format!("cannot read: {e}")))?;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let Some((mentees, mentors, arcs)) = header else {
            let h: Vec<usize> = numbers(number, text, "header")?;
            let [mentees, mentors, arcs] = h[..] else {
                return Err(err(
                    number,
                    format!(
                        "header needs 3 numbers (mentees mentors arcs), found {}",
                        h.len()
                    ),
                ));
            };
            header = Some((mentees, mentors, arcs));
            instance.agents = mentees;
            // With no mentors the capacities line is empty, and empty lines are skipped.
            caps_read = mentors == 0;
            instance.edges.reserve(arcs.min(50_000_000));
            continue;
        };
        if !caps_read {
            let caps: Vec<u32> = numbers(number, text, "capacities")?;
            if caps.len() != mentors {
                return Err(err(
                    number,
                    format!("expected {mentors} capacities, found {}", caps.len()),
                ));
            }
            instance.capacities = caps;
            caps_read = true;
            continue;
        }
        let fields: Vec<i64> = numbers(number, text, "arc")?;
        let [mentee, mentor, weight] = fields[..] else {
            return Err(err(
                number,
                format!(
                    "an arc needs 3 numbers (mentee mentor weight), found {}",
                    fields.len()
                ),
            ));
        };
        if instance.edges.len() == arcs {
            return Err(err(
                number,
                format!("more arcs than the {arcs} the header declares"),
            ));
        }
        if mentee < 0 || mentee as usize >= mentees {
            return Err(err(
                number,
                format!("mentee {mentee} out of range 0..{mentees}"),
            ));
        }
        if mentor < 0 || mentor as usize >= mentors {
            return Err(err(
                number,
                format!("mentor {mentor} out of range 0..{mentors}"),
            ));
        }
        if !(1..=MAX_WEIGHT).contains(&weight) {
            return Err(err(
                number,
                format!("weight {weight} out of range 1..={MAX_WEIGHT}"),
            ));
        }
        if !seen.insert((mentee as u32, mentor as u32)) {
            return Err(err(number, format!("duplicate arc {mentee} {mentor}")));
        }
        instance.edges.push(Edge {
            agent: mentee as u32,
            target: mentor as u32,
            weight,
        });
    }
    let Some((_, _, arcs)) = header else {
        return Err(err(
            last_line.max(1),
            "missing header line (mentees mentors arcs)",
        ));
    };
    if !caps_read {
        return Err(err(last_line.max(1), "missing capacities line"));
    }
    if instance.edges.len() != arcs {
        return Err(err(
            last_line.max(1),
            format!(
                "the header declares {arcs} arcs but the file has {}",
                instance.edges.len()
            ),
        ));
    }
    Ok(instance)
}

/// Writes an instance in the same format.
pub fn write_instance(instance: &Instance, mut out: impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{} {} {}",
        instance.agents,
        instance.capacities.len(),
        instance.edges.len()
    )?;
    let caps: Vec<String> = instance.capacities.iter().map(u32::to_string).collect();
    writeln!(out, "{}", caps.join(" "))?;
    for a in &instance.edges {
        writeln!(out, "{} {} {}", a.agent, a.target, a.weight)?;
    }
    out.flush()
}

/// Writes one `<mentee> <mentor>` line (agent and target) per matched pair.
pub fn write_assignment(assignment: &Assignment, mut out: impl Write) -> io::Result<()> {
    for (i, j) in &assignment.pairs {
        writeln!(out, "{i} {j}")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Instance, ParseError> {
        read_instance(text.as_bytes())
    }

    #[test]
    fn reads_comments_and_arcs() {
        let i = parse("# demo\n2 1 2\n1\n0 0 5\n1 0 7\n").expect("valid");
        assert_eq!(i.agents, 2);
        assert_eq!(i.capacities, vec![1]);
        assert_eq!(crate::solve(&i).objective, 7);
    }

    #[test]
    fn round_trips() {
        let i = parse("2 2 3\n1 2\n0 0 5\n1 0 7\n1 1 3\n").expect("valid");
        let mut out = Vec::new();
        write_instance(&i, &mut out).expect("write");
        assert_eq!(
            parse(std::str::from_utf8(&out).expect("utf8")).expect("again"),
            i
        );
    }

    #[test]
    fn names_the_line_of_bad_input() {
        let cases = [
            ("2 1 2\n1\n0 0 5\n", 3, "declares 2 arcs"),
            ("2 1 1\n1 1\n0 0 5\n", 2, "expected 1 capacities"),
            ("2 1 1\n1\n2 0 5\n", 3, "mentee 2 out of range"),
            ("2 1 1\n1\n0 1 5\n", 3, "mentor 1 out of range"),
            ("2 1 1\n1\n0 0 0\n", 3, "weight 0 out of range"),
            ("2 1 1\n1\n0 0 1000001\n", 3, "out of range"),
            ("2 1 2\n1\n0 0 5\n# again\n0 0 6\n", 5, "duplicate arc 0 0"),
            ("2 1 1\n1\n0 0 5\n1 0 5\n", 4, "more arcs"),
            ("2 x 1\n", 1, "not a valid number"),
            ("", 1, "missing header"),
        ];
        for (text, line, message) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(message), "{text:?}: {e}");
        }
    }
}
