//! CSV import of devices: every line checked first; one bad line means nothing is written.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use serde_json::Value;
use uuid::Uuid;

use super::model::{DeviceCategory, DeviceStatus, ImportOutcome, Importance};
use super::repo;
use super::service::{DeviceInput, bad, checked_new_device, ledger_changed, writable_project};
use crate::kit::audit;
use crate::kit::error::{AppError, AppResult, Locale, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::rbac::model::Actor;

fn category(cell: &str) -> AppResult<DeviceCategory> {
    DeviceCategory::from_text(cell).ok_or_else(|| {
        let codes: Vec<&str> = DeviceCategory::ALL.iter().map(|c| c.as_str()).collect();
        bad(
            "category".into(),
            &format!("取值应为：{}", codes.join("、")),
            &format!("Must be one of: {}", codes.join(", ")),
        )
    })
}

fn status(cell: &str) -> AppResult<DeviceStatus> {
    DeviceStatus::from_text(cell).ok_or_else(|| {
        let codes: Vec<&str> = DeviceStatus::ALL.iter().map(|c| c.as_str()).collect();
        bad(
            "status".into(),
            &format!("取值应为：{}", codes.join("、")),
            &format!("Must be one of: {}", codes.join(", ")),
        )
    })
}

fn importance(cell: &str) -> AppResult<Importance> {
    Importance::from_text(cell).ok_or_else(|| {
        bad(
            "importance".into(),
            "取值应为：critical、normal、low（关键、一般、次要）",
            "Must be one of: critical, normal, low",
        )
    })
}

fn line_error(line: u64, field: &str, e: &AppError) -> Value {
    serde_json::json!({"line": line, "field": field,
        "message": e.message(Locale::Zh), "messageEn": e.message(Locale::En)})
}

/// CSV import. Columns: code,name,category,model,specification,manufacturer,purchase_date,
/// install_date,location,warranty_expiry,status,importance,attributes (a JSON object);
/// category, status and importance as codes or their Chinese names (水泵, 在用, 关键).
pub async fn import(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    project_id: Uuid,
    csv_text: &str,
) -> AppResult<ImportOutcome> {
    writable_project(state, actor, project_id).await?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(csv_text.trim_start_matches('\u{feff}').as_bytes());
    let headers: HashMap<String, usize> = reader
        .headers()
        .map_err(|_| AppError::validation("csv", Msg::new("无法读取表头", "Cannot read the header line")))?
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().to_lowercase(), i))
        .collect();
    for c in ["code", "name", "category"] {
        if !headers.contains_key(c) {
            return Err(AppError::validation(
                "csv",
                Msg::owned(format!("缺少列：{c}"), format!("Missing column: {c}")),
            ));
        }
    }
    let mut errors = Vec::new();
    let mut devices = Vec::new();
    let mut seen = HashSet::new();
    for rec in reader.records() {
        let Ok(rec) = rec else {
            errors.push(
                serde_json::json!({"line": 0, "field": "csv", "message": "CSV格式错误", "messageEn": "Malformed CSV"}),
            );
            continue;
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if devices.len() + errors.len() >= state.config.limits.max_import_lines {
            return Err(AppError::validation("csv", Msg::new("导入行数超过上限", "Too many lines")));
        }
        let get = |c: &str| headers.get(c).and_then(|i| rec.get(*i)).filter(|v| !v.is_empty()).map(str::to_owned);
        let date = |c: &str| -> AppResult<Option<NaiveDate>> {
            get(c)
                .map(|v| {
                    NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                        .map_err(|_| bad(c.to_owned(), "日期格式应为YYYY-MM-DD", "A date as YYYY-MM-DD"))
                })
                .transpose()
        };
        let parsed = async {
            let attributes = match get("attributes") {
                Some(a) => Some(serde_json::from_str::<Value>(&a).map_err(|_| {
                    AppError::validation("attributes", Msg::new("应为JSON对象", "Must be a JSON object"))
                })?),
                None => None,
            };
            let input = DeviceInput {
                project_id: Some(project_id),
                code: get("code"),
                name: get("name"),
                category: get("category").map(|c| category(&c)).transpose()?,
                model: get("model"),
                specification: get("specification"),
                manufacturer: get("manufacturer"),
                purchase_date: date("purchase_date")?,
                install_date: date("install_date")?,
                location: get("location"),
                warranty_expiry: date("warranty_expiry")?,
                status: get("status").map(|s| status(&s)).transpose()?,
                importance: get("importance").map(|s| importance(&s)).transpose()?,
                attributes,
                ..DeviceInput::default()
            };
            checked_new_device(state, actor, project_id, &input).await
        };
        match parsed.await {
            Ok(d) if !seen.insert(d.code.clone()) => {
                errors.push(serde_json::json!({"line": line, "field": "code", "message": "文件中设备编码重复", "messageEn": "Duplicate code in the file"}))
            }
            Ok(d) => devices.push((line, d)),
            Err(e) => {
                let field = match &e {
                    AppError::Validation { field, .. } | AppError::Conflict { field, .. } => field.to_string(),
                    _ => String::new(),
                };
                errors.push(line_error(line, &field, &e));
            }
        }
    }
    // from here on the answer depends on what is stored: a retry must see its own import
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let codes: Vec<String> = devices.iter().map(|(_, d)| d.code.clone()).collect();
    let taken: HashSet<String> = repo::existing_codes(&mut *tx, actor.company_id, &codes).await?.into_iter().collect();
    for (line, d) in &devices {
        if taken.contains(&d.code) {
            errors.push(serde_json::json!({"line": line, "field": "code", "message": "设备编码已存在", "messageEn": "Device code already exists"}));
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e["line"].as_u64());
        let n = errors.len();
        return Err(AppError::Validation {
            field: "csv".into(),
            msg: Msg::owned(
                format!("导入文件有{n}行错误，未导入任何数据"),
                format!("{n} line(s) have errors; nothing was imported"),
            ),
            details: Some(serde_json::json!({ "errors": errors })),
        });
    }
    for (_, d) in &devices {
        repo::insert(&mut tx, d).await?;
    }
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "device.import",
        "project",
        Some(project_id),
        serde_json::json!({ "devices": devices.len() }),
    )
    .await?;
    let outcome = ImportOutcome { devices_created: devices.len() as u32 };
    tx.commit(&outcome).await?;
    ledger_changed(state).await;
    Ok(outcome)
}
