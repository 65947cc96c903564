//! `tandem import mentors` and `tandem import companies`: the real binary, a real file, a real
//! node database. A file with bad lines imports nothing and names each line; a good file
//! imports once, and again changes nothing; a dry run stores nothing. A company import shows
//! each new member's enrolment code once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tandem_proto::{PublicationConsent, PublicationState};

const HEADER: &str = "member_number;display_name;email;employer_name;employer_registry_number;\
    group_registry_number;title;career_level;years_of_experience;industries;expertise;languages;\
    region;formats;capacity;publication_consent";

fn row(member: &str, name: &str, level: &str, consent: &str) -> String {
    format!(
        "{member};{name};{member}@example.org;Berg GmbH;HRB {member};;Partner;{level};22;\
         manufacturing;leadership|financing;de|en;DE-BY;remote;2;{consent}"
    )
}

struct Node {
    dir: tempfile::TempDir,
    config: PathBuf,
    url: String,
}

impl Node {
    fn migrated() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("node.sqlite").display()
        );
        let config = dir.path().join("node.toml");
        std::fs::write(
            &config,
            format!(
                r#"node_id = "ind-assoc"
display_name = "Industry Association"
database_url = "{url}"
pseudonym_secret = "0123456789abcdef0123456789abcdef"
federation_key = "fedcba9876543210fedcba9876543210"

[publication]
k = 1
"#
            ),
        )
        .expect("write config");
        let node = Self { dir, config, url };
        let out = node.tandem(&["migrate", "node", "--config"], None);
        assert!(out.status.success(), "{}", stderr(&out));
        node
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write csv");
        path
    }

    fn tandem(&self, args: &[&str], file: Option<&Path>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tandem"));
        command.args(args).arg(&self.config);
        if let Some(file) = file {
            command.arg(file);
        }
        command.output().expect("run tandem")
    }

    fn import(&self, file: &Path, dry_run: bool) -> Output {
        self.import_kind("mentors", file, dry_run)
    }

    fn import_kind(&self, kind: &str, file: &Path, dry_run: bool) -> Output {
        let mut args = vec!["import", kind];
        if dry_run {
            args.push("--dry-run");
        }
        args.push("--config");
        self.tandem(&args, Some(file))
    }

    async fn state(&self) -> std::sync::Arc<tandem_node::NodeState> {
        let db = tandem_storage::connect(&self.url).await.expect("connect");
        let config = tandem_cli::config::load_node(&self.config).expect("config");
        tandem_node::NodeState::new(db, &config)
    }

    async fn mentors(&self) -> Vec<tandem_proto::Mentor> {
        self.state().await.list_mentors().await.expect("list")
    }

    async fn companies(&self) -> Vec<tandem_proto::Company> {
        self.state().await.list_companies().await.expect("list")
    }

    async fn memberships(&self) -> Vec<tandem_proto::Membership> {
        self.state()
            .await
            .membership_changes(0, 0)
            .await
            .expect("feed")
            .memberships
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_file_with_bad_lines_imports_nothing_and_names_each_line() {
    let node = Node::migrated();
    let file = node.file(
        "bad.csv",
        &format!(
            "{HEADER}\n{}\n{}\n{}\n{}\n",
            row("M-1", "Anna Berg", "director", "yes"),
            row("M-2", "Ben Kurz", "wizard", "yes"),
            row("M-3", "Cem Aydin", "director", "maybe"),
            row("M-1", "Dora Lind", "executive", "no"),
        ),
    );
    let out = node.import(&file, false);
    assert!(!out.status.success());
    let report = stderr(&out);
    for expected in [
        "line 3, column career_level",
        "line 4, column publication_consent",
        "line 5, column member_number",
        "3 problem(s) found; nothing was imported",
    ] {
        assert!(report.contains(expected), "{expected:?} in {report}");
    }
    assert!(!report.contains("line 2,"), "line 2 is fine: {report}");
    assert!(node.mentors().await.is_empty(), "nothing stored");
}

#[tokio::test]
async fn a_good_file_imports_once_and_a_second_run_changes_nothing() {
    let node = Node::migrated();
    let text = format!(
        "{HEADER}\n{}\n{}\n",
        row("M-1", "Anna Berg", "director", "yes"),
        row("M-2", "Ben Kurz", "executive", "no"),
    );
    let file = node.file("mentors.csv", &text);

    let dry = node.import(&file, true);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        stdout(&dry).contains("would import 2 mentor(s)"),
        "{}",
        stdout(&dry)
    );
    assert!(stdout(&dry).contains("2 created"), "{}", stdout(&dry));
    assert!(node.mentors().await.is_empty(), "a dry run stores nothing");

    let first = node.import(&file, false);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("2 created, 0 updated, 0 unchanged"),
        "{}",
        stdout(&first)
    );
    let mentors = node.mentors().await;
    assert_eq!(mentors.len(), 2);
    let anna = mentors
        .iter()
        .find(|m| m.member_number == "M-1")
        .expect("M-1");
    assert_eq!(anna.publication_consent, PublicationConsent::Granted as i32);
    assert_eq!(anna.publication_state, PublicationState::Published as i32);
    assert_eq!(
        anna.pseudonym.len(),
        64,
        "a published mentor shows its pseudonym"
    );
    let ben = mentors
        .iter()
        .find(|m| m.member_number == "M-2")
        .expect("M-2");
    assert_eq!(ben.publication_state, PublicationState::NoConsent as i32);
    assert!(ben.pseudonym.is_empty(), "no pseudonym without publication");

    let again = node.import(&file, false);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("0 created, 0 updated, 2 unchanged"),
        "{}",
        stdout(&again)
    );
    assert_eq!(node.mentors().await, mentors, "a re-import changes nothing");

    // The file is the association's record: a changed row updates that mentor, in place.
    let changed = node.file("changed.csv", &text.replace("Ben Kurz", "Ben Kurz-Lind"));
    let third = node.import(&changed, false);
    assert!(
        stdout(&third).contains("0 created, 1 updated, 1 unchanged"),
        "{}",
        stdout(&third)
    );
    let after = node.mentors().await;
    assert_eq!(after.len(), 2);
    let ben_after = after
        .iter()
        .find(|m| m.member_number == "M-2")
        .expect("M-2");
    assert_eq!(
        (ben_after.id.as_str(), ben_after.display_name.as_str()),
        (ben.id.as_str(), "Ben Kurz-Lind")
    );
}

#[tokio::test]
async fn a_wrong_header_is_named_and_nothing_is_stored() {
    let node = Node::migrated();
    let file = node.file(
        "header.csv",
        &format!(
            "{}\n{}\n",
            HEADER.replace("capacity", "places"),
            row("M-1", "Anna", "director", "yes")
        ),
    );
    let out = node.import(&file, false);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("line 1, column places: unknown column"),
        "{}",
        stderr(&out)
    );
    assert!(node.mentors().await.is_empty());
}

const COMPANY_HEADER: &str = "legal_name;register_number;group_register_number;reference";

/// The enrolment codes a run printed, by reference: the lines after the table's header.
fn printed_codes(out: &str) -> Vec<(String, String, String)> {
    out.lines()
        .skip_while(|line| !line.starts_with("reference\t"))
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            assert_eq!(cells.len(), 4, "{line}");
            (
                cells[0].to_owned(),
                cells[2].to_owned(),
                cells[3].to_owned(),
            )
        })
        .collect()
}

fn sha256(code: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(code.as_bytes()))
}

#[tokio::test]
async fn a_company_file_admits_each_company_once_and_shows_its_code_once() {
    let node = Node::migrated();
    let file = node.file(
        "companies.csv",
        &format!(
            "{COMPANY_HEADER}\nMuster Maschinenbau GmbH;HRB 12345 München;;M-17\n\
             Beispiel AG;HRB 999 Berlin;HRB 1 Berlin;M-18\n"
        ),
    );

    let dry = node.import_kind("companies", &file, true);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        stdout(&dry)
            .contains("would import 2 companies into node ind-assoc: 2 admitted, 0 unchanged"),
        "{}",
        stdout(&dry)
    );
    assert!(!stdout(&dry).contains("tec_"), "a dry run issues no codes");
    assert!(
        node.companies().await.is_empty(),
        "a dry run stores nothing"
    );

    let first = node.import_kind("companies", &file, false);
    assert!(first.status.success(), "{}", stderr(&first));
    let out = stdout(&first);
    assert!(out.contains("2 admitted, 0 unchanged"), "{out}");
    assert!(out.contains("shown only this once"), "{out}");
    let codes = printed_codes(&out);
    let references: Vec<&str> = codes.iter().map(|(r, _, _)| r.as_str()).collect();
    assert_eq!(references, ["M-17", "M-18"]);
    let memberships = node.memberships().await;
    for (_, company_id, code) in &codes {
        assert!(code.starts_with("tec_"), "{code}");
        let membership = memberships
            .iter()
            .find(|m| &m.company_id == company_id)
            .expect("membership of a printed id");
        assert_eq!(membership.enrolment_code_hash, sha256(code));
    }
    let companies = node.companies().await;
    assert_eq!(companies.len(), 2);

    // The same file again (in another spelling of a register number) changes nothing.
    let respelled = node.file(
        "respelled.csv",
        &std::fs::read_to_string(&file)
            .expect("read")
            .replace("HRB 12345 München", "hrb12345münchen"),
    );
    let again = node.import_kind("companies", &respelled, false);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("0 admitted, 2 unchanged"),
        "{}",
        stdout(&again)
    );
    assert!(!stdout(&again).contains("tec_"), "{}", stdout(&again));
    assert_eq!(node.companies().await, companies);
    assert_eq!(
        node.memberships().await,
        memberships,
        "a re-import changes nothing"
    );

    // A row that would change a member refuses the import, naming its line.
    let changed = node.file(
        "changed.csv",
        &format!(
            "{COMPANY_HEADER}\nNeu GmbH;HRB 5;;M-20\nBeispiel Holding AG;HRB 999 Berlin;;M-18\n"
        ),
    );
    let refused = node.import_kind("companies", &changed, false);
    assert!(!refused.status.success());
    let report = stderr(&refused);
    assert!(
        report.contains("line 3, column reference: already admitted as company"),
        "{report}"
    );
    assert!(report.contains("nothing was imported"), "{report}");
    assert_eq!(node.companies().await.len(), 2, "nothing stored");
}

#[tokio::test]
async fn a_company_file_with_bad_lines_imports_nothing_and_names_each_line() {
    let node = Node::migrated();
    let long = "x".repeat(10 * 1024 * 1024);
    let cases = [
        (
            format!(
                "{COMPANY_HEADER}\nMuster GmbH;HRB 1;;M-1\n;HRB 2;;\nKurz KG;hrb 1;;\n\
                 Lang AG;HRB 4;;M-1\nLeer AG;;;\n"
            ),
            vec![
                "line 3, column legal_name",
                "line 4, column register_number",
                "line 5, column reference",
                "line 6, column register_number: is required",
                "4 problem(s) found; nothing was imported",
            ],
        ),
        (
            format!("{COMPANY_HEADER}\nMuster GmbH;HRB 1;;M-1\nLang AG;{long};;\n"),
            vec!["line 3: is ", "bytes long; lines may have at most 65536"],
        ),
        (
            "legal_name;register;reference\nMuster GmbH;HRB 1;M-1\n".to_owned(),
            vec!["line 1, column register: unknown column"],
        ),
        (
            "legal_name;reference\nMuster GmbH;M-1\n".to_owned(),
            vec!["line 1: the header lacks the columns register_number"],
        ),
    ];
    for (k, (text, expected)) in cases.iter().enumerate() {
        let file = node.file(&format!("bad-{k}.csv"), text);
        let out = node.import_kind("companies", &file, false);
        assert!(!out.status.success());
        let report = stderr(&out);
        for expected in expected {
            assert!(report.contains(expected), "{expected:?} in {report}");
        }
        assert!(!report.contains("line 2,"), "line 2 is fine: {report}");
    }
    let mut bad_utf8 = format!("{COMPANY_HEADER}\nMuster GmbH;HRB 1;;\n").into_bytes();
    bad_utf8.extend_from_slice(b"Bad \xff AG;HRB 2;;\n");
    let file = node.dir.path().join("utf8.csv");
    std::fs::write(&file, bad_utf8).expect("write");
    let out = node.import_kind("companies", &file, false);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("line 3: is not UTF-8"),
        "{}",
        stderr(&out)
    );
    assert!(node.companies().await.is_empty(), "nothing stored");
}
