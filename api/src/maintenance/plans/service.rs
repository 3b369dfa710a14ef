//! Plans → tasks ahead of the due date → records (a failed item is a repair request on
//! the device); overdue tasks are escalated to the project's managers.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::model::{
    CheckResult, ChecklistResult, CompleteInput, Counter, IntervalKind, PartUsed, Plan, PlanInput, Record, RecordKind,
    Task, TaskFilter, TaskState, Usage,
};
use super::repo::{self, NewTask, TaskQuery};
use super::schedule::{History, Interval, due_dates};
use crate::iot::alarms::model::{NewRepairRequest, RepairSource};
use crate::kit::audit;
use crate::kit::clock::BUSINESS_TZ;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::kit::types;
use crate::notify::model::{Category, NewNotification, Priority};
use crate::rbac::model::{Actor, Perm};

fn invalid(field: &'static str, zh: &'static str, en: &'static str) -> AppError {
    AppError::validation(field, Msg::new(zh, en))
}

/// Today's Shanghai calendar day by the service clock.
pub fn today(state: &AppState) -> NaiveDate {
    state.clock.now().with_timezone(&BUSINESS_TZ).date_naive()
}

fn note(title: String, body: String, data: serde_json::Value, priority: Priority) -> NewNotification {
    NewNotification { category: Category::WorkOrder, priority, title, body, data, channels: None }
}

// ---- plans -----------------------------------------------------------------------------

pub async fn create_plan(state: &AppState, actor: &Actor, retry: &Retry, i: PlanInput) -> AppResult<Uuid> {
    let name = types::text("name", &i.name, 60)?;
    if i.checklist.is_empty() || i.checklist.len() > 50 {
        return Err(invalid("checklist", "检查项应为1到50项", "1 to 50 checklist items"));
    }
    let mut checklist = Vec::with_capacity(i.checklist.len());
    for item in &i.checklist {
        let t = types::text("checklist", item, 100)?;
        if checklist.contains(&t) {
            return Err(invalid("checklist", "检查项不能重复", "Checklist items must differ"));
        }
        checklist.push(t);
    }
    if !(0..=60).contains(&i.lead_days) {
        return Err(invalid("leadDays", "提前天数应在0到60之间", "Lead days within 0 to 60"));
    }
    crate::org::company::service::project(state, actor, Perm::MaintenancePlan, i.project_id).await?;
    match (i.device_id, i.category) {
        (Some(d), None) => {
            let dev = crate::equipment::service::device_for_command(state, actor, d).await?;
            if dev.project_id != i.project_id {
                return Err(invalid("deviceId", "设备不属于该项目", "The device is not in this project"));
            }
        }
        (None, Some(_)) => {}
        _ => return Err(invalid("deviceId", "请选择设备或设备类别之一", "Give a device or a category, not both")),
    }
    if let Some(u) = i.responsible_user_id {
        crate::rbac::service::account(state, u)
            .await
            .ok()
            .filter(|a| a.company_id == actor.company_id && a.is_staff)
            .ok_or_else(|| invalid("responsibleUserId", "负责人不存在", "Unknown staff member"))?;
    }
    // the trigger is checked once every id is known to be the caller's
    let usage = match (i.interval_kind, &i.usage) {
        (Some(kind), None) => {
            if Interval::of(kind, i.interval_days).is_none()
                || (kind != IntervalKind::Days && i.interval_days.is_some())
            {
                return Err(invalid(
                    "intervalKind",
                    "周期应为 MONTHLY、QUARTERLY、YEARLY，或 DAYS 加天数(1-3660)",
                    "Interval is MONTHLY, QUARTERLY, YEARLY, or DAYS with 1-3660 intervalDays",
                ));
            }
            None
        }
        (None, Some(u)) => {
            if i.interval_days.is_some() {
                return Err(invalid("intervalDays", "按使用量的计划没有天数", "A usage plan has no intervalDays"));
            }
            Some(checked_usage(u)?)
        }
        _ => {
            return Err(invalid(
                "intervalKind",
                "请选择按周期(intervalKind)或按使用量(usage)之一",
                "Give either intervalKind (calendar) or usage, not both",
            ));
        }
    };
    let now = state.clock.now();
    let plan = Plan {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        project_id: i.project_id,
        device_id: i.device_id,
        category: i.category,
        name,
        checklist,
        interval_kind: i.interval_kind,
        interval_days: i.interval_days,
        anchor: i.anchor,
        start_date: i.start_date,
        lead_days: i.lead_days,
        counter_metric: usage.as_ref().map(|u| u.metric.clone()),
        counter_every: usage.as_ref().map(|u| u.every),
        counter_lead: usage.as_ref().map_or(0.0, |u| u.lead),
        responsible_user_id: i.responsible_user_id,
        active: true,
        created_at: now,
    };
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::insert_plan(&mut *tx, &plan).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "maintenance_plan.create",
        "maintenance_plan",
        Some(plan.id),
        serde_json::json!({ "name": plan.name }),
    )
    .await?;
    tx.commit(&plan.id).await?;
    Ok(plan.id)
}

/// A usage trigger with a counter name devices can report, a positive finite interval
/// and a lead below it.
fn checked_usage(u: &Usage) -> AppResult<Usage> {
    let metric = u.metric.trim();
    if !crate::iot::telemetry::model::metric_name_ok(metric) {
        return Err(invalid(
            "usage.metric",
            "计数指标应为字母开头的字母、数字或下划线(最多32位)，如 trips、runHours",
            "A counter metric is letters, digits and _ starting with a letter (up to 32), e.g. trips, runHours",
        ));
    }
    if !(u.every.is_finite() && u.every > 0.0 && u.every <= 1e9) {
        return Err(invalid("usage.every", "间隔应大于0且不超过10亿", "every within (0, 1e9]"));
    }
    if !(u.lead.is_finite() && u.lead >= 0.0 && u.lead < u.every) {
        return Err(invalid("usage.lead", "提前量应不小于0且小于间隔", "lead within [0, every)"));
    }
    Ok(Usage { metric: metric.to_owned(), every: u.every, lead: u.lead })
}

/// Pauses or resumes a plan: a paused plan makes no new tasks.
pub async fn set_plan_active(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    id: Uuid,
    active: bool,
) -> AppResult<Uuid> {
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let plan = repo::get_plan(&mut *tx, actor.company_id, id).await?.ok_or(AppError::not_found("plan"))?;
    actor.require_project(Perm::MaintenancePlan, plan.project_id).map_err(|_| AppError::not_found("plan"))?;
    let now = state.clock.now();
    repo::set_plan_active(&mut *tx, id, active, now).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "maintenance_plan.update",
        "maintenance_plan",
        Some(id),
        serde_json::json!({ "active": active }),
    )
    .await?;
    tx.commit(&id).await?;
    Ok(id)
}

/// One plan, for those who may read or manage the project's maintenance.
pub async fn plan(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Plan> {
    let p = repo::get_plan(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("plan"))?;
    if !actor.reaches(&[Perm::MaintenanceRead, Perm::MaintenancePlan], p.project_id) {
        return Err(AppError::not_found("plan"));
    }
    Ok(p)
}

/// A project's plans in creation order.
pub async fn plans(
    state: &AppState,
    actor: &Actor,
    project: Uuid,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Plan>> {
    actor.require_project(Perm::MaintenanceRead, project)?;
    Ok(repo::plans(&state.db, actor.company_id, project, after, limit as i64).await?)
}

// ---- tasks -----------------------------------------------------------------------------

/// Tasks within the caller's `maintenance:read` scope: the most important devices first
/// (critical, normal, low), then by due date.
pub async fn tasks(
    state: &AppState,
    actor: &Actor,
    f: &TaskFilter,
    after: Option<(i16, NaiveDate, Uuid)>,
    limit: usize,
) -> AppResult<Vec<Task>> {
    let projects = actor.projects(Perm::MaintenanceRead)?.as_sql();
    if let Some(p) = f.project_id {
        actor.require_project(Perm::MaintenanceRead, p)?;
    }
    if let Some(d) = f.device_id {
        crate::equipment::service::device_within(state, actor, Perm::MaintenanceRead, d).await?;
    }
    let q = TaskQuery {
        company_id: actor.company_id,
        projects,
        project_id: f.project_id,
        device_id: f.device_id,
        assignee_id: f.mine.then_some(actor.user_id),
        state: f.state,
        due_before: f.due_before,
        after,
        limit: limit as i64,
    };
    Ok(repo::tasks(&state.db, &q).await?)
}

/// One task, for those who may read or do the project's maintenance.
pub async fn task(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Task> {
    let t = repo::get_task(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("task"))?;
    if !actor.reaches(&[Perm::MaintenanceRead, Perm::MaintenanceDo], t.project_id) {
        return Err(AppError::not_found("task"));
    }
    Ok(t)
}

// ---- records ---------------------------------------------------------------------------

/// A device's archive, newest first: maintenance records and the repairs of its completed
/// work orders (`kind` picks one of them).
pub async fn records(
    state: &AppState,
    actor: &Actor,
    device: Uuid,
    kind: Option<RecordKind>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> AppResult<Vec<Record>> {
    let d = crate::equipment::service::device_for_command(state, actor, device).await?;
    actor.require_project(Perm::MaintenanceRead, d.project_id).map_err(|_| AppError::not_found("device"))?;
    Ok(repo::records(&state.db, actor.company_id, device, kind, after, limit as i64).await?)
}

/// A completed work order on a device, as it goes into the device's archive (by the
/// work-order layer, in its completing transaction).
pub struct Repair<'a> {
    pub work_order_id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub device_id: Uuid,
    pub staff_id: Uuid,
    pub done_at: DateTime<Utc>,
    pub parts: &'a [PartUsed],
    pub notes: &'a str,
    pub photos: &'a [String],
}

/// Puts a completed work order in its device's archive (a second completion after a
/// rejected result replaces the first).
pub async fn archive_repair(db: &mut sqlx::PgConnection, r: &Repair<'_>) -> AppResult<()> {
    let record = Record {
        id: Uuid::now_v7(),
        company_id: r.company_id,
        project_id: r.project_id,
        device_id: r.device_id,
        task_id: None,
        plan_id: None,
        done_at: r.done_at,
        staff_id: r.staff_id,
        results: Vec::new(),
        parts: r.parts.to_vec(),
        notes: r.notes.to_owned(),
        photos: r.photos.to_vec(),
        kind: RecordKind::Repair,
        work_order_id: Some(r.work_order_id),
    };
    repo::insert_record(db, &record).await?;
    Ok(())
}

/// Takes a work order's repair out of the archive (the confirmer rejected the result).
pub async fn unarchive_repair(db: &mut sqlx::PgConnection, work_order_id: Uuid) -> AppResult<()> {
    repo::delete_repair(db, work_order_id).await?;
    Ok(())
}

/// One record, for those who may read or do the project's maintenance.
pub async fn record(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Record> {
    let r = repo::get_record(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("record"))?;
    if !actor.reaches(&[Perm::MaintenanceRead, Perm::MaintenanceDo], r.project_id) {
        return Err(AppError::not_found("record"));
    }
    Ok(r)
}

fn task_closed(state: TaskState) -> AppError {
    AppError::wrong_state("taskId", state.as_str(), Msg::new("任务已完成或已取消", "The task is closed"))
}

/// 保养记录: every checklist item answered once; each failed item records a repair request
/// on the device; the task is done, in one transaction. Returns the record's id.
pub async fn complete_task(state: &AppState, actor: &Actor, retry: &Retry, i: CompleteInput) -> AppResult<Uuid> {
    // what can be checked without the task
    if i.parts.len() > 50 {
        return Err(invalid("parts", "更换配件最多50项", "At most 50 parts"));
    }
    let mut parts = Vec::with_capacity(i.parts.len());
    for p in &i.parts {
        let name = types::text("parts.name", &p.name, 60)?;
        if !(1..=10_000).contains(&p.quantity) {
            return Err(invalid("parts.quantity", "数量应在1到10000之间", "Quantity within 1 to 10000"));
        }
        parts.push(PartUsed { name, quantity: p.quantity });
    }
    let notes = types::optional_text("notes", i.notes.as_deref(), 1000)?;
    let photos = crate::files::service::require_own(state, actor, "photos", &i.photos).await?;

    // the task's state changes with the first call: a retry gets its outcome before reading it
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let task = repo::lock_task(&mut *tx, actor.company_id, i.task_id).await?.ok_or(AppError::not_found("task"))?;
    actor.require_project(Perm::MaintenanceDo, task.project_id).map_err(|_| AppError::not_found("task"))?;
    if task.state != TaskState::Pending {
        return Err(task_closed(task.state));
    }
    let mut results = Vec::with_capacity(task.checklist.len());
    for item in &task.checklist {
        let mut hits = i.results.iter().filter(|r| r.item.trim() == item);
        let (Some(r), None) = (hits.next(), hits.next()) else {
            return Err(invalid("results", "每个检查项需填写一次结果", "Answer each checklist item exactly once"));
        };
        let note = types::optional_text("results.note", r.note.as_deref(), 200)?;
        results.push(ChecklistResult { item: item.clone(), result: r.result, note });
    }
    if i.results.len() != task.checklist.len() {
        return Err(invalid("results", "存在不属于该计划的检查项", "An answer names no checklist item"));
    }
    let now = state.clock.now();
    let record = Record {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        project_id: task.project_id,
        device_id: task.device_id,
        task_id: Some(task.id),
        plan_id: Some(task.plan_id),
        done_at: now,
        staff_id: actor.user_id,
        results,
        parts,
        notes,
        photos,
        kind: RecordKind::Maintenance,
        work_order_id: None,
    };
    if repo::complete_task(&mut *tx, task.id, now).await? == 0 {
        // the row is locked: only a change within this transaction could get here
        return Err(task_closed(TaskState::Done));
    }
    repo::insert_record(&mut *tx, &record).await?;
    if let Some(plan) = repo::get_plan(&mut *tx, actor.company_id, task.plan_id).await?
        && let Some(u) = plan.usage()
    {
        next_cycle(state, &mut tx, &plan, &u, task.device_id).await?;
    }
    let failed: Vec<&ChecklistResult> = record.results.iter().filter(|r| r.result == CheckResult::Fail).collect();
    let mut later = Vec::new();
    for r in &failed {
        let reason = if r.note.is_empty() {
            format!("{}：{} 不合格", task.plan_name, r.item)
        } else {
            format!("{}：{} 不合格（{}）", task.plan_name, r.item, r.note)
        };
        let prepared = crate::iot::alarms::service::record_repair_request(
            state,
            &mut tx,
            None,
            &NewRepairRequest {
                company_id: actor.company_id,
                project_id: task.project_id,
                device_id: task.device_id,
                reason: &reason,
                source: RepairSource::Maintenance,
                source_id: Some(record.id),
                created_by: Some(actor.user_id),
                at: now,
            },
        )
        .await?;
        later.extend(prepared);
    }
    audit::record(
        &mut tx,
        now,
        actor,
        "maintenance.complete",
        "maintenance_task",
        Some(task.id),
        serde_json::json!({ "record": record.id, "failed": failed.len() }),
    )
    .await?;
    tx.commit(&record.id).await?;
    state.events.publish_after_commit(later).await;
    Ok(record.id)
}

// ---- the scheduler's job ---------------------------------------------------------------

/// The scheduler's job: tasks ahead of their due dates (the responsible person is told),
/// then overdue tasks escalated to the project's managers. Returns (created, escalated).
pub async fn schedule(state: &AppState) -> AppResult<(usize, usize)> {
    let today = today(state);
    let now = state.clock.now();
    let mut created = 0;
    for plan in repo::active_plans(&state.db).await? {
        if let Some(u) = plan.usage() {
            created += schedule_usage(state, &plan, &u, today, now).await?;
            continue;
        }
        let Some(interval) = plan.interval_kind.and_then(|k| Interval::of(k, plan.interval_days)) else {
            continue;
        };
        let made = plan.created_at.with_timezone(&BUSINESS_TZ).date_naive();
        for d in repo::covered(&state.db, &plan).await? {
            let h = History {
                last_due: d.last_due,
                open: d.open,
                last_done: d.last_done.map(|t| t.with_timezone(&BUSINESS_TZ).date_naive()),
            };
            let dues = due_dates(plan.start_date, interval, plan.anchor, plan.lead_days.max(0) as u32, h, today, made);
            if dues.is_empty() {
                continue;
            }
            let mut tx = state.db.begin().await?;
            for due in dues {
                created += usize::from(make_task(state, &mut tx, &plan, &d, due, None, now).await?);
            }
            tx.commit().await?;
        }
    }
    let mut escalated = 0;
    for t in repo::overdue(&state.db, today).await? {
        let mut tx = state.db.begin().await?;
        if repo::mark_overdue_notified(&mut *tx, t.id, now).await? == 1 {
            let mut to = crate::rbac::service::project_managers(state, t.company_id, t.project_id).await?;
            to.extend(t.assignee_id);
            let n = note(
                format!("保养任务逾期：{}", t.plan_name),
                format!("应于 {} 完成的保养任务尚未完成", t.due_date.format("%Y-%m-%d")),
                serde_json::json!({ "maintenanceTaskId": t.id, "deviceId": t.device_id }),
                Priority::High,
            );
            crate::notify::service::enqueue(state, &mut tx, t.company_id, &to, &n).await?;
            escalated += 1;
        }
        tx.commit().await?;
    }
    Ok((created, escalated))
}

/// A pending task of `plan` on a covered device, its assignee told; false when the plan
/// already has one for the device and day.
async fn make_task(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    plan: &Plan,
    d: &repo::Covered,
    due: NaiveDate,
    due_counter: Option<f64>,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let assignee = plan.responsible_user_id.or(d.responsible_user_id);
    let t = NewTask {
        id: Uuid::now_v7(),
        company_id: plan.company_id,
        project_id: plan.project_id,
        plan_id: plan.id,
        device_id: d.device_id,
        due_date: due,
        due_counter,
        assignee_id: assignee,
        at: now,
    };
    if !repo::insert_task(&mut *tx, &t).await? {
        return Ok(false);
    }
    if let Some(u) = assignee {
        let when = match (due_counter, plan.counter_metric.as_deref()) {
            (Some(c), Some(m)) => format!("{m} 达到 {c} 时（预计 {}）", due.format("%Y-%m-%d")),
            _ => format!("{} 前", due.format("%Y-%m-%d")),
        };
        let n = note(
            format!("保养任务：{} {}", d.name, plan.name),
            format!("设备 {} 请于{}完成{}", d.code, when, plan.name),
            serde_json::json!({ "maintenanceTaskId": t.id, "deviceId": d.device_id }),
            Priority::Normal,
        );
        crate::notify::service::enqueue(state, tx, plan.company_id, &[u], &n).await?;
    }
    Ok(true)
}

/// How far ahead a usage task's estimated due day may be.
const USAGE_HORIZON_DAYS: i64 = 60;

/// A usage plan's turn: each covered device's counter read since the last turn (devices
/// that sent nothing new cost nothing); a device seen for the first time counts from that
/// value; a device within the lead of its due value and without a pending task gets one,
/// due on the day its pace says it will get there; a pending task's day follows the pace.
async fn schedule_usage(
    state: &AppState,
    plan: &Plan,
    u: &Usage,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> AppResult<usize> {
    if today < plan.start_date {
        return Ok(0);
    }
    let covered = repo::covered(&state.db, plan).await?;
    let read_at: std::collections::HashMap<Uuid, DateTime<Utc>> =
        repo::counters_read_at(&state.db, plan.id).await?.into_iter().collect();
    let ask: Vec<(Uuid, Option<DateTime<Utc>>)> =
        covered.iter().map(|d| (d.device_id, read_at.get(&d.device_id).copied())).collect();
    let latest = crate::iot::history::service::latest_counters(state, &state.db, &ask, &u.metric).await?;
    let mut created = 0;
    for d in covered {
        let Some(&(value, at)) = latest.get(&d.device_id) else {
            continue;
        };
        let mut tx = state.db.begin().await?;
        let was =
            repo::lock_counter(&mut tx, plan.id, d.device_id, plan.company_id, &Counter::first(value, at)).await?;
        let c = was.read(value, at);
        if c != was {
            repo::save_counter(&mut *tx, plan.id, d.device_id, plan.company_id, &c).await?;
        }
        let due = c.due_day(u, today, USAGE_HORIZON_DAYS);
        if repo::has_pending(&mut *tx, plan.id, d.device_id).await? {
            repo::move_usage_due(&mut *tx, plan.id, d.device_id, due).await?;
        } else if c.task_due(u) {
            created += usize::from(make_task(state, &mut tx, plan, &d, due, Some(c.due_at(u)), now).await?);
        }
        tx.commit().await?;
    }
    Ok(created)
}

/// After a usage task is done: the device's next cycle counts from the next multiple of
/// the interval (schedule anchor) or from the counter at completion (completion anchor).
async fn next_cycle(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    plan: &Plan,
    u: &Usage,
    device: Uuid,
) -> AppResult<()> {
    let latest = crate::iot::history::service::latest_counters(state, &mut *tx, &[(device, None)], &u.metric).await?;
    // the task came from a counter, so there is one; a reading makes it if it went missing
    let c = match latest.get(&device) {
        Some(&(v, at)) => {
            repo::lock_counter(&mut *tx, plan.id, device, plan.company_id, &Counter::first(v, at)).await?.read(v, at)
        }
        None => match repo::lock_counter_if_any(&mut *tx, plan.id, device).await? {
            Some(c) => c,
            None => return Ok(()),
        },
    };
    repo::save_counter(&mut *tx, plan.id, device, plan.company_id, &c.next_cycle(u, plan.anchor)).await?;
    Ok(())
}
