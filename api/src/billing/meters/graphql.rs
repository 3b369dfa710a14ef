//! 抄表 over GraphQL: readings per meter and month, replacements, collection from
//! telemetry and the review of held readings.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model;
use super::service::{self, Collected};
use crate::kit::gql::{Conn, StateExt, parse_id, to_id};
use crate::kit::pagination::Page;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

/// 来源 where a reading came from
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::ReadingSource")]
pub enum MeterReadingSource {
    /// the meter's own telemetry
    Iot,
    /// entered by staff
    Staff,
    /// imported from a file
    Import,
}

/// 状态 whether a reading may be billed
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::ReadingStatus")]
pub enum MeterReadingStatus {
    /// billable
    Normal,
    /// abnormal usage or a register gone down: held out of billing until reviewed
    Flagged,
    /// held, then accepted (or corrected) by a reviewer: billable
    Accepted,
}

/// 抄表记录 a meter's register at the close of a billing month.
#[derive(SimpleObject)]
pub struct MeterRecord {
    /// the record's id
    pub id: ID,
    /// the meter (a device)
    pub device_id: ID,
    /// the house it measures (none for a common meter)
    pub house_id: Option<ID>,
    /// the billing month (its first day)
    pub period: NaiveDate,
    /// the register (m³, kWh), exact to 4 decimals
    pub reading: Decimal,
    /// the register the usage counts from (last month's, or the meter's initial one)
    pub previous: Option<Decimal>,
    /// the month's usage × the meter's multiplier, across replacements; none for a first reading
    pub usage: Option<Decimal>,
    /// when the register was read
    pub read_at: DateTime<Utc>,
    /// where it came from
    pub source: MeterReadingSource,
    /// whether it may be billed
    pub status: MeterReadingStatus,
    /// why it is held
    pub flag_reason: Option<String>,
    /// who entered it (none from telemetry)
    pub recorded_by: Option<ID>,
    /// who accepted it after a hold
    pub reviewed_by: Option<ID>,
    /// last change
    pub updated_at: DateTime<Utc>,
}

impl From<model::Reading> for MeterRecord {
    fn from(r: model::Reading) -> Self {
        MeterRecord {
            id: to_id(r.id),
            device_id: to_id(r.device_id),
            house_id: r.house_id.map(to_id),
            period: r.period,
            reading: r.reading,
            previous: r.previous,
            usage: r.usage,
            read_at: r.read_at,
            source: r.source.into(),
            status: r.status.into(),
            flag_reason: r.flag_reason,
            recorded_by: r.recorded_by.map(to_id),
            reviewed_by: r.reviewed_by.map(to_id),
            updated_at: r.updated_at,
        }
    }
}

async fn load_record(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<MeterRecord> {
    let actor = ctx.actor()?;
    Ok(service::reading(ctx.state(), &actor, id).await?.into())
}

crate::object_payload!(
    /// The reading a mutation recorded or reviewed.
    MeterRecordPayload, meter_record: MeterRecord, load_record, "the reading as it is now"
);

#[derive(Default)]
pub struct MeterQuery;

#[Object]
impl MeterQuery {
    /// 抄表记录: a project's readings of a billing month, optionally of one status
    /// (FLAGGED: the review queue), in id order (`meter:read`).
    async fn meter_records(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "the project")] project_id: ID,
        #[graphql(desc = "the billing month (its first day)")] period: NaiveDate,
        #[graphql(desc = "only readings of this status")] status: Option<MeterReadingStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<MeterRecord>> {
        let actor = ctx.actor()?;
        let page = Page::new(ctx, first, after)?;
        let p = parse_id("projectId", &project_id)?;
        let rows =
            service::readings(ctx.state(), &actor, p, period, status.map(Into::into), page.after, page.fetch()).await?;
        Ok(page.connection(rows, |r| r.id, MeterRecord::from))
    }

    /// One reading (`meter:read` on its project).
    async fn meter_record(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<MeterRecord> {
        load_record(ctx, parse_id("id", &id)?).await
    }
}

/// A meter's register for a month, entered by staff.
#[derive(InputObject)]
pub struct RecordMeterReadingInput {
    /// the meter (water, electricity or gas)
    pub device_id: ID,
    /// the billing month (its first day; not after this month)
    pub period: NaiveDate,
    /// the register, 0 to 1e12 with at most 4 decimals; below the previous one only after a replacement
    pub reading: Decimal,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A meter replaced.
#[derive(InputObject)]
pub struct ReplaceMeterInput {
    /// the meter
    pub device_id: ID,
    /// when (now by default; not in the future)
    pub replaced_at: Option<DateTime<Utc>>,
    /// the old register's final reading
    pub old_final: Decimal,
    /// the new register's first reading
    pub new_initial: Decimal,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// Readings of a month taken from the meters' telemetry.
#[derive(InputObject)]
pub struct CollectMeterReadingsInput {
    /// the project
    pub project_id: ID,
    /// the billing month (its first day)
    pub period: NaiveDate,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A held reading accepted, or corrected.
#[derive(InputObject)]
pub struct ReviewMeterReadingInput {
    /// the held reading
    pub id: ID,
    /// the right register, when the held one is wrong
    pub corrected_reading: Option<Decimal>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// What `collectMeterReadings` did.
#[derive(SimpleObject)]
pub struct CollectMeterReadingsPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// readings taken from telemetry
    pub read: i32,
    /// of those, held for review
    pub flagged: i32,
    /// meters with no telemetry before the month closed
    pub missing: i32,
    /// meters already read for the month (left as they were)
    pub already: i32,
}

/// The meter a replacement was recorded for.
#[derive(SimpleObject)]
pub struct ReplaceMeterPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// the meter
    pub device_id: ID,
}

/// A month's registers as CSV.
#[derive(InputObject)]
pub struct ImportMeterReadingsInput {
    /// the project
    pub project_id: ID,
    /// the month (its first day)
    pub period: NaiveDate,
    /// the file's text (UTF-8; a BOM is fine)
    pub csv: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// What `importMeterReadings` wrote.
#[derive(SimpleObject)]
pub struct ImportMeterReadingsPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// registers written (new or corrected)
    pub imported: i32,
}

#[derive(Default)]
pub struct MeterMutation;

#[Object]
impl MeterMutation {
    /// 导入读数 (`meter:write`): a month's registers of a project's meters from CSV (a
    /// header line with 设备编号 (deviceCode) and 读数 (reading), then one meter a line),
    /// checked line by line as entries are; any bad line: nothing is written and
    /// `extensions.details.errors` names every bad line and field.
    #[graphql(guard = "Perm::MeterWrite")]
    async fn import_meter_readings(
        &self,
        ctx: &Context<'_>,
        input: ImportMeterReadingsInput,
    ) -> async_graphql::Result<ImportMeterReadingsPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let project = parse_id("projectId", &input.project_id)?;
        let n = service::import(ctx.state(), &actor, &retry, project, input.period, &input.csv).await?;
        Ok(ImportMeterReadingsPayload { client_mutation_id: input.client_mutation_id, imported: n as i32 })
    }

    /// 录入读数 (`meter:write`): a meter's register for a month, or its correction; the
    /// next month's usage follows a correction.
    #[graphql(guard = "Perm::MeterWrite")]
    async fn record_meter_reading(
        &self,
        ctx: &Context<'_>,
        input: RecordMeterReadingInput,
    ) -> async_graphql::Result<MeterRecordPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let device = parse_id("deviceId", &input.device_id)?;
        let id = service::record(ctx.state(), &actor, &retry, device, input.period, input.reading).await?;
        Ok(MeterRecordPayload::new(input.client_mutation_id, id))
    }

    /// 换表 (`meter:write`): the old register's final reading and the new one's first.
    #[graphql(guard = "Perm::MeterWrite")]
    async fn replace_meter(
        &self,
        ctx: &Context<'_>,
        input: ReplaceMeterInput,
    ) -> async_graphql::Result<ReplaceMeterPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let device = parse_id("deviceId", &input.device_id)?;
        let id = service::replace(
            ctx.state(),
            &actor,
            &retry,
            device,
            input.replaced_at,
            input.old_final,
            input.new_initial,
        )
        .await?;
        Ok(ReplaceMeterPayload { client_mutation_id: input.client_mutation_id, device_id: to_id(id) })
    }

    /// 自动抄表 (`meter:write`): every meter of the project not yet read for the month
    /// gets the last register it reported before the month closed.
    #[graphql(guard = "Perm::MeterWrite")]
    async fn collect_meter_readings(
        &self,
        ctx: &Context<'_>,
        input: CollectMeterReadingsInput,
    ) -> async_graphql::Result<CollectMeterReadingsPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let project = parse_id("projectId", &input.project_id)?;
        let c: Collected = service::collect(ctx.state(), &actor, &retry, project, input.period).await?;
        let n = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
        Ok(CollectMeterReadingsPayload {
            client_mutation_id: input.client_mutation_id,
            read: n(c.read),
            flagged: n(c.flagged),
            missing: n(c.missing),
            already: n(c.already),
        })
    }

    /// 审核读数 (`meter:write`): a held reading accepted as it is or corrected.
    #[graphql(guard = "Perm::MeterWrite")]
    async fn review_meter_reading(
        &self,
        ctx: &Context<'_>,
        input: ReviewMeterReadingInput,
    ) -> async_graphql::Result<MeterRecordPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = parse_id("id", &input.id)?;
        let id = service::review(ctx.state(), &actor, &retry, id, input.corrected_reading).await?;
        Ok(MeterRecordPayload::new(input.client_mutation_id, id))
    }
}

/// 公摊方式
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::ShareMethod")]
pub enum ShareMethod {
    /// by building area
    Area,
    /// the same for each house
    Equal,
    /// by each house's own usage of the same kind of meter that month
    Usage,
}

/// 公摊表 a meter of common parts and the houses that share it.
#[derive(SimpleObject)]
pub struct SharedMeter {
    /// the meter (a device of the ledger not on a house)
    pub device_id: ID,
    /// how its usage is split
    pub method: ShareMethod,
    /// the houses that share it
    pub house_ids: Vec<ID>,
    /// when it was last set
    pub updated_at: DateTime<Utc>,
}

/// A shared meter to set.
#[derive(InputObject)]
pub struct SetSharedMeterInput {
    /// the meter (not on a house)
    pub device_id: ID,
    /// how its usage is split
    pub method: ShareMethod,
    /// the houses of its project that share it (1 to 5000)
    pub house_ids: Vec<ID>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// What `setSharedMeter` set.
#[derive(SimpleObject)]
pub struct SetSharedMeterPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// the meter
    pub device_id: ID,
}

#[derive(Default)]
pub struct SharedMeterQuery;

#[Object]
impl SharedMeterQuery {
    /// 公摊表 a project's shared meters (`meter:read`).
    async fn shared_meters(&self, ctx: &Context<'_>, project_id: ID) -> async_graphql::Result<Vec<SharedMeter>> {
        let actor = ctx.actor()?;
        let list = service::shared_meters(ctx.state(), &actor, parse_id("projectId", &project_id)?).await?;
        Ok(list
            .into_iter()
            .map(|m| SharedMeter {
                device_id: to_id(m.device_id),
                method: m.method.into(),
                house_ids: m.house_ids.into_iter().map(to_id).collect(),
                updated_at: m.updated_at,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct SharedMeterMutation;

#[Object]
impl SharedMeterMutation {
    /// 设置公摊表 (`meter:write`): a meter of common parts and the houses that share its
    /// usage each month, by building area, equally or by their own usage; a fee item of
    /// kind SHARED on its category bills each house its share (4 decimals, the shares
    /// adding up to the meter's usage).
    #[graphql(guard = "Perm::MeterWrite")]
    async fn set_shared_meter(
        &self,
        ctx: &Context<'_>,
        input: SetSharedMeterInput,
    ) -> async_graphql::Result<SetSharedMeterPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let device = parse_id("deviceId", &input.device_id)?;
        let houses = crate::kit::gql::parse_ids("houseIds", &input.house_ids)?;
        let id = service::set_shared(ctx.state(), &actor, &retry, device, input.method.into(), &houses).await?;
        Ok(SetSharedMeterPayload { client_mutation_id: input.client_mutation_id, device_id: to_id(id) })
    }
}
