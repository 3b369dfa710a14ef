//! 线上支付: an owner pays bills through WeChat Pay or Alipay. An order is created with
//! the provider (its SDK parameters go to the app); the provider's signed notification,
//! or our own question to the provider when none came, books the payment in one
//! transaction (bills paid, receipt numbered, audited, the owner told). A notification
//! that does not verify is refused; a second one for the same order changes nothing; an
//! amount that differs from the order is booked nowhere and finance is told at once.
//! Refunds are asked by finance, approved by someone else, and paid back by the provider.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::TimeDelta;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::alipay::Alipay;
use super::gateway::{
    DevGateway, Gateway, NotifyRequest, PayError, PrepayRequest, RefundRequest, RefundState, Trade, TradeState,
};
use super::model::{PayChannel, PayOrder, PayOrderStatus, PayProvider, Refund, RefundStatus};
use super::repo;
use super::wechat::WechatPay;
use crate::billing::bills::model::{Bill, Payment, PaymentMethod};
use crate::billing::bills::service as bills;
use crate::kit::approval::{Applier, Approval, ApprovalKind, NewApproval};
use crate::kit::audit::{self, System};
use crate::kit::clock::BUSINESS_TZ;
use crate::kit::config::{Config, RunEnv};
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::notify::model::{Category, Channel, Priority};
use crate::notify::service::{Personal, enqueue_each};
use crate::rbac::model::{Actor, Perm};

fn invalid(field: &'static str, zh: &'static str, en: &'static str) -> AppError {
    AppError::validation(field, Msg::new(zh, en))
}

/// The merchants' gateways by provider and company code, a state part. A development
/// server falls back to the development gateway for a company without a merchant.
pub struct Gateways {
    merchants: HashMap<(PayProvider, String), Arc<dyn Gateway>>,
    dev: Option<HashMap<PayProvider, Arc<dyn Gateway>>>,
}

impl Gateways {
    pub fn from_config(config: &Config, redis: &crate::kit::redis::Redis) -> Result<Gateways, PayError> {
        let mut merchants: HashMap<(PayProvider, String), Arc<dyn Gateway>> = HashMap::new();
        for (code, m) in &config.pay.wechat {
            let g = WechatPay::new(m, config.pay.notify_max_skew_secs)
                .map_err(|e| PayError::Key(format!("pay.wechat.{code}: {e}")))?;
            merchants.insert((PayProvider::Wechat, code.clone()), Arc::new(g));
        }
        for (code, m) in &config.pay.alipay {
            let g = Alipay::new(m).map_err(|e| PayError::Key(format!("pay.alipay.{code}: {e}")))?;
            merchants.insert((PayProvider::Alipay, code.clone()), Arc::new(g));
        }
        let dev = (config.env == RunEnv::Development && config.pay.dev_gateway).then(|| {
            [PayProvider::Wechat, PayProvider::Alipay]
                .into_iter()
                .map(|p| {
                    let g: Arc<dyn Gateway> =
                        Arc::new(DevGateway::new(redis.clone(), &config.redis_prefix, p.as_str()));
                    (p, g)
                })
                .collect()
        });
        Ok(Gateways { merchants, dev })
    }

    /// The company's merchant of a provider; in development, else the development gateway.
    fn get(&self, provider: PayProvider, company_code: &str) -> Option<Arc<dyn Gateway>> {
        self.merchants
            .get(&(provider, company_code.to_owned()))
            .cloned()
            .or_else(|| self.dev.as_ref().and_then(|d| d.get(&provider).cloned()))
    }

    /// Only a real merchant takes notifications.
    fn merchant(&self, provider: PayProvider, company_code: &str) -> Option<Arc<dyn Gateway>> {
        self.merchants.get(&(provider, company_code.to_owned())).cloned()
    }
}

async fn gateway(state: &AppState, provider: PayProvider, company: Uuid) -> AppResult<Option<Arc<dyn Gateway>>> {
    let Some(code) = repo::company_code(&state.db, company).await? else { return Ok(None) };
    Ok(state.part::<Gateways>()?.get(provider, &code))
}

fn provider_error(e: PayError) -> AppError {
    match e {
        PayError::Refused { code, message } => AppError::conflict(
            "provider",
            Msg::owned(
                format!("支付平台拒绝了请求：{code} {message}"),
                format!("The provider refused: {code} {message}"),
            ),
        ),
        PayError::Transport(_) => AppError::Unavailable("payment provider unreachable"),
        other => AppError::internal(other),
    }
}

/// What an owner asks to pay.
#[derive(Debug, Clone)]
pub struct PayInput {
    pub bill_ids: Vec<Uuid>,
    pub provider: PayProvider,
    pub channel: PayChannel,
    /// the payer's openid in the official account or mini program (WeChat JSAPI)
    pub openid: Option<String>,
}

fn openid(s: Option<&str>) -> AppResult<String> {
    match s.map(str::trim) {
        Some(o)
            if (10..=64).contains(&o.len())
                && o.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Ok(o.to_owned())
        }
        _ => Err(invalid("openid", "微信内支付需要有效的 openid", "Paying inside WeChat needs a valid openid")),
    }
}

/// 在线缴费 (the owner who pays the bills, `self:house`): one order for what the bills
/// still owe, created with the provider; the app opens the provider's cashier with the
/// order's parameters. An earlier open order of any of these bills is closed first (or
/// booked, if it was paid meanwhile), so the same bill is never paid twice online.
pub async fn pay_bills(state: &AppState, actor: &Actor, retry: &Retry, i: PayInput) -> AppResult<Uuid> {
    actor.require(Perm::SelfHouse)?;
    let mut ids = i.bill_ids.clone();
    ids.sort();
    ids.dedup();
    if ids.is_empty() || ids.len() > 50 {
        return Err(invalid("billIds", "一次支付对应1到50张账单", "One payment settles 1 to 50 bills"));
    }
    let mut project = None;
    let mut seen = Vec::with_capacity(ids.len());
    for id in &ids {
        let b = bills::bill(state, actor, *id).await?;
        if actor.owner_id != Some(b.payer_id) {
            return Err(AppError::not_found("bill"));
        }
        if project.is_some_and(|p| p != b.project_id) {
            return Err(invalid(
                "billIds",
                "一次支付只能包含同一项目的账单",
                "One payment is for bills of one project",
            ));
        }
        project = Some(b.project_id);
        seen.push(b);
    }
    let (Some(project), Some(owner)) = (project, actor.owner_id) else {
        return Err(invalid("billIds", "请选择账单", "Give the bills"));
    };
    let openid = match (i.provider, i.channel) {
        (PayProvider::Wechat, PayChannel::Jsapi) => Some(openid(i.openid.as_deref())?),
        (PayProvider::Alipay, PayChannel::Jsapi) => {
            return Err(invalid("channel", "支付宝仅支持 APP 支付", "Alipay takes app payments only"));
        }
        _ => None,
    };
    let Some(gw) = gateway(state, i.provider, actor.company_id).await? else {
        return Err(AppError::conflict(
            "provider",
            Msg::new("该支付方式未开通", "This payment method is not available"),
        ));
    };
    let now = state.clock.now();
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    // an open order of exactly these bills, this way, for what they owe now is given again;
    // other open orders of any of them are closed first (or booked, if paid meanwhile)
    let owed_now: Decimal = seen.iter().map(Bill::outstanding).sum();
    for o in repo::pending_of_bills(&state.db, actor.company_id, &ids).await? {
        if o.provider == i.provider
            && o.channel == i.channel
            && o.bill_ids == ids
            && o.amount == owed_now
            && o.expires_at > now + TimeDelta::minutes(2)
        {
            tx.commit(&o.id).await?;
            return Ok(o.id);
        }
        reconcile_one(state, &o, true).await?;
    }
    let locked = bills::lock_bills(&mut tx, actor.company_id, &ids).await?;
    if locked.len() != ids.len() || locked.iter().any(|b| b.payer_id != owner || b.project_id != project) {
        return Err(AppError::conflict(
            "billIds",
            Msg::new("账单已变更，请刷新后重试", "The bills changed: reload and retry"),
        ));
    }
    // another request of the same bills got in first
    if !repo::pending_of_bills(&mut *tx, actor.company_id, &ids).await?.is_empty() {
        return Err(AppError::conflict(
            "billIds",
            Msg::new("这些账单正在支付中，请稍后再试", "These bills are being paid: try again shortly"),
        ));
    }
    let amount: Decimal = locked.iter().map(Bill::outstanding).sum();
    if amount <= Decimal::ZERO {
        return Err(AppError::conflict("billIds", Msg::new("所选账单已结清", "The bills are paid already")));
    }
    let id = Uuid::now_v7();
    let o = PayOrder {
        id,
        company_id: actor.company_id,
        project_id: project,
        payer_id: owner,
        created_by: actor.user_id,
        provider: i.provider,
        channel: i.channel,
        out_trade_no: id.simple().to_string(),
        bill_ids: ids,
        amount,
        status: PayOrderStatus::Pending,
        transaction_id: None,
        payment_id: None,
        expires_at: now + TimeDelta::minutes(state.config.pay.expire_minutes.max(5) as i64),
        checked_at: None,
        created_at: now,
        paid_at: None,
    };
    let description = description(&locked);
    let notify_url = format!(
        "{}/pay/{}/{}/notify",
        state.config.pay.notify_base_url.trim_end_matches('/'),
        i.provider.as_str(),
        repo::company_code(&mut *tx, actor.company_id).await?.unwrap_or_default()
    );
    // the provider is asked while the bills are locked: if it refuses, nothing is written
    let params = gw
        .prepay(&PrepayRequest {
            out_trade_no: &o.out_trade_no,
            description: &description,
            amount,
            expires_at: o.expires_at,
            channel: i.channel,
            openid: openid.as_deref(),
            notify_url: &notify_url,
        })
        .await
        .map_err(provider_error)?;
    repo::insert_order(&mut tx, &o, &params).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "pay_order.create",
        "pay_order",
        Some(id),
        serde_json::json!({ "provider": o.provider, "amount": amount.to_string(), "bills": o.bill_ids }),
    )
    .await?;
    tx.commit(&id).await?;
    Ok(id)
}

fn description(bills: &[Bill]) -> String {
    let months: Vec<String> = bills.iter().map(|b| b.period.format("%Y-%m").to_string()).collect();
    let mut d = format!("物业账单 {}", months.join(","));
    if d.chars().count() > 120 {
        d = format!("物业账单 {} 张", bills.len());
    }
    d
}

/// An order: its payer, or staff who read its project's bills. `refresh`: the payer's app
/// asks after the cashier closed; a pending order is then looked up at the provider (at
/// most every 5 seconds).
pub async fn order(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    refresh: bool,
) -> AppResult<(PayOrder, serde_json::Value)> {
    let o = visible_order(state, actor, id).await?;
    let o = if refresh
        && o.status == PayOrderStatus::Pending
        && o.checked_at.is_none_or(|c| state.clock.now() - c >= TimeDelta::seconds(5))
    {
        reconcile_one(state, &o, false).await?;
        visible_order(state, actor, id).await?
    } else {
        o
    };
    let params = if o.status == PayOrderStatus::Pending && actor.owner_id == Some(o.payer_id) {
        repo::prepay_of(&state.db, o.id).await?.unwrap_or_default()
    } else {
        serde_json::Value::Null
    };
    Ok((o, params))
}

async fn visible_order(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<PayOrder> {
    let o = repo::order(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("payOrder"))?;
    let staff = actor.reaches(&[Perm::BillRead, Perm::PaymentWrite], o.project_id);
    let payer = actor.has(Perm::SelfHouse) && actor.owner_id == Some(o.payer_id);
    if !(staff || payer) {
        return Err(AppError::not_found("payOrder"));
    }
    Ok(o)
}

/// Why a notification was not taken.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("no such merchant")]
    UnknownMerchant,
    #[error("refused: {0}")]
    Refused(PayError),
    #[error("replayed")]
    Replayed,
    #[error(transparent)]
    App(#[from] AppError),
}

/// A provider's notification for a company (by its code): verified, then booked.
pub async fn notified(
    state: &AppState,
    provider: PayProvider,
    company_code: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> Result<(), NotifyError> {
    let gw = state.part::<Gateways>()?.merchant(provider, company_code).ok_or(NotifyError::UnknownMerchant)?;
    let company = repo::company_by_code(&state.db, company_code)
        .await
        .map_err(AppError::from)?
        .ok_or(NotifyError::UnknownMerchant)?;
    let now = state.clock.now();
    let trade = gw.notice(&NotifyRequest { headers, body }, now).map_err(NotifyError::Refused)?;
    // a WeChat Pay delivery is signed anew each time: the same signature twice is a replay
    let seen_key = (provider == PayProvider::Wechat)
        .then(|| headers.get("wechatpay-signature").map(|s| s.trim()).unwrap_or_default())
        .map(|sig| state.redis_key(&["pay", "seen", &hex(&Sha256::digest(sig.as_bytes()))]));
    let mut r = state.redis.clone();
    if let Some(key) = &seen_key {
        let seen: bool = redis::cmd("EXISTS").arg(key).query_async(&mut r).await.map_err(AppError::from)?;
        if seen {
            return Err(NotifyError::Replayed);
        }
    }
    if trade.state == TradeState::Paid {
        settle(state, company, provider, &trade).await?;
    }
    if let Some(key) = &seen_key {
        let ttl = (state.config.pay.notify_max_skew_secs.max(60) * 2) as u64;
        let _: () =
            redis::cmd("SET").arg(key).arg(1).arg("EX").arg(ttl).query_async(&mut r).await.map_err(AppError::from)?;
    }
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Books a paid trade once: the order locked, its amount checked, the payment booked
/// against its bills, the owner told. Returns whether this call booked it.
async fn settle(state: &AppState, company: Uuid, provider: PayProvider, trade: &Trade) -> AppResult<bool> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let Some(o) = repo::order_by_no_for_update(&mut tx, company, &trade.out_trade_no).await? else {
        tracing::warn!(out_trade_no = %trade.out_trade_no, "a paid notice for no order of ours");
        return Ok(false);
    };
    if o.provider != provider || matches!(o.status, PayOrderStatus::Paid | PayOrderStatus::Disputed) {
        return Ok(false);
    }
    let Some(txn) = trade.transaction_id.as_deref().filter(|t| !t.is_empty()) else {
        return Err(AppError::internal(PayError::Malformed("a paid trade without its transaction id".into())));
    };
    let system = System(company);
    if trade.amount != Some(o.amount) {
        // the money is in: booked to nobody's bill (all of it to refund), finance told
        let payment = match trade.amount.filter(|a| *a > Decimal::ZERO) {
            Some(reported) => {
                let p = online_payment(company, &o, provider, txn, reported, trade, now);
                Some(bills::book(&mut tx, now, &system, p, &mut []).await?.id)
            }
            None => None,
        };
        repo::mark_disputed(&mut tx, o.id, txn, payment, now).await?;
        audit::record(
            &mut tx,
            now,
            &system,
            "pay_order.amount_mismatch",
            "pay_order",
            Some(o.id),
            serde_json::json!({ "expected": o.amount.to_string(), "reported": trade.amount.map(|a| a.to_string()),
                                "transactionId": txn }),
        )
        .await?;
        let text = format!(
            "支付单 {} 金额不符：应付 {}，{} 报告 {}（交易号 {txn}），未入任何账单，请核查并退款",
            o.out_trade_no,
            o.amount,
            provider_name(provider),
            trade.amount.map(|a| a.to_string()).unwrap_or_else(|| "无".into())
        );
        tell_finance(state, &mut tx, &o, "线上支付金额不符", &text).await?;
        tx.commit().await?;
        return Ok(false);
    }
    let mut locked = bills::lock_bills(&mut tx, company, &o.bill_ids).await?;
    locked.retain(|b| b.payer_id == o.payer_id);
    let owed: Decimal = locked.iter().map(Bill::outstanding).sum();
    let p = online_payment(company, &o, provider, txn, o.amount, trade, now);
    let p = bills::book(&mut tx, now, &system, p, &mut locked).await?;
    repo::mark_paid(&mut tx, o.id, txn, p.id, now).await?;
    let mut body =
        format!("您已通过{}缴费 {} 元，收据号 {}。感谢您的支持！", provider_name(provider), p.amount, p.receipt_no);
    if owed > p.amount {
        body.push_str(&format!("账单在支付期间有变动，仍欠 {} 元。", owed - p.amount));
    }
    enqueue_each(
        state,
        &mut tx,
        company,
        Category::Bill,
        Priority::Normal,
        &[Personal {
            user_id: o.created_by,
            title: "缴费成功".into(),
            body,
            data: serde_json::json!({ "route": "payment", "id": p.id }),
            channels: vec![Channel::InApp, Channel::Push],
        }],
    )
    .await?;
    if owed > p.amount {
        let text = format!(
            "支付单 {} 到账 {} 元，但账单在支付期间变为应收 {} 元，仍欠 {} 元，请与业主联系",
            o.out_trade_no,
            p.amount,
            owed,
            owed - p.amount
        );
        tell_finance(state, &mut tx, &o, "线上支付后仍有欠款", &text).await?;
    }
    if p.unapplied > Decimal::ZERO {
        let text = format!(
            "支付单 {} 到账 {} 元，其中 {} 元因账单已另行结清未能入账，请办理退款（收据号 {}）",
            o.out_trade_no, p.amount, p.unapplied, p.receipt_no
        );
        tell_finance(state, &mut tx, &o, "线上支付待退款", &text).await?;
    }
    tx.commit().await?;
    Ok(true)
}

fn online_payment(
    company: Uuid,
    o: &PayOrder,
    provider: PayProvider,
    txn: &str,
    amount: Decimal,
    trade: &Trade,
    now: chrono::DateTime<chrono::Utc>,
) -> Payment {
    Payment {
        id: Uuid::now_v7(),
        company_id: company,
        project_id: o.project_id,
        payer_id: o.payer_id,
        method: match provider {
            PayProvider::Wechat => PaymentMethod::Wechat,
            PayProvider::Alipay => PaymentMethod::Alipay,
        },
        reference: Some(txn.to_owned()),
        amount,
        receipt_no: String::new(),
        note: None,
        received_by: None,
        received_at: trade.paid_at.unwrap_or(now),
        unapplied: Decimal::ZERO,
        refunded: Decimal::ZERO,
    }
}

fn provider_name(p: PayProvider) -> &'static str {
    match p {
        PayProvider::Wechat => "微信支付",
        PayProvider::Alipay => "支付宝",
    }
}

/// A critical notice to finance of the order's project (holders of `payment:write`).
async fn tell_finance(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    o: &PayOrder,
    title: &str,
    text: &str,
) -> AppResult<()> {
    let finance = crate::rbac::service::duty_holders(state, o.company_id, o.project_id, Perm::PaymentWrite).await?;
    let items: Vec<Personal> = finance
        .into_iter()
        .map(|u| Personal {
            user_id: u,
            title: title.to_owned(),
            body: text.to_owned(),
            data: serde_json::json!({ "route": "payOrder", "id": o.id }),
            channels: vec![Channel::InApp, Channel::Push],
        })
        .collect();
    enqueue_each(state, tx, o.company_id, Category::Bill, Priority::Critical, &items).await?;
    Ok(())
}

/// Asks the provider about a pending order: paid → booked; closed there → closed here;
/// unpaid past its expiry (or `close`: replaced by a newer order) → closed at the provider,
/// then here. An order the provider cannot close yet (an Alipay order string not opened)
/// stays open until it expires, and `close` is refused meanwhile.
async fn reconcile_one(state: &AppState, o: &PayOrder, close: bool) -> AppResult<()> {
    let Some(gw) = gateway(state, o.provider, o.company_id).await? else { return Ok(()) };
    let now = state.clock.now();
    // first: an order that keeps failing goes to the back of the queue
    repo::touch(&state.db, o.id, now).await?;
    let trade = match gw.query(&o.out_trade_no).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(order = %o.id, error = %e, "payment provider query failed");
            if close {
                return Err(provider_error(e));
            }
            return Ok(());
        }
    };
    match trade.state {
        TradeState::Paid => {
            settle(state, o.company_id, o.provider, &trade).await?;
        }
        TradeState::Closed => {
            repo::set_status(&state.db, o.id, PayOrderStatus::Pending, PayOrderStatus::Closed, now).await?;
        }
        TradeState::NotPaid if close || now >= o.expires_at => {
            let closed = gw.close(&o.out_trade_no).await.map_err(provider_error)?;
            // paid in the moment before it closed? ask once more
            let again = gw.query(&o.out_trade_no).await.map_err(provider_error)?;
            if again.state == TradeState::Paid {
                settle(state, o.company_id, o.provider, &again).await?;
            } else if closed || now >= o.expires_at + TimeDelta::minutes(1) {
                repo::set_status(&state.db, o.id, PayOrderStatus::Pending, PayOrderStatus::Closed, now).await?;
            } else if close {
                return Err(AppError::conflict(
                    "billIds",
                    Msg::owned(
                        format!(
                            "上一笔{}订单仍可支付，请完成它，或在 {} 后重试",
                            provider_name(o.provider),
                            o.expires_at.with_timezone(&BUSINESS_TZ).format("%H:%M")
                        ),
                        format!(
                            "The earlier {} order can still be paid: finish it, or retry after {}",
                            o.provider,
                            o.expires_at.with_timezone(&BUSINESS_TZ).format("%H:%M")
                        ),
                    ),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The scheduler's job: pending orders nobody heard of for a while are asked about (20
/// a round, the longest unasked first), and approved refunds are paid back. Returns how
/// many orders and refunds were looked at or moved.
pub async fn reconcile(state: &AppState) -> AppResult<usize> {
    let before = state.clock.now() - TimeDelta::seconds(state.config.pay.reconcile_after_secs as i64);
    let due = repo::due_for_check(&state.db, before, 20).await?;
    let n = due.len();
    for o in &due {
        if let Err(e) = reconcile_one(state, o, false).await {
            tracing::warn!(order = %o.id, error = %e, "reconciling a payment failed");
        }
    }
    Ok(n + pay_back(state).await?)
}

/// Which of these bills are in an open online order.
pub async fn bills_in_open_orders(
    tx: &mut sqlx::PgConnection,
    company: Uuid,
    bills: &[Uuid],
) -> AppResult<std::collections::HashSet<Uuid>> {
    if bills.is_empty() {
        return Ok(Default::default());
    }
    let open = repo::pending_of_bills(&mut *tx, company, bills).await?;
    Ok(open.into_iter().flat_map(|o| o.bill_ids).filter(|b| bills.contains(b)).collect())
}

/// A refund request.
#[derive(Debug, Clone)]
pub struct RefundInput {
    pub payment_id: Uuid,
    pub amount: Decimal,
    pub reason: String,
}

/// 退款申请 (`payment:refund` on the payment's project): someone else with
/// `bill:approve` decides; an approved refund of an online payment is paid back through
/// its provider, of an offline one by hand (booked at once).
pub async fn request_refund(state: &AppState, actor: &Actor, retry: &Retry, i: RefundInput) -> AppResult<Uuid> {
    let (p, _) = bills::payment(state, actor, i.payment_id).await?;
    actor.require_project(Perm::PaymentRefund, p.project_id)?;
    if p.method == PaymentMethod::Prepaid {
        return Err(invalid(
            "paymentId",
            "预存款抵扣不能退款，请通过账单调整处理",
            "A prepaid deduction is not refunded: adjust the bill instead",
        ));
    }
    let in_flight = repo::refunds_in_flight(&state.db, p.id).await?;
    if i.amount <= Decimal::ZERO || i.amount > p.amount - p.refunded - in_flight {
        return Err(AppError::validation(
            "amount",
            Msg::owned(
                format!("退款金额应在 0 到 {} 之间", p.amount - p.refunded - in_flight),
                format!("The refund must be above 0 and at most {}", p.amount - p.refunded - in_flight),
            ),
        ));
    }
    crate::kit::approval::ask(
        state,
        actor,
        retry,
        NewApproval {
            company_id: actor.company_id,
            project_id: Some(p.project_id),
            kind: ApprovalKind::Refund,
            subject_id: p.id,
            payload: serde_json::json!({ "amount": i.amount.to_string(), "receiptNo": p.receipt_no }),
            reason: i.reason,
            approver_perm: Perm::BillApprove.code(),
        },
    )
    .await
}

/// Applies an approved refund: a refund row; an offline payment's is booked at once (paid
/// back by hand), an online one's when the provider has paid it back.
pub struct ApproveRefund;

#[async_trait::async_trait]
impl Applier for ApproveRefund {
    async fn apply(&self, state: &AppState, tx: &mut sqlx::PgConnection, a: &Approval) -> AppResult<()> {
        let amount: Decimal = a.payload["amount"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| AppError::internal(PayError::Malformed("refund approval without its amount".into())))?;
        let now = state.clock.now();
        let p = bills::lock_payment(tx, a.company_id, a.subject_id).await?;
        let in_flight = repo::refunds_in_flight(&mut *tx, p.id).await?;
        if amount > p.amount - p.refunded - in_flight {
            return Err(invalid("amount", "退款金额超过可退金额", "The refund is more than what can be refunded"));
        }
        let online = matches!(p.method, PaymentMethod::Wechat | PaymentMethod::Alipay);
        let id = Uuid::now_v7();
        let r = Refund {
            id,
            company_id: a.company_id,
            project_id: p.project_id,
            payment_id: p.id,
            approval_id: a.id,
            out_refund_no: format!("R{}", id.simple()),
            amount,
            reason: a.reason.clone(),
            status: if online { RefundStatus::Processing } else { RefundStatus::Succeeded },
            provider_refund_id: None,
            submitted_at: None,
            attempts: 0,
            last_error: None,
            created_at: now,
            done_at: (!online).then_some(now),
        };
        repo::insert_refund(tx, &r).await?;
        if !online {
            bills::unbook(tx, now, &System(a.company_id), p, amount).await?;
        }
        Ok(())
    }
}

/// Most times a refund is asked about before finance is told it is stuck.
const REFUND_ATTEMPTS: i32 = 30;

/// Refunds approved and not yet paid back, each on its own: asked of its provider (once;
/// afterwards only asked about), booked in a short transaction when paid back, finance
/// told when refused or stuck. One refund's trouble never holds up the others.
async fn pay_back(state: &AppState) -> AppResult<usize> {
    let mut moved = 0;
    for r in repo::processing(&state.db, 20).await? {
        match pay_back_one(state, &r).await {
            Ok(true) => moved += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(refund = %r.id, error = %e, "paying a refund back failed"),
        }
    }
    Ok(moved)
}

async fn pay_back_one(state: &AppState, r: &Refund) -> AppResult<bool> {
    let now = state.clock.now();
    let order = repo::order_of_payment(&state.db, r.payment_id).await?;
    let gw = match &order {
        Some(o) => gateway(state, o.provider, o.company_id).await?,
        None => None,
    };
    let (Some(o), Some(gw)) = (order, gw) else {
        let mut tx = state.db.begin().await?;
        repo::finish_refund(&mut tx, r.id, RefundStatus::Failed, None, Some("no merchant for this payment"), Some(now))
            .await?;
        tx.commit().await?;
        return Ok(true);
    };
    let req = RefundRequest {
        out_trade_no: &o.out_trade_no,
        transaction_id: o.transaction_id.as_deref().unwrap_or_default(),
        out_refund_no: &r.out_refund_no,
        amount: r.amount,
        total: o.amount,
        reason: &r.reason,
    };
    let outcome = if r.submitted_at.is_none() { gw.refund(&req).await } else { gw.refund_status(&req).await };
    let mut tx = state.db.begin().await?;
    // another round (or replica) finished it meanwhile
    if !repo::lock_processing(&mut tx, r.id).await? {
        return Ok(false);
    }
    let moved = match outcome {
        Ok(RefundState::Succeeded { refund_id }) => {
            let p = bills::lock_payment(&mut tx, r.company_id, r.payment_id).await?;
            bills::unbook(&mut tx, now, &System(r.company_id), p, r.amount).await?;
            repo::finish_refund(&mut tx, r.id, RefundStatus::Succeeded, refund_id.as_deref(), None, Some(now)).await?;
            repo::mark_submitted(&mut tx, r.id, now).await?;
            enqueue_each(
                state,
                &mut tx,
                r.company_id,
                Category::Bill,
                Priority::Normal,
                &[Personal {
                    user_id: o.created_by,
                    title: "退款成功".into(),
                    body: format!("{} 元已原路退回您的{}账户", r.amount, provider_name(o.provider)),
                    data: serde_json::json!({ "route": "payment", "id": r.payment_id }),
                    channels: vec![Channel::InApp, Channel::Push],
                }],
            )
            .await?;
            true
        }
        Ok(RefundState::Processing { refund_id }) if r.attempts + 1 < REFUND_ATTEMPTS => {
            repo::finish_refund(&mut tx, r.id, RefundStatus::Processing, refund_id.as_deref(), None, None).await?;
            repo::mark_submitted(&mut tx, r.id, now).await?;
            false
        }
        Ok(RefundState::Failed(why)) => {
            repo::finish_refund(&mut tx, r.id, RefundStatus::Failed, None, Some(&why), Some(now)).await?;
            let text = format!("退款 {}（{} 元）被{}拒绝：{why}", r.out_refund_no, r.amount, provider_name(o.provider));
            tell_finance(state, &mut tx, &o, "退款失败", &text).await?;
            true
        }
        Ok(RefundState::Processing { .. }) => {
            let why = format!("still processing after {REFUND_ATTEMPTS} checks");
            repo::finish_refund(&mut tx, r.id, RefundStatus::Failed, None, Some(&why), Some(now)).await?;
            let text = format!(
                "退款 {}（{} 元）长时间未完成，请到{}商户平台核查",
                r.out_refund_no,
                r.amount,
                provider_name(o.provider)
            );
            tell_finance(state, &mut tx, &o, "退款未完成", &text).await?;
            true
        }
        Err(e) => {
            let why = e.to_string();
            repo::finish_refund(&mut tx, r.id, RefundStatus::Processing, None, Some(&why), None).await?;
            false
        }
    };
    tx.commit().await?;
    Ok(moved)
}

/// A payment's refunds (whoever may see the payment).
pub async fn refunds(state: &AppState, actor: &Actor, payment: Uuid) -> AppResult<Vec<Refund>> {
    bills::payment(state, actor, payment).await?;
    Ok(repo::refunds_of(&state.db, payment).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openids_are_checked() {
        assert!(openid(Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")).is_ok());
        assert!(openid(Some("short")).is_err());
        assert!(openid(Some("o'; DROP TABLE x; --aaaaaaaa")).is_err());
        assert!(openid(None).is_err());
    }

    #[test]
    fn a_long_description_is_shortened() {
        assert_eq!(description(&[]), "物业账单 ");
    }
}
