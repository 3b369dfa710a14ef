//! 批量导入: houses and their owners from CSV. Every line is checked first; one bad line
//! means nothing is written, and each bad line is reported with its number and reason.
//! People are registered through `owners` (one account per person), SQL stays in repos.

use std::collections::{HashMap, HashSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::{Building, HouseStatus, HouseUsage, Unit};
use super::repo::{self, NewHouse};
use crate::kit::audit;
use crate::kit::error::{AppError, AppResult, Locale, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::kit::types;
use crate::org::company::service as projects;
use crate::org::owners::model::{CheckedOwner, Relation};
use crate::org::owners::service as owners;
use crate::rbac::model::{Actor, Perm};

#[derive(Debug, Clone, Serialize)]
pub struct LineError {
    pub line: u64,
    pub field: String,
    pub message: String,
    #[serde(rename = "messageEn")]
    pub message_en: String,
}

/// What an import wrote (the outcome a retry gets back).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportSummary {
    pub buildings_created: usize,
    pub units_created: usize,
    pub houses_created: usize,
    pub owners_created: usize,
    pub owners_linked: usize,
}

const COLUMNS: &[(&str, &[&str])] = &[
    ("building", &["building", "楼栋"]),
    ("unit", &["unit", "单元"]),
    ("roomNo", &["room_no", "roomno", "房号"]),
    ("floor", &["floor", "楼层"]),
    ("buildingArea", &["building_area", "buildingarea", "建筑面积"]),
    ("indoorArea", &["indoor_area", "indoorarea", "套内面积"]),
    ("usage", &["usage", "用途"]),
    ("status", &["status", "状态"]),
    ("ownerName", &["owner_name", "ownername", "业主姓名"]),
    ("ownerPhone", &["owner_phone", "ownerphone", "业主手机", "手机号"]),
    ("ownerIdCardNumber", &["owner_id_card", "owneridcardnumber", "身份证号"]),
    ("relation", &["relation", "关系"]),
];
const REQUIRED: &[&str] = &["building", "unit", "roomNo", "floor", "buildingArea"];

struct Line {
    line: u64,
    building: String,
    unit: String,
    room_no: String,
    floor: i32,
    building_area: Decimal,
    indoor_area: Option<Decimal>,
    usage: HouseUsage,
    status: Option<HouseStatus>,
    owner: Option<(CheckedOwner, Relation)>,
}

pub fn err_of(line: u64, e: AppError) -> LineError {
    let field = match &e {
        AppError::Validation { field, .. } | AppError::Conflict { field, .. } => field.to_string(),
        _ => String::new(),
    };
    LineError {
        line,
        field,
        message: e.message(Locale::Zh).into_owned(),
        message_en: e.message(Locale::En).into_owned(),
    }
}

pub fn line_err(line: u64, field: &str, zh: impl Into<String>, en: impl Into<String>) -> LineError {
    LineError { line, field: field.into(), message: zh.into(), message_en: en.into() }
}

/// A cell naming one of an enum's values, in English (its code, any case) or Chinese.
fn choice<T>(field: &'static str, cell: &str, codes: &[&str], of: impl Fn(&str) -> Option<T>) -> AppResult<T> {
    of(cell.trim().to_lowercase().as_str()).ok_or_else(|| {
        AppError::validation(
            field,
            Msg::owned(format!("取值应为：{}", codes.join("、")), format!("Must be one of: {}", codes.join(", "))),
        )
    })
}

fn usage_of(cell: &str) -> AppResult<HouseUsage> {
    let codes: Vec<&str> = HouseUsage::ALL.iter().map(|u| u.as_str()).collect();
    choice("usage", cell, &codes, |t| match t {
        "住宅" => Some(HouseUsage::Residence),
        "商铺" => Some(HouseUsage::Shop),
        "办公" => Some(HouseUsage::Office),
        "车库" => Some(HouseUsage::Garage),
        "其他" => Some(HouseUsage::Other),
        other => HouseUsage::parse(other),
    })
}

fn status_of(cell: &str) -> AppResult<HouseStatus> {
    let codes: Vec<&str> = HouseStatus::ALL.iter().map(|s| s.as_str()).collect();
    choice("status", cell, &codes, |t| match t {
        "已入住" => Some(HouseStatus::Occupied),
        "空置" => Some(HouseStatus::Vacant),
        other => HouseStatus::parse(other),
    })
}

fn relation_of(cell: &str) -> AppResult<Relation> {
    let codes: Vec<&str> = Relation::ALL.iter().map(|r| r.as_str()).collect();
    choice("relation", cell, &codes, |t| match t {
        "业主" => Some(Relation::Owner),
        "家庭成员" => Some(Relation::Member),
        "租户" => Some(Relation::Tenant),
        other => Relation::parse(other),
    })
}

fn decimal(field: &'static str, v: &str) -> AppResult<Decimal> {
    let d: Decimal =
        v.trim().parse().map_err(|_| AppError::validation(field, Msg::new("应为数字", "Must be a number")))?;
    types::area(field, d)
}

fn parse_line(line: u64, get: &dyn Fn(&str) -> String) -> AppResult<Line> {
    let floor: i32 = get("floor")
        .trim()
        .parse()
        .map_err(|_| AppError::validation("floor", Msg::new("楼层应为整数", "Floor must be a whole number")))?;
    if !(-10..=200).contains(&floor) || floor == 0 {
        return Err(AppError::validation(
            "floor",
            Msg::new("楼层应在-10到200之间且不为0", "Floor must be -10..200 and not 0"),
        ));
    }
    let building_area = decimal("buildingArea", &get("buildingArea"))?;
    let indoor = get("indoorArea");
    let indoor_area = if indoor.trim().is_empty() { None } else { Some(decimal("indoorArea", &indoor)?) };
    if indoor_area.is_some_and(|i| i > building_area) {
        return Err(AppError::validation(
            "indoorArea",
            Msg::new("套内面积不能大于建筑面积", "Indoor area cannot exceed the building area"),
        ));
    }
    let usage = match get("usage").trim() {
        "" => HouseUsage::Residence,
        u => usage_of(u)?,
    };
    let status = match get("status").trim() {
        "" => None,
        s => Some(status_of(s)?),
    };
    let (name, phone, id_card) = (get("ownerName"), get("ownerPhone"), get("ownerIdCardNumber"));
    let owner = if name.trim().is_empty() && phone.trim().is_empty() && id_card.trim().is_empty() {
        None
    } else {
        let o = owners::check_owner(&name, &phone, Some(&id_card), "owner").map_err(|e| match e {
            AppError::Validation { field, msg, details } => {
                // "ownername" → "ownerName": keep the column names readable
                let f = field.replacen("ownername", "ownerName", 1).replacen("ownerphone", "ownerPhone", 1).replacen(
                    "owneridCardNumber",
                    "ownerIdCardNumber",
                    1,
                );
                AppError::Validation { field: f.into(), msg, details }
            }
            other => other,
        })?;
        let relation = match get("relation").trim() {
            "" => Relation::Owner,
            r => relation_of(r)?,
        };
        Some((o, relation))
    };
    Ok(Line {
        line,
        building: types::text("building", &get("building"), 50)?,
        unit: types::text("unit", &get("unit"), 50)?,
        room_no: types::text("roomNo", &get("roomNo"), 20)?,
        floor,
        building_area,
        indoor_area,
        usage,
        status,
        owner,
    })
}

pub fn bad_csv(mut errors: Vec<LineError>) -> AppError {
    errors.sort_by_key(|e| e.line);
    let n = errors.len();
    AppError::Validation {
        field: "csv".into(),
        msg: Msg::owned(
            format!("导入文件有{n}行错误，未导入任何数据"),
            format!("{n} line(s) have errors; nothing was imported"),
        ),
        details: Some(serde_json::json!({ "errors": errors })),
    }
}

/// The lines of a file, and the errors of those that do not parse.
fn read_csv(state: &AppState, csv_text: &str) -> AppResult<(Vec<Line>, Vec<LineError>)> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(csv_text.trim_start_matches('\u{feff}').as_bytes());
    let headers = reader
        .headers()
        .map_err(|_| AppError::validation("csv", Msg::new("无法读取表头", "Cannot read the header line")))?
        .clone();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        let h = h.trim().to_lowercase();
        if let Some((name, _)) = COLUMNS.iter().find(|(_, aliases)| aliases.contains(&h.as_str())) {
            index.insert(name, i);
        }
    }
    let missing: Vec<&str> = REQUIRED.iter().copied().filter(|c| !index.contains_key(c)).collect();
    if !missing.is_empty() {
        return Err(bad_csv(vec![line_err(
            1,
            "header",
            format!("缺少列：{}", missing.join("、")),
            format!("Missing columns: {}", missing.join(", ")),
        )]));
    }
    let max = state.config.limits.max_import_lines;
    let mut errors = Vec::new();
    let mut lines = Vec::new();
    for rec in reader.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(line_err(line, "csv", "CSV格式错误", "Malformed CSV line"));
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
        let get = |c: &str| index.get(c).and_then(|i| rec.get(*i)).unwrap_or("").to_owned();
        match parse_line(line, &get) {
            Ok(l) => lines.push(l),
            Err(e) => errors.push(err_of(line, e)),
        }
    }
    if lines.is_empty() && errors.is_empty() {
        return Err(AppError::validation("csv", Msg::new("文件没有数据行", "The file has no data lines")));
    }
    Ok((lines, errors))
}

/// Imports a file into a project (`estate:import` over it): all lines or none. A person
/// already registered with the phone is linked, not registered again.
pub async fn import_houses(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    project_id: Uuid,
    csv_text: &str,
) -> AppResult<ImportSummary> {
    let project = projects::project(state, actor, Perm::EstateImport, project_id).await?;
    let (lines, mut errors) = read_csv(state, csv_text)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };

    // whole-file checks: duplicate houses, existing houses, one person per phone
    let existing: HashSet<(String, String, String)> =
        repo::house_keys(&mut *tx, project_id).await?.into_iter().collect();
    let mut seen = HashMap::new();
    let mut people: HashMap<String, (u64, String, Option<String>)> = HashMap::new();
    for l in &lines {
        let key = (l.building.clone(), l.unit.clone(), l.room_no.clone());
        if existing.contains(&key) {
            errors.push(line_err(l.line, "roomNo", "该房屋已存在", "This house already exists"));
        }
        if let Some(first) = seen.insert(key, l.line) {
            errors.push(line_err(
                l.line,
                "roomNo",
                format!("与第{first}行房屋重复"),
                format!("Duplicates the house on line {first}"),
            ));
        }
        if let Some((o, _)) = &l.owner {
            let idc = o.id_card.as_ref().map(|i| i.as_str().to_owned());
            match people.get(o.phone.as_str()) {
                Some((first, name, card)) if name != &o.name || (idc.is_some() && card.is_some() && card != &idc) => {
                    errors.push(line_err(
                        l.line,
                        "ownerPhone",
                        format!("同一手机号在第{first}行登记的是另一个人"),
                        format!("The same phone is registered to another person on line {first}"),
                    ));
                }
                Some(_) => {}
                None => {
                    people.insert(o.phone.as_str().to_owned(), (l.line, o.name.clone(), idc));
                }
            }
        }
    }
    // people already registered with the phone are linked; a new person's ID-card number
    // must not belong to someone else (an account of the phone, staff say, is fine: the
    // owner record is linked to it)
    let mut known: HashMap<String, Uuid> = HashMap::new();
    let mut existing_accounts: Vec<Uuid> = Vec::new();
    for l in &lines {
        let Some((o, _)) = &l.owner else { continue };
        if known.contains_key(o.phone.as_str()) {
            continue;
        }
        match owners::owner_id_by_phone(&mut tx, actor.company_id, &o.phone).await? {
            Some(id) => {
                known.insert(o.phone.as_str().to_owned(), id);
            }
            None => {
                if let Some(card) = &o.id_card
                    && owners::id_card_registered(state, &mut tx, actor.company_id, card).await?
                {
                    errors.push(line_err(
                        l.line,
                        "ownerIdCardNumber",
                        "该身份证号已登记为其他业主",
                        "The ID-card number belongs to another registered owner",
                    ));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(bad_csv(errors));
    }

    let mut summary = ImportSummary::default();
    let mut buildings: HashMap<String, Uuid> =
        repo::all_buildings(&mut *tx, project_id).await?.into_iter().map(|b| (b.name, b.id)).collect();
    let building_ids: Vec<Uuid> = buildings.values().copied().collect();
    let mut units: HashMap<(Uuid, String), Uuid> =
        repo::list_units(&mut *tx, &building_ids).await?.into_iter().map(|u| ((u.building_id, u.name), u.id)).collect();
    for l in &lines {
        let building_id = match buildings.get(&l.building) {
            Some(id) => *id,
            None => {
                let b = Building { id: Uuid::now_v7(), project_id, name: l.building.clone(), floors: None };
                repo::insert_building(&mut tx, actor.company_id, &b).await?;
                buildings.insert(b.name, b.id);
                summary.buildings_created += 1;
                b.id
            }
        };
        let unit_id = match units.get(&(building_id, l.unit.clone())) {
            Some(id) => *id,
            None => {
                let u = Unit { id: Uuid::now_v7(), project_id, building_id, name: l.unit.clone() };
                repo::insert_unit(&mut tx, actor.company_id, &u).await?;
                units.insert((building_id, u.name), u.id);
                summary.units_created += 1;
                u.id
            }
        };
        let house_id = Uuid::now_v7();
        let occupancy = if l.owner.is_some() { HouseStatus::Occupied } else { HouseStatus::Vacant };
        repo::insert_house(
            &mut tx,
            &NewHouse {
                id: house_id,
                company_id: actor.company_id,
                project_id,
                building_id,
                unit_id,
                room_no: &l.room_no,
                floor: l.floor,
                building_area: l.building_area,
                indoor_area: l.indoor_area,
                usage: l.usage,
                status: l.status.unwrap_or(occupancy),
            },
        )
        .await?;
        summary.houses_created += 1;
        if let Some((o, relation)) = &l.owner {
            let owner_id = match known.get(o.phone.as_str()) {
                Some(id) => *id,
                None => {
                    let (id, existing_account) = owners::insert_owner(state, &mut tx, actor.company_id, o).await?;
                    existing_accounts.extend(existing_account);
                    known.insert(o.phone.as_str().to_owned(), id);
                    summary.owners_created += 1;
                    id
                }
            };
            owners::add_resident(&mut tx, actor.company_id, project_id, house_id, owner_id, *relation).await?;
            summary.owners_linked += 1;
        }
    }
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "estate.import",
        "project",
        Some(project.id),
        serde_json::json!({ "houses": summary.houses_created, "owners": summary.owners_created }),
    )
    .await?;
    tx.commit(&summary).await?;
    super::service::houses_changed(state, actor.company_id).await;
    for user in existing_accounts {
        crate::rbac::service::account_changed(state, user, crate::rbac::service::EVENT_PERMISSIONS_CHANGED).await;
    }
    if summary.houses_created >= 1000 {
        super::service::analyze(state).await?;
    }
    Ok(summary)
}
