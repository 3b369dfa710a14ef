//! Company, project and estate rules. Every read and write is limited to the caller's
//! company and to the projects their permission reaches.

use rust_decimal::Decimal;
use uuid::Uuid;

use super::model::*;
use super::repo::{self, HouseFilter, NewHouse, NewOwner};
use crate::app::AppState;
use crate::error::{AppError, AppResult, Msg};
use crate::rbac::model::{Actor, Perm, ProjectFilter, Scope};
use crate::rbac::service::audit;
use crate::storage::sniff_image;
use crate::types::{self, CreditCode, Geofence, IdCardNumber, Phone, one_of};

pub async fn count_projects(tx: &mut sqlx::PgConnection, company_id: Uuid, ids: &[Uuid]) -> AppResult<i64> {
    Ok(repo::count_projects(&mut *tx, company_id, ids).await?)
}

// ---- company -------------------------------------------------------------------------

/// A new company (CLI only: companies are created by the operator, not through the API).
pub async fn create_company(state: &AppState, name: &str, credit_code: Option<&str>) -> AppResult<Uuid> {
    let name = types::text("company", name, 100)?;
    let code = credit_code.map(|c| CreditCode::parse("creditCode", c)).transpose()?;
    let id = Uuid::now_v7();
    let mut tx = state.db.begin().await?;
    repo::insert_company(&mut tx, id, &name, code.map(CreditCode::into_inner).as_deref()).await?;
    tx.commit().await?;
    Ok(id)
}

/// Refreshes planner statistics after bulk loads.
pub async fn analyze(state: &AppState) -> AppResult<()> {
    Ok(repo::analyze(&state.db).await?)
}

pub async fn company_exists(state: &AppState, name: &str) -> AppResult<bool> {
    Ok(repo::company_by_name(&state.db, name).await?.is_some())
}

pub async fn company(state: &AppState, actor: &Actor) -> AppResult<Company> {
    actor.require(Perm::CompanyRead)?;
    repo::get_company(&state.db, actor.company_id).await?.ok_or(AppError::not_found("company"))
}

pub struct CompanyPatch<'a> {
    pub name: Option<&'a str>,
    pub address: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub credit_code: Option<&'a str>,
}

pub async fn update_company(state: &AppState, actor: &Actor, p: CompanyPatch<'_>) -> AppResult<Company> {
    if actor.require(Perm::CompanyWrite)? != &Scope::Company {
        return Err(AppError::forbidden());
    }
    let mut tx = state.db.begin().await?;
    let mut c = repo::get_company(&mut *tx, actor.company_id).await?.ok_or(AppError::not_found("company"))?;
    if let Some(n) = p.name {
        c.name = types::text("name", n, 100)?;
    }
    if let Some(a) = p.address {
        c.address = types::optional_text("address", Some(a), 200)?;
    }
    if let Some(ph) = p.phone {
        c.phone = company_phone(ph)?;
    }
    if let Some(code) = p.credit_code {
        c.credit_code = Some(CreditCode::parse("creditCode", code)?.into_inner());
    }
    repo::update_company(&mut tx, &c).await?;
    audit(&mut tx, actor, "company.update", "company", Some(c.id), serde_json::json!({})).await?;
    tx.commit().await?;
    Ok(c)
}

/// A company phone may be a landline (028-12345678) or a mobile number.
fn company_phone(input: &str) -> AppResult<String> {
    let t = input.trim();
    let ok = (7..=20).contains(&t.len()) && t.chars().all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | ' '));
    if t.is_empty() || ok {
        Ok(t.to_owned())
    } else {
        Err(AppError::validation("phone", Msg::new("请输入正确的联系电话", "Enter a valid phone number")))
    }
}

/// Stores a PNG or JPEG logo (checked by content, not by name).
pub async fn set_company_logo(state: &AppState, actor: &Actor, bytes: Vec<u8>) -> AppResult<Company> {
    if actor.require(Perm::CompanyWrite)? != &Scope::Company {
        return Err(AppError::forbidden());
    }
    if bytes.len() > state.config.limits.max_upload_bytes {
        return Err(AppError::validation("file", Msg::new("文件过大", "The file is too large")));
    }
    let Some((_, ext)) = sniff_image(&bytes).filter(|(mime, _)| *mime != "image/png" || png_ok(&bytes)) else {
        return Err(AppError::validation(
            "file",
            Msg::new("仅支持PNG或JPEG图片", "Only PNG or JPEG images are accepted"),
        ));
    };
    let key = format!("company-logos/{}/{}.{ext}", actor.company_id, Uuid::now_v7());
    state.storage.put(&key, &bytes).await.map_err(AppError::internal)?;
    let mut tx = state.db.begin().await?;
    let mut c = repo::get_company(&mut *tx, actor.company_id).await?.ok_or(AppError::not_found("company"))?;
    c.logo_key = Some(key);
    repo::update_company(&mut tx, &c).await?;
    audit(&mut tx, actor, "company.logo", "company", Some(c.id), serde_json::json!({})).await?;
    tx.commit().await?;
    Ok(c)
}

fn png_ok(bytes: &[u8]) -> bool {
    png::Decoder::new(std::io::Cursor::new(bytes)).read_info().is_ok()
}

// ---- projects ------------------------------------------------------------------------

pub async fn projects(
    state: &AppState,
    actor: &Actor,
    search: Option<&str>,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Project>> {
    let only = actor.projects(Perm::ProjectRead)?.as_sql();
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    Ok(repo::list_projects(&state.db, actor.company_id, only.as_deref(), search, after, limit as i64).await?)
}

/// A project the actor may read with `perm`; another company's is NOT_FOUND.
pub async fn project(state: &AppState, actor: &Actor, perm: Perm, id: Uuid) -> AppResult<Project> {
    let filter = actor.projects(perm)?;
    let p = repo::get_project(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("project"))?;
    if !filter.allows(p.id) {
        return Err(AppError::forbidden());
    }
    Ok(p)
}

pub async fn service_staff(state: &AppState, project_ids: &[Uuid]) -> AppResult<Vec<(Uuid, Uuid)>> {
    Ok(repo::service_staff(&state.db, project_ids).await?)
}

pub struct ProjectInput<'a> {
    pub name: Option<&'a str>,
    pub code: Option<&'a str>,
    pub address: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub building_area: Option<Decimal>,
    pub households: Option<i32>,
    pub manager_id: Option<Uuid>,
    pub service_staff_ids: Option<Vec<Uuid>>,
    /// (lat, lng, radius m)
    pub geofence: Option<(f64, f64, i32)>,
}

fn project_code(input: &str) -> AppResult<String> {
    let c = input.trim().to_ascii_uppercase();
    let ok = (2..=20).contains(&c.len()) && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-');
    if ok {
        Ok(c)
    } else {
        Err(AppError::validation(
            "code",
            Msg::new("项目编码为2到20位字母、数字或横线", "A project code has 2-20 letters, digits or dashes"),
        ))
    }
}

async fn apply_project_input(
    tx: &mut sqlx::PgConnection,
    actor: &Actor,
    p: &mut Project,
    input: &ProjectInput<'_>,
) -> AppResult<()> {
    if let Some(n) = input.name {
        p.name = types::text("name", n, 100)?;
    }
    if let Some(c) = input.code {
        p.code = project_code(c)?;
    }
    if let Some(a) = input.address {
        p.address = types::optional_text("address", Some(a), 200)?;
    }
    if let Some(k) = input.kind {
        p.kind = one_of("kind", k, PROJECT_KINDS)?;
    }
    if let Some(a) = input.building_area {
        p.building_area = Some(types::area("buildingArea", a)?);
    }
    if let Some(h) = input.households {
        if !(0..=1_000_000).contains(&h) {
            return Err(AppError::validation("households", Msg::new("户数无效", "Invalid number of households")));
        }
        p.households = Some(h);
    }
    if let Some((lat, lng, r)) = input.geofence {
        let g = Geofence::parse("geofence", lat, lng, r)?;
        (p.geofence_lat, p.geofence_lng, p.geofence_radius_m) = (Some(g.lat), Some(g.lng), Some(g.radius_m));
    }
    if let Some(m) = input.manager_id {
        if repo::count_staff(&mut *tx, actor.company_id, &[m]).await? != 1 {
            return Err(AppError::validation(
                "managerId",
                Msg::new("项目经理必须是本企业员工", "The manager must be a staff user of the company"),
            ));
        }
        p.manager_id = Some(m);
    }
    if let Some(ids) = &input.service_staff_ids
        && repo::count_staff(&mut *tx, actor.company_id, ids).await? != ids.len() as i64
    {
        return Err(AppError::validation(
            "serviceStaffIds",
            Msg::new("客服团队成员必须是本企业员工", "Team members must be staff users of the company"),
        ));
    }
    Ok(())
}

pub async fn create_project(state: &AppState, actor: &Actor, input: ProjectInput<'_>) -> AppResult<Project> {
    if actor.require(Perm::ProjectWrite)? != &Scope::Company {
        return Err(AppError::forbidden());
    }
    types::required(&[("name", input.name.is_some()), ("code", input.code.is_some()), ("kind", input.kind.is_some())])?;
    let mut p = Project {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        name: String::new(),
        code: String::new(),
        address: String::new(),
        kind: String::new(),
        building_area: None,
        households: None,
        manager_id: None,
        geofence_lat: None,
        geofence_lng: None,
        geofence_radius_m: None,
        created_at: state.clock.now(),
    };
    let mut tx = state.db.begin().await?;
    apply_project_input(&mut tx, actor, &mut p, &input).await?;
    repo::insert_project(&mut tx, &p).await?;
    if let Some(ids) = &input.service_staff_ids {
        repo::set_service_staff(&mut tx, p.id, ids).await?;
    }
    audit(&mut tx, actor, "project.create", "project", Some(p.id), serde_json::json!({ "code": p.code })).await?;
    tx.commit().await?;
    Ok(p)
}

pub async fn update_project(state: &AppState, actor: &Actor, id: Uuid, input: ProjectInput<'_>) -> AppResult<Project> {
    let mut p = project(state, actor, Perm::ProjectWrite, id).await?;
    let mut tx = state.db.begin().await?;
    apply_project_input(&mut tx, actor, &mut p, &input).await?;
    repo::update_project(&mut tx, &p).await?;
    if let Some(ids) = &input.service_staff_ids {
        repo::set_service_staff(&mut tx, p.id, ids).await?;
    }
    audit(&mut tx, actor, "project.update", "project", Some(p.id), serde_json::json!({})).await?;
    tx.commit().await?;
    if let Some(m) = p.manager_id {
        state.actors.invalidate(m);
    }
    Ok(p)
}

// ---- buildings, units, houses, parking ---------------------------------------------

pub async fn buildings(state: &AppState, actor: &Actor, project_id: Uuid) -> AppResult<Vec<Building>> {
    actor.require_project(Perm::EstateRead, project_id)?;
    Ok(repo::list_buildings(&state.db, project_id).await?)
}

pub async fn units(state: &AppState, building_ids: &[Uuid]) -> AppResult<Vec<Unit>> {
    Ok(repo::list_units(&state.db, building_ids).await?)
}

pub async fn create_building(
    state: &AppState,
    actor: &Actor,
    project_id: Uuid,
    name: &str,
    floors: Option<i32>,
) -> AppResult<Building> {
    project(state, actor, Perm::EstateWrite, project_id).await?;
    if floors.is_some_and(|f| !(1..=200).contains(&f)) {
        return Err(AppError::validation(
            "floors",
            Msg::new("楼层数应在1到200之间", "Floors must be between 1 and 200"),
        ));
    }
    let b = Building { id: Uuid::now_v7(), project_id, name: types::text("name", name, 50)?, floors };
    let mut tx = state.db.begin().await?;
    repo::insert_building(&mut tx, actor.company_id, &b).await?;
    audit(&mut tx, actor, "building.create", "building", Some(b.id), serde_json::json!({ "name": b.name })).await?;
    tx.commit().await?;
    Ok(b)
}

pub async fn create_unit(state: &AppState, actor: &Actor, building_id: Uuid, name: &str) -> AppResult<Unit> {
    let b =
        repo::get_building(&state.db, actor.company_id, building_id).await?.ok_or(AppError::not_found("building"))?;
    actor.require_project(Perm::EstateWrite, b.project_id)?;
    let u = Unit { id: Uuid::now_v7(), project_id: b.project_id, building_id, name: types::text("name", name, 50)? };
    let mut tx = state.db.begin().await?;
    repo::insert_unit(&mut tx, actor.company_id, &u).await?;
    audit(&mut tx, actor, "unit.create", "unit", Some(u.id), serde_json::json!({ "name": u.name })).await?;
    tx.commit().await?;
    Ok(u)
}

pub struct HouseInput<'a> {
    pub room_no: Option<&'a str>,
    pub floor: Option<i32>,
    pub building_area: Option<Decimal>,
    pub indoor_area: Option<Decimal>,
    pub usage: Option<&'a str>,
    pub status: Option<&'a str>,
}

fn check_house(h: &mut House, input: &HouseInput<'_>) -> AppResult<()> {
    if let Some(r) = input.room_no {
        h.room_no = types::text("roomNo", r, 20)?;
    }
    if let Some(f) = input.floor {
        if !(-10..=200).contains(&f) || f == 0 {
            return Err(AppError::validation(
                "floor",
                Msg::new("楼层应在-10到200之间且不为0", "Floor must be -10..200 and not 0"),
            ));
        }
        h.floor = f;
    }
    if let Some(a) = input.building_area {
        h.building_area = types::area("buildingArea", a)?;
    }
    if let Some(a) = input.indoor_area {
        h.indoor_area = Some(types::area("indoorArea", a)?);
    }
    if h.indoor_area.is_some_and(|i| i > h.building_area) {
        return Err(AppError::validation(
            "indoorArea",
            Msg::new("套内面积不能大于建筑面积", "Indoor area cannot exceed the building area"),
        ));
    }
    if let Some(u) = input.usage {
        h.usage = one_of("usage", u, HOUSE_USAGES)?;
    }
    if let Some(s) = input.status {
        h.status = one_of("status", s, HOUSE_STATUSES)?;
    }
    Ok(())
}

pub async fn create_house(state: &AppState, actor: &Actor, unit_id: Uuid, input: HouseInput<'_>) -> AppResult<House> {
    let u = repo::get_unit(&state.db, actor.company_id, unit_id).await?.ok_or(AppError::not_found("unit"))?;
    actor.require_project(Perm::EstateWrite, u.project_id)?;
    types::required(&[
        ("roomNo", input.room_no.is_some()),
        ("floor", input.floor.is_some()),
        ("buildingArea", input.building_area.is_some()),
    ])?;
    let mut h = House {
        id: Uuid::now_v7(),
        project_id: u.project_id,
        building_id: u.building_id,
        building_name: String::new(),
        unit_id,
        unit_name: u.name.clone(),
        room_no: String::new(),
        floor: 1,
        building_area: Decimal::ZERO,
        indoor_area: None,
        usage: "residence".into(),
        status: "vacant".into(),
    };
    check_house(&mut h, &input)?;
    let mut tx = state.db.begin().await?;
    repo::insert_house(
        &mut tx,
        &NewHouse {
            id: h.id,
            company_id: actor.company_id,
            project_id: h.project_id,
            building_id: h.building_id,
            unit_id,
            room_no: &h.room_no,
            floor: h.floor,
            building_area: h.building_area,
            indoor_area: h.indoor_area,
            usage: &h.usage,
            status: &h.status,
        },
    )
    .await?;
    audit(&mut tx, actor, "house.create", "house", Some(h.id), serde_json::json!({ "roomNo": h.room_no })).await?;
    let h = repo::get_house(&mut *tx, actor.company_id, h.id).await?.ok_or(AppError::not_found("house"))?;
    tx.commit().await?;
    Ok(h)
}

pub async fn update_house(state: &AppState, actor: &Actor, id: Uuid, input: HouseInput<'_>) -> AppResult<House> {
    let mut h = repo::get_house(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("house"))?;
    actor.require_project(Perm::EstateWrite, h.project_id)?;
    check_house(&mut h, &input)?;
    let mut tx = state.db.begin().await?;
    repo::update_house(&mut tx, actor.company_id, &h).await?;
    audit(&mut tx, actor, "house.update", "house", Some(h.id), serde_json::json!({})).await?;
    tx.commit().await?;
    Ok(h)
}

/// A house: staff within their projects, an owner only when they live there.
pub async fn house(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<House> {
    let h = repo::get_house(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("house"))?;
    if actor.has(Perm::EstateRead) {
        actor.require_project(Perm::EstateRead, h.project_id)?;
        return Ok(h);
    }
    actor.require(Perm::SelfHouse)?;
    let mine = match actor.owner_id {
        Some(o) => repo::houses_of_owner(&state.db, o).await?.iter().any(|x| x.id == id),
        None => false,
    };
    if mine { Ok(h) } else { Err(AppError::not_found("house")) }
}

pub struct HouseQuery {
    pub project_id: Option<Uuid>,
    pub building_id: Option<Uuid>,
    pub unit_id: Option<Uuid>,
    pub status: Option<String>,
    pub search: Option<String>,
}

pub async fn houses(
    state: &AppState,
    actor: &Actor,
    q: HouseQuery,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<House>> {
    let filter = actor.projects(Perm::EstateRead)?;
    if let Some(p) = q.project_id
        && !filter.allows(p)
    {
        return Err(AppError::forbidden());
    }
    let status = match q.status.as_deref() {
        Some(s) => Some(one_of("status", s, HOUSE_STATUSES)?),
        None => None,
    };
    let f = HouseFilter {
        projects: filter.as_sql(),
        project_id: q.project_id,
        building_id: q.building_id,
        unit_id: q.unit_id,
        status,
        search: q.search.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()),
    };
    Ok(repo::list_houses(&state.db, actor.company_id, &f, after, limit as i64).await?)
}

/// 我的房屋: the houses an owner account is linked to.
pub async fn my_houses(state: &AppState, actor: &Actor) -> AppResult<Vec<House>> {
    actor.require(Perm::SelfHouse)?;
    match actor.owner_id {
        Some(o) => Ok(repo::houses_of_owner(&state.db, o).await?),
        None => Ok(Vec::new()),
    }
}

pub async fn residents(state: &AppState, house_ids: &[Uuid]) -> AppResult<Vec<Resident>> {
    Ok(repo::residents_of_houses(&state.db, house_ids).await?)
}

pub async fn parking_spaces(
    state: &AppState,
    actor: &Actor,
    project_id: Uuid,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<ParkingSpace>> {
    actor.require_project(Perm::EstateRead, project_id)?;
    Ok(repo::list_parking(&state.db, project_id, after, limit as i64).await?)
}

pub async fn create_parking_space(
    state: &AppState,
    actor: &Actor,
    project_id: Uuid,
    code: &str,
    area: Option<Decimal>,
    owner_id: Option<Uuid>,
) -> AppResult<ParkingSpace> {
    project(state, actor, Perm::EstateWrite, project_id).await?;
    if let Some(o) = owner_id {
        repo::get_owner(&state.db, actor.company_id, o).await?.ok_or(AppError::not_found("owner"))?;
    }
    let p = ParkingSpace {
        id: Uuid::now_v7(),
        project_id,
        code: types::text("code", code, 20)?,
        area: area.map(|a| types::area("area", a)).transpose()?,
        status: if owner_id.is_some() { "occupied" } else { "vacant" }.into(),
        owner_id,
    };
    let mut tx = state.db.begin().await?;
    repo::insert_parking(&mut tx, actor.company_id, &p).await?;
    audit(&mut tx, actor, "parking.create", "parkingSpace", Some(p.id), serde_json::json!({ "code": p.code })).await?;
    tx.commit().await?;
    Ok(p)
}

// ---- owners --------------------------------------------------------------------------

/// What the caller may see of a person's contact and identity data.
pub struct OwnerView {
    pub owner: Owner,
    pub phone: String,
    pub id_card_number: Option<String>,
}

pub fn view_owner(state: &AppState, actor: &Actor, owner: Owner) -> OwnerView {
    let unmask = actor.unmask_pii() || actor.owner_id == Some(owner.id);
    let id_card = owner.id_card_enc.as_deref().map(|ct| match state.keys.decrypt_pii(ct) {
        Ok(plain) if unmask => plain,
        Ok(plain) => IdCardNumber::masked(&plain),
        Err(e) => {
            tracing::error!(owner = %owner.id, error = %e, "ID-card number does not decrypt");
            "****".into()
        }
    });
    let phone = if unmask { owner.phone.clone() } else { Phone::masked(&owner.phone) };
    OwnerView { phone, id_card_number: id_card, owner }
}

pub fn mask_phone(actor: &Actor, phone: &str) -> String {
    if actor.unmask_pii() { phone.to_owned() } else { Phone::masked(phone) }
}

async fn owner_in_scope(state: &AppState, actor: &Actor, perm: Perm, id: Uuid) -> AppResult<Owner> {
    let filter = actor.projects(perm)?;
    let o = repo::get_owner(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("owner"))?;
    if let ProjectFilter::Only(ids) = &filter {
        let theirs = repo::projects_of_owner(&state.db, id).await?;
        if !theirs.iter().any(|p| ids.contains(p)) {
            return Err(AppError::not_found("owner"));
        }
    }
    Ok(o)
}

pub async fn owner(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Owner> {
    if actor.owner_id == Some(id) {
        return repo::get_owner(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("owner"));
    }
    owner_in_scope(state, actor, Perm::OwnerRead, id).await
}

pub async fn owners(
    state: &AppState,
    actor: &Actor,
    project_id: Option<Uuid>,
    search: Option<&str>,
    id_card_number: Option<&str>,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Owner>> {
    let filter = actor.projects(Perm::OwnerRead)?;
    if let Some(p) = project_id
        && !filter.allows(p)
    {
        return Err(AppError::forbidden());
    }
    // searching by ID number goes through the blind index: the number is never stored in clear
    let idx = match id_card_number.map(str::trim).filter(|s| !s.is_empty()) {
        Some(n) => Some(state.keys.blind_index(IdCardNumber::parse("idCardNumber", n)?.as_str())),
        None => None,
    };
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    let only = filter.as_sql();
    let f = repo::OwnerFilter { projects: only.as_deref(), project_id, search, id_card_idx: idx.as_deref() };
    Ok(repo::list_owners(&state.db, actor.company_id, &f, after, limit as i64).await?)
}

pub async fn houses_of_owner(state: &AppState, owner_id: Uuid) -> AppResult<Vec<House>> {
    Ok(repo::houses_of_owner(&state.db, owner_id).await?)
}

pub struct OwnerInput<'a> {
    pub name: &'a str,
    pub phone: &'a str,
    pub id_card_number: Option<&'a str>,
    /// (house, relation)
    pub houses: Vec<(Uuid, String)>,
}

/// Validated owner fields, ready to insert.
pub struct CheckedOwner {
    pub name: String,
    pub phone: Phone,
    pub id_card: Option<IdCardNumber>,
}

pub fn check_owner(name: &str, phone: &str, id_card: Option<&str>, prefix: &str) -> AppResult<CheckedOwner> {
    let f = |n: &str| format!("{prefix}{n}");
    Ok(CheckedOwner {
        name: types::text(f("name"), name, 50)?,
        phone: Phone::parse(f("phone"), phone)?,
        id_card: match id_card.map(str::trim).filter(|s| !s.is_empty()) {
            Some(n) => Some(IdCardNumber::parse(f("idCardNumber"), n)?),
            None => None,
        },
    })
}

/// Creates the owner and their (pending) app account in one transaction.
pub async fn insert_owner_with_account(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    company_id: Uuid,
    o: &CheckedOwner,
) -> AppResult<Uuid> {
    let owner_id = Uuid::now_v7();
    let user_id = crate::rbac::service::create_owner_account(tx, company_id, &o.name, &o.phone).await?;
    let enc = o.id_card.as_ref().map(|n| state.keys.encrypt_pii(n.as_str()));
    let idx = o.id_card.as_ref().map(|n| state.keys.blind_index(n.as_str()));
    repo::insert_owner(
        tx,
        &NewOwner {
            id: owner_id,
            company_id,
            user_id: Some(user_id),
            name: &o.name,
            phone: o.phone.as_str(),
            id_card_enc: enc.as_deref(),
            id_card_idx: idx.as_deref(),
        },
    )
    .await?;
    Ok(owner_id)
}

pub async fn register_owner(state: &AppState, actor: &Actor, input: OwnerInput<'_>) -> AppResult<Owner> {
    let filter = actor.projects(Perm::OwnerWrite)?;
    let checked = check_owner(input.name, input.phone, input.id_card_number, "")?;
    let mut links = Vec::new();
    for (i, (house_id, relation)) in input.houses.iter().enumerate() {
        let h = repo::get_house(&state.db, actor.company_id, *house_id).await?.ok_or(AppError::not_found("house"))?;
        if !filter.allows(h.project_id) {
            return Err(AppError::forbidden());
        }
        links.push((h, one_of(format!("houses[{i}].relation"), relation, RELATIONS)?));
    }
    let mut tx = state.db.begin().await?;
    let id = insert_owner_with_account(state, &mut tx, actor.company_id, &checked).await?;
    for (h, rel) in &links {
        repo::insert_resident(&mut tx, actor.company_id, h.project_id, h.id, id, rel).await?;
        repo::set_house_status(&mut tx, h.id).await?;
    }
    audit(&mut tx, actor, "owner.register", "owner", Some(id), serde_json::json!({ "houses": links.len() })).await?;
    let o = repo::get_owner(&mut *tx, actor.company_id, id).await?.ok_or(AppError::not_found("owner"))?;
    tx.commit().await?;
    Ok(o)
}

pub async fn link_house(
    state: &AppState,
    actor: &Actor,
    owner_id: Uuid,
    house_id: Uuid,
    relation: &str,
) -> AppResult<Owner> {
    let h = repo::get_house(&state.db, actor.company_id, house_id).await?.ok_or(AppError::not_found("house"))?;
    actor.require_project(Perm::OwnerWrite, h.project_id)?;
    let relation = one_of("relation", relation, RELATIONS)?;
    let o = repo::get_owner(&state.db, actor.company_id, owner_id).await?.ok_or(AppError::not_found("owner"))?;
    let mut tx = state.db.begin().await?;
    repo::insert_resident(&mut tx, actor.company_id, h.project_id, house_id, owner_id, &relation).await?;
    repo::set_house_status(&mut tx, house_id).await?;
    audit(
        &mut tx,
        actor,
        "owner.link",
        "owner",
        Some(owner_id),
        serde_json::json!({ "house": house_id, "relation": relation }),
    )
    .await?;
    tx.commit().await?;
    Ok(o)
}

pub async fn unlink_house(state: &AppState, actor: &Actor, owner_id: Uuid, house_id: Uuid) -> AppResult<Owner> {
    let h = repo::get_house(&state.db, actor.company_id, house_id).await?.ok_or(AppError::not_found("house"))?;
    actor.require_project(Perm::OwnerWrite, h.project_id)?;
    let o = repo::get_owner(&state.db, actor.company_id, owner_id).await?.ok_or(AppError::not_found("owner"))?;
    let mut tx = state.db.begin().await?;
    if repo::delete_resident(&mut tx, house_id, owner_id).await? == 0 {
        return Err(AppError::validation(
            "houseId",
            Msg::new("该住户未关联此房屋", "The person is not linked to this house"),
        ));
    }
    repo::set_house_status(&mut tx, house_id).await?;
    audit(&mut tx, actor, "owner.unlink", "owner", Some(owner_id), serde_json::json!({ "house": house_id })).await?;
    tx.commit().await?;
    Ok(o)
}

/// Active app accounts of the people living in a project or one of its buildings.
pub async fn resident_users(state: &AppState, project_id: Uuid, building_id: Option<Uuid>) -> AppResult<Vec<Uuid>> {
    Ok(repo::resident_users(&state.db, project_id, building_id).await?)
}

/// Where an owner lives: (project, building) pairs.
pub async fn homes_of_owner(state: &AppState, owner_id: Uuid) -> AppResult<Vec<(Uuid, Uuid)>> {
    Ok(repo::homes_of_owner(&state.db, owner_id).await?)
}

/// A building of the company, with its project.
pub async fn building(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Building> {
    repo::get_building(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("building"))
}

/// A unit of the company, with its building and project.
pub async fn unit(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Unit> {
    repo::get_unit(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("unit"))
}

/// The project a house of the company belongs to.
pub async fn house_project(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Uuid> {
    Ok(repo::get_house(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("house"))?.project_id)
}
