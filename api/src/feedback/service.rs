//! 客服 rules: owners submit and follow up on their feedback; the project's customer service
//! answers, converts to a work order, closes; owners rate; unanswered feedback escalates.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::model::{Feedback, Kind, Message, State};
use super::repo;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::{Retry, Tx};
use crate::kit::state::AppState;
use crate::kit::types;
use crate::notify::model::{Category as NoteCategory, NewNotification, Priority as NotePriority};
use crate::rbac::model::{Actor, Perm};
use crate::workorders::model::Category;

fn invalid(field: &'static str, zh: &'static str, en: &'static str) -> AppError {
    AppError::validation(field, Msg::new(zh, en))
}

fn is_owner(actor: &Actor, f: &Feedback) -> bool {
    actor.has(Perm::SelfHouse) && actor.owner_id == Some(f.owner_id)
}

/// Feedback the caller may read: the owner's own, or the project's customer service and
/// managers (`feedback:read` / `feedback:handle`); anything else is NOT_FOUND.
pub async fn get(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Feedback> {
    if actor.must_change_password {
        return Err(crate::rbac::model::password_change_required());
    }
    let f = repo::get(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("feedback"))?;
    let staff = actor.reaches(&[Perm::FeedbackRead, Perm::FeedbackHandle], f.project_id);
    if !staff && !is_owner(actor, &f) {
        return Err(AppError::not_found("feedback"));
    }
    Ok(f)
}

/// Staff see their projects' feedback (`feedback:read`); an owner sees their own.
pub async fn list(
    state: &AppState,
    actor: &Actor,
    project: Option<Uuid>,
    states: &[State],
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> AppResult<Vec<Feedback>> {
    if let Some(p) = project
        && !actor.company_projects.contains(&p)
    {
        return Err(AppError::not_found("project"));
    }
    if actor.is_staff() && actor.has(Perm::FeedbackRead) {
        let filter = actor.projects(Perm::FeedbackRead)?;
        if let Some(p) = project {
            actor.require_project(Perm::FeedbackRead, p)?;
        }
        let projects = filter.as_sql();
        return Ok(repo::list(
            &state.db,
            actor.company_id,
            projects.as_deref(),
            project,
            None,
            states,
            after,
            limit as i64,
        )
        .await?);
    }
    actor.require(Perm::SelfHouse)?;
    let Some(owner) = actor.owner_id else { return Ok(Vec::new()) };
    Ok(repo::list(&state.db, actor.company_id, None, project, Some(owner), states, after, limit as i64).await?)
}

pub async fn messages_of(state: &AppState, ids: &[Uuid]) -> AppResult<Vec<Message>> {
    Ok(repo::messages_of(&state.db, ids).await?)
}

async fn tell(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    f: &Feedback,
    to: &[Uuid],
    title: String,
    body: String,
) -> AppResult<()> {
    let n = NewNotification {
        category: NoteCategory::Feedback,
        priority: NotePriority::High,
        title,
        body,
        data: serde_json::json!({ "route": "feedback", "feedbackId": f.id, "projectId": f.project_id }),
        channels: None,
    };
    crate::notify::service::enqueue(state, tx, f.company_id, to, &n).await?;
    Ok(())
}

fn excerpt(s: &str) -> String {
    let mut e: String = s.chars().take(30).collect();
    if s.chars().count() > 30 {
        e.push('…');
    }
    e
}

pub struct SubmitInput {
    pub project_id: Option<Uuid>,
    pub house_id: Option<Uuid>,
    pub kind: Kind,
    pub content: String,
    pub photos: Vec<String>,
}

/// 投诉建议: an owner's feedback about one of their houses, or a public area of an estate
/// they live in; the project's customer service is told.
pub async fn submit(state: &AppState, actor: &Actor, retry: &Retry, i: SubmitInput) -> AppResult<Uuid> {
    actor.require(Perm::SelfHouse)?;
    // an account with no owner record lives nowhere: the house or estate named is not theirs
    let Some(owner) = actor.owner_id else {
        return Err(match (i.house_id, i.project_id) {
            (Some(_), _) => AppError::not_found("house"),
            (None, Some(_)) => AppError::not_found("project"),
            (None, None) => AppError::forbidden(),
        });
    };
    let content = types::text("content", &i.content, 1000)?;
    let photos = crate::files::service::require_own(state, actor, "photos", &i.photos).await?;
    let homes = crate::org::owners::service::homes_of_owner(state, owner).await?;
    let project = match (i.house_id, i.project_id) {
        (Some(h), _) => {
            if crate::org::owners::service::relation_to(state, owner, h).await?.is_none() {
                return Err(AppError::not_found("house"));
            }
            crate::org::estate::service::house_project(state, actor, h).await?
        }
        (None, Some(p)) if homes.iter().any(|(hp, _)| *hp == p) => p,
        (None, Some(_)) => return Err(AppError::not_found("project")),
        (None, None) => match homes.first() {
            Some((p, _)) => *p,
            None => return Err(invalid("projectId", "请选择小区", "Name the estate")),
        },
    };
    let team = crate::rbac::service::duty_holders(state, actor.company_id, project, Perm::FeedbackHandle).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let now = state.clock.now();
    let f = Feedback {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        project_id: project,
        owner_id: owner,
        reporter_id: actor.user_id,
        house_id: i.house_id,
        kind: i.kind,
        content: content.clone(),
        photos,
        state: State::Open,
        work_order_id: None,
        respond_due_at: now + TimeDelta::minutes(i.kind.respond_within_minutes()),
        first_reply_at: None,
        closed_at: None,
        rating: None,
        rating_comment: String::new(),
        created_at: now,
        updated_at: now,
    };
    repo::insert(&mut *tx, &f).await?;
    let m = Message {
        id: Uuid::now_v7(),
        feedback_id: f.id,
        author_id: actor.user_id,
        from_staff: false,
        body: content,
        at: now,
    };
    repo::insert_message(&mut *tx, &m).await?;
    tell(state, &mut tx, &f, &team, format!("业主{}", i.kind.label()), excerpt(&f.content)).await?;
    tx.commit(&f.id).await?;
    Ok(f.id)
}

fn closed(f: &Feedback) -> AppError {
    AppError::wrong_state("feedbackId", f.state.as_str(), Msg::new("该投诉建议已关闭", "This feedback is closed"))
}

/// A message in the conversation: customer service answering (`feedback:handle`; the owner
/// is told) or the owner following up (the team is told, and it is theirs again).
pub async fn post(state: &AppState, actor: &Actor, retry: &Retry, id: Uuid, body: &str) -> AppResult<Uuid> {
    let body = types::text("body", body, 1000)?;
    let pre = get(state, actor, id).await?;
    let handler = actor.reaches(&[Perm::FeedbackHandle], pre.project_id);
    if !handler && !is_owner(actor, &pre) {
        return Err(AppError::forbidden());
    }
    let owner_user = crate::org::owners::service::user_of_owner(state, pre.company_id, pre.owner_id).await?;
    let team = crate::rbac::service::duty_holders(state, pre.company_id, pre.project_id, Perm::FeedbackHandle).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let mut f = repo::lock(&mut tx, actor.company_id, id).await?.ok_or(AppError::not_found("feedback"))?;
    if f.state == State::Closed {
        return Err(closed(&f));
    }
    let now = state.clock.now();
    let m =
        Message { id: Uuid::now_v7(), feedback_id: f.id, author_id: actor.user_id, from_staff: handler, body, at: now };
    repo::insert_message(&mut *tx, &m).await?;
    if handler {
        f.state = State::Replied;
        f.first_reply_at.get_or_insert(now);
        let to: Vec<Uuid> = owner_user.into_iter().collect();
        tell(state, &mut tx, &f, &to, format!("您的{}有新回复", f.kind.label()), excerpt(&m.body)).await?;
    } else {
        f.state = State::Open;
        tell(state, &mut tx, &f, &team, format!("业主{}追问", f.kind.label()), excerpt(&m.body)).await?;
    }
    f.updated_at = now;
    repo::save(&mut *tx, &f).await?;
    tx.commit(&f.id).await?;
    Ok(f.id)
}

/// 转工单: something needs repair; a work order is opened for the owner (their house, or the
/// estate's public area) and linked (`feedback:handle` and `workorder:create`).
pub async fn convert(state: &AppState, actor: &Actor, retry: &Retry, id: Uuid, category: Category) -> AppResult<Uuid> {
    let pre = get(state, actor, id).await?;
    if !actor.reaches(&[Perm::FeedbackHandle], pre.project_id) {
        return Err(AppError::forbidden());
    }
    if pre.state == State::Closed {
        return Err(closed(&pre));
    }
    if pre.work_order_id.is_some() {
        // a phone resending its conversion gets the feedback with the order it made
        if retry.key().is_some() {
            return Ok(pre.id);
        }
        return Err(AppError::conflict("feedbackId", Msg::new("已转为工单", "Already turned into a work order")));
    }
    let input = crate::workorders::service::CreateInput {
        project_id: pre.project_id,
        category,
        priority: (pre.kind == Kind::Complaint).then_some(crate::workorders::model::Priority::High),
        title: format!("业主{}：{}", pre.kind.label(), excerpt(&pre.content)).chars().take(60).collect(),
        description: pre.content.chars().take(500).collect(),
        location: pre.house_id.is_none().then(|| "公共区域（见投诉建议）".to_owned()),
        house_id: pre.house_id,
        owner_id: pre.house_id.map(|_| pre.owner_id),
        device_id: None,
        photos: Vec::new(),
        preferred_from: None,
        preferred_to: None,
    };
    // the feedback's row is held while the order is made: a second conversion at the same
    // moment waits, then finds the link
    let mut tx = Tx::plain(state).await?;
    let Some(mut f) = repo::lock(&mut tx, actor.company_id, id).await? else {
        return Err(AppError::not_found("feedback"));
    };
    if f.work_order_id.is_some() {
        if retry.key().is_some() {
            return Ok(f.id);
        }
        return Err(AppError::conflict("feedbackId", Msg::new("已转为工单", "Already turned into a work order")));
    }
    let order = crate::workorders::service::create(state, actor, retry, input).await?;
    if f.work_order_id.is_none() {
        let now = state.clock.now();
        f.work_order_id = Some(order);
        f.state = State::Replied;
        f.first_reply_at.get_or_insert(now);
        f.updated_at = now;
        repo::save(&mut *tx, &f).await?;
        let body = "已为您转为维修工单，维修人员将尽快处理".to_owned();
        let m = Message {
            id: Uuid::now_v7(),
            feedback_id: f.id,
            author_id: actor.user_id,
            from_staff: true,
            body,
            at: now,
        };
        repo::insert_message(&mut *tx, &m).await?;
    }
    tx.commit(&()).await?;
    Ok(f.id)
}

/// Closes feedback (its handler or its owner).
pub async fn close(state: &AppState, actor: &Actor, retry: &Retry, id: Uuid) -> AppResult<Uuid> {
    let pre = get(state, actor, id).await?;
    if !actor.reaches(&[Perm::FeedbackHandle], pre.project_id) && !is_owner(actor, &pre) {
        return Err(AppError::forbidden());
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let mut f = repo::lock(&mut tx, actor.company_id, id).await?.ok_or(AppError::not_found("feedback"))?;
    if f.state == State::Closed {
        return Err(closed(&f));
    }
    let now = state.clock.now();
    f.state = State::Closed;
    f.closed_at = Some(now);
    f.updated_at = now;
    repo::save(&mut *tx, &f).await?;
    tx.commit(&f.id).await?;
    Ok(f.id)
}

/// The owner rates how their feedback was handled (once answered); it closes.
pub async fn rate(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    id: Uuid,
    rating: i16,
    comment: Option<&str>,
) -> AppResult<Uuid> {
    if !(1..=5).contains(&rating) {
        return Err(invalid("rating", "评分应为1到5", "rating is 1 to 5"));
    }
    let comment = types::optional_text("comment", comment, 200)?;
    let pre = get(state, actor, id).await?;
    if !is_owner(actor, &pre) {
        return Err(AppError::forbidden());
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let mut f = repo::lock(&mut tx, actor.company_id, id).await?.ok_or(AppError::not_found("feedback"))?;
    if f.first_reply_at.is_none() || f.rating.is_some() {
        return Err(AppError::wrong_state(
            "feedbackId",
            f.state.as_str(),
            Msg::new("尚未答复或已评价", "Not answered yet, or already rated"),
        ));
    }
    let now = state.clock.now();
    f.rating = Some(rating);
    f.rating_comment = comment;
    f.state = State::Closed;
    f.closed_at.get_or_insert(now);
    f.updated_at = now;
    repo::save(&mut *tx, &f).await?;
    tx.commit(&f.id).await?;
    Ok(f.id)
}

/// The scheduler's job: feedback nobody answered in time goes to the project's managers,
/// once. Returns how many.
pub async fn escalate(state: &AppState) -> AppResult<usize> {
    let now = state.clock.now();
    let mut n = 0;
    for (id, company, project, kind) in repo::overdue(&state.db, now).await? {
        let managers = crate::rbac::service::project_managers(state, company, project).await?;
        let mut tx = Tx::plain(state).await?;
        if repo::mark_escalated(&mut *tx, id, now).await? == 0 {
            continue;
        }
        let Some(f) = repo::get(&mut *tx, company, id).await? else { continue };
        let title = format!("业主{}超时未回复", kind.label());
        tell(state, &mut tx, &f, &managers, title, excerpt(&f.content)).await?;
        tx.commit(&()).await?;
        n += 1;
    }
    Ok(n)
}
