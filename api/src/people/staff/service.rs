//! 员工档案 rules. Which projects an employee acts in comes from one source, their role
//! grants: a reader with `staff:read` on some projects sees the staff whose grants reach
//! one of them (a company-wide grant reaches every project). An employee sees and edits
//! only their own record's allowed fields (`self:profile`). The ID-card number is encrypted
//! with a blind index and masked without `pii:read`, as owners' are. Leaving disables the
//! account and ends its sessions in the same transaction.

use chrono::{Datelike, NaiveDate};
use uuid::Uuid;

use super::model::{Certificate, CertificateKind, Employee, EmployeeStatus, Gender};
use super::repo;
use crate::kit::audit;
use crate::kit::clock::business_date;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::kit::types::{self, IdCardNumber, Phone};
use crate::rbac::model::{AccountStatus, Actor, Perm, ProjectFilter};

/// Reminders before a certificate expires, in days, longest first.
pub const REMINDER_DAYS: [i32; 2] = [30, 7];

fn invalid(field: &'static str, zh: &'static str, en: &'static str) -> AppError {
    AppError::validation(field, Msg::new(zh, en))
}

/// The projects a permission reaches: None for the whole company.
fn reach(actor: &Actor, perm: Perm) -> AppResult<Option<Vec<Uuid>>> {
    Ok(match actor.projects(perm)? {
        ProjectFilter::All => None,
        ProjectFilter::Only(ids) => Some(ids),
    })
}

/// Whether an account is a staff account of the company.
pub async fn is_staff(state: &AppState, company: Uuid, user: Uuid) -> AppResult<bool> {
    Ok(repo::employee(&state.db, company, user).await?.is_some())
}

/// Staff accounts of the company by the employee numbers a terminal sent (those who left
/// are not found).
pub async fn by_employee_no(
    db: &mut sqlx::PgConnection,
    company: Uuid,
    nos: &[String],
) -> AppResult<Vec<(String, Uuid)>> {
    Ok(repo::by_employee_no(db, company, nos).await?)
}

/// The projects a staff account acts in, by its grants: None when a grant is company-wide;
/// an `own` grant reaches the projects it manages or serves.
pub async fn projects_of(state: &AppState, user: Uuid) -> AppResult<Option<Vec<Uuid>>> {
    let (company, own, mut ids) = repo::grant_reach(&state.db, user).await?;
    if company {
        return Ok(None);
    }
    if own {
        ids.extend(crate::rbac::service::own_projects(state, user).await?);
        ids.sort();
        ids.dedup();
    }
    Ok(Some(ids))
}

/// Whether a permission scoped to `reach` covers the staff account `user`.
async fn covers(state: &AppState, reach: &Option<Vec<Uuid>>, user: Uuid) -> AppResult<bool> {
    let Some(mine) = reach else { return Ok(true) };
    Ok(match projects_of(state, user).await? {
        // a company-wide employee acts in every project
        None => true,
        Some(theirs) => theirs.iter().any(|p| mine.contains(p)),
    })
}

/// The record of a staff account of the company that `perm` lets the caller reach (or
/// their own with `self:profile` when `own` is allowed); NOT_FOUND otherwise.
async fn reachable(state: &AppState, actor: &Actor, perm: Perm, user: Uuid, own: bool) -> AppResult<Employee> {
    let e = repo::employee(&state.db, actor.company_id, user).await?.ok_or(AppError::not_found("employee"))?;
    if own && user == actor.user_id && actor.has(Perm::SelfProfile) {
        return Ok(e);
    }
    let Ok(r) = reach(actor, perm) else { return Err(AppError::not_found("employee")) };
    if !covers(state, &r, user).await? {
        return Err(AppError::not_found("employee"));
    }
    Ok(e)
}

/// A staff account whose record the caller's `staff:write` may change: every project the
/// employee acts in is one the caller's permission reaches (a project's HR clerk does not
/// edit the record of someone who works company-wide).
async fn writable(state: &AppState, actor: &Actor, user: Uuid) -> AppResult<()> {
    repo::employee(&state.db, actor.company_id, user).await?.ok_or(AppError::not_found("employee"))?;
    let Ok(mine) = reach(actor, Perm::StaffWrite) else { return Err(AppError::not_found("employee")) };
    let Some(mine) = mine else { return Ok(()) };
    match projects_of(state, user).await? {
        Some(theirs) if !theirs.is_empty() && theirs.iter().all(|p| mine.contains(p)) => Ok(()),
        Some(theirs) if theirs.iter().any(|p| mine.contains(p)) => Err(cannot_manage()),
        None => Err(cannot_manage()),
        Some(_) => Err(AppError::not_found("employee")),
    }
}

fn cannot_manage() -> AppError {
    AppError::Forbidden {
        reason: "CANNOT_MANAGE",
        msg: Msg::new("该员工的工作范围超出您的管理范围", "This employee works beyond the projects you manage"),
    }
}

/// An employee as the caller may see them: the ID-card number and phones in clear for
/// their own record or with `pii:read`, masked otherwise.
pub struct EmployeeView {
    pub employee: Employee,
    pub phone: Option<String>,
    pub id_card_number: Option<String>,
    pub emergency_phone: String,
}

pub fn view(state: &AppState, actor: &Actor, e: Employee) -> EmployeeView {
    let unmask = actor.unmask_pii() || actor.user_id == e.user_id;
    let id_card_number = e.id_card_enc.as_deref().map(|ct| match state.keys.decrypt_pii(ct) {
        Ok(plain) if unmask => plain,
        Ok(plain) => IdCardNumber::masked(&plain),
        Err(err) => {
            tracing::error!(user = %e.user_id, error = %err, "ID-card number does not decrypt");
            "****".into()
        }
    });
    let mask = |p: &str| if unmask || p.is_empty() { p.to_owned() } else { Phone::masked(p) };
    EmployeeView {
        phone: e.phone.as_deref().map(mask),
        emergency_phone: mask(&e.emergency_phone),
        id_card_number,
        employee: e,
    }
}

/// 员工列表 (`staff:read`): staff accounts with their records, in id order.
pub async fn employees(
    state: &AppState,
    actor: &Actor,
    project: Option<Uuid>,
    status: Option<EmployeeStatus>,
    search: Option<&str>,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Employee>> {
    let mut r = reach(actor, Perm::StaffRead)?;
    if let Some(p) = project {
        actor.require_project(Perm::StaffRead, p)?;
        r = Some(vec![p]);
    }
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    let phones = actor.unmask_pii();
    Ok(repo::employees(&state.db, actor.company_id, r.as_deref(), status, search, phones, after, limit as i64).await?)
}

/// One employee (`staff:read` reaching them, or oneself).
pub async fn employee(state: &AppState, actor: &Actor, user: Uuid) -> AppResult<Employee> {
    reachable(state, actor, Perm::StaffRead, user, true).await
}

/// What HR writes of a record. `None` keeps the ID-card number or the photo as they are;
/// an empty string removes it.
pub struct SaveEmployee {
    pub user_id: Uuid,
    pub gender: Option<Gender>,
    pub id_card_number: Option<String>,
    pub hire_date: Option<NaiveDate>,
    pub position: String,
    pub department: String,
    pub photo: Option<String>,
    pub emergency_name: String,
    pub emergency_phone: String,
    /// omitted: kept; empty: removed
    pub employee_no: Option<String>,
}

/// 工号: 1 to 20 letters, digits or dashes (what a terminal's keypad and badge hold).
fn employee_no(v: &str) -> AppResult<Option<String>> {
    let t = v.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.len() > 20 || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(invalid(
            "employeeNo",
            "工号应为1到20位字母、数字或短横线",
            "An employee number is 1 to 20 letters, digits or dashes",
        ));
    }
    Ok(Some(t.to_owned()))
}

fn optional_text(field: &'static str, v: &str, max: usize) -> AppResult<String> {
    if v.trim().is_empty() { Ok(String::new()) } else { types::text(field, v, max) }
}

fn emergency(name: &str, phone: &str) -> AppResult<(String, String)> {
    let name = optional_text("emergencyContactName", name, 50)?;
    let phone = match phone.trim() {
        "" => String::new(),
        p => Phone::parse("emergencyContactPhone", p)?.as_str().to_owned(),
    };
    Ok((name, phone))
}

/// A photo or scan key the caller uploaded (Some("") clears it).
async fn file(
    state: &AppState,
    actor: &Actor,
    field: &'static str,
    key: Option<&str>,
) -> AppResult<Option<Option<String>>> {
    match key.map(str::trim) {
        None => Ok(None),
        Some("") => Ok(Some(None)),
        Some(k) => {
            let keys = crate::files::service::require_own(state, actor, field, &[k.to_owned()]).await?;
            Ok(Some(keys.into_iter().next()))
        }
    }
}

/// 录入员工信息 (`staff:write` reaching the employee).
pub async fn save(state: &AppState, actor: &Actor, retry: &Retry, i: SaveEmployee) -> AppResult<Uuid> {
    writable(state, actor, i.user_id).await?;
    let position = optional_text("position", &i.position, 50)?;
    let department = optional_text("department", &i.department, 50)?;
    let (ename, ephone) = emergency(&i.emergency_name, &i.emergency_phone)?;
    let today = business_date(state.clock.now());
    if let Some(d) = i.hire_date
        && (d.year() < 1950 || d > today + chrono::Months::new(12))
    {
        return Err(invalid("hireDate", "入职日期不合理", "The hire date is out of range"));
    }
    let card = match i.id_card_number.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(n) => Some(Some(IdCardNumber::parse("idCardNumber", n)?)),
    };
    let photo = file(state, actor, "photo", i.photo.as_deref()).await?;
    let number = i.employee_no.as_deref().map(employee_no).transpose()?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::lock_employee(&mut tx, i.user_id).await?;
    // read again under the lock: a concurrent change of the photo or the card is kept
    let before = repo::employee(&mut *tx, actor.company_id, i.user_id).await?.ok_or(AppError::not_found("employee"))?;
    let (enc, idx) = match &card {
        None => (
            before.id_card_enc.clone(),
            before
                .id_card_enc
                .as_deref()
                .and_then(|ct| state.keys.decrypt_pii(ct).ok())
                .map(|p| state.keys.blind_index(&p)),
        ),
        Some(None) => (None, None),
        Some(Some(n)) => (Some(state.keys.encrypt_pii(n.as_str())), Some(state.keys.blind_index(n.as_str()))),
    };
    if let Some(idx) = &idx
        && repo::id_card_holder(&mut tx, actor.company_id, idx, i.user_id).await?
    {
        return Err(AppError::conflict(
            "idCardNumber",
            Msg::new("身份证号已登记给其他员工", "The ID-card number is another employee's"),
        ));
    }
    let photo_key = match photo {
        None => before.photo_key.clone(),
        Some(k) => k,
    };
    let number = match number {
        None => before.employee_no.clone(),
        Some(n) => n,
    };
    let now = state.clock.now();
    repo::upsert(
        &mut tx,
        actor.company_id,
        i.user_id,
        &repo::Record {
            gender: i.gender,
            id_card_enc: enc.as_deref(),
            id_card_idx: idx.as_deref(),
            hire_date: i.hire_date,
            position: &position,
            department: &department,
            photo_key: photo_key.as_deref(),
            emergency_name: &ename,
            emergency_phone: &ephone,
            employee_no: number.as_deref(),
        },
        now,
    )
    .await?;
    // what changed, never the personal data itself
    audit::record(
        &mut tx,
        now,
        actor,
        "employee.save",
        "employee",
        Some(i.user_id),
        serde_json::json!({ "position": position, "department": department, "hireDate": i.hire_date,
            "idCardChanged": card.is_some(), "photoChanged": i.photo.is_some() }),
    )
    .await?;
    tx.commit(&i.user_id).await?;
    Ok(i.user_id)
}

/// 在职状态 (`staff:write`): leaving disables the account and ends its sessions; coming
/// back from having left enables it again.
pub async fn set_status(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    user: Uuid,
    status: EmployeeStatus,
) -> AppResult<Uuid> {
    writable(state, actor, user).await?;
    // leaving disables the account and coming back enables it: only someone whose access
    // covers the account's (as for disabling it by hand) may do either
    let current = repo::employee(&state.db, actor.company_id, user).await?.map(|e| e.status);
    if status == EmployeeStatus::Left || current == Some(EmployeeStatus::Left) {
        crate::rbac::service::manageable(state, actor, Perm::StaffWrite, user).await.map_err(|e| match e {
            AppError::NotFound { .. } => AppError::not_found("employee"),
            other => other,
        })?;
    }
    if user == actor.user_id && status == EmployeeStatus::Left {
        return Err(invalid("userId", "不能将自己设为离职", "You cannot mark yourself as gone"));
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let was = repo::lock_employee(&mut tx, user).await?;
    let (was, disabled_by_leaving) = was.unwrap_or((EmployeeStatus::Active, false));
    let now = state.clock.now();
    let left_on = (status == EmployeeStatus::Left).then(|| business_date(now));
    let ended = status == EmployeeStatus::Left && was != EmployeeStatus::Left;
    let back = was == EmployeeStatus::Left && status != EmployeeStatus::Left;
    // leaving disables an active account, and coming back enables only what leaving
    // disabled (an account an administrator disabled stays so)
    let account = crate::rbac::service::account(state, user).await?;
    let disables = ended && account.status == AccountStatus::Active;
    let keep_flag = if ended {
        disables
    } else if back {
        false
    } else {
        disabled_by_leaving
    };
    repo::set_status(&mut tx, actor.company_id, user, status, left_on, keep_flag, now).await?;
    if ended {
        if disables {
            crate::rbac::service::set_account_status_in(&mut tx, actor.company_id, user, AccountStatus::Disabled, now)
                .await?;
        }
        crate::rbac::service::end_sessions(state, &mut tx, user, true).await?;
    } else if back && disabled_by_leaving {
        crate::rbac::service::set_account_status_in(&mut tx, actor.company_id, user, AccountStatus::Active, now)
            .await?;
    }
    audit::record(
        &mut tx,
        now,
        actor,
        "employee.status",
        "employee",
        Some(user),
        serde_json::json!({ "from": was.as_str(), "to": status.as_str() }),
    )
    .await?;
    tx.commit(&user).await?;
    if ended {
        crate::rbac::service::account_changed(state, user, crate::rbac::service::EVENT_SESSION_REVOKED).await;
    }
    Ok(user)
}

/// 我的档案 what an employee changes of their own record (`self:profile`): the emergency
/// contact and the photo. `None` keeps a field.
pub async fn update_own(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    emergency_name: Option<String>,
    emergency_phone: Option<String>,
    photo: Option<String>,
) -> AppResult<Uuid> {
    actor.require(Perm::SelfProfile)?;
    let name = emergency_name.map(|n| optional_text("emergencyContactName", &n, 50)).transpose()?;
    let phone = match emergency_phone.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(String::new()),
        Some(p) => Some(Phone::parse("emergencyContactPhone", p)?.as_str().to_owned()),
    };
    let photo = file(state, actor, "photo", photo.as_deref()).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let now = state.clock.now();
    repo::update_own(
        &mut tx,
        actor.company_id,
        actor.user_id,
        name.as_deref(),
        phone.as_deref(),
        photo.as_ref().map(|p| p.as_deref()),
        now,
    )
    .await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "employee.self_update",
        "employee",
        Some(actor.user_id),
        serde_json::json!({ "emergencyContact": name.is_some() || phone.is_some(), "photo": photo.is_some() }),
    )
    .await?;
    tx.commit(&actor.user_id).await?;
    Ok(actor.user_id)
}

// ---- certificates ------------------------------------------------------------------------

/// One certificate, readable with its employee's record.
pub async fn certificate(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Certificate> {
    let c = repo::certificate(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("certificate"))?;
    employee(state, actor, c.user_id).await.map_err(|_| AppError::not_found("certificate"))?;
    Ok(c)
}

/// The certificates of these employees, each list by kind then expiry.
pub async fn certificates_of(state: &AppState, users: &[Uuid]) -> AppResult<Vec<Certificate>> {
    Ok(repo::certificates_of(&state.db, users).await?)
}

/// A certificate as HR enters it.
pub struct CertificateInput {
    pub number: String,
    pub issuer: String,
    pub issued_on: NaiveDate,
    pub expires_on: Option<NaiveDate>,
    pub scan: Option<String>,
}

struct Checked {
    number: String,
    issuer: String,
    issued_on: NaiveDate,
    expires_on: Option<NaiveDate>,
}

fn check_certificate(state: &AppState, c: &CertificateInput) -> AppResult<Checked> {
    let number = types::text("number", &c.number, 50)?;
    let issuer = types::text("issuer", &c.issuer, 100)?;
    let today = business_date(state.clock.now());
    if c.issued_on > today || c.issued_on.year() < 1950 {
        return Err(invalid("issuedOn", "发证日期不合理", "The issue date is out of range"));
    }
    if let Some(e) = c.expires_on
        && (e < c.issued_on || e.year() > 2200)
    {
        return Err(invalid("expiresOn", "有效期须晚于发证日期", "The expiry must come after the issue date"));
    }
    Ok(Checked { number, issuer, issued_on: c.issued_on, expires_on: c.expires_on })
}

/// 登记证书 (`staff:write` reaching the employee).
pub async fn add_certificate(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    user: Uuid,
    kind: CertificateKind,
    c: CertificateInput,
) -> AppResult<Uuid> {
    writable(state, actor, user).await?;
    let k = check_certificate(state, &c)?;
    let scan = file(state, actor, "scan", c.scan.as_deref()).await?.flatten();
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let now = state.clock.now();
    let cert = Certificate {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        user_id: user,
        kind,
        number: k.number,
        issuer: k.issuer,
        issued_on: k.issued_on,
        expires_on: k.expires_on,
        scan_key: scan,
        created_by: actor.user_id,
        created_at: now,
        updated_at: now,
    };
    repo::insert_certificate(&mut tx, &cert).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "certificate.add",
        "certificate",
        Some(cert.id),
        serde_json::json!({ "userId": user, "kind": kind.as_str(), "expiresOn": cert.expires_on }),
    )
    .await?;
    tx.commit(&cert.id).await?;
    Ok(cert.id)
}

/// A certificate the caller's `staff:write` reaches, locked.
async fn writable_certificate(
    state: &AppState,
    actor: &Actor,
    tx: &mut sqlx::PgConnection,
    id: Uuid,
) -> AppResult<Certificate> {
    let c = repo::lock_certificate(tx, actor.company_id, id).await?.ok_or(AppError::not_found("certificate"))?;
    writable(state, actor, c.user_id).await.map_err(|_| AppError::not_found("certificate"))?;
    Ok(c)
}

/// 换证 a renewal or a correction (`staff:write`): a new expiry arms the reminders again.
pub async fn update_certificate(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    id: Uuid,
    c: CertificateInput,
) -> AppResult<Uuid> {
    // checked before the retry key is taken: a wrong id or value changes nothing
    let cert = repo::certificate(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("certificate"))?;
    writable(state, actor, cert.user_id).await.map_err(|_| AppError::not_found("certificate"))?;
    let k = check_certificate(state, &c)?;
    let scan = file(state, actor, "scan", c.scan.as_deref()).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let old = writable_certificate(state, actor, &mut tx, id).await?;
    let now = state.clock.now();
    let new = Certificate {
        number: k.number,
        issuer: k.issuer,
        issued_on: k.issued_on,
        expires_on: k.expires_on,
        scan_key: match scan {
            None => old.scan_key.clone(),
            Some(s) => s,
        },
        updated_at: now,
        ..old.clone()
    };
    repo::update_certificate(&mut tx, &new).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "certificate.update",
        "certificate",
        Some(id),
        serde_json::json!({ "expiresOn": { "from": old.expires_on, "to": new.expires_on } }),
    )
    .await?;
    tx.commit(&id).await?;
    Ok(id)
}

/// 删除证书 (`staff:write`).
pub async fn remove_certificate(state: &AppState, actor: &Actor, retry: &Retry, id: Uuid) -> AppResult<Uuid> {
    let cert = repo::certificate(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("certificate"))?;
    writable(state, actor, cert.user_id).await.map_err(|_| AppError::not_found("certificate"))?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let c = writable_certificate(state, actor, &mut tx, id).await?;
    repo::delete_certificate(&mut tx, id).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "certificate.remove",
        "certificate",
        Some(id),
        serde_json::json!({ "userId": c.user_id, "kind": c.kind.as_str(), "number": c.number }),
    )
    .await?;
    tx.commit(&id).await?;
    Ok(id)
}

/// 即将到期的证书 (`staff:read`): expiring within `days` (expired ones first).
pub async fn expiring(state: &AppState, actor: &Actor, days: i32, limit: usize) -> AppResult<Vec<Certificate>> {
    if !(0..=366).contains(&days) {
        return Err(invalid("withinDays", "天数须在0到366之间", "Days must be 0 to 366"));
    }
    let r = reach(actor, Perm::StaffRead)?;
    let until = business_date(state.clock.now()) + chrono::TimeDelta::days(i64::from(days));
    Ok(repo::expiring(&state.db, actor.company_id, r.as_deref(), until, limit as i64).await?)
}

/// The certificates work of each category needs (`staff:read`).
pub async fn requirements(state: &AppState, actor: &Actor) -> AppResult<Vec<(String, CertificateKind)>> {
    actor.require(Perm::StaffRead)?;
    Ok(repo::requirements(&state.db, actor.company_id).await?)
}

/// 持证上岗 (`staff:write` company-wide): work of a category is offered only to holders
/// of a valid certificate of one of `kinds` (none: to anyone).
pub async fn set_requirement(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    category: crate::workorders::model::Category,
    kinds: &[CertificateKind],
) -> AppResult<Uuid> {
    if reach(actor, Perm::StaffWrite)?.is_some() {
        return Err(AppError::forbidden());
    }
    let mut kinds: Vec<String> = kinds.iter().map(|k| k.as_str().to_owned()).collect();
    kinds.sort();
    kinds.dedup();
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::set_requirements(&mut tx, actor.company_id, category.as_str(), &kinds).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "certificate.requirement",
        "company",
        Some(actor.company_id),
        serde_json::json!({ "category": category.as_str(), "kinds": kinds }),
    )
    .await?;
    tx.commit(&actor.company_id).await?;
    Ok(actor.company_id)
}

/// The work-order module's question (who may be offered work of a category), answered
/// here: registered at startup as its `Eligibility` part.
pub struct Licences;

#[async_trait::async_trait]
impl crate::workorders::service::Eligibility for Licences {
    async fn able(
        &self,
        db: &mut sqlx::PgConnection,
        company: Uuid,
        category: crate::workorders::model::Category,
        users: Vec<Uuid>,
        today: NaiveDate,
    ) -> AppResult<Vec<Uuid>> {
        able(db, company, category.as_str(), users, today).await
    }
}

/// Of the technicians offered work of a category: those at work (not on leave, not gone)
/// and, when the category needs a certificate, holding a valid one today.
pub async fn able(
    db: &mut sqlx::PgConnection,
    company: Uuid,
    category: &str,
    users: Vec<Uuid>,
    today: NaiveDate,
) -> AppResult<Vec<Uuid>> {
    if users.is_empty() {
        return Ok(users);
    }
    let away = repo::away(&mut *db, &users).await?;
    let users: Vec<Uuid> = users.into_iter().filter(|u| !away.contains(u)).collect();
    let kinds = repo::required_kinds(&mut *db, company, category).await?;
    if kinds.is_empty() || users.is_empty() {
        return Ok(users);
    }
    let ok = repo::qualified(&mut *db, &users, &kinds, today).await?;
    Ok(users.into_iter().filter(|u| ok.contains(u)).collect())
}

/// 证书到期提醒: 30 and 7 days before a certificate expires, the employee and the
/// managers of their projects are told once per step (the nearest step only when the
/// scheduler was down). Returns the reminders sent.
pub async fn remind_expiring(state: &AppState) -> AppResult<usize> {
    use crate::notify::model::{Category, NewNotification, Priority};
    let now = state.clock.now();
    let today = business_date(now);
    let mut sent = 0;
    for (n, days) in REMINDER_DAYS.iter().enumerate() {
        let shorter = REMINDER_DAYS.get(n + 1).copied();
        let mut tx = state.db.begin().await?;
        let due = repo::take_reminders(&mut tx, today, *days, shorter, now).await?;
        for (id, user, company, kind, expires) in &due {
            // the managers of the projects they act in (a company-wide employee: HR is told
            // through the expiring list)
            let projects = projects_of(state, *user).await?.unwrap_or_default();
            let mut to = repo::managers_of(&mut tx, &projects, *user).await?;
            to.insert(0, *user);
            let left = (*expires - today).num_days();
            let name = crate::rbac::service::name_of_in(&mut tx, *user).await?.unwrap_or_default();
            crate::notify::service::enqueue(
                state,
                &mut tx,
                *company,
                &to,
                &NewNotification {
                    category: Category::Staff,
                    priority: Priority::Normal,
                    title: "证书即将到期".into(),
                    body: format!("{name}的{}将于 {expires} 到期（还有 {left} 天），请及时复审或换证。", kind.label()),
                    data: serde_json::json!({ "route": "certificate", "id": id, "userId": user }),
                    channels: None,
                },
            )
            .await?;
        }
        tx.commit().await?;
        sent += due.len();
    }
    Ok(sent)
}

impl CertificateKind {
    /// The name printed in notices.
    pub fn label(self) -> &'static str {
        match self {
            CertificateKind::Electrician => "电工证",
            CertificateKind::SecurityGuard => "保安员证",
            CertificateKind::ElevatorSafety => "电梯安全管理员证",
            CertificateKind::FireControl => "消防设施操作员证",
            CertificateKind::Welder => "焊工证",
            CertificateKind::Boiler => "锅炉操作证",
            CertificateKind::Other => "证书",
        }
    }
}
