//! Company, projects, buildings, houses, parking and owners.

use std::collections::HashMap;
use std::io::Read;

use async_graphql::dataloader::Loader;
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject, Upload};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model;
use super::service::{self, CompanyPatch, HouseInput, HouseQuery, OwnerInput, ProjectInput};
use crate::app::AppState;
use crate::error::{AppError, Msg};
use crate::graphql::{Conn, CtxExt, Loaders, Page, group_by, loader_error};
use crate::rbac::graphql::parse_id;
use crate::rbac::model::Perm;

fn id(u: Uuid) -> ID {
    ID(u.to_string())
}

// ---- types ----------------------------------------------------------------------------

pub struct Company(model::Company);

#[Object]
impl Company {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn address(&self) -> &str {
        &self.0.address
    }
    async fn phone(&self) -> &str {
        &self.0.phone
    }
    /// 统一社会信用代码
    async fn credit_code(&self) -> Option<&str> {
        self.0.credit_code.as_deref()
    }
    async fn logo_url(&self, ctx: &Context<'_>) -> Option<String> {
        let base = &ctx.state().config.files_base_url;
        self.0.logo_key.as_ref().map(|k| format!("{}/{k}", base.trim_end_matches('/')))
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ProjectKind {
    /// 住宅小区
    Residential,
    /// 写字楼
    Office,
    /// 商业综合体
    Commercial,
    Other,
}

impl ProjectKind {
    fn code(self) -> &'static str {
        match self {
            ProjectKind::Residential => "residential",
            ProjectKind::Office => "office",
            ProjectKind::Commercial => "commercial",
            ProjectKind::Other => "other",
        }
    }
    fn of(s: &str) -> Self {
        match s {
            "residential" => ProjectKind::Residential,
            "office" => ProjectKind::Office,
            "commercial" => ProjectKind::Commercial,
            _ => ProjectKind::Other,
        }
    }
}

#[derive(SimpleObject)]
pub struct GeofenceOut {
    pub lat: f64,
    pub lng: f64,
    pub radius_m: i32,
}

pub struct Project(model::Project);

#[Object]
impl Project {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn address(&self) -> &str {
        &self.0.address
    }
    async fn kind(&self) -> ProjectKind {
        ProjectKind::of(&self.0.kind)
    }
    /// m²
    async fn building_area(&self) -> Option<Decimal> {
        self.0.building_area
    }
    async fn households(&self) -> Option<i32> {
        self.0.households
    }
    async fn manager_id(&self) -> Option<ID> {
        self.0.manager_id.map(id)
    }
    /// 客服团队
    async fn service_staff_ids(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ID>> {
        let ids = ctx.data_unchecked::<Loaders>().team.load_one(self.0.id).await.map_err(loader_error)?;
        Ok(ids.unwrap_or_default().into_iter().map(id).collect())
    }
    async fn geofence(&self) -> Option<GeofenceOut> {
        match (self.0.geofence_lat, self.0.geofence_lng, self.0.geofence_radius_m) {
            (Some(lat), Some(lng), Some(radius_m)) => Some(GeofenceOut { lat, lng, radius_m }),
            _ => None,
        }
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

pub struct Building(model::Building);

#[Object]
impl Building {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn project_id(&self) -> ID {
        id(self.0.project_id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn floors(&self) -> Option<i32> {
        self.0.floors
    }
    async fn units(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Unit>> {
        let u = ctx.data_unchecked::<Loaders>().units.load_one(self.0.id).await.map_err(loader_error)?;
        Ok(u.unwrap_or_default().into_iter().map(Unit).collect())
    }
}

pub struct Unit(model::Unit);

#[Object]
impl Unit {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn building_id(&self) -> ID {
        id(self.0.building_id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum HouseUsage {
    Residence,
    Shop,
    Office,
    Garage,
    Other,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum HouseStatus {
    /// 已入住
    Occupied,
    /// 空置
    Vacant,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// 产权人
    Owner,
    /// 家庭成员
    Member,
    /// 租户
    Tenant,
}

impl Relation {
    fn code(self) -> &'static str {
        match self {
            Relation::Owner => "owner",
            Relation::Member => "member",
            Relation::Tenant => "tenant",
        }
    }
}

fn usage_code(u: HouseUsage) -> &'static str {
    match u {
        HouseUsage::Residence => "residence",
        HouseUsage::Shop => "shop",
        HouseUsage::Office => "office",
        HouseUsage::Garage => "garage",
        HouseUsage::Other => "other",
    }
}

fn status_code(s: HouseStatus) -> &'static str {
    match s {
        HouseStatus::Occupied => "occupied",
        HouseStatus::Vacant => "vacant",
    }
}

/// 房屋 a house (flat, shop, office) in a unit of a building.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct House {
    pub id: ID,
    pub project_id: ID,
    pub building_id: ID,
    pub building_name: String,
    pub unit_id: ID,
    pub unit_name: String,
    pub room_no: String,
    pub floor: i32,
    /// 建筑面积 m²
    pub building_area: Decimal,
    /// 套内面积 m²
    pub indoor_area: Option<Decimal>,
    pub usage: HouseUsage,
    pub status: HouseStatus,
    #[graphql(skip)]
    house_id: Uuid,
    #[graphql(skip)]
    project: Uuid,
}

impl From<model::House> for House {
    fn from(h: model::House) -> Self {
        House {
            id: id(h.id),
            project_id: id(h.project_id),
            building_id: id(h.building_id),
            building_name: h.building_name,
            unit_id: id(h.unit_id),
            unit_name: h.unit_name,
            room_no: h.room_no,
            floor: h.floor,
            building_area: h.building_area,
            indoor_area: h.indoor_area,
            usage: match h.usage.as_str() {
                "residence" => HouseUsage::Residence,
                "shop" => HouseUsage::Shop,
                "office" => HouseUsage::Office,
                "garage" => HouseUsage::Garage,
                _ => HouseUsage::Other,
            },
            status: if h.status == "occupied" { HouseStatus::Occupied } else { HouseStatus::Vacant },
            house_id: h.id,
            project: h.project_id,
        }
    }
}

#[ComplexObject]
impl House {
    /// Owners, household members and tenants: for staff with `owner:read`, or a resident.
    async fn residents(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Resident>> {
        let actor = ctx.actor()?;
        let rows = ctx
            .data_unchecked::<Loaders>()
            .residents
            .load_one(self.house_id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        let staff_ok = actor.projects(Perm::OwnerRead).is_ok_and(|f| f.allows(self.project));
        let resident = actor.owner_id.is_some_and(|o| rows.iter().any(|r| r.owner_id == o));
        if !staff_ok && !resident {
            return Err(AppError::forbidden().into());
        }
        Ok(rows
            .into_iter()
            .map(|r| Resident {
                owner_id: id(r.owner_id),
                relation: match r.relation.as_str() {
                    "owner" => Relation::Owner,
                    "member" => Relation::Member,
                    _ => Relation::Tenant,
                },
                phone: if actor.owner_id == Some(r.owner_id) {
                    r.phone.clone()
                } else {
                    service::mask_phone(&actor, &r.phone)
                },
                name: r.name,
            })
            .collect())
    }
}

#[derive(SimpleObject)]
pub struct Resident {
    pub owner_id: ID,
    pub name: String,
    pub phone: String,
    pub relation: Relation,
}

pub struct Owner(service::OwnerView);

#[Object]
impl Owner {
    async fn id(&self) -> ID {
        id(self.0.owner.id)
    }
    async fn name(&self) -> &str {
        &self.0.owner.name
    }
    /// masked unless the caller holds `pii:read`
    async fn phone(&self) -> &str {
        &self.0.phone
    }
    /// masked (110105********002X) unless the caller holds `pii:read`
    async fn id_card_number(&self) -> Option<&str> {
        self.0.id_card_number.as_deref()
    }
    /// whether the owner has activated the app account
    async fn activated(&self) -> bool {
        self.0.owner.activated
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.owner.created_at
    }
    /// Houses the owner is linked to, within the caller's projects.
    async fn houses(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<House>> {
        let actor = ctx.actor()?;
        let houses = service::houses_of_owner(ctx.state(), self.0.owner.id).await?;
        let own = actor.owner_id == Some(self.0.owner.id);
        let filter = actor.projects(Perm::OwnerRead).ok();
        Ok(houses
            .into_iter()
            .filter(|h| own || filter.as_ref().is_some_and(|f| f.allows(h.project_id)))
            .map(House::from)
            .collect())
    }
}

pub struct ParkingSpace(model::ParkingSpace);

#[Object]
impl ParkingSpace {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn project_id(&self) -> ID {
        id(self.0.project_id)
    }
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn area(&self) -> Option<Decimal> {
        self.0.area
    }
    async fn status(&self) -> HouseStatus {
        if self.0.status == "occupied" { HouseStatus::Occupied } else { HouseStatus::Vacant }
    }
    async fn owner_id(&self) -> Option<ID> {
        self.0.owner_id.map(id)
    }
}

// ---- loaders --------------------------------------------------------------------------

pub struct ResidentsLoader(pub AppState);

impl Loader<Uuid> for ResidentsLoader {
    type Value = Vec<model::Resident>;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::residents(&self.0, keys).await.map_err(|e| e.to_string())?;
        Ok(group_by(rows, |r| r.house_id))
    }
}

pub struct UnitsLoader(pub AppState);

impl Loader<Uuid> for UnitsLoader {
    type Value = Vec<model::Unit>;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::units(&self.0, keys).await.map_err(|e| e.to_string())?;
        Ok(group_by(rows, |r| r.building_id))
    }
}

pub struct TeamLoader(pub AppState);

impl Loader<Uuid> for TeamLoader {
    type Value = Vec<Uuid>;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::service_staff(&self.0, keys).await.map_err(|e| e.to_string())?;
        Ok(group_by(rows, |(p, _)| *p).into_iter().map(|(p, v)| (p, v.into_iter().map(|(_, u)| u).collect())).collect())
    }
}

// ---- queries --------------------------------------------------------------------------

#[derive(Default)]
pub struct OrgQuery;

#[Object]
impl OrgQuery {
    #[graphql(guard = "Perm::CompanyRead")]
    async fn company(&self, ctx: &Context<'_>) -> async_graphql::Result<Company> {
        let actor = ctx.actor()?;
        Ok(Company(service::company(ctx.state(), &actor).await?))
    }

    #[graphql(guard = "Perm::ProjectRead")]
    async fn projects(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Project>> {
        let actor = ctx.actor()?;
        let page = Page::new(ctx, first, after)?;
        let rows = service::projects(ctx.state(), &actor, search.as_deref(), page.after, page.fetch()).await?;
        Ok(page.connection(rows, |p| p.id, Project))
    }

    #[graphql(guard = "Perm::ProjectRead")]
    async fn project(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Project> {
        let actor = ctx.actor()?;
        Ok(Project(service::project(ctx.state(), &actor, Perm::ProjectRead, parse_id("id", &id)?).await?))
    }

    #[graphql(guard = "Perm::EstateRead")]
    async fn buildings(&self, ctx: &Context<'_>, project_id: ID) -> async_graphql::Result<Vec<Building>> {
        let actor = ctx.actor()?;
        let rows = service::buildings(ctx.state(), &actor, parse_id("projectId", &project_id)?).await?;
        Ok(rows.into_iter().map(Building).collect())
    }

    /// Houses within the caller's projects, filtered.
    #[graphql(guard = "Perm::EstateRead")]
    #[allow(clippy::too_many_arguments)]
    async fn houses(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        building_id: Option<ID>,
        unit_id: Option<ID>,
        status: Option<HouseStatus>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<House>> {
        let actor = ctx.actor()?;
        let page = Page::new(ctx, first, after)?;
        let q = HouseQuery {
            project_id: project_id.as_ref().map(|i| parse_id("projectId", i)).transpose()?,
            building_id: building_id.as_ref().map(|i| parse_id("buildingId", i)).transpose()?,
            unit_id: unit_id.as_ref().map(|i| parse_id("unitId", i)).transpose()?,
            status: status.map(|s| status_code(s).to_owned()),
            search,
        };
        let rows = service::houses(ctx.state(), &actor, q, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |h| h.id, House::from))
    }

    async fn house(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<House> {
        let actor = ctx.actor()?;
        Ok(House::from(service::house(ctx.state(), &actor, parse_id("id", &id)?).await?))
    }

    /// 我的房屋 (owner app)
    #[graphql(guard = "Perm::SelfHouse")]
    async fn my_houses(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<House>> {
        let actor = ctx.actor()?;
        Ok(service::my_houses(ctx.state(), &actor).await?.into_iter().map(House::from).collect())
    }

    /// Owners living in the caller's projects; `idCardNumber` finds one by the blind index.
    #[graphql(guard = "Perm::OwnerRead")]
    async fn owners(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        search: Option<String>,
        id_card_number: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Owner>> {
        let actor = ctx.actor()?;
        let state = ctx.state();
        let page = Page::new(ctx, first, after)?;
        let project_id = project_id.as_ref().map(|i| parse_id("projectId", i)).transpose()?;
        let rows = service::owners(
            state,
            &actor,
            project_id,
            search.as_deref(),
            id_card_number.as_deref(),
            page.after,
            page.fetch(),
        )
        .await?;
        Ok(page.connection(rows, |o| o.id, |o| Owner(service::view_owner(state, &actor, o))))
    }

    async fn owner(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Owner> {
        let actor = ctx.actor()?;
        let o = service::owner(ctx.state(), &actor, parse_id("id", &id)?).await?;
        Ok(Owner(service::view_owner(ctx.state(), &actor, o)))
    }

    #[graphql(guard = "Perm::EstateRead")]
    async fn parking_spaces(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<ParkingSpace>> {
        let actor = ctx.actor()?;
        let page = Page::new(ctx, first, after)?;
        let rows =
            service::parking_spaces(ctx.state(), &actor, parse_id("projectId", &project_id)?, page.after, page.fetch())
                .await?;
        Ok(page.connection(rows, |p| p.id, ParkingSpace))
    }
}

// ---- mutations ------------------------------------------------------------------------

#[derive(InputObject)]
pub struct UpdateCompanyInput {
    pub name: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    /// 统一社会信用代码 (GB 32100 check character)
    pub credit_code: Option<String>,
}

#[derive(SimpleObject)]
pub struct CompanyPayload {
    pub company: Company,
}

#[derive(InputObject)]
pub struct GeofenceInput {
    pub lat: f64,
    pub lng: f64,
    pub radius_m: i32,
}

#[derive(InputObject)]
pub struct CreateProjectInput {
    pub name: String,
    pub code: String,
    pub kind: ProjectKind,
    pub address: Option<String>,
    pub building_area: Option<Decimal>,
    pub households: Option<i32>,
    pub manager_id: Option<ID>,
    pub service_staff_ids: Option<Vec<ID>>,
    pub geofence: Option<GeofenceInput>,
}

#[derive(InputObject)]
pub struct UpdateProjectInput {
    pub project_id: ID,
    pub name: Option<String>,
    pub code: Option<String>,
    pub kind: Option<ProjectKind>,
    pub address: Option<String>,
    pub building_area: Option<Decimal>,
    pub households: Option<i32>,
    pub manager_id: Option<ID>,
    pub service_staff_ids: Option<Vec<ID>>,
    pub geofence: Option<GeofenceInput>,
}

#[derive(SimpleObject)]
pub struct ProjectPayload {
    pub project: Project,
}

#[derive(InputObject)]
pub struct CreateBuildingInput {
    pub project_id: ID,
    pub name: String,
    pub floors: Option<i32>,
}

#[derive(SimpleObject)]
pub struct BuildingPayload {
    pub building: Building,
}

#[derive(InputObject)]
pub struct CreateUnitInput {
    pub building_id: ID,
    pub name: String,
}

#[derive(SimpleObject)]
pub struct UnitPayload {
    pub unit: Unit,
}

#[derive(InputObject)]
pub struct CreateHouseInput {
    pub unit_id: ID,
    pub room_no: String,
    pub floor: i32,
    pub building_area: Decimal,
    pub indoor_area: Option<Decimal>,
    pub usage: Option<HouseUsage>,
    pub status: Option<HouseStatus>,
}

#[derive(InputObject)]
pub struct UpdateHouseInput {
    pub house_id: ID,
    pub room_no: Option<String>,
    pub floor: Option<i32>,
    pub building_area: Option<Decimal>,
    pub indoor_area: Option<Decimal>,
    pub usage: Option<HouseUsage>,
    pub status: Option<HouseStatus>,
}

#[derive(SimpleObject)]
pub struct HousePayload {
    pub house: House,
}

#[derive(InputObject)]
pub struct CreateParkingSpaceInput {
    pub project_id: ID,
    pub code: String,
    pub area: Option<Decimal>,
    pub owner_id: Option<ID>,
}

#[derive(SimpleObject)]
pub struct ParkingSpacePayload {
    pub parking_space: ParkingSpace,
}

#[derive(InputObject)]
pub struct HouseLinkInput {
    pub house_id: ID,
    pub relation: Relation,
}

#[derive(InputObject)]
pub struct RegisterOwnerInput {
    pub name: String,
    pub phone: String,
    /// 18-character resident ID-card number (GB 11643)
    pub id_card_number: Option<String>,
    #[graphql(default)]
    pub houses: Vec<HouseLinkInput>,
}

#[derive(SimpleObject)]
pub struct OwnerPayload {
    pub owner: Owner,
}

#[derive(InputObject)]
pub struct LinkOwnerHouseInput {
    pub owner_id: ID,
    pub house_id: ID,
    pub relation: Relation,
}

#[derive(InputObject)]
pub struct UnlinkOwnerHouseInput {
    pub owner_id: ID,
    pub house_id: ID,
}

#[derive(InputObject)]
pub struct ImportHousesInput {
    pub project_id: ID,
    /// CSV text with a header line: building,unit,room_no,floor,building_area,indoor_area,usage,status,
    /// owner_name,owner_phone,owner_id_card,relation (Chinese headers 楼栋,单元,房号… also work)
    pub csv: String,
}

#[derive(SimpleObject)]
pub struct ImportHousesPayload {
    pub buildings_created: u32,
    pub units_created: u32,
    pub houses_created: u32,
    pub owners_created: u32,
    pub owners_linked: u32,
}

#[derive(Default)]
pub struct OrgMutation;

/// The manager and team IDs of a project input.
fn project_people(
    manager_id: Option<&ID>,
    staff: Option<&[ID]>,
) -> Result<(Option<Uuid>, Option<Vec<Uuid>>), AppError> {
    Ok((
        manager_id.map(|m| parse_id("managerId", m)).transpose()?,
        staff.map(|s| crate::rbac::graphql::parse_ids("serviceStaffIds", s)).transpose()?,
    ))
}

#[Object]
impl OrgMutation {
    #[graphql(guard = "Perm::CompanyWrite")]
    async fn update_company(
        &self,
        ctx: &Context<'_>,
        input: UpdateCompanyInput,
    ) -> async_graphql::Result<CompanyPayload> {
        let actor = ctx.actor()?;
        let c = service::update_company(
            ctx.state(),
            &actor,
            CompanyPatch {
                name: input.name.as_deref(),
                address: input.address.as_deref(),
                phone: input.phone.as_deref(),
                credit_code: input.credit_code.as_deref(),
            },
        )
        .await?;
        Ok(CompanyPayload { company: Company(c) })
    }

    /// PNG or JPEG (checked by content), multipart upload.
    #[graphql(guard = "Perm::CompanyWrite")]
    async fn upload_company_logo(&self, ctx: &Context<'_>, file: Upload) -> async_graphql::Result<CompanyPayload> {
        let actor = ctx.actor()?;
        let max = ctx.state().config.limits.max_upload_bytes;
        let value = file.value(ctx).map_err(|_| {
            AppError::validation("file", Msg::new("无法读取上传的文件", "Cannot read the uploaded file"))
        })?;
        let mut bytes = Vec::new();
        value.into_read().take(max as u64 + 1).read_to_end(&mut bytes).map_err(|_| {
            AppError::validation("file", Msg::new("无法读取上传的文件", "Cannot read the uploaded file"))
        })?;
        let c = service::set_company_logo(ctx.state(), &actor, bytes).await?;
        Ok(CompanyPayload { company: Company(c) })
    }

    #[graphql(guard = "Perm::ProjectWrite")]
    async fn create_project(
        &self,
        ctx: &Context<'_>,
        input: CreateProjectInput,
    ) -> async_graphql::Result<ProjectPayload> {
        let actor = ctx.actor()?;
        let (manager_id, service_staff_ids) =
            project_people(input.manager_id.as_ref(), input.service_staff_ids.as_deref())?;
        let pi = ProjectInput {
            name: Some(&input.name),
            code: Some(&input.code),
            kind: Some(input.kind.code()),
            address: input.address.as_deref(),
            building_area: input.building_area,
            households: input.households,
            manager_id,
            service_staff_ids,
            geofence: input.geofence.as_ref().map(|g| (g.lat, g.lng, g.radius_m)),
        };
        let p = service::create_project(ctx.state(), &actor, pi).await?;
        Ok(ProjectPayload { project: Project(p) })
    }

    #[graphql(guard = "Perm::ProjectWrite")]
    async fn update_project(
        &self,
        ctx: &Context<'_>,
        input: UpdateProjectInput,
    ) -> async_graphql::Result<ProjectPayload> {
        let actor = ctx.actor()?;
        let (manager_id, service_staff_ids) =
            project_people(input.manager_id.as_ref(), input.service_staff_ids.as_deref())?;
        let pi = ProjectInput {
            name: input.name.as_deref(),
            code: input.code.as_deref(),
            kind: input.kind.map(ProjectKind::code),
            address: input.address.as_deref(),
            building_area: input.building_area,
            households: input.households,
            manager_id,
            service_staff_ids,
            geofence: input.geofence.as_ref().map(|g| (g.lat, g.lng, g.radius_m)),
        };
        let p = service::update_project(ctx.state(), &actor, parse_id("projectId", &input.project_id)?, pi).await?;
        Ok(ProjectPayload { project: Project(p) })
    }

    #[graphql(guard = "Perm::EstateWrite")]
    async fn create_building(
        &self,
        ctx: &Context<'_>,
        input: CreateBuildingInput,
    ) -> async_graphql::Result<BuildingPayload> {
        let actor = ctx.actor()?;
        let b = service::create_building(
            ctx.state(),
            &actor,
            parse_id("projectId", &input.project_id)?,
            &input.name,
            input.floors,
        )
        .await?;
        Ok(BuildingPayload { building: Building(b) })
    }

    #[graphql(guard = "Perm::EstateWrite")]
    async fn create_unit(&self, ctx: &Context<'_>, input: CreateUnitInput) -> async_graphql::Result<UnitPayload> {
        let actor = ctx.actor()?;
        let u =
            service::create_unit(ctx.state(), &actor, parse_id("buildingId", &input.building_id)?, &input.name).await?;
        Ok(UnitPayload { unit: Unit(u) })
    }

    #[graphql(guard = "Perm::EstateWrite")]
    async fn create_house(&self, ctx: &Context<'_>, input: CreateHouseInput) -> async_graphql::Result<HousePayload> {
        let actor = ctx.actor()?;
        let h = service::create_house(
            ctx.state(),
            &actor,
            parse_id("unitId", &input.unit_id)?,
            HouseInput {
                room_no: Some(&input.room_no),
                floor: Some(input.floor),
                building_area: Some(input.building_area),
                indoor_area: input.indoor_area,
                usage: input.usage.map(usage_code),
                status: input.status.map(status_code),
            },
        )
        .await?;
        Ok(HousePayload { house: House::from(h) })
    }

    #[graphql(guard = "Perm::EstateWrite")]
    async fn update_house(&self, ctx: &Context<'_>, input: UpdateHouseInput) -> async_graphql::Result<HousePayload> {
        let actor = ctx.actor()?;
        let h = service::update_house(
            ctx.state(),
            &actor,
            parse_id("houseId", &input.house_id)?,
            HouseInput {
                room_no: input.room_no.as_deref(),
                floor: input.floor,
                building_area: input.building_area,
                indoor_area: input.indoor_area,
                usage: input.usage.map(usage_code),
                status: input.status.map(status_code),
            },
        )
        .await?;
        Ok(HousePayload { house: House::from(h) })
    }

    #[graphql(guard = "Perm::EstateWrite")]
    async fn create_parking_space(
        &self,
        ctx: &Context<'_>,
        input: CreateParkingSpaceInput,
    ) -> async_graphql::Result<ParkingSpacePayload> {
        let actor = ctx.actor()?;
        let owner = input.owner_id.as_ref().map(|o| parse_id("ownerId", o)).transpose()?;
        let p = service::create_parking_space(
            ctx.state(),
            &actor,
            parse_id("projectId", &input.project_id)?,
            &input.code,
            input.area,
            owner,
        )
        .await?;
        Ok(ParkingSpacePayload { parking_space: ParkingSpace(p) })
    }

    /// 业主登记: the owner can then activate the app with an SMS code.
    #[graphql(guard = "Perm::OwnerWrite")]
    async fn register_owner(
        &self,
        ctx: &Context<'_>,
        input: RegisterOwnerInput,
    ) -> async_graphql::Result<OwnerPayload> {
        let actor = ctx.actor()?;
        let houses = input
            .houses
            .iter()
            .map(|h| Ok((parse_id("houses.houseId", &h.house_id)?, h.relation.code().to_owned())))
            .collect::<Result<Vec<_>, AppError>>()?;
        let o = service::register_owner(
            ctx.state(),
            &actor,
            OwnerInput {
                name: &input.name,
                phone: &input.phone,
                id_card_number: input.id_card_number.as_deref(),
                houses,
            },
        )
        .await?;
        Ok(OwnerPayload { owner: Owner(service::view_owner(ctx.state(), &actor, o)) })
    }

    #[graphql(guard = "Perm::OwnerWrite")]
    async fn link_owner_house(
        &self,
        ctx: &Context<'_>,
        input: LinkOwnerHouseInput,
    ) -> async_graphql::Result<OwnerPayload> {
        let actor = ctx.actor()?;
        let o = service::link_house(
            ctx.state(),
            &actor,
            parse_id("ownerId", &input.owner_id)?,
            parse_id("houseId", &input.house_id)?,
            input.relation.code(),
        )
        .await?;
        Ok(OwnerPayload { owner: Owner(service::view_owner(ctx.state(), &actor, o)) })
    }

    #[graphql(guard = "Perm::OwnerWrite")]
    async fn unlink_owner_house(
        &self,
        ctx: &Context<'_>,
        input: UnlinkOwnerHouseInput,
    ) -> async_graphql::Result<OwnerPayload> {
        let actor = ctx.actor()?;
        let o = service::unlink_house(
            ctx.state(),
            &actor,
            parse_id("ownerId", &input.owner_id)?,
            parse_id("houseId", &input.house_id)?,
        )
        .await?;
        Ok(OwnerPayload { owner: Owner(service::view_owner(ctx.state(), &actor, o)) })
    }

    /// All lines or none: each bad line is listed in `extensions.details.errors`.
    #[graphql(guard = "Perm::EstateImport")]
    async fn import_houses(
        &self,
        ctx: &Context<'_>,
        input: ImportHousesInput,
    ) -> async_graphql::Result<ImportHousesPayload> {
        let actor = ctx.actor()?;
        let s =
            super::import::import_houses(ctx.state(), &actor, parse_id("projectId", &input.project_id)?, &input.csv)
                .await?;
        Ok(ImportHousesPayload {
            buildings_created: s.buildings_created as u32,
            units_created: s.units_created as u32,
            houses_created: s.houses_created as u32,
            owners_created: s.owners_created as u32,
            owners_linked: s.owners_linked as u32,
        })
    }
}
