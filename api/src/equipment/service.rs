//! Ledger rules: what each category must record, where a device may be, who may see and
//! change it (project scope). The CSV import is in `import.rs`.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::model::{
    ControlMode, Device, DeviceCategory, DeviceStatus, EVENT_LEDGER_CHANGED, Importance, QR_PREFIX, TopicPath,
};
use super::repo::{self, DeviceFilter};
use crate::kit::audit;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::events::Event;
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::kit::types;
use crate::rbac::model::{Actor, Perm};

pub use super::import::import;

pub(super) fn bad(field: String, zh: &str, en: &str) -> AppError {
    AppError::validation(field, Msg::owned(zh, en))
}

/// Reads category attributes; only known keys, each checked. Field names in errors are
/// `attributes.<key>`.
struct Attrs<'a> {
    raw: &'a Map<String, Value>,
    out: Map<String, Value>,
}

impl<'a> Attrs<'a> {
    fn f(key: &str) -> String {
        format!("attributes.{key}")
    }

    fn text(&mut self, key: &str, required: bool) -> AppResult<()> {
        match self.raw.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => {
                self.out.insert(key.into(), Value::String(types::text(Self::f(key), s, 50)?));
            }
            None | Some(Value::Null) if !required => {}
            _ => return Err(bad(Self::f(key), "必填，应为文本", "Required text")),
        }
        Ok(())
    }

    fn int(&mut self, key: &str, min: i64, max: i64, required: bool) -> AppResult<()> {
        match self.raw.get(key) {
            Some(v) if v.as_i64().is_some_and(|n| (min..=max).contains(&n)) => {
                self.out.insert(key.into(), v.clone());
            }
            None | Some(Value::Null) if !required => {}
            _ => {
                return Err(bad(
                    Self::f(key),
                    &format!("应为{min}到{max}之间的整数"),
                    &format!("A whole number from {min} to {max}"),
                ));
            }
        }
        Ok(())
    }

    fn decimal(&mut self, key: &str, min: Decimal, max: Decimal, required: bool) -> AppResult<Option<Decimal>> {
        let v = self.raw.get(key);
        let parsed = match v {
            Some(Value::String(s)) => s.trim().parse::<Decimal>().ok(),
            Some(Value::Number(n)) => n.to_string().parse::<Decimal>().ok(),
            None | Some(Value::Null) if !required => return Ok(None),
            _ => None,
        };
        match parsed {
            Some(d) if d >= min && d <= max && d.scale() <= 4 => {
                self.out.insert(key.into(), Value::String(d.normalize().to_string()));
                Ok(Some(d))
            }
            _ => {
                Err(bad(Self::f(key), &format!("应为{min}到{max}之间的数字"), &format!("A number from {min} to {max}")))
            }
        }
    }

    fn date(&mut self, key: &str, required: bool) -> AppResult<()> {
        match self.raw.get(key) {
            Some(Value::String(s)) if NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").is_ok() => {
                self.out.insert(key.into(), Value::String(s.trim().to_owned()));
            }
            None | Some(Value::Null) if !required => {}
            _ => return Err(bad(Self::f(key), "日期格式应为YYYY-MM-DD", "A date as YYYY-MM-DD")),
        }
        Ok(())
    }

    fn control_mode(&mut self, key: &str) -> AppResult<()> {
        let v = self.raw.get(key).and_then(Value::as_str).map(|s| s.trim().to_ascii_lowercase());
        match v.as_deref().and_then(ControlMode::parse) {
            Some(m) => {
                self.out.insert(key.into(), Value::String(m.as_str().to_owned()));
                Ok(())
            }
            None => {
                let codes: Vec<&str> = ControlMode::ALL.iter().map(|m| m.as_str()).collect();
                Err(bad(
                    Self::f(key),
                    &format!("取值应为：{}", codes.join("、")),
                    &format!("Must be one of: {}", codes.join(", ")),
                ))
            }
        }
    }
}

/// Checks the attributes a category records; returns them normalised.
async fn check_attributes(
    state: &AppState,
    actor: &Actor,
    project_id: Uuid,
    category: DeviceCategory,
    raw: &Value,
) -> AppResult<Value> {
    let empty = Map::new();
    let map = match raw {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => return Err(AppError::validation("attributes", Msg::new("应为JSON对象", "Must be a JSON object"))),
    };
    let mut a = Attrs { raw: map, out: Map::new() };
    let known: &[&str] = match category {
        DeviceCategory::Elevator => {
            a.text("elevatorNo", true)?;
            a.int("floorsServed", 2, 200, true)?;
            a.decimal("ratedSpeed", Decimal::new(1, 1), Decimal::from(20), true)?;
            a.int("ratedLoadKg", 100, 10_000, true)?;
            a.text("registrationCode", true)?;
            a.date("nextInspection", true)?;
            &["elevatorNo", "floorsServed", "ratedSpeed", "ratedLoadKg", "registrationCode", "nextInspection"]
        }
        DeviceCategory::AccessDoor => {
            a.text("doorLocation", true)?;
            a.control_mode("controlMode")?;
            &["doorLocation", "controlMode"]
        }
        c if c.is_meter() => {
            a.text("meterNo", true)?;
            if a.decimal("multiplier", Decimal::new(1, 4), Decimal::from(100_000), false)?.is_none() {
                a.out.insert("multiplier".into(), Value::String("1".into()));
            }
            // no default: a meter without its initial register gets a baseline first reading
            // (never billed from an assumed 0)
            a.decimal("initialReading", Decimal::ZERO, Decimal::from(1_000_000_000), false)?;
            if let Some(h) = map.get("houseId").filter(|v| !v.is_null()) {
                let id = h
                    .as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .ok_or_else(|| bad(Attrs::f("houseId"), "房屋ID无效", "Invalid house id"))?;
                if crate::org::estate::service::house_project(state, actor, id).await? != project_id {
                    return Err(bad(Attrs::f("houseId"), "房屋不在该项目", "The house is not in this project"));
                }
                a.out.insert("houseId".into(), Value::String(id.to_string()));
            }
            &["meterNo", "multiplier", "initialReading", "houseId"]
        }
        DeviceCategory::FireEquipment => {
            a.text("fireType", true)?;
            let lo = a.decimal("pressureMinMpa", Decimal::ZERO, Decimal::from(100), false)?;
            let hi = a.decimal("pressureMaxMpa", Decimal::ZERO, Decimal::from(100), false)?;
            if let (Some(lo), Some(hi)) = (lo, hi)
                && lo >= hi
            {
                return Err(bad(
                    Attrs::f("pressureMaxMpa"),
                    "压力上限应大于下限",
                    "The maximum pressure must exceed the minimum",
                ));
            }
            a.date("nextCheck", false)?;
            &["fireType", "pressureMinMpa", "pressureMaxMpa", "nextCheck"]
        }
        _ => &[],
    };
    if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(bad(Attrs::f(k), "该类别没有此属性", "Not an attribute of this category"));
    }
    Ok(Value::Object(a.out))
}

/// A new device or a change to one; `None` leaves a field as it is.
#[derive(Default)]
pub struct DeviceInput {
    pub project_id: Option<Uuid>,
    pub code: Option<String>,
    pub name: Option<String>,
    pub category: Option<DeviceCategory>,
    pub model: Option<String>,
    pub specification: Option<String>,
    pub manufacturer: Option<String>,
    pub purchase_date: Option<NaiveDate>,
    pub install_date: Option<NaiveDate>,
    pub building_id: Option<Uuid>,
    pub unit_id: Option<Uuid>,
    pub location: Option<String>,
    pub warranty_expiry: Option<NaiveDate>,
    pub status: Option<DeviceStatus>,
    pub importance: Option<Importance>,
    pub responsible_user_id: Option<Uuid>,
    pub attributes: Option<Value>,
}

fn device_code(input: &str) -> AppResult<String> {
    let c = input.trim().to_ascii_uppercase();
    let ok = (2..=40).contains(&c.len()) && c.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_'));
    if ok {
        Ok(c)
    } else {
        Err(AppError::validation(
            "code",
            Msg::new("设备编码为2到40位字母、数字、横线或下划线", "A device code has 2-40 letters, digits, - or _"),
        ))
    }
}

/// Applies an input to a device (new or existing) and checks every rule.
async fn apply(state: &AppState, actor: &Actor, d: &mut Device, input: &DeviceInput) -> AppResult<()> {
    if let Some(n) = &input.name {
        d.name = types::text("name", n, 100)?;
    }
    for (field, value, target) in [
        ("model", &input.model, &mut d.model),
        ("specification", &input.specification, &mut d.specification),
        ("manufacturer", &input.manufacturer, &mut d.manufacturer),
        ("location", &input.location, &mut d.location),
    ] {
        if let Some(v) = value {
            *target = types::optional_text(field, Some(v), 200)?;
        }
    }
    if let Some(s) = input.status {
        d.status = s;
    }
    if let Some(i) = input.importance {
        d.importance = i;
    }
    (d.purchase_date, d.install_date, d.warranty_expiry) = (
        input.purchase_date.or(d.purchase_date),
        input.install_date.or(d.install_date),
        input.warranty_expiry.or(d.warranty_expiry),
    );
    if let (Some(p), Some(i)) = (d.purchase_date, d.install_date)
        && i < p
    {
        return Err(AppError::validation(
            "installDate",
            Msg::new("安装日期不能早于购买日期", "Installed before it was bought"),
        ));
    }
    if let Some(b) = input.building_id {
        if crate::org::estate::service::building(state, actor, b).await?.project_id != d.project_id {
            return Err(AppError::validation(
                "buildingId",
                Msg::new("楼栋不属于该项目", "The building is not in this project"),
            ));
        }
        d.building_id = Some(b);
    }
    if let Some(u) = input.unit_id {
        let unit = crate::org::estate::service::unit(state, actor, u).await?;
        if unit.project_id != d.project_id || d.building_id.is_some_and(|b| b != unit.building_id) {
            return Err(AppError::validation(
                "unitId",
                Msg::new("单元不属于该楼栋或项目", "The unit is not in this building or project"),
            ));
        }
        d.building_id = Some(unit.building_id);
        d.unit_id = Some(u);
    }
    if let Some(u) = input.responsible_user_id {
        let staff = crate::rbac::service::user(state, actor, u).await;
        if !staff.is_ok_and(|s| s.is_staff) {
            return Err(AppError::validation(
                "responsibleUserId",
                Msg::new("负责人必须是本企业员工", "The responsible person must be staff of the company"),
            ));
        }
        d.responsible_user_id = Some(u);
    }
    if let Some(raw) = &input.attributes {
        d.attributes = check_attributes(state, actor, d.project_id, d.category, raw).await?;
    }
    Ok(())
}

/// A new device of `project_id` from an input, with every rule checked (API and import).
pub(super) async fn checked_new_device(
    state: &AppState,
    actor: &Actor,
    project_id: Uuid,
    input: &DeviceInput,
) -> AppResult<Device> {
    types::required(&[
        ("code", input.code.is_some()),
        ("name", input.name.is_some()),
        ("category", input.category.is_some()),
    ])?;
    let mut d = Device {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        project_id,
        code: device_code(input.code.as_deref().unwrap_or_default())?,
        name: String::new(),
        category: input.category.unwrap_or(DeviceCategory::Other),
        model: String::new(),
        specification: String::new(),
        manufacturer: String::new(),
        purchase_date: None,
        install_date: None,
        building_id: None,
        unit_id: None,
        location: String::new(),
        warranty_expiry: None,
        status: DeviceStatus::InUse,
        importance: Importance::Normal,
        responsible_user_id: None,
        attributes: Value::Object(Map::new()),
        house_id: None,
        created_at: state.clock.now(),
        broker_username: None,
        broker_provisioned_at: None,
    };
    apply(state, actor, &mut d, input).await?;
    if input.attributes.is_none() {
        // a category with required attributes cannot be created without them
        d.attributes = check_attributes(state, actor, project_id, d.category, &Value::Null).await?;
    }
    Ok(d)
}

/// Tells every replica that devices were added (their topic lookups may be stale).
pub(super) async fn ledger_changed(state: &AppState) {
    let ev = Event { user_id: None, kind: EVENT_LEDGER_CHANGED.into(), payload: Value::Null };
    if let Err(e) = state.events.publish(&ev).await {
        tracing::warn!(error = %e, "ledger event not published");
    }
}

/// Project scope for a write: the project exists in the company and `equipment:write` reaches it.
pub(super) async fn writable_project(state: &AppState, actor: &Actor, project_id: Uuid) -> AppResult<()> {
    crate::org::company::service::project(state, actor, Perm::EquipmentWrite, project_id).await?;
    Ok(())
}

/// Registers a device; returns its id.
pub async fn create(state: &AppState, actor: &Actor, retry: &Retry, input: DeviceInput) -> AppResult<Uuid> {
    types::required(&[("projectId", input.project_id.is_some())])?;
    let project_id = input.project_id.unwrap_or_default();
    writable_project(state, actor, project_id).await?;
    let d = checked_new_device(state, actor, project_id, &input).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::insert(&mut tx, &d).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "device.create",
        "device",
        Some(d.id),
        serde_json::json!({ "code": d.code }),
    )
    .await?;
    tx.commit(&d.id).await?;
    ledger_changed(state).await;
    Ok(d.id)
}

/// Changes a device's details; code, category and project stay.
pub async fn update(state: &AppState, actor: &Actor, retry: &Retry, id: Uuid, input: DeviceInput) -> AppResult<Uuid> {
    actor.require(Perm::EquipmentWrite)?;
    if input.code.is_some() || input.category.is_some() || input.project_id.is_some() {
        return Err(AppError::validation(
            "code",
            Msg::new("设备编码、类别和项目创建后不能修改", "Code, category and project cannot change"),
        ));
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let mut d = repo::get(&mut *tx, actor.company_id, id).await?.ok_or(AppError::not_found("device"))?;
    actor.require_project(Perm::EquipmentWrite, d.project_id)?;
    apply(state, actor, &mut d, &input).await?;
    repo::update(&mut tx, &d).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "device.update",
        "device",
        Some(d.id),
        serde_json::json!({ "status": d.status }),
    )
    .await?;
    tx.commit(&d.id).await?;
    Ok(d.id)
}

/// A device within the caller's `equipment:read` projects.
pub async fn device(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Device> {
    let d = repo::get(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("device"))?;
    actor.require_project(Perm::EquipmentRead, d.project_id)?;
    Ok(d)
}

/// What the technician app opens after scanning a device's QR label.
pub async fn by_code(state: &AppState, actor: &Actor, code: &str) -> AppResult<Device> {
    let code = code.trim().strip_prefix(QR_PREFIX).unwrap_or(code.trim()).to_ascii_uppercase();
    let d = repo::by_code(&state.db, actor.company_id, &code).await?.ok_or(AppError::not_found("device"))?;
    actor.require_project(Perm::EquipmentRead, d.project_id)?;
    Ok(d)
}

/// Filters of the device list.
#[derive(Default)]
pub struct DeviceQuery {
    pub project_id: Option<Uuid>,
    pub category: Option<DeviceCategory>,
    pub status: Option<DeviceStatus>,
    /// part of the code, name or location
    pub search: Option<String>,
}

/// Devices of the caller's `equipment:read` projects, in id order.
pub async fn devices(
    state: &AppState,
    actor: &Actor,
    q: DeviceQuery,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Device>> {
    let filter = actor.projects(Perm::EquipmentRead)?;
    if let Some(p) = q.project_id {
        actor.require_project(Perm::EquipmentRead, p)?;
    }
    let f = DeviceFilter {
        projects: filter.as_sql(),
        project_id: q.project_id,
        category: q.category,
        status: q.status,
        search: types::like_term(q.search.as_deref()),
    };
    Ok(repo::list(&state.db, actor.company_id, &f, after, limit as i64).await?)
}

/// The device an MQTT topic names: (id, project, category). System use (device ingest).
pub async fn for_topic(state: &AppState, path: &TopicPath) -> AppResult<Option<(Uuid, Uuid, DeviceCategory)>> {
    Ok(repo::for_topic(&state.db, path).await?)
}

/// Where a device of the caller's company lives on the broker.
pub async fn topic_path(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<TopicPath> {
    repo::topic_path(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("device"))
}

/// Any device of the caller's company, whatever the project: the caller's own permission
/// (a command's, a rule's, a plan's) decides the project scope.
pub async fn device_for_command(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Device> {
    repo::get(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("device"))
}

/// A device whose broker account the caller may manage (`equipment:write` over its project).
pub async fn device_for_broker(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<(Device, TopicPath)> {
    let d = repo::get(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("device"))?;
    actor.require_project(Perm::EquipmentWrite, d.project_id)?;
    let path = repo::topic_path(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("device"))?;
    Ok((d, path))
}

/// Records a device's broker account (or its removal) in the caller's transaction.
pub async fn set_broker_account(
    tx: &mut sqlx::PgConnection,
    actor: &Actor,
    id: Uuid,
    username: Option<&str>,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> AppResult<()> {
    repo::set_broker_account(tx, actor.company_id, id, username, at).await?;
    Ok(())
}

/// A device of the company, for work the system does (no caller to check).
pub async fn device_of_company(state: &AppState, company_id: Uuid, id: Uuid) -> AppResult<Option<Device>> {
    Ok(repo::get(&state.db, company_id, id).await?)
}

/// `device_of_company` on the caller's connection.
pub async fn device_in(db: &mut sqlx::PgConnection, company_id: Uuid, id: Uuid) -> AppResult<Option<Device>> {
    Ok(repo::get(db, company_id, id).await?)
}

/// A device of the caller's company that `perm` reaches (a filter argument of another
/// domain's list: an id of another company is NOT_FOUND, one outside the scope FORBIDDEN).
pub async fn device_within(state: &AppState, actor: &Actor, perm: Perm, id: Uuid) -> AppResult<Device> {
    let d = repo::get(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("device"))?;
    actor.require_project(perm, d.project_id)?;
    Ok(d)
}

/// The importance of devices the caller was shown on other records (work orders), for a
/// DataLoader: one query per response.
pub async fn importance_of(state: &AppState, ids: &[Uuid]) -> AppResult<std::collections::HashMap<Uuid, Importance>> {
    Ok(repo::importance_of(&state.db, ids).await?.into_iter().collect())
}
