//! 抄表: staff enter a meter's register for a month (`meter:write`), the devices'
//! telemetry fills the rest (`collect`), a replacement explains a register that went
//! down, and abnormal usage is held for review before it is billed.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model::{self, Backwards, Meter, Reading, ReadingSource, ReadingStatus, Replacement, split};
use super::repo;
use crate::equipment::model::DeviceCategory;
use crate::kit::audit;
use crate::kit::clock::BUSINESS_TZ;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::rbac::model::{Actor, Perm};

fn invalid(field: &'static str, zh: &'static str, en: &'static str) -> AppError {
    AppError::validation(field, Msg::new(zh, en))
}

/// A billing month: its first day, not after the current month (Shanghai).
pub fn check_period(state: &AppState, period: NaiveDate) -> AppResult<NaiveDate> {
    let today = state.clock.now().with_timezone(&BUSINESS_TZ).date_naive();
    if model::month_of(period) != period {
        return Err(invalid("period", "账期以当月1日表示", "A period is the first day of its month"));
    }
    if period > model::month_of(today) {
        return Err(invalid("period", "账期不能晚于本月", "The period cannot be after this month"));
    }
    Ok(period)
}

/// The instant a billing month closes (the next month's first midnight, Shanghai).
pub fn period_end(period: NaiveDate) -> DateTime<Utc> {
    let next = model::next_month(period);
    BUSINESS_TZ
        .from_local_datetime(&next.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map_or_else(|| next.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(), |t| t.with_timezone(&Utc))
}

/// 读数: not negative, at most four decimals, below 10^12.
fn register(field: &'static str, v: Decimal) -> AppResult<Decimal> {
    if v.is_sign_negative() && !v.is_zero() || v.normalize().scale() > 4 || v >= Decimal::from(1_000_000_000_000i64) {
        return Err(invalid(
            field,
            "读数应为0到1万亿之间、最多四位小数",
            "A reading within 0 to 1e12, up to 4 decimals",
        ));
    }
    Ok(v.normalize())
}

/// A meter of the caller's company whose project the caller reaches with one of `perms`.
async fn meter(state: &AppState, actor: &Actor, id: Uuid, write: bool) -> AppResult<Meter> {
    let m = repo::meter(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("meter"))?;
    if !actor.reaches(&[Perm::MeterRead, Perm::MeterWrite], m.project_id) {
        return Err(AppError::not_found("meter"));
    }
    if write {
        actor.require_project(Perm::MeterWrite, m.project_id)?;
    }
    Ok(m)
}

/// What a register means against the meter's history: the register it counts from, the
/// usage, and whether it is held for review.
struct Computed {
    previous: Option<Decimal>,
    usage: Option<Decimal>,
    status: ReadingStatus,
    reason: Option<String>,
}

fn compute(
    m: &Meter,
    value: Decimal,
    read_at: DateTime<Utc>,
    earlier: &[Reading],
    replacements: &[Replacement],
) -> Result<Computed, Backwards> {
    let last = earlier.first();
    let previous = last.map(|r| r.reading).or(m.initial);
    let Some(previous) = previous else {
        // the first register of a meter with no initial reading: the baseline
        return Ok(Computed { previous: None, usage: None, status: ReadingStatus::Normal, reason: None });
    };
    // the window of replacements: after the last reading, up to this one
    let swaps: Vec<(Decimal, Decimal)> = replacements
        .iter()
        .filter(|r| r.device_id == m.id && last.is_none_or(|l| r.replaced_at > l.read_at) && r.replaced_at <= read_at)
        .map(|r| (r.old_final, r.new_initial))
        .collect();
    let usage = model::usage(previous, value, &swaps, m.multiplier)?;
    let history: Vec<Decimal> = earlier.iter().filter_map(|r| r.usage).collect();
    Ok(match model::abnormal(usage, &history) {
        Some((zh, _)) => {
            Computed { previous: Some(previous), usage: Some(usage), status: ReadingStatus::Flagged, reason: Some(zh) }
        }
        None => Computed { previous: Some(previous), usage: Some(usage), status: ReadingStatus::Normal, reason: None },
    })
}

fn backwards_flag(b: Backwards) -> Computed {
    let (previous, reason) = match b {
        Backwards::Below { previous } => (Some(previous), format!("读数低于上次读数 {previous}，且没有换表记录")),
        Backwards::TooLarge => (None, "用量超出范围".to_owned()),
    };
    Computed { previous, usage: None, status: ReadingStatus::Flagged, reason: Some(reason) }
}

/// A register refused for an entry, naming the field.
fn refused(b: Backwards, what: &str) -> AppError {
    match b {
        Backwards::Below { previous } => AppError::validation(
            "reading",
            Msg::owned(
                format!("读数低于上次读数 {previous}：{what}"),
                format!(
                    "The reading is below the previous {previous}: correct it or record the meter replacement first"
                ),
            ),
        ),
        Backwards::TooLarge => AppError::validation(
            "reading",
            Msg::new("用量（乘以倍率后）超出范围", "The usage (times the multiplier) is out of range"),
        ),
    }
}

/// When a month's register counts as read: now, or the month's close for a month
/// entered late (replacements after it belong to the months after).
fn read_time(period: NaiveDate, now: DateTime<Utc>) -> DateTime<Utc> {
    now.min(period_end(period) - chrono::TimeDelta::seconds(1))
}

/// 录入读数 (`meter:write`): a meter's register for a month, or a correction of it. A
/// register below the previous one is refused unless a replacement explains it; abnormal
/// usage is kept but held for review. The next month's usage follows a correction.
pub async fn record(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    device: Uuid,
    period: NaiveDate,
    value: Decimal,
) -> AppResult<Uuid> {
    let m = meter(state, actor, device, true).await?;
    let period = check_period(state, period)?;
    let value = register("reading", value)?;
    let now = state.clock.now();
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let old = repo::reading_of_period(&mut tx, m.id, period).await?;
    let earlier = repo::earlier(&mut *tx, m.id, period, model::TRAILING_MONTHS as i64 + 1).await?;
    let swaps = repo::replacements(&mut *tx, &[m.id], now).await?;
    let read_at = read_time(period, now);
    let c = compute(&m, value, read_at, &earlier, &swaps).map_err(|b| refused(b, "如已换表，请先登记换表"))?;
    let id = old.as_ref().map_or_else(Uuid::now_v7, |o| o.id);
    let row = Reading {
        id,
        company_id: m.company_id,
        project_id: m.project_id,
        device_id: m.id,
        house_id: m.house_id,
        period,
        reading: value,
        previous: c.previous,
        usage: c.usage,
        read_at,
        source: ReadingSource::Staff,
        status: c.status,
        flag_reason: c.reason,
        recorded_by: Some(actor.user_id),
        reviewed_by: None,
        created_at: now,
        updated_at: now,
    };
    repo::upsert(&mut tx, std::slice::from_ref(&row)).await?;
    follow_next(&mut tx, &m, &row, &swaps, now).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        if old.is_some() { "meter_reading.correct" } else { "meter_reading.record" },
        "meter_reading",
        Some(id),
        serde_json::json!({ "deviceId": m.id, "period": period, "reading": value.to_string(),
            "usage": row.usage.map(|u| u.to_string()), "status": row.status,
            "was": old.map(|o| o.reading.to_string()) }),
    )
    .await?;
    tx.commit(&id).await?;
    Ok(id)
}

/// The month after a changed reading counts from it: its previous register, usage and
/// hold are computed again.
async fn follow_next(
    tx: &mut sqlx::PgConnection,
    m: &Meter,
    changed: &Reading,
    swaps: &[Replacement],
    now: DateTime<Utc>,
) -> AppResult<()> {
    let Some(next) = repo::next_after(tx, m.id, changed.period).await? else { return Ok(()) };
    let earlier = repo::earlier(&mut *tx, m.id, next.period, model::TRAILING_MONTHS as i64 + 1).await?;
    let c = compute(m, next.reading, next.read_at, &earlier, swaps).unwrap_or_else(backwards_flag);
    let row = Reading {
        previous: c.previous,
        usage: c.usage,
        status: if c.status == ReadingStatus::Normal && next.status == ReadingStatus::Accepted {
            ReadingStatus::Accepted
        } else {
            c.status
        },
        flag_reason: c.reason,
        updated_at: now,
        ..next
    };
    repo::upsert(tx, std::slice::from_ref(&row)).await?;
    Ok(())
}

/// 换表 (`meter:write`): the old register's final reading and the new one's first, at a
/// time (now by default, never in the future).
pub async fn replace(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    device: Uuid,
    replaced_at: Option<DateTime<Utc>>,
    old_final: Decimal,
    new_initial: Decimal,
) -> AppResult<Uuid> {
    let m = meter(state, actor, device, true).await?;
    let now = state.clock.now();
    let at = replaced_at.unwrap_or(now);
    if at > now {
        return Err(invalid("replacedAt", "换表时间不能晚于现在", "replacedAt cannot be in the future"));
    }
    let old_final = register("oldFinal", old_final)?;
    let new_initial = register("newInitial", new_initial)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let r = Replacement { id: Uuid::now_v7(), device_id: m.id, replaced_at: at, old_final, new_initial };
    repo::insert_replacement(&mut tx, m.company_id, m.project_id, &r, actor.user_id, now).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "meter.replace",
        "device",
        Some(m.id),
        serde_json::json!({ "replacedAt": at, "oldFinal": old_final.to_string(), "newInitial": new_initial.to_string() }),
    )
    .await?;
    tx.commit(&m.id).await?;
    Ok(m.id)
}

/// What `collect` did.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Collected {
    /// readings taken from telemetry
    pub read: usize,
    /// of those, held for review
    pub flagged: usize,
    /// meters with no reading of the period and no telemetry before its close
    pub missing: usize,
    /// meters already read for the period (left as they are)
    pub already: usize,
}

/// 自动抄表 (`meter:write` on the project): every meter of the project without a reading
/// of the period gets the last register it reported before the period closed. A register
/// gone down is not refused (a device cannot be asked again) but held for review.
pub async fn collect(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    project: Uuid,
    period: NaiveDate,
) -> AppResult<Collected> {
    crate::org::company::service::project(state, actor, Perm::MeterWrite, project).await?;
    let period = check_period(state, period)?;
    let now = state.clock.now();
    let end = period_end(period).min(now);
    let meters = repo::meters_of_project(&state.db, project, None).await?;
    let ids: Vec<Uuid> = meters.iter().map(|m| m.id).collect();
    let done: std::collections::HashSet<Uuid> =
        repo::read_in_period(&state.db, &ids, period).await?.into_iter().collect();
    let todo: Vec<&Meter> = meters.iter().filter(|m| !done.contains(&m.id)).collect();
    let todo_ids: Vec<Uuid> = todo.iter().map(|m| m.id).collect();
    let registers = crate::iot::history::service::registers_before(state, &todo_ids, end).await?;
    let earlier = repo::earlier_of(&state.db, &todo_ids, period, model::TRAILING_MONTHS as i64 + 1).await?;
    let swaps = repo::replacements(&state.db, &todo_ids, end).await?;
    let mut swaps_of: HashMap<Uuid, Vec<Replacement>> = HashMap::new();
    for s in swaps {
        swaps_of.entry(s.device_id).or_default().push(s);
    }
    let mut out = Collected { already: done.len(), ..Collected::default() };
    let mut rows = Vec::new();
    for m in todo {
        // a register a column cannot hold (negative, too large, too fine) is not taken
        let Some((value, at)) = registers.get(&m.id).filter(|(v, _)| register("reading", *v).is_ok()) else {
            out.missing += 1;
            continue;
        };
        let hist = earlier.get(&m.id).map(Vec::as_slice).unwrap_or(&[]);
        let s = swaps_of.get(&m.id).map(Vec::as_slice).unwrap_or(&[]);
        let c = compute(m, *value, *at, hist, s).unwrap_or_else(backwards_flag);
        if c.status == ReadingStatus::Flagged {
            out.flagged += 1;
        }
        out.read += 1;
        rows.push(Reading {
            id: Uuid::now_v7(),
            company_id: m.company_id,
            project_id: m.project_id,
            device_id: m.id,
            house_id: m.house_id,
            period,
            // NUMERIC(16,4): a register written with more decimals is rounded there
            reading: value.round_dp(4),
            previous: c.previous,
            usage: c.usage,
            read_at: *at,
            source: ReadingSource::Iot,
            status: c.status,
            flag_reason: c.reason,
            recorded_by: None,
            reviewed_by: None,
            created_at: now,
            updated_at: now,
        });
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    // a reading entered meanwhile stays: collection only fills the gaps
    for chunk in rows.chunks(5000) {
        repo::insert_missing(&mut tx, chunk).await?;
    }
    // a month collected late: the month after counts from it
    let ids: Vec<Uuid> = rows.iter().map(|r| r.device_id).collect();
    for device in repo::read_after(&mut *tx, &ids, period).await? {
        if let (Some(m), Some(row)) =
            (meters.iter().find(|m| m.id == device), rows.iter().find(|r| r.device_id == device))
        {
            let s = swaps_of.get(&device).map(Vec::as_slice).unwrap_or(&[]);
            follow_next(&mut tx, m, row, s, now).await?;
        }
    }
    audit::record(
        &mut tx,
        now,
        actor,
        "meter_reading.collect",
        "project",
        Some(project),
        serde_json::json!({ "period": period, "read": out.read, "flagged": out.flagged, "missing": out.missing }),
    )
    .await?;
    tx.commit(&out).await?;
    Ok(out)
}

/// 审核 (`meter:write`): a held reading accepted as it is, or corrected (then checked
/// like any entry and accepted).
pub async fn review(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    id: Uuid,
    corrected: Option<Decimal>,
) -> AppResult<Uuid> {
    let r = reading(state, actor, id).await?;
    let m = meter(state, actor, r.device_id, true).await?;
    let now = state.clock.now();
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let Some(cur) = repo::reading_of_period(&mut tx, m.id, r.period).await? else {
        return Err(AppError::not_found("meterReading"));
    };
    if cur.status != ReadingStatus::Flagged {
        return Err(AppError::conflict("id", Msg::new("该读数不在待审核状态", "The reading is not held for review")));
    }
    let swaps = repo::replacements(&mut *tx, &[m.id], cur.read_at.max(now)).await?;
    let earlier = repo::earlier(&mut *tx, m.id, cur.period, model::TRAILING_MONTHS as i64 + 1).await?;
    let value = match corrected {
        Some(v) => register("reading", v)?,
        None => cur.reading,
    };
    // a correction counts the replacements recorded up to now (often the reason for it),
    // within the month: the reading then counts as read at that time
    let at = if corrected.is_some() { read_time(cur.period, now).max(cur.read_at) } else { cur.read_at };
    let c = compute(&m, value, at, &earlier, &swaps).map_err(|b| refused(b, "请更正读数或先登记换表"))?;
    let row = Reading {
        reading: value,
        previous: c.previous,
        usage: c.usage,
        read_at: at,
        status: ReadingStatus::Accepted,
        flag_reason: cur.flag_reason.clone(),
        reviewed_by: Some(actor.user_id),
        updated_at: now,
        ..cur.clone()
    };
    repo::upsert(&mut tx, std::slice::from_ref(&row)).await?;
    follow_next(&mut tx, &m, &row, &swaps, now).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "meter_reading.review",
        "meter_reading",
        Some(row.id),
        serde_json::json!({ "was": cur.reading.to_string(), "reading": value.to_string(),
            "usage": row.usage.map(|u| u.to_string()), "reason": cur.flag_reason }),
    )
    .await?;
    tx.commit(&row.id).await?;
    Ok(row.id)
}

/// One reading (`meter:read` or `meter:write` on its project).
pub async fn reading(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Reading> {
    let r = repo::reading(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("meterReading"))?;
    if !actor.reaches(&[Perm::MeterRead, Perm::MeterWrite], r.project_id) {
        return Err(AppError::not_found("meterReading"));
    }
    Ok(r)
}

/// A project's readings of a month, optionally of one status, in id order.
pub async fn readings(
    state: &AppState,
    actor: &Actor,
    project: Uuid,
    period: NaiveDate,
    status: Option<ReadingStatus>,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Reading>> {
    crate::org::company::service::project_of_company(state, actor.company_id, project).await?;
    if !actor.reaches(&[Perm::MeterRead, Perm::MeterWrite], project) {
        return Err(AppError::forbidden());
    }
    Ok(repo::readings(&state.db, actor.company_id, project, period, status, after, limit as i64).await?)
}

/// Per house and meter category, a period's usage for billing (no caller check: the bill
/// run checked the project).
pub async fn house_usage(
    state: &AppState,
    project: Uuid,
    period: NaiveDate,
) -> AppResult<HashMap<(Uuid, DeviceCategory), model::HouseUsage>> {
    let rows = repo::house_usage(&state.db, project, period).await?;
    Ok(rows.into_iter().map(|r| ((r.house_id, r.category), r)).collect())
}

/// 导入读数 (`meter:write` on the project): a month's registers from CSV (columns
/// 设备编号/deviceCode and 读数/reading, a header line first), checked line by line
/// exactly as entries are — a meter of the project, a sane register, never below the
/// previous one without a replacement; abnormal usage is held for review. Any bad line:
/// nothing is written, and every bad line is named. Returns the registers written.
pub async fn import(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    project: Uuid,
    period: NaiveDate,
    csv_text: &str,
) -> AppResult<usize> {
    use crate::org::estate::import::{bad_csv, err_of, line_err};
    crate::org::company::service::project(state, actor, Perm::MeterWrite, project).await?;
    let period = check_period(state, period)?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(csv_text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|_| AppError::validation("csv", Msg::new("无法读取表头", "Cannot read the header line")))?
        .clone();
    let col = |names: &[&str]| {
        headers.iter().position(|h| names.contains(&h.trim().trim_start_matches('\u{feff}').to_lowercase().as_str()))
    };
    let (Some(code_col), Some(reading_col)) =
        (col(&["设备编号", "devicecode", "device_code", "code"]), col(&["读数", "reading"]))
    else {
        return Err(bad_csv(vec![line_err(
            1,
            "header",
            "缺少列：设备编号、读数",
            "Missing columns: deviceCode, reading",
        )]));
    };
    let max = state.config.limits.max_import_lines;
    let mut errors = Vec::new();
    let mut lines: Vec<(u64, String, Decimal)> = Vec::new();
    for rec in reader.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                errors.push(line_err(
                    e.position().map(|p| p.line()).unwrap_or(0),
                    "csv",
                    "CSV格式错误",
                    "Malformed CSV line",
                ));
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if lines.len() + errors.len() >= max {
            return Err(AppError::validation(
                "csv",
                Msg::owned(format!("一次最多导入{max}行"), format!("At most {max} lines per import")),
            ));
        }
        let code = rec.get(code_col).unwrap_or("").to_owned();
        let value = rec
            .get(reading_col)
            .unwrap_or("")
            .parse::<Decimal>()
            .map_err(|_| invalid("reading", "读数应为数字", "A reading is a number"));
        match value.and_then(|v| register("reading", v)) {
            Ok(v) if !code.is_empty() => lines.push((line, code, v)),
            Ok(_) => errors.push(line_err(line, "deviceCode", "缺少设备编号", "The device code is missing")),
            Err(e) => errors.push(err_of(line, e)),
        }
    }
    let codes: Vec<String> = lines.iter().map(|l| l.1.clone()).collect();
    let meters: HashMap<String, Meter> = repo::meters_by_codes(&state.db, actor.company_id, project, &codes)
        .await?
        .into_iter()
        .map(|m| (m.code.clone(), m))
        .collect();
    let now = state.clock.now();
    let read_at = read_time(period, now);
    let ids: Vec<Uuid> = meters.values().map(|m| m.id).collect();
    // the history is read in the transaction that writes, as an entry's is
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let swaps = repo::replacements(&mut *tx, &ids, now).await?;
    let mut seen = std::collections::HashSet::new();
    let mut rows = Vec::with_capacity(lines.len());
    for (line, code, value) in &lines {
        let Some(m) = meters.get(code) else {
            errors.push(line_err(
                *line,
                "deviceCode",
                format!("本项目没有表计 {code}"),
                format!("No meter {code} in the project"),
            ));
            continue;
        };
        if !seen.insert(m.id) {
            errors.push(line_err(
                *line,
                "deviceCode",
                format!("表计 {code} 重复"),
                format!("Meter {code} appears twice"),
            ));
            continue;
        }
        let earlier = repo::earlier(&mut *tx, m.id, period, model::TRAILING_MONTHS as i64 + 1).await?;
        match compute(m, *value, read_at, &earlier, &swaps) {
            Ok(c) => rows.push((m.clone(), c, *value)),
            Err(b) => errors.push(err_of(*line, refused(b, "如已换表，请先登记换表"))),
        }
    }
    if !errors.is_empty() {
        return Err(bad_csv(errors));
    }
    if rows.is_empty() {
        return Err(AppError::validation("csv", Msg::new("文件没有数据行", "The file has no lines")));
    }
    let mut written = Vec::with_capacity(rows.len());
    for (m, c, value) in &rows {
        let old = repo::reading_of_period(&mut tx, m.id, period).await?;
        written.push((
            m,
            Reading {
                id: old.as_ref().map_or_else(Uuid::now_v7, |o| o.id),
                company_id: m.company_id,
                project_id: m.project_id,
                device_id: m.id,
                house_id: m.house_id,
                period,
                reading: *value,
                previous: c.previous,
                usage: c.usage,
                read_at,
                source: ReadingSource::Import,
                status: c.status,
                flag_reason: c.reason.clone(),
                recorded_by: Some(actor.user_id),
                reviewed_by: None,
                created_at: now,
                updated_at: now,
            },
        ));
    }
    let all: Vec<Reading> = written.iter().map(|(_, r)| r.clone()).collect();
    repo::upsert(&mut tx, &all).await?;
    for (m, r) in &written {
        follow_next(&mut tx, m, r, &swaps, now).await?;
    }
    let flagged = all.iter().filter(|r| r.status == ReadingStatus::Flagged).count();
    audit::record(
        &mut tx,
        now,
        actor,
        "meter_reading.import",
        "project",
        Some(project),
        serde_json::json!({ "period": period, "readings": all.len(), "flagged": flagged }),
    )
    .await?;
    tx.commit(&all.len()).await?;
    Ok(all.len())
}

/// 设置公摊表 (`meter:write` on the project): a meter of common parts (one not on a house)
/// and the houses of the project that share its usage, by building area, equally, or by
/// their own usage. A fee item of kind SHARED on its category bills each house its share.
pub async fn set_shared(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    device: Uuid,
    method: model::ShareMethod,
    houses: &[Uuid],
) -> AppResult<Uuid> {
    let m = meter(state, actor, device, true).await?;
    let mut ids = houses.to_vec();
    ids.sort();
    ids.dedup();
    if ids.is_empty() || ids.len() > 5000 {
        return Err(invalid("houseIds", "公摊户数应为1到5000", "1 to 5000 houses share a meter"));
    }
    for h in &ids {
        let house = crate::org::estate::service::house(state, actor, *h).await?;
        if house.project_id != m.project_id {
            return Err(invalid("houseIds", "房屋不在该表计的项目", "A house of another project"));
        }
    }
    if m.house_id.is_some() {
        return Err(invalid("deviceId", "该表计属于某户，不能设为公摊表", "That meter is a house's own"));
    }
    let now = state.clock.now();
    let s = model::SharedMeter { device_id: m.id, project_id: m.project_id, method, house_ids: ids, updated_at: now };
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::set_shared(&mut tx, m.company_id, &s, actor.user_id).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "shared_meter.set",
        "device",
        Some(m.id),
        serde_json::json!({ "method": method, "houses": s.house_ids.len() }),
    )
    .await?;
    tx.commit(&m.id).await?;
    Ok(m.id)
}

/// A project's shared meters (`meter:read`).
pub async fn shared_meters(state: &AppState, actor: &Actor, project: Uuid) -> AppResult<Vec<model::SharedMeter>> {
    crate::org::company::service::project_of_company(state, actor.company_id, project).await?;
    if !actor.reaches(&[Perm::MeterRead, Perm::MeterWrite], project) {
        return Err(AppError::forbidden());
    }
    Ok(repo::shared_meters(&state.db, project).await?)
}

/// Each house's share of the project's shared meters for a month, by meter category (as
/// the usage a SHARED fee item bills): exact to 4 decimals, the shares of a meter adding
/// up to its usage. A meter without a usable reading (or, shared by usage, a house of it
/// without one) leaves its houses missing or held, so the run skips them with the reason.
pub async fn shared_usage(
    state: &AppState,
    project: Uuid,
    period: NaiveDate,
    own: &HashMap<(Uuid, DeviceCategory), model::HouseUsage>,
) -> AppResult<HashMap<(Uuid, DeviceCategory), model::HouseUsage>> {
    let mut out: HashMap<(Uuid, DeviceCategory), model::HouseUsage> = HashMap::new();
    let meters = repo::shared_readings(&state.db, project, period).await?;
    if meters.is_empty() {
        return Ok(out);
    }
    let all: Vec<Uuid> = meters.iter().flat_map(|m| m.0.house_ids.iter().copied()).collect();
    let areas: HashMap<Uuid, Decimal> = repo::house_areas(&state.db, &all).await?.into_iter().collect();
    for (m, category, usage, flagged) in meters {
        let mut add = |house: Uuid, share: Decimal, missing: i64, held: i64| {
            let u = out.entry((house, category)).or_insert(model::HouseUsage {
                house_id: house,
                category,
                meters: 0,
                missing: 0,
                flagged: 0,
                usage: Decimal::ZERO,
                previous: None,
                current: None,
            });
            u.meters += 1;
            u.missing += missing;
            u.flagged += held;
            u.usage += share;
        };
        let weights: Option<Vec<(Uuid, Decimal)>> = match m.method {
            model::ShareMethod::Area => m.house_ids.iter().map(|h| areas.get(h).map(|a| (*h, *a))).collect(),
            model::ShareMethod::Equal => Some(m.house_ids.iter().map(|h| (*h, Decimal::ONE)).collect()),
            model::ShareMethod::Usage => m
                .house_ids
                .iter()
                .map(|h| own.get(&(*h, category)).filter(|u| u.missing == 0 && u.flagged == 0).map(|u| (*h, u.usage)))
                .collect(),
        };
        let shares = match (usage, flagged) {
            (_, true) => None,
            (Some(total), false) => weights.and_then(|w| split(total, &w)),
            (None, false) => None,
        };
        match shares {
            Some(s) => s.into_iter().for_each(|(h, q)| add(h, q, 0, 0)),
            None if flagged => m.house_ids.iter().for_each(|h| add(*h, Decimal::ZERO, 0, 1)),
            None => m.house_ids.iter().for_each(|h| add(*h, Decimal::ZERO, 1, 0)),
        }
    }
    Ok(out)
}
