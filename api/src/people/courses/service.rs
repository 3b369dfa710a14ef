//! 培训 rules. Courses and sessions belong to a project or the company and are managed with
//! `training:write` there; a course and its materials are read by those who read training
//! there and by the people taking part in one of its sessions. Materials are private files
//! behind signed URLs, recognised by their first bytes, each kind within its own limit.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::model::{Attendee, Course, Material, MaterialKind, Session, sniff};
use super::repo;
use crate::files::model::Purpose;
use crate::kit::audit;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::kit::types;
use crate::notify::model::{Category, NewNotification, Priority};
use crate::rbac::model::{Actor, Perm, ProjectFilter};

fn invalid(field: &'static str, zh: &'static str, en: &'static str) -> AppError {
    AppError::validation(field, Msg::new(zh, en))
}

/// Whether `perm` reaches a project's (or a company-wide) item.
fn reaches(actor: &Actor, perm: Perm, project: Option<Uuid>) -> bool {
    match (project, actor.projects(perm)) {
        (_, Ok(ProjectFilter::All)) => true,
        (Some(p), Ok(f)) => f.allows(p),
        // a company-wide course is every project's
        (None, Ok(_)) => true,
        _ => false,
    }
}

pub struct CourseInput {
    pub id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub title: String,
    pub content: String,
    pub audience: String,
}

/// 课程 (`training:write` over its project or the company).
pub async fn save_course(state: &AppState, actor: &Actor, retry: &Retry, i: CourseInput) -> AppResult<Uuid> {
    let project = match i.id {
        Some(id) => {
            repo::course(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("course"))?.project_id
        }
        None => {
            if let Some(p) = i.project_id {
                crate::org::company::service::project_of_company(state, actor.company_id, p).await?;
            }
            i.project_id
        }
    };
    actor.require_over(Perm::TrainingWrite, project)?;
    let opt = |field, v: &str, max| if v.trim().is_empty() { Ok(String::new()) } else { types::text(field, v, max) };
    let now = state.clock.now();
    let c = Course {
        id: i.id.unwrap_or_else(Uuid::now_v7),
        company_id: actor.company_id,
        project_id: project,
        title: types::text("title", &i.title, 50)?,
        content: opt("content", &i.content, 5000)?,
        audience: opt("audience", &i.audience, 100)?,
        updated_at: now,
    };
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::upsert_course(&mut *tx, &c, actor.user_id).await?;
    audit::record(&mut tx, now, actor, "course.save", "course", Some(c.id), serde_json::json!({ "title": c.title }))
        .await?;
    tx.commit(&c.id).await?;
    Ok(c.id)
}

/// One course: for readers and writers of training where it belongs, and for those who take
/// part in one of its sessions.
pub async fn course(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Course> {
    let c = repo::course(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("course"))?;
    if reaches(actor, Perm::TrainingRead, c.project_id)
        || reaches(actor, Perm::TrainingWrite, c.project_id)
        || repo::takes_part(&state.db, c.id, actor.user_id).await?
    {
        Ok(c)
    } else {
        Err(AppError::not_found("course"))
    }
}

/// Courses of the caller's `training:read` projects and the company-wide ones.
pub async fn courses(state: &AppState, actor: &Actor, after: Option<Uuid>, limit: usize) -> AppResult<Vec<Course>> {
    let only = actor.projects(Perm::TrainingRead)?.as_sql();
    Ok(repo::courses(&state.db, actor.company_id, only.as_deref(), after, limit as i64).await?)
}

/// The materials of courses the caller was shown.
pub async fn materials_of(state: &AppState, courses: &[Uuid]) -> AppResult<Vec<Material>> {
    Ok(repo::materials(&state.db, courses).await?)
}

/// A material over `max` bytes.
pub fn too_big(max: usize) -> AppError {
    let mb = max / (1024 * 1024);
    AppError::validation("file", Msg::owned(format!("文件不能超过{mb}MB"), format!("At most {mb} MB")))
}

/// How long an upload may send nothing before it is given up (a phone that lost signal,
/// or a client trickling bytes to hold an upload slot).
pub const UPLOAD_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// 上传课件: adds a material to a course (`training:write` over it) from the request body as
/// it arrives: the caller, the course and the name are checked before a byte is read or
/// one of `slots` (the uploads a replica writes at once) is taken; the first bytes say
/// what it is (a PDF or an MP4 video, never by its name), and the rest is written to
/// storage chunk by chunk, counted against that kind's limit. A body that breaks off,
/// sends nothing for `UPLOAD_IDLE` or runs over the limit leaves no object and no row
/// behind; once the body is whole, storing and recording it finish even if the client
/// hangs up.
pub async fn add_material<S, E>(
    state: &AppState,
    actor: &Actor,
    course_id: Uuid,
    name: &str,
    slots: &tokio::sync::Semaphore,
    mut body: S,
) -> AppResult<Material>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
{
    use futures_util::StreamExt;

    let c = repo::course(&state.db, actor.company_id, course_id).await?.ok_or(AppError::not_found("course"))?;
    actor.require_over(Perm::TrainingWrite, c.project_id)?;
    let name = types::text("name", name, 100)?;
    let _slot = slots.acquire().await.map_err(AppError::internal)?;
    let broken = || invalid("file", "上传中断，请重试", "The upload broke off; please try again");
    let mut next = async || match tokio::time::timeout(UPLOAD_IDLE, body.next()).await {
        Ok(Some(Ok(chunk))) => Ok(Some(chunk)),
        Ok(None) => Ok(None),
        Ok(Some(Err(_))) | Err(_) => Err(()),
    };
    // enough of the head to know the kind
    let mut head = Vec::new();
    while head.len() < 12 {
        match next().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(()) => return Err(broken()),
        }
    }
    let Some((kind, content_type, ext)) = sniff(&head) else {
        return Err(invalid("file", "只接受PDF文档或MP4视频", "Only PDF documents and MP4 videos are accepted"));
    };
    let limits = &state.config.training;
    let max = match kind {
        MaterialKind::Pdf => limits.max_pdf_bytes,
        MaterialKind::Video => limits.max_video_bytes,
    };
    let too_big = || too_big(max);
    if head.len() > max {
        return Err(too_big());
    }
    let id = Uuid::now_v7();
    let key = format!("private/{}/training/{}.{ext}", actor.company_id, id.simple());
    let mut upload = state.storage.upload(&key).await.map_err(AppError::internal)?;
    upload.write(&head).await.map_err(AppError::internal)?;
    let mut size = head.len();
    drop(head);
    loop {
        let chunk = match next().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(()) => {
                upload.abort().await;
                return Err(broken());
            }
        };
        size += chunk.len();
        if size > max {
            upload.abort().await;
            return Err(too_big());
        }
        upload.write(&chunk).await.map_err(AppError::internal)?;
    }
    // the body is whole: finish in a task of its own, which a hang-up does not cancel
    let (state, actor) = (state.clone(), actor.clone());
    let m = Material {
        id,
        course_id: c.id,
        file_key: key,
        kind,
        name,
        size_bytes: size as i64,
        created_at: state.clock.now(),
    };
    let done = tokio::spawn(async move {
        upload.finish().await.map_err(AppError::internal)?;
        let stored = record_material(&state, &actor, &m, content_type).await;
        if stored.is_err()
            && let Err(e) = state.storage.delete(&m.file_key).await
        {
            tracing::warn!(key = %m.file_key, error = %e, "a material's object outlived its failed insert");
        }
        stored.map(|()| m)
    });
    done.await.map_err(AppError::internal)?
}

/// The stored material's file row, its row and the audit entry, in one transaction.
async fn record_material(state: &AppState, actor: &Actor, m: &Material, content_type: &str) -> AppResult<()> {
    let mut tx = state.db.begin().await?;
    crate::files::service::record_stored(
        &mut *tx,
        m.created_at,
        actor.company_id,
        actor.user_id,
        Purpose::Training,
        &m.file_key,
        content_type,
        m.size_bytes,
    )
    .await?;
    repo::insert_material(&mut *tx, actor.company_id, m, actor.user_id).await?;
    audit::record(
        &mut tx,
        m.created_at,
        actor,
        "course.material.add",
        "course",
        Some(m.course_id),
        serde_json::json!({
            "material": m.id, "kind": m.kind, "name": m.name, "bytes": m.size_bytes,
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// 删除课件 (`training:write` over the course).
pub async fn remove_material(state: &AppState, actor: &Actor, retry: &Retry, id: Uuid) -> AppResult<Uuid> {
    let (m, course_id) =
        repo::material(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("material"))?;
    let c = repo::course(&state.db, actor.company_id, course_id).await?.ok_or(AppError::not_found("material"))?;
    actor.require_over(Perm::TrainingWrite, c.project_id)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::delete_material(&mut *tx, m.id).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "course.material.remove",
        "course",
        Some(c.id),
        serde_json::json!({
            "material": m.id, "name": m.name,
        }),
    )
    .await?;
    tx.commit(&m.id).await?;
    Ok(m.id)
}

pub struct SessionInput {
    pub course_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub place: String,
    pub trainer_id: Uuid,
    pub attendees: Vec<Uuid>,
}

/// A staff account of the caller's company.
async fn own_staff(state: &AppState, actor: &Actor, field: &'static str, user: Uuid) -> AppResult<()> {
    if crate::people::staff::service::is_staff(state, actor.company_id, user).await? {
        Ok(())
    } else {
        Err(AppError::Validation {
            field: field.into(),
            msg: Msg::new("不是本企业的员工", "Not a staff member of the company"),
            details: Some(serde_json::json!({ "userId": user })),
        })
    }
}

/// 安排培训 (`training:write` over the course): a time, a place, a trainer and 1-500
/// attendees, who are told.
pub async fn schedule(state: &AppState, actor: &Actor, retry: &Retry, i: SessionInput) -> AppResult<Uuid> {
    let c = repo::course(&state.db, actor.company_id, i.course_id).await?.ok_or(AppError::not_found("course"))?;
    actor.require_over(Perm::TrainingWrite, c.project_id)?;
    let mut attendees = i.attendees.clone();
    attendees.sort();
    attendees.dedup();
    if attendees.is_empty() || attendees.len() > 500 {
        return Err(invalid("attendeeIds", "参训人员应为1到500人", "1 to 500 attendees"));
    }
    own_staff(state, actor, "trainerId", i.trainer_id).await?;
    for u in &attendees {
        own_staff(state, actor, "attendeeIds", *u).await?;
    }
    let now = state.clock.now();
    if i.ends_at <= i.starts_at || i.ends_at - i.starts_at > TimeDelta::hours(24) {
        return Err(invalid(
            "endsAt",
            "结束时间应晚于开始时间，一场不超过24小时",
            "It ends after it starts, within 24 hours",
        ));
    }
    types::sane_time("startsAt", i.starts_at)?;
    types::sane_time("endsAt", i.ends_at)?;
    if i.starts_at < now - TimeDelta::days(31) {
        return Err(invalid("startsAt", "只能补录31天内的培训", "Sessions go back at most 31 days"));
    }
    let place = types::text("place", &i.place, 100)?;
    let s = Session {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        course_id: c.id,
        project_id: c.project_id,
        starts_at: i.starts_at,
        ends_at: i.ends_at,
        place,
        trainer_id: i.trainer_id,
    };
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::insert_session(&mut tx, &s, actor.user_id, now, &attendees).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "training.schedule",
        "training_session",
        Some(s.id),
        serde_json::json!({
            "course": c.id, "startsAt": s.starts_at, "trainer": s.trainer_id, "attendees": attendees.len(),
        }),
    )
    .await?;
    let when = s.starts_at.with_timezone(&crate::kit::clock::BUSINESS_TZ).format("%m月%d日 %H:%M");
    let mut told = attendees.clone();
    if !told.contains(&s.trainer_id) {
        told.push(s.trainer_id);
    }
    let n = NewNotification {
        category: Category::Training,
        priority: Priority::Normal,
        title: format!("培训通知：{}", c.title),
        body: format!("{when}，{}", s.place),
        data: serde_json::json!({ "route": "trainingSession", "id": s.id }),
        channels: None,
    };
    crate::notify::service::enqueue(state, &mut tx, actor.company_id, &told, &n).await?;
    tx.commit(&s.id).await?;
    Ok(s.id)
}

/// One session: for readers and writers of training where it belongs, its trainer and attendees.
pub async fn session(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<(Session, Vec<Attendee>)> {
    let s = repo::session(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("session"))?;
    let attendees = repo::attendees(&state.db, &[s.id]).await?;
    let ok = reaches(actor, Perm::TrainingRead, s.project_id)
        || reaches(actor, Perm::TrainingWrite, s.project_id)
        || s.trainer_id == actor.user_id
        || attendees.iter().any(|a| a.user_id == actor.user_id);
    if !ok {
        return Err(AppError::not_found("session"));
    }
    Ok((s, attendees))
}

/// Sessions starting within `from..to` (up to 92 days): one's own (`mine`: attending or
/// training), or of the caller's `training:read` projects.
pub async fn sessions(
    state: &AppState,
    actor: &Actor,
    mine: bool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> AppResult<Vec<(Session, Vec<Attendee>)>> {
    types::sane_time("from", from)?;
    types::sane_time("to", to)?;
    if to <= from || to - from > TimeDelta::days(92) {
        return Err(invalid("to", "查询范围应在92天以内", "A range of up to 92 days"));
    }
    let rows = if mine {
        actor.require(Perm::SelfTraining)?;
        repo::sessions(&state.db, actor.company_id, None, Some(actor.user_id), from, to).await?
    } else {
        let only = actor.projects(Perm::TrainingRead)?.as_sql();
        repo::sessions(&state.db, actor.company_id, only.as_deref(), None, from, to).await?
    };
    let ids: Vec<Uuid> = rows.iter().map(|s| s.id).collect();
    let mut by: HashMap<Uuid, Vec<Attendee>> = HashMap::new();
    for a in repo::attendees(&state.db, &ids).await? {
        by.entry(a.session_id).or_default().push(a);
    }
    Ok(rows
        .into_iter()
        .map(|s| {
            let a = by.remove(&s.id).unwrap_or_default();
            (s, a)
        })
        .collect())
}

/// 签到 (the session's trainer, or `training:write` over it; once it has started): who
/// came and who did not.
pub async fn mark_attendance(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    session_id: Uuid,
    came: &[Uuid],
    missed: &[Uuid],
) -> AppResult<Uuid> {
    let s = repo::session(&state.db, actor.company_id, session_id).await?.ok_or(AppError::not_found("session"))?;
    if s.trainer_id != actor.user_id {
        actor.require_over(Perm::TrainingWrite, s.project_id)?;
    }
    if came.contains(&actor.user_id) || missed.contains(&actor.user_id) {
        return Err(AppError::Forbidden {
            reason: "CANNOT_MANAGE",
            msg: Msg::new("不能为自己签到", "Nobody marks their own attendance"),
        });
    }
    if came.iter().any(|u| missed.contains(u)) {
        return Err(invalid("absentIds", "同一人不能既出席又缺席", "Nobody both came and missed it"));
    }
    let listed = repo::attendees(&state.db, &[s.id]).await?;
    // every id is someone of the company before anything else is said of it
    for u in came.iter().chain(missed) {
        if !crate::people::staff::service::is_staff(state, actor.company_id, *u).await? {
            return Err(AppError::not_found("user"));
        }
    }
    let named = came.iter().map(|u| ("attendedIds", u)).chain(missed.iter().map(|u| ("absentIds", u)));
    for (field, u) in named {
        if !listed.iter().any(|a| a.user_id == *u) {
            return Err(AppError::Validation {
                field: field.into(),
                msg: Msg::new("不是本场的参训人员", "Not an attendee of the session"),
                details: Some(serde_json::json!({ "userId": u })),
            });
        }
    }
    // the attendees first, then the time: an id is answered as an id wherever it is wrong
    let now = state.clock.now();
    if now < s.starts_at {
        return Err(AppError::wrong_state(
            "sessionId",
            "not_started",
            Msg::new("培训尚未开始", "The session has not started"),
        ));
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::mark(&mut *tx, s.id, came, true, actor.user_id, now).await?;
    repo::mark(&mut *tx, s.id, missed, false, actor.user_id, now).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "training.attendance",
        "training_session",
        Some(s.id),
        serde_json::json!({
            "attended": came, "absent": missed,
        }),
    )
    .await?;
    tx.commit(&s.id).await?;
    Ok(s.id)
}

/// One person's sessions (for their transcript), with the course and whether they came.
pub async fn attended_by(state: &AppState, user: Uuid) -> AppResult<Vec<(Session, String, Option<bool>)>> {
    Ok(repo::attended_by(&state.db, user).await?)
}
