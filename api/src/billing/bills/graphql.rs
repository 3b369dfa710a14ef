//! 账单 over GraphQL: bill runs (preview and commit), bills and their lines, the owner's
//! bills, and offline payments with their receipts.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model;
use super::service::{self, PaymentInput, RunInput, RunOutcome, RunScope, SkipReason};
use crate::billing::fees::graphql::PayingResident;
use crate::kit::gql::{Conn, StateExt, group_by, load_one, parse_id, parse_ids, parse_opt_id, to_id};
use crate::kit::money::Money;
use crate::kit::pagination::Page;
use crate::kit::state::AppState;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

/// 缴费状态
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::BillStatus")]
pub enum BillStatus {
    /// nothing paid
    Unpaid,
    /// part paid
    Partial,
    /// settled (the total and any late fee)
    Paid,
}

/// 明细类型
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::LineKind")]
pub enum BillLineKind {
    /// a fee item of the month
    Fee,
    /// a work-order charge
    Charge,
    /// a discount (negative)
    Discount,
    /// an approved adjustment
    Adjustment,
}

/// 收款方式
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::PaymentMethod")]
pub enum PaymentMethod {
    /// 现金
    Cash,
    /// 银行转账
    BankTransfer,
    /// 刷卡 (POS)
    Pos,
    /// 微信支付
    Wechat,
    /// 支付宝
    Alipay,
    /// 预存款抵扣 drawn from the house's prepaid balance
    Prepaid,
}

/// Why a house or a space got no bill from a run (or kept the one it had).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "SkipReason")]
pub enum BillSkipReason {
    /// no owner registered to pay
    NoPayer,
    /// a meter of a metered item has no reading of the month
    NoReading,
    /// a meter's reading is held for review
    FlaggedReading,
    /// the bill has a payment: a change needs an approved adjustment
    HasPayment,
    /// a line could not be computed (a formula, a missing indoor area)
    Unbillable,
}

/// 账单明细 one line of a bill.
#[derive(SimpleObject)]
pub struct BillLine {
    /// a fee, a charge, a discount or an adjustment
    pub kind: BillLineKind,
    /// the fee item of a FEE line
    pub fee_item_id: Option<ID>,
    /// the work-order charge of a CHARGE line
    pub charge_id: Option<ID>,
    /// what it is for
    pub name: String,
    /// m², months or units
    pub quantity: Decimal,
    /// the price per unit (a tiered item's average)
    pub unit_price: Decimal,
    /// the months a time-based fee covers (part of a month by its days)
    pub months: Option<Decimal>,
    /// 上期读数 of a metered line (a house with one meter)
    pub previous_reading: Option<Decimal>,
    /// 本期读数
    pub current_reading: Option<Decimal>,
    /// rounded half-up to the fen
    pub amount: Money,
}

impl From<model::Line> for BillLine {
    fn from(l: model::Line) -> Self {
        BillLine {
            kind: l.kind.into(),
            fee_item_id: l.fee_item_id.map(to_id),
            charge_id: l.charge_id.map(to_id),
            name: l.name,
            quantity: l.quantity,
            unit_price: l.unit_price,
            months: l.months,
            previous_reading: l.previous_reading,
            current_reading: l.current_reading,
            amount: Money::round(l.amount),
        }
    }
}

/// 账单 what one payer owes for a house or a parking space for one month.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Bill {
    /// the bill's id
    pub id: ID,
    /// its project
    pub project_id: ID,
    /// the house's building
    pub building_id: Option<ID>,
    /// the house billed (or)
    pub house_id: Option<ID>,
    /// the parking space billed
    pub parking_space_id: Option<ID>,
    /// the month (its first day)
    pub period: NaiveDate,
    /// the owner's or the tenant's bill of the house
    pub paying_resident: PayingResident,
    /// the resident who pays (an owner record)
    pub payer_id: ID,
    /// the run that last wrote it
    pub run_id: Option<ID>,
    /// the sum of the lines
    pub total: Money,
    /// 滞纳金 accrued beside the total
    pub late_fee: Money,
    /// paid so far
    pub paid: Money,
    /// total + late fee − paid
    pub outstanding: Money,
    /// unpaid, part paid or paid
    pub status: BillStatus,
    /// 缴费截止日期
    pub due_date: NaiveDate,
    /// when it was issued
    pub issued_at: DateTime<Utc>,
    /// when it was settled
    pub paid_at: Option<DateTime<Utc>>,
}

impl From<model::Bill> for Bill {
    fn from(b: model::Bill) -> Self {
        Bill {
            id: to_id(b.id),
            project_id: to_id(b.project_id),
            building_id: b.building_id.map(to_id),
            house_id: b.house_id.map(to_id),
            parking_space_id: b.parking_space_id.map(to_id),
            period: b.period,
            paying_resident: b.paying_resident.into(),
            payer_id: to_id(b.payer_id),
            run_id: b.run_id.map(to_id),
            total: Money::round(b.total),
            late_fee: Money::round(b.late_fee),
            paid: Money::round(b.paid),
            outstanding: Money::round(b.outstanding()),
            status: b.status.into(),
            due_date: b.due_date,
            issued_at: b.issued_at,
            paid_at: b.paid_at,
        }
    }
}

/// The lines of the bills of one response, in one query.
pub struct LineLoader(AppState);

impl From<AppState> for LineLoader {
    fn from(s: AppState) -> Self {
        LineLoader(s)
    }
}

impl Loader<Uuid> for LineLoader {
    type Value = Vec<model::Line>;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::lines_of(&self.0, keys).await.map_err(|e| e.to_string())?;
        Ok(group_by(rows, |l| l.bill_id))
    }
}

/// The payments of the bills of one response, in one query.
pub struct PaymentLoader(AppState);

impl From<AppState> for PaymentLoader {
    fn from(s: AppState) -> Self {
        PaymentLoader(s)
    }
}

impl Loader<Uuid> for PaymentLoader {
    type Value = Vec<(Uuid, Decimal, model::Payment)>;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::payments_of(&self.0, keys).await.map_err(|e| e.to_string())?;
        Ok(group_by(rows, |r| r.0))
    }
}

/// A payment's part of a bill.
#[derive(SimpleObject)]
pub struct BillPayment {
    /// what of the payment went to this bill
    pub amount: Money,
    /// the payment
    pub payment: Payment,
}

#[ComplexObject]
impl Bill {
    /// 账单明细 in order
    async fn lines(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<BillLine>> {
        let id = parse_id("id", &self.id)?;
        Ok(load_one::<LineLoader>(ctx, id).await?.unwrap_or_default().into_iter().map(BillLine::from).collect())
    }

    /// 缴费记录 the payments that paid it, oldest first
    async fn payments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<BillPayment>> {
        let id = parse_id("id", &self.id)?;
        Ok(load_one::<PaymentLoader>(ctx, id)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(|(_, part, p)| BillPayment { amount: Money::round(part), payment: Payment::new(p, Vec::new()) })
            .collect())
    }

    /// 催缴记录 the reminders sent (staff who read the project's bills; empty for others)
    async fn reminders(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<BillReminder>> {
        let actor = ctx.actor()?;
        let (reminders, _) = service::follow_up(ctx.state(), &actor, parse_id("id", &self.id)?).await?;
        Ok(reminders
            .into_iter()
            .map(|r| BillReminder {
                step: r.step,
                owed: Money::round(r.owed),
                sent_by: r.sent_by.map(to_id),
                sent_at: r.sent_at,
            })
            .collect())
    }

    /// 打印账单 the bill as a PDF (items, readings, total, due date, how to pay): a signed
    /// URL valid five minutes
    async fn pdf_url(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let actor = ctx.actor()?;
        Ok(crate::billing::print::service::bill_pdf(ctx.state(), &actor, parse_id("id", &self.id)?).await?)
    }

    /// 发送记录 every notice about the bill (the run's, reminders, the payment's) and how
    /// each channel ended (staff who read the project's bills; empty for others)
    async fn notices(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<crate::notify::graphql::SentNotice>> {
        let actor = ctx.actor()?;
        let (_, notices) = service::follow_up(ctx.state(), &actor, parse_id("id", &self.id)?).await?;
        Ok(notices.into_iter().map(Into::into).collect())
    }
}

/// An adjustment to ask for.
#[derive(InputObject)]
pub struct RequestBillAdjustmentInput {
    /// the bill
    pub bill_id: ID,
    /// yuan added to the bill (negative: taken off); the total stays ≥ 0 and ≥ what was paid
    pub amount: Decimal,
    /// why (2 to 500 characters)
    pub reason: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A vacancy relief to ask for.
#[derive(InputObject)]
pub struct RequestVacancyReliefInput {
    /// the vacant house
    pub house_id: ID,
    /// the first month (its first day)
    pub from_period: NaiveDate,
    /// the last month (its first day; at most 23 months after the first)
    pub to_period: NaiveDate,
    /// the share of the property fee off (above 0, at most 1; 0.5 = half)
    pub ratio: Decimal,
    /// why (2 to 500 characters)
    pub reason: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 催缴 one reminder of a bill.
#[derive(SimpleObject)]
pub struct BillReminder {
    /// the schedule's days after the due date (0: sent by hand)
    pub step: i32,
    /// what the bill still owed then
    pub owed: Money,
    /// who sent it by hand
    pub sent_by: Option<ID>,
    /// when
    pub sent_at: DateTime<Utc>,
}

/// A project's reminder schedule.
#[derive(InputObject)]
pub struct SetDunningPolicyInput {
    /// the project
    pub project_id: ID,
    /// remind of an unpaid bill this many days after its due date (1 to 10 steps, each 1 to 365)
    pub days_after_due: Vec<i32>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// What `setDunningPolicy` set.
#[derive(SimpleObject)]
pub struct SetDunningPolicyPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// the schedule as it is now
    pub days_after_due: Vec<i32>,
}

/// Bills to remind of now.
#[derive(InputObject)]
pub struct RemindBillsInput {
    /// unpaid bills (1 to 500); one reminder a day per bill at most
    pub bill_ids: Vec<ID>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// What `remindBills` sent.
#[derive(SimpleObject)]
pub struct RemindBillsPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// reminders sent (paid bills and bills reminded today are left out)
    pub sent: i32,
}

/// A payment's part of one bill.
#[derive(SimpleObject)]
pub struct PaymentAllocation {
    /// the bill
    pub bill_id: ID,
    /// what went to it
    pub amount: Money,
}

/// 收款 money received, with its receipt number.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Payment {
    /// the payment's id
    pub id: ID,
    /// who paid (an owner record)
    pub payer_id: ID,
    /// cash, transfer, POS, WeChat Pay, Alipay
    pub method: PaymentMethod,
    /// the transfer's, POS slip's or provider's reference
    pub reference: Option<String>,
    /// the amount received
    pub amount: Money,
    /// 收据编号, numbered per company and year
    pub receipt_no: String,
    /// a note
    pub note: Option<String>,
    /// the staff member who took it (none for an online payment)
    pub received_by: Option<ID>,
    /// when it was received
    pub received_at: DateTime<Utc>,
    /// the bills it paid (on `payment` and `recordPayment`)
    pub allocations: Vec<PaymentAllocation>,
    /// what no bill needed any more (the bills were settled another way meanwhile): to refund
    pub unapplied: Money,
    /// what was paid back
    pub refunded: Money,
}

#[ComplexObject]
impl Payment {
    /// 收据 the numbered receipt as a PDF: a signed URL valid five minutes
    async fn receipt_url(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let actor = ctx.actor()?;
        Ok(crate::billing::print::service::receipt_pdf(ctx.state(), &actor, parse_id("id", &self.id)?).await?)
    }
}

impl Payment {
    fn new(p: model::Payment, parts: Vec<(Uuid, Decimal)>) -> Self {
        Payment {
            id: to_id(p.id),
            payer_id: to_id(p.payer_id),
            method: p.method.into(),
            reference: p.reference,
            amount: Money::round(p.amount),
            receipt_no: p.receipt_no,
            note: p.note,
            received_by: p.received_by.map(to_id),
            received_at: p.received_at,
            unapplied: Money::round(p.unapplied),
            refunded: Money::round(p.refunded),
            allocations: parts
                .into_iter()
                .map(|(b, a)| PaymentAllocation { bill_id: to_id(b), amount: Money::round(a) })
                .collect(),
        }
    }
}

/// A building's bills in a run.
#[derive(SimpleObject)]
pub struct BillRunBuilding {
    /// the building (none: parking spaces)
    pub building_id: Option<ID>,
    /// bills
    pub bills: i32,
    /// their total
    pub total: Money,
}

/// How many houses were skipped for a reason.
#[derive(SimpleObject)]
pub struct BillSkipCount {
    /// why
    pub reason: BillSkipReason,
    /// how many
    pub count: i32,
}

/// A house or space a run skipped.
#[derive(SimpleObject)]
pub struct BillSkipped {
    /// the house (or)
    pub house_id: Option<ID>,
    /// the parking space
    pub parking_space_id: Option<ID>,
    /// why
    pub reason: BillSkipReason,
    /// the fee item concerned, or what went wrong
    pub detail: String,
}

fn n(v: usize) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// 账单预览 what a run would generate.
#[derive(SimpleObject)]
pub struct BillRunPreview {
    /// the month
    pub period: NaiveDate,
    /// 缴费截止日期 the bills would carry
    pub due_date: NaiveDate,
    /// new bills
    pub created: i32,
    /// unpaid bills whose lines changed (a corrected reading), written again
    pub regenerated: i32,
    /// bills that stay as they are
    pub unchanged: i32,
    /// houses and spaces without a bill (or with a paid bill that would change)
    pub skipped: i32,
    /// lines to write
    pub lines: i32,
    /// the total of the bills covered (new, regenerated, unchanged)
    pub total: Money,
    /// per building
    pub by_building: Vec<BillRunBuilding>,
    /// per reason
    pub skip_counts: Vec<BillSkipCount>,
    /// the first 200 skipped, with the reason
    pub skipped_houses: Vec<BillSkipped>,
}

impl From<RunOutcome> for BillRunPreview {
    fn from(o: RunOutcome) -> Self {
        BillRunPreview {
            period: o.period,
            due_date: o.due_date,
            created: n(o.created),
            regenerated: n(o.regenerated),
            unchanged: n(o.unchanged),
            skipped: n(o.skipped),
            lines: n(o.lines),
            total: Money::round(o.total),
            by_building: o
                .by_building
                .into_iter()
                .map(|b| BillRunBuilding {
                    building_id: b.building_id.map(to_id),
                    bills: n(b.bills),
                    total: Money::round(b.total),
                })
                .collect(),
            skip_counts: o
                .skip_counts
                .into_iter()
                .map(|(r, c)| BillSkipCount { reason: r.into(), count: n(c) })
                .collect(),
            skipped_houses: o
                .skipped_list
                .into_iter()
                .map(|s| BillSkipped {
                    house_id: s.house_id.map(to_id),
                    parking_space_id: s.parking_space_id.map(to_id),
                    reason: s.reason.into(),
                    detail: s.detail,
                })
                .collect(),
        }
    }
}

/// 账单生成记录 a committed run.
#[derive(SimpleObject)]
pub struct BillRun {
    /// the run's id
    pub id: ID,
    /// the project
    pub project_id: ID,
    /// the month
    pub period: NaiveDate,
    /// 缴费截止日期
    pub due_date: NaiveDate,
    /// new bills
    pub created: i32,
    /// bills written again
    pub regenerated: i32,
    /// bills left as they were
    pub unchanged: i32,
    /// houses and spaces skipped
    pub skipped: i32,
    /// the total of the bills covered
    pub total: Money,
    /// who ran it
    pub created_by: Option<ID>,
    /// when
    pub created_at: DateTime<Utc>,
}

impl From<model::Run> for BillRun {
    fn from(r: model::Run) -> Self {
        BillRun {
            id: to_id(r.id),
            project_id: to_id(r.project_id),
            period: r.period,
            due_date: r.due_date,
            created: r.created,
            regenerated: r.regenerated,
            unchanged: r.unchanged,
            skipped: r.skipped,
            total: Money::round(r.total),
            created_by: r.created_by.map(to_id),
            created_at: r.created_at,
        }
    }
}

async fn load_run(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<BillRun> {
    let actor = ctx.actor()?;
    Ok(service::run(ctx.state(), &actor, id).await?.into())
}

async fn load_payment(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Payment> {
    let actor = ctx.actor()?;
    let (p, parts) = service::payment(ctx.state(), &actor, id).await?;
    Ok(Payment::new(p, parts))
}

crate::object_payload!(
    /// The run `runBills` committed.
    RunBillsPayload, bill_run: BillRun, load_run, "the run as recorded"
);

crate::object_payload!(
    /// The payment `recordPayment` recorded.
    RecordPaymentPayload, payment: Payment, load_payment, "the payment with its receipt number and the bills it paid"
);

/// Which month and houses a run covers.
#[derive(InputObject)]
pub struct BillRunInput {
    /// the project
    pub project_id: ID,
    /// the month (its first day; not after this month)
    pub period: NaiveDate,
    /// 缴费截止日期 (the 15th of the next month by default)
    pub due_date: Option<NaiveDate>,
    /// only these buildings (one of buildingIds, houseIds, ownerIds; none: the whole project with its parking spaces)
    #[graphql(default)]
    pub building_ids: Vec<ID>,
    /// only these houses
    #[graphql(default)]
    pub house_ids: Vec<ID>,
    /// only the houses (and spaces) of these owners
    #[graphql(default)]
    pub owner_ids: Vec<ID>,
    /// makes a retry apply once (runBills)
    pub client_mutation_id: Option<String>,
}

impl BillRunInput {
    fn to_run(&self) -> async_graphql::Result<RunInput> {
        Ok(RunInput {
            project_id: parse_id("projectId", &self.project_id)?,
            period: self.period,
            due_date: self.due_date,
            scope: RunScope {
                building_ids: parse_ids("buildingIds", &self.building_ids)?,
                house_ids: parse_ids("houseIds", &self.house_ids)?,
                owner_ids: parse_ids("ownerIds", &self.owner_ids)?,
            },
        })
    }
}

/// An offline payment.
#[derive(InputObject)]
pub struct RecordPaymentInput {
    /// one payer's bills of one project (1 to 50)
    pub bill_ids: Vec<ID>,
    /// the amount received in yuan (at most 2 decimals), up to what the bills owe (the
    /// oldest are paid first)
    pub amount: Decimal,
    /// CASH, BANK_TRANSFER or POS
    pub method: PaymentMethod,
    /// the transfer's or POS slip's reference (needed for those)
    pub reference: Option<String>,
    /// a note (up to 200 characters)
    pub note: Option<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 滞纳金规则 a project's late-fee policy.
#[derive(SimpleObject)]
pub struct LateFeePolicy {
    /// the project
    pub project_id: ID,
    /// of the unpaid principal per day past the due date and the grace days
    pub daily_rate: Decimal,
    /// days after the due date before a late fee starts
    pub grace_days: i32,
    /// the late fee never exceeds this share of the bill's total (1: the principal)
    pub cap_ratio: Decimal,
    /// last change
    pub updated_at: DateTime<Utc>,
}

/// A project's late-fee policy.
#[derive(InputObject)]
pub struct SetLateFeePolicyInput {
    /// the project
    pub project_id: ID,
    /// per day, 0 to 0.01 (1 %), up to 6 decimals, e.g. 0.0005
    pub daily_rate: Decimal,
    /// 0 to 365
    pub grace_days: i32,
    /// 0 to 1 of the bill's total
    pub cap_ratio: Decimal,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

async fn load_policy(ctx: &Context<'_>, project: Uuid) -> async_graphql::Result<Option<LateFeePolicy>> {
    let actor = ctx.actor()?;
    Ok(service::late_fee_policy(ctx.state(), &actor, project).await?.map(|p| LateFeePolicy {
        project_id: to_id(p.project_id),
        daily_rate: p.daily_rate,
        grace_days: p.grace_days,
        cap_ratio: p.cap_ratio,
        updated_at: p.updated_at,
    }))
}

/// The policy `setLateFeePolicy` set.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct SetLateFeePolicyPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    #[graphql(skip)]
    pub project: Uuid,
}

#[ComplexObject]
impl SetLateFeePolicyPayload {
    /// the policy as it is now
    async fn late_fee_policy(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<LateFeePolicy>> {
        load_policy(ctx, self.project).await
    }
}

#[derive(Default)]
pub struct BillQuery;

#[Object]
impl BillQuery {
    /// A project's reminder schedule, days after the due date (`bill:read`); none: no
    /// scheduled reminders.
    async fn dunning_policy(&self, ctx: &Context<'_>, project_id: ID) -> async_graphql::Result<Option<Vec<i32>>> {
        let actor = ctx.actor()?;
        Ok(service::dunning_policy(ctx.state(), &actor, parse_id("projectId", &project_id)?).await?)
    }

    /// 账单预览 (`bill:run`): what `runBills` would generate for the month, with totals per
    /// building and the houses it would skip and why. Writes nothing.
    async fn bill_run_preview(&self, ctx: &Context<'_>, input: BillRunInput) -> async_graphql::Result<BillRunPreview> {
        let actor = ctx.actor()?;
        Ok(service::preview(ctx.state(), &actor, input.to_run()?).await?.into())
    }

    /// A committed run (`bill:read`).
    async fn bill_run(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<BillRun> {
        load_run(ctx, parse_id("id", &id)?).await
    }

    /// A project's bills of a month, optionally of one status or building, in id order
    /// (`bill:read`).
    #[allow(clippy::too_many_arguments)]
    async fn bills(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "the project")] project_id: ID,
        #[graphql(desc = "the month (its first day)")] period: NaiveDate,
        #[graphql(desc = "only bills of this status")] status: Option<BillStatus>,
        #[graphql(desc = "only the bills of this building")] building_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Bill>> {
        let actor = ctx.actor()?;
        let page = Page::new(ctx, first, after)?;
        let p = parse_id("projectId", &project_id)?;
        let b = parse_opt_id("buildingId", building_id.as_ref())?;
        let rows =
            service::bills(ctx.state(), &actor, p, period, status.map(Into::into), b, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |r| r.id, Bill::from))
    }

    /// One bill: staff who read its project's bills, or the owner who pays it.
    async fn bill(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Bill> {
        let actor = ctx.actor()?;
        Ok(service::bill(ctx.state(), &actor, parse_id("id", &id)?).await?.into())
    }

    /// 我的账单: the bills the signed-in owner pays, unpaid first, then the latest month first.
    #[graphql(guard = "Perm::SelfHouse")]
    async fn my_bills(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "only bills of this status")] status: Option<BillStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Bill>> {
        let actor = ctx.actor()?;
        let page: Page<(i16, NaiveDate, Uuid)> = Page::new(ctx, first, after)?;
        let rows = service::my_bills(ctx.state(), &actor, status.map(Into::into), page.after, page.fetch()).await?;
        Ok(page.connection(rows, |(r, b)| (*r, b.period, b.id), |(_, b)| Bill::from(b)))
    }

    /// 滞纳金规则 a project's late-fee policy (`fee:read`); null: no late fee.
    async fn late_fee_policy(&self, ctx: &Context<'_>, project_id: ID) -> async_graphql::Result<Option<LateFeePolicy>> {
        load_policy(ctx, parse_id("projectId", &project_id)?).await
    }

    /// A payment with its receipt number: staff who read bills of its project, or the payer.
    async fn payment(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Payment> {
        load_payment(ctx, parse_id("id", &id)?).await
    }
}

/// The day houses start to be charged.
#[derive(InputObject)]
pub struct SetChargeStartInput {
    /// houses (1 to 5000) of projects where the caller sets fees
    pub house_ids: Vec<ID>,
    /// 计费开始日期 (handover or move-in); null clears it
    pub charge_start: Option<NaiveDate>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// How many houses `setChargeStart` changed.
#[derive(SimpleObject)]
pub struct SetChargeStartPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// houses changed
    pub houses: i32,
}

/// A bill's late fee asked to be waived.
#[derive(InputObject)]
pub struct RequestLateFeeWaiverInput {
    /// the bill
    pub bill_id: ID,
    /// why (2 to 500 characters)
    pub reason: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

#[derive(Default)]
pub struct BillMutation;

#[Object]
impl BillMutation {
    /// 催缴计划 (`fee:write`): the scheduler reminds payers of unpaid bills this many days
    /// after the due date, each step once per bill, through the app and push or by SMS.
    #[graphql(guard = "Perm::FeeWrite")]
    async fn set_dunning_policy(
        &self,
        ctx: &Context<'_>,
        input: SetDunningPolicyInput,
    ) -> async_graphql::Result<SetDunningPolicyPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let project = parse_id("projectId", &input.project_id)?;
        service::set_dunning_policy(ctx.state(), &actor, &retry, project, &input.days_after_due).await?;
        let days = service::dunning_policy(ctx.state(), &actor, project).await?.unwrap_or_default();
        Ok(SetDunningPolicyPayload { client_mutation_id: input.client_mutation_id, days_after_due: days })
    }

    /// 账单调整申请 (`payment:write` or `bill:run`): an amount added to or taken off a bill,
    /// the way to change a bill that has a payment; someone else with `bill:approve`
    /// decides through `decideApproval`, and the approval adds the line.
    async fn request_bill_adjustment(
        &self,
        ctx: &Context<'_>,
        input: RequestBillAdjustmentInput,
    ) -> async_graphql::Result<crate::rbac::graphql::ApprovalPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let bill = parse_id("billId", &input.bill_id)?;
        let amount = Money::from_decimal("amount", input.amount, true)?.yuan();
        let id = service::request_adjustment(ctx.state(), &actor, &retry, bill, amount, &input.reason).await?;
        Ok(crate::rbac::graphql::ApprovalPayload::new(input.client_mutation_id, id))
    }

    /// 空置房优惠申请 (`payment:write` or `bill:run`): a share of a vacant house's property
    /// fee off for some months; someone else with `bill:approve` decides; runs after the
    /// approval take it off as a discount line (run the month again to apply it to an
    /// unpaid bill already issued).
    async fn request_vacancy_relief(
        &self,
        ctx: &Context<'_>,
        input: RequestVacancyReliefInput,
    ) -> async_graphql::Result<crate::rbac::graphql::ApprovalPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let house = parse_id("houseId", &input.house_id)?;
        let id = service::request_vacancy_relief(
            ctx.state(),
            &actor,
            &retry,
            house,
            input.from_period,
            input.to_period,
            input.ratio,
            &input.reason,
        )
        .await?;
        Ok(crate::rbac::graphql::ApprovalPayload::new(input.client_mutation_id, id))
    }

    /// 催缴 by hand (`payment:write` or `bill:run`): a reminder now of each unpaid bill
    /// given, at most one a day per bill, logged on the bill.
    async fn remind_bills(
        &self,
        ctx: &Context<'_>,
        input: RemindBillsInput,
    ) -> async_graphql::Result<RemindBillsPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let ids = parse_ids("billIds", &input.bill_ids)?;
        let sent = service::remind(ctx.state(), &actor, &retry, &ids).await?;
        Ok(RemindBillsPayload { client_mutation_id: input.client_mutation_id, sent: sent as i32 })
    }

    /// 生成账单 (`bill:run`): writes the month's bills for the project (or the buildings,
    /// houses or owners given) in one transaction. Running again adds nothing; unpaid bills
    /// whose lines changed are written again; a bill with a payment is left as it is.
    #[graphql(guard = "Perm::BillRun")]
    async fn run_bills(&self, ctx: &Context<'_>, input: BillRunInput) -> async_graphql::Result<RunBillsPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let run = input.to_run()?;
        let id = service::run_bills(ctx.state(), &actor, &retry, run).await?;
        Ok(RunBillsPayload::new(input.client_mutation_id, id))
    }

    /// 计费开始日期 (`fee:write`): the day houses start to be charged (handover, move-in);
    /// the month it falls in is billed by its days.
    #[graphql(guard = "Perm::FeeWrite")]
    async fn set_charge_start(
        &self,
        ctx: &Context<'_>,
        input: SetChargeStartInput,
    ) -> async_graphql::Result<SetChargeStartPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let houses = parse_ids("houseIds", &input.house_ids)?;
        let c = service::set_charge_start(ctx.state(), &actor, &retry, houses, input.charge_start).await?;
        Ok(SetChargeStartPayload { client_mutation_id: input.client_mutation_id, houses: n(c) })
    }

    /// 设置滞纳金 (`fee:write`): accrued daily by the scheduler on overdue bills beside
    /// their total, capped; what already accrued stays.
    #[graphql(guard = "Perm::FeeWrite")]
    async fn set_late_fee_policy(
        &self,
        ctx: &Context<'_>,
        input: SetLateFeePolicyInput,
    ) -> async_graphql::Result<SetLateFeePolicyPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let p = parse_id("projectId", &input.project_id)?;
        let project = service::set_late_fee_policy(
            ctx.state(),
            &actor,
            &retry,
            p,
            input.daily_rate,
            input.grace_days,
            input.cap_ratio,
        )
        .await?;
        Ok(SetLateFeePolicyPayload { client_mutation_id: input.client_mutation_id, project })
    }

    /// 滞纳金减免申请 (`payment:write` or `bill:run`): someone else with `bill:approve`
    /// decides it (`decideApproval`); approved, the late fee is gone and stops accruing.
    async fn request_late_fee_waiver(
        &self,
        ctx: &Context<'_>,
        input: RequestLateFeeWaiverInput,
    ) -> async_graphql::Result<crate::rbac::graphql::ApprovalPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let bill = parse_id("billId", &input.bill_id)?;
        let id = service::request_late_fee_waiver(ctx.state(), &actor, &retry, bill, &input.reason).await?;
        Ok(crate::rbac::graphql::ApprovalPayload::new(input.client_mutation_id, id))
    }

    /// 线下收款 (`payment:write`): cash, a transfer or POS against one payer's bills of one
    /// project, all they owe or part of it (the oldest bills first), with a numbered receipt.
    #[graphql(guard = "Perm::PaymentWrite")]
    async fn record_payment(
        &self,
        ctx: &Context<'_>,
        input: RecordPaymentInput,
    ) -> async_graphql::Result<RecordPaymentPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = PaymentInput {
            bill_ids: parse_ids("billIds", &input.bill_ids)?,
            amount: Money::from_decimal("amount", input.amount, false)?,
            method: input.method.into(),
            reference: input.reference,
            note: input.note,
        };
        let id = service::record_payment(ctx.state(), &actor, &retry, i).await?;
        Ok(RecordPaymentPayload::new(input.client_mutation_id, id))
    }
}

/// 欠费 what a house or a space owes on overdue bills.
#[derive(SimpleObject)]
pub struct ArrearsLine {
    /// the house (or)
    pub house_id: Option<ID>,
    /// the parking space
    pub parking_space_id: Option<ID>,
    /// the building
    pub building_id: Option<ID>,
    /// 1栋1单元101, or the space's code
    pub place: String,
    /// who pays (an owner record)
    pub payer_id: ID,
    /// their name
    pub payer_name: String,
    /// overdue bills
    pub bills: i32,
    /// what they still owe (total + late fees − paid)
    pub outstanding: Money,
    /// the earliest due date among them
    pub oldest_due: NaiveDate,
}

/// A building's arrears.
#[derive(SimpleObject)]
pub struct ArrearsBuilding {
    /// the building (none: parking spaces)
    pub building_id: Option<ID>,
    /// its name
    pub name: Option<String>,
    /// houses owing
    pub houses: i32,
    /// what they owe
    pub outstanding: Money,
}

/// 欠费统计 a project's overdue bills today.
#[derive(SimpleObject)]
pub struct ArrearsReport {
    /// the day it was computed for (Shanghai)
    pub as_of: NaiveDate,
    /// houses and spaces owing
    pub houses: i32,
    /// what they owe in all
    pub outstanding: Money,
    /// per building
    pub by_building: Vec<ArrearsBuilding>,
    /// the largest debts first (up to `first`)
    pub lines: Vec<ArrearsLine>,
    /// every line as CSV (UTF-8 with a BOM; formula-like cells neutralised)
    pub csv: String,
}

/// 收缴率 one month.
#[derive(SimpleObject)]
pub struct CollectionRate {
    /// the month
    pub period: NaiveDate,
    /// bills issued
    pub bills: i32,
    /// of them settled
    pub paid_bills: i32,
    /// what they billed
    pub billed: Money,
    /// what was collected of it
    pub collected: Money,
    /// collected ÷ billed, 4 decimals
    pub rate: Decimal,
}

#[derive(Default)]
pub struct BillReportQuery;

#[Object]
impl BillReportQuery {
    /// 欠费统计 (`bill:read`): houses and spaces with bills past their due date, per
    /// building and the largest first, with a CSV of them all.
    async fn arrears_report(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        #[graphql(desc = "lines listed (1-500, 50 by default); the CSV has them all")] first: Option<i32>,
    ) -> async_graphql::Result<ArrearsReport> {
        let actor = ctx.actor()?;
        let first = crate::kit::types::page_size(first, 50, 500)?;
        let report = service::arrears(ctx.state(), &actor, parse_id("projectId", &project_id)?).await?;
        Ok(ArrearsReport {
            as_of: report.as_of,
            houses: n(report.lines.len()),
            outstanding: Money::round(report.outstanding),
            by_building: report
                .by_building
                .into_iter()
                .map(|b| ArrearsBuilding {
                    building_id: b.building_id.map(to_id),
                    name: b.name,
                    houses: n(b.houses),
                    outstanding: Money::round(b.outstanding),
                })
                .collect(),
            lines: report
                .lines
                .into_iter()
                .take(first)
                .map(|r| ArrearsLine {
                    house_id: r.house_id.map(to_id),
                    parking_space_id: r.parking_space_id.map(to_id),
                    building_id: r.building_id.map(to_id),
                    place: r.place,
                    payer_id: to_id(r.payer_id),
                    payer_name: r.payer_name,
                    bills: i32::try_from(r.bills).unwrap_or(i32::MAX),
                    outstanding: Money::round(r.outstanding),
                    oldest_due: r.oldest_due,
                })
                .collect(),
            csv: report.csv,
        })
    }

    /// 收缴率 (`bill:read`): per month `from`…`to` (first days, at most 36 months), what was
    /// billed and what was collected of it.
    async fn collection_rates(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        from: NaiveDate,
        to: NaiveDate,
    ) -> async_graphql::Result<Vec<CollectionRate>> {
        let actor = ctx.actor()?;
        let rows = service::collection(ctx.state(), &actor, parse_id("projectId", &project_id)?, from, to).await?;
        Ok(rows
            .into_iter()
            .map(|c| CollectionRate {
                period: c.period,
                bills: i32::try_from(c.bills).unwrap_or(i32::MAX),
                paid_bills: i32::try_from(c.paid_bills).unwrap_or(i32::MAX),
                billed: Money::round(c.billed),
                collected: Money::round(c.collected),
                rate: c.rate(),
            })
            .collect())
    }
}
