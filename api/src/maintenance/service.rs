//! Plans → tasks ahead of the due date → records (a failed item is a repair request);
//! patrol routes → scheduled patrols → checkpoint scans → missed points reported.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use uuid::Uuid;

use super::repo::{self, Checkpoint, NewTask, Plan, Record, Route, Scan};
use super::schedule::{Anchor, History, Interval, due_dates};
use crate::app::AppState;
use crate::clock::BUSINESS_TZ;
use crate::error::{AppError, AppResult, Msg};
use crate::iot::repo::{NewRepair, insert_repair, managers};
use crate::notify::model::{Category, NewNotification, Priority};
use crate::rbac::model::{Actor, Perm};
use crate::types;

fn invalid(field: &str, zh: &'static str, en: &'static str) -> AppError {
    AppError::validation(field.to_owned(), Msg::new(zh, en))
}

pub fn today(state: &AppState) -> NaiveDate {
    state.clock.now().with_timezone(&BUSINESS_TZ).date_naive()
}

fn note(title: String, body: String, data: serde_json::Value, priority: Priority) -> NewNotification {
    NewNotification { category: Category::WorkOrder, priority, title, body, data, channels: None }
}

// ---- plans -----------------------------------------------------------------------------

pub struct PlanInput {
    pub project_id: Uuid,
    pub device_id: Option<Uuid>,
    pub category: Option<String>,
    pub name: String,
    pub checklist: Vec<String>,
    pub interval_kind: String,
    pub interval_days: Option<i32>,
    pub anchor: String,
    pub start_date: NaiveDate,
    pub lead_days: i32,
    pub responsible_user_id: Option<Uuid>,
}

pub async fn create_plan(state: &AppState, actor: &Actor, i: PlanInput) -> AppResult<Plan> {
    crate::org::service::project(state, actor, Perm::MaintenancePlan, i.project_id).await?;
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
    if Interval::parse(&i.interval_kind, i.interval_days).is_none()
        || (i.interval_kind != "days" && i.interval_days.is_some())
    {
        return Err(invalid(
            "intervalKind",
            "周期应为 monthly、quarterly、yearly，或 days 加天数(1-3660)",
            "Interval is monthly, quarterly, yearly, or days with 1-3660 days",
        ));
    }
    if i.anchor != "schedule" && i.anchor != "completion" {
        return Err(invalid("anchor", "起算方式应为 schedule 或 completion", "Anchor is schedule or completion"));
    }
    if !(0..=60).contains(&i.lead_days) {
        return Err(invalid("leadDays", "提前天数应在0到60之间", "Lead days within 0 to 60"));
    }
    match (&i.device_id, &i.category) {
        (Some(d), None) => {
            let dev = crate::equipment::service::device_for_command(state, actor, *d).await?;
            if dev.project_id != i.project_id {
                return Err(invalid("deviceId", "设备不属于该项目", "The device is not in this project"));
            }
        }
        (None, Some(c)) if crate::equipment::model::CATEGORIES.contains(&c.as_str()) => {}
        (None, Some(_)) => return Err(invalid("category", "设备类别不存在", "Unknown device category")),
        _ => return Err(invalid("deviceId", "请选择设备或设备类别之一", "Give a device or a category, not both")),
    }
    if let Some(u) = i.responsible_user_id {
        crate::rbac::service::account(state, u)
            .await
            .ok()
            .filter(|a| a.company_id == actor.company_id && a.kind == "staff")
            .ok_or_else(|| invalid("responsibleUserId", "负责人不存在", "Unknown staff member"))?;
    }
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
        created_at: state.clock.now(),
    };
    let mut tx = state.db.begin().await?;
    repo::insert_plan(&mut *tx, &plan).await?;
    crate::rbac::service::audit(
        &mut tx,
        actor,
        "maintenance_plan.create",
        "maintenance_plan",
        Some(plan.id),
        serde_json::json!({ "name": plan.name }),
    )
    .await?;
    tx.commit().await?;
    Ok(plan)
}

pub async fn set_plan_active(state: &AppState, actor: &Actor, id: Uuid, active: bool) -> AppResult<Plan> {
    let mut plan = repo::get_plan(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("plan"))?;
    actor.require_project(Perm::MaintenancePlan, plan.project_id).map_err(|_| AppError::not_found("plan"))?;
    let mut tx = state.db.begin().await?;
    repo::set_plan_active(&mut *tx, id, active).await?;
    crate::rbac::service::audit(
        &mut tx,
        actor,
        "maintenance_plan.update",
        "maintenance_plan",
        Some(id),
        serde_json::json!({ "active": active }),
    )
    .await?;
    tx.commit().await?;
    plan.active = active;
    Ok(plan)
}

pub async fn plans(state: &AppState, actor: &Actor, project: Uuid) -> AppResult<Vec<Plan>> {
    actor.require_project(Perm::MaintenanceRead, project)?;
    Ok(repo::plans(&state.db, actor.company_id, project).await?)
}

pub struct TaskFilter {
    pub project_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    pub mine: bool,
    pub state: Option<String>,
    pub due_before: Option<NaiveDate>,
    pub first: Option<i32>,
}

pub async fn tasks(state: &AppState, actor: &Actor, f: TaskFilter) -> AppResult<Vec<repo::Task>> {
    let projects = actor.projects(Perm::MaintenanceRead)?.as_sql();
    if let (Some(p), Some(ps)) = (f.project_id, &projects)
        && !ps.contains(&p)
    {
        return Err(AppError::forbidden());
    }
    let q = repo::TaskQuery {
        company_id: actor.company_id,
        projects,
        project_id: f.project_id,
        device_id: f.device_id,
        assignee_id: f.mine.then_some(actor.user_id),
        state: f.state,
        due_before: f.due_before,
        limit: types::page_size(f.first, 50, 200)? as i64,
    };
    Ok(repo::tasks(&state.db, &q).await?)
}

pub async fn records(state: &AppState, actor: &Actor, device: Uuid, first: Option<i32>) -> AppResult<Vec<Record>> {
    let d = crate::equipment::service::device_for_command(state, actor, device).await?;
    actor.require_project(Perm::MaintenanceRead, d.project_id).map_err(|_| AppError::not_found("device"))?;
    Ok(repo::records(&state.db, actor.company_id, device, types::page_size(first, 50, 200)? as i64).await?)
}

pub struct ItemResult {
    pub item: String,
    pub passed: bool,
    pub note: Option<String>,
}

pub struct Part {
    pub name: String,
    pub quantity: i32,
}

pub struct CompleteInput {
    pub task_id: Uuid,
    pub results: Vec<ItemResult>,
    pub parts: Vec<Part>,
    pub notes: Option<String>,
    pub photos: Vec<String>,
}

fn photo_ok(p: &str) -> bool {
    (1..=300).contains(&p.len())
        && !p.contains("..")
        && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
}

/// 保养记录: every checklist item answered once; each failed item records a repair request
/// on the device; the task is done, in one transaction.
pub async fn complete_task(state: &AppState, actor: &Actor, i: CompleteInput) -> AppResult<Record> {
    let task = repo::get_task(&state.db, actor.company_id, i.task_id).await?.ok_or(AppError::not_found("task"))?;
    actor.require_project(Perm::MaintenanceDo, task.project_id).map_err(|_| AppError::not_found("task"))?;
    if task.state != "pending" {
        return Err(AppError::Conflict {
            field: "taskId".into(),
            msg: Msg::new("任务已完成或已取消", "The task is closed"),
        });
    }
    let mut results = Vec::with_capacity(task.checklist.len());
    for item in &task.checklist {
        let mut hits = i.results.iter().filter(|r| r.item.trim() == item);
        let (Some(r), None) = (hits.next(), hits.next()) else {
            return Err(AppError::validation(
                "results",
                Msg::new("每个检查项需填写一次结果", "Answer each checklist item exactly once"),
            ));
        };
        let note = types::optional_text("results.note", r.note.as_deref(), 200)?;
        results.push((item.clone(), r.passed, note));
    }
    if i.results.len() != task.checklist.len() {
        return Err(invalid("results", "存在不属于该计划的检查项", "An answer names no checklist item"));
    }
    if i.parts.len() > 50 {
        return Err(invalid("parts", "更换配件最多50项", "At most 50 parts"));
    }
    let mut parts = Vec::new();
    for p in &i.parts {
        let name = types::text("parts.name", &p.name, 60)?;
        if !(1..=10_000).contains(&p.quantity) {
            return Err(invalid("parts.quantity", "数量应在1到10000之间", "Quantity within 1 to 10000"));
        }
        parts.push(serde_json::json!({ "name": name, "quantity": p.quantity }));
    }
    if i.photos.len() > 9 || i.photos.iter().any(|p| !photo_ok(p)) {
        return Err(invalid("photos", "照片最多9张，且须为已上传文件", "Up to 9 photos, each an uploaded file"));
    }
    let notes = types::optional_text("notes", i.notes.as_deref(), 1000)?;
    let now = state.clock.now();
    let record = Record {
        id: Uuid::now_v7(),
        project_id: task.project_id,
        device_id: task.device_id,
        task_id: Some(task.id),
        plan_id: Some(task.plan_id),
        done_at: now,
        staff_id: actor.user_id,
        results: serde_json::Value::Array(
            results
                .iter()
                .map(|(item, passed, note)| serde_json::json!({ "item": item, "passed": passed, "note": note }))
                .collect(),
        ),
        parts: serde_json::Value::Array(parts),
        notes,
        photos: i.photos,
    };
    let mut tx = state.db.begin().await?;
    if repo::complete_task(&mut *tx, task.id, now).await? == 0 {
        return Err(AppError::Conflict {
            field: "taskId".into(),
            msg: Msg::new("任务已完成或已取消", "The task is closed"),
        });
    }
    repo::insert_record(&mut *tx, actor.company_id, &record).await?;
    for (item, _, note) in results.iter().filter(|r| !r.1) {
        let reason = if note.is_empty() {
            format!("{}：{item} 不合格", task.plan_name)
        } else {
            format!("{}：{item} 不合格（{note}）", task.plan_name)
        };
        insert_repair(
            &mut *tx,
            &NewRepair {
                company_id: actor.company_id,
                project_id: task.project_id,
                device_id: task.device_id,
                reason: &reason,
                source: "maintenance",
                source_id: Some(record.id),
                created_by: Some(actor.user_id),
                at: now,
            },
        )
        .await?;
    }
    crate::rbac::service::audit(
        &mut tx,
        actor,
        "maintenance.complete",
        "maintenance_task",
        Some(task.id),
        serde_json::json!({ "record": record.id, "failed": results.iter().filter(|r| !r.1).count() }),
    )
    .await?;
    tx.commit().await?;
    Ok(record)
}

/// The scheduler's job: tasks ahead of their due dates (the responsible person is told),
/// then overdue tasks escalated to the project's manager.
pub async fn schedule(state: &AppState) -> AppResult<(usize, usize)> {
    let today = today(state);
    let now = state.clock.now();
    let mut created = 0;
    for plan in repo::active_plans(&state.db).await? {
        let (Some(interval), anchor) = (
            Interval::parse(&plan.interval_kind, plan.interval_days),
            if plan.anchor == "completion" { Anchor::Completion } else { Anchor::Schedule },
        ) else {
            continue;
        };
        for d in repo::covered(&state.db, &plan).await? {
            let h = History {
                last_due: d.last_due,
                open: d.open,
                last_done: d.last_done.map(|t| t.with_timezone(&BUSINESS_TZ).date_naive()),
            };
            let made = plan.created_at.with_timezone(&BUSINESS_TZ).date_naive();
            let dues = due_dates(plan.start_date, interval, anchor, plan.lead_days.max(0) as u32, h, today, made);
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
            let mut to = managers(&mut *tx, t.company_id, t.project_id).await?;
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

// ---- patrols -----------------------------------------------------------------------------

pub struct CheckpointInput {
    pub name: String,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub radius_m: Option<i32>,
}

pub struct RouteInput {
    pub project_id: Uuid,
    pub name: String,
    pub times: Vec<String>,
    pub window_minutes: i32,
    pub checkpoints: Vec<CheckpointInput>,
}

fn parse_time(t: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(t, "%H:%M").ok()
}

pub async fn create_route(state: &AppState, actor: &Actor, i: RouteInput) -> AppResult<(Route, Vec<Checkpoint>)> {
    crate::org::service::project(state, actor, Perm::PatrolWrite, i.project_id).await?;
    let name = types::text("name", &i.name, 60)?;
    if i.times.is_empty() || i.times.len() > 24 || i.times.iter().any(|t| parse_time(t).is_none()) {
        return Err(invalid("times", "巡检时间为1到24个 HH:MM", "1 to 24 start times as HH:MM"));
    }
    if !(10..=720).contains(&i.window_minutes) {
        return Err(invalid("windowMinutes", "巡检时长应在10到720分钟之间", "A window of 10 to 720 minutes"));
    }
    if i.checkpoints.is_empty() || i.checkpoints.len() > 100 {
        return Err(invalid("checkpoints", "巡检点应为1到100个", "1 to 100 checkpoints"));
    }
    let route = Route {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        project_id: i.project_id,
        name,
        times: i.times,
        window_minutes: i.window_minutes,
        active: true,
    };
    let mut points = Vec::new();
    for (n, c) in i.checkpoints.iter().enumerate() {
        let ok_pos = match (c.lat, c.lng) {
            (Some(a), Some(o)) => (-90.0..=90.0).contains(&a) && (-180.0..=180.0).contains(&o),
            (None, None) => true,
            _ => false,
        };
        if !ok_pos {
            return Err(invalid("checkpoints.lat", "坐标无效", "Invalid coordinates"));
        }
        let radius = c.radius_m.unwrap_or(50);
        if !(5..=1000).contains(&radius) {
            return Err(invalid("checkpoints.radiusM", "范围应在5到1000米之间", "Radius within 5 to 1000 m"));
        }
        let id = Uuid::now_v7();
        points.push(Checkpoint {
            id,
            route_id: route.id,
            seq: n as i32 + 1,
            name: types::text("checkpoints.name", &c.name, 60)?,
            // the QR label's content: unguessable, so a photo of the list is no scan
            code: format!("wuye://patrol/{}", id.simple()),
            lat: c.lat,
            lng: c.lng,
            radius_m: radius,
        });
    }
    let mut tx = state.db.begin().await?;
    repo::insert_route(&mut tx, &route, &points).await?;
    crate::rbac::service::audit(
        &mut tx,
        actor,
        "patrol_route.create",
        "patrol_route",
        Some(route.id),
        serde_json::json!({ "name": route.name }),
    )
    .await?;
    tx.commit().await?;
    Ok((route, points))
}

pub async fn routes(state: &AppState, actor: &Actor, project: Uuid) -> AppResult<Vec<(Route, Vec<Checkpoint>)>> {
    actor.require_project(Perm::PatrolRead, project)?;
    let routes = repo::routes(&state.db, actor.company_id, project).await?;
    let ids: Vec<Uuid> = routes.iter().map(|r| r.id).collect();
    let mut points = repo::checkpoints(&state.db, &ids).await?;
    Ok(routes
        .into_iter()
        .map(|r| {
            let mine: Vec<Checkpoint> = points.extract_if(.., |c| c.route_id == r.id).collect();
            (r, mine)
        })
        .collect())
}

pub async fn patrol_tasks(
    state: &AppState,
    actor: &Actor,
    project: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> AppResult<Vec<(repo::PatrolTask, Vec<Scan>)>> {
    actor.require_project(Perm::PatrolRead, project)?;
    if to <= from || to - from > TimeDelta::days(31) {
        return Err(invalid("to", "查询范围应在31天以内", "A range of up to 31 days"));
    }
    let tasks = repo::patrol_tasks(&state.db, actor.company_id, project, from, to).await?;
    let ids: Vec<Uuid> = tasks.iter().map(|t| t.id).collect();
    let mut scans = repo::scans(&state.db, &ids).await?;
    Ok(tasks
        .into_iter()
        .map(|t| {
            let mine: Vec<Scan> = scans.extract_if(.., |s| s.task_id == t.id).collect();
            (t, mine)
        })
        .collect())
}

/// Metres between two points (haversine).
pub fn distance_m(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lng2 - lng1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * a.sqrt().asin()
}

/// 巡检打卡: the scanned QR code, where the guard stands, now. The point must belong to a
/// patrol under way, be the next in order, and be within its radius.
pub async fn scan(state: &AppState, actor: &Actor, code: &str, lat: f64, lng: f64) -> AppResult<Scan> {
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
        return Err(invalid("lat", "坐标无效", "Invalid coordinates"));
    }
    let (point, route) = repo::checkpoint_by_code(&state.db, actor.company_id, code.trim())
        .await?
        .ok_or_else(|| invalid("code", "无效的巡检点二维码", "Not a checkpoint code"))?;
    actor.require_project(Perm::PatrolDo, route.project_id)?;
    let now = state.clock.now();
    let task = repo::current_patrol_task(&state.db, route.id, now)
        .await?
        .ok_or_else(|| invalid("code", "该路线当前没有巡检任务", "No patrol of this route is under way"))?;
    let points = repo::checkpoints(&state.db, &[route.id]).await?;
    let done = repo::scans(&state.db, &[task.id]).await?;
    if done.iter().any(|s| s.checkpoint_id == point.id) {
        return Err(AppError::Conflict {
            field: "code".into(), msg: Msg::new("该巡检点已打卡", "Already scanned")
        });
    }
    if let Some(next) = points.iter().find(|p| !done.iter().any(|s| s.checkpoint_id == p.id))
        && next.id != point.id
    {
        return Err(AppError::Validation {
            field: "code".into(),
            msg: Msg::new("请按顺序巡检", "Walk the checkpoints in order"),
            details: Some(serde_json::json!({ "next": next.name })),
        });
    }
    let distance = match (point.lat, point.lng) {
        (Some(a), Some(o)) => Some(distance_m(a, o, lat, lng)),
        _ => None,
    };
    if distance.is_some_and(|d| d > point.radius_m as f64) {
        return Err(invalid("lat", "不在巡检点范围内", "Not at the checkpoint"));
    }
    let s = Scan {
        task_id: task.id,
        checkpoint_id: point.id,
        user_id: actor.user_id,
        scanned_at: now,
        lat,
        lng,
        distance_m: distance,
    };
    let mut tx = state.db.begin().await?;
    if !repo::insert_scan(&mut *tx, &s).await? {
        return Err(AppError::Conflict {
            field: "code".into(), msg: Msg::new("该巡检点已打卡", "Already scanned")
        });
    }
    if done.len() + 1 == points.len() {
        repo::close_patrol_task(&mut *tx, task.id, "completed", &[], now).await?;
    }
    tx.commit().await?;
    Ok(s)
}

/// The scheduler's job: today's and tomorrow's patrols exist; patrols whose window closed
/// are completed or missed, and missed points are reported to the manager.
pub async fn patrol_schedule(state: &AppState) -> AppResult<(usize, usize)> {
    let now = state.clock.now();
    let today = today(state);
    let mut created = 0;
    for r in repo::active_routes(&state.db).await? {
        for day in [today, today + TimeDelta::days(1)] {
            for t in r.times.iter().filter_map(|t| parse_time(t)) {
                let Some(start) = day.and_time(t).and_local_timezone(BUSINESS_TZ).earliest() else { continue };
                let start = start.with_timezone(&Utc);
                let end = start + TimeDelta::minutes(r.window_minutes as i64);
                if end > now && repo::insert_patrol_task(&state.db, &r, start, end).await? {
                    created += 1;
                }
            }
        }
    }
    let mut missed_tasks = 0;
    for (t, company) in repo::ended_patrol_tasks(&state.db, now).await? {
        let points = repo::checkpoints(&state.db, &[t.route_id]).await?;
        let scans = repo::scans(&state.db, &[t.id]).await?;
        let missed: Vec<String> =
            points.iter().filter(|p| !scans.iter().any(|s| s.checkpoint_id == p.id)).map(|p| p.name.clone()).collect();
        let mut tx = state.db.begin().await?;
        let st = if missed.is_empty() { "completed" } else { "missed" };
        if repo::close_patrol_task(&mut *tx, t.id, st, &missed, now).await? == 1 && !missed.is_empty() {
            missed_tasks += 1;
            let to = managers(&mut *tx, company, t.project_id).await?;
            let local = t.starts_at.with_timezone(&BUSINESS_TZ).format("%m-%d %H:%M");
            let n = note(
                format!("巡检漏检 {local}"),
                format!("未巡检点位：{}", missed.join("、")),
                serde_json::json!({ "patrolTaskId": t.id }),
                Priority::High,
            );
            crate::notify::service::enqueue(state, &mut tx, company, &to, &n).await?;
        }
        tx.commit().await?;
    }
    Ok((created, missed_tasks))
}
