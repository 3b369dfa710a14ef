//! Equipment ledger API.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::NaiveDate;

use super::model;
use super::service::{self, DeviceInput, DeviceQuery, QR_PREFIX};
use crate::graphql::{Conn, CtxExt, Page};
use crate::rbac::graphql::parse_id;
use crate::rbac::model::Perm;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCategory {
    /// 电梯
    Elevator,
    /// 门禁
    AccessDoor,
    WaterMeter,
    ElectricityMeter,
    GasMeter,
    /// 消防设备
    FireEquipment,
    WaterPump,
    Camera,
    Other,
}

const CATEGORY_CODES: &[(DeviceCategory, &str)] = &[
    (DeviceCategory::Elevator, "elevator"),
    (DeviceCategory::AccessDoor, "access_door"),
    (DeviceCategory::WaterMeter, "water_meter"),
    (DeviceCategory::ElectricityMeter, "electricity_meter"),
    (DeviceCategory::GasMeter, "gas_meter"),
    (DeviceCategory::FireEquipment, "fire_equipment"),
    (DeviceCategory::WaterPump, "water_pump"),
    (DeviceCategory::Camera, "camera"),
    (DeviceCategory::Other, "other"),
];

impl DeviceCategory {
    fn code(self) -> &'static str {
        CATEGORY_CODES.iter().find(|(c, _)| *c == self).map(|(_, s)| *s).unwrap_or("other")
    }
    fn of(s: &str) -> Self {
        CATEGORY_CODES.iter().find(|(_, c)| *c == s).map(|(c, _)| *c).unwrap_or(DeviceCategory::Other)
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// 在用
    InUse,
    /// 备用
    Standby,
    /// 维修中
    UnderRepair,
    /// 报废
    Scrapped,
}

impl DeviceStatus {
    fn code(self) -> &'static str {
        match self {
            DeviceStatus::InUse => "in_use",
            DeviceStatus::Standby => "standby",
            DeviceStatus::UnderRepair => "under_repair",
            DeviceStatus::Scrapped => "scrapped",
        }
    }
    fn of(s: &str) -> Self {
        match s {
            "standby" => DeviceStatus::Standby,
            "under_repair" => DeviceStatus::UnderRepair,
            "scrapped" => DeviceStatus::Scrapped,
            _ => DeviceStatus::InUse,
        }
    }
}

pub struct Device(model::Device);

#[Object]
impl Device {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn project_id(&self) -> ID {
        ID(self.0.project_id.to_string())
    }
    /// unique in the company; printed on the QR label
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn category(&self) -> DeviceCategory {
        DeviceCategory::of(&self.0.category)
    }
    async fn model(&self) -> &str {
        &self.0.model
    }
    async fn specification(&self) -> &str {
        &self.0.specification
    }
    async fn manufacturer(&self) -> &str {
        &self.0.manufacturer
    }
    async fn purchase_date(&self) -> Option<NaiveDate> {
        self.0.purchase_date
    }
    async fn install_date(&self) -> Option<NaiveDate> {
        self.0.install_date
    }
    async fn building_id(&self) -> Option<ID> {
        self.0.building_id.map(|b| ID(b.to_string()))
    }
    async fn unit_id(&self) -> Option<ID> {
        self.0.unit_id.map(|u| ID(u.to_string()))
    }
    async fn location(&self) -> &str {
        &self.0.location
    }
    async fn warranty_expiry(&self) -> Option<NaiveDate> {
        self.0.warranty_expiry
    }
    /// still under warranty today (Shanghai)
    async fn under_warranty(&self, ctx: &Context<'_>) -> bool {
        let today = ctx.state().clock.now().with_timezone(&crate::clock::BUSINESS_TZ).date_naive();
        self.0.warranty_expiry.is_some_and(|w| w >= today)
    }
    async fn status(&self) -> DeviceStatus {
        DeviceStatus::of(&self.0.status)
    }
    async fn responsible_user_id(&self) -> Option<ID> {
        self.0.responsible_user_id.map(|u| ID(u.to_string()))
    }
    /// category attributes (elevator: elevatorNo, floorsServed, ratedSpeed, ratedLoadKg,
    /// registrationCode, nextInspection; access door: doorLocation, controlMode; meters:
    /// meterNo, multiplier, houseId, initialReading; fire equipment: fireType,
    /// pressureMinMpa, pressureMaxMpa, nextCheck)
    async fn attributes(&self) -> Json<serde_json::Value> {
        Json(self.0.attributes.clone())
    }
    /// the text of the QR label the technician app scans
    async fn qr_payload(&self) -> String {
        format!("{QR_PREFIX}{}", self.0.code)
    }
}

#[derive(Default)]
pub struct EquipmentQuery;

#[Object]
impl EquipmentQuery {
    /// 设备台账: devices within the caller's projects.
    #[graphql(guard = "Perm::EquipmentRead")]
    #[allow(clippy::too_many_arguments)]
    async fn devices(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        category: Option<DeviceCategory>,
        status: Option<DeviceStatus>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Device>> {
        let actor = ctx.actor()?;
        let page = Page::new(ctx, first, after)?;
        let q = DeviceQuery {
            project_id: project_id.as_ref().map(|p| parse_id("projectId", p)).transpose()?,
            category: category.map(|c| c.code().to_owned()),
            status: status.map(|s| s.code().to_owned()),
            search,
        };
        let rows = service::devices(ctx.state(), &actor, q, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |d| d.id, Device))
    }

    #[graphql(guard = "Perm::EquipmentRead")]
    async fn device(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Device> {
        let actor = ctx.actor()?;
        Ok(Device(service::device(ctx.state(), &actor, parse_id("id", &id)?).await?))
    }

    /// Opens a device from its code or its scanned QR payload.
    #[graphql(guard = "Perm::EquipmentRead")]
    async fn device_by_code(&self, ctx: &Context<'_>, code: String) -> async_graphql::Result<Device> {
        let actor = ctx.actor()?;
        Ok(Device(service::by_code(ctx.state(), &actor, &code).await?))
    }
}

#[derive(InputObject)]
pub struct CreateDeviceInput {
    pub project_id: ID,
    pub code: String,
    pub name: String,
    pub category: DeviceCategory,
    pub model: Option<String>,
    pub specification: Option<String>,
    pub manufacturer: Option<String>,
    pub purchase_date: Option<NaiveDate>,
    pub install_date: Option<NaiveDate>,
    pub building_id: Option<ID>,
    pub unit_id: Option<ID>,
    pub location: Option<String>,
    pub warranty_expiry: Option<NaiveDate>,
    pub status: Option<DeviceStatus>,
    pub responsible_user_id: Option<ID>,
    pub attributes: Option<Json<serde_json::Value>>,
}

#[derive(InputObject)]
pub struct UpdateDeviceInput {
    pub device_id: ID,
    pub name: Option<String>,
    pub model: Option<String>,
    pub specification: Option<String>,
    pub manufacturer: Option<String>,
    pub purchase_date: Option<NaiveDate>,
    pub install_date: Option<NaiveDate>,
    pub building_id: Option<ID>,
    pub unit_id: Option<ID>,
    pub location: Option<String>,
    pub warranty_expiry: Option<NaiveDate>,
    pub status: Option<DeviceStatus>,
    pub responsible_user_id: Option<ID>,
    pub attributes: Option<Json<serde_json::Value>>,
}

#[derive(SimpleObject)]
pub struct DevicePayload {
    pub device: Device,
}

#[derive(InputObject)]
pub struct ImportDevicesInput {
    pub project_id: ID,
    /// CSV with a header: code,name,category,model,specification,manufacturer,purchase_date,
    /// install_date,location,warranty_expiry,status,attributes (a JSON object)
    pub csv: String,
}

#[derive(SimpleObject)]
pub struct ImportDevicesPayload {
    pub devices_created: u32,
}

fn opt_id(field: &'static str, id: &Option<ID>) -> Result<Option<uuid::Uuid>, crate::error::AppError> {
    id.as_ref().map(|i| parse_id(field, i)).transpose()
}

#[derive(Default)]
pub struct EquipmentMutation;

#[Object]
impl EquipmentMutation {
    #[graphql(guard = "Perm::EquipmentWrite")]
    async fn create_device(&self, ctx: &Context<'_>, input: CreateDeviceInput) -> async_graphql::Result<DevicePayload> {
        let actor = ctx.actor()?;
        let d = service::create(
            ctx.state(),
            &actor,
            DeviceInput {
                project_id: Some(parse_id("projectId", &input.project_id)?),
                code: Some(input.code),
                name: Some(input.name),
                category: Some(input.category.code().to_owned()),
                model: input.model,
                specification: input.specification,
                manufacturer: input.manufacturer,
                purchase_date: input.purchase_date,
                install_date: input.install_date,
                building_id: opt_id("buildingId", &input.building_id)?,
                unit_id: opt_id("unitId", &input.unit_id)?,
                location: input.location,
                warranty_expiry: input.warranty_expiry,
                status: input.status.map(|s| s.code().to_owned()),
                responsible_user_id: opt_id("responsibleUserId", &input.responsible_user_id)?,
                attributes: input.attributes.map(|j| j.0),
            },
        )
        .await?;
        Ok(DevicePayload { device: Device(d) })
    }

    #[graphql(guard = "Perm::EquipmentWrite")]
    async fn update_device(&self, ctx: &Context<'_>, input: UpdateDeviceInput) -> async_graphql::Result<DevicePayload> {
        let actor = ctx.actor()?;
        let d = service::update(
            ctx.state(),
            &actor,
            parse_id("deviceId", &input.device_id)?,
            DeviceInput {
                name: input.name,
                model: input.model,
                specification: input.specification,
                manufacturer: input.manufacturer,
                purchase_date: input.purchase_date,
                install_date: input.install_date,
                building_id: opt_id("buildingId", &input.building_id)?,
                unit_id: opt_id("unitId", &input.unit_id)?,
                location: input.location,
                warranty_expiry: input.warranty_expiry,
                status: input.status.map(|s| s.code().to_owned()),
                responsible_user_id: opt_id("responsibleUserId", &input.responsible_user_id)?,
                attributes: input.attributes.map(|j| j.0),
                ..DeviceInput::default()
            },
        )
        .await?;
        Ok(DevicePayload { device: Device(d) })
    }

    /// All lines or none: each bad line is listed in `extensions.details.errors`.
    #[graphql(guard = "Perm::EquipmentWrite")]
    async fn import_devices(
        &self,
        ctx: &Context<'_>,
        input: ImportDevicesInput,
    ) -> async_graphql::Result<ImportDevicesPayload> {
        let actor = ctx.actor()?;
        let n = service::import(ctx.state(), &actor, parse_id("projectId", &input.project_id)?, &input.csv).await?;
        Ok(ImportDevicesPayload { devices_created: n as u32 })
    }
}
