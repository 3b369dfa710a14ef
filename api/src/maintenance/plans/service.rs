//! Plans → tasks ahead of the due date → records (a failed item is a repair request on
//! the device); overdue tasks are escalated to the project's managers.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::model::{
    CheckResult, ChecklistResult, CompleteInput, IntervalKind, PartUsed, Plan, PlanInput, Record, Task, TaskFilter,
    TaskState,
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
    if Interval::of(i.interval_kind, i.interval_days).is_none()
        || (i.interval_kind != IntervalKind::Days && i.interval_days.is_some())
    {
        return Err(invalid(
            "intervalKind",
            "周期应为 MONTHLY、QUARTERLY、YEARLY，或 DAYS 加天数(1-3660)",
            "Interval is MONTHLY, QUARTERLY, YEARLY, or DAYS with 1-3660 intervalDays",
        ));
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

/// Tasks within the caller's `maintenance:read` scope, by due date.
pub async fn tasks(
    state: &AppState,
    actor: &Actor,
    f: &TaskFilter,
    after: Option<(NaiveDate, Uuid)>,
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

/// A device's maintenance archive, newest first.
pub async fn records(
    state: &AppState,
    actor: &Actor,
    device: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> AppResult<Vec<Record>> {
    let d = crate::equipment::service::device_for_command(state, actor, device).await?;
    actor.require_project(Perm::MaintenanceRead, d.project_id).map_err(|_| AppError::not_found("device"))?;
    Ok(repo::records(&state.db, actor.company_id, device, after, limit as i64).await?)
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
    };
    if repo::complete_task(&mut *tx, task.id, now).await? == 0 {
        // the row is locked: only a change within this transaction could get here
        return Err(task_closed(TaskState::Done));
    }
    repo::insert_record(&mut *tx, &record).await?;
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
        let Some(interval) = Interval::of(plan.interval_kind, plan.interval_days) else {
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
            let assignee = plan.responsible_user_id.or(d.responsible_user_id);
            let mut tx = state.db.begin().await?;
            for due in dues {
                let t = NewTask {
                    id: Uuid::now_v7(),
                    company_id: plan.company_id,
                    project_id: plan.project_id,
                    plan_id: plan.id,
                    device_id: d.device_id,
                    due_date: due,
                    assignee_id: assignee,
                    at: now,
                };
                if repo::insert_task(&mut tx, &t).await? {
                    created += 1;
                    if let Some(u) = assignee {
                        let n = note(
                            format!("保养任务：{} {}", d.name, plan.name),
                            format!("设备 {} 请于 {} 前完成{}", d.code, due.format("%Y-%m-%d"), plan.name),
                            serde_json::json!({ "maintenanceTaskId": t.id, "deviceId": d.device_id }),
                            Priority::Normal,
                        );
                        crate::notify::service::enqueue(state, &mut tx, plan.company_id, &[u], &n).await?;
                    }
                }
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
