//! Member companies: the association vouches for the companies it admits. Staff admit a
//! company (one at a time or from a file), hand it the one-time enrolment code the node issues,
//! issue a fresh code when one expired or was lost, and end the membership. The company's name
//! and register numbers stay here; the broker reads only the membership feed: the employer and
//! group tokens computed from the register numbers with the federation-wide key, the hash of
//! the open code and whether the membership is active.
//!
//! Every change of a company (admission, new code, removal) gives it the next membership
//! version, so the feed, read from a version on, serves each membership in its latest state.
//! The codes exist only in the answer that issues them: the node stores their SHA-256, and
//! neither logs nor audits them.

use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use tandem_domain::pseudonym::normalise_registry_number;
use tandem_domain::time::DAY_MS;
use tandem_domain::{CompanyRecord, Violations, validate};
use tandem_proto::{AdmittedCompany, Company, GetMembershipChangesResponse, Membership};
use tandem_service::enrolment;
use tandem_storage::node::{company, counter};
use tracing::info;

use crate::feed::{cursor, page_size, wire};
use crate::{NodeError, NodeState, Staff, audit, counters};

/// Returns the company with `company_id`, or NOT_FOUND.
async fn company_row(
    conn: &impl sea_orm::ConnectionTrait,
    company_id: &str,
) -> Result<company::Model, NodeError> {
    company::Entity::find_by_id(company_id.to_owned())
        .one(conn)
        .await?
        .ok_or_else(|| NodeError::NotFound("company not found".to_owned()))
}

/// What an import of member companies did, row by row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompanyImportReport {
    /// One entry per company of the import, in its order.
    pub companies: Vec<ImportedCompany>,
}

impl CompanyImportReport {
    /// Returns how many companies the import admitted.
    pub fn admitted(&self) -> usize {
        self.companies.iter().filter(|c| c.admitted).count()
    }

    /// Returns how many companies were already admitted as the import has them.
    pub fn unchanged(&self) -> usize {
        self.companies.len() - self.admitted()
    }
}

/// One company of an import and what happened to it.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportedCompany {
    /// The membership's id; empty for a company a dry run would admit.
    pub company_id: String,
    pub legal_name: String,
    pub reference: String,
    /// True when the import admitted the company; false when it was a member already, with the
    /// same record, and was left alone.
    pub admitted: bool,
    /// The first enrolment code of a company the import admitted, shown only here; empty for
    /// a company left alone and in a dry run.
    pub enrolment_code: String,
}

// Written by hand so that a code never reaches a log line.
impl std::fmt::Debug for ImportedCompany {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedCompany")
            .field("company_id", &self.company_id)
            .field("admitted", &self.admitted)
            .field(
                "enrolment_code",
                &if self.enrolment_code.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .finish_non_exhaustive()
    }
}

/// How a record relates to the node's current members.
enum Standing {
    /// No current member has its reference or register number.
    New,
    /// A current member holds exactly this record.
    Member(Box<company::Model>),
    /// A current member has the reference or register number named by `field` (without the
    /// record's prefix) and another record.
    Conflict {
        field: &'static str,
        company_id: String,
    },
}

/// Returns whether a stored company holds `record`; register numbers are compared in their
/// normalised form, so spelling variants are the same number.
fn holds(row: &company::Model, record: &CompanyRecord) -> bool {
    row.legal_name == record.legal_name
        && row.register_key == normalise_registry_number(&record.register_number)
        && normalise_registry_number(&row.group_register_number)
            == normalise_registry_number(&record.group_register_number)
        && row.reference == record.reference
}

/// Says how `record` relates to the current members: matched by its reference when it has
/// one, else by its register number.
async fn standing(
    db: &impl ConnectionTrait,
    record: &CompanyRecord,
) -> Result<Standing, NodeError> {
    let by_reference = if record.reference.is_empty() {
        None
    } else {
        current()
            .filter(company::Column::Reference.eq(record.reference.as_str()))
            .one(db)
            .await?
    };
    let (found, field) = match by_reference {
        Some(row) => (Some(row), "reference"),
        None => {
            let key = normalise_registry_number(&record.register_number);
            let row = current()
                .filter(company::Column::RegisterKey.eq(key))
                .one(db)
                .await?;
            (row, "register_number")
        }
    };
    Ok(match found {
        None => Standing::New,
        Some(row) if holds(&row, record) => Standing::Member(Box::new(row)),
        Some(row) => Standing::Conflict {
            field,
            company_id: row.id,
        },
    })
}

/// Selects the current (not removed) members.
fn current() -> sea_orm::Select<company::Entity> {
    company::Entity::find().filter(company::Column::Active.eq(true))
}

/// Returns what staff see of a stored company.
fn company_to_proto(row: &company::Model) -> Company {
    Company {
        company_id: row.id.clone(),
        legal_name: row.legal_name.clone(),
        register_number: row.register_number.clone(),
        group_register_number: row.group_register_number.clone(),
        reference: row.reference.clone(),
        active: row.active,
        admitted_at_ms: row.admitted_at_ms,
        removed_at_ms: row.removed_at_ms,
        enrolment_code_expires_at_ms: row.code_expires_at_ms,
    }
}

/// Returns what the broker sees of a stored company.
fn membership_of(row: &company::Model) -> Membership {
    Membership {
        company_id: row.id.clone(),
        employer_token: row.employer_token.clone(),
        group_token: row.group_token.clone(),
        enrolment_code_hash: row.code_hash.clone(),
        enrolment_code_expires_at_ms: row.code_expires_at_ms,
        active: row.active,
        version: wire(row.version),
    }
}

/// Checks an import's records: every wrong field of every record, and every reference or
/// register number that two records share, named `companies[k].<field>`.
fn check_import(companies: &[Company]) -> Result<Vec<CompanyRecord>, Violations> {
    let mut violations = Violations::new();
    let mut records = Vec::with_capacity(companies.len());
    let mut references: HashMap<String, usize> = HashMap::new();
    let mut registers: HashMap<String, usize> = HashMap::new();
    for (k, company) in companies.iter().enumerate() {
        let at = format!("companies[{k}].");
        match validate::company(company) {
            Ok(record) => {
                let key = normalise_registry_number(&record.register_number);
                if let Some(first) = registers.insert(key, k) {
                    violations.add(
                        format!("{at}register_number"),
                        format!("is also the register number of companies[{first}]"),
                    );
                }
                if !record.reference.is_empty()
                    && let Some(first) = references.insert(record.reference.clone(), k)
                {
                    violations.add(
                        format!("{at}reference"),
                        format!("is also the reference of companies[{first}]"),
                    );
                }
                records.push(record);
            }
            Err(found) => {
                for v in found.iter() {
                    let field = v.field.strip_prefix("company.").unwrap_or(&v.field);
                    violations.add(format!("{at}{field}"), v.description.clone());
                }
            }
        }
    }
    violations.into_result()?;
    Ok(records)
}

impl NodeState {
    /// Admits a member company and returns it with its first enrolment code, shown this once.
    /// Nothing is stored when a field is wrong (every wrong field is named). A current member
    /// with the same reference or register number (in any spelling) and the same record is
    /// returned with `already_admitted` and no new code, so a retried admission makes no second
    /// member; with another record the admission is refused naming the field.
    pub async fn admit_company(
        &self,
        staff: &Staff,
        company: Company,
    ) -> Result<AdmittedCompany, NodeError> {
        let record = validate::company(&company)?;
        let txn = self.write().await?;
        match standing(&*txn, &record).await? {
            Standing::Member(row) => Ok(AdmittedCompany {
                company: Some(company_to_proto(&row)),
                enrolment_code: String::new(),
                already_admitted: true,
            }),
            Standing::Conflict { field, company_id } => Err(NodeError::Conflict(format!(
                "company.{field}: already admitted as company {company_id} with a different \
                 record"
            ))),
            Standing::New => {
                let (row, code) = self.insert_company(&txn, staff.key_id(), &record).await?;
                txn.commit().await?;
                info!(company_id = %row.id, version = row.version, "company admitted");
                Ok(AdmittedCompany {
                    company: Some(company_to_proto(&row)),
                    enrolment_code: code,
                    already_admitted: false,
                })
            }
        }
    }

    /// Stores a newly admitted company with a fresh enrolment code and its audit entry;
    /// returns the row and the code.
    async fn insert_company(
        &self,
        txn: &DatabaseTransaction,
        actor: &str,
        record: &CompanyRecord,
    ) -> Result<(company::Model, String), NodeError> {
        let now = self.now();
        let id = uuid::Uuid::new_v4().to_string();
        let employer_token = self.employer_token(&record.register_number);
        let group_token = if record.group_register_number.is_empty() {
            employer_token.clone()
        } else {
            self.employer_token(&record.group_register_number)
        };
        let code = enrolment::generate();
        let expires_at_ms = self.code_expiry(now);
        let version = counters::next(txn, counter::MEMBERSHIP_VERSION).await?;
        let row = company::ActiveModel {
            id: Set(id.clone()),
            legal_name: Set(record.legal_name.clone()),
            register_number: Set(record.register_number.clone()),
            register_key: Set(normalise_registry_number(&record.register_number)),
            group_register_number: Set(record.group_register_number.clone()),
            reference: Set(record.reference.clone()),
            employer_token: Set(employer_token),
            group_token: Set(group_token),
            code_hash: Set(code.hash),
            code_expires_at_ms: Set(expires_at_ms),
            active: Set(true),
            admitted_at_ms: Set(now),
            removed_at_ms: Set(0),
            version: Set(version),
        }
        .insert(txn)
        .await?;
        let detail = format!("code_expires_at_ms={expires_at_ms}");
        audit::record(txn, now, actor, "company.admitted", "company", &id, &detail).await?;
        Ok((row, code.code))
    }

    /// Returns when a code issued at `now` expires.
    fn code_expiry(&self, now: i64) -> i64 {
        now.saturating_add(i64::from(self.enrolment_code_days).saturating_mul(DAY_MS))
    }

    /// Returns one member company, current or removed.
    pub async fn get_company(&self, company_id: &str) -> Result<Company, NodeError> {
        let row = company_row(self.db(), company_id).await?;
        Ok(company_to_proto(&row))
    }

    /// Returns the node's member companies: current ones first, each part ordered by legal
    /// name.
    pub async fn list_companies(&self) -> Result<Vec<Company>, NodeError> {
        let rows = company::Entity::find()
            .order_by_desc(company::Column::Active)
            .order_by_asc(company::Column::LegalName)
            .order_by_asc(company::Column::Id)
            .all(self.db())
            .await?;
        Ok(rows.iter().map(company_to_proto).collect())
    }

    /// Issues a fresh enrolment code for a current member, shown this once; the previous code
    /// stops working. A removed company gets no code.
    pub async fn issue_enrolment_code(
        &self,
        staff: &Staff,
        company_id: &str,
    ) -> Result<AdmittedCompany, NodeError> {
        let txn = self.write().await?;
        let existing = company_row(&*txn, company_id).await?;
        if !existing.active {
            return Err(NodeError::WrongState(format!(
                "company {company_id} was removed"
            )));
        }
        let now = self.now();
        let code = enrolment::generate();
        let expires_at_ms = self.code_expiry(now);
        let version = counters::next(&txn, counter::MEMBERSHIP_VERSION).await?;
        let mut row = existing.into_active_model();
        row.code_hash = Set(code.hash);
        row.code_expires_at_ms = Set(expires_at_ms);
        row.version = Set(version);
        let row = row.update(&*txn).await?;
        let detail = format!("code_expires_at_ms={expires_at_ms}");
        audit::record(
            &*txn,
            now,
            staff.key_id(),
            "company.enrolment_code_issued",
            "company",
            company_id,
            &detail,
        )
        .await?;
        txn.commit().await?;

        info!(company_id, version, "enrolment code issued");
        Ok(AdmittedCompany {
            company: Some(company_to_proto(&row)),
            enrolment_code: code.code,
            already_admitted: false,
        })
    }

    /// Ends a membership and closes its open enrolment code; at its next sync the broker
    /// revokes the company's keys. Removing a removed company returns it unchanged.
    pub async fn remove_company(
        &self,
        staff: &Staff,
        company_id: &str,
    ) -> Result<Company, NodeError> {
        let txn = self.write().await?;
        let existing = company_row(&*txn, company_id).await?;
        if !existing.active {
            return Ok(company_to_proto(&existing));
        }
        let now = self.now();
        let version = counters::next(&txn, counter::MEMBERSHIP_VERSION).await?;
        let mut row = existing.into_active_model();
        row.active = Set(false);
        row.removed_at_ms = Set(now);
        row.code_hash = Set(String::new());
        row.code_expires_at_ms = Set(0);
        row.version = Set(version);
        let row = row.update(&*txn).await?;
        audit::record(
            &*txn,
            now,
            staff.key_id(),
            "company.removed",
            "company",
            company_id,
            "",
        )
        .await?;
        txn.commit().await?;

        info!(company_id, version, "company removed");
        Ok(company_to_proto(&row))
    }

    /// Returns the memberships changed after `since_version`, oldest first, each in its
    /// current state.
    pub async fn membership_changes(
        &self,
        since_version: u64,
        limit: u32,
    ) -> Result<GetMembershipChangesResponse, NodeError> {
        let limit = page_size(limit);
        let mut rows = company::Entity::find()
            .filter(company::Column::Version.gt(cursor(since_version)))
            .order_by_asc(company::Column::Version)
            .limit(u64::from(limit) + 1)
            .all(self.db())
            .await?;
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_version = rows.last().map_or(since_version, |row| wire(row.version));
        Ok(GetMembershipChangesResponse {
            memberships: rows.iter().map(membership_of).collect(),
            next_version,
            has_more,
        })
    }

    /// Imports member companies, all or nothing: every record is checked first (a refusal names
    /// every wrong field of every record, and records of the import that share a reference or
    /// register number), then one transaction admits the new ones, each with its first
    /// enrolment code. A record is matched to a current member by its reference, else by its
    /// register number: a member with the same record is left alone (no new code), so
    /// importing the same records again changes nothing; a member with another record refuses
    /// the import (ALREADY_EXISTS, each such record named), as an import does not change
    /// companies. `actor` goes into the audit log. A dry run does the same work and rolls it
    /// back, without ids or codes in its report.
    pub async fn import_companies(
        &self,
        actor: &str,
        companies: &[Company],
        dry_run: bool,
    ) -> Result<CompanyImportReport, NodeError> {
        let records = check_import(companies)?;
        let txn = self.write().await?;
        let mut report = CompanyImportReport::default();
        let mut conflicts = Vec::new();
        for (k, record) in records.iter().enumerate() {
            let imported = match standing(&*txn, record).await? {
                Standing::Member(row) => ImportedCompany {
                    company_id: row.id,
                    legal_name: row.legal_name,
                    reference: row.reference,
                    admitted: false,
                    enrolment_code: String::new(),
                },
                Standing::Conflict { field, company_id } => {
                    conflicts.push(format!(
                        "companies[{k}].{field}: already admitted as company {company_id} \
                         with a different record"
                    ));
                    continue;
                }
                Standing::New => {
                    let (row, code) = self.insert_company(&txn, actor, record).await?;
                    ImportedCompany {
                        company_id: row.id,
                        legal_name: row.legal_name,
                        reference: row.reference,
                        admitted: true,
                        enrolment_code: code,
                    }
                }
            };
            report.companies.push(imported);
        }
        if !conflicts.is_empty() {
            return Err(NodeError::Conflict(format!(
                "{}; an import does not change companies",
                conflicts.join("; ")
            )));
        }
        if dry_run {
            // Dropping the transaction rolls it back: the ids and codes were never issued.
            for imported in report.companies.iter_mut().filter(|c| c.admitted) {
                imported.company_id.clear();
                imported.enrolment_code.clear();
            }
            return Ok(report);
        }
        txn.commit().await?;
        info!(
            admitted = report.admitted(),
            unchanged = report.unchanged(),
            "companies imported"
        );
        Ok(report)
    }
}
