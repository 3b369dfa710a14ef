//! The scheduler: periodic jobs that must run on one replica at a time. Each replica tries
//! a PostgreSQL advisory lock; the one holding it (on a connection of its own) runs the
//! jobs until it stops or loses the connection, then another takes over.

use std::time::Duration;

use sqlx::Connection;
use tokio::sync::watch;

use crate::kit::error::AppResult;
use crate::kit::state::AppState;

/// `wuye` in ASCII: the lock key of the scheduler.
const LOCK: i64 = 0x7775_7965;

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    if !state.config.iot.jobs {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(state.config.iot.jobs_interval_ms.max(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leader: Option<sqlx::PgConnection> = None;
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {}
        }
        leader = match leader.take() {
            Some(mut conn) => match conn.ping().await {
                Ok(()) => Some(conn),
                Err(_) => None,
            },
            None => acquire(&state).await,
        };
        if leader.is_some()
            && let Err(e) = run_once(&state).await
        {
            e.log_if_internal();
        }
    }
    if let Some(conn) = leader {
        let _ = conn.close().await;
    }
}

async fn acquire(state: &AppState) -> Option<sqlx::PgConnection> {
    let conn = state.db.acquire().await.ok()?;
    let mut conn = conn.detach();
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(LOCK).fetch_one(&mut conn).await.ok()?;
    if got {
        tracing::info!("this replica runs the scheduler");
        Some(conn)
    } else {
        let _ = conn.close().await;
        None
    }
}

/// One round of every job (tests call it directly).
pub async fn run_once(state: &AppState) -> AppResult<()> {
    // one job's failure is logged and the others still run
    fn or_zero<T: Default>(job: &str, r: AppResult<T>) -> T {
        r.unwrap_or_else(|e| {
            e.log_if_internal();
            tracing::warn!(job, error = %e, "scheduled job failed");
            T::default()
        })
    }
    let offline = or_zero("offline", crate::iot::telemetry::service::sweep_offline(state).await);
    let (escalated, reminded) = or_zero("alarms", crate::iot::alarms::service::follow_up(state).await);
    let (tasks, overdue) = or_zero("maintenance", crate::maintenance::plans::service::schedule(state).await);
    let (patrols, missed) = or_zero("patrols", crate::maintenance::patrols::service::patrol_schedule(state).await);
    let (cancelled, confirmed) = or_zero("work orders", crate::workorders::service::follow_up(state).await);
    let sla_steps = or_zero("work-order SLA", crate::workorders::service::escalate(state).await)
        + or_zero("feedback SLA", crate::feedback::service::escalate(state).await);
    let late_fees = or_zero("late fees", crate::billing::bills::service::accrue_late_fees(state).await);
    let payments = or_zero("payments", crate::billing::pay::service::reconcile(state).await);
    let reminders = or_zero("dunning", crate::billing::bills::service::dun(state).await);
    let prepaid = or_zero("prepaid", crate::billing::prepaid::service::deduct(state, None).await);
    let bill_notices = or_zero("bill notices", crate::billing::bills::service::notify_runs(state).await);
    let prints = or_zero("bill prints", crate::billing::print::service::render_prints(state).await);
    let certificates = or_zero("certificates", crate::people::staff::service::remind_expiring(state).await);
    let attendance = or_zero("attendance", crate::people::attendance::service::settle(state).await);
    let exams = or_zero("exams", crate::people::training::service::grade_expired(state).await);
    let forgotten = crate::kit::idempotency::expire(state).await?;
    let total = offline
        + escalated
        + reminded
        + tasks
        + overdue
        + patrols
        + missed
        + cancelled
        + confirmed
        + sla_steps
        + late_fees
        + payments
        + reminders
        + prepaid
        + bill_notices
        + prints
        + certificates
        + attendance
        + exams;
    if total + forgotten as usize > 0 {
        tracing::debug!(
            offline,
            escalated,
            reminded,
            tasks,
            overdue,
            patrols,
            missed,
            cancelled,
            confirmed,
            sla_steps,
            late_fees,
            payments,
            reminders,
            bill_notices,
            prints,
            certificates,
            attendance,
            exams,
            prepaid,
            forgotten,
            "scheduler round"
        );
    }
    Ok(())
}
