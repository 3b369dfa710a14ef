//! 巡检 the domain's types: routes of checkpoints, scheduled patrols and their scans.

use chrono::{DateTime, Utc};
use uuid::Uuid;

crate::text_enum! {
    /// 巡检任务状态 where a scheduled patrol stands
    pub enum PatrolState {
        /// scheduled or under way: its window has not closed and not every point is scanned
        Pending = "pending",
        /// every checkpoint was scanned
        Completed = "completed",
        /// the window closed with points unscanned
        Missed = "missed",
    }
}

/// 巡检路线 checkpoints walked in order, at fixed start times each day.
#[derive(Debug, Clone)]
pub struct Route {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    /// start times `HH:MM`, Shanghai time
    pub times: Vec<String>,
    /// minutes a patrol may take from its start time
    pub window_minutes: i32,
    pub active: bool,
}

/// 巡检点 one QR label on a route.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub id: Uuid,
    pub route_id: Uuid,
    /// 1-based walking order
    pub seq: i32,
    pub name: String,
    /// the QR label's content: unguessable, so a photo of the list is no scan
    pub code: String,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    /// metres from the point a scan is accepted
    pub radius_m: i32,
}

/// 巡检任务 one scheduled walk of a route.
#[derive(Debug, Clone)]
pub struct PatrolTask {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub route_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub state: PatrolState,
    /// names of the checkpoints not scanned in time
    pub missed: Vec<String>,
}

/// 巡检打卡 one checkpoint scanned during a patrol.
#[derive(Debug, Clone)]
pub struct Scan {
    pub id: Uuid,
    pub task_id: Uuid,
    pub checkpoint_id: Uuid,
    pub user_id: Uuid,
    pub scanned_at: DateTime<Utc>,
    /// where the guard stood
    pub lat: f64,
    pub lng: f64,
    /// metres from the checkpoint (null when the point has no position)
    pub distance_m: Option<f64>,
    /// how precise the phone said the position was, metres (null before it was asked)
    pub accuracy_m: Option<f64>,
}

// ---- inputs ------------------------------------------------------------------------------

/// A checkpoint of a new route.
#[derive(Debug, Clone)]
pub struct CheckpointInput {
    pub name: String,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    /// metres (5-1000, default 50)
    pub radius_m: Option<i32>,
}

/// A new route, as the API and the demo seed give it.
#[derive(Debug, Clone)]
pub struct RouteInput {
    pub project_id: Uuid,
    pub name: String,
    /// start times `HH:MM`, Shanghai time
    pub times: Vec<String>,
    pub window_minutes: i32,
    /// in walking order
    pub checkpoints: Vec<CheckpointInput>,
}
