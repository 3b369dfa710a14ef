//! 工单 rules: who may see and move an order, the state machine, dispatch, the log, the
//! notices; and the desk that turns repair requests (alarms, failed maintenance items)
//! into orders.
//!
//! Every transition locks the order's row, checks the caller and the current state,
//! changes the row, writes a log line and the notices in the same transaction, and
//! publishes a change event after the commit. A refused transition is CONFLICT naming the
//! current state.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model::{
    Action, Category, Changed, Deadlines, Dispatch, EVENT_CHANGED, Event, Filter, PartUsed, Priority, Settings, Sla,
    Source, State, WorkOrder,
};
use super::repo::{self, Visible};
use crate::iot::alarms::model::{RepairSource, RepairStatus, Severity};
use crate::iot::alarms::service::{RepairDesk, RepairOpened};
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::events;
use crate::kit::idempotency::{Retry, Tx};
use crate::kit::money::Money;
use crate::kit::state::AppState;
use crate::kit::types;
use crate::notify::model::{Category as NoteCategory, NewNotification, Priority as NotePriority};
use crate::org::owners::model::Relation;
use crate::rbac::model::{Actor, Perm};

fn invalid(field: &'static str, zh: &'static str, en: &'static str) -> AppError {
    AppError::validation(field, Msg::new(zh, en))
}

fn wrong_state(w: &WorkOrder, zh: &'static str, en: &'static str) -> AppError {
    AppError::wrong_state("workOrderId", w.state.as_str(), Msg::new(zh, en))
}

/// The owner side of an order: the owner it is about, or the person who reported it.
fn is_owner_side(actor: &Actor, w: &WorkOrder) -> bool {
    (w.owner_id.is_some() && w.owner_id == actor.owner_id)
        || (w.source == Source::Owner && w.reporter_id == Some(actor.user_id))
}

const READERS: &[Perm] =
    &[Perm::WorkorderRead, Perm::WorkorderDo, Perm::WorkorderDispatch, Perm::WorkorderVisit, Perm::WorkorderCreate];

fn can_read(actor: &Actor, w: &WorkOrder) -> bool {
    w.company_id == actor.company_id
        && (w.assignee_id == Some(actor.user_id)
            || actor.reaches(READERS, w.project_id)
            || (actor.has(Perm::SelfHouse) && is_owner_side(actor, w)))
}

/// An order the caller may read; another company's, or one out of reach, is NOT_FOUND.
pub async fn get(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<WorkOrder> {
    if actor.must_change_password {
        return Err(crate::rbac::model::password_change_required());
    }
    let w = repo::get(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("workOrder"))?;
    if !can_read(actor, &w) {
        return Err(AppError::not_found("workOrder"));
    }
    Ok(w)
}

/// What a list may show the caller: staff see the projects their work-order permissions
/// reach (`mine`: their own orders); an owner sees the orders about them or theirs.
fn visibility(actor: &Actor, f: &Filter) -> AppResult<(Visible, Option<Uuid>)> {
    if let Some(p) = f.project_id
        && !actor.company_projects.contains(&p)
    {
        return Err(AppError::not_found("project"));
    }
    let staff_perm = [Perm::WorkorderRead, Perm::WorkorderDispatch, Perm::WorkorderDo]
        .into_iter()
        .find(|p| actor.is_staff() && actor.projects(*p).is_ok());
    match staff_perm {
        Some(perm) => {
            let assignee = f.mine.then_some(actor.user_id);
            let filter = if f.mine { crate::rbac::model::ProjectFilter::All } else { actor.projects(perm)? };
            if let Some(p) = f.project_id
                && !filter.allows(p)
            {
                return Err(AppError::forbidden());
            }
            Ok((Visible { company_id: actor.company_id, projects: filter.as_sql(), owner: None }, assignee))
        }
        None => {
            actor.require(Perm::SelfHouse)?;
            let owner = Some((actor.owner_id, actor.user_id));
            Ok((Visible { company_id: actor.company_id, projects: None, owner }, None))
        }
    }
}

/// A device filter names a device of the caller's company (another company's is NOT_FOUND).
async fn check_device(state: &AppState, actor: &Actor, f: &Filter) -> AppResult<()> {
    if let Some(d) = f.device_id
        && crate::equipment::service::device_of_company(state, actor.company_id, d).await?.is_none()
    {
        return Err(AppError::not_found("device"));
    }
    Ok(())
}

pub async fn list(
    state: &AppState,
    actor: &Actor,
    f: &Filter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> AppResult<Vec<WorkOrder>> {
    check_device(state, actor, f).await?;
    let (v, assignee) = visibility(actor, f)?;
    if let Some(me) = assignee
        && f.device_id.is_none()
        && !f.pool
    {
        return Ok(repo::list_assigned(&state.db, actor.company_id, me, f, after, limit as i64).await?);
    }
    Ok(repo::list(&state.db, &v, f, assignee, after, limit as i64).await?)
}

/// The unfinished orders of the same list as [`list`] as a dispatch queue: most urgent
/// first (priority, then the device's importance), then the longest waiting.
pub async fn queue(
    state: &AppState,
    actor: &Actor,
    f: &Filter,
    after: Option<(i16, DateTime<Utc>, Uuid)>,
    limit: usize,
) -> AppResult<Vec<(WorkOrder, i16)>> {
    check_device(state, actor, f).await?;
    let (v, assignee) = visibility(actor, f)?;
    let keys = repo::queue(&state.db, &v, f, assignee, after, limit as i64).await?;
    let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
    let mut rows: std::collections::HashMap<Uuid, WorkOrder> =
        repo::by_ids(&state.db, actor.company_id, &ids).await?.into_iter().map(|w| (w.id, w)).collect();
    Ok(keys.into_iter().filter_map(|(id, u)| rows.remove(&id).map(|w| (w, u))).collect())
}

/// How many of the listed orders are in each state (every state, zero included).
pub async fn counts(state: &AppState, actor: &Actor, f: &Filter) -> AppResult<Vec<(State, i64)>> {
    check_device(state, actor, f).await?;
    let (v, assignee) = visibility(actor, f)?;
    let got = repo::counts(&state.db, &v, f, assignee).await?;
    Ok(State::ALL.iter().map(|s| (*s, got.iter().find(|(g, _)| g == s).map_or(0, |(_, n)| *n))).collect())
}

/// The logs of orders the caller has already been shown.
pub async fn events_of(state: &AppState, ids: &[Uuid]) -> AppResult<Vec<Event>> {
    Ok(repo::events_of(&state.db, ids).await?)
}

pub async fn settings(state: &AppState, project_id: Uuid) -> AppResult<Settings> {
    Ok(repo::settings(&state.db, project_id).await?.unwrap_or_else(|| Settings::defaults(project_id)))
}

/// A project's settings (`workorder:read` over it).
pub async fn project_settings(state: &AppState, actor: &Actor, project_id: Uuid) -> AppResult<Settings> {
    actor.require_project(Perm::WorkorderRead, project_id)?;
    settings(state, project_id).await
}

pub struct SettingsInput {
    pub project_id: Uuid,
    pub dispatch: Option<Dispatch>,
    pub auto_confirm_days: Option<i32>,
    pub reporter_relations: Option<Vec<Relation>>,
    pub visit_categories: Option<Vec<Category>>,
    pub alarm_clear_grace_secs: Option<i32>,
}

/// Changes a project's dispatch settings (`workorder:dispatch` over it).
pub async fn set_settings(state: &AppState, actor: &Actor, retry: &Retry, i: SettingsInput) -> AppResult<Uuid> {
    actor.require_project(Perm::WorkorderDispatch, i.project_id)?;
    if i.auto_confirm_days.is_some_and(|d| !(1..=30).contains(&d)) {
        return Err(invalid("autoConfirmDays", "自动确认天数应在1到30之间", "autoConfirmDays within 1 to 30"));
    }
    if i.alarm_clear_grace_secs.is_some_and(|d| !(0..=86_400).contains(&d)) {
        return Err(invalid(
            "alarmClearGraceSecs",
            "告警消除等待时间应在0到86400秒之间",
            "alarmClearGraceSecs within 0 to 86400",
        ));
    }
    let mut s = settings(state, i.project_id).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    if let Some(d) = i.dispatch {
        s.dispatch = d;
    }
    if let Some(d) = i.auto_confirm_days {
        s.auto_confirm_days = d;
    }
    if let Some(r) = i.reporter_relations {
        let mut v: Vec<String> = r.iter().map(|r| r.as_str().to_owned()).collect();
        v.sort();
        v.dedup();
        s.reporter_relations = v;
    }
    if let Some(c) = i.visit_categories {
        let mut v: Vec<String> = c.iter().map(|c| c.as_str().to_owned()).collect();
        v.sort();
        v.dedup();
        s.visit_categories = v;
    }
    if let Some(g) = i.alarm_clear_grace_secs {
        s.alarm_clear_grace_secs = g;
    }
    let now = state.clock.now();
    repo::upsert_settings(&mut *tx, actor.company_id, &s, now).await?;
    crate::kit::audit::record(
        &mut tx,
        now,
        actor,
        "workorder.settings",
        "project",
        Some(i.project_id),
        serde_json::json!({ "dispatch": s.dispatch, "autoConfirmDays": s.auto_confirm_days,
            "reporterRelations": s.reporter_relations, "visitCategories": s.visit_categories,
            "alarmClearGraceSecs": s.alarm_clear_grace_secs }),
    )
    .await?;
    tx.commit(&i.project_id).await?;
    Ok(i.project_id)
}

/// Sets a staff member's skills (`user:write`): the categories dispatch prefers them for.
pub async fn set_skills(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    user: Uuid,
    skills: &[Category],
) -> AppResult<Uuid> {
    let mut v: Vec<String> = skills.iter().map(|c| c.as_str().to_owned()).collect();
    v.sort();
    v.dedup();
    crate::rbac::service::set_skills(state, actor, retry, user, &v).await
}

// ---- opening orders ----------------------------------------------------------------------

fn blank(
    id: Uuid,
    company_id: Uuid,
    project_id: Uuid,
    source: Source,
    category: Category,
    now: DateTime<Utc>,
) -> WorkOrder {
    WorkOrder {
        id,
        no: 0,
        company_id,
        project_id,
        source,
        category,
        priority: Priority::Normal,
        state: State::Submitted,
        paused_from: None,
        title: String::new(),
        description: String::new(),
        location: String::new(),
        house_id: None,
        device_id: None,
        rule_id: None,
        origin_id: None,
        owner_id: None,
        reporter_id: None,
        photos: Vec::new(),
        preferred_from: None,
        preferred_to: None,
        assignee_id: None,
        created_at: now,
        updated_at: now,
        assigned_at: None,
        accepted_at: None,
        started_at: None,
        paused_at: None,
        paused_secs: 0,
        completed_at: None,
        confirmed_at: None,
        closed_at: None,
        cancelled_at: None,
        result: String::new(),
        result_photos: Vec::new(),
        parts: sqlx::types::Json(Vec::new()),
        labour_minutes: None,
        charge: None,
        cash_receipt_no: None,
        rating: None,
        rating_comment: String::new(),
        visit_note: String::new(),
        cancel_reason: String::new(),
        alarm_cleared_at: None,
    }
}

fn window(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> AppResult<()> {
    if let (Some(f), Some(t)) = (from, to)
        && t <= f
    {
        return Err(invalid("preferredTo", "预约结束时间应晚于开始时间", "preferredTo comes after preferredFrom"));
    }
    Ok(())
}

/// 业主报修: an owner (or a member or tenant, as the project allows) reports a repair in
/// one of their houses.
pub struct ReportInput {
    pub house_id: Uuid,
    pub category: Category,
    pub description: String,
    pub photos: Vec<String>,
    pub preferred_from: Option<DateTime<Utc>>,
    pub preferred_to: Option<DateTime<Utc>>,
}

pub async fn report(state: &AppState, actor: &Actor, retry: &Retry, i: ReportInput) -> AppResult<Uuid> {
    actor.require(Perm::SelfHouse)?;
    let Some(owner_id) = actor.owner_id else { return Err(AppError::not_found("house")) };
    let description = types::text("description", &i.description, 500)?;
    window(i.preferred_from, i.preferred_to)?;
    let photos = crate::files::service::require_own(state, actor, "photos", &i.photos).await?;
    let Some(relation) = crate::org::owners::service::relation_to(state, owner_id, i.house_id).await? else {
        return Err(AppError::not_found("house"));
    };
    let project_id = crate::org::estate::service::house_project(state, actor, i.house_id).await?;
    let st = staffing(state, actor.company_id, project_id, i.category).await?;
    if !st.settings.reporter_relations.iter().any(|r| r == relation.as_str()) {
        return Err(AppError::Forbidden {
            reason: "REPORTER_NOT_ALLOWED",
            msg: Msg::new(
                "本项目不允许该身份的住户报修",
                "This project does not take repair reports from your relation to the house",
            ),
        });
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let now = state.clock.now();
    let mut w = blank(Uuid::now_v7(), actor.company_id, project_id, Source::Owner, i.category, now);
    w.title = format!("{}报修", i.category.label());
    w.description = description;
    w.house_id = Some(i.house_id);
    w.owner_id = Some(owner_id);
    w.reporter_id = Some(actor.user_id);
    w.photos = photos;
    w.preferred_from = i.preferred_from;
    w.preferred_to = i.preferred_to;
    let w = open(state, &mut tx, w, &st, Some(actor.user_id)).await?;
    tx.commit(&w.id).await?;
    changed(state, &w, Action::Submit).await;
    Ok(w.id)
}

/// Staff open an order: customer service for an owner's house, or anyone with
/// `workorder:create` for a public area or a device.
pub struct CreateInput {
    pub project_id: Uuid,
    pub category: Category,
    pub priority: Option<Priority>,
    pub title: String,
    pub description: String,
    pub location: Option<String>,
    pub house_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    pub photos: Vec<String>,
    pub preferred_from: Option<DateTime<Utc>>,
    pub preferred_to: Option<DateTime<Utc>>,
}

pub async fn create(state: &AppState, actor: &Actor, retry: &Retry, i: CreateInput) -> AppResult<Uuid> {
    actor.require_project(Perm::WorkorderCreate, i.project_id)?;
    let title = types::text("title", &i.title, 60)?;
    let description = types::optional_text("description", Some(&i.description), 500)?;
    let location = types::optional_text("location", i.location.as_deref(), 100)?;
    window(i.preferred_from, i.preferred_to)?;
    let photos = crate::files::service::require_own(state, actor, "photos", &i.photos).await?;
    if let Some(h) = i.house_id
        && crate::org::estate::service::house_project(state, actor, h).await? != i.project_id
    {
        return Err(invalid("houseId", "房屋不属于该项目", "The house is not in this project"));
    }
    if let Some(o) = i.owner_id {
        let mut conn = state.db.acquire().await?;
        crate::org::owners::service::require_owner_in_scope(&mut conn, actor, Perm::WorkorderCreate, o).await?;
        drop(conn);
        let Some(h) = i.house_id else {
            return Err(invalid("houseId", "代业主报修需指定房屋", "A report for an owner names the house"));
        };
        if crate::org::owners::service::relation_to(state, o, h).await?.is_none() {
            return Err(invalid("ownerId", "该业主与房屋无关联", "The owner is not linked to the house"));
        }
    }
    if let Some(d) = i.device_id {
        let project =
            crate::equipment::service::device_within(state, actor, Perm::WorkorderCreate, d).await?.project_id;
        if project != i.project_id {
            return Err(invalid("deviceId", "设备不属于该项目", "The device is not in this project"));
        }
    }
    if i.house_id.is_none() && i.device_id.is_none() && location.is_empty() {
        return Err(invalid("location", "公区工单需填写位置", "A public-area order says where"));
    }
    let st = staffing(state, actor.company_id, i.project_id, i.category).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let now = state.clock.now();
    let source = if i.owner_id.is_some() { Source::Service } else { Source::Staff };
    let mut w = blank(Uuid::now_v7(), actor.company_id, i.project_id, source, i.category, now);
    w.title = title;
    w.description = description;
    w.location = location;
    w.house_id = i.house_id;
    w.owner_id = i.owner_id;
    w.device_id = i.device_id;
    w.reporter_id = Some(actor.user_id);
    w.photos = photos;
    w.preferred_from = i.preferred_from;
    w.preferred_to = i.preferred_to;
    w.priority = i.priority.unwrap_or(if i.category == Category::Elevator { Priority::High } else { Priority::Normal });
    let w = open(state, &mut tx, w, &st, Some(actor.user_id)).await?;
    tx.commit(&w.id).await?;
    changed(state, &w, Action::Submit).await;
    Ok(w.id)
}

/// Who may take a project's new order of a category, read before any transaction (a
/// transaction never waits for a second pooled connection: under a burst that could
/// starve the pool).
/// Who of the staff may be offered work of a category today: the people module answers
/// (at work, and licensed when the category needs a certificate). Registered at startup as
/// a state part (`Arc<dyn Eligibility>`).
#[async_trait::async_trait]
pub trait Eligibility: Send + Sync {
    async fn able(
        &self,
        db: &mut sqlx::PgConnection,
        company: Uuid,
        category: Category,
        users: Vec<Uuid>,
        today: chrono::NaiveDate,
    ) -> AppResult<Vec<Uuid>>;
}

pub struct Staffing {
    pub settings: Settings,
    /// `workorder:do` holders of the project, narrowed to the category's skill holders
    pub pool: Vec<Uuid>,
    /// those of the pool on shift and clocked in now; else those holding `alarm:duty`; else
    /// the whole pool
    pub on_duty: Vec<Uuid>,
}

async fn staffing(state: &AppState, company_id: Uuid, project_id: Uuid, category: Category) -> AppResult<Staffing> {
    let mut conn = state.db.acquire().await?;
    let today = crate::kit::clock::business_date(state.clock.now());
    staffing_in(state, &mut conn, company_id, project_id, category, today).await
}

/// `staffing` on the caller's connection (the repair desk runs inside an alarm's transaction).
async fn staffing_in(
    state: &AppState,
    db: &mut sqlx::PgConnection,
    company_id: Uuid,
    project_id: Uuid,
    category: Category,
    today: chrono::NaiveDate,
) -> AppResult<Staffing> {
    let settings = repo::settings(&mut *db, project_id).await?.unwrap_or_else(|| Settings::defaults(project_id));
    let all = crate::rbac::service::duty_holders_in(db, company_id, project_id, Perm::WorkorderDo).await?;
    // at work, and licensed when the work needs a certificate (持证上岗); then the skilled
    // among them, else all of them
    let all = state.part::<Arc<dyn Eligibility>>()?.able(db, company_id, category, all, today).await?;
    let skills = crate::rbac::service::skills_of_in(db, &all).await?;
    let skilled: Vec<Uuid> =
        skills.iter().filter(|(_, s)| s.iter().any(|c| c == category.as_str())).map(|(u, _)| *u).collect();
    let pool = if skilled.is_empty() { all } else { skilled };
    // on shift and clocked in; else (nobody is, or the project keeps no rota) those
    // holding `alarm:duty`; else the whole pool
    let roster = state.part::<Arc<dyn crate::rbac::service::DutyRoster>>()?;
    let at_work = roster.on_duty(state, db, company_id, project_id).await?;
    let mut on_duty: Vec<Uuid> = pool.iter().copied().filter(|u| at_work.contains(u)).collect();
    if on_duty.is_empty() {
        let duty = crate::rbac::service::duty_holders_in(db, company_id, project_id, Perm::AlarmDuty).await?;
        on_duty = pool.iter().copied().filter(|u| duty.contains(u)).collect();
    }
    let on_duty = if on_duty.is_empty() { pool.clone() } else { on_duty };
    Ok(Staffing { settings, pool, on_duty })
}

/// Inserts a new order, logs it, dispatches it by the project's rule and tells the people
/// concerned, in the caller's transaction.
async fn open(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    mut w: WorkOrder,
    st: &Staffing,
    by: Option<Uuid>,
) -> AppResult<WorkOrder> {
    let now = w.created_at;
    if matches!(st.settings.dispatch, Dispatch::Auto | Dispatch::RoundRobin)
        && let Some(u) = pick(tx, &w, st).await?
    {
        w.state = State::Assigned;
        w.assignee_id = Some(u);
        w.assigned_at = Some(now);
    }
    w.no = repo::insert(&mut *tx, &w).await?;
    set_deadlines(tx, &w).await?;
    log(tx, &w, Action::Submit, None, by, "", None, now).await?;
    if w.state == State::Assigned {
        log(tx, &w, Action::Assign, Some(State::Submitted), None, "自动派单", None, now).await?;
        tell(state, tx, &w, &[w.assignee_id], "新派工单", format!("{} {}，请及时接单", w.number(), w.title)).await?;
    } else if st.pool.is_empty() {
        // nobody may take it (none licensed or at work): the dispatchers decide, never no one
        let desk =
            crate::rbac::service::duty_holders_in(tx, w.company_id, w.project_id, Perm::WorkorderDispatch).await?;
        let desk: Vec<Option<Uuid>> = desk.into_iter().map(Some).collect();
        let text = format!("{}（暂无可接单的持证在岗人员，请人工派单）", pool_text(&w));
        tell(state, tx, &w, &desk, "新工单待派", text).await?;
    } else {
        let pool: Vec<Option<Uuid>> = st.pool.iter().copied().map(Some).collect();
        tell(state, tx, &w, &pool, "新工单待接", pool_text(&w)).await?;
    }
    Ok(w)
}

fn pool_text(w: &WorkOrder) -> String {
    let urgent = if w.priority == Priority::Urgent { "【紧急】" } else { "" };
    format!("{urgent}{} {}：{}", w.number(), w.category.label(), w.title)
}

/// Round-robin or least-loaded among the on-duty technicians.
async fn pick(tx: &mut sqlx::PgConnection, w: &WorkOrder, st: &Staffing) -> AppResult<Option<Uuid>> {
    let mut candidates = st.on_duty.clone();
    candidates.sort();
    if candidates.is_empty() {
        return Ok(None);
    }
    let chosen = match st.settings.dispatch {
        Dispatch::RoundRobin => {
            // whose turn it was, read under the settings row's lock: two orders at once go
            // to two people
            let last = repo::lock_last_assignee(&mut *tx, w.project_id).await?;
            let next = last
                .and_then(|last| candidates.iter().position(|c| *c == last))
                .map_or(0, |i| (i + 1) % candidates.len());
            let u = candidates[next];
            repo::set_last_assignee(&mut *tx, w.project_id, u).await?;
            u
        }
        _ => {
            let loads = repo::loads(&mut *tx, &candidates).await?;
            let load = |u: &Uuid| loads.iter().find(|(l, _)| l == u).map_or(0, |(_, n)| *n);
            candidates.iter().copied().min_by_key(|u| (load(u), *u)).unwrap_or(candidates[0])
        }
    };
    Ok(Some(chosen))
}

#[allow(clippy::too_many_arguments)]
async fn log(
    tx: &mut sqlx::PgConnection,
    w: &WorkOrder,
    action: Action,
    from: Option<State>,
    by: Option<Uuid>,
    note: &str,
    at_pos: Option<(f64, f64)>,
    at: DateTime<Utc>,
) -> AppResult<()> {
    let e = Event {
        id: Uuid::now_v7(),
        work_order_id: w.id,
        action,
        from_state: from,
        to_state: w.state,
        actor_id: by,
        note: note.to_owned(),
        lat: at_pos.map(|p| p.0),
        lng: at_pos.map(|p| p.1),
        at,
    };
    repo::insert_event(tx, &e).await?;
    Ok(())
}

/// A work-order notice to the given users (none: nothing), through the outbox.
async fn tell(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    w: &WorkOrder,
    to: &[Option<Uuid>],
    title: &str,
    body: String,
) -> AppResult<()> {
    let mut to: Vec<Uuid> = to.iter().flatten().copied().collect();
    to.sort();
    to.dedup();
    if to.is_empty() {
        return Ok(());
    }
    let n = NewNotification {
        category: NoteCategory::WorkOrder,
        priority: if w.priority == Priority::Urgent { NotePriority::Critical } else { NotePriority::High },
        title: format!("{title} {}", w.number()),
        body,
        data: serde_json::json!({ "route": "workOrder", "workOrderId": w.id, "projectId": w.project_id }),
        channels: None,
    };
    crate::notify::service::enqueue(state, tx, w.company_id, &to, &n).await?;
    Ok(())
}

/// The owner side's accounts: the reporter (when not staff) and the owner's app account.
async fn owner_side(state: &AppState, w: &WorkOrder) -> AppResult<Vec<Option<Uuid>>> {
    let mut v = Vec::new();
    if matches!(w.source, Source::Owner) {
        v.push(w.reporter_id);
    }
    if let Some(o) = w.owner_id {
        v.push(crate::org::owners::service::user_of_owner(state, w.company_id, o).await?);
    }
    Ok(v)
}

/// The change event of an order, for subscribers on every replica.
async fn change_event(state: &AppState, w: &WorkOrder, action: Action) -> Option<events::Event> {
    let mut users: Vec<Uuid> = [w.reporter_id, w.assignee_id].into_iter().flatten().collect();
    if let Some(o) = w.owner_id
        && let Ok(Some(u)) = crate::org::owners::service::user_of_owner(state, w.company_id, o).await
    {
        users.push(u);
    }
    let c = Changed { id: w.id, project_id: w.project_id, state: w.state, action, users };
    let payload = serde_json::to_value(&c).ok()?;
    Some(events::Event { user_id: None, kind: EVENT_CHANGED.into(), payload })
}

/// Publishes the change (after the commit).
async fn changed(state: &AppState, w: &WorkOrder, action: Action) {
    if let Some(e) = change_event(state, w, action).await {
        state.events.publish_after_commit(vec![e]).await;
    }
}

// ---- transitions -------------------------------------------------------------------------

/// Where the technician stands (from the phone).
#[derive(Debug, Clone, Copy)]
pub struct Position {
    pub lat: f64,
    pub lng: f64,
    pub accuracy_m: Option<f64>,
}

/// What the technician reports on completion.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    pub result: String,
    pub photos: Vec<String>,
    pub parts: Vec<PartUsed>,
    pub labour_minutes: Option<i32>,
    pub charge: Option<Decimal>,
    pub cash_receipt_no: Option<String>,
}

/// One transition a person asks for.
#[derive(Debug, Clone)]
pub enum Move {
    /// 派单 (dispatcher)
    Assign {
        to: Uuid,
        note: Option<String>,
    },
    /// 抢单 (technician, from the pool)
    Grab,
    /// 接单 (the assignee)
    Accept,
    /// 退单 back to the pool, with a reason (the assignee)
    Return {
        reason: String,
    },
    /// 转单 to another technician (the assignee or a dispatcher)
    Transfer {
        to: Uuid,
        reason: String,
    },
    /// 到场 (the assignee, at the project)
    Start {
        position: Option<Position>,
    },
    /// 暂停 waiting for parts (the assignee)
    Pause {
        reason: String,
    },
    Resume,
    Complete(Completion),
    /// 确认 with a rating (the confirmer)
    Confirm {
        rating: i16,
        comment: Option<String>,
    },
    /// 驳回 the result; the order reopens (the confirmer)
    Reject {
        reason: String,
    },
    /// 回访 (customer service) closes a confirmed order
    Visit {
        note: String,
    },
    /// 取消 (the owner before acceptance; a dispatcher while unfinished)
    Cancel {
        reason: Option<String>,
    },
    /// 调整优先级 (dispatcher)
    SetPriority {
        priority: Priority,
    },
}

impl Move {
    fn action(&self) -> Action {
        match self {
            Move::Assign { .. } => Action::Assign,
            Move::Grab => Action::Grab,
            Move::Accept => Action::Accept,
            Move::Return { .. } => Action::Return,
            Move::Transfer { .. } => Action::Transfer,
            Move::Start { .. } => Action::Start,
            Move::Pause { .. } => Action::Pause,
            Move::Resume => Action::Resume,
            Move::Complete(_) => Action::Complete,
            Move::Confirm { .. } => Action::Confirm,
            Move::Reject { .. } => Action::Reject,
            Move::Visit { .. } => Action::Visit,
            Move::Cancel { .. } => Action::Cancel,
            Move::SetPriority { .. } => Action::Priority,
        }
    }
}

fn reason(field: &'static str, r: &str) -> AppResult<String> {
    types::text(field, r, 200)
}

/// The checks that need no database: text lengths, ranges, amounts.
fn check_input(m: &Move) -> AppResult<()> {
    match m {
        Move::Return { reason: r }
        | Move::Transfer { reason: r, .. }
        | Move::Pause { reason: r }
        | Move::Reject { reason: r } => {
            reason("reason", r)?;
        }
        Move::Assign { note: Some(n), .. } => {
            types::optional_text("note", Some(n), 200)?;
        }
        Move::Cancel { reason: Some(r) } => {
            types::optional_text("reason", Some(r), 200)?;
        }
        Move::Visit { note } => {
            types::text("note", note, 500)?;
        }
        Move::Confirm { rating, comment } => {
            if !(1..=5).contains(rating) {
                return Err(invalid("rating", "评分应为1到5", "rating is 1 to 5"));
            }
            types::optional_text("comment", comment.as_deref(), 200)?;
        }
        Move::Start { position: Some(p) } => {
            if !(-90.0..=90.0).contains(&p.lat) || !(-180.0..=180.0).contains(&p.lng) {
                return Err(invalid("position", "位置无效", "Invalid position"));
            }
            if p.accuracy_m.is_some_and(|a| !(0.0..=100_000.0).contains(&a)) {
                return Err(invalid("position.accuracyM", "定位精度无效", "Invalid accuracy"));
            }
        }
        Move::Complete(c) => {
            types::text("result", &c.result, 1000)?;
            if c.parts.len() > 50 {
                return Err(invalid("parts", "更换配件最多50项", "At most 50 parts"));
            }
            for p in &c.parts {
                types::text("parts.name", &p.name, 60)?;
                if !(1..=10_000).contains(&p.quantity) {
                    return Err(invalid("parts.quantity", "数量应在1到10000之间", "Quantity within 1 to 10000"));
                }
            }
            if c.labour_minutes.is_some_and(|m| !(0..=10_000).contains(&m)) {
                return Err(invalid("labourMinutes", "工时应在0到10000分钟之间", "labourMinutes within 0 to 10000"));
            }
            if let Some(ch) = c.charge {
                let m = Money::from_decimal("charge", ch, false)?;
                if m.yuan() > Decimal::new(100_000, 0) {
                    return Err(invalid("charge", "收费金额不能超过100000元", "A charge is at most 100000 yuan"));
                }
            }
            types::optional_text("cashReceiptNo", c.cash_receipt_no.as_deref(), 40)?;
        }
        _ => {}
    }
    Ok(())
}

/// Another staff member who may take the order's work: staff of the company holding
/// `workorder:do` over its project.
async fn technician(state: &AppState, w: &WorkOrder, user: Uuid) -> AppResult<()> {
    let a = crate::rbac::service::load_actor(state, user, w.company_id, i64::MAX)
        .await
        .map_err(|_| AppError::not_found("user"))?;
    if !a.is_staff() || a.account.status != crate::rbac::model::AccountStatus::Active {
        return Err(AppError::not_found("user"));
    }
    if a.require_project(Perm::WorkorderDo, w.project_id).is_err() {
        return Err(invalid(
            "assigneeId",
            "该人员不能处理本项目的工单",
            "This person cannot take this project's work orders",
        ));
    }
    if !qualified(state, w, user).await? {
        return Err(invalid(
            "assigneeId",
            "该人员休假中或没有本类工作所需的有效证书",
            "This person is on leave or holds no valid certificate this work needs",
        ));
    }
    Ok(())
}

/// At work, and licensed when the order's category needs a certificate (持证上岗).
async fn qualified(state: &AppState, w: &WorkOrder, user: Uuid) -> AppResult<bool> {
    let today = crate::kit::clock::business_date(state.clock.now());
    let mut conn = state.db.acquire().await?;
    let ok = state.part::<Arc<dyn Eligibility>>()?.able(&mut conn, w.company_id, w.category, vec![user], today).await?;
    Ok(!ok.is_empty())
}

fn assignee_only(actor: &Actor, w: &WorkOrder) -> AppResult<()> {
    if w.assignee_id == Some(actor.user_id) && actor.require_project(Perm::WorkorderDo, w.project_id).is_ok() {
        Ok(())
    } else {
        Err(AppError::forbidden())
    }
}

/// The confirmer: the owner side for orders about an owner; else customer service or a
/// manager of the project (`workorder:visit`).
fn confirmer(actor: &Actor, w: &WorkOrder) -> AppResult<()> {
    if w.assignee_id == Some(actor.user_id) {
        return Err(own_work());
    }
    let ok = if w.owner_id.is_some() || w.source == Source::Owner {
        actor.has(Perm::SelfHouse) && is_owner_side(actor, w)
    } else {
        actor.reaches(&[Perm::WorkorderVisit], w.project_id)
    };
    if ok { Ok(()) } else { Err(AppError::forbidden()) }
}

/// Nobody confirms, rejects or visits their own work.
fn own_work() -> AppError {
    AppError::Forbidden {
        reason: "OWN_WORK",
        msg: Msg::new("不能确认或回访自己处理的工单", "You cannot confirm or visit your own work"),
    }
}

/// Applies one transition; returns the order's id.
pub async fn transition(state: &AppState, actor: &Actor, retry: &Retry, id: Uuid, m: Move) -> AppResult<Uuid> {
    if actor.must_change_password {
        return Err(crate::rbac::model::password_change_required());
    }
    check_input(&m)?;
    // what the transition needs besides the row is read first: a transaction holding the
    // row never waits for a second pooled connection (fifty grabs queue on one row)
    let pre = repo::get(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("workOrder"))?;
    if !can_read(actor, &pre) {
        return Err(AppError::not_found("workOrder"));
    }
    // a grab of an order already taken is answered at once (a retry with its
    // `clientMutationId` still gets its recorded outcome below): when a pool is released,
    // most grabs lose, and a loser should cost one read, not a transaction
    if matches!(m, Move::Grab) && retry.key().is_none() && (pre.state != State::Submitted || pre.assignee_id.is_some())
    {
        actor.require_project(Perm::WorkorderDo, pre.project_id)?;
        return Err(wrong_state(&pre, "工单已被接走", "The order has already been taken"));
    }
    let known = Known::load(state, actor, &pre, &m, retry.key().is_some()).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let mut w = repo::lock(&mut tx, actor.company_id, id).await?.ok_or(AppError::not_found("workOrder"))?;
    let action = m.action();
    let resolved = apply(state, &mut tx, actor, &known, &mut w, m).await?;
    tx.commit(&w.id).await?;
    // committed: what follows may fail without undoing it
    if let Err(e) = crate::iot::alarms::service::forget_resolved(state, &resolved, state.clock.now()).await {
        e.log_if_internal();
    }
    changed(state, &w, action).await;
    Ok(w.id)
}

/// What a transition needs besides the locked row (the project, the owner and who may be
/// told never change on an order).
struct Known {
    settings: Settings,
    /// the owner side's accounts
    owner_side: Vec<Option<Uuid>>,
    /// the project's geofence (lat, lng, radius m)
    geofence: Option<(f64, f64, i32)>,
    /// who hears of an order back in the pool
    dispatchers_and_pool: Vec<Option<Uuid>>,
    /// who confirms an order without an owner
    visitors: Vec<Option<Uuid>>,
    /// a completion's photos, checked as the caller's uploads
    photos: Vec<String>,
}

impl Known {
    /// `keyed`: the call carries a `clientMutationId`, so it may be the repeat of a move that
    /// already changed the order (a transfer's sender is no longer its assignee): checks that
    /// depend on the order's state then wait for the transaction, after the repeat is known.
    async fn load(state: &AppState, actor: &Actor, w: &WorkOrder, m: &Move, keyed: bool) -> AppResult<Known> {
        let mut k = Known {
            settings: settings(state, w.project_id).await?,
            owner_side: owner_side(state, w).await?,
            geofence: None,
            dispatchers_and_pool: Vec::new(),
            visitors: Vec::new(),
            photos: Vec::new(),
        };
        match m {
            Move::Assign { to, .. } => {
                actor.require_project(Perm::WorkorderDispatch, w.project_id)?;
                technician(state, w, *to).await?;
            }
            Move::Transfer { to, .. } => {
                if !keyed && actor.require_project(Perm::WorkorderDispatch, w.project_id).is_err() {
                    assignee_only(actor, w)?;
                }
                technician(state, w, *to).await?;
            }
            Move::Grab if !qualified(state, w, actor.user_id).await? => {
                return Err(AppError::Forbidden {
                    reason: "NOT_QUALIFIED",
                    msg: Msg::new(
                        "休假中或没有本类工作所需的有效证书，不能抢单",
                        "On leave, or without a valid certificate this work needs: the order cannot be grabbed",
                    ),
                });
            }
            Move::Start { .. } => {
                let p = crate::org::company::service::project_of_company(state, w.company_id, w.project_id).await?;
                if let (Some(lat), Some(lng), Some(r)) = (p.geofence_lat, p.geofence_lng, p.geofence_radius_m) {
                    k.geofence = Some((lat, lng, r));
                }
            }
            Move::Return { .. } => {
                let st = staffing(state, w.company_id, w.project_id, w.category).await?;
                let dispatchers =
                    crate::rbac::service::duty_holders(state, w.company_id, w.project_id, Perm::WorkorderDispatch)
                        .await?;
                k.dispatchers_and_pool = dispatchers
                    .into_iter()
                    .chain(st.pool.into_iter().filter(|u| *u != actor.user_id))
                    .map(Some)
                    .collect();
            }
            Move::Complete(c) => {
                k.photos = crate::files::service::require_own(state, actor, "photos", &c.photos).await?;
                k.visitors =
                    crate::rbac::service::duty_holders(state, w.company_id, w.project_id, Perm::WorkorderVisit)
                        .await?
                        .into_iter()
                        .map(Some)
                        .collect();
            }
            _ => {}
        }
        Ok(k)
    }
}

/// Applies the move to the locked order; returns the alarms resolved by a completion
/// (device, rule), which the live state forgets after the commit.
async fn apply(
    state: &AppState,
    tx: &mut Tx,
    actor: &Actor,
    k: &Known,
    w: &mut WorkOrder,
    m: Move,
) -> AppResult<Vec<(Uuid, Uuid)>> {
    let mut resolved = Vec::new();
    let now = state.clock.now();
    let from = w.state;
    let me = Some(actor.user_id);
    let action = m.action();
    let mut note = String::new();
    let mut pos = None;
    match m {
        Move::Assign { to, note: n } => {
            actor.require_project(Perm::WorkorderDispatch, w.project_id)?;
            if !matches!(w.state, State::Submitted | State::Assigned) {
                return Err(wrong_state(
                    w,
                    "只能派发待派或已派的工单",
                    "Only a pooled or assigned order can be assigned",
                ));
            }
            technician(state, w, to).await?;
            let before = w.assignee_id;
            w.state = State::Assigned;
            w.assignee_id = Some(to);
            w.assigned_at = Some(now);
            note = n.unwrap_or_default();
            tell(state, tx, w, &[Some(to)], "新派工单", format!("{} {}，请及时接单", w.number(), w.title)).await?;
            if before.is_some_and(|b| b != to) {
                tell(state, tx, w, &[before], "工单已改派", format!("{} 已改派他人", w.number())).await?;
            }
        }
        Move::Grab => {
            actor.require_project(Perm::WorkorderDo, w.project_id)?;
            if w.state != State::Submitted || w.assignee_id.is_some() {
                return Err(wrong_state(w, "工单已被接走", "The order has already been taken"));
            }
            if k.settings.dispatch == Dispatch::Manual {
                return Err(AppError::Forbidden {
                    reason: "GRAB_DISABLED",
                    msg: Msg::new(
                        "本项目为人工派单，不能抢单",
                        "This project dispatches by hand: orders cannot be grabbed",
                    ),
                });
            }
            w.state = State::Accepted;
            w.assignee_id = me;
            w.assigned_at = Some(now);
            w.accepted_at = Some(now);
            w.alarm_cleared_at = None;
            tell(state, tx, w, &k.owner_side, "工单已接单", format!("{} 已由{}接单", w.number(), actor.name)).await?;
        }
        Move::Accept => {
            assignee_only(actor, w)?;
            if w.state != State::Assigned {
                return Err(wrong_state(w, "只能接受已派给你的工单", "Only an order assigned to you can be accepted"));
            }
            w.state = State::Accepted;
            w.accepted_at = Some(now);
            w.alarm_cleared_at = None;
            tell(state, tx, w, &k.owner_side, "工单已接单", format!("{} 已由{}接单", w.number(), actor.name)).await?;
        }
        Move::Return { reason: r } => {
            assignee_only(actor, w)?;
            if !matches!(w.state, State::Assigned | State::Accepted) {
                return Err(wrong_state(w, "到场后不能退单", "An order cannot be returned once work has started"));
            }
            note = reason("reason", &r)?;
            w.state = State::Submitted;
            w.assignee_id = None;
            w.assigned_at = None;
            w.accepted_at = None;
            rearm_response(tx, w, now).await?;
            tell(
                state,
                tx,
                w,
                &k.dispatchers_and_pool,
                "工单退回待派",
                format!("{}（退单原因：{note}）", pool_text(w)),
            )
            .await?;
        }
        Move::Transfer { to, reason: r } => {
            let dispatcher = actor.require_project(Perm::WorkorderDispatch, w.project_id).is_ok();
            if !dispatcher {
                assignee_only(actor, w)?;
            }
            if !matches!(w.state, State::Assigned | State::Accepted | State::InProgress | State::Paused) {
                return Err(wrong_state(w, "只能转派处理中的工单", "Only an order being handled can be transferred"));
            }
            if w.assignee_id == Some(to) {
                return Err(invalid("assigneeId", "已是该人员的工单", "The order is already theirs"));
            }
            note = reason("reason", &r)?;
            let before = w.assignee_id;
            w.state = State::Assigned;
            unpause(w, now);
            w.assignee_id = Some(to);
            w.assigned_at = Some(now);
            w.accepted_at = None;
            rearm_response(tx, w, now).await?;
            tell(state, tx, w, &[Some(to)], "转派工单", format!("{} {}（{note}）", w.number(), w.title)).await?;
            if before != me {
                tell(state, tx, w, &[before], "工单已转派", format!("{} 已转派他人", w.number())).await?;
            }
        }
        Move::Start { position } => {
            assignee_only(actor, w)?;
            if w.state != State::Accepted {
                return Err(wrong_state(w, "只能对已接单的工单签到", "Only an accepted order can be started"));
            }
            if let Some((lat, lng, radius)) = k.geofence {
                let Some(at) = position else {
                    return Err(invalid("position", "请开启定位后到场签到", "Send your position to start the work"));
                };
                let max = state.config.patrol.max_accuracy_m;
                if at.accuracy_m.is_some_and(|a| a > max) {
                    return Err(AppError::validation(
                        "position.accuracyM",
                        Msg::owned(
                            format!("定位精度不足（{:.0}米），请到开阔处重试", at.accuracy_m.unwrap_or_default()),
                            format!(
                                "Position too imprecise ({:.0} m): try again in the open",
                                at.accuracy_m.unwrap_or_default()
                            ),
                        ),
                    ));
                }
                let d = crate::kit::types::distance_m(lat, lng, at.lat, at.lng);
                if d > radius as f64 {
                    return Err(AppError::validation(
                        "position",
                        Msg::owned(
                            format!("不在项目范围内（距离{:.0}米，允许{radius}米）", d),
                            format!("Outside the project ({d:.0} m away, {radius} m allowed)"),
                        ),
                    ));
                }
            }
            pos = position.map(|p| (p.lat, p.lng));
            w.state = State::InProgress;
            w.started_at = Some(now);
            crate::iot::alarms::service::set_repairs_status(tx, w.id, RepairStatus::InProgress).await?;
            tell(state, tx, w, &k.owner_side, "维修人员已到场", format!("{} {}已到场处理", w.number(), actor.name))
                .await?;
        }
        Move::Pause { reason: r } => {
            assignee_only(actor, w)?;
            if !matches!(w.state, State::Accepted | State::InProgress) {
                return Err(wrong_state(w, "只能暂停处理中的工单", "Only an order being handled can be paused"));
            }
            note = reason("reason", &r)?;
            w.paused_from = Some(w.state);
            w.state = State::Paused;
            w.paused_at = Some(now);
            tell(state, tx, w, &k.owner_side, "工单暂停", format!("{}（{note}）", w.number())).await?;
        }
        Move::Resume => {
            assignee_only(actor, w)?;
            if w.state != State::Paused {
                return Err(wrong_state(w, "工单未暂停", "The order is not paused"));
            }
            w.state = w.paused_from.unwrap_or(State::InProgress);
            unpause(w, now);
        }
        Move::Complete(c) => {
            assignee_only(actor, w)?;
            if w.state != State::InProgress {
                return Err(wrong_state(w, "只能完成处理中的工单", "Only an order in progress can be completed"));
            }
            w.state = State::Completed;
            w.completed_at = Some(now);
            w.result = types::text("result", &c.result, 1000)?;
            w.result_photos = k.photos.clone();
            w.parts = sqlx::types::Json(
                c.parts
                    .into_iter()
                    .map(|p| PartUsed { name: p.name.trim().to_owned(), quantity: p.quantity })
                    .collect(),
            );
            w.labour_minutes = c.labour_minutes;
            w.charge = c.charge.map(|ch| Money::round(ch).yuan());
            w.cash_receipt_no = c.cash_receipt_no.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
            resolved = finish_repairs(tx, w, actor.user_id, now).await?;
            // 有偿维修: the charge waits for billing (or is paid in cash already)
            if let Some(amount) = w.charge.filter(|c| !c.is_zero()) {
                let what = format!("有偿维修 {} {}", w.number(), w.title);
                repo::upsert_charge(&mut **tx, w, amount, &what, actor.user_id, now).await?;
            }
            // 维修档案: the repair goes into the device's archive beside its maintenance
            if let Some(device) = w.device_id {
                let r = crate::maintenance::plans::service::Repair {
                    work_order_id: w.id,
                    company_id: w.company_id,
                    project_id: w.project_id,
                    device_id: device,
                    staff_id: actor.user_id,
                    done_at: now,
                    parts: &w.parts.0,
                    notes: &w.result,
                    // photos of a home stay with the order, for those who may read it
                    photos: if w.house_id.is_none() && w.owner_id.is_none() { &w.result_photos } else { &[] },
                };
                crate::maintenance::plans::service::archive_repair(tx, &r).await?;
            }
            let mut to = k.owner_side.clone();
            if w.owner_id.is_none() && w.source != Source::Owner {
                to.extend(k.visitors.iter().copied());
            }
            tell(state, tx, w, &to, "工单已完成", format!("{} 已处理完成，请确认并评价", w.number())).await?;
        }
        Move::Confirm { rating, comment } => {
            confirmer(actor, w)?;
            if w.state != State::Completed {
                return Err(wrong_state(w, "只能确认已完成的工单", "Only a completed order can be confirmed"));
            }
            w.rating = Some(rating);
            w.rating_comment = types::optional_text("comment", comment.as_deref(), 200)?;
            confirm(&k.settings, w, now);
            tell(state, tx, w, &[w.assignee_id], "工单已评价", format!("{} 评分{rating}星", w.number())).await?;
        }
        Move::Reject { reason: r } => {
            confirmer(actor, w)?;
            if w.state != State::Completed {
                return Err(wrong_state(w, "只能驳回已完成的工单", "Only a completed order can be rejected"));
            }
            if let (Some(d), Some(rule)) = (w.device_id, w.rule_id)
                && repo::lock_open_for_rule(tx, d, rule).await?.is_some()
            {
                return Err(AppError::conflict(
                    "workOrderId",
                    Msg::new(
                        "该设备的同类告警已有新的工单，请在新工单中处理",
                        "The device's alarm has a newer open order: handle it there",
                    ),
                ));
            }
            note = reason("reason", &r)?;
            w.state = State::Accepted;
            w.completed_at = None;
            w.started_at = None;
            w.result = String::new();
            w.result_photos = Vec::new();
            w.parts = sqlx::types::Json(Vec::new());
            w.labour_minutes = None;
            w.charge = None;
            w.cash_receipt_no = None;
            repo::drop_charge(&mut **tx, w.id).await?;
            crate::maintenance::plans::service::unarchive_repair(tx, w.id).await?;
            crate::iot::alarms::service::set_repairs_status(tx, w.id, RepairStatus::InProgress).await?;
            tell(state, tx, w, &[w.assignee_id], "工单被驳回", format!("{} 需返工：{note}", w.number())).await?;
        }
        Move::Visit { note: n } => {
            if !actor.reaches(&[Perm::WorkorderVisit], w.project_id) {
                return Err(AppError::forbidden());
            }
            if w.assignee_id == Some(actor.user_id) {
                return Err(own_work());
            }
            if w.state != State::Confirmed {
                return Err(wrong_state(w, "只能回访已确认的工单", "Only a confirmed order gets a return visit"));
            }
            note = types::text("note", &n, 500)?;
            w.visit_note = note.clone();
            w.state = State::Closed;
            w.closed_at = Some(now);
        }
        Move::Cancel { reason: r } => {
            let dispatcher = actor.require_project(Perm::WorkorderDispatch, w.project_id).is_ok();
            let owner = !dispatcher && actor.has(Perm::SelfHouse) && is_owner_side(actor, w);
            if !dispatcher && !owner {
                return Err(AppError::forbidden());
            }
            let allowed = if dispatcher { w.state.unfinished() } else { w.state.before_acceptance() };
            if !allowed {
                return Err(wrong_state(
                    w,
                    "工单已受理，不能取消",
                    "The order has been taken on and cannot be cancelled",
                ));
            }
            note = types::optional_text("reason", r.as_deref(), 200)?;
            if dispatcher && note.is_empty() {
                return Err(invalid("reason", "请填写取消原因", "Say why the order is cancelled"));
            }
            cancel(tx, w, &note, now).await?;
            // its alarms end with it (a fault still there raises a new alarm and order)
            let resolution = format!("工单{}已取消{}", w.number(), paren(&note));
            resolved = resolve_alarms_of(tx, w, actor.user_id, &resolution, now).await?;
            let mut to = vec![w.assignee_id];
            if dispatcher {
                to.extend(k.owner_side.iter().copied());
            }
            tell(state, tx, w, &to, "工单已取消", format!("{} 已取消{}", w.number(), paren(&note))).await?;
        }
        Move::SetPriority { priority } => {
            actor.require_project(Perm::WorkorderDispatch, w.project_id)?;
            if !w.state.unfinished() {
                return Err(wrong_state(w, "工单已结束", "The order is finished"));
            }
            note = format!("{} → {}", w.priority.as_str(), priority.as_str());
            w.priority = priority;
            set_deadlines(tx, w).await?;
        }
    }
    w.updated_at = now;
    repo::save(&mut **tx, w).await?;
    log(tx, w, action, Some(from), me, &note, pos, now).await?;
    Ok(resolved)
}

/// Ends a pause: its time is added to the order's paused seconds.
fn unpause(w: &mut WorkOrder, now: DateTime<Utc>) {
    if let Some(p) = w.paused_at.take() {
        let secs = (now - p).num_seconds().clamp(0, i32::MAX as i64) as i32;
        w.paused_secs = w.paused_secs.saturating_add(secs);
    }
    w.paused_from = None;
}

fn paren(s: &str) -> String {
    if s.is_empty() { String::new() } else { format!("（{s}）") }
}

/// Confirmed: closed at once unless the project wants a return visit for the category.
fn confirm(s: &Settings, w: &mut WorkOrder, now: DateTime<Utc>) {
    w.confirmed_at = Some(now);
    if s.needs_visit(w.category) {
        w.state = State::Confirmed;
    } else {
        w.state = State::Closed;
        w.closed_at = Some(now);
    }
}

async fn cancel(tx: &mut sqlx::PgConnection, w: &mut WorkOrder, reason: &str, now: DateTime<Utc>) -> AppResult<()> {
    w.state = State::Cancelled;
    w.cancelled_at = Some(now);
    w.cancel_reason = reason.to_owned();
    unpause(w, now);
    crate::iot::alarms::service::set_repairs_status(tx, w.id, RepairStatus::Closed).await?;
    Ok(())
}

/// Completion closes the order's repair requests and resolves its alarms, in the same
/// transaction; returns the (device, rule) of each alarm resolved.
async fn finish_repairs(tx: &mut Tx, w: &WorkOrder, by: Uuid, now: DateTime<Utc>) -> AppResult<Vec<(Uuid, Uuid)>> {
    crate::iot::alarms::service::set_repairs_status(tx, w.id, RepairStatus::Closed).await?;
    let resolution = format!("工单{}已完成：{}", w.number(), w.result);
    resolve_alarms_of(tx, w, by, &resolution, now).await
}

/// Resolves the order's alarms still unresolved; returns their (device, rule).
async fn resolve_alarms_of(
    tx: &mut sqlx::PgConnection,
    w: &WorkOrder,
    by: Uuid,
    resolution: &str,
    now: DateTime<Utc>,
) -> AppResult<Vec<(Uuid, Uuid)>> {
    let requests = crate::iot::alarms::service::repairs_of_order(tx, w.id).await?;
    let alarms: Vec<Uuid> =
        requests.iter().filter(|r| r.source == RepairSource::Alarm).filter_map(|r| r.source_id).collect();
    crate::iot::alarms::service::resolve_by_work_order(tx, w.company_id, &alarms, by, resolution, now).await
}

// ---- the desk: repair requests become orders ------------------------------------------

/// Registered at startup as iot's `RepairDesk`.
pub struct Desk;

#[async_trait::async_trait]
impl RepairDesk for Desk {
    async fn opened(
        &self,
        state: &AppState,
        tx: &mut sqlx::PgConnection,
        r: &RepairOpened,
    ) -> AppResult<Vec<events::Event>> {
        // an unfinished order of the same device and rule (or maintenance record) takes it
        let joined = match (r.rule, r.source) {
            (Some(h), _) => repo::lock_open_for_rule(tx, r.device_id, h.rule_id).await?,
            (None, RepairSource::Maintenance) => match r.source_id {
                Some(rec) => repo::lock_open_for_record(tx, r.device_id, rec).await?,
                None => None,
            },
            _ => None,
        };
        if let Some(id) = joined {
            crate::iot::alarms::service::link_repair(tx, r.request_id, id).await?;
            let Some(mut w) = repo::lock(tx, r.company_id, id).await? else { return Ok(Vec::new()) };
            w.alarm_cleared_at = None;
            w.updated_at = r.at;
            repo::save(&mut *tx, &w).await?;
            log(tx, &w, Action::Join, Some(w.state), None, &r.reason, None, r.at).await?;
            return Ok(change_event(state, &w, Action::Join).await.into_iter().collect());
        }
        let device = crate::equipment::service::device_in(tx, r.company_id, r.device_id).await?;
        let category = device.map_or(Category::Other, |d| Category::of_device(d.category));
        let source = if r.source == RepairSource::Alarm { Source::Alarm } else { Source::Maintenance };
        let mut w = blank(Uuid::now_v7(), r.company_id, r.project_id, source, category, r.at);
        w.title = r.reason.chars().take(60).collect();
        w.description = r.reason.chars().take(500).collect();
        w.device_id = Some(r.device_id);
        w.rule_id = r.rule.map(|h| h.rule_id);
        w.origin_id = r.rule.map(|h| h.alarm_id).or(r.source_id);
        w.reporter_id = r.created_by;
        w.priority = match r.rule.map(|h| h.severity) {
            Some(Severity::Critical) => Priority::Urgent,
            Some(Severity::Major) => Priority::High,
            _ if category == Category::Elevator => Priority::High,
            _ => Priority::Normal,
        };
        let st = staffing_in(state, tx, r.company_id, r.project_id, category, crate::kit::clock::business_date(r.at))
            .await?;
        let w = open(state, tx, w, &st, None).await?;
        crate::iot::alarms::service::link_repair(tx, r.request_id, w.id).await?;
        Ok(change_event(state, &w, Action::Submit).await.into_iter().collect())
    }

    async fn alarm_cleared(
        &self,
        _state: &AppState,
        tx: &mut sqlx::PgConnection,
        company_id: Uuid,
        alarm_id: Uuid,
        at: DateTime<Utc>,
    ) -> AppResult<()> {
        // the scheduler cancels the order after the project's grace unless another alarm
        // joins meanwhile (a flapping device keeps one order)
        for r in crate::iot::alarms::service::repairs_of_alarm(tx, alarm_id).await? {
            let Some(id) = r.work_order_id else { continue };
            // an order locked right now is being moved (its completion resolves this very
            // alarm): skipping it keeps the lock order of the two paths from crossing
            if let Some(mut w) = repo::lock_skip_locked(tx, company_id, id).await?
                && w.state.before_acceptance()
                && w.alarm_cleared_at.is_none()
            {
                w.alarm_cleared_at = Some(at);
                repo::save(&mut *tx, &w).await?;
            }
        }
        Ok(())
    }
}

// ---- reports ---------------------------------------------------------------------------------

/// 工单报表 over the orders reported from `from` to `to` (Shanghai calendar days, both
/// included, at most 366 days): one project, or every project `workorder:read` reaches.
pub async fn figures(
    state: &AppState,
    actor: &Actor,
    project: Option<Uuid>,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> AppResult<super::model::Report> {
    let filter = actor.projects(Perm::WorkorderRead)?;
    if let Some(p) = project {
        actor.require_project(Perm::WorkorderRead, p)?;
    }
    use chrono::Datelike;
    for (field, d) in [("from", from), ("to", to)] {
        if !(2000..=2100).contains(&d.year()) {
            return Err(invalid(field, "日期应在2000年至2100年之间", "A date between the years 2000 and 2100"));
        }
    }
    if to < from {
        return Err(invalid("to", "结束日期不能早于开始日期", "to is not before from"));
    }
    if (to - from).num_days() >= 366 {
        return Err(invalid("to", "统计区间最长366天", "At most 366 days"));
    }
    let start = |d: chrono::NaiveDate| -> AppResult<DateTime<Utc>> {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(crate::kit::clock::BUSINESS_TZ).earliest())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| invalid("from", "日期无效", "Invalid date"))
    };
    let next = to.checked_add_days(chrono::Days::new(1)).ok_or_else(|| invalid("to", "日期无效", "Invalid date"))?;
    let (begin, end) = (start(from)?, start(next)?);
    let projects = filter.as_sql();
    let mut conn = state.db.acquire().await?;
    Ok(repo::report(&mut conn, actor.company_id, projects.as_deref(), project, begin, end).await?)
}

// ---- time limits (SLA) and the escalation ladder -----------------------------------------

/// The order's deadlines from its project's limits for its category and priority, counted
/// from its report; the ladder starts again.
async fn set_deadlines(tx: &mut sqlx::PgConnection, w: &WorkOrder) -> AppResult<()> {
    let sla =
        repo::sla_for(&mut *tx, w.project_id, w.category, w.priority).await?.unwrap_or(Sla::default_for(w.priority));
    let response = w.created_at + TimeDelta::minutes(sla.response_minutes as i64);
    let complete = w.created_at + TimeDelta::minutes(sla.completion_minutes as i64);
    repo::set_deadlines(&mut *tx, w.id, response, complete).await?;
    Ok(())
}

/// A fresh response deadline from now (an order returned to the pool or transferred).
async fn rearm_response(tx: &mut sqlx::PgConnection, w: &WorkOrder, now: DateTime<Utc>) -> AppResult<()> {
    let sla =
        repo::sla_for(&mut *tx, w.project_id, w.category, w.priority).await?.unwrap_or(Sla::default_for(w.priority));
    repo::rearm_response(&mut *tx, w.id, now + TimeDelta::minutes(sla.response_minutes as i64)).await?;
    Ok(())
}

/// The deadlines of orders the caller has already been shown.
pub async fn deadlines_of(state: &AppState, ids: &[Uuid]) -> AppResult<Vec<Deadlines>> {
    Ok(repo::deadlines_of(&state.db, ids).await?)
}

pub struct SlaInput {
    pub project_id: Uuid,
    /// `None`: every category without a row of its own
    pub category: Option<Category>,
    pub priority: Priority,
    pub sla: Sla,
}

/// A project's limits for a category (or any) and a priority (`workorder:dispatch`); orders
/// reported from now on follow them.
pub async fn set_sla(state: &AppState, actor: &Actor, retry: &Retry, i: SlaInput) -> AppResult<Uuid> {
    actor.require_project(Perm::WorkorderDispatch, i.project_id)?;
    if !(1..=10_080).contains(&i.sla.response_minutes) {
        return Err(invalid("responseMinutes", "响应时限应在1到10080分钟之间", "responseMinutes within 1 to 10080"));
    }
    if !(1..=129_600).contains(&i.sla.completion_minutes) || i.sla.completion_minutes < i.sla.response_minutes {
        return Err(invalid(
            "completionMinutes",
            "完成时限应在1到129600分钟之间，且不短于响应时限",
            "completionMinutes within 1 to 129600 and not shorter than responseMinutes",
        ));
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let now = state.clock.now();
    repo::upsert_sla(&mut *tx, actor.company_id, i.project_id, i.category, i.priority, i.sla, now).await?;
    crate::kit::audit::record(
        &mut tx,
        now,
        actor,
        "workorder.sla",
        "project",
        Some(i.project_id),
        serde_json::json!({ "category": i.category, "priority": i.priority,
            "responseMinutes": i.sla.response_minutes, "completionMinutes": i.sla.completion_minutes }),
    )
    .await?;
    tx.commit(&i.project_id).await?;
    Ok(i.project_id)
}

/// How far up its ladder an order should be `overdue_secs` past a deadline of a
/// `window_secs` window: 1 at the deadline, 2 after half the window more (at least 10
/// minutes), 3 after as much again.
pub fn ladder_level(overdue_secs: i64, window_secs: i64) -> i16 {
    if overdue_secs < 0 {
        return 0;
    }
    let step = (window_secs / 2).max(600);
    1 + i16::from(overdue_secs >= step) + i16::from(overdue_secs >= 2 * step)
}

/// The escalation ladder (scheduler, idempotent): an order not taken on, or not done, in
/// time is pushed to its technician (the pool when nobody has it), then to the project's
/// managers, then texted to them. Each step once: the level is raised in the transaction
/// that queues the notices. Returns how many steps were taken.
pub async fn escalate(state: &AppState) -> AppResult<usize> {
    let now = state.clock.now();
    let mut steps = 0;
    for o in repo::overdue(&state.db, now).await? {
        let (completion, due, from, current) = if !o.accepted {
            (false, o.response_due_at, o.created_at, o.response_level)
        } else {
            let due = o.complete_due_at.map(|d| d + TimeDelta::seconds(o.paused_secs as i64));
            (true, due, o.created_at, o.completion_level)
        };
        let Some(due) = due else { continue };
        let window = (due - from).num_seconds() - if completion { o.paused_secs as i64 } else { 0 };
        let wanted = ladder_level((now - due).num_seconds(), window).min(3);
        if wanted <= current {
            continue;
        }
        let technicians: Vec<Option<Uuid>> = match o.assignee_id {
            Some(u) => vec![Some(u)],
            None => staffing(state, o.company_id, o.project_id, o.category).await?.pool.into_iter().map(Some).collect(),
        };
        let managers: Vec<Option<Uuid>> = crate::rbac::service::project_managers(state, o.company_id, o.project_id)
            .await?
            .into_iter()
            .map(Some)
            .collect();
        // the first step is the technicians' own: managers who could take orders too hear at
        // the second
        let technicians: Vec<Option<Uuid>> = technicians.into_iter().filter(|t| !managers.contains(t)).collect();
        let mut tx = Tx::plain(state).await?;
        if repo::raise_level(&mut *tx, o.id, completion, wanted).await? == 0 {
            continue;
        }
        let what = if completion { "超时未完成" } else { "超时未接单" };
        let number = format!("GD{:08}", o.no);
        for level in (current + 1)..=wanted {
            let (to, channels) = match level {
                1 => (&technicians, None),
                2 => (&managers, None),
                _ => (&managers, Some(vec![crate::notify::model::Channel::Sms, crate::notify::model::Channel::InApp])),
            };
            let mut to: Vec<Uuid> = to.iter().flatten().copied().collect();
            to.sort();
            to.dedup();
            if to.is_empty() {
                continue;
            }
            let n = NewNotification {
                category: NoteCategory::WorkOrder,
                priority: if level >= 2 || o.priority == Priority::Urgent {
                    NotePriority::Critical
                } else {
                    NotePriority::High
                },
                title: format!("工单{what} {number}"),
                body: format!("{}：{}（已逾时{}分钟）", number, o.title, (now - due).num_minutes().max(0)),
                data: serde_json::json!({ "route": "workOrder", "workOrderId": o.id, "projectId": o.project_id,
                    "escalation": level, "sla": if completion { "completion" } else { "response" } }),
                channels,
            };
            crate::notify::service::enqueue(state, &mut tx, o.company_id, &to, &n).await?;
            steps += 1;
        }
        tx.commit(&()).await?;
    }
    Ok(steps)
}

// ---- the scheduler's jobs --------------------------------------------------------------

/// Cancels orders whose alarms cleared by themselves before anyone took them on (after the
/// project's grace), and confirms orders their confirmer left alone; opens orders for
/// repair requests recorded before work orders existed. Returns (cancelled, confirmed).
pub async fn follow_up(state: &AppState) -> AppResult<(usize, usize)> {
    let now = state.clock.now();
    for r in crate::iot::alarms::service::unlinked_repairs(state, 100).await? {
        let mut tx = Tx::plain(state).await?;
        let later = Desk.opened(state, &mut tx, &r).await?;
        tx.commit(&()).await?;
        state.events.publish_after_commit(later).await;
    }
    let mut cancelled = 0;
    for (id, company, project) in repo::cleared_before_acceptance(&state.db, now).await? {
        let grace = settings(state, project).await?.alarm_clear_grace_secs;
        let mut tx = Tx::plain(state).await?;
        let Some(mut w) = repo::lock(&mut tx, company, id).await? else { continue };
        let due = w.alarm_cleared_at.is_some_and(|c| c + TimeDelta::seconds(grace as i64) <= now);
        if !w.state.before_acceptance() || !due {
            continue;
        }
        let from = w.state;
        cancel(&mut tx, &mut w, "告警已消除", now).await?;
        w.updated_at = now;
        repo::save(&mut *tx, &w).await?;
        log(&mut tx, &w, Action::Cancel, Some(from), None, "告警已消除", None, now).await?;
        tell(state, &mut tx, &w, &[w.assignee_id], "工单已取消", format!("{} 告警已消除，工单自动取消", w.number()))
            .await?;
        tx.commit(&()).await?;
        changed(state, &w, Action::Cancel).await;
        cancelled += 1;
    }
    let mut confirmed = 0;
    for (id, company, project) in repo::unconfirmed(&state.db, now).await? {
        let s = settings(state, project).await?;
        let mut tx = Tx::plain(state).await?;
        let Some(mut w) = repo::lock(&mut tx, company, id).await? else { continue };
        if w.state != State::Completed {
            continue;
        }
        confirm(&s, &mut w, now);
        w.updated_at = now;
        repo::save(&mut *tx, &w).await?;
        log(&mut tx, &w, Action::Confirm, Some(State::Completed), None, "超时自动确认", None, now).await?;
        tx.commit(&()).await?;
        changed(state, &w, Action::Confirm).await;
        confirmed += 1;
    }
    Ok((cancelled, confirmed))
}

#[cfg(test)]
mod tests {
    use super::ladder_level;

    #[test]
    fn the_ladder_climbs_once_per_step() {
        let window = 3_600; // an hour: steps of 30 minutes
        assert_eq!(ladder_level(-1, window), 0);
        assert_eq!(ladder_level(0, window), 1);
        assert_eq!(ladder_level(1_799, window), 1);
        assert_eq!(ladder_level(1_800, window), 2);
        assert_eq!(ladder_level(3_600, window), 3);
        assert_eq!(ladder_level(99_999, window), 3);
        // short windows still leave ten minutes between steps
        assert_eq!(ladder_level(599, 600), 1);
        assert_eq!(ladder_level(600, 600), 2);
        assert_eq!(ladder_level(1_200, 600), 3);
    }
}
