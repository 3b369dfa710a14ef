//! Equipment ledger API: devices, their QR lookup, creation, changes and CSV import.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::model;
use super::service::{self, DeviceInput, DeviceQuery};
use crate::kit::gql::{Conn, StateExt, parse_id, parse_opt_id, to_id};
use crate::kit::pagination::Page;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

/// 设备类别 what kind of device it is; decides its attributes, commands and alarm rules.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::DeviceCategory")]
pub enum DeviceCategory {
    /// 电梯 elevator
    Elevator,
    /// 门禁 access-controlled door
    AccessDoor,
    /// 水表 water meter (reports a cumulative `reading` in m³)
    WaterMeter,
    /// 电表 electricity meter (reports a cumulative `reading` in kWh)
    ElectricityMeter,
    /// 燃气表 gas meter (reports a cumulative `reading` in m³)
    GasMeter,
    /// 消防设备 fire equipment (extinguishers, hydrants, pipe pressure)
    FireEquipment,
    /// 水泵 water pump
    WaterPump,
    /// 摄像头 camera
    Camera,
    /// 其他 anything else
    Other,
}

/// 设备状态 where a device stands in its life.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::DeviceStatus")]
pub enum DeviceStatus {
    /// 在用 in service
    InUse,
    /// 备用 on standby
    Standby,
    /// 维修中 under repair (shown as maintenance on the dashboard)
    UnderRepair,
    /// 报废 scrapped (left out of dashboards and meter readings)
    Scrapped,
}

/// 重要程度 how much the estate depends on a device; orders task lists and the dispatch
/// queue (critical first).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Importance")]
pub enum DeviceImportance {
    /// 关键 a failure stops people (elevators, fire pumps)
    Critical,
    /// 一般
    Normal,
    /// 次要
    Low,
}

/// 设备 one device of the ledger.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Device {
    /// the device's id
    pub id: ID,
    /// the project it belongs to
    pub project_id: ID,
    /// unique in the company; printed on the QR label and used in MQTT topics
    pub code: String,
    /// the name users see
    pub name: String,
    /// what kind of device it is
    pub category: DeviceCategory,
    /// model (型号)
    pub model: String,
    /// specification (规格)
    pub specification: String,
    /// manufacturer (生产厂家)
    pub manufacturer: String,
    /// when it was bought
    pub purchase_date: Option<NaiveDate>,
    /// when it was installed
    pub install_date: Option<NaiveDate>,
    /// the building it is in, if any
    pub building_id: Option<ID>,
    /// the unit it is in, if any
    pub unit_id: Option<ID>,
    /// where it is, in words (机房, B2 泵房 …)
    pub location: String,
    /// the last day of its warranty
    pub warranty_expiry: Option<NaiveDate>,
    /// where it stands in its life
    pub status: DeviceStatus,
    /// how much the estate depends on it
    pub importance: DeviceImportance,
    /// the member of staff responsible for it
    pub responsible_user_id: Option<ID>,
    /// the house a meter measures (from `attributes.houseId`)
    pub house_id: Option<ID>,
    /// category attributes (elevator: elevatorNo, floorsServed, ratedSpeed in m/s, ratedLoadKg,
    /// registrationCode, nextInspection; access door: doorLocation, controlMode (card, face,
    /// qr, remote); meters: meterNo, multiplier, houseId, initialReading; fire equipment:
    /// fireType, pressureMinMpa, pressureMaxMpa (MPa), nextCheck)
    pub attributes: Json<serde_json::Value>,
    /// the text of the QR label the technician app scans
    pub qr_payload: String,
    /// when it was entered in the ledger
    pub created_at: DateTime<Utc>,
    /// its own broker account (`{companyCode}/{projectCode}/{deviceCode}`), once
    /// `provisionDeviceCredentials` created one
    pub broker_username: Option<String>,
    /// when its broker password was last set
    pub broker_provisioned_at: Option<DateTime<Utc>>,
}

impl From<model::Device> for Device {
    fn from(d: model::Device) -> Self {
        Device {
            id: to_id(d.id),
            project_id: to_id(d.project_id),
            qr_payload: d.qr_payload(),
            code: d.code,
            name: d.name,
            category: d.category.into(),
            model: d.model,
            specification: d.specification,
            manufacturer: d.manufacturer,
            purchase_date: d.purchase_date,
            install_date: d.install_date,
            building_id: d.building_id.map(to_id),
            unit_id: d.unit_id.map(to_id),
            location: d.location,
            warranty_expiry: d.warranty_expiry,
            status: d.status.into(),
            importance: d.importance.into(),
            responsible_user_id: d.responsible_user_id.map(to_id),
            house_id: d.house_id.map(to_id),
            attributes: Json(d.attributes),
            created_at: d.created_at,
            broker_username: d.broker_username,
            broker_provisioned_at: d.broker_provisioned_at,
        }
    }
}

#[ComplexObject]
impl Device {
    /// still under warranty today (Shanghai)
    async fn under_warranty(&self, ctx: &Context<'_>) -> bool {
        let today = ctx.state().clock.now().with_timezone(&crate::kit::clock::BUSINESS_TZ).date_naive();
        self.warranty_expiry.is_some_and(|w| w >= today)
    }
}

pub async fn load_device(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Device> {
    let actor = ctx.actor()?;
    Ok(service::device(ctx.state(), &actor, id).await?.into())
}

crate::object_payload!(
    /// The device a ledger mutation created or changed.
    DevicePayload, device: Device, load_device, "the device as it is now"
);

#[derive(Default)]
pub struct EquipmentQuery;

#[Object]
impl EquipmentQuery {
    /// 设备台账: devices within the caller's projects (`equipment:read`), in id order.
    #[graphql(guard = "Perm::EquipmentRead")]
    #[allow(clippy::too_many_arguments)]
    async fn devices(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "only this project")] project_id: Option<ID>,
        #[graphql(desc = "only this category")] category: Option<DeviceCategory>,
        #[graphql(desc = "only this status")] status: Option<DeviceStatus>,
        #[graphql(desc = "part of the code, name or location")] search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Device>> {
        let actor = ctx.actor()?;
        let page = Page::new(ctx, first, after)?;
        let q = DeviceQuery {
            project_id: parse_opt_id("projectId", project_id.as_ref())?,
            category: category.map(Into::into),
            status: status.map(Into::into),
            search,
        };
        let rows = service::devices(ctx.state(), &actor, q, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |d| d.id, Device::from))
    }

    /// A device of the caller's projects (`equipment:read`).
    #[graphql(guard = "Perm::EquipmentRead")]
    async fn device(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Device> {
        load_device(ctx, parse_id("id", &id)?).await
    }

    /// Opens a device from its code or its scanned QR payload (`equipment:read`).
    #[graphql(guard = "Perm::EquipmentRead")]
    async fn device_by_code(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "the device code, or the QR label's text")] code: String,
    ) -> async_graphql::Result<Device> {
        let actor = ctx.actor()?;
        Ok(service::by_code(ctx.state(), &actor, &code).await?.into())
    }
}

/// A device to enter in the ledger.
#[derive(InputObject)]
pub struct CreateDeviceInput {
    /// the project the device belongs to (within the caller's `equipment:write`)
    pub project_id: ID,
    /// 2-40 letters, digits, `-` or `_`; upper-cased; unique in the company
    pub code: String,
    /// the name users see (up to 100 characters)
    pub name: String,
    /// what kind of device it is; fixed once created
    pub category: DeviceCategory,
    /// model (型号), up to 200 characters
    pub model: Option<String>,
    /// specification (规格), up to 200 characters
    pub specification: Option<String>,
    /// manufacturer (生产厂家), up to 200 characters
    pub manufacturer: Option<String>,
    /// when it was bought
    pub purchase_date: Option<NaiveDate>,
    /// when it was installed (not before it was bought)
    pub install_date: Option<NaiveDate>,
    /// a building of the project
    pub building_id: Option<ID>,
    /// a unit of the project (and of the building, when one is given)
    pub unit_id: Option<ID>,
    /// where it is, in words
    pub location: Option<String>,
    /// the last day of its warranty
    pub warranty_expiry: Option<NaiveDate>,
    /// default IN_USE
    pub status: Option<DeviceStatus>,
    /// default NORMAL
    pub importance: Option<DeviceImportance>,
    /// a member of staff of the company
    pub responsible_user_id: Option<ID>,
    /// the category's attributes (see `Device.attributes`); required ones must be there
    pub attributes: Option<Json<serde_json::Value>>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// Changes to a device; fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateDeviceInput {
    /// the device to change; its code, category and project stay
    pub device_id: ID,
    /// a new name
    pub name: Option<String>,
    /// a new model; empty clears it
    pub model: Option<String>,
    /// a new specification; empty clears it
    pub specification: Option<String>,
    /// a new manufacturer; empty clears it
    pub manufacturer: Option<String>,
    /// when it was bought
    pub purchase_date: Option<NaiveDate>,
    /// when it was installed
    pub install_date: Option<NaiveDate>,
    /// a building of the device's project
    pub building_id: Option<ID>,
    /// a unit of the device's project
    pub unit_id: Option<ID>,
    /// where it is, in words; empty clears it
    pub location: Option<String>,
    /// the last day of its warranty
    pub warranty_expiry: Option<NaiveDate>,
    /// a new status
    pub status: Option<DeviceStatus>,
    /// a new importance
    pub importance: Option<DeviceImportance>,
    /// a member of staff of the company
    pub responsible_user_id: Option<ID>,
    /// the complete new attributes of its category
    pub attributes: Option<Json<serde_json::Value>>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// Devices of one project from a CSV file.
#[derive(InputObject)]
pub struct ImportDevicesInput {
    /// the project the devices belong to
    pub project_id: ID,
    /// CSV with a header: code,name,category,model,specification,manufacturer,purchase_date,
    /// install_date,location,warranty_expiry,status,importance,attributes (a JSON object);
    /// category, status and importance as codes (`water_pump`, `in_use`, `critical`) or their
    /// Chinese names (水泵, 在用, 关键)
    pub csv: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// What an import wrote.
#[derive(SimpleObject)]
pub struct ImportDevicesPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// how many devices were added
    pub devices_created: u32,
}

#[derive(Default)]
pub struct EquipmentMutation;

#[Object]
impl EquipmentMutation {
    /// Registers a device in a project (`equipment:write`).
    #[graphql(guard = "Perm::EquipmentWrite")]
    async fn create_device(&self, ctx: &Context<'_>, input: CreateDeviceInput) -> async_graphql::Result<DevicePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = service::create(
            ctx.state(),
            &actor,
            &retry,
            DeviceInput {
                project_id: Some(parse_id("projectId", &input.project_id)?),
                code: Some(input.code),
                name: Some(input.name),
                category: Some(input.category.into()),
                model: input.model,
                specification: input.specification,
                manufacturer: input.manufacturer,
                purchase_date: input.purchase_date,
                install_date: input.install_date,
                building_id: parse_opt_id("buildingId", input.building_id.as_ref())?,
                unit_id: parse_opt_id("unitId", input.unit_id.as_ref())?,
                location: input.location,
                warranty_expiry: input.warranty_expiry,
                status: input.status.map(Into::into),
                importance: input.importance.map(Into::into),
                responsible_user_id: parse_opt_id("responsibleUserId", input.responsible_user_id.as_ref())?,
                attributes: input.attributes.map(|j| j.0),
            },
        )
        .await?;
        Ok(DevicePayload::new(input.client_mutation_id, id))
    }

    /// Changes a device's details, status or attributes (`equipment:write`).
    #[graphql(guard = "Perm::EquipmentWrite")]
    async fn update_device(&self, ctx: &Context<'_>, input: UpdateDeviceInput) -> async_graphql::Result<DevicePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = service::update(
            ctx.state(),
            &actor,
            &retry,
            parse_id("deviceId", &input.device_id)?,
            DeviceInput {
                name: input.name,
                model: input.model,
                specification: input.specification,
                manufacturer: input.manufacturer,
                purchase_date: input.purchase_date,
                install_date: input.install_date,
                building_id: parse_opt_id("buildingId", input.building_id.as_ref())?,
                unit_id: parse_opt_id("unitId", input.unit_id.as_ref())?,
                location: input.location,
                warranty_expiry: input.warranty_expiry,
                status: input.status.map(Into::into),
                importance: input.importance.map(Into::into),
                responsible_user_id: parse_opt_id("responsibleUserId", input.responsible_user_id.as_ref())?,
                attributes: input.attributes.map(|j| j.0),
                ..DeviceInput::default()
            },
        )
        .await?;
        Ok(DevicePayload::new(input.client_mutation_id, id))
    }

    /// Imports devices from CSV, all lines or none (`equipment:write`); each bad line is
    /// listed in `extensions.details.errors`.
    #[graphql(guard = "Perm::EquipmentWrite")]
    async fn import_devices(
        &self,
        ctx: &Context<'_>,
        input: ImportDevicesInput,
    ) -> async_graphql::Result<ImportDevicesPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let project = parse_id("projectId", &input.project_id)?;
        let out = service::import(ctx.state(), &actor, &retry, project, &input.csv).await?;
        Ok(ImportDevicesPayload { client_mutation_id: input.client_mutation_id, devices_created: out.devices_created })
    }
}
