//! 预存: finance takes money in at the counter for a house (numbered receipt, audited);
//! the balance pays the house's unpaid bills at once, oldest first, and again whenever a
//! bill is issued (after each run and by the scheduler), each deduction a payment of
//! method `prepaid` so bills, payments and the balance always reconcile.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model::{Entry, EntryKind};
use super::repo;
use crate::billing::bills::model::{Bill, Payment, PaymentMethod};
use crate::billing::bills::service as bills;
use crate::kit::audit::{self, Auditor, System};
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::money::Money;
use crate::kit::state::AppState;
use crate::rbac::model::{Actor, Perm};

fn invalid(field: &'static str, zh: &'static str, en: &'static str) -> AppError {
    AppError::validation(field, Msg::new(zh, en))
}

/// Money paid in for a house.
#[derive(Debug, Clone)]
pub struct TopUpInput {
    pub house_id: Uuid,
    pub amount: Money,
    pub method: PaymentMethod,
    pub reference: Option<String>,
}

/// 预存充值 (`payment:write` on the house's project): cash, a transfer or POS into the
/// house's balance, with a receipt; the house's unpaid bills are paid from it at once.
pub async fn top_up(state: &AppState, actor: &Actor, retry: &Retry, i: TopUpInput) -> AppResult<Uuid> {
    let h = crate::org::estate::service::house(state, actor, i.house_id).await?;
    actor.require_project(Perm::PaymentWrite, h.project_id)?;
    if !matches!(i.method, PaymentMethod::Cash | PaymentMethod::BankTransfer | PaymentMethod::Pos) {
        return Err(invalid("method", "预存只收现金、转账或刷卡", "A top-up is cash, a transfer or POS"));
    }
    let reference = crate::kit::types::optional_text("reference", i.reference.as_deref(), 64)?;
    if reference.is_empty() && i.method != PaymentMethod::Cash {
        return Err(invalid(
            "reference",
            "转账和刷卡须填写交易参考号",
            "A transfer or POS payment needs its reference",
        ));
    }
    let amount = i.amount.yuan();
    if amount <= Decimal::ZERO || amount > Decimal::new(1_000_000, 0) {
        return Err(invalid(
            "amount",
            "预存金额应在0到100万元之间",
            "The amount must be above 0 and at most 1,000,000",
        ));
    }
    let now = state.clock.now();
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let balance = repo::lock_account(&mut tx, actor.company_id, h.project_id, h.id, now).await?;
    // the house's bills before the company's receipt counter, as payments lock them
    bills::lock_unpaid_of_house(&mut tx, actor.company_id, h.id).await?;
    let receipt = bills::next_receipt_no(&mut tx, actor.company_id, now).await?;
    let e = Entry {
        id: Uuid::now_v7(),
        house_id: h.id,
        kind: EntryKind::TopUp,
        amount,
        balance_after: balance + amount,
        method: Some(i.method),
        reference: (!reference.is_empty()).then_some(reference),
        receipt_no: Some(receipt),
        payment_id: None,
        by_user: Some(actor.user_id),
        at: now,
    };
    repo::record(&mut tx, actor.company_id, h.project_id, &e).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "prepaid.top_up",
        "house",
        Some(h.id),
        serde_json::json!({ "amount": amount.to_string(), "method": i.method, "receiptNo": e.receipt_no,
                            "balance": e.balance_after.to_string() }),
    )
    .await?;
    draw(&mut tx, now, actor, Some(actor.user_id), actor.company_id, h.project_id, h.id, e.balance_after).await?;
    tx.commit(&h.id).await?;
    Ok(h.id)
}

/// Pays a locked account's house's unpaid bills from its balance, oldest first, one
/// payment per payer; returns what was drawn.
#[allow(clippy::too_many_arguments)]
async fn draw(
    tx: &mut sqlx::PgConnection,
    now: DateTime<Utc>,
    by: &dyn Auditor,
    by_user: Option<Uuid>,
    company: Uuid,
    project: Uuid,
    house: Uuid,
    mut balance: Decimal,
) -> AppResult<Decimal> {
    let mut unpaid = bills::lock_unpaid_of_house(tx, company, house).await?;
    // bills the owner is paying online are left to that payment
    let paying = crate::billing::pay::service::bills_in_open_orders(
        tx,
        company,
        &unpaid.iter().map(|b| b.id).collect::<Vec<_>>(),
    )
    .await?;
    unpaid.retain(|b| !paying.contains(&b.id));
    let mut payers: Vec<Uuid> = Vec::new();
    for b in &unpaid {
        if !payers.contains(&b.payer_id) {
            payers.push(b.payer_id);
        }
    }
    let mut drawn = Decimal::ZERO;
    for payer in payers {
        let mut theirs: Vec<Bill> = unpaid.iter().filter(|b| b.payer_id == payer).cloned().collect();
        let owed: Decimal = theirs.iter().map(Bill::outstanding).sum();
        let amount = owed.min(balance);
        if amount <= Decimal::ZERO {
            continue;
        }
        let p = Payment {
            id: Uuid::now_v7(),
            company_id: company,
            project_id: project,
            payer_id: payer,
            method: PaymentMethod::Prepaid,
            reference: None,
            amount,
            receipt_no: String::new(),
            note: Some("预存款抵扣".into()),
            received_by: by_user,
            received_at: now,
            unapplied: Decimal::ZERO,
            refunded: Decimal::ZERO,
        };
        let p = bills::book(tx, now, by, p, &mut theirs).await?;
        balance -= amount;
        drawn += amount;
        let e = Entry {
            id: Uuid::now_v7(),
            house_id: house,
            kind: EntryKind::Deduction,
            amount,
            balance_after: balance,
            method: None,
            reference: None,
            receipt_no: None,
            payment_id: Some(p.id),
            by_user,
            at: now,
        };
        repo::record(tx, company, project, &e).await?;
    }
    Ok(drawn)
}

/// Draws on the balances of houses with unpaid bills (of one project after its run, or
/// everywhere: the scheduler), each house in its own transaction. Returns the houses.
pub async fn deduct(state: &AppState, project: Option<Uuid>) -> AppResult<usize> {
    let houses = repo::houses_to_deduct(&state.db, project, 500).await?;
    for (house, company, project) in &houses {
        let now = state.clock.now();
        let one = async {
            let mut tx = state.db.begin().await?;
            let balance = repo::lock_account(&mut tx, *company, *project, *house, now).await?;
            draw(&mut tx, now, &System(*company), None, *company, *project, *house, balance).await?;
            tx.commit().await?;
            AppResult::Ok(())
        };
        if let Err(e) = one.await {
            e.log_if_internal();
            tracing::warn!(house = %house, error = %e, "drawing on a prepaid balance failed");
        }
    }
    Ok(houses.len())
}

/// A house's balance and entries, the latest first: staff who read its project's bills,
/// or the people of the house.
pub async fn account(
    state: &AppState,
    actor: &Actor,
    house: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> AppResult<(Decimal, Vec<Entry>)> {
    let h = crate::org::estate::service::house(state, actor, house).await?;
    let staff = actor.reaches(&[Perm::BillRead, Perm::PaymentWrite], h.project_id);
    if !staff && !actor.has(Perm::SelfHouse) {
        return Err(AppError::forbidden());
    }
    let balance = repo::balance(&state.db, h.id).await?.unwrap_or_default();
    Ok((balance, repo::entries(&state.db, h.id, after, limit as i64).await?))
}
