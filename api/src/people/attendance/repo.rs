//! 考勤 SQL.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::model::{
    AttendanceDay, AttendanceRequest, CalendarDay, CalendarKind, DayKind, DayStatus, Direction, LeaveType, MonthRow,
    Punch, PunchSource, RequestKind, RequestStatus, RotaAssignment, RotaDay, RotaKind, RotaPattern, Shift, Terminal,
    TerminalKind,
};

// ---- shifts and patterns -------------------------------------------------------------------

pub async fn upsert_shift(db: impl PgExecutor<'_>, s: &Shift) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO shifts (id, company_id, project_id, name, starts_at, ends_at, break_minutes, late_grace_minutes,
                             early_grace_minutes, absent_after_minutes, overtime_after_minutes, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
         ON CONFLICT (id) DO UPDATE SET name = $4, starts_at = $5, ends_at = $6, break_minutes = $7,
             late_grace_minutes = $8, early_grace_minutes = $9, absent_after_minutes = $10,
             overtime_after_minutes = $11, updated_at = $12",
        s.id,
        s.company_id,
        s.project_id,
        s.name,
        s.starts_at,
        s.ends_at,
        s.break_minutes,
        s.late_grace_minutes,
        s.early_grace_minutes,
        s.absent_after_minutes,
        s.overtime_after_minutes,
        s.updated_at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A company's shifts (of a project and the company-wide ones, when a project is given).
pub async fn shifts(db: impl PgExecutor<'_>, company: Uuid, project: Option<Uuid>) -> sqlx::Result<Vec<Shift>> {
    sqlx::query_as!(
        Shift,
        "SELECT id, company_id, project_id, name, starts_at, ends_at, break_minutes, late_grace_minutes,
                early_grace_minutes, absent_after_minutes, overtime_after_minutes, updated_at
         FROM shifts WHERE company_id = $1 AND ($2::uuid IS NULL OR project_id IS NULL OR project_id = $2)
         ORDER BY starts_at, name",
        company,
        project
    )
    .fetch_all(db)
    .await
}

pub async fn shift(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<Shift>> {
    sqlx::query_as!(
        Shift,
        "SELECT id, company_id, project_id, name, starts_at, ends_at, break_minutes, late_grace_minutes,
                early_grace_minutes, absent_after_minutes, overtime_after_minutes, updated_at
         FROM shifts WHERE company_id = $1 AND id = $2",
        company,
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn upsert_pattern(db: impl PgExecutor<'_>, p: &RotaPattern) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO rota_patterns (id, company_id, project_id, name, kind, slots, observe_holidays, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
         ON CONFLICT (id) DO UPDATE SET name = $4, kind = $5, slots = $6, observe_holidays = $7, updated_at = $8",
        p.id,
        p.company_id,
        p.project_id,
        p.name,
        p.kind.as_str(),
        &p.slots as &[Option<Uuid>],
        p.observe_holidays,
        p.updated_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn patterns(db: impl PgExecutor<'_>, company: Uuid, project: Option<Uuid>) -> sqlx::Result<Vec<RotaPattern>> {
    sqlx::query_as!(
        RotaPattern,
        r#"SELECT id, company_id, project_id, name, kind AS "kind: RotaKind", slots AS "slots!: Vec<Option<Uuid>>",
                  observe_holidays, updated_at
           FROM rota_patterns WHERE company_id = $1 AND ($2::uuid IS NULL OR project_id = $2) ORDER BY name"#,
        company,
        project
    )
    .fetch_all(db)
    .await
}

pub async fn pattern(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<RotaPattern>> {
    sqlx::query_as!(
        RotaPattern,
        r#"SELECT id, company_id, project_id, name, kind AS "kind: RotaKind", slots AS "slots!: Vec<Option<Uuid>>",
                  observe_holidays, updated_at
           FROM rota_patterns WHERE company_id = $1 AND id = $2"#,
        company,
        id
    )
    .fetch_optional(db)
    .await
}

// ---- rota ----------------------------------------------------------------------------------

/// Clears the way for a project's assignment from `from`: the project's later ones go, an
/// earlier open or overlapping one ends the day before. Returns the employees who follow
/// another project's pattern from then on (left as they are).
pub async fn end_assignments(
    db: &mut sqlx::PgConnection,
    project: Uuid,
    users: &[Uuid],
    from: NaiveDate,
    to: Option<NaiveDate>,
) -> sqlx::Result<Vec<Uuid>> {
    let elsewhere = sqlx::query_scalar!(
        "SELECT DISTINCT user_id FROM rota_assignments
         WHERE user_id = ANY($1) AND project_id <> $2 AND (to_day IS NULL OR to_day >= $3)
           AND ($4::date IS NULL OR from_day <= $4)",
        users,
        project,
        from,
        to
    )
    .fetch_all(&mut *db)
    .await?;
    sqlx::query!(
        "DELETE FROM rota_assignments WHERE user_id = ANY($1) AND project_id = $2 AND from_day >= $3",
        users,
        project,
        from
    )
    .execute(&mut *db)
    .await?;
    sqlx::query!(
        "UPDATE rota_assignments SET to_day = $3::date - 1
         WHERE user_id = ANY($1) AND project_id = $2 AND from_day < $3 AND (to_day IS NULL OR to_day >= $3)",
        users,
        project,
        from
    )
    .execute(&mut *db)
    .await?;
    Ok(elsewhere)
}

/// Serialises whatever recomputes these employees' days (sorted: no two transactions wait
/// on each other in a circle).
pub async fn lock_users(db: impl PgExecutor<'_>, users: &[Uuid]) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT count(pg_advisory_xact_lock(hashtextextended(u::text, 1701))) AS n
         FROM (SELECT u FROM unnest($1::uuid[]) AS u ORDER BY u) t",
        users
    )
    .fetch_one(db)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_assignments(
    db: impl PgExecutor<'_>,
    company: Uuid,
    project: Uuid,
    pattern: Uuid,
    users: &[Uuid],
    from: NaiveDate,
    to: Option<NaiveDate>,
    by: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    let ids: Vec<Uuid> = users.iter().map(|_| Uuid::now_v7()).collect();
    sqlx::query!(
        "INSERT INTO rota_assignments (id, company_id, project_id, user_id, pattern_id, from_day, to_day, created_by, created_at)
         SELECT id, $3, $4, user_id, $5, $6, $7, $8, $9 FROM UNNEST($1::uuid[], $2::uuid[]) AS t(id, user_id)",
        &ids,
        users,
        company,
        project,
        pattern,
        from,
        to,
        by,
        at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The assignments of some employees that overlap `from..=to`.
pub async fn assignments(
    db: impl PgExecutor<'_>,
    users: &[Uuid],
    from: NaiveDate,
    to: NaiveDate,
) -> sqlx::Result<Vec<RotaAssignment>> {
    sqlx::query_as!(
        RotaAssignment,
        "SELECT id, project_id, user_id, pattern_id, from_day, to_day FROM rota_assignments
         WHERE user_id = ANY($1) AND from_day <= $3 AND (to_day IS NULL OR to_day >= $2) ORDER BY user_id, from_day",
        users,
        from,
        to
    )
    .fetch_all(db)
    .await
}

pub async fn set_rota_day(
    db: impl PgExecutor<'_>,
    company: Uuid,
    d: &RotaDay,
    by: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "INSERT INTO rota_days (user_id, day, company_id, project_id, shift_id, set_by, set_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (user_id, day) DO UPDATE SET shift_id = $5, set_by = $6, set_at = $7
         WHERE rota_days.project_id = $4",
        d.user_id,
        d.day,
        company,
        d.project_id,
        d.shift_id,
        by,
        at
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Removes a project's hand-set day (another project's stays).
pub async fn clear_rota_day(db: impl PgExecutor<'_>, project: Uuid, user: Uuid, day: NaiveDate) -> sqlx::Result<u64> {
    Ok(sqlx::query!("DELETE FROM rota_days WHERE user_id = $1 AND day = $2 AND project_id = $3", user, day, project)
        .execute(db)
        .await?
        .rows_affected())
}

pub async fn rota_days(
    db: impl PgExecutor<'_>,
    users: &[Uuid],
    from: NaiveDate,
    to: NaiveDate,
) -> sqlx::Result<Vec<RotaDay>> {
    sqlx::query_as!(
        RotaDay,
        "SELECT user_id, day, project_id, shift_id FROM rota_days WHERE user_id = ANY($1) AND day BETWEEN $2 AND $3",
        users,
        from,
        to
    )
    .fetch_all(db)
    .await
}

/// Employees a project's rota covers on some day of `from..=to` (patterns or days set by hand).
pub async fn rostered_in(
    db: impl PgExecutor<'_>,
    company: Uuid,
    project: Option<Uuid>,
    from: NaiveDate,
    to: NaiveDate,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT user_id AS "user_id!" FROM rota_assignments
           WHERE company_id = $1 AND ($2::uuid IS NULL OR project_id = $2) AND from_day <= $4 AND (to_day IS NULL OR to_day >= $3)
           UNION
           SELECT user_id FROM rota_days WHERE company_id = $1 AND ($2::uuid IS NULL OR project_id = $2) AND day BETWEEN $3 AND $4"#,
        company,
        project,
        from,
        to
    )
    .fetch_all(db)
    .await
}

/// Companies with someone on a rota over `from..=to`.
pub async fn rostered_companies(db: impl PgExecutor<'_>, from: NaiveDate, to: NaiveDate) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT company_id AS "company_id!" FROM rota_assignments WHERE from_day <= $2 AND (to_day IS NULL OR to_day >= $1)
           UNION SELECT company_id FROM rota_days WHERE day BETWEEN $1 AND $2"#,
        from,
        to
    )
    .fetch_all(db)
    .await
}

// ---- calendar ------------------------------------------------------------------------------

/// The calendar rows in force for a company over `from..=to`: its own over the national.
pub async fn calendar(
    db: impl PgExecutor<'_>,
    company: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> sqlx::Result<Vec<CalendarDay>> {
    sqlx::query_as!(
        CalendarDay,
        r#"SELECT DISTINCT ON (day) company_id, day, kind AS "kind: CalendarKind", name, provisional
           FROM calendar_days WHERE (company_id = $1 OR company_id IS NULL) AND day BETWEEN $2 AND $3
           ORDER BY day, company_id NULLS LAST"#,
        company,
        from,
        to
    )
    .fetch_all(db)
    .await
}

pub async fn set_calendar_day(db: impl PgExecutor<'_>, company: Uuid, c: &CalendarDay) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO calendar_days (company_id, day, kind, name, provisional) VALUES ($1, $2, $3, $4, false)
         ON CONFLICT (company_id, day) DO UPDATE SET kind = $3, name = $4, provisional = false",
        company,
        c.day,
        c.kind.as_str(),
        c.name
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn clear_calendar_day(db: impl PgExecutor<'_>, company: Uuid, day: NaiveDate) -> sqlx::Result<u64> {
    Ok(sqlx::query!("DELETE FROM calendar_days WHERE company_id = $1 AND day = $2", company, day)
        .execute(db)
        .await?
        .rows_affected())
}

// ---- terminals -----------------------------------------------------------------------------

pub async fn insert_terminal(db: impl PgExecutor<'_>, t: &Terminal, key_enc: &[u8]) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO attendance_terminals (id, company_id, project_id, name, kind, key_enc, enabled, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        t.id,
        t.company_id,
        t.project_id,
        t.name,
        t.kind.as_str(),
        key_enc,
        t.enabled,
        t.created_at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A terminal with its encrypted key.
pub async fn terminal(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<(Terminal, Vec<u8>)>> {
    let r = sqlx::query!(
        r#"SELECT id, company_id, project_id, name, kind AS "kind: TerminalKind", enabled, last_seen_at, created_at, key_enc
           FROM attendance_terminals WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(r.map(|r| {
        (
            Terminal {
                id: r.id,
                company_id: r.company_id,
                project_id: r.project_id,
                name: r.name,
                kind: r.kind,
                enabled: r.enabled,
                last_seen_at: r.last_seen_at,
                created_at: r.created_at,
            },
            r.key_enc,
        )
    }))
}

pub async fn terminals(db: impl PgExecutor<'_>, company: Uuid, project: Uuid) -> sqlx::Result<Vec<Terminal>> {
    sqlx::query_as!(
        Terminal,
        r#"SELECT id, company_id, project_id, name, kind AS "kind: TerminalKind", enabled, last_seen_at, created_at
           FROM attendance_terminals WHERE company_id = $1 AND project_id = $2 ORDER BY name"#,
        company,
        project
    )
    .fetch_all(db)
    .await
}

pub async fn update_terminal(
    db: impl PgExecutor<'_>,
    id: Uuid,
    enabled: bool,
    key_enc: Option<&[u8]>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE attendance_terminals SET enabled = $2, key_enc = COALESCE($3, key_enc) WHERE id = $1",
        id,
        enabled,
        key_enc
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn terminal_seen(db: impl PgExecutor<'_>, id: Uuid, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query!("UPDATE attendance_terminals SET last_seen_at = $2 WHERE id = $1", id, at).execute(db).await?;
    Ok(())
}

// ---- punches -------------------------------------------------------------------------------

/// A terminal's record id (for a terminal punch) and the request (for a correction).
pub struct PunchOrigin<'a> {
    pub terminal_record: Option<&'a str>,
    pub request_id: Option<Uuid>,
}

/// Inserts a punch; false when the terminal sent that record before.
pub async fn insert_punch(db: impl PgExecutor<'_>, p: &Punch, origin: PunchOrigin<'_>) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "INSERT INTO punches (id, company_id, project_id, user_id, at, received_at, source, direction, lat, lng,
                              accuracy_m, distance_m, terminal_id, terminal_record, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (terminal_id, terminal_record) DO NOTHING",
        p.id,
        p.company_id,
        p.project_id,
        p.user_id,
        p.at,
        p.received_at,
        p.source.as_str(),
        p.direction.map(|d| d.as_str()),
        p.lat,
        p.lng,
        p.accuracy_m,
        p.distance_m,
        p.terminal_id,
        origin.terminal_record,
        origin.request_id
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// An employee's punch within `from..=to` (a double tap is one punch).
pub async fn punch_near(
    db: impl PgExecutor<'_>,
    user: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM punches WHERE user_id = $1 AND at BETWEEN $2 AND $3 ORDER BY at LIMIT 1",
        user,
        from,
        to
    )
    .fetch_optional(db)
    .await
}

pub async fn punch(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<Punch>> {
    sqlx::query_as!(
        Punch,
        r#"SELECT id, company_id, project_id, user_id, at, received_at, source AS "source: PunchSource",
                  direction AS "direction: Direction", lat, lng, accuracy_m, distance_m, terminal_id
           FROM punches WHERE company_id = $1 AND id = $2"#,
        company,
        id
    )
    .fetch_optional(db)
    .await
}

/// Punches of some employees within `from..to`, by employee and time.
pub async fn punches(
    db: impl PgExecutor<'_>,
    users: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Vec<Punch>> {
    sqlx::query_as!(
        Punch,
        r#"SELECT id, company_id, project_id, user_id, at, received_at, source AS "source: PunchSource",
                  direction AS "direction: Direction", lat, lng, accuracy_m, distance_m, terminal_id
           FROM punches WHERE user_id = ANY($1) AND at >= $2 AND at < $3 ORDER BY user_id, at"#,
        users,
        from,
        to
    )
    .fetch_all(db)
    .await
}

// ---- requests ------------------------------------------------------------------------------

pub async fn insert_request(db: impl PgExecutor<'_>, r: &AttendanceRequest) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO attendance_requests (id, company_id, project_id, user_id, kind, leave_type, starts_at, ends_at,
                                          direction, reason, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        r.id,
        r.company_id,
        r.project_id,
        r.user_id,
        r.kind.as_str(),
        r.leave_type.map(|t| t.as_str()),
        r.starts_at,
        r.ends_at,
        r.direction.map(|d| d.as_str()),
        r.reason,
        r.status.as_str(),
        r.created_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn request(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<AttendanceRequest>> {
    sqlx::query_as!(
        AttendanceRequest,
        r#"SELECT id, company_id, project_id, user_id, kind AS "kind: RequestKind", leave_type AS "leave_type: LeaveType",
                  starts_at, ends_at, direction AS "direction: Direction", reason, status AS "status: RequestStatus",
                  created_at, decided_at
           FROM attendance_requests WHERE company_id = $1 AND id = $2"#,
        company,
        id
    )
    .fetch_optional(db)
    .await
}

/// Decides a pending request; false when it was not pending.
pub async fn decide_request(
    db: impl PgExecutor<'_>,
    id: Uuid,
    status: RequestStatus,
    at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "UPDATE attendance_requests SET status = $2, decided_at = $3 WHERE id = $1 AND status = 'pending'",
        id,
        status.as_str(),
        at
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Requests of an employee (or of some projects), newest first, after a cursor.
#[allow(clippy::too_many_arguments)]
pub async fn requests(
    db: impl PgExecutor<'_>,
    company: Uuid,
    user: Option<Uuid>,
    projects: Option<&[Uuid]>,
    status: Option<RequestStatus>,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<AttendanceRequest>> {
    sqlx::query_as!(
        AttendanceRequest,
        r#"SELECT id, company_id, project_id, user_id, kind AS "kind: RequestKind", leave_type AS "leave_type: LeaveType",
                  starts_at, ends_at, direction AS "direction: Direction", reason, status AS "status: RequestStatus",
                  created_at, decided_at
           FROM attendance_requests
           WHERE company_id = $1 AND ($2::uuid IS NULL OR user_id = $2) AND ($3::uuid[] IS NULL OR project_id = ANY($3))
             AND ($4::text IS NULL OR status = $4) AND ($5::uuid IS NULL OR id < $5)
           ORDER BY id DESC LIMIT $6"#,
        company,
        user,
        projects,
        status.map(|s| s.as_str()),
        before,
        limit
    )
    .fetch_all(db)
    .await
}

/// Approved leave of some employees overlapping `from..to`.
pub async fn approved_leave(
    db: impl PgExecutor<'_>,
    users: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)>> {
    let rows = sqlx::query!(
        r#"SELECT user_id, starts_at, ends_at AS "ends_at!" FROM attendance_requests
           WHERE user_id = ANY($1) AND kind = 'leave' AND status = 'approved' AND starts_at < $3 AND ends_at > $2"#,
        users,
        from,
        to
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.user_id, r.starts_at, r.ends_at)).collect())
}

// ---- results -------------------------------------------------------------------------------

/// Writes computed days (one statement); a day whose rota and punches give nothing is removed.
pub async fn save_days(
    db: &mut sqlx::PgConnection,
    days: &[AttendanceDay],
    cleared: &[(Uuid, NaiveDate)],
) -> sqlx::Result<()> {
    if !cleared.is_empty() {
        let (u, d): (Vec<Uuid>, Vec<NaiveDate>) = cleared.iter().copied().unzip();
        sqlx::query!(
            "DELETE FROM attendance_days a USING UNNEST($1::uuid[], $2::date[]) AS t(user_id, day)
             WHERE a.user_id = t.user_id AND a.day = t.day",
            &u,
            &d
        )
        .execute(&mut *db)
        .await?;
    }
    if days.is_empty() {
        return Ok(());
    }
    macro_rules! col {
        ($f:ident) => {
            days.iter().map(|d| d.$f.clone()).collect::<Vec<_>>()
        };
    }
    let kinds: Vec<&str> = days.iter().map(|d| d.kind.as_str()).collect();
    let statuses: Vec<&str> = days.iter().map(|d| d.status.as_str()).collect();
    sqlx::query!(
        "INSERT INTO attendance_days (user_id, day, company_id, project_id, shift_id, kind, status, expected_start,
                                      expected_end, first_punch, last_punch, late_minutes, early_minutes,
                                      missing_punches, leave_minutes, worked_minutes, overtime_minutes, settled,
                                      computed_at, offline_punches)
         SELECT * FROM UNNEST($1::uuid[], $2::date[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::text[],
                              $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[],
                              $12::int[], $13::int[], $14::int[], $15::int[], $16::int[], $17::int[], $18::bool[],
                              $19::timestamptz[], $20::int[])
         ON CONFLICT (user_id, day) DO UPDATE SET company_id = EXCLUDED.company_id, project_id = EXCLUDED.project_id,
             shift_id = EXCLUDED.shift_id, kind = EXCLUDED.kind, status = EXCLUDED.status,
             expected_start = EXCLUDED.expected_start, expected_end = EXCLUDED.expected_end,
             first_punch = EXCLUDED.first_punch, last_punch = EXCLUDED.last_punch,
             late_minutes = EXCLUDED.late_minutes, early_minutes = EXCLUDED.early_minutes,
             missing_punches = EXCLUDED.missing_punches, leave_minutes = EXCLUDED.leave_minutes,
             worked_minutes = EXCLUDED.worked_minutes, overtime_minutes = EXCLUDED.overtime_minutes,
             settled = EXCLUDED.settled, computed_at = EXCLUDED.computed_at,
             offline_punches = EXCLUDED.offline_punches",
        &col!(user_id),
        &col!(day),
        &col!(company_id),
        &col!(project_id) as &[Option<Uuid>],
        &col!(shift_id) as &[Option<Uuid>],
        &kinds as &[&str],
        &statuses as &[&str],
        &col!(expected_start) as &[Option<DateTime<Utc>>],
        &col!(expected_end) as &[Option<DateTime<Utc>>],
        &col!(first_punch) as &[Option<DateTime<Utc>>],
        &col!(last_punch) as &[Option<DateTime<Utc>>],
        &col!(late_minutes),
        &col!(early_minutes),
        &col!(missing_punches),
        &col!(leave_minutes),
        &col!(worked_minutes),
        &col!(overtime_minutes),
        &col!(settled),
        &col!(computed_at),
        &col!(offline_punches)
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Settled days already stored (the scheduler leaves them be).
pub async fn settled_days(
    db: impl PgExecutor<'_>,
    users: &[Uuid],
    from: NaiveDate,
    to: NaiveDate,
) -> sqlx::Result<Vec<(Uuid, NaiveDate)>> {
    let rows = sqlx::query!(
        "SELECT user_id, day FROM attendance_days WHERE user_id = ANY($1) AND day BETWEEN $2 AND $3 AND settled",
        users,
        from,
        to
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.user_id, r.day)).collect())
}

/// Results of some employees (or of some projects' days) over `from..=to`, by day then employee.
#[allow(clippy::too_many_arguments)]
pub async fn days(
    db: impl PgExecutor<'_>,
    company: Uuid,
    users: Option<&[Uuid]>,
    projects: Option<&[Uuid]>,
    from: NaiveDate,
    to: NaiveDate,
    after: Option<(NaiveDate, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<AttendanceDay>> {
    let (after_day, after_user) = after.unzip();
    sqlx::query_as!(
        AttendanceDay,
        r#"SELECT user_id, day, company_id, project_id, shift_id, kind AS "kind: DayKind", status AS "status: DayStatus",
                  expected_start, expected_end, first_punch, last_punch, late_minutes, early_minutes, missing_punches,
                  offline_punches, leave_minutes, worked_minutes, overtime_minutes, settled, computed_at
           FROM attendance_days
           WHERE company_id = $1 AND ($2::uuid[] IS NULL OR user_id = ANY($2))
             AND ($3::uuid[] IS NULL OR project_id = ANY($3)) AND day BETWEEN $4 AND $5
             AND ($6::date IS NULL OR (day, user_id) > ($6, $7))
           ORDER BY day, user_id LIMIT $8"#,
        company,
        users,
        projects,
        from,
        to,
        after_day,
        after_user,
        limit
    )
    .fetch_all(db)
    .await
}

/// 考勤月报: one row per employee with a result in `from..=to` (of some projects).
pub async fn month(
    db: impl PgExecutor<'_>,
    company: Uuid,
    projects: Option<&[Uuid]>,
    from: NaiveDate,
    to: NaiveDate,
) -> sqlx::Result<Vec<MonthRow>> {
    sqlx::query_as!(
        MonthRow,
        r#"SELECT a.user_id AS "user_id!", u.name AS "name!", e.employee_no AS "employee_no?",
                  (array_agg(a.project_id ORDER BY a.day DESC) FILTER (WHERE a.project_id IS NOT NULL))[1] AS project_id,
                  count(*) FILTER (WHERE a.shift_id IS NOT NULL AND a.status <> 'leave') AS "scheduled_days!",
                  count(*) FILTER (WHERE a.shift_id IS NOT NULL AND a.first_punch IS NOT NULL) AS "attended_days!",
                  count(*) FILTER (WHERE a.late_minutes > 0 AND a.status <> 'absent') AS "late_days!",
                  COALESCE(sum(a.late_minutes), 0) AS "late_minutes!",
                  count(*) FILTER (WHERE a.early_minutes > 0 AND a.status <> 'absent') AS "early_days!",
                  COALESCE(sum(a.early_minutes), 0) AS "early_minutes!",
                  count(*) FILTER (WHERE a.status = 'absent') AS "absent_days!",
                  COALESCE(sum(a.missing_punches) FILTER (WHERE a.status <> 'absent' AND a.settled), 0) AS "missing_punches!",
                  COALESCE(sum(a.offline_punches), 0) AS "offline_punches!",
                  COALESCE(sum(a.leave_minutes), 0) AS "leave_minutes!",
                  COALESCE(sum(a.worked_minutes) FILTER (WHERE a.shift_id IS NOT NULL OR a.kind = 'workday'), 0) AS "worked_minutes!",
                  COALESCE(sum(a.overtime_minutes) FILTER (WHERE a.kind = 'workday'), 0) AS "overtime_minutes!",
                  COALESCE(sum(a.overtime_minutes) FILTER (WHERE a.kind = 'rest'), 0) AS "rest_day_minutes!",
                  COALESCE(sum(CASE WHEN a.shift_id IS NULL THEN a.overtime_minutes ELSE a.worked_minutes END)
                           FILTER (WHERE a.kind = 'holiday'), 0) AS "holiday_minutes!"
           FROM attendance_days a JOIN users u ON u.id = a.user_id LEFT JOIN employees e ON e.user_id = a.user_id
           WHERE a.company_id = $1 AND a.day BETWEEN $3 AND $4
             AND ($2::uuid[] IS NULL OR a.project_id = ANY($2))
           GROUP BY a.user_id, u.name, e.employee_no
           ORDER BY e.employee_no NULLS LAST, u.name, a.user_id"#,
        company,
        projects,
        from,
        to
    )
    .fetch_all(db)
    .await
}
