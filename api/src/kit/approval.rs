//! 审批 one approval mechanism for every domain: a request (what, about which row, why)
//! waits for someone else who holds the approver permission over its project (maker ≠
//! checker, also enforced by the table); the decision, with its note, is audited, and an
//! approval applies the change through the `Applier` the asking domain registered for the
//! kind, in the decision's transaction: approved and applied, or neither.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::audit::{self, Auditor};
use super::error::{AppError, AppResult, Msg};
use super::idempotency::Retry;
use super::state::AppState;

crate::text_enum! {
    /// 审批事项
    pub enum ApprovalKind {
        /// 滞纳金减免 a bill's late fee waived
        LateFeeWaiver = "late_fee_waiver",
        /// 退款 (part of) a payment paid back
        Refund = "refund",
        /// 账单调整 an amount added to or taken off a bill
        BillAdjustment = "bill_adjustment",
        /// 空置房优惠 a share of a vacant house's property fee off for some months
        VacancyRelief = "vacancy_relief",
        /// 补签 / 请假 an attendance correction or leave
        Attendance = "attendance",
    }
}

crate::text_enum! {
    /// 审批状态
    pub enum ApprovalStatus { Pending = "pending", Approved = "approved", Rejected = "rejected" }
}

/// 审批单 a request and, once decided, its decision.
#[derive(Debug, Clone)]
pub struct Approval {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Option<Uuid>,
    pub kind: ApprovalKind,
    pub subject_id: Uuid,
    pub payload: serde_json::Value,
    pub reason: String,
    /// the permission code an approver holds over the project
    pub approver_perm: String,
    pub status: ApprovalStatus,
    pub requested_by: Uuid,
    pub requested_at: DateTime<Utc>,
    pub decided_by: Option<Uuid>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
}

/// What a domain asks.
pub struct NewApproval {
    pub company_id: Uuid,
    pub project_id: Option<Uuid>,
    pub kind: ApprovalKind,
    pub subject_id: Uuid,
    pub payload: serde_json::Value,
    pub reason: String,
    pub approver_perm: &'static str,
}

/// Applies an approved request of its kind (registered by the domain that asks).
#[async_trait::async_trait]
pub trait Applier: Send + Sync {
    async fn apply(&self, state: &AppState, tx: &mut PgConnection, a: &Approval) -> AppResult<()>;

    /// Hears of a rejection in the decision's transaction (the asker is told, say).
    async fn rejected(&self, _state: &AppState, _tx: &mut PgConnection, _a: &Approval) -> AppResult<()> {
        Ok(())
    }
}

/// The appliers by kind, a state part.
#[derive(Default, Clone)]
pub struct Appliers(pub HashMap<ApprovalKind, Arc<dyn Applier>>);

fn reason_text(field: &'static str, s: &str) -> AppResult<String> {
    let t = s.trim();
    if t.chars().count() < 2 || t.chars().count() > 500 {
        return Err(AppError::validation(
            field,
            Msg::new("请填写理由（2到500字）", "Give a reason of 2 to 500 characters"),
        ));
    }
    Ok(t.to_owned())
}

/// Files a request on its own, applied once per `clientMutationId`: what a domain's
/// "ask for approval" mutation does.
pub async fn ask(state: &AppState, by: &dyn Auditor, retry: &Retry, n: NewApproval) -> AppResult<Uuid> {
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let id = request(&mut tx, state.clock.now(), by, n).await?;
    tx.commit(&id).await?;
    Ok(id)
}

/// Files a request in the caller's transaction. One open request per subject and kind.
pub async fn request(tx: &mut PgConnection, at: DateTime<Utc>, by: &dyn Auditor, n: NewApproval) -> AppResult<Uuid> {
    let reason = reason_text("reason", &n.reason)?;
    let Some(user) = by.audit_user() else {
        return Err(AppError::forbidden());
    };
    let id = Uuid::now_v7();
    let inserted = sqlx::query!(
        "INSERT INTO approvals (id, company_id, project_id, kind, subject_id, payload, reason, approver_perm, status,
                                requested_by, requested_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10)
         ON CONFLICT (kind, subject_id) WHERE status = 'pending' DO NOTHING",
        id,
        n.company_id,
        n.project_id,
        n.kind.as_str(),
        n.subject_id,
        n.payload,
        reason,
        n.approver_perm,
        user,
        at
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(AppError::conflict("subjectId", Msg::new("已有待审批的申请", "A request is already waiting")));
    }
    audit::record(
        tx,
        at,
        by,
        "approval.request",
        "approval",
        Some(id),
        serde_json::json!({ "kind": n.kind, "subjectId": n.subject_id, "payload": n.payload, "reason": reason }),
    )
    .await?;
    Ok(id)
}

pub async fn get(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> AppResult<Option<Approval>> {
    Ok(sqlx::query_as!(
        Approval,
        r#"SELECT id, company_id, project_id, kind AS "kind: ApprovalKind", subject_id, payload, reason, approver_perm,
                  status AS "status: ApprovalStatus", requested_by, requested_at, decided_by, decided_at, decision_note
           FROM approvals WHERE company_id = $1 AND id = $2"#,
        company,
        id
    )
    .fetch_optional(db)
    .await?)
}

/// A company's requests (of a status), in id order after `after`.
pub async fn list(
    db: impl PgExecutor<'_>,
    company: Uuid,
    status: Option<ApprovalStatus>,
    after: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<Approval>> {
    Ok(sqlx::query_as!(
        Approval,
        r#"SELECT id, company_id, project_id, kind AS "kind: ApprovalKind", subject_id, payload, reason, approver_perm,
                  status AS "status: ApprovalStatus", requested_by, requested_at, decided_by, decided_at, decision_note
           FROM approvals WHERE company_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR id > $3)
           ORDER BY id LIMIT $4"#,
        company,
        status.map(|s| s.as_str()),
        after,
        limit
    )
    .fetch_all(db)
    .await?)
}

/// Decides a pending request in the caller's transaction: never by the person who asked;
/// an approval applies the change through the kind's applier. The caller checked that
/// the decider holds `approver_perm` over the project.
pub async fn decide(
    state: &AppState,
    tx: &mut PgConnection,
    by: &dyn Auditor,
    id: Uuid,
    approve: bool,
    note: Option<&str>,
) -> AppResult<Approval> {
    let at = state.clock.now();
    let Some(user) = by.audit_user() else { return Err(AppError::forbidden()) };
    let a = sqlx::query_as!(
        Approval,
        r#"SELECT id, company_id, project_id, kind AS "kind: ApprovalKind", subject_id, payload, reason, approver_perm,
                  status AS "status: ApprovalStatus", requested_by, requested_at, decided_by, decided_at, decision_note
           FROM approvals WHERE company_id = $1 AND id = $2 FOR UPDATE"#,
        by.audit_company(),
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(AppError::not_found("approval"))?;
    if a.status != ApprovalStatus::Pending {
        return Err(AppError::conflict("id", Msg::new("该申请已审批", "The request was decided already")));
    }
    if a.requested_by == user {
        return Err(AppError::conflict("id", Msg::new("申请人不能审批自己的申请", "Nobody decides their own request")));
    }
    let note = match note.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) if n.chars().count() > 500 => {
            return Err(AppError::validation(
                "note",
                Msg::new("审批意见最多500字", "A note of at most 500 characters"),
            ));
        }
        Some(n) => Some(n.to_owned()),
        None if !approve => {
            return Err(AppError::validation("note", Msg::new("驳回请填写理由", "Say why it is rejected")));
        }
        None => None,
    };
    let appliers = state.part::<Appliers>()?;
    let applier = appliers.0.get(&a.kind).ok_or_else(|| AppError::internal(NoApplier(a.kind.as_str())))?;
    // the appliers see the decision as it will stand (the asker is told the note)
    let decided = Approval { decided_by: Some(user), decided_at: Some(at), decision_note: note.clone(), ..a.clone() };
    if approve {
        applier.apply(state, tx, &decided).await?;
    } else {
        applier.rejected(state, tx, &decided).await?;
    }
    let status = if approve { ApprovalStatus::Approved } else { ApprovalStatus::Rejected };
    sqlx::query!(
        "UPDATE approvals SET status = $2, decided_by = $3, decided_at = $4, decision_note = $5 WHERE id = $1",
        a.id,
        status.as_str(),
        user,
        at,
        note
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        tx,
        at,
        by,
        if approve { "approval.approve" } else { "approval.reject" },
        "approval",
        Some(a.id),
        serde_json::json!({ "kind": a.kind, "subjectId": a.subject_id, "note": note }),
    )
    .await?;
    Ok(Approval { status, decided_by: Some(user), decided_at: Some(at), decision_note: note, ..a })
}

#[derive(Debug, thiserror::Error)]
#[error("no applier registered for approvals of kind {0}")]
struct NoApplier(&'static str);
