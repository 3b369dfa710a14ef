//! Buildings, units, houses and parking: types, the units loader, queries and mutations.
//! `Owner.houses` is resolved here too: owners sit below estate, so the relation lives
//! with the houses.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::parser::types::{ExecutableDocument, Field, OperationType, Selection, SelectionSet};
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::import;
use super::model;
use super::service::{self, HouseInput, HouseQuery, ParkingInput};
use crate::kit::gql::{Conn, StateExt, group_by, load_one, parse_id, parse_opt_id, to_id};
use crate::kit::pagination::Page;
use crate::kit::state::AppState;
use crate::org::owners::graphql::{Owner, Resident, ResidentsLoader};
use crate::org::owners::service as owners;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

// ---- types ----------------------------------------------------------------------------

/// 房屋用途 what a house is used for.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::HouseUsage")]
pub enum HouseUsage {
    /// 住宅 a home
    Residence,
    /// 商铺 a shop
    Shop,
    /// 办公 an office
    Office,
    /// 车库 a garage
    Garage,
    /// 其他 anything else
    Other,
}

/// 房屋状态 whether anyone is linked to a house.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::HouseStatus")]
pub enum HouseStatus {
    /// 已入住 someone is linked to it
    Occupied,
    /// 空置 nobody is linked to it
    Vacant,
}

/// 车位状态 whether a parking space has an owner.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::ParkingStatus")]
pub enum ParkingStatus {
    /// 已售/已租 sold or let to an owner
    Occupied,
    /// 空置 free
    Vacant,
}

/// 楼栋 a building of a project.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Building {
    /// the building's id
    pub id: ID,
    /// the project it belongs to
    pub project_id: ID,
    /// the name, unique in the project (1栋, A座)
    pub name: String,
    /// number of floors above ground
    pub floors: Option<i32>,
    #[graphql(skip)]
    building_id: Uuid,
}

impl From<model::Building> for Building {
    fn from(b: model::Building) -> Self {
        Building { id: to_id(b.id), project_id: to_id(b.project_id), name: b.name, floors: b.floors, building_id: b.id }
    }
}

#[ComplexObject]
impl Building {
    /// the building's units, by name
    async fn units(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Unit>> {
        let rows = load_one::<UnitsLoader>(ctx, self.building_id).await?;
        Ok(rows.unwrap_or_default().into_iter().map(Unit::from).collect())
    }
}

/// 单元 a unit (stairwell) of a building.
#[derive(SimpleObject)]
pub struct Unit {
    /// the unit's id
    pub id: ID,
    /// the building it belongs to
    pub building_id: ID,
    /// the name, unique in the building (1单元)
    pub name: String,
}

impl From<model::Unit> for Unit {
    fn from(u: model::Unit) -> Self {
        Unit { id: to_id(u.id), building_id: to_id(u.building_id), name: u.name }
    }
}

/// 房屋 a house (flat, shop, office) in a unit of a building.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct House {
    /// the house's id
    pub id: ID,
    /// the project it belongs to
    pub project_id: ID,
    /// its building
    pub building_id: ID,
    /// its building's name
    pub building_name: String,
    /// its unit
    pub unit_id: ID,
    /// its unit's name
    pub unit_name: String,
    /// 房号 the room number, unique in the unit (1201)
    pub room_no: String,
    /// the floor: negative below ground, never 0
    pub floor: i32,
    /// 建筑面积 building area, m²
    pub building_area: Decimal,
    /// 套内面积 indoor area, m²
    pub indoor_area: Option<Decimal>,
    /// what the house is used for
    pub usage: HouseUsage,
    /// whether anyone is linked to it
    pub status: HouseStatus,
    #[graphql(skip)]
    house_id: Uuid,
    #[graphql(skip)]
    project: Uuid,
}

impl From<model::House> for House {
    fn from(h: model::House) -> Self {
        House {
            id: to_id(h.id),
            project_id: to_id(h.project_id),
            building_id: to_id(h.building_id),
            building_name: h.building_name,
            unit_id: to_id(h.unit_id),
            unit_name: h.unit_name,
            room_no: h.room_no,
            floor: h.floor,
            building_area: h.building_area,
            indoor_area: h.indoor_area,
            usage: h.usage.into(),
            status: h.status.into(),
            house_id: h.id,
            project: h.project_id,
        }
    }
}

#[ComplexObject]
impl House {
    /// Owners, household members and tenants: for staff with `owner:read` over the
    /// project, or for someone living there. Phones masked without `pii:read`.
    async fn residents(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Resident>> {
        let actor = ctx.actor()?;
        let rows = load_one::<ResidentsLoader>(ctx, self.house_id).await?.unwrap_or_default();
        let seen = owners::house_residents(&actor, self.project, rows)?;
        Ok(seen.into_iter().map(Resident::from).collect())
    }
}

/// What a `houses` connection answers from the house pages alone: the connection, its
/// edges and page info, and the columns of `House` (not `residents`, loaded per request).
/// A field added to this list must be a plain column of the cached rows.
const PAGE_FIELDS: &[&str] = &[
    "__typename",
    "edges",
    "nodes",
    "node",
    "cursor",
    "pageInfo",
    "hasPreviousPage",
    "hasNextPage",
    "startCursor",
    "endCursor",
    "id",
    "projectId",
    "buildingId",
    "buildingName",
    "unitId",
    "unitName",
    "roomNo",
    "floor",
    "buildingArea",
    "indoorArea",
    "usage",
    "status",
];

/// Whether a document is one query that reads nothing but `houses` pages: its whole answer
/// then depends only on the caller, its variables and the house pages, and may be kept with
/// them (`service::HousePages::keep_answer`).
pub fn reads_only_house_pages(doc: &ExecutableDocument) -> bool {
    let mut ops = doc.operations.iter();
    let (Some((_, op)), None) = (ops.next(), ops.next()) else { return false };
    if op.node.ty != OperationType::Query || !op.node.directives.is_empty() {
        return false;
    }
    selections(doc, &op.node.selection_set.node, 0, &|f| match f.name.node.as_str() {
        "__typename" => true,
        "houses" => within_page(doc, &f.selection_set.node, 1),
        _ => false,
    })
}

fn within_page(doc: &ExecutableDocument, set: &SelectionSet, depth: usize) -> bool {
    selections(doc, set, depth, &|f| {
        PAGE_FIELDS.contains(&f.name.node.as_str()) && within_page(doc, &f.selection_set.node, depth + 1)
    })
}

/// Whether every field of a selection set (through fragments) passes `ok`.
fn selections(doc: &ExecutableDocument, set: &SelectionSet, depth: usize, ok: &dyn Fn(&Field) -> bool) -> bool {
    depth < 8
        && set.items.iter().all(|s| match &s.node {
            Selection::Field(f) => ok(&f.node),
            Selection::InlineFragment(i) => selections(doc, &i.node.selection_set.node, depth + 1, ok),
            Selection::FragmentSpread(sp) => doc
                .fragments
                .get(&sp.node.fragment_name.node)
                .is_some_and(|fr| selections(doc, &fr.node.selection_set.node, depth + 1, ok)),
        })
}

#[ComplexObject]
impl Owner {
    /// Houses the person is linked to: all of them for the person themself, else those
    /// in the projects the caller's `owner:read` reaches.
    async fn houses(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<House>> {
        let actor = ctx.actor()?;
        let rows = service::visible_houses(ctx.state(), &actor, self.owner_id).await?;
        Ok(rows.into_iter().map(House::from).collect())
    }
}

/// 车位 a parking space of a project.
#[derive(SimpleObject)]
pub struct ParkingSpace {
    /// the space's id
    pub id: ID,
    /// the project it belongs to
    pub project_id: ID,
    /// its number, unique in the project (B1-001)
    pub code: String,
    /// area, m²
    pub area: Option<Decimal>,
    /// whether it has an owner
    pub status: ParkingStatus,
    /// the owner it is sold or let to
    pub owner_id: Option<ID>,
}

impl From<model::ParkingSpace> for ParkingSpace {
    fn from(p: model::ParkingSpace) -> Self {
        ParkingSpace {
            id: to_id(p.id),
            project_id: to_id(p.project_id),
            code: p.code,
            area: p.area,
            status: p.status.into(),
            owner_id: p.owner_id.map(to_id),
        }
    }
}

// ---- loaders --------------------------------------------------------------------------

/// Units per building, batched per request.
pub struct UnitsLoader(pub AppState);

impl From<AppState> for UnitsLoader {
    fn from(s: AppState) -> Self {
        UnitsLoader(s)
    }
}

impl Loader<Uuid> for UnitsLoader {
    type Value = Vec<model::Unit>;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::units(&self.0, keys).await.map_err(|e| e.to_string())?;
        Ok(group_by(rows, |r| r.building_id))
    }
}

// ---- reads and payloads ---------------------------------------------------------------

pub async fn load_building(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Building> {
    let actor = ctx.actor()?;
    Ok(service::read_building(ctx.state(), &actor, id).await?.into())
}

pub async fn load_unit(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Unit> {
    let actor = ctx.actor()?;
    Ok(service::read_unit(ctx.state(), &actor, id).await?.into())
}

pub async fn load_house(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<House> {
    let actor = ctx.actor()?;
    Ok(service::house(ctx.state(), &actor, id).await?.into())
}

pub async fn load_parking_space(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<ParkingSpace> {
    let actor = ctx.actor()?;
    Ok(service::parking_space(ctx.state(), &actor, id).await?.into())
}

crate::object_payload!(
    /// The building a mutation created.
    BuildingPayload, building: Building, load_building, "the building as it is now"
);
crate::object_payload!(
    /// The unit a mutation created.
    UnitPayload, unit: Unit, load_unit, "the unit as it is now"
);
crate::object_payload!(
    /// The house a mutation created or changed.
    HousePayload, house: House, load_house, "the house as it is now"
);
crate::object_payload!(
    /// The parking space a mutation created.
    ParkingSpacePayload, parking_space: ParkingSpace, load_parking_space, "the parking space as it is now"
);

// ---- queries --------------------------------------------------------------------------

#[derive(Default)]
pub struct EstateQuery;

#[Object]
impl EstateQuery {
    /// A project's buildings (`estate:read` over it), in creation order.
    #[graphql(guard = "Perm::EstateRead")]
    async fn buildings(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Building>> {
        let actor = ctx.actor()?;
        let page = Page::<Uuid>::new(ctx, first, after)?;
        let project = parse_id("projectId", &project_id)?;
        let rows = service::buildings(ctx.state(), &actor, project, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |b| b.id, Building::from))
    }

    /// Houses within the caller's projects (`estate:read`), filtered, in creation order.
    #[graphql(guard = "Perm::EstateRead")]
    #[allow(clippy::too_many_arguments)]
    async fn houses(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        building_id: Option<ID>,
        unit_id: Option<ID>,
        status: Option<HouseStatus>,
        #[graphql(desc = "part of the room number, taken literally")] search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<House>> {
        let actor = ctx.actor()?;
        let page = Page::<Uuid>::new(ctx, first, after)?;
        let q = HouseQuery {
            project_id: parse_opt_id("projectId", project_id.as_ref())?,
            building_id: parse_opt_id("buildingId", building_id.as_ref())?,
            unit_id: parse_opt_id("unitId", unit_id.as_ref())?,
            status: status.map(Into::into),
            search,
        };
        let rows = service::houses(ctx.state(), &actor, q, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |h| h.id, House::from))
    }

    /// A house: staff within their projects, a person only when they live there.
    async fn house(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<House> {
        load_house(ctx, parse_id("id", &id)?).await
    }

    /// 我的房屋 the houses of the caller's own owner record (`self:house`; owner app).
    #[graphql(guard = "Perm::SelfHouse")]
    async fn my_houses(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<House>> {
        let actor = ctx.actor()?;
        Ok(service::my_houses(ctx.state(), &actor).await?.into_iter().map(House::from).collect())
    }

    /// A project's parking spaces (`estate:read` over it), in creation order.
    #[graphql(guard = "Perm::EstateRead")]
    async fn parking_spaces(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<ParkingSpace>> {
        let actor = ctx.actor()?;
        let page = Page::<Uuid>::new(ctx, first, after)?;
        let project = parse_id("projectId", &project_id)?;
        let rows = service::parking_spaces(ctx.state(), &actor, project, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |p| p.id, ParkingSpace::from))
    }
}

// ---- mutations ------------------------------------------------------------------------

/// A new building of a project.
#[derive(InputObject)]
pub struct CreateBuildingInput {
    /// the project
    pub project_id: ID,
    /// the name, unique in the project
    pub name: String,
    /// number of floors above ground (1 to 200)
    pub floors: Option<i32>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A new unit of a building.
#[derive(InputObject)]
pub struct CreateUnitInput {
    /// the building
    pub building_id: ID,
    /// the name, unique in the building
    pub name: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A new house in a unit.
#[derive(InputObject)]
pub struct CreateHouseInput {
    /// the unit the house is in
    pub unit_id: ID,
    /// 房号 unique in the unit, at most 20 characters
    pub room_no: String,
    /// -10 to 200, not 0
    pub floor: i32,
    /// 建筑面积 m², at most 2 decimals
    pub building_area: Decimal,
    /// 套内面积 m², not more than the building area
    pub indoor_area: Option<Decimal>,
    /// default RESIDENCE
    pub usage: Option<HouseUsage>,
    /// default VACANT
    pub status: Option<HouseStatus>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// Changes to a house; fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateHouseInput {
    /// the house to change
    pub house_id: ID,
    /// a new room number
    pub room_no: Option<String>,
    /// a new floor: -10 to 200, not 0
    pub floor: Option<i32>,
    /// 建筑面积 m², at most 2 decimals
    pub building_area: Option<Decimal>,
    /// 套内面积 m², not more than the building area
    pub indoor_area: Option<Decimal>,
    /// a new usage
    pub usage: Option<HouseUsage>,
    /// a new status
    pub status: Option<HouseStatus>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A new parking space of a project.
#[derive(InputObject)]
pub struct CreateParkingSpaceInput {
    /// the project
    pub project_id: ID,
    /// its number, unique in the project, at most 20 characters
    pub code: String,
    /// area, m²
    pub area: Option<Decimal>,
    /// the owner it is sold or let to (the space is then OCCUPIED)
    pub owner_id: Option<ID>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 批量导入 a CSV file of houses and their owners for one project.
#[derive(InputObject)]
pub struct ImportHousesInput {
    /// the project to import into
    pub project_id: ID,
    /// CSV text with a header line: building,unit,room_no,floor,building_area,indoor_area,usage,status,
    /// owner_name,owner_phone,owner_id_card,relation (Chinese headers 楼栋,单元,房号… also work)
    pub csv: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// What an import wrote.
#[derive(SimpleObject)]
pub struct ImportHousesPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// buildings that did not exist before
    pub buildings_created: u32,
    /// units that did not exist before
    pub units_created: u32,
    /// houses written (one per line)
    pub houses_created: u32,
    /// people registered (a phone already registered is linked instead)
    pub owners_created: u32,
    /// person-to-house links written
    pub owners_linked: u32,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[derive(Default)]
pub struct EstateMutation;

#[Object]
impl EstateMutation {
    /// A new building (`estate:write` over the project).
    #[graphql(guard = "Perm::EstateWrite")]
    async fn create_building(
        &self,
        ctx: &Context<'_>,
        input: CreateBuildingInput,
    ) -> async_graphql::Result<BuildingPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let project = parse_id("projectId", &input.project_id)?;
        let id = service::create_building(ctx.state(), &actor, &retry, project, &input.name, input.floors).await?;
        Ok(BuildingPayload::new(input.client_mutation_id, id))
    }

    /// A new unit of a building (`estate:write` over its project).
    #[graphql(guard = "Perm::EstateWrite")]
    async fn create_unit(&self, ctx: &Context<'_>, input: CreateUnitInput) -> async_graphql::Result<UnitPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let building = parse_id("buildingId", &input.building_id)?;
        let id = service::create_unit(ctx.state(), &actor, &retry, building, &input.name).await?;
        Ok(UnitPayload::new(input.client_mutation_id, id))
    }

    /// A new house in a unit (`estate:write` over its project).
    #[graphql(guard = "Perm::EstateWrite")]
    async fn create_house(&self, ctx: &Context<'_>, input: CreateHouseInput) -> async_graphql::Result<HousePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let unit = parse_id("unitId", &input.unit_id)?;
        let house = HouseInput {
            room_no: Some(&input.room_no),
            floor: Some(input.floor),
            building_area: Some(input.building_area),
            indoor_area: input.indoor_area,
            usage: input.usage.map(Into::into),
            status: input.status.map(Into::into),
        };
        let id = service::create_house(ctx.state(), &actor, &retry, unit, house).await?;
        Ok(HousePayload::new(input.client_mutation_id, id))
    }

    /// Changes a house (`estate:write` over its project).
    #[graphql(guard = "Perm::EstateWrite")]
    async fn update_house(&self, ctx: &Context<'_>, input: UpdateHouseInput) -> async_graphql::Result<HousePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let house_id = parse_id("houseId", &input.house_id)?;
        let house = HouseInput {
            room_no: input.room_no.as_deref(),
            floor: input.floor,
            building_area: input.building_area,
            indoor_area: input.indoor_area,
            usage: input.usage.map(Into::into),
            status: input.status.map(Into::into),
        };
        let id = service::update_house(ctx.state(), &actor, &retry, house_id, house).await?;
        Ok(HousePayload::new(input.client_mutation_id, id))
    }

    /// A new parking space (`estate:write` over the project).
    #[graphql(guard = "Perm::EstateWrite")]
    async fn create_parking_space(
        &self,
        ctx: &Context<'_>,
        input: CreateParkingSpaceInput,
    ) -> async_graphql::Result<ParkingSpacePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let space = ParkingInput {
            project_id: parse_id("projectId", &input.project_id)?,
            code: &input.code,
            area: input.area,
            owner_id: parse_opt_id("ownerId", input.owner_id.as_ref())?,
        };
        let id = service::create_parking_space(ctx.state(), &actor, &retry, space).await?;
        Ok(ParkingSpacePayload::new(input.client_mutation_id, id))
    }

    /// 批量导入 houses and their owners from CSV (`estate:import` over the project). All
    /// lines or none: each bad line is listed in `extensions.details.errors`.
    #[graphql(guard = "Perm::EstateImport")]
    async fn import_houses(
        &self,
        ctx: &Context<'_>,
        input: ImportHousesInput,
    ) -> async_graphql::Result<ImportHousesPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let project = parse_id("projectId", &input.project_id)?;
        let s = import::import_houses(ctx.state(), &actor, &retry, project, &input.csv).await?;
        Ok(ImportHousesPayload {
            client_mutation_id: input.client_mutation_id,
            buildings_created: count(s.buildings_created),
            units_created: count(s.units_created),
            houses_created: count(s.houses_created),
            owners_created: count(s.owners_created),
            owners_linked: count(s.owners_linked),
        })
    }
}
