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

#[tokio::test]
async fn a_key_revoked_with_a_reason_tells_only_its_holder() {
    let (db, _dir) = database(false).await;
    let gate = Gate::new(
        db.clone(),
        &[Scope::Company, Scope::Operator],
        RateLimiter::new(0, 1),
    );
    let company = |tenant| Grant {
        scope: Scope::Company,
        tenant,
        label: "",
    };
    let (first, first_key) = keys::create(&db, 1, "operator", company("acme"))
        .await
        .expect("first");
    let (_, second_key) = keys::create(&db, 1, "operator", company("acme"))
        .await
        .expect("second");
    let (_, other_key) = keys::create(&db, 1, "operator", company("globex"))
        .await
        .expect("other company");
    let (_, operator_key) = keys::create(
        &db,
        1,
        "operator",
        Grant {
            scope: Scope::Operator,
            tenant: "acme",
            label: "",
        },
    )
    .await
    .expect("operator");

    let revoked = keys::revoke_tenant(&db, 5, "broker", Scope::Company, "acme", "membership ended")
        .await
        .expect("revoked");
    assert_eq!(revoked.len(), 2);
    assert!(revoked.contains(&first.id));
    for key in [&first_key, &second_key] {
        match gate.admit(Some(&bearer(key)), Scope::Company).await {
            Err(err @ AuthError::Ended(_)) => {
                assert_eq!(err.to_string(), "membership ended");
                assert_eq!(
                    tandem_service::ServiceError::code(&err),
                    tandem_service::ErrorCode::PermissionDenied
                );
            }
            other => panic!("expected the reason: {other:?}"),
        }
    }
    // Without the secret, a revoked key looks like any unknown key.
    let forged = format!("{}x", &first_key[..first_key.len() - 1]);
    assert!(matches!(
        gate.authenticate(&forged).await,
        Err(AuthError::Invalid)
    ));
    // Other tenants and scopes keep their keys.
    assert!(gate.authenticate(&other_key).await.is_ok());
    assert!(gate.authenticate(&operator_key).await.is_ok());
    // Revoking again finds nothing; a key revoked without a reason says nothing.
    let again = keys::revoke_tenant(&db, 6, "broker", Scope::Company, "acme", "again")
        .await
        .expect("again");
    assert!(again.is_empty());
    let (plain, plain_key) = keys::create(&db, 7, "operator", company("acme"))
        .await
        .expect("plain");
    keys::revoke(&db, 8, "operator", &plain.id)
        .await
        .expect("revoke");
    assert!(matches!(
        gate.authenticate(&plain_key).await,
        Err(AuthError::Invalid)
    ));
    let audit = tandem_service::audit::list(&db, 0, 0).await.expect("audit");
    let revocations: Vec<(&str, &str, &str)> = audit
        .iter()
        .filter(|e| e.action == "key.revoked")
        .map(|e| (e.actor.as_str(), e.object_id.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(revocations.len(), 3, "{revocations:?}");
    assert_eq!(
        (revocations[0].0, revocations[0].2),
        ("broker", "membership ended")
    );
}
