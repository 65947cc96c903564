//! The gate and the key table over a real SQLite database, as the broker and a node use them.

use tandem_service::auth::{AuthError, Gate, Scope};
use tandem_service::keys::{self, Grant, KeyError};
use tandem_service::rate_limit::RateLimiter;
use tandem_storage::{BrokerMigrator, MigratorTrait, NodeMigrator};

async fn database(migrate_node: bool) -> (tandem_storage::DatabaseConnection, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = tandem_storage::sqlite_url(&dir.path().join("db.sqlite"));
    let db = tandem_storage::connect_for_migrations(&url)
        .await
        .expect("connect");
    if migrate_node {
        NodeMigrator::up(&db, None).await.expect("migrate");
    } else {
        BrokerMigrator::up(&db, None).await.expect("migrate");
    }
    (db, dir)
}

fn bearer(key: &str) -> Vec<u8> {
    format!("Bearer {key}").into_bytes()
}

#[tokio::test]
async fn a_broker_key_admits_its_scope_and_tenant_only() {
    let (db, _dir) = database(false).await;
    let gate = Gate::new(
        db.clone(),
        &[Scope::Company, Scope::Operator],
        RateLimiter::new(0, 1),
    );
    let grant = Grant {
        scope: Scope::Company,
        tenant: "acme",
        label: "hr system",
    };
    let (info, key) = keys::create(&db, 1_000, "operator", grant)
        .await
        .expect("created");
    assert_eq!(
        (info.scope.as_str(), info.tenant.as_str()),
        ("company", "acme")
    );

    let caller = gate
        .admit(Some(&bearer(&key)), Scope::Company)
        .await
        .expect("admitted");
    assert_eq!(
        (caller.tenant(), caller.key_id()),
        ("acme", info.id.as_str())
    );
    assert!(matches!(
        gate.admit(Some(&bearer(&key)), Scope::Operator).await,
        Err(AuthError::WrongScope(Scope::Operator))
    ));
    assert!(matches!(
        gate.admit(None, Scope::Company).await,
        Err(AuthError::Missing)
    ));
    let forged = format!("{}x", &key[..key.len() - 1]);
    assert!(matches!(
        gate.admit(Some(&bearer(&forged)), Scope::Company).await,
        Err(AuthError::Invalid)
    ));

    keys::revoke(&db, 2_000, "operator", &info.id)
        .await
        .expect("revoked");
    assert!(matches!(
        gate.admit(Some(&bearer(&key)), Scope::Company).await,
        Err(AuthError::Invalid)
    ));
    assert!(matches!(
        keys::revoke(&db, 2_000, "operator", "knothere").await,
        Err(KeyError::NotFound)
    ));
    let audit = tandem_service::audit::list(&db, 0, 0).await.expect("audit");
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["key.created", "key.revoked"]);
    assert_eq!(audit[0].at_ms, 1_000);
}

#[tokio::test]
async fn a_node_honours_only_keys_bound_to_itself() {
    let (db, _dir) = database(true).await;
    let gate = Gate::new(db.clone(), &[Scope::NodeAdmin], RateLimiter::new(0, 1)).bound_to("assoc");
    let own = Grant {
        scope: Scope::NodeAdmin,
        tenant: "assoc",
        label: "desk",
    };
    let foreign = Grant {
        tenant: "chamber",
        ..own
    };
    let (_, own_key) = keys::create(&db, 1, "cli", own).await.expect("own");
    let (_, foreign_key) = keys::create(&db, 1, "cli", foreign).await.expect("foreign");
    assert!(gate.authenticate(&own_key).await.is_ok());
    assert!(matches!(
        gate.authenticate(&foreign_key).await,
        Err(AuthError::Invalid)
    ));
    // A company key in a node's table is not one the node issues.
    let company = Grant {
        scope: Scope::Company,
        tenant: "acme",
        label: "",
    };
    let (_, company_key) = keys::create(&db, 1, "cli", company).await.expect("row");
    assert!(matches!(
        gate.authenticate(&company_key).await,
        Err(AuthError::Invalid)
    ));
}

#[tokio::test]
async fn bad_grants_name_the_field_and_store_nothing() {
    let (db, _dir) = database(false).await;
    for (grant, field) in [
        (
            Grant {
                scope: Scope::Company,
                tenant: "a b",
                label: "",
            },
            "company",
        ),
        (
            Grant {
                scope: Scope::Operator,
                tenant: "",
                label: "line\nbreak",
            },
            "label",
        ),
    ] {
        match keys::create(&db, 1, "operator", grant).await {
            Err(KeyError::Invalid(e)) => assert_eq!(e.fields(), [field]),
            other => panic!("expected invalid {field}: {other:?}"),
        }
    }
    assert!(keys::list(&db).await.expect("list").is_empty());
    let installed = keys::install(
        &db,
        1,
        "operator",
        Grant {
            scope: Scope::Operator,
            tenant: "",
            label: "tooling",
        },
        &format!("tdm_kops_{}", "a".repeat(32)),
    )
    .await
    .expect("installed");
    assert_eq!(installed.id, "kops");
    assert!(matches!(
        keys::install(
            &db,
            1,
            "operator",
            Grant {
                scope: Scope::Operator,
                tenant: "",
                label: "",
            },
            "tdm_kops_short",
        )
        .await,
        Err(KeyError::Invalid(_))
    ));
}
