//! 账单生成: a run computes every bill of a month for a project (or some buildings,
//! houses or owners) from the fee items, the meter readings and pending work-order
//! charges; a preview writes nothing, a commit writes the bills in one transaction.
//! Running again adds nothing; a bill nobody has paid yet is regenerated when its lines
//! change (a corrected reading), a bill with a payment is left for an approved
//! adjustment. Payments by finance are allocated to the oldest bills first and numbered.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model::{self, Bill, BillStatus, Line, LineKind, Payment, PaymentMethod, Span};
use super::repo::{self, HouseRow, PendingCharge};
use crate::billing::fees::model::{Basis, FeeItem, FeeKind, Method, Payer, PayingResident, Price, Scope, amount};
use crate::billing::meters::model::HouseUsage;
use crate::billing::meters::service as meters;
use crate::equipment::model::DeviceCategory;
use crate::kit::audit;
use crate::kit::clock::BUSINESS_TZ;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::money::Money;
use crate::kit::state::AppState;
use crate::rbac::model::{Actor, Perm};

fn invalid(field: &'static str, zh: &'static str, en: &'static str) -> AppError {
    AppError::validation(field, Msg::new(zh, en))
}

/// Which houses a run covers: the whole project when all lists are empty.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunScope {
    pub building_ids: Vec<Uuid>,
    pub house_ids: Vec<Uuid>,
    pub owner_ids: Vec<Uuid>,
}

#[derive(Debug, Clone)]
pub struct RunInput {
    pub project_id: Uuid,
    pub period: NaiveDate,
    pub due_date: Option<NaiveDate>,
    pub scope: RunScope,
}

crate::text_enum! {
    /// Why a house or a space got no bill (or kept the one it had).
    pub enum SkipReason {
        /// nobody to pay: no owner registered
        NoPayer = "no_payer",
        /// a meter of a metered item has no reading of the month (or no earlier one)
        NoReading = "no_reading",
        /// a meter's reading is held for review
        FlaggedReading = "flagged_reading",
        /// the bill has a payment: a change needs an approved adjustment
        HasPayment = "has_payment",
        /// a line could not be computed (a formula, a missing indoor area)
        Unbillable = "unbillable",
    }
}

#[derive(Debug, Clone)]
pub struct Skipped {
    pub house_id: Option<Uuid>,
    pub parking_space_id: Option<Uuid>,
    pub reason: SkipReason,
    pub detail: String,
}

#[derive(Debug, Clone, Default)]
pub struct BuildingTotal {
    pub building_id: Option<Uuid>,
    pub bills: usize,
    pub total: Decimal,
}

/// What a run would do (preview) or did (commit).
#[derive(Debug, Clone, Default)]
pub struct RunOutcome {
    pub run_id: Option<Uuid>,
    pub period: NaiveDate,
    pub due_date: NaiveDate,
    pub created: usize,
    pub regenerated: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub lines: usize,
    /// the total of the bills the run covers (new, regenerated and unchanged)
    pub total: Decimal,
    pub by_building: Vec<BuildingTotal>,
    /// per reason, how many
    pub skip_counts: Vec<(SkipReason, usize)>,
    /// the first 200 skipped, with the reason
    pub skipped_list: Vec<Skipped>,
}

/// The work a commit does.
#[derive(Default)]
struct Plan {
    new_bills: Vec<Bill>,
    changed_bills: Vec<Bill>,
    delete_lines: Vec<Uuid>,
    lines: Vec<Line>,
    charges: Vec<(Uuid, Uuid)>,
    outcome: RunOutcome,
}

/// One computed bill before it is compared with what exists.
struct Draft {
    building_id: Option<Uuid>,
    house_id: Option<Uuid>,
    space_id: Option<Uuid>,
    resident: PayingResident,
    payer: Option<Uuid>,
    fees: Vec<Line>,
    charges: Vec<PendingCharge>,
}

fn covers(f: &FeeItem, h: &HouseRow) -> bool {
    match f.scope {
        Scope::All => true,
        Scope::Buildings => f.building_ids.contains(&h.building_id),
        Scope::Usage => f.house_usage == Some(h.usage),
        Scope::Houses => f.house_ids.contains(&h.id),
    }
}

/// The price in force on a day: the latest from that day or before (prices oldest first).
fn price_on(prices: &[Price], day: NaiveDate) -> Option<&Price> {
    prices.iter().rev().find(|p| p.effective_from <= day)
}

enum LineError {
    Skip(SkipReason, String),
}

/// The fee line of one item for one house (or space) and span.
fn fee_line(
    f: &FeeItem,
    prices: &[Price],
    s: &Span,
    area: Decimal,
    indoor: Option<Decimal>,
    usage: Option<&HouseUsage>,
) -> Result<Option<Line>, LineError> {
    let Some(price) = price_on(prices, s.from) else { return Ok(None) };
    let metered = matches!(f.method, Method::Metered | Method::Tiered);
    let mut basis = Basis {
        building_area: area,
        indoor_area: indoor,
        months: Decimal::from(s.months),
        days: Decimal::from(s.days),
        prorate: (!s.full()).then(|| (Decimal::from(s.days), Decimal::from(s.cycle_days))),
        usage: None,
    };
    if f.method == Method::Formula {
        // the exact fraction (never the 4-decimal months printed on the line)
        basis.months = Decimal::from(s.months) * Decimal::from(s.days) / Decimal::from(s.cycle_days);
        basis.prorate = None;
    }
    let (mut prev, mut cur) = (None, None);
    if metered {
        // a house without a meter of the category does not pay by it
        let Some(u) = usage else { return Ok(None) };
        if u.flagged > 0 {
            return Err(LineError::Skip(SkipReason::FlaggedReading, f.name.clone()));
        }
        if u.missing > 0 {
            return Err(LineError::Skip(SkipReason::NoReading, f.name.clone()));
        }
        basis.usage = Some(u.usage);
        prev = u.previous;
        cur = u.current;
    }
    let l = amount(f.method, price, &basis)
        .map_err(|e| LineError::Skip(SkipReason::Unbillable, format!("{}：{e}", f.name)))?;
    // what the line's columns hold: NUMERIC(14,4) prices, NUMERIC(16,4) quantities
    if l.unit_price.abs() >= Decimal::from(10_000_000_000i64) || l.quantity.abs() >= Decimal::from(1_000_000_000_000i64)
    {
        return Err(LineError::Skip(SkipReason::Unbillable, format!("{}：金额超出范围", f.name)));
    }
    Ok(Some(Line {
        id: Uuid::nil(),
        bill_id: Uuid::nil(),
        kind: LineKind::Fee,
        fee_item_id: Some(f.id),
        charge_id: None,
        name: f.name.clone(),
        quantity: l.quantity.round_dp(4),
        unit_price: l.unit_price,
        months: (!metered).then(|| model::months_of(s)),
        previous_reading: prev,
        current_reading: cur,
        amount: l.amount.yuan(),
        position: 0,
    }))
}

/// Computes the run: every draft bill against the bills the period already has.
async fn plan(
    state: &AppState,
    conn: &mut sqlx::PgConnection,
    actor: &Actor,
    i: &RunInput,
    due: NaiveDate,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<Plan> {
    let s = &i.scope;
    let whole = s.building_ids.is_empty() && s.house_ids.is_empty();
    // what the run reads, at once on several connections (each is one statement: under READ
    // COMMITTED the run's own transaction would see no other state); the pending charges are
    // locked in the run's transaction below
    let db = &state.db;
    let (items, usage, discounts, houses, spaces, reliefs, existing, old_lines, paying) = tokio::try_join!(
        crate::billing::fees::service::billable(state, i.project_id),
        meters::house_usage(state, i.project_id, i.period),
        crate::billing::fees::service::discounts_of_month(state, i.project_id, i.period),
        async { Ok::<_, AppError>(repo::houses(db, i.project_id, &s.building_ids, &s.house_ids, &s.owner_ids).await?) },
        async {
            if whole { Ok::<_, AppError>(repo::spaces(db, i.project_id, &s.owner_ids).await?) } else { Ok(Vec::new()) }
        },
        async { Ok::<_, AppError>(repo::reliefs(db, i.project_id, i.period).await?) },
        async { Ok::<_, AppError>(repo::bills_of_period(db, i.project_id, i.period).await?) },
        async { Ok::<_, AppError>(repo::lines_of_period(db, i.project_id, i.period).await?) },
        async { Ok::<_, AppError>(repo::bills_being_paid(db, i.project_id).await?) },
    )?;
    let usage: HashMap<(Uuid, DeviceCategory), HouseUsage> = usage;
    let mut charges: HashMap<Uuid, Vec<PendingCharge>> = HashMap::new();
    for c in repo::pending_charges(&mut *conn, i.project_id, meters::period_end(i.period)).await? {
        charges.entry(c.house_id).or_default().push(c);
    }
    let reliefs: HashMap<Uuid, Decimal> = reliefs.into_iter().collect();
    let shared = meters::shared_usage(state, i.project_id, i.period, &usage).await?;
    let mut plan = Plan::default();
    let out = &mut plan.outcome;
    out.period = i.period;
    out.due_date = due;
    let mut drafts: Vec<Draft> = Vec::with_capacity(houses.len() + spaces.len());
    let skip = |out: &mut RunOutcome, house: Option<Uuid>, space: Option<Uuid>, reason: SkipReason, detail: String| {
        out.skipped += 1;
        if out.skipped_list.len() < 200 {
            out.skipped_list.push(Skipped { house_id: house, parking_space_id: space, reason, detail });
        }
        match out.skip_counts.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => out.skip_counts.push((reason, 1)),
        }
    };
    // houses and spaces computed (not skipped): a bill of theirs that the run no longer
    // computes is emptied of its fee lines below
    let mut processed: HashSet<(Option<Uuid>, Option<Uuid>)> = HashSet::new();
    'houses: for h in &houses {
        let mut owner = Draft {
            building_id: Some(h.building_id),
            house_id: Some(h.id),
            space_id: None,
            resident: PayingResident::Owner,
            payer: h.owner_id,
            fees: Vec::new(),
            charges: charges.remove(&h.id).unwrap_or_default(),
        };
        let mut tenant = Draft {
            resident: PayingResident::Tenant,
            payer: h.tenant_id,
            fees: Vec::new(),
            charges: Vec::new(),
            ..owner
        };
        for (f, prices) in &items {
            if f.payer != Payer::House || !covers(f, h) {
                continue;
            }
            let Some(span) = model::span(f.cycle, i.period, f.effective_from, f.effective_to, h.charge_start) else {
                continue;
            };
            // a SHARED item bills the house's share of the shared meters of its category
            let u = f
                .meter_category
                .and_then(|c| if f.kind == FeeKind::Shared { shared.get(&(h.id, c)) } else { usage.get(&(h.id, c)) });
            match fee_line(f, prices, &span, h.building_area, h.indoor_area, u) {
                Ok(Some(l)) if f.paying_resident == PayingResident::Tenant && h.tenant_id.is_some() => {
                    tenant.fees.push(l)
                }
                Ok(Some(l)) => owner.fees.push(l),
                Ok(None) => {}
                Err(LineError::Skip(reason, detail)) => {
                    skip(out, Some(h.id), None, reason, detail);
                    continue 'houses;
                }
            }
        }
        // 优惠 and 空置房优惠 (an approved share of the property fee): one discount line per
        // fee line, each part computed on the line's amount
        if !discounts.is_empty() || reliefs.contains_key(&h.id) {
            for d in [&mut owner, &mut tenant] {
                let off: Vec<Line> = d
                    .fees
                    .iter()
                    .filter(|l| l.kind == LineKind::Fee)
                    .filter_map(|l| {
                        let property =
                            items.iter().any(|(f, _)| Some(f.id) == l.fee_item_id && f.kind == FeeKind::Property);
                        let mut parts: Vec<(String, Decimal)> = discounts
                            .iter()
                            .filter(|x| Some(x.fee_item_id) == l.fee_item_id)
                            .filter_map(|x| x.off(Some(h.id), l.amount, l.months).map(|o| (x.name.clone(), o)))
                            .collect();
                        if let (true, Some(ratio)) = (property, reliefs.get(&h.id)) {
                            let pct = (*ratio * Decimal::ONE_HUNDRED).normalize();
                            parts.push((format!("空置房优惠{pct}%"), l.amount * *ratio));
                        }
                        discount_line(l, &parts)
                    })
                    .collect();
                d.fees.extend(off);
            }
        }
        for d in [owner, tenant] {
            if d.fees.is_empty() && d.charges.is_empty() {
                continue;
            }
            if d.payer.is_none() {
                skip(out, Some(h.id), None, SkipReason::NoPayer, String::new());
                continue 'houses;
            }
            drafts.push(d);
        }
        processed.insert((Some(h.id), None));
    }
    for (space, owner_id) in &spaces {
        let mut skipped = false;
        let mut d = Draft {
            building_id: None,
            house_id: None,
            space_id: Some(*space),
            resident: PayingResident::Owner,
            payer: Some(*owner_id),
            fees: Vec::new(),
            charges: Vec::new(),
        };
        for (f, prices) in &items {
            if f.payer != Payer::ParkingSpace {
                continue;
            }
            let Some(span) = model::span(f.cycle, i.period, f.effective_from, f.effective_to, None) else { continue };
            match fee_line(f, prices, &span, Decimal::ZERO, None, None) {
                Ok(Some(l)) => d.fees.push(l),
                Ok(None) => {}
                Err(LineError::Skip(reason, detail)) => {
                    skip(out, None, Some(*space), reason, detail);
                    skipped = true;
                    break;
                }
            }
        }
        if skipped {
            continue;
        }
        processed.insert((None, Some(*space)));
        if !d.fees.is_empty() {
            drafts.push(d);
        }
    }
    // what the period has already
    let mut lines_by_bill: HashMap<Uuid, Vec<Line>> = HashMap::new();
    for l in old_lines {
        lines_by_bill.entry(l.bill_id).or_default().push(l);
    }
    let mut old_lines = lines_by_bill;
    let mut by_key: HashMap<(Option<Uuid>, Option<Uuid>, PayingResident), Bill> = existing
        .into_iter()
        .map(|b| {
            (
                (
                    b.house_id,
                    b.parking_space_id,
                    if b.parking_space_id.is_some() { PayingResident::Owner } else { b.paying_resident },
                ),
                b,
            )
        })
        .collect();
    // a house or space with a payment on any of its bills of the month changes only by an
    // approved adjustment: no new bill beside the paid one. A bill in an open online order
    // is held the same way: the owner is paying what the order says.
    let paying: HashSet<Uuid> = paying.into_iter().collect();
    // a bill with an approved adjustment is held too: the adjustment was decided against
    // its lines as they were
    let adjusted: HashSet<Uuid> =
        old_lines.iter().filter(|(_, ls)| ls.iter().any(|l| l.kind == LineKind::Adjustment)).map(|(b, _)| *b).collect();
    let held = |b: &Bill| !b.paid.is_zero() || paying.contains(&b.id) || adjusted.contains(&b.id);
    let paid_targets: HashSet<(Option<Uuid>, Option<Uuid>)> =
        by_key.values().filter(|b| held(b)).map(|b| (b.house_id, b.parking_space_id)).collect();
    let mut buildings: BTreeMap<Option<Uuid>, BuildingTotal> = BTreeMap::new();
    for d in drafts {
        let key = (d.house_id, d.space_id, d.resident);
        let Some(payer) = d.payer else { continue };
        if paid_targets.contains(&(d.house_id, d.space_id)) && !by_key.contains_key(&key) {
            skip(&mut plan.outcome, d.house_id, d.space_id, SkipReason::HasPayment, String::new());
            continue;
        }
        let (bill, lines_total) = match by_key.remove(&key) {
            None => {
                let id = Uuid::now_v7();
                let mut lines = d.fees;
                lines.extend(d.charges.iter().map(charge_line));
                let mut total = Decimal::ZERO;
                for (n, l) in lines.iter_mut().enumerate() {
                    l.id = Uuid::now_v7();
                    l.bill_id = id;
                    l.position = n as i32;
                    total += l.amount;
                }
                let total = Money::round(total);
                let bill = Bill {
                    id,
                    company_id: actor.company_id,
                    project_id: i.project_id,
                    building_id: d.building_id,
                    house_id: d.house_id,
                    parking_space_id: d.space_id,
                    period: i.period,
                    paying_resident: d.resident,
                    payer_id: payer,
                    run_id: None,
                    total: total.yuan(),
                    late_fee: Decimal::ZERO,
                    paid: Decimal::ZERO,
                    status: model::status_of(total, Money::ZERO, Money::ZERO),
                    due_date: due,
                    issued_at: now,
                    // a bill of nothing is settled as it is issued
                    paid_at: total.yuan().is_zero().then_some(now),
                    updated_at: now,
                };
                plan.charges.extend(d.charges.iter().map(|c| (c.id, id)));
                plan.lines.extend(lines);
                plan.outcome.created += 1;
                plan.new_bills.push(bill.clone());
                (bill, total)
            }
            Some(old) => {
                let have = old_lines.remove(&old.id).unwrap_or_default();
                let mut old_fees: Vec<&Line> = have.iter().filter(|l| l.kind.computed()).collect();
                old_fees.sort_by_key(|l| (l.fee_item_id, l.kind));
                let mut new_fees = d.fees;
                new_fees.sort_by_key(|l| (l.fee_item_id, l.kind));
                let same =
                    old_fees.len() == new_fees.len() && old_fees.iter().zip(&new_fees).all(|(a, b)| a.same_as(b));
                if same && d.charges.is_empty() {
                    plan.outcome.unchanged += 1;
                    let t = Money::round(old.total);
                    (old, t)
                } else if held(&old) {
                    if !same {
                        skip(
                            &mut plan.outcome,
                            old.house_id,
                            old.parking_space_id,
                            SkipReason::HasPayment,
                            String::new(),
                        );
                    } else {
                        plan.outcome.unchanged += 1;
                    }
                    let t = Money::round(old.total);
                    (old, t)
                } else {
                    // regenerated: new fee lines, kept charge and adjustment lines, new charges
                    let kept: Vec<&Line> = have.iter().filter(|l| !l.kind.computed()).collect();
                    plan.delete_lines.extend(old_fees.iter().map(|l| l.id));
                    let mut total: Decimal = kept.iter().map(|l| l.amount).sum();
                    let first = have.iter().map(|l| l.position).max().unwrap_or(0) + 1;
                    let mut lines = new_fees;
                    lines.extend(d.charges.iter().map(charge_line));
                    for (pos, l) in (first..).zip(lines.iter_mut()) {
                        l.id = Uuid::now_v7();
                        l.bill_id = old.id;
                        l.position = pos;
                        total += l.amount;
                    }
                    let total = Money::round(total);
                    plan.charges.extend(d.charges.iter().map(|c| (c.id, old.id)));
                    plan.lines.extend(lines);
                    let bill = Bill {
                        total: total.yuan(),
                        payer_id: payer,
                        due_date: due,
                        status: model::status_of(total, Money::round(old.late_fee), Money::ZERO),
                        paid_at: (model::status_of(total, Money::round(old.late_fee), Money::ZERO) == BillStatus::Paid)
                            .then_some(now),
                        updated_at: now,
                        ..old
                    };
                    plan.outcome.regenerated += 1;
                    plan.changed_bills.push(bill.clone());
                    (bill, total)
                }
            }
        };
        let b = buildings
            .entry(bill.building_id)
            .or_insert_with(|| BuildingTotal { building_id: bill.building_id, ..BuildingTotal::default() });
        b.bills += 1;
        b.total += lines_total.yuan();
        plan.outcome.total += lines_total.yuan();
    }
    // bills of computed houses the run no longer computes (a tenant gone, an item ended):
    // unpaid ones lose their fee lines, paid ones wait for an adjustment
    let mut leftovers: Vec<Bill> =
        by_key.into_values().filter(|b| processed.contains(&(b.house_id, b.parking_space_id))).collect();
    leftovers.sort_by_key(|b| b.id);
    for old in leftovers {
        let have = old_lines.remove(&old.id).unwrap_or_default();
        let fees: Vec<Uuid> = have.iter().filter(|l| l.kind.computed()).map(|l| l.id).collect();
        let total = if fees.is_empty() {
            plan.outcome.unchanged += 1;
            Money::round(old.total)
        } else if held(&old) || paid_targets.contains(&(old.house_id, old.parking_space_id)) {
            skip(&mut plan.outcome, old.house_id, old.parking_space_id, SkipReason::HasPayment, String::new());
            continue;
        } else {
            let total = Money::round(have.iter().filter(|l| !l.kind.computed()).map(|l| l.amount).sum());
            let status = model::status_of(total, Money::round(old.late_fee), Money::ZERO);
            plan.delete_lines.extend(fees);
            plan.outcome.regenerated += 1;
            plan.changed_bills.push(Bill {
                total: total.yuan(),
                due_date: due,
                status,
                paid_at: (status == BillStatus::Paid).then_some(now),
                updated_at: now,
                ..old.clone()
            });
            total
        };
        let b = buildings
            .entry(old.building_id)
            .or_insert_with(|| BuildingTotal { building_id: old.building_id, ..BuildingTotal::default() });
        b.bills += 1;
        b.total += total.yuan();
        plan.outcome.total += total.yuan();
    }
    plan.outcome.lines = plan.lines.len();
    plan.outcome.by_building = buildings.into_values().collect();
    Ok(plan)
}

/// 账单通知 every payer of a run's bills that still owe something (after prepaid balances
/// paid what they could): in the app and by push to owners who use the app; by SMS (the
/// amount owed and the due date) to those who have not activated it or have no phone
/// registered for push. Outside the run's transaction, once per run: the run's row is
/// locked and marked in the transaction that queues the notices.
pub async fn notify_run(state: &AppState, run: Uuid) -> AppResult<usize> {
    use crate::notify::model::{Category, Priority};
    let mut tx = state.db.begin().await?;
    let Some((company, created_at)) = repo::claim_run_notices(&mut tx, run).await? else { return Ok(0) };
    let bills = repo::run_notices(&mut tx, run, created_at).await?;
    let owners: Vec<Uuid> = bills.iter().map(|b| b.payer_id).collect();
    let reach = payer_channels(state, &mut tx, &owners).await?;
    let mut items = Vec::with_capacity(bills.len());
    for b in &bills {
        let Some((user, channels)) = reach.get(&b.payer_id) else { continue };
        let month = format!("{}年{}月", b.period.year(), b.period.month());
        let what = if b.space { "车位" } else { "房屋" };
        items.push(crate::notify::service::Personal {
            user_id: *user,
            title: if b.changed { format!("{month}账单已更新") } else { format!("{month}物业账单") },
            body: format!("您的{what}{month}账单 {} 元，请于 {} 前缴纳。", Money::round(b.owed), b.due_date),
            data: serde_json::json!({ "route": "bill", "id": b.id }),
            channels: channels.clone(),
        });
    }
    let sent =
        crate::notify::service::enqueue_each(state, &mut tx, company, Category::Bill, Priority::Normal, &items).await?;
    repo::set_run_notified(&mut tx, run, i32::try_from(sent).unwrap_or(i32::MAX), state.clock.now()).await?;
    tx.commit().await?;
    Ok(sent)
}

/// The notices of a run just committed, queued in the background (the scheduler queues
/// them if this process stops first).
pub fn notify_run_later(state: &AppState, run: Uuid) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = notify_run(&state, run).await {
            e.log_if_internal();
            tracing::warn!(%run, error = %e, "bill notices failed; the scheduler will retry");
        }
    });
}

/// Runs whose notices were never queued (the process stopped after the commit): a minute
/// after their commit, so the request that ran them goes first.
pub async fn notify_runs(state: &AppState) -> AppResult<usize> {
    let before = state.clock.now() - chrono::TimeDelta::seconds(60);
    let mut sent = 0;
    for run in repo::unnotified_runs(&state.db, before, 10).await? {
        // one run that fails never holds up the others
        match notify_run(state, run).await {
            Ok(n) => sent += n,
            Err(e) => {
                e.log_if_internal();
                tracing::warn!(%run, error = %e, "bill notices failed; retried next round");
            }
        }
    }
    Ok(sent)
}

/// How each payer is reached: push and the inbox for owners who use the app with a phone
/// registered, else SMS and the inbox. Owners without an account are left out.
async fn payer_channels(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    owners: &[Uuid],
) -> AppResult<HashMap<Uuid, (Uuid, Vec<crate::notify::model::Channel>)>> {
    use crate::notify::model::Channel;
    let mut owners = owners.to_vec();
    owners.sort();
    owners.dedup();
    let accounts = repo::payer_accounts(&mut *tx, &owners).await?;
    let users: Vec<Uuid> = accounts.iter().map(|a| a.1).collect();
    let pushable = crate::notify::service::with_push_devices(state, &users).await?;
    Ok(accounts
        .into_iter()
        .map(|(owner, user, active)| {
            let channels = if active && pushable.contains(&user) {
                vec![Channel::InApp, Channel::Push]
            } else {
                vec![Channel::InApp, Channel::Sms]
            };
            (owner, (user, channels))
        })
        .collect())
}

/// The discount line of a fee line: its parts added, never more than the line, rounded
/// half-up to the fen once; none when nothing is off.
fn discount_line(fee: &Line, parts: &[(String, Decimal)]) -> Option<Line> {
    let total: Decimal = parts.iter().map(|p| p.1).sum();
    let off = Money::round(total.min(fee.amount)).yuan();
    if off <= Decimal::ZERO {
        return None;
    }
    let names: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
    Some(Line {
        id: Uuid::nil(),
        bill_id: Uuid::nil(),
        kind: LineKind::Discount,
        fee_item_id: fee.fee_item_id,
        charge_id: None,
        name: format!("{}优惠（{}）", fee.name, names.join("、")),
        quantity: Decimal::ONE,
        unit_price: -off,
        months: None,
        previous_reading: None,
        current_reading: None,
        amount: -off,
        position: 0,
    })
}

fn charge_line(c: &PendingCharge) -> Line {
    Line {
        id: Uuid::nil(),
        bill_id: Uuid::nil(),
        kind: LineKind::Charge,
        fee_item_id: None,
        charge_id: Some(c.id),
        name: c.description.chars().take(60).collect(),
        quantity: Decimal::ONE,
        unit_price: c.amount,
        months: None,
        previous_reading: None,
        current_reading: None,
        amount: c.amount,
        position: 0,
    }
}

/// The checked input: the project (`bill:run` on it), the ids in it, the month, the due day.
async fn checked(state: &AppState, actor: &Actor, i: RunInput) -> AppResult<(RunInput, NaiveDate)> {
    crate::org::company::service::project(state, actor, Perm::BillRun, i.project_id).await?;
    let mut i = i;
    let s = &mut i.scope;
    if s.building_ids.len() > 200 || s.house_ids.len() > 5000 || s.owner_ids.len() > 5000 {
        return Err(invalid(
            "scope",
            "最多200个楼栋、5000户或5000位业主",
            "At most 200 buildings, 5000 houses or 5000 owners",
        ));
    }
    for list in [&mut s.building_ids, &mut s.house_ids, &mut s.owner_ids] {
        list.sort();
        list.dedup();
    }
    for b in &s.building_ids {
        let building = crate::org::estate::service::building(state, actor, *b).await?;
        if building.project_id != i.project_id {
            return Err(invalid("buildingIds", "楼栋不属于该项目", "A building is not in this project"));
        }
    }
    for h in &s.house_ids {
        if crate::org::estate::service::house_project(state, actor, *h).await? != i.project_id {
            return Err(invalid("houseIds", "房屋不属于该项目", "A house is not in this project"));
        }
    }
    for o in &s.owner_ids {
        crate::org::owners::service::owner(state, actor, *o).await?;
    }
    // every id is the caller's before anything else is said of the input
    let lists = [!i.scope.building_ids.is_empty(), !i.scope.house_ids.is_empty(), !i.scope.owner_ids.is_empty()];
    if lists.iter().filter(|x| **x).count() > 1 {
        return Err(invalid(
            "scope",
            "按楼栋、房屋或业主之一选择范围",
            "Narrow by buildings, houses or owners: one of them",
        ));
    }
    let period = meters::check_period(state, i.period)?;
    let default_due = crate::billing::meters::model::next_month(period) + chrono::Days::new(14);
    let due = i.due_date.unwrap_or(default_due);
    if due < period || due > period + chrono::Days::new(400) {
        return Err(invalid(
            "dueDate",
            "缴费截止日应在账期开始后一年内",
            "The due date is within a year of the period",
        ));
    }
    Ok((i, due))
}

/// 预览 what a run would generate: counts, totals per building, skipped houses with the
/// reason. Writes nothing.
pub async fn preview(state: &AppState, actor: &Actor, i: RunInput) -> AppResult<RunOutcome> {
    let (i, due) = checked(state, actor, i).await?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let plan = plan(state, &mut tx, actor, &i, due, now).await?;
    tx.rollback().await?;
    Ok(plan.outcome)
}

/// 生成账单 the run written in one transaction (runs of one project one at a time).
pub async fn commit(state: &AppState, actor: &Actor, retry: &Retry, i: RunInput) -> AppResult<Uuid> {
    let (i, due) = checked(state, actor, i).await?;
    let now = state.clock.now();
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let started = std::time::Instant::now();
    repo::lock_project_runs(&mut tx, i.project_id).await?;
    let mut plan = plan(state, &mut tx, actor, &i, due, now).await?;
    let planned = started.elapsed();
    let run = Uuid::now_v7();
    let o = &plan.outcome;
    let n = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
    let record = model::Run {
        id: run,
        project_id: i.project_id,
        period: i.period,
        due_date: due,
        created: n(o.created),
        regenerated: n(o.regenerated),
        unchanged: n(o.unchanged),
        skipped: n(o.skipped),
        total: o.total,
        created_by: Some(actor.user_id),
        created_at: now,
    };
    repo::insert_run(&mut tx, actor.company_id, &record, &serde_json::to_value(&i.scope).unwrap_or_default()).await?;
    for b in plan.new_bills.iter_mut().chain(plan.changed_bills.iter_mut()) {
        b.run_id = Some(run);
    }
    for chunk in plan.new_bills.chunks(10_000) {
        repo::insert_bills(&mut tx, chunk).await?;
    }
    for chunk in plan.changed_bills.chunks(10_000) {
        repo::update_bills(&mut tx, chunk).await?;
    }
    for chunk in plan.delete_lines.chunks(20_000) {
        repo::delete_lines(&mut tx, chunk).await?;
    }
    for chunk in plan.lines.chunks(20_000) {
        repo::insert_lines(&mut tx, actor.company_id, chunk).await?;
    }
    if !plan.charges.is_empty() {
        let (c, b): (Vec<Uuid>, Vec<Uuid>) = plan.charges.iter().copied().unzip();
        // the charges were locked when read: each is still pending
        if repo::mark_charges_billed(&mut tx, &c, &b).await? != c.len() as u64 {
            return Err(AppError::conflict(
                "projectId",
                Msg::new("维修费用已变更，请重试", "A charge changed meanwhile: run again"),
            ));
        }
    }
    audit::record(
        &mut tx,
        now,
        actor,
        "bill_run.commit",
        "bill_run",
        Some(run),
        serde_json::json!({ "projectId": i.project_id, "period": i.period, "dueDate": due, "scope": i.scope,
            "created": o.created, "regenerated": o.regenerated, "unchanged": o.unchanged, "skipped": o.skipped,
            "total": o.total.to_string() }),
    )
    .await?;
    tx.commit(&run).await?;
    tracing::info!(
        %run,
        created = plan.outcome.created,
        regenerated = plan.outcome.regenerated,
        lines = plan.outcome.lines,
        plan_ms = planned.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "bill run committed"
    );
    if plan.outcome.created + plan.outcome.regenerated >= 1_000 {
        let db = state.db.clone();
        tokio::spawn(async move {
            if let Err(e) = repo::analyze(&db).await {
                tracing::warn!(error = %e, "analyze after a bill run failed");
            }
        });
    }
    Ok(run)
}

/// 生成账单 as finance asks for it: the run committed; prepaid balances pay its bills at
/// once (the scheduler would, a moment later); then every payer is told what is left to
/// pay, in the background, outside the run's time. When the deduction fails the
/// scheduler does both, in that order.
pub async fn run_bills(state: &AppState, actor: &Actor, retry: &Retry, i: RunInput) -> AppResult<Uuid> {
    let project = i.project_id;
    let id = commit(state, actor, retry, i).await?;
    match crate::billing::prepaid::service::deduct(state, Some(project)).await {
        Ok(_) => notify_run_later(state, id),
        Err(e) => {
            e.log_if_internal();
            tracing::warn!(error = %e, "prepaid deduction after a run failed; the scheduler will retry");
        }
    }
    Ok(id)
}

/// A run as it was recorded.
pub async fn run(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<model::Run> {
    let r = repo::run(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("billRun"))?;
    if !actor.reaches(&[Perm::BillRead, Perm::BillRun], r.project_id) {
        return Err(AppError::not_found("billRun"));
    }
    Ok(r)
}

fn can_read(actor: &Actor, b: &Bill) -> bool {
    b.company_id == actor.company_id
        && (actor.reaches(&[Perm::BillRead, Perm::BillRun, Perm::PaymentWrite], b.project_id)
            || (actor.has(Perm::SelfHouse) && actor.owner_id == Some(b.payer_id)))
}

/// One bill: staff who read bills of its project, or the owner who pays it.
pub async fn bill(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Bill> {
    let b = repo::bill(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("bill"))?;
    if !can_read(actor, &b) {
        return Err(AppError::not_found("bill"));
    }
    Ok(b)
}

/// 我的账单 the bills the signed-in owner pays: unpaid first, then the latest month first.
pub async fn my_bills(
    state: &AppState,
    actor: &Actor,
    status: Option<BillStatus>,
    after: Option<(i16, NaiveDate, Uuid)>,
    limit: usize,
) -> AppResult<Vec<(i16, Bill)>> {
    actor.require(Perm::SelfHouse)?;
    let Some(owner) = actor.owner_id else { return Ok(Vec::new()) };
    Ok(repo::bills_of_payer(&state.db, owner, status, after, limit as i64).await?)
}

/// A project's bills of a month (`bill:read`), in id order.
#[allow(clippy::too_many_arguments)]
pub async fn bills(
    state: &AppState,
    actor: &Actor,
    project: Uuid,
    period: NaiveDate,
    status: Option<BillStatus>,
    building: Option<Uuid>,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Bill>> {
    if let Some(b) = building {
        crate::org::estate::service::building(state, actor, b).await?;
    }
    bills_reader(state, actor, project).await?;
    Ok(repo::bills(&state.db, actor.company_id, project, period, status, building, after, limit as i64).await?)
}

/// The lines of bills the caller has been shown.
pub async fn lines_of(state: &AppState, bills: &[Uuid]) -> AppResult<Vec<Line>> {
    Ok(repo::lines_of(&state.db, bills).await?)
}

/// The payments of bills the caller has been shown, with the part of each for each bill.
pub async fn payments_of(state: &AppState, bills: &[Uuid]) -> AppResult<Vec<(Uuid, Decimal, Payment)>> {
    Ok(repo::payments_of(&state.db, bills).await?)
}

/// An offline payment as finance records it.
#[derive(Debug, Clone)]
pub struct PaymentInput {
    pub bill_ids: Vec<Uuid>,
    pub amount: Money,
    pub method: PaymentMethod,
    pub reference: Option<String>,
    pub note: Option<String>,
}

/// 线下收款 (`payment:write`): cash, a bank transfer or a POS payment of one payer's bills
/// of one project, the whole of what they owe or part of it (the oldest bills first),
/// with a numbered receipt.
pub async fn record_payment(state: &AppState, actor: &Actor, retry: &Retry, i: PaymentInput) -> AppResult<Uuid> {
    let mut ids = i.bill_ids.clone();
    ids.sort();
    ids.dedup();
    if ids.is_empty() || ids.len() > 50 {
        return Err(invalid("billIds", "一次收款对应1到50张账单", "One payment settles 1 to 50 bills"));
    }
    let mut project = None;
    let mut payer = None;
    for id in &ids {
        let b = bill(state, actor, *id).await?;
        actor.require_project(Perm::PaymentWrite, b.project_id)?;
        if project.is_some_and(|p| p != b.project_id) || payer.is_some_and(|p| p != b.payer_id) {
            return Err(invalid(
                "billIds",
                "一次收款只能对应同一项目、同一缴费人的账单",
                "One payment is for one payer's bills of one project",
            ));
        }
        project = Some(b.project_id);
        payer = Some(b.payer_id);
    }
    let (Some(project), Some(payer)) = (project, payer) else {
        return Err(invalid("billIds", "请选择账单", "Give the bills"));
    };
    if matches!(i.method, PaymentMethod::Wechat | PaymentMethod::Alipay | PaymentMethod::Prepaid) {
        return Err(invalid(
            "method",
            "线上支付由支付平台通知登记",
            "Online payments are recorded from the provider's notification",
        ));
    }
    let reference = crate::kit::types::optional_text("reference", i.reference.as_deref(), 64)?;
    if reference.is_empty() && matches!(i.method, PaymentMethod::BankTransfer | PaymentMethod::Pos) {
        return Err(invalid(
            "reference",
            "转账和刷卡须填写交易参考号",
            "A transfer or POS payment needs its reference",
        ));
    }
    let note = crate::kit::types::optional_text("note", i.note.as_deref(), 200)?;
    if i.amount.is_negative() || i.amount.yuan().is_zero() {
        return Err(invalid("amount", "收款金额应大于0", "The amount must be above 0"));
    }
    let now = state.clock.now();
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let mut bills = repo::bills_for_update(&mut tx, actor.company_id, &ids).await?;
    // checked again on the locked rows: a run may have changed a bill's payer meanwhile
    if bills.len() != ids.len() || bills.iter().any(|b| b.project_id != project || b.payer_id != payer) {
        return Err(AppError::conflict(
            "billIds",
            Msg::new("账单已变更，请刷新后重试", "The bills changed: reload and retry"),
        ));
    }
    let owed: Decimal = bills.iter().map(Bill::outstanding).sum();
    if owed.is_zero() {
        return Err(AppError::conflict("billIds", Msg::new("所选账单已结清", "The bills are paid already")));
    }
    if i.amount.yuan() > owed {
        return Err(AppError::validation(
            "amount",
            Msg::owned(format!("收款金额超过应收 {owed}"), format!("The amount is more than the {owed} owed")),
        ));
    }
    let p = Payment {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        project_id: project,
        payer_id: payer,
        method: i.method,
        reference: (!reference.is_empty()).then_some(reference),
        amount: i.amount.yuan(),
        receipt_no: String::new(),
        note: (!note.is_empty()).then_some(note),
        received_by: Some(actor.user_id),
        received_at: now,
        unapplied: Decimal::ZERO,
        refunded: Decimal::ZERO,
    };
    let p = book(&mut tx, now, actor, p, &mut bills).await?;
    tx.commit(&p.id).await?;
    Ok(p.id)
}

/// Books a payment against locked bills of its payer, the oldest first, each up to what it
/// still owes; what is left over stays on the payment as unapplied (to be refunded). Numbers
/// the receipt, writes the allocations and the audit row, in the caller's transaction.
pub async fn book(
    tx: &mut sqlx::PgConnection,
    now: chrono::DateTime<chrono::Utc>,
    by: &dyn audit::Auditor,
    mut p: Payment,
    bills: &mut [Bill],
) -> AppResult<Payment> {
    let mut left = p.amount;
    let mut parts = Vec::new();
    let mut touched = Vec::new();
    for b in bills.iter_mut() {
        let part = b.outstanding().min(left);
        if part <= Decimal::ZERO {
            continue;
        }
        left -= part;
        b.paid += part;
        b.status = model::status_of(Money::round(b.total), Money::round(b.late_fee), Money::round(b.paid));
        if b.status == BillStatus::Paid {
            b.paid_at = Some(now);
        }
        b.updated_at = now;
        parts.push(part);
        touched.push(b.clone());
    }
    p.unapplied = left.max(Decimal::ZERO);
    let year = now.with_timezone(&BUSINESS_TZ).year();
    let no = repo::next_receipt(tx, p.company_id, year).await?;
    p.receipt_no = format!("SK{year}-{no:06}");
    repo::insert_payment(tx, &p).await?;
    if !touched.is_empty() {
        repo::allocate(tx, p.company_id, p.id, &touched, &parts).await?;
    }
    audit::record(
        tx,
        now,
        by,
        "payment.record",
        "payment",
        Some(p.id),
        serde_json::json!({ "receiptNo": p.receipt_no, "method": p.method, "amount": p.amount.to_string(),
            "reference": p.reference, "unapplied": p.unapplied.to_string(),
            "bills": touched.iter().zip(&parts).map(|(b, a)| serde_json::json!({ "billId": b.id, "amount": a.to_string() })).collect::<Vec<_>>() }),
    )
    .await?;
    Ok(p)
}

/// The next receipt number of the company (`SK2026-000123`), shared by payments and top-ups.
pub async fn next_receipt_no(
    tx: &mut sqlx::PgConnection,
    company: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<String> {
    let year = now.with_timezone(&BUSINESS_TZ).year();
    let no = repo::next_receipt(tx, company, year).await?;
    Ok(format!("SK{year}-{no:06}"))
}

/// A house's unpaid bills, locked, oldest first.
pub async fn lock_unpaid_of_house(tx: &mut sqlx::PgConnection, company: Uuid, house: Uuid) -> AppResult<Vec<Bill>> {
    Ok(repo::unpaid_of_house_for_update(tx, company, house).await?)
}

/// Bills locked for a payment (in period order), within a company.
pub async fn lock_bills(tx: &mut sqlx::PgConnection, company: Uuid, ids: &[Uuid]) -> AppResult<Vec<Bill>> {
    Ok(repo::bills_for_update(tx, company, ids).await?)
}

/// A payment locked for a refund, within a company.
pub async fn lock_payment(tx: &mut sqlx::PgConnection, company: Uuid, id: Uuid) -> AppResult<Payment> {
    repo::payment_for_update(tx, company, id).await?.ok_or(AppError::not_found("payment"))
}

/// A refund of a locked payment booked in the caller's transaction: its unapplied money
/// goes first, then what it paid of its bills, the latest bill first (those bills owe it
/// again). Audited.
pub async fn unbook(
    tx: &mut sqlx::PgConnection,
    now: chrono::DateTime<chrono::Utc>,
    by: &dyn audit::Auditor,
    mut p: Payment,
    amount: Decimal,
) -> AppResult<Payment> {
    if amount <= Decimal::ZERO || amount > p.amount - p.refunded {
        return Err(invalid("amount", "退款金额超过可退金额", "The refund is more than what can be refunded"));
    }
    let from_unapplied = p.unapplied.min(amount);
    p.unapplied -= from_unapplied;
    p.refunded += amount;
    let mut left = amount - from_unapplied;
    let mut parts = repo::allocations_of(&mut *tx, p.id).await?;
    let ids: Vec<Uuid> = parts.iter().map(|a| a.0).collect();
    let mut bills = repo::bills_for_update(tx, p.company_id, &ids).await?;
    // the latest bill gives back first
    bills.reverse();
    let mut touched = Vec::new();
    let mut changed = Vec::new();
    for b in bills.iter_mut() {
        if left.is_zero() {
            break;
        }
        let Some(part) = parts.iter_mut().find(|a| a.0 == b.id) else { continue };
        let back = part.1.min(left);
        part.1 -= back;
        left -= back;
        b.paid -= back;
        b.status = model::status_of(Money::round(b.total), Money::round(b.late_fee), Money::round(b.paid));
        if b.status != BillStatus::Paid {
            b.paid_at = None;
        }
        b.updated_at = now;
        touched.push(b.clone());
        changed.push(serde_json::json!({ "billId": b.id, "amount": back.to_string() }));
    }
    if !left.is_zero() {
        return Err(invalid("amount", "退款金额超过可退金额", "The refund is more than what can be refunded"));
    }
    repo::unbook(tx, &p, &parts, &touched).await?;
    audit::record(
        tx,
        now,
        by,
        "payment.refund",
        "payment",
        Some(p.id),
        serde_json::json!({ "amount": amount.to_string(), "fromUnapplied": from_unapplied.to_string(), "bills": changed }),
    )
    .await?;
    Ok(p)
}

/// A payment: staff who read its project's bills, or the payer.
pub async fn payment(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<(Payment, Vec<(Uuid, Decimal)>)> {
    let p = repo::payment(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("payment"))?;
    let staff = actor.reaches(&[Perm::BillRead, Perm::PaymentWrite], p.project_id);
    let payer = actor.has(Perm::SelfHouse) && actor.owner_id == Some(p.payer_id);
    if !(staff || payer) {
        return Err(AppError::not_found("payment"));
    }
    let parts = repo::allocations_of(&state.db, p.id).await?;
    Ok((p, parts))
}

/// 计费开始日期 (`fee:write` on their project): the day houses start to be charged
/// (handover, move-in); a month it falls in is billed by its days. None clears it.
pub async fn set_charge_start(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    houses: Vec<Uuid>,
    day: Option<NaiveDate>,
) -> AppResult<usize> {
    let mut houses = houses;
    houses.sort();
    houses.dedup();
    if houses.is_empty() || houses.len() > 5000 {
        return Err(invalid("houseIds", "一次设置1到5000户", "1 to 5000 houses at a time"));
    }
    for h in &houses {
        let project = crate::org::estate::service::house_project(state, actor, *h).await?;
        actor.require_project(Perm::FeeWrite, project)?;
    }
    let now = state.clock.now();
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let n = repo::set_charge_start(&mut tx, &houses, day).await? as usize;
    audit::record(
        &mut tx,
        now,
        actor,
        "house.charge_start",
        "house",
        houses.first().copied(),
        serde_json::json!({ "houses": houses, "chargeStart": day }),
    )
    .await?;
    tx.commit(&n).await?;
    Ok(n)
}

/// 滞纳金规则 a project's late-fee policy.
#[derive(Debug, Clone)]
pub struct LateFeePolicy {
    pub project_id: Uuid,
    /// of the unpaid principal per day past the due date and the grace days
    pub daily_rate: Decimal,
    pub grace_days: i32,
    /// the late fee never exceeds this share of the bill's total
    pub cap_ratio: Decimal,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A project's policy (`fee:read`), none when it charges no late fee.
pub async fn late_fee_policy(state: &AppState, actor: &Actor, project: Uuid) -> AppResult<Option<LateFeePolicy>> {
    crate::org::company::service::project_of_company(state, actor.company_id, project).await?;
    if !actor.reaches(&[Perm::FeeRead, Perm::FeeWrite, Perm::BillRead], project) {
        return Err(AppError::forbidden());
    }
    Ok(repo::late_fee_policy(&state.db, project).await?.map(|(r, g, c, at)| LateFeePolicy {
        project_id: project,
        daily_rate: r,
        grace_days: g,
        cap_ratio: c,
        updated_at: at,
    }))
}

/// 设置滞纳金 (`fee:write`): the daily rate (at most 1 %), the grace days after the due
/// date, the cap as a share of the bill's total (at most 1: the principal). Applies from
/// the next accrual on; what accrued stays.
pub async fn set_late_fee_policy(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    project: Uuid,
    rate: Decimal,
    grace: i32,
    cap: Decimal,
) -> AppResult<Uuid> {
    crate::org::company::service::project(state, actor, Perm::FeeWrite, project).await?;
    if rate.is_sign_negative() || rate > Decimal::new(1, 2) || rate.normalize().scale() > 6 {
        return Err(invalid(
            "dailyRate",
            "日费率应在0到0.01之间、最多六位小数",
            "dailyRate within 0 to 0.01, up to 6 decimals",
        ));
    }
    if !(0..=365).contains(&grace) {
        return Err(invalid("graceDays", "宽限天数应在0到365之间", "graceDays within 0 to 365"));
    }
    if cap.is_sign_negative() || cap > Decimal::ONE || cap.normalize().scale() > 4 {
        return Err(invalid(
            "capRatio",
            "上限比例应在0到1之间、最多四位小数",
            "capRatio within 0 to 1, up to 4 decimals",
        ));
    }
    let now = state.clock.now();
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::set_late_fee_policy(&mut tx, actor.company_id, project, rate, grace, cap, actor.user_id, now).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "late_fee_policy.set",
        "project",
        Some(project),
        serde_json::json!({ "dailyRate": rate.to_string(), "graceDays": grace, "capRatio": cap.to_string() }),
    )
    .await?;
    tx.commit(&project).await?;
    Ok(project)
}

/// The scheduler's job: late fees accrued up to today (Shanghai), each company's change
/// audited in the same transaction. Returns the bills that accrued.
pub async fn accrue_late_fees(state: &AppState) -> AppResult<usize> {
    let now = state.clock.now();
    let today = now.with_timezone(&BUSINESS_TZ).date_naive();
    let mut tx = state.db.begin().await?;
    let done = repo::accrue_late_fees(&mut tx, today, now).await?;
    let mut n = 0;
    for (company, bills, added) in &done {
        n += *bills as usize;
        audit::record(
            &mut tx,
            now,
            &audit::System(*company),
            "late_fee.accrue",
            "bill",
            None,
            serde_json::json!({ "through": today, "bills": bills, "added": added.to_string() }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(n)
}

/// 滞纳金减免申请 (`payment:write` or `bill:run` on the bill's project): asks that a bill's
/// late fee be waived, with the reason; someone else with `bill:approve` decides.
pub async fn request_late_fee_waiver(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    bill_id: Uuid,
    reason: &str,
) -> AppResult<Uuid> {
    let b = bill(state, actor, bill_id).await?;
    if !actor.reaches(&[Perm::PaymentWrite, Perm::BillRun], b.project_id) {
        return Err(AppError::forbidden());
    }
    if b.late_fee.is_zero() || b.status == BillStatus::Paid {
        return Err(invalid("billId", "该账单没有可减免的滞纳金", "The bill has no late fee to waive"));
    }
    crate::kit::approval::ask(
        state,
        actor,
        retry,
        crate::kit::approval::NewApproval {
            company_id: actor.company_id,
            project_id: Some(b.project_id),
            kind: crate::kit::approval::ApprovalKind::LateFeeWaiver,
            subject_id: b.id,
            payload: serde_json::json!({ "lateFee": b.late_fee.to_string() }),
            reason: reason.to_owned(),
            approver_perm: Perm::BillApprove.code(),
        },
    )
    .await
}

/// Applies an approved late-fee waiver: the bill's late fee is gone and stops accruing.
pub struct WaiveLateFee;

#[async_trait::async_trait]
impl crate::kit::approval::Applier for WaiveLateFee {
    async fn apply(
        &self,
        state: &AppState,
        tx: &mut sqlx::PgConnection,
        a: &crate::kit::approval::Approval,
    ) -> AppResult<()> {
        let now = state.clock.now();
        let locked = repo::bills_for_update(tx, a.company_id, &[a.subject_id]).await?;
        if locked.is_empty() {
            return Err(AppError::not_found("bill"));
        }
        repo::waive_late_fee(tx, a.subject_id, now).await?;
        Ok(())
    }
}

/// A project's reader of bills (`bill:read`, `bill:run` or `payment:write`).
async fn bills_reader(state: &AppState, actor: &Actor, project: Uuid) -> AppResult<()> {
    crate::org::company::service::project_of_company(state, actor.company_id, project).await?;
    if !actor.reaches(&[Perm::BillRead, Perm::BillRun, Perm::PaymentWrite], project) {
        return Err(AppError::forbidden());
    }
    Ok(())
}

/// 欠费 a project's houses and spaces with overdue bills (due before today, Shanghai), the
/// largest debt first, per building and as CSV.
pub async fn arrears(state: &AppState, actor: &Actor, project: Uuid) -> AppResult<model::ArrearsReport> {
    bills_reader(state, actor, project).await?;
    let today = state.clock.now().with_timezone(&BUSINESS_TZ).date_naive();
    Ok(model::ArrearsReport::new(today, repo::arrears(state.reads(), project, today).await?))
}

/// 收缴率 a project's months `from`…`to` (at most 36).
pub async fn collection(
    state: &AppState,
    actor: &Actor,
    project: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> AppResult<Vec<model::Collection>> {
    bills_reader(state, actor, project).await?;
    if to < from || from + chrono::Months::new(36) < to {
        return Err(invalid("to", "区间应在36个月以内且不早于起始月", "Up to 36 months, not before `from`"));
    }
    Ok(repo::collection(state.reads(), project, from, to).await?)
}

/// 催缴计划 (`fee:write` on the project): reminders of unpaid bills this many days after
/// their due date (1 to 10 steps, each 1 to 365 days).
pub async fn set_dunning_policy(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    project: Uuid,
    days: &[i32],
) -> AppResult<Uuid> {
    crate::org::company::service::project(state, actor, Perm::FeeWrite, project).await?;
    let mut days = days.to_vec();
    days.sort();
    days.dedup();
    if days.is_empty() || days.len() > 10 || days.iter().any(|d| !(1..=365).contains(d)) {
        return Err(invalid(
            "daysAfterDue",
            "催缴天数为1到10个、每个1到365天",
            "daysAfterDue: 1 to 10 days, each from 1 to 365",
        ));
    }
    let now = state.clock.now();
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::set_dunning_policy(&mut tx, actor.company_id, project, &days, actor.user_id, now).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "dunning_policy.set",
        "project",
        Some(project),
        serde_json::json!({ "daysAfterDue": days }),
    )
    .await?;
    tx.commit(&project).await?;
    Ok(project)
}

/// A project's reminder schedule (`bill:read`).
pub async fn dunning_policy(state: &AppState, actor: &Actor, project: Uuid) -> AppResult<Option<Vec<i32>>> {
    bills_reader(state, actor, project).await?;
    Ok(repo::dunning_policy(&state.db, project).await?)
}

fn reminder_text(o: &model::Overdue, today: NaiveDate) -> crate::notify::service::Personal {
    let month = format!("{}年{}月", o.period.year(), o.period.month());
    let what = if o.space { "车位" } else { "房屋" };
    crate::notify::service::Personal {
        user_id: Uuid::nil(),
        title: "缴费提醒".into(),
        body: format!(
            "您的{what}{month}账单尚欠 {} 元，已逾期 {} 天，请尽快缴纳。",
            Money::round(o.owed),
            (today - o.due_date).num_days()
        ),
        data: serde_json::json!({ "route": "bill", "id": o.bill_id, "reminder": o.step }),
        channels: Vec::new(),
    }
}

/// Reminders recorded and their notices queued, in one transaction, per company.
async fn send_reminders(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    due: &[model::Overdue],
    by: Option<&Actor>,
) -> AppResult<usize> {
    let now = state.clock.now();
    let today = now.with_timezone(&BUSINESS_TZ).date_naive();
    let companies: Vec<Uuid> = due.iter().map(|o| o.company_id).collect();
    let ids: Vec<Uuid> = due.iter().map(|o| o.bill_id).collect();
    let steps: Vec<i32> = due.iter().map(|o| o.step).collect();
    let owed: Vec<Decimal> = due.iter().map(|o| o.owed).collect();
    let recorded: HashSet<Uuid> =
        repo::insert_reminders(tx, &companies, &ids, &steps, &owed, by.map(|a| a.user_id), now)
            .await?
            .into_iter()
            .collect();
    let owners: Vec<Uuid> = due.iter().map(|o| o.payer_id).collect();
    let reach = payer_channels(state, tx, &owners).await?;
    let mut per_company: BTreeMap<Uuid, Vec<crate::notify::service::Personal>> = BTreeMap::new();
    for o in due.iter().filter(|o| recorded.contains(&o.bill_id)) {
        let Some((user, channels)) = reach.get(&o.payer_id) else { continue };
        let mut p = reminder_text(o, today);
        p.user_id = *user;
        p.channels = channels.clone();
        per_company.entry(o.company_id).or_default().push(p);
    }
    let mut sent = 0;
    for (company, items) in &per_company {
        use crate::notify::model::{Category, Priority};
        sent +=
            crate::notify::service::enqueue_each(state, tx, *company, Category::Bill, Priority::Normal, items).await?;
        let payload = serde_json::json!({ "reminders": items.len(), "byHand": by.is_some() });
        match by {
            Some(a) => audit::record(tx, now, a, "bill.remind", "bill", None, payload).await?,
            None => audit::record(tx, now, &audit::System(*company), "bill.remind", "bill", None, payload).await?,
        }
    }
    Ok(sent)
}

/// The scheduler's job: 催缴 by each project's schedule, each step once per bill, logged
/// per bill. A reminder's SMS over a number's daily allowance waits for the next morning.
pub async fn dun(state: &AppState) -> AppResult<usize> {
    let today = state.clock.now().with_timezone(&BUSINESS_TZ).date_naive();
    let due = repo::overdue_for_reminders(&state.db, today, 5000).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut tx = state.db.begin().await?;
    let sent = send_reminders(state, &mut tx, &due, None).await?;
    tx.commit().await?;
    Ok(sent)
}

/// 催缴 by hand (`payment:write` or `bill:run` on the bills' project): a reminder now for
/// each unpaid bill given that had none today. Returns how many went out.
pub async fn remind(state: &AppState, actor: &Actor, retry: &Retry, ids: &[Uuid]) -> AppResult<usize> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    if ids.is_empty() || ids.len() > 500 {
        return Err(invalid("billIds", "一次催缴1到500张账单", "Remind of 1 to 500 bills at a time"));
    }
    let now = state.clock.now();
    let today = now.with_timezone(&BUSINESS_TZ).date_naive();
    let mut due = Vec::new();
    for id in &ids {
        let b = bill(state, actor, *id).await?;
        if !actor.reaches(&[Perm::PaymentWrite, Perm::BillRun], b.project_id) {
            return Err(AppError::forbidden());
        }
        if b.status == BillStatus::Paid {
            continue;
        }
        let today_already = repo::reminders_of(&state.db, b.id)
            .await?
            .iter()
            .any(|r| r.sent_at.with_timezone(&BUSINESS_TZ).date_naive() == today);
        if today_already {
            continue;
        }
        due.push(model::Overdue {
            bill_id: b.id,
            company_id: b.company_id,
            payer_id: b.payer_id,
            period: b.period,
            due_date: b.due_date,
            space: b.parking_space_id.is_some(),
            owed: b.outstanding(),
            step: 0,
        });
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let sent = if due.is_empty() { 0 } else { send_reminders(state, &mut tx, &due, Some(actor)).await? };
    tx.commit(&sent).await?;
    Ok(sent)
}

/// A bill's reminders and what was sent about it, for the staff who read its project's
/// bills (none for others).
pub async fn follow_up(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
) -> AppResult<(Vec<model::Reminder>, Vec<crate::notify::model::Notice>)> {
    let b = bill(state, actor, id).await?;
    if !actor.reaches(&[Perm::BillRead, Perm::BillRun, Perm::PaymentWrite], b.project_id)
        || b.company_id != actor.company_id
    {
        return Ok((Vec::new(), Vec::new()));
    }
    let reminders = repo::reminders_of(&state.db, b.id).await?;
    let notices = crate::notify::service::about(state, b.company_id, "bill", b.id).await?;
    Ok((reminders, notices))
}

fn check_adjustment(b: &Bill, amount: Decimal) -> AppResult<()> {
    if amount.is_zero() || amount.abs() > Decimal::new(1_000_000, 0) {
        return Err(invalid(
            "amount",
            "调整金额不能为0，且不超过100万元",
            "The adjustment is not 0 and at most 1,000,000",
        ));
    }
    if b.total + amount < Decimal::ZERO {
        return Err(invalid("amount", "调整后账单金额不能为负", "The bill's total cannot go below 0"));
    }
    if b.total + b.late_fee + amount < b.paid {
        return Err(invalid(
            "amount",
            "调整后低于已缴金额，多缴部分请走退款",
            "That is below what was paid: refund the difference instead",
        ));
    }
    Ok(())
}

/// 账单调整申请 (`payment:write` or `bill:run` on the bill's project): an amount added to
/// (or, negative, taken off) a bill, with the reason; someone else with `bill:approve`
/// decides. The way to change a bill that has a payment.
pub async fn request_adjustment(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    bill_id: Uuid,
    amount: Decimal,
    reason: &str,
) -> AppResult<Uuid> {
    let b = bill(state, actor, bill_id).await?;
    if !actor.reaches(&[Perm::PaymentWrite, Perm::BillRun], b.project_id) {
        return Err(AppError::forbidden());
    }
    check_adjustment(&b, amount)?;
    crate::kit::approval::ask(
        state,
        actor,
        retry,
        crate::kit::approval::NewApproval {
            company_id: actor.company_id,
            project_id: Some(b.project_id),
            kind: crate::kit::approval::ApprovalKind::BillAdjustment,
            subject_id: b.id,
            payload: serde_json::json!({ "amount": amount.to_string() }),
            reason: reason.to_owned(),
            approver_perm: Perm::BillApprove.code(),
        },
    )
    .await
}

/// Applies an approved adjustment: a line of the bill, its total and status follow.
pub struct AdjustBill;

#[async_trait::async_trait]
impl crate::kit::approval::Applier for AdjustBill {
    async fn apply(
        &self,
        state: &AppState,
        tx: &mut sqlx::PgConnection,
        a: &crate::kit::approval::Approval,
    ) -> AppResult<()> {
        let amount: Decimal = a.payload["amount"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("amount", "审批单缺少调整金额", "The request has no amount"))?;
        let now = state.clock.now();
        let mut b = repo::bills_for_update(tx, a.company_id, &[a.subject_id])
            .await?
            .pop()
            .ok_or(AppError::not_found("bill"))?;
        check_adjustment(&b, amount)?;
        let position = repo::next_position(&mut *tx, b.id).await?;
        let reason: String = a.reason.chars().take(40).collect();
        let line = Line {
            id: Uuid::now_v7(),
            bill_id: b.id,
            kind: LineKind::Adjustment,
            fee_item_id: None,
            charge_id: None,
            name: format!("账单调整：{reason}"),
            quantity: Decimal::ONE,
            unit_price: amount,
            months: None,
            previous_reading: None,
            current_reading: None,
            amount,
            position,
        };
        b.total += amount;
        b.status = model::status_of(Money::round(b.total), Money::round(b.late_fee), Money::round(b.paid));
        b.paid_at = if b.status == BillStatus::Paid { b.paid_at.or(Some(now)) } else { None };
        b.updated_at = now;
        repo::insert_lines(tx, a.company_id, &[line]).await?;
        repo::update_bills(tx, std::slice::from_ref(&b)).await?;
        audit::record(
            tx,
            now,
            &audit::System(a.company_id),
            "bill.adjust",
            "bill",
            Some(b.id),
            serde_json::json!({ "amount": amount.to_string(), "approvalId": a.id, "total": b.total.to_string() }),
        )
        .await?;
        Ok(())
    }
}

/// 空置房优惠申请 (`payment:write` or `bill:run` on the house's project): a share (0 to 1)
/// of the property fee off the house's bills of the months from … to (at most 24);
/// someone else with `bill:approve` decides; runs after the approval apply it.
#[allow(clippy::too_many_arguments)]
pub async fn request_vacancy_relief(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    house: Uuid,
    from: NaiveDate,
    to: NaiveDate,
    ratio: Decimal,
    reason: &str,
) -> AppResult<Uuid> {
    let h = crate::org::estate::service::house(state, actor, house).await?;
    if !actor.reaches(&[Perm::PaymentWrite, Perm::BillRun], h.project_id) {
        return Err(AppError::forbidden());
    }
    if from.day() != 1 {
        return Err(invalid("fromPeriod", "请填写月份的第一天", "Give the first day of a month"));
    }
    if to.day() != 1 || to < from || from.checked_add_months(chrono::Months::new(23)).is_none_or(|last| to > last) {
        return Err(invalid(
            "toPeriod",
            "结束月份应在开始月份之后24个月内",
            "toPeriod within 24 months from fromPeriod",
        ));
    }
    if ratio <= Decimal::ZERO || ratio > Decimal::ONE || ratio.normalize().scale() > 4 {
        return Err(invalid(
            "ratio",
            "优惠比例应在0到1之间、最多四位小数",
            "ratio above 0, at most 1, up to 4 decimals",
        ));
    }
    crate::kit::approval::ask(
        state,
        actor,
        retry,
        crate::kit::approval::NewApproval {
            company_id: actor.company_id,
            project_id: Some(h.project_id),
            kind: crate::kit::approval::ApprovalKind::VacancyRelief,
            subject_id: h.id,
            payload: serde_json::json!({ "from": from, "to": to, "ratio": ratio.to_string(), "projectId": h.project_id }),
            reason: reason.to_owned(),
            approver_perm: Perm::BillApprove.code(),
        },
    )
    .await
}

/// Applies an approved vacancy relief: runs from now on take it off.
pub struct ApproveVacancyRelief;

#[async_trait::async_trait]
impl crate::kit::approval::Applier for ApproveVacancyRelief {
    async fn apply(
        &self,
        state: &AppState,
        tx: &mut sqlx::PgConnection,
        a: &crate::kit::approval::Approval,
    ) -> AppResult<()> {
        let p = &a.payload;
        let parsed = (|| {
            Some((
                p["from"].as_str()?.parse::<NaiveDate>().ok()?,
                p["to"].as_str()?.parse::<NaiveDate>().ok()?,
                p["ratio"].as_str()?.parse::<Decimal>().ok()?,
                p["projectId"].as_str()?.parse::<Uuid>().ok()?,
            ))
        })();
        let Some((from, to, ratio, project)) = parsed else {
            return Err(invalid("payload", "审批单内容不完整", "The request is incomplete"));
        };
        repo::insert_relief(tx, a, project, a.subject_id, from, to, ratio, state.clock.now()).await?;
        Ok(())
    }
}
