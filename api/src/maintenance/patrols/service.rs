//! Patrol routes → scheduled patrols → checkpoint scans (in order, on the spot) → patrols
//! closed when their window ends, missed points reported to the project's managers.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use uuid::Uuid;

use super::model::{Checkpoint, PatrolState, PatrolTask, Route, RouteInput, Scan};
use super::repo;
use crate::kit::audit;
use crate::kit::clock::BUSINESS_TZ;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::kit::types;
use crate::kit::types::distance_m;
use crate::notify::model::{Category, NewNotification, Priority};
use crate::rbac::model::{Actor, Perm};

fn invalid(field: &'static str, zh: &'static str, en: &'static str) -> AppError {
    AppError::validation(field, Msg::new(zh, en))
}

fn today(state: &AppState) -> NaiveDate {
    state.clock.now().with_timezone(&BUSINESS_TZ).date_naive()
}

fn parse_time(t: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(t, "%H:%M").ok()
}

// ---- routes ------------------------------------------------------------------------------

/// A route with its checkpoints, each given an unguessable QR code. Returns the route's id.
pub async fn create_route(state: &AppState, actor: &Actor, retry: &Retry, i: RouteInput) -> AppResult<Uuid> {
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
    let mut points = Vec::with_capacity(i.checkpoints.len());
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
    crate::org::company::service::project(state, actor, Perm::PatrolWrite, i.project_id).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::insert_route(&mut tx, &route, &points).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "patrol_route.create",
        "patrol_route",
        Some(route.id),
        serde_json::json!({ "name": route.name }),
    )
    .await?;
    tx.commit(&route.id).await?;
    Ok(route.id)
}

/// One route, for those who may read or manage the project's patrols.
pub async fn route(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Route> {
    let r = repo::get_route(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("route"))?;
    if !actor.reaches(&[Perm::PatrolRead, Perm::PatrolWrite], r.project_id) {
        return Err(AppError::not_found("route"));
    }
    Ok(r)
}

/// A project's routes in creation order.
pub async fn routes(
    state: &AppState,
    actor: &Actor,
    project: Uuid,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Route>> {
    actor.require_project(Perm::PatrolRead, project)?;
    Ok(repo::routes(&state.db, actor.company_id, project, after, limit as i64).await?)
}

/// The checkpoints of routes the caller has already been shown (the per-request loader
/// batches them), by route and walking order.
pub async fn checkpoints_of_routes(state: &AppState, route_ids: &[Uuid]) -> AppResult<Vec<Checkpoint>> {
    Ok(repo::checkpoints(&state.db, route_ids).await?)
}

// ---- patrols -----------------------------------------------------------------------------

/// A project's patrols starting within `from`..`to` (up to 31 days), by start time.
#[allow(clippy::too_many_arguments)]
pub async fn patrol_tasks(
    state: &AppState,
    actor: &Actor,
    project: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> AppResult<Vec<PatrolTask>> {
    actor.require_project(Perm::PatrolRead, project)?;
    if to <= from || to - from > TimeDelta::days(31) {
        return Err(invalid("to", "查询范围应在31天以内", "A range of up to 31 days"));
    }
    Ok(repo::patrol_tasks(&state.db, actor.company_id, project, from, to, after, limit as i64).await?)
}

/// The scans of patrols the caller has already been shown (the per-request loader batches
/// them), in the order they were made.
pub async fn scans_of_tasks(state: &AppState, task_ids: &[Uuid]) -> AppResult<Vec<Scan>> {
    Ok(repo::scans(&state.db, task_ids).await?)
}

/// One scan: the guard's own, or within `patrol:read` / `patrol:do` on its project.
pub async fn scan(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Scan> {
    let (s, project) = repo::get_scan(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("scan"))?;
    if s.user_id != actor.user_id && !actor.reaches(&[Perm::PatrolRead, Perm::PatrolDo], project) {
        return Err(AppError::not_found("scan"));
    }
    Ok(s)
}

fn already_scanned() -> AppError {
    AppError::conflict("code", Msg::new("该巡检点已打卡", "Already scanned"))
}

/// 巡检打卡: the scanned QR code, where the guard stands, now. The point must belong to a
/// patrol under way, be the next in order, and be within its radius. A guard on a weak
/// signal resends the scan with the same `clientMutationId`: the retry answers with the
/// scan it made, never "already scanned". Returns the scan's id.
pub async fn scan_checkpoint(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    code: &str,
    at: GpsFix,
) -> AppResult<Uuid> {
    let GpsFix { lat, lng, accuracy_m } = at;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
        return Err(invalid("lat", "坐标无效", "Invalid coordinates"));
    }
    let max_accuracy = state.config.patrol.max_accuracy_m;
    if !(accuracy_m.is_finite() && accuracy_m > 0.0 && accuracy_m <= max_accuracy) {
        return Err(AppError::validation(
            "accuracyM",
            Msg::owned(
                format!("定位精度不足（需在{max_accuracy}米以内），请到开阔处重新定位"),
                format!("The position is not precise enough (within {max_accuracy} m needed); try again in the open"),
            ),
        ));
    }
    // everything below changes with the first call (the scan exists, the patrol may be
    // completed): a retry gets its outcome before reading any of it
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let (point, route) = repo::checkpoint_by_code(&mut *tx, actor.company_id, code.trim())
        .await?
        .ok_or_else(|| invalid("code", "无效的巡检点二维码", "Not a checkpoint code"))?;
    actor.require_project(Perm::PatrolDo, route.project_id)?;
    let now = state.clock.now();
    let task = match repo::current_patrol_task(&mut *tx, route.id, now).await? {
        Some(t) => t,
        None => {
            return Err(match repo::latest_started_patrol_task(&mut *tx, route.id, now).await? {
                Some(t) if t.state != PatrolState::Pending => {
                    AppError::wrong_state("code", t.state.as_str(), Msg::new("本次巡检已结束", "This patrol is over"))
                }
                _ => invalid("code", "该路线当前没有巡检任务", "No patrol of this route is under way"),
            });
        }
    };
    let points = repo::checkpoints(&mut *tx, &[route.id]).await?;
    let done = repo::scans(&mut *tx, &[task.id]).await?;
    if done.iter().any(|s| s.checkpoint_id == point.id) {
        return Err(already_scanned());
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
    // from the last scan to this one at a walk: no faster than people move, and never a
    // burst of scans read off a photo of the labels
    if let Some(prev) = done.iter().max_by_key(|s| s.scanned_at) {
        let prev_point = points.iter().find(|p| p.id == prev.checkpoint_id);
        let between_points = match (prev_point.and_then(|p| p.lat.zip(p.lng)), point.lat.zip(point.lng)) {
            (Some((a, o)), Some((b, p))) => distance_m(a, o, b, p),
            _ => 0.0,
        };
        let walked = distance_m(prev.lat, prev.lng, lat, lng).max(between_points);
        let rules = &state.config.patrol;
        let needed = (walked / rules.max_speed_mps).max(rules.min_scan_gap_secs as f64);
        let took = (now - prev.scanned_at).num_milliseconds() as f64 / 1000.0;
        if took < needed {
            return Err(AppError::Validation {
                field: "code".into(),
                msg: Msg::new(
                    "两次打卡间隔过短，请步行到下一个巡检点",
                    "Too soon after the last scan: walk to the checkpoint",
                ),
                details: Some(serde_json::json!({ "waitSecs": (needed - took).ceil() as i64 })),
            });
        }
    }
    let s = Scan {
        id: Uuid::now_v7(),
        task_id: task.id,
        checkpoint_id: point.id,
        user_id: actor.user_id,
        scanned_at: now,
        lat,
        lng,
        distance_m: distance,
        accuracy_m: Some(accuracy_m),
    };
    if !repo::insert_scan(&mut *tx, &s).await? {
        return Err(already_scanned());
    }
    if done.len() + 1 == points.len() {
        repo::close_patrol_task(&mut *tx, task.id, PatrolState::Completed, &[], now).await?;
    }
    tx.commit(&s.id).await?;
    Ok(s.id)
}

/// Where a phone says it is, and how precisely (metres, as the platform reports it).
#[derive(Debug, Clone, Copy)]
pub struct GpsFix {
    pub lat: f64,
    pub lng: f64,
    pub accuracy_m: f64,
}

// ---- the scheduler's job ---------------------------------------------------------------

/// The scheduler's job: today's and tomorrow's patrols exist; patrols whose window closed
/// are completed or missed, and missed points are reported to the project's managers.
/// Returns (created, missed).
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
    for t in repo::ended_patrol_tasks(&state.db, now).await? {
        let points = repo::checkpoints(&state.db, &[t.route_id]).await?;
        let scans = repo::scans(&state.db, &[t.id]).await?;
        let missed: Vec<String> =
            points.iter().filter(|p| !scans.iter().any(|s| s.checkpoint_id == p.id)).map(|p| p.name.clone()).collect();
        let mut tx = state.db.begin().await?;
        let st = if missed.is_empty() { PatrolState::Completed } else { PatrolState::Missed };
        if repo::close_patrol_task(&mut *tx, t.id, st, &missed, now).await? == 1 && !missed.is_empty() {
            missed_tasks += 1;
            let to = crate::rbac::service::project_managers(state, t.company_id, t.project_id).await?;
            let local = t.starts_at.with_timezone(&BUSINESS_TZ).format("%m-%d %H:%M");
            let n = NewNotification {
                category: Category::WorkOrder,
                priority: Priority::High,
                title: format!("巡检漏检 {local}"),
                body: format!("未巡检点位：{}", missed.join("、")),
                data: serde_json::json!({ "patrolTaskId": t.id }),
                channels: None,
            };
            crate::notify::service::enqueue(state, &mut tx, t.company_id, &to, &n).await?;
        }
        tx.commit().await?;
    }
    Ok((created, missed_tasks))
}

#[cfg(test)]
mod tests {
    #[test]
    fn distances_in_metres() {
        assert!(super::distance_m(30.5728, 104.0668, 30.5728, 104.0668) < 0.001);
        // 0.01° of latitude is about 1.11 km
        let d = super::distance_m(30.5728, 104.0668, 30.5828, 104.0668);
        assert!((1100.0..1125.0).contains(&d), "{d}");
    }
}
