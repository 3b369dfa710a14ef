//! SQL for employee records, certificates and certificate requirements.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{Certificate, CertificateKind, Employee, EmployeeStatus, Gender};

/// A page of staff accounts (holding a role other than the owner's, or with a record)
/// with their records, in id order: of the company, or (with
/// `projects`) those whose grants reach one of the projects (a company-wide grant reaches
/// all). `search` matches the name literally, and the phone when `phones` (`pii:read`: a
/// phone search by someone who sees masks would confirm the masked digits one by one).
#[allow(clippy::too_many_arguments)]
pub async fn employees(
    db: impl PgExecutor<'_>,
    company: Uuid,
    projects: Option<&[Uuid]>,
    status: Option<EmployeeStatus>,
    search: Option<&str>,
    phones: bool,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Employee>> {
    let like = search.map(|s| format!("%{}%", s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")));
    sqlx::query_as!(
        Employee,
        r#"SELECT u.id AS user_id, u.company_id, u.name, u.phone, u.skills, e.user_id IS NOT NULL AS "recorded!",
                  e.gender AS "gender?: Gender", e.id_card_enc AS "id_card_enc?", e.hire_date AS "hire_date?",
                  coalesce(e.position, '') AS "position!", coalesce(e.department, '') AS "department!",
                  e.photo_key AS "photo_key?", coalesce(e.status, 'active') AS "status!: EmployeeStatus",
                  e.left_on AS "left_on?", coalesce(e.emergency_name, '') AS "emergency_name!",
                  coalesce(e.emergency_phone, '') AS "emergency_phone!", e.employee_no AS "employee_no?",
                  e.updated_at AS "updated_at?"
           FROM users u LEFT JOIN employees e ON e.user_id = u.id
           WHERE u.company_id = $1 AND (e.user_id IS NOT NULL OR EXISTS (
                    SELECT 1 FROM user_roles sr JOIN roles r ON r.id = sr.role_id
                    WHERE sr.user_id = u.id AND r.code <> 'owner'))
             AND ($2::uuid[] IS NULL OR EXISTS (
                    SELECT 1 FROM user_roles ur
                    WHERE ur.user_id = u.id AND (ur.scope = 'company' OR ur.project_ids && $2
                         OR (ur.scope = 'own' AND (EXISTS (SELECT 1 FROM projects p WHERE p.manager_id = ur.user_id AND p.id = ANY($2))
                             OR EXISTS (SELECT 1 FROM project_service_staff ps
                                        WHERE ps.user_id = ur.user_id AND ps.project_id = ANY($2)))))))
             AND ($3::text IS NULL OR coalesce(e.status, 'active') = $3)
             AND ($4::text IS NULL OR u.name LIKE $4 OR ($7 AND u.phone LIKE $4))
             AND ($5::uuid IS NULL OR u.id > $5)
           ORDER BY u.id LIMIT $6"#,
        company,
        projects as Option<&[Uuid]>,
        status.map(|s| s.as_str()),
        like,
        after,
        limit,
        phones
    )
    .fetch_all(db)
    .await
}

/// One staff account of the company with its record.
pub async fn employee(db: impl PgExecutor<'_>, company: Uuid, user: Uuid) -> sqlx::Result<Option<Employee>> {
    sqlx::query_as!(
        Employee,
        r#"SELECT u.id AS user_id, u.company_id, u.name, u.phone, u.skills, e.user_id IS NOT NULL AS "recorded!",
                  e.gender AS "gender?: Gender", e.id_card_enc AS "id_card_enc?", e.hire_date AS "hire_date?",
                  coalesce(e.position, '') AS "position!", coalesce(e.department, '') AS "department!",
                  e.photo_key AS "photo_key?", coalesce(e.status, 'active') AS "status!: EmployeeStatus",
                  e.left_on AS "left_on?", coalesce(e.emergency_name, '') AS "emergency_name!",
                  coalesce(e.emergency_phone, '') AS "emergency_phone!", e.employee_no AS "employee_no?",
                  e.updated_at AS "updated_at?"
           FROM users u LEFT JOIN employees e ON e.user_id = u.id
           WHERE u.company_id = $1 AND u.id = $2 AND (e.user_id IS NOT NULL OR EXISTS (
                    SELECT 1 FROM user_roles sr JOIN roles r ON r.id = sr.role_id
                    WHERE sr.user_id = u.id AND r.code <> 'owner'))"#,
        company,
        user
    )
    .fetch_optional(db)
    .await
}

/// The projects a staff account's grants name, whether one is company-wide, and whether one
/// is `own` (reaching the projects it manages or serves).
pub async fn grant_reach(db: impl PgExecutor<'_>, user: Uuid) -> sqlx::Result<(bool, bool, Vec<Uuid>)> {
    let rows = sqlx::query!("SELECT scope, project_ids FROM user_roles WHERE user_id = $1", user).fetch_all(db).await?;
    let company = rows.iter().any(|r| r.scope == "company");
    let own = rows.iter().any(|r| r.scope == "own");
    let mut ids: Vec<Uuid> = rows.into_iter().flat_map(|r| r.project_ids).collect();
    ids.sort();
    ids.dedup();
    Ok((company, own, ids))
}

/// The fields HR writes.
pub struct Record<'a> {
    pub gender: Option<Gender>,
    pub id_card_enc: Option<&'a [u8]>,
    pub id_card_idx: Option<&'a [u8]>,
    pub hire_date: Option<NaiveDate>,
    pub position: &'a str,
    pub department: &'a str,
    pub photo_key: Option<&'a str>,
    pub emergency_name: &'a str,
    pub emergency_phone: &'a str,
    pub employee_no: Option<&'a str>,
}

/// The record's status, and whether leaving disabled the account, under the row's lock.
pub async fn lock_employee(db: &mut PgConnection, user: Uuid) -> sqlx::Result<Option<(EmployeeStatus, bool)>> {
    let r = sqlx::query!(
        r#"SELECT status AS "status: EmployeeStatus", disabled_account FROM employees WHERE user_id = $1 FOR UPDATE"#,
        user
    )
    .fetch_optional(db)
    .await?;
    Ok(r.map(|r| (r.status, r.disabled_account)))
}

pub async fn upsert(
    db: &mut PgConnection,
    company: Uuid,
    user: Uuid,
    r: &Record<'_>,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO employees (user_id, company_id, gender, id_card_enc, id_card_idx, hire_date, position, department,
                                photo_key, status, emergency_name, emergency_phone, employee_no, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10, $11, $13, $12, $12)
         ON CONFLICT (user_id) DO UPDATE SET gender = $3, id_card_enc = $4, id_card_idx = $5, hire_date = $6,
             position = $7, department = $8, photo_key = $9, emergency_name = $10, emergency_phone = $11,
             employee_no = $13, updated_at = $12",
        user,
        company,
        r.gender.map(|g| g.as_str()),
        r.id_card_enc,
        r.id_card_idx,
        r.hire_date,
        r.position,
        r.department,
        r.photo_key,
        r.emergency_name,
        r.emergency_phone,
        at,
        r.employee_no
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Whose record (other than `except`) carries this ID-card number's blind index.
pub async fn id_card_holder(db: &mut PgConnection, company: Uuid, idx: &[u8], except: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM employees WHERE company_id = $1 AND id_card_idx = $2 AND user_id <> $3) AS "e!""#,
        company,
        idx,
        except
    )
    .fetch_one(db)
    .await
}

/// A status change; a record is made for an account without one.
pub async fn set_status(
    db: &mut PgConnection,
    company: Uuid,
    user: Uuid,
    status: EmployeeStatus,
    left_on: Option<NaiveDate>,
    disabled_account: bool,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO employees (user_id, company_id, status, left_on, disabled_account, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (user_id) DO UPDATE SET status = $3, left_on = $4, disabled_account = $5, updated_at = $6",
        user,
        company,
        status.as_str(),
        left_on,
        disabled_account,
        at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// What an employee changes of their own record: the emergency contact (name, phone) and
/// the photo (`Some(None)` removes it); `None` keeps a field.
pub async fn update_own(
    db: &mut PgConnection,
    company: Uuid,
    user: Uuid,
    emergency_name: Option<&str>,
    emergency_phone: Option<&str>,
    photo: Option<Option<&str>>,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO employees (user_id, company_id, status, emergency_name, emergency_phone, photo_key, created_at,
                                updated_at)
         VALUES ($1, $2, 'active', coalesce($3, ''), coalesce($4, ''), $6, $7, $7)
         ON CONFLICT (user_id) DO UPDATE SET emergency_name = coalesce($3, employees.emergency_name),
             emergency_phone = coalesce($4, employees.emergency_phone),
             photo_key = CASE WHEN $5 THEN $6 ELSE employees.photo_key END, updated_at = $7",
        user,
        company,
        emergency_name,
        emergency_phone,
        photo.is_some(),
        photo.flatten(),
        at
    )
    .execute(db)
    .await?;
    Ok(())
}

// ---- certificates ------------------------------------------------------------------------

pub async fn insert_certificate(db: &mut PgConnection, c: &Certificate) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO certificates (id, company_id, user_id, kind, number, issuer, issued_on, expires_on, scan_key,
                                   created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        c.id,
        c.company_id,
        c.user_id,
        c.kind.as_str(),
        c.number,
        c.issuer,
        c.issued_on,
        c.expires_on,
        c.scan_key,
        c.created_by,
        c.created_at,
        c.updated_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn update_certificate(db: &mut PgConnection, c: &Certificate) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE certificates SET number = $2, issuer = $3, issued_on = $4, expires_on = $5, scan_key = $6,
                                 updated_at = $7
         WHERE id = $1",
        c.id,
        c.number,
        c.issuer,
        c.issued_on,
        c.expires_on,
        c.scan_key,
        c.updated_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn delete_certificate(db: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM certificates WHERE id = $1", id).execute(db).await?;
    Ok(())
}

pub async fn certificate(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<Certificate>> {
    sqlx::query_as!(
        Certificate,
        r#"SELECT id, company_id, user_id, kind AS "kind: CertificateKind", number, issuer, issued_on, expires_on,
                  scan_key, created_by, created_at, updated_at
           FROM certificates WHERE company_id = $1 AND id = $2"#,
        company,
        id
    )
    .fetch_optional(db)
    .await
}

/// A certificate read under its row lock (a change or removal).
pub async fn lock_certificate(db: &mut PgConnection, company: Uuid, id: Uuid) -> sqlx::Result<Option<Certificate>> {
    sqlx::query_as!(
        Certificate,
        r#"SELECT id, company_id, user_id, kind AS "kind: CertificateKind", number, issuer, issued_on, expires_on,
                  scan_key, created_by, created_at, updated_at
           FROM certificates WHERE company_id = $1 AND id = $2 FOR UPDATE"#,
        company,
        id
    )
    .fetch_optional(db)
    .await
}

/// The certificates of these accounts, by kind then expiry.
pub async fn certificates_of(db: impl PgExecutor<'_>, users: &[Uuid]) -> sqlx::Result<Vec<Certificate>> {
    sqlx::query_as!(
        Certificate,
        r#"SELECT id, company_id, user_id, kind AS "kind: CertificateKind", number, issuer, issued_on, expires_on,
                  scan_key, created_by, created_at, updated_at
           FROM certificates WHERE user_id = ANY($1) ORDER BY user_id, kind, expires_on NULLS LAST, id"#,
        users
    )
    .fetch_all(db)
    .await
}

/// Certificates of the company expiring on or before `until` (expired ones included),
/// soonest first; with `projects`, of staff whose grants reach one of them.
pub async fn expiring(
    db: impl PgExecutor<'_>,
    company: Uuid,
    projects: Option<&[Uuid]>,
    until: NaiveDate,
    limit: i64,
) -> sqlx::Result<Vec<Certificate>> {
    sqlx::query_as!(
        Certificate,
        r#"SELECT c.id, c.company_id, c.user_id, c.kind AS "kind: CertificateKind", c.number, c.issuer, c.issued_on,
                  c.expires_on, c.scan_key, c.created_by, c.created_at, c.updated_at
           FROM certificates c
           WHERE c.company_id = $1 AND c.expires_on <= $3
             AND ($2::uuid[] IS NULL OR EXISTS (
                    SELECT 1 FROM user_roles ur
                    WHERE ur.user_id = c.user_id AND (ur.scope = 'company' OR ur.project_ids && $2
                         OR (ur.scope = 'own' AND (EXISTS (SELECT 1 FROM projects p WHERE p.manager_id = ur.user_id AND p.id = ANY($2))
                             OR EXISTS (SELECT 1 FROM project_service_staff ps
                                        WHERE ps.user_id = ur.user_id AND ps.project_id = ANY($2)))))))
           ORDER BY c.expires_on, c.id LIMIT $4"#,
        company,
        projects as Option<&[Uuid]>,
        until,
        limit
    )
    .fetch_all(db)
    .await
}

/// Of these accounts, those who hold a certificate of one of `kinds` valid on `day` and are
/// at work (no record, or an active one).
pub async fn qualified(
    db: &mut PgConnection,
    users: &[Uuid],
    kinds: &[String],
    day: NaiveDate,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT DISTINCT c.user_id FROM certificates c
         WHERE c.user_id = ANY($1) AND c.kind = ANY($2) AND c.issued_on <= $3
           AND (c.expires_on IS NULL OR c.expires_on >= $3)",
        users,
        kinds,
        day
    )
    .fetch_all(db)
    .await
}

/// Of these accounts, those not at work (on leave, or gone).
pub async fn away(db: &mut PgConnection, users: &[Uuid]) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!("SELECT user_id FROM employees WHERE user_id = ANY($1) AND status <> 'active'", users)
        .fetch_all(db)
        .await
}

/// The kinds of certificate work of a category needs in the company.
pub async fn required_kinds(db: &mut PgConnection, company: Uuid, category: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        "SELECT kind FROM certificate_requirements WHERE company_id = $1 AND category = $2 ORDER BY kind",
        company,
        category
    )
    .fetch_all(db)
    .await
}

/// Every requirement of the company: (category, kind).
pub async fn requirements(db: impl PgExecutor<'_>, company: Uuid) -> sqlx::Result<Vec<(String, CertificateKind)>> {
    let rows = sqlx::query!(
        r#"SELECT category, kind AS "kind: CertificateKind" FROM certificate_requirements
           WHERE company_id = $1 ORDER BY category, kind"#,
        company
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.category, r.kind)).collect())
}

pub async fn set_requirements(
    db: &mut PgConnection,
    company: Uuid,
    category: &str,
    kinds: &[String],
) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM certificate_requirements WHERE company_id = $1 AND category = $2", company, category)
        .execute(&mut *db)
        .await?;
    sqlx::query!(
        "INSERT INTO certificate_requirements (company_id, category, kind) SELECT $1, $2, unnest($3::text[])",
        company,
        category,
        kinds
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A reminder step due: a certificate expiring within `days` of `today` whose reminder of
/// that step (for its expiry date) was not sent, marked sent. Returns (certificate, user,
/// company, kind, expires on).
pub async fn take_reminders(
    db: &mut PgConnection,
    today: NaiveDate,
    days: i32,
    shorter: Option<i32>,
    at: DateTime<Utc>,
) -> sqlx::Result<Vec<(Uuid, Uuid, Uuid, CertificateKind, NaiveDate)>> {
    let rows = sqlx::query!(
        r#"WITH due AS (
               SELECT c.id, c.expires_on FROM certificates c JOIN users u ON u.id = c.user_id
               WHERE c.expires_on IS NOT NULL AND c.expires_on >= $1 AND c.expires_on <= $1 + $2::int
                 AND ($3::int IS NULL OR c.expires_on > $1 + $3::int) AND u.status = 'active'
           ), sent AS (
               INSERT INTO certificate_reminders (certificate_id, expires_on, days, sent_at)
               SELECT id, expires_on, $2, $4 FROM due
               ON CONFLICT DO NOTHING RETURNING certificate_id
           )
           SELECT c.id, c.user_id, c.company_id, c.kind AS "kind: CertificateKind", c.expires_on AS "expires_on!"
           FROM certificates c JOIN sent ON sent.certificate_id = c.id"#,
        today,
        days,
        shorter,
        at
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.user_id, r.company_id, r.kind, r.expires_on)).collect())
}

/// The managers (other than themselves) of these projects.
pub async fn managers_of(db: &mut PgConnection, projects: &[Uuid], user: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT DISTINCT manager_id AS "manager_id!" FROM projects
           WHERE id = ANY($1) AND manager_id IS NOT NULL AND manager_id <> $2"#,
        projects,
        user
    )
    .fetch_all(db)
    .await
}

/// Staff accounts of the company by their employee numbers (what terminals send).
pub async fn by_employee_no(
    db: impl PgExecutor<'_>,
    company: Uuid,
    nos: &[String],
) -> sqlx::Result<Vec<(String, Uuid)>> {
    let rows = sqlx::query!(
        r#"SELECT e.employee_no AS "no!", e.user_id FROM employees e
           WHERE e.company_id = $1 AND e.employee_no = ANY($2) AND e.status <> 'left'"#,
        company,
        nos
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.no, r.user_id)).collect())
}
