//! Company profile and projects: types, the team loader, queries and mutations.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject, Upload};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model;
use super::service::{self, CompanyPatch, ProjectInput};
use crate::kit::error::{AppError, AppResult};
use crate::kit::gql::{Conn, StateExt, group_by, load_one, parse_id, parse_ids, parse_opt_id, read_upload, to_id};
use crate::kit::pagination::Page;
use crate::kit::state::AppState;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

// ---- types ----------------------------------------------------------------------------

/// 项目类型 what kind of property a project is.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::ProjectKind")]
pub enum ProjectKind {
    /// 住宅小区 a residential estate
    Residential,
    /// 写字楼 an office building
    Office,
    /// 商业综合体 a commercial complex
    Commercial,
    /// anything else
    Other,
}

/// 企业 the caller's property-management company.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Company {
    /// the company's id
    pub id: ID,
    /// the registered name
    pub name: String,
    /// short code unique on the server, set when the company is created: device topics and
    /// broker usernames start with it (`wuye/JCWY/JC-ELV-11/telemetry`)
    pub code: String,
    /// the office address
    pub address: String,
    /// the office phone: a landline (028-12345678) or a mobile number
    pub phone: String,
    /// 统一社会信用代码 unified social credit code (GB 32100)
    pub credit_code: Option<String>,
    #[graphql(skip)]
    logo_key: Option<String>,
}

impl From<model::Company> for Company {
    fn from(c: model::Company) -> Self {
        Company {
            id: to_id(c.id),
            name: c.name,
            code: c.code,
            address: c.address,
            phone: c.phone,
            credit_code: c.credit_code,
            logo_key: c.logo_key,
        }
    }
}

#[ComplexObject]
impl Company {
    /// where the logo image is served (PNG or JPEG), if one was uploaded
    async fn logo_url(&self, ctx: &Context<'_>) -> Option<String> {
        let base = &ctx.state().config.files_base_url;
        self.logo_key.as_ref().map(|k| format!("{}/{k}", base.trim_end_matches('/')))
    }
}

/// 电子围栏 the circle staff must be inside to clock in.
#[derive(SimpleObject)]
pub struct Geofence {
    /// latitude of the centre, degrees (as the phones report it)
    pub lat: f64,
    /// longitude of the centre, degrees
    pub lng: f64,
    /// radius in metres (10 to 5000)
    pub radius_m: i32,
}

/// 项目 a managed property: residential estate, office building, commercial complex.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Project {
    /// the project's id
    pub id: ID,
    /// the project's name
    pub name: String,
    /// short code, unique in the company, upper case (JCHY)
    pub code: String,
    /// the street address
    pub address: String,
    /// what kind of property it is
    pub kind: ProjectKind,
    /// 总建筑面积 total building area, m²
    pub building_area: Option<Decimal>,
    /// 总户数 number of households
    pub households: Option<i32>,
    /// 项目经理 the manager's staff account
    pub manager_id: Option<ID>,
    /// the attendance geofence, if set
    pub geofence: Option<Geofence>,
    /// when the project was created
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    project_id: Uuid,
}

impl From<model::Project> for Project {
    fn from(p: model::Project) -> Self {
        let geofence = match (p.geofence_lat, p.geofence_lng, p.geofence_radius_m) {
            (Some(lat), Some(lng), Some(radius_m)) => Some(Geofence { lat, lng, radius_m }),
            _ => None,
        };
        Project {
            id: to_id(p.id),
            name: p.name,
            code: p.code,
            address: p.address,
            kind: p.kind.into(),
            building_area: p.building_area,
            households: p.households,
            manager_id: p.manager_id.map(to_id),
            geofence,
            created_at: p.created_at,
            project_id: p.id,
        }
    }
}

#[ComplexObject]
impl Project {
    /// 客服团队 the staff accounts of the project's customer-service team
    async fn service_staff_ids(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ID>> {
        let ids = load_one::<TeamLoader>(ctx, self.project_id).await?;
        Ok(ids.unwrap_or_default().into_iter().map(to_id).collect())
    }
}

// ---- loaders --------------------------------------------------------------------------

/// Customer-service teams per project, batched per request.
pub struct TeamLoader(pub AppState);

impl From<AppState> for TeamLoader {
    fn from(s: AppState) -> Self {
        TeamLoader(s)
    }
}

impl Loader<Uuid> for TeamLoader {
    type Value = Vec<Uuid>;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::service_staff(&self.0, keys).await.map_err(|e| e.to_string())?;
        Ok(group_by(rows, |(p, _)| *p).into_iter().map(|(p, v)| (p, v.into_iter().map(|(_, u)| u).collect())).collect())
    }
}

// ---- reads and payloads ---------------------------------------------------------------

pub async fn load_company(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Company> {
    let actor = ctx.actor()?;
    let c = service::company(ctx.state(), &actor).await?;
    if c.id != id {
        return Err(AppError::not_found("company").into());
    }
    Ok(c.into())
}

/// A project as `project:read` (or, to read a change back, `project:write`) shows it.
pub async fn load_project(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Project> {
    let actor = ctx.actor()?;
    let perm = if actor.has(Perm::ProjectRead) { Perm::ProjectRead } else { Perm::ProjectWrite };
    Ok(service::project(ctx.state(), &actor, perm, id).await?.into())
}

crate::object_payload!(
    /// The company a mutation changed.
    CompanyPayload, company: Company, load_company, "the company as it is now"
);
crate::object_payload!(
    /// The project a mutation created or changed.
    ProjectPayload, project: Project, load_project, "the project as it is now"
);

// ---- queries --------------------------------------------------------------------------

/// A published contact of a property office.
#[derive(SimpleObject)]
pub struct OfficeContact {
    /// MANAGER or CUSTOMER_SERVICE
    pub role: String,
    /// their name
    pub name: String,
    /// their phone, if they have one
    pub phone: Option<String>,
}

/// 物业服务中心 the office serving one of the caller's estates.
#[derive(SimpleObject)]
pub struct PropertyOffice {
    /// the estate
    pub project_id: ID,
    /// the estate's name
    pub project_name: String,
    /// the estate's address
    pub project_address: String,
    /// the estate's service phone (empty when not set)
    pub service_phone: String,
    /// the manager and customer-service team, when the company publishes them
    pub contacts: Vec<OfficeContact>,
}

/// The property company as its owners see it.
#[derive(SimpleObject)]
pub struct MyPropertyCompany {
    /// the company's name
    pub name: String,
    /// its address
    pub address: String,
    /// its phone
    pub phone: String,
    /// the offices of the caller's estates
    pub offices: Vec<PropertyOffice>,
}

/// A project's office card.
#[derive(InputObject)]
pub struct SetPropertyOfficeInput {
    /// the project
    pub project_id: ID,
    /// the estate's service phone (up to 20 digits, spaces, +, - or brackets; empty: none)
    pub service_phone: String,
    /// whether owners see the project's manager and customer-service team with their phones
    pub publish_contacts: bool,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// The project whose office card changed.
#[derive(SimpleObject)]
pub struct SetPropertyOfficePayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// the project
    pub project_id: ID,
}

#[derive(Default)]
pub struct CompanyQuery;

#[Object]
impl CompanyQuery {
    /// 物业服务中心 (owner app, `self:house`): the company and the office of each estate
    /// the caller lives in.
    #[graphql(guard = "Perm::SelfHouse")]
    async fn my_property_company(&self, ctx: &Context<'_>) -> async_graphql::Result<MyPropertyCompany> {
        let actor = ctx.actor()?;
        let (c, offices) = service::my_offices(ctx.state(), &actor).await?;
        Ok(MyPropertyCompany {
            name: c.name,
            address: c.address,
            phone: c.phone,
            offices: offices
                .into_iter()
                .map(|o| PropertyOffice {
                    project_id: to_id(o.project_id),
                    project_name: o.project_name,
                    project_address: o.project_address,
                    service_phone: o.service_phone,
                    contacts: o
                        .contacts
                        .into_iter()
                        .map(|c| OfficeContact {
                            role: if c.role == "manager" { "MANAGER".into() } else { "CUSTOMER_SERVICE".into() },
                            name: c.name,
                            phone: c.phone,
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// The caller's company (`company:read`).
    #[graphql(guard = "Perm::CompanyRead")]
    async fn company(&self, ctx: &Context<'_>) -> async_graphql::Result<Company> {
        let actor = ctx.actor()?;
        Ok(service::company(ctx.state(), &actor).await?.into())
    }

    /// Projects the caller may see (`project:read`), in creation order.
    #[graphql(guard = "Perm::ProjectRead")]
    async fn projects(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "part of the name or code, taken literally")] search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Project>> {
        let actor = ctx.actor()?;
        let page = Page::<Uuid>::new(ctx, first, after)?;
        let rows = service::projects(ctx.state(), &actor, search.as_deref(), page.after, page.fetch()).await?;
        Ok(page.connection(rows, |p| p.id, Project::from))
    }

    /// One project within the caller's `project:read` scope.
    #[graphql(guard = "Perm::ProjectRead")]
    async fn project(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Project> {
        load_project(ctx, parse_id("id", &id)?).await
    }
}

// ---- mutations ------------------------------------------------------------------------

/// Changes to the company profile; fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateCompanyInput {
    /// a new registered name
    pub name: Option<String>,
    /// a new office address; an empty string clears it
    pub address: Option<String>,
    /// a new office phone (landline or mobile); an empty string clears it
    pub phone: Option<String>,
    /// 统一社会信用代码 (GB 32100 check character)
    pub credit_code: Option<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A new company logo.
#[derive(InputObject)]
pub struct UploadCompanyLogoInput {
    /// a PNG or JPEG image (checked by content), as a multipart upload
    pub file: Upload,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 电子围栏 a circle staff must be inside to clock in.
#[derive(InputObject)]
pub struct GeofenceInput {
    /// latitude of the centre, degrees (-90 to 90)
    pub lat: f64,
    /// longitude of the centre, degrees (-180 to 180)
    pub lng: f64,
    /// radius in metres (10 to 5000)
    pub radius_m: i32,
}

/// A new project.
#[derive(InputObject)]
pub struct CreateProjectInput {
    /// the project's name
    pub name: String,
    /// 2-20 letters, digits or dashes, unique in the company (stored upper case)
    pub code: String,
    /// what kind of property it is
    pub kind: ProjectKind,
    /// the street address
    pub address: Option<String>,
    /// 总建筑面积 m², at most 2 decimals
    pub building_area: Option<Decimal>,
    /// 总户数 number of households (0 to 1,000,000)
    pub households: Option<i32>,
    /// the manager: a staff account of the company
    pub manager_id: Option<ID>,
    /// the customer-service team: staff accounts of the company
    pub service_staff_ids: Option<Vec<ID>>,
    /// the attendance geofence
    pub geofence: Option<GeofenceInput>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// Changes to a project; fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateProjectInput {
    /// the project to change
    pub project_id: ID,
    /// a new name
    pub name: Option<String>,
    /// a new code: 2-20 letters, digits or dashes
    pub code: Option<String>,
    /// a new kind
    pub kind: Option<ProjectKind>,
    /// a new address; an empty string clears it
    pub address: Option<String>,
    /// 总建筑面积 m², at most 2 decimals
    pub building_area: Option<Decimal>,
    /// 总户数 number of households (0 to 1,000,000)
    pub households: Option<i32>,
    /// a new manager: a staff account of the company
    pub manager_id: Option<ID>,
    /// the complete new customer-service team
    pub service_staff_ids: Option<Vec<ID>>,
    /// a new attendance geofence
    pub geofence: Option<GeofenceInput>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// The manager and team ids of a project input.
fn project_people(manager_id: Option<&ID>, staff: Option<&[ID]>) -> AppResult<(Option<Uuid>, Option<Vec<Uuid>>)> {
    Ok((parse_opt_id("managerId", manager_id)?, staff.map(|s| parse_ids("serviceStaffIds", s)).transpose()?))
}

#[derive(Default)]
pub struct CompanyMutation;

#[Object]
impl CompanyMutation {
    /// 物业服务中心 a project's office card as owners see it (`project:write` over it).
    #[graphql(guard = "Perm::ProjectWrite")]
    async fn set_property_office(
        &self,
        ctx: &Context<'_>,
        input: SetPropertyOfficeInput,
    ) -> async_graphql::Result<SetPropertyOfficePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let project = parse_id("projectId", &input.project_id)?;
        let id =
            service::set_office(ctx.state(), &actor, &retry, project, &input.service_phone, input.publish_contacts)
                .await?;
        Ok(SetPropertyOfficePayload { client_mutation_id: input.client_mutation_id, project_id: to_id(id) })
    }

    /// Changes the company profile (company-wide `company:write`).
    #[graphql(guard = "Perm::CompanyWrite")]
    async fn update_company(
        &self,
        ctx: &Context<'_>,
        input: UpdateCompanyInput,
    ) -> async_graphql::Result<CompanyPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let patch = CompanyPatch {
            name: input.name.as_deref(),
            address: input.address.as_deref(),
            phone: input.phone.as_deref(),
            credit_code: input.credit_code.as_deref(),
        };
        let id = service::update_company(ctx.state(), &actor, &retry, patch).await?;
        Ok(CompanyPayload::new(input.client_mutation_id, id))
    }

    /// Replaces the company logo: PNG or JPEG (checked by content), multipart upload
    /// (company-wide `company:write`).
    #[graphql(guard = "Perm::CompanyWrite")]
    async fn upload_company_logo(
        &self,
        ctx: &Context<'_>,
        input: UploadCompanyLogoInput,
    ) -> async_graphql::Result<CompanyPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let bytes = read_upload(ctx, &input.file)?;
        let id = service::set_company_logo(ctx.state(), &actor, &retry, bytes).await?;
        Ok(CompanyPayload::new(input.client_mutation_id, id))
    }

    /// A new project with its manager, team and geofence (company-wide `project:write`).
    #[graphql(guard = "Perm::ProjectWrite")]
    async fn create_project(
        &self,
        ctx: &Context<'_>,
        input: CreateProjectInput,
    ) -> async_graphql::Result<ProjectPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let (manager_id, service_staff_ids) =
            project_people(input.manager_id.as_ref(), input.service_staff_ids.as_deref())?;
        let pi = ProjectInput {
            name: Some(&input.name),
            code: Some(&input.code),
            kind: Some(input.kind.into()),
            address: input.address.as_deref(),
            building_area: input.building_area,
            households: input.households,
            manager_id,
            service_staff_ids,
            geofence: input.geofence.as_ref().map(|g| (g.lat, g.lng, g.radius_m)),
        };
        let id = service::create_project(ctx.state(), &actor, &retry, pi).await?;
        Ok(ProjectPayload::new(input.client_mutation_id, id))
    }

    /// Changes a project within the caller's `project:write` scope.
    #[graphql(guard = "Perm::ProjectWrite")]
    async fn update_project(
        &self,
        ctx: &Context<'_>,
        input: UpdateProjectInput,
    ) -> async_graphql::Result<ProjectPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let project_id = parse_id("projectId", &input.project_id)?;
        let (manager_id, service_staff_ids) =
            project_people(input.manager_id.as_ref(), input.service_staff_ids.as_deref())?;
        let pi = ProjectInput {
            name: input.name.as_deref(),
            code: input.code.as_deref(),
            kind: input.kind.map(Into::into),
            address: input.address.as_deref(),
            building_area: input.building_area,
            households: input.households,
            manager_id,
            service_staff_ids,
            geofence: input.geofence.as_ref().map(|g| (g.lat, g.lng, g.radius_m)),
        };
        let id = service::update_project(ctx.state(), &actor, &retry, project_id, pi).await?;
        Ok(ProjectPayload::new(input.client_mutation_id, id))
    }
}
