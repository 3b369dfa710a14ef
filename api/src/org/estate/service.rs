//! Estate rules: buildings, units, houses and parking within the projects the caller's
//! permission reaches, and which houses of a person the caller may see. Projects and
//! their scope come from `company`, people and their links from `owners`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model::{Building, House, HouseStatus, HouseUsage, ParkingSpace, ParkingStatus, Unit};
use super::repo::{self, HouseFilter, NewHouse};
use crate::kit::audit;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::events::Event;
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::kit::types;
use crate::org::company::service as projects;
use crate::org::owners::service as owners;
use crate::rbac::model::{Actor, Perm, ProjectFilter};

/// Whether `estate:read` (or, to read a change back, `estate:write`) reaches a project.
fn sees_project(actor: &Actor, project_id: Uuid) -> AppResult<bool> {
    for perm in [Perm::EstateRead, Perm::EstateWrite] {
        if actor.has(perm) && actor.projects(perm)?.allows(project_id) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn require_sees(actor: &Actor, project_id: Uuid) -> AppResult<()> {
    if sees_project(actor, project_id)? { Ok(()) } else { Err(AppError::forbidden()) }
}

// ---- lookups for other domains (within the company; they check their own scope) --------

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

/// Refreshes planner statistics after bulk loads (the seed, large imports).
pub async fn analyze(state: &AppState) -> AppResult<()> {
    Ok(repo::analyze(&state.db).await?)
}

// ---- buildings and units -----------------------------------------------------------------

/// A project's buildings (`estate:read` over it), in creation order.
pub async fn buildings(
    state: &AppState,
    actor: &Actor,
    project_id: Uuid,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Building>> {
    actor.require_project(Perm::EstateRead, project_id)?;
    Ok(repo::list_buildings(&state.db, actor.company_id, project_id, after, limit as i64).await?)
}

/// A building the caller's estate permission reaches.
pub async fn read_building(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Building> {
    let b = building(state, actor, id).await?;
    require_sees(actor, b.project_id)?;
    Ok(b)
}

/// A unit the caller's estate permission reaches.
pub async fn read_unit(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Unit> {
    let u = unit(state, actor, id).await?;
    require_sees(actor, u.project_id)?;
    Ok(u)
}

/// Units of buildings the caller has already been shown (for the per-request loader).
pub async fn units(state: &AppState, building_ids: &[Uuid]) -> AppResult<Vec<Unit>> {
    Ok(repo::list_units(&state.db, building_ids).await?)
}

/// A new building (`estate:write` over the project); returns its id.
pub async fn create_building(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    project_id: Uuid,
    name: &str,
    floors: Option<i32>,
) -> AppResult<Uuid> {
    if floors.is_some_and(|f| !(1..=200).contains(&f)) {
        return Err(AppError::validation(
            "floors",
            Msg::new("楼层数应在1到200之间", "Floors must be between 1 and 200"),
        ));
    }
    let name = types::text("name", name, 50)?;
    projects::project(state, actor, Perm::EstateWrite, project_id).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let b = Building { id: Uuid::now_v7(), project_id, name, floors };
    repo::insert_building(&mut tx, actor.company_id, &b).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "building.create",
        "building",
        Some(b.id),
        serde_json::json!({ "name": b.name }),
    )
    .await?;
    tx.commit(&b.id).await?;
    Ok(b.id)
}

/// A new unit of a building (`estate:write` over its project); returns its id.
pub async fn create_unit(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    building_id: Uuid,
    name: &str,
) -> AppResult<Uuid> {
    let name = types::text("name", name, 50)?;
    let b = building(state, actor, building_id).await?;
    actor.require_project(Perm::EstateWrite, b.project_id)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let u = Unit { id: Uuid::now_v7(), project_id: b.project_id, building_id, name };
    repo::insert_unit(&mut tx, actor.company_id, &u).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "unit.create",
        "unit",
        Some(u.id),
        serde_json::json!({ "name": u.name }),
    )
    .await?;
    tx.commit(&u.id).await?;
    Ok(u.id)
}

// ---- houses --------------------------------------------------------------------------------

pub struct HouseInput<'a> {
    pub room_no: Option<&'a str>,
    pub floor: Option<i32>,
    pub building_area: Option<Decimal>,
    pub indoor_area: Option<Decimal>,
    pub usage: Option<HouseUsage>,
    pub status: Option<HouseStatus>,
}

/// House fields checked one by one; `apply` checks them against the rest of the house.
struct HousePatch {
    room_no: Option<String>,
    floor: Option<i32>,
    building_area: Option<Decimal>,
    indoor_area: Option<Decimal>,
    usage: Option<HouseUsage>,
    status: Option<HouseStatus>,
}

fn check_house(input: &HouseInput<'_>) -> AppResult<HousePatch> {
    let room_no = input.room_no.map(|r| types::text("roomNo", r, 20)).transpose()?;
    if input.floor.is_some_and(|f| !(-10..=200).contains(&f) || f == 0) {
        return Err(AppError::validation(
            "floor",
            Msg::new("楼层应在-10到200之间且不为0", "Floor must be -10..200 and not 0"),
        ));
    }
    Ok(HousePatch {
        room_no,
        floor: input.floor,
        building_area: input.building_area.map(|a| types::area("buildingArea", a)).transpose()?,
        indoor_area: input.indoor_area.map(|a| types::area("indoorArea", a)).transpose()?,
        usage: input.usage,
        status: input.status,
    })
}

impl HousePatch {
    fn apply(self, h: &mut House) -> AppResult<()> {
        if let Some(r) = self.room_no {
            h.room_no = r;
        }
        if let Some(f) = self.floor {
            h.floor = f;
        }
        if let Some(a) = self.building_area {
            h.building_area = a;
        }
        if let Some(a) = self.indoor_area {
            h.indoor_area = Some(a);
        }
        if h.indoor_area.is_some_and(|i| i > h.building_area) {
            return Err(AppError::validation(
                "indoorArea",
                Msg::new("套内面积不能大于建筑面积", "Indoor area cannot exceed the building area"),
            ));
        }
        if let Some(u) = self.usage {
            h.usage = u;
        }
        if let Some(s) = self.status {
            h.status = s;
        }
        Ok(())
    }
}

/// A new house in a unit (`estate:write` over its project); returns its id.
pub async fn create_house(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    unit_id: Uuid,
    input: HouseInput<'_>,
) -> AppResult<Uuid> {
    types::required(&[
        ("roomNo", input.room_no.is_some()),
        ("floor", input.floor.is_some()),
        ("buildingArea", input.building_area.is_some()),
    ])?;
    let mut h = House {
        id: Uuid::now_v7(),
        project_id: Uuid::nil(),
        building_id: Uuid::nil(),
        building_name: String::new(),
        unit_id,
        unit_name: String::new(),
        room_no: String::new(),
        floor: 1,
        building_area: Decimal::ZERO,
        indoor_area: None,
        usage: HouseUsage::Residence,
        status: HouseStatus::Vacant,
    };
    check_house(&input)?.apply(&mut h)?;
    let u = unit(state, actor, unit_id).await?;
    actor.require_project(Perm::EstateWrite, u.project_id)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::insert_house(
        &mut tx,
        &NewHouse {
            id: h.id,
            company_id: actor.company_id,
            project_id: u.project_id,
            building_id: u.building_id,
            unit_id,
            room_no: &h.room_no,
            floor: h.floor,
            building_area: h.building_area,
            indoor_area: h.indoor_area,
            usage: h.usage,
            status: h.status,
        },
    )
    .await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "house.create",
        "house",
        Some(h.id),
        serde_json::json!({ "roomNo": h.room_no }),
    )
    .await?;
    tx.commit(&h.id).await?;
    houses_changed(state, actor.company_id).await;
    Ok(h.id)
}

/// Changes the given fields of a house (`estate:write` over its project); returns its id.
pub async fn update_house(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    id: Uuid,
    input: HouseInput<'_>,
) -> AppResult<Uuid> {
    let patch = check_house(&input)?;
    let filter = actor.projects(Perm::EstateWrite)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let mut h = repo::get_house(&mut *tx, actor.company_id, id).await?.ok_or(AppError::not_found("house"))?;
    if !filter.allows(h.project_id) {
        return Err(AppError::forbidden());
    }
    patch.apply(&mut h)?;
    repo::update_house(&mut tx, actor.company_id, &h).await?;
    audit::record(&mut tx, state.clock.now(), actor, "house.update", "house", Some(h.id), serde_json::json!({}))
        .await?;
    tx.commit(&h.id).await?;
    houses_changed(state, actor.company_id).await;
    Ok(h.id)
}

/// A house: staff within the projects their estate permission reaches, a person only
/// when they are linked to it (others' houses are NOT_FOUND to them).
pub async fn house(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<House> {
    let h = repo::get_house(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("house"))?;
    if sees_project(actor, h.project_id)? {
        return Ok(h);
    }
    if actor.has(Perm::SelfHouse) {
        actor.require(Perm::SelfHouse)?;
        if let Some(o) = actor.owner_id
            && owners::lives_in(state, o, id).await?
        {
            return Ok(h);
        }
    }
    if actor.has(Perm::EstateRead) || actor.has(Perm::EstateWrite) {
        return Err(AppError::forbidden());
    }
    actor.require(Perm::SelfHouse)?;
    Err(AppError::not_found("house"))
}

pub struct HouseQuery {
    pub project_id: Option<Uuid>,
    pub building_id: Option<Uuid>,
    pub unit_id: Option<Uuid>,
    pub status: Option<HouseStatus>,
    /// part of the room number, taken literally
    pub search: Option<String>,
}

/// Houses within the projects `estate:read` reaches, in id order.
pub async fn houses(
    state: &AppState,
    actor: &Actor,
    q: HouseQuery,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<House>> {
    let filter = actor.projects(Perm::EstateRead)?;
    if let Some(p) = q.project_id {
        actor.require_project(Perm::EstateRead, p)?;
    }
    // a building or unit filter names one of the company's, within the caller's scope
    if let Some(b) = q.building_id {
        actor.require_project(Perm::EstateRead, building(state, actor, b).await?.project_id)?;
    }
    if let Some(u) = q.unit_id {
        actor.require_project(Perm::EstateRead, unit(state, actor, u).await?.project_id)?;
    }
    let f = HouseFilter {
        projects: filter.as_sql(),
        project_id: q.project_id,
        building_id: q.building_id,
        unit_id: q.unit_id,
        status: q.status,
        search: types::like_term(q.search.as_deref()),
    };
    // pages are cached per replica while the event bus that invalidates them is live
    let pages = state.part::<HousePages>().ok().filter(|_| state.events.is_live());
    let key = (actor.company_id, f, after, limit);
    if let Some(rows) = pages.and_then(|p| p.get(&key)) {
        return Ok(rows.as_ref().clone());
    }
    let generation = pages.map(|p| p.generation());
    let rows = repo::list_houses(&state.db, actor.company_id, &key.1, after, limit as i64).await?;
    if let (Some(p), Some(g)) = (pages, generation) {
        p.put(key, g, Arc::new(rows.clone()));
    }
    Ok(rows)
}

// ---- the houses page cache -------------------------------------------------------------

type PageKey = (Uuid, HouseFilter, Option<Uuid>, usize);

/// A whole answer to a manifest query that reads nothing but house pages (see
/// `graphql::reads_only_house_pages`): for one caller as loaded (`Actor::version` changes
/// with any change to their roles, scope or account), one operation, the variables it
/// declares (as JSON, in name order) and the language asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnswerKey {
    pub company_id: Uuid,
    pub user_id: Uuid,
    pub actor_version: u64,
    pub operation: String,
    pub variables: String,
    pub english: bool,
}

/// Pages of the `houses` list, cached per replica for a few seconds: the staff apps and
/// the playground page through the same houses again and again. Beside the rows, the
/// whole JSON answers of the apps' manifest queries that read only those rows are kept
/// (16 MiB at most), so a repeated page costs no resolving at all. Every change to a
/// house drops the company's pages and answers here and, through the event bus, on every
/// replica; a page or answer computed while a change commits is not kept (the generation
/// moved), and nothing is cached while the bus is down.
#[derive(Default)]
pub struct HousePages(RwLock<PagesInner>);

#[derive(Default)]
struct PagesInner {
    pages: HashMap<PageKey, (Instant, Arc<Vec<House>>)>,
    answers: HashMap<AnswerKey, (Instant, Bytes)>,
    /// the bytes of `answers`
    answer_bytes: usize,
    generation: u64,
}

const PAGE_TTL: Duration = Duration::from_secs(10);
const PAGES_MAX: usize = 10_000;
/// An answer may be made of a page read up to `PAGE_TTL` before: together they stay
/// within 15 s should an invalidation be lost (every change drops both at once).
const ANSWER_TTL: Duration = Duration::from_secs(5);
/// The answers kept on one replica, in bytes.
const ANSWER_BYTES_MAX: usize = 16 << 20;

impl HousePages {
    fn get(&self, key: &PageKey) -> Option<Arc<Vec<House>>> {
        let inner = self.0.read().ok()?;
        inner.pages.get(key).filter(|(at, _)| at.elapsed() < PAGE_TTL).map(|(_, rows)| rows.clone())
    }

    /// The generation to pass to `put` or `keep_answer` by whoever reads now.
    pub fn generation(&self) -> u64 {
        self.0.read().map(|i| i.generation).unwrap_or(0)
    }

    fn put(&self, key: PageKey, generation: u64, rows: Arc<Vec<House>>) {
        if let Ok(mut inner) = self.0.write()
            && inner.generation == generation
        {
            if inner.pages.len() >= PAGES_MAX {
                inner.pages.clear();
            }
            inner.pages.insert(key, (Instant::now(), rows));
        }
    }

    /// A kept answer, while it is fresh and the event bus is live.
    pub fn answer(&self, state: &AppState, key: &AnswerKey) -> Option<Bytes> {
        if !state.events.is_live() {
            return None;
        }
        let inner = self.0.read().ok()?;
        inner.answers.get(key).filter(|(at, _)| at.elapsed() < ANSWER_TTL).map(|(_, body)| body.clone())
    }

    /// Keeps an answer computed from what was read at `generation`, unless a change has
    /// committed since or the bus is down. True when kept. Over the byte budget, the stale
    /// answers go first, then all of them.
    pub fn keep_answer(&self, state: &AppState, key: AnswerKey, generation: u64, body: Bytes) -> bool {
        if !state.events.is_live() || body.len() > ANSWER_BYTES_MAX / 64 {
            return false;
        }
        let Ok(mut inner) = self.0.write() else { return false };
        if inner.generation != generation {
            return false;
        }
        if inner.answer_bytes + body.len() > ANSWER_BYTES_MAX {
            inner.answers.retain(|_, (at, _)| at.elapsed() < ANSWER_TTL);
            inner.answer_bytes = inner.answers.values().map(|(_, b)| b.len()).sum();
            if inner.answer_bytes + body.len() > ANSWER_BYTES_MAX {
                inner.answers.clear();
                inner.answer_bytes = 0;
            }
        }
        inner.answer_bytes += body.len();
        if let Some((_, old)) = inner.answers.insert(key, (Instant::now(), body)) {
            inner.answer_bytes -= old.len();
        }
        true
    }

    fn forget(&self, company_id: Option<Uuid>) {
        if let Ok(mut inner) = self.0.write() {
            inner.generation += 1;
            match company_id {
                Some(c) => {
                    inner.pages.retain(|k, _| k.0 != c);
                    inner.answers.retain(|k, _| k.company_id != c);
                }
                None => {
                    inner.pages.clear();
                    inner.answers.clear();
                }
            }
            inner.answer_bytes = inner.answers.values().map(|(_, b)| b.len()).sum();
        }
    }
}

pub const EVENT_HOUSES_CHANGED: &str = "HOUSES_CHANGED";

/// Houses of a company changed (created, edited, linked or unlinked): call after the
/// commit. This replica forgets the company's pages at once, the others on the event.
pub async fn houses_changed(state: &AppState, company_id: Uuid) {
    if let Ok(p) = state.part::<HousePages>() {
        p.forget(Some(company_id));
    }
    let ev = Event {
        user_id: None,
        kind: EVENT_HOUSES_CHANGED.to_owned(),
        payload: serde_json::json!({ "companyId": company_id }),
    };
    if let Err(e) = state.events.publish(&ev).await {
        tracing::warn!(error = %e, "houses event not published");
    }
}

/// Keeps this replica's house pages honest: changes made on any replica drop them, and so
/// does any gap in the event bus.
pub async fn follow_house_events(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut rx = state.events.subscribe();
    let mut live = state.events.liveness();
    let forget = |company: Option<Uuid>| {
        if let Ok(p) = state.part::<HousePages>() {
            p.forget(company);
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            changed = live.changed() => match changed {
                Ok(()) => forget(None),
                Err(_) => return,
            },
            ev = rx.recv() => match ev {
                Ok(ev) if ev.kind == EVENT_HOUSES_CHANGED => {
                    match ev.payload["companyId"].as_str().and_then(|s| Uuid::parse_str(s).ok()) {
                        Some(c) => forget(Some(c)),
                        None => forget(None),
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => forget(None),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// 我的房屋: the houses the caller's own owner record is linked to.
pub async fn my_houses(state: &AppState, actor: &Actor) -> AppResult<Vec<House>> {
    actor.require(Perm::SelfHouse)?;
    match actor.owner_id {
        Some(o) => Ok(repo::houses_of_owner(&state.db, actor.company_id, o).await?),
        None => Ok(Vec::new()),
    }
}

/// The houses of a person the caller may see: all of them for the person themself, else
/// those in the projects the caller's `owner:read` reaches (none without it).
pub async fn visible_houses(state: &AppState, actor: &Actor, owner_id: Uuid) -> AppResult<Vec<House>> {
    let filter = if actor.owner_id == Some(owner_id) {
        ProjectFilter::All
    } else {
        match actor.projects(Perm::OwnerRead) {
            Ok(f) => f,
            Err(_) => return Ok(Vec::new()),
        }
    };
    let rows = repo::houses_of_owner(&state.db, actor.company_id, owner_id).await?;
    Ok(rows.into_iter().filter(|h| filter.allows(h.project_id)).collect())
}

// ---- parking -------------------------------------------------------------------------------

/// A project's parking spaces (`estate:read` over it), in creation order.
pub async fn parking_spaces(
    state: &AppState,
    actor: &Actor,
    project_id: Uuid,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<ParkingSpace>> {
    actor.require_project(Perm::EstateRead, project_id)?;
    Ok(repo::list_parking(&state.db, actor.company_id, project_id, after, limit as i64).await?)
}

/// A parking space the caller's estate permission reaches.
pub async fn parking_space(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<ParkingSpace> {
    let p = repo::get_parking(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("parkingSpace"))?;
    require_sees(actor, p.project_id)?;
    Ok(p)
}

pub struct ParkingInput<'a> {
    pub project_id: Uuid,
    pub code: &'a str,
    /// m²
    pub area: Option<Decimal>,
    /// the owner it is sold or let to: the space is then occupied
    pub owner_id: Option<Uuid>,
}

/// A new parking space (`estate:write` over the project); returns its id.
pub async fn create_parking_space(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    input: ParkingInput<'_>,
) -> AppResult<Uuid> {
    let code = types::text("code", input.code, 20)?;
    let area = input.area.map(|a| types::area("area", a)).transpose()?;
    projects::project(state, actor, Perm::EstateWrite, input.project_id).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    if let Some(o) = input.owner_id {
        owners::require_owner_in_scope(&mut tx, actor, Perm::OwnerRead, o).await?;
    }
    let p = ParkingSpace {
        id: Uuid::now_v7(),
        project_id: input.project_id,
        code,
        area,
        status: if input.owner_id.is_some() { ParkingStatus::Occupied } else { ParkingStatus::Vacant },
        owner_id: input.owner_id,
    };
    repo::insert_parking(&mut tx, actor.company_id, &p).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "parking.create",
        "parkingSpace",
        Some(p.id),
        serde_json::json!({ "code": p.code }),
    )
    .await?;
    tx.commit(&p.id).await?;
    Ok(p.id)
}

/// How many of `ids` are buildings of the company's project.
pub async fn count_buildings_of_project(
    state: &AppState,
    company_id: Uuid,
    project_id: Uuid,
    ids: &[Uuid],
) -> AppResult<i64> {
    Ok(repo::count_buildings_of_project(&state.db, company_id, project_id, ids).await?)
}
