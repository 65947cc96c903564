//! After a whole demo run, the broker's database holds no mentor name, e-mail address, phone
//! number or employer name, and no member company's legal name or register number: every text
//! and binary column of every table is inspected.

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tandem_cli::demo::{self, DemoOptions};

async fn rows(db: &DatabaseConnection, sql: &str) -> anyhow::Result<Vec<sea_orm::QueryResult>> {
    Ok(db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?)
}

/// Returns every cell of every table as text (binary cells decoded lossily).
async fn all_cells(db: &DatabaseConnection) -> anyhow::Result<Vec<(String, String)>> {
    let mut cells = Vec::new();
    let tables = rows(
        db,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .await?;
    for table in tables {
        let table: String = table.try_get_by_index(0)?;
        let columns = rows(
            db,
            &format!("SELECT name FROM pragma_table_info('{table}')"),
        )
        .await?;
        for column in columns {
            let column: String = column.try_get_by_index(0)?;
            let values = rows(
                db,
                &format!("SELECT CAST(\"{column}\" AS BLOB) FROM \"{table}\""),
            )
            .await?;
            for v in values {
                let bytes: Option<Vec<u8>> = v.try_get_by_index(0)?;
                if let Some(bytes) = bytes {
                    cells.push((
                        format!("{table}.{column}"),
                        String::from_utf8_lossy(&bytes).into_owned(),
                    ));
                }
            }
        }
    }
    Ok(cells)
}

async fn mentor_identities(node_db: &DatabaseConnection) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for row in rows(
        node_db,
        "SELECT display_name, email, employer_name FROM mentors",
    )
    .await?
    {
        for k in 0..3 {
            let value: String = row.try_get_by_index(k)?;
            out.push(value);
        }
    }
    Ok(out)
}

/// Returns the legal names and register numbers of a node's member companies.
async fn company_identities(node_db: &DatabaseConnection) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for row in rows(node_db, "SELECT legal_name, register_number FROM companies").await? {
        for k in 0..2 {
            out.push(row.try_get_by_index(k)?);
        }
    }
    Ok(out)
}

/// Finds `local@domain.tld`. Binary columns hold protobuf, whose length byte for a 64-character
/// token is `@`, so a bare `@` proves nothing; a domain with a dot after it does.
fn looks_like_email(text: &str) -> bool {
    let b = text.as_bytes();
    let local = |c: u8| c.is_ascii_alphanumeric() || b"._%+-".contains(&c);
    (1..b.len())
        .filter(|&k| b[k] == b'@' && local(b[k - 1]))
        .any(|k| {
            let domain: Vec<u8> = b[k + 1..]
                .iter()
                .copied()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'-')
                .collect();
            domain.iter().rposition(|c| *c == b'.').is_some_and(|dot| {
                dot > 0
                    && domain.len() - dot > 2
                    && domain[dot + 1..].iter().all(u8::is_ascii_alphabetic)
            })
        })
}

#[test]
fn the_email_pattern_tells_addresses_from_protobuf() {
    assert!(looks_like_email(
        "write to anna.mueller@alpen.example please"
    ));
    assert!(!looks_like_email(
        "R@0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefZ@"
    ));
}

#[tokio::test]
async fn the_broker_database_holds_no_personal_data_after_the_demo() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let options = DemoOptions {
        data_dir: Some(dir.path().to_path_buf()),
        seed: 11,
        mentors_per_node: 25,
        mentees: 80,
        rounds: 2,
        json: true,
        serve: false,
    };
    let summary = demo::run(options, false).await?;
    assert!(summary.tandems > 0, "the demo formed tandems: {summary:?}");
    assert!(summary.contact_cards_released > 0);

    let mut identities = Vec::new();
    let mut companies = Vec::new();
    for node in ["ind-assoc", "startup-net", "chamber"] {
        let db = tandem_storage::connect(&tandem_storage::sqlite_url(
            &dir.path().join(format!("{node}.sqlite")),
        ))
        .await?;
        identities.extend(mentor_identities(&db).await?);
        companies.extend(company_identities(&db).await?);
    }
    assert!(
        companies.len() >= 2 * 20,
        "the nodes hold their member companies: {companies:?}"
    );
    identities.extend(companies);
    assert!(
        identities.len() >= 3 * 25 * 3,
        "the nodes hold the mentors' identities"
    );
    identities.retain(|s| s.len() >= 4);

    let broker = tandem_storage::connect(&tandem_storage::sqlite_url(
        &dir.path().join("broker.sqlite"),
    ))
    .await?;
    let cells = all_cells(&broker).await?;
    assert!(
        cells.len() > 1000,
        "the broker holds the federation's state: {} cells",
        cells.len()
    );
    for (column, text) in &cells {
        for identity in &identities {
            assert!(
                !text.contains(identity.as_str()),
                "{column} holds {identity:?}"
            );
        }
        assert!(
            !looks_like_email(text),
            "{column} holds something like an e-mail address: {text:?}"
        );
        let phone = text
            .as_bytes()
            .windows(4)
            .any(|w| w[0] == b'+' && w[1..].iter().all(u8::is_ascii_digit));
        assert!(
            !phone,
            "{column} holds something like a phone number: {text:?}"
        );
    }
    Ok(())
}
