//! Online payments against local fakes of WeChat Pay API v3 and Alipay that check the
//! server's signatures and sign as the real services do: an owner pays their bills (never
//! another owner's), the signed notification books the payment once (20 concurrent
//! deliveries, a replay, a forgery, a stale one, another key), an amount that differs is
//! booked nowhere and finance is told, a payment with no notification is found by asking
//! the provider, a second order of the same bills closes the first, and an approved refund
//! is paid back through the provider.

use base64::Engine;
use chrono::{Datelike, Months, NaiveDate};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use wuye_tests::payfakes::{FakeAlipay, FakeWechatPay, WX_APPID, WX_MCHID, WxKey};
use wuye_tests::{TestServer, code, field};

const PAY: &str = "mutation($i: PayBillsInput!) { payBills(input: $i) { clientMutationId
    payOrder { id provider channel outTradeNo amount status billIds params expiresAt } } }";
const ORDER: &str = "query($id: ID!, $r: Boolean) { payOrder(id: $id, refresh: $r) { id status amount transactionId
    paymentId params } }";
const BILL: &str = "query($id: ID!) { bill(id: $id) { id status total paid outstanding
    payments { amount payment { id receiptNo method reference amount unapplied refunded } } } }";

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("a decimal string: {v}")).parse().unwrap()
}

/// Bills of last month and this month for the houses of owners 6 and 7.
pub(crate) struct Bills {
    pub(crate) six: Vec<Value>,
    pub(crate) seven: Vec<Value>,
}

pub(crate) async fn bills(s: &TestServer) -> Bills {
    let admin = s.sign_in("admin").await;
    let finance = s.sign_in("finance1").await;
    let p = s.ok(Some(&admin), "query { projects(search: \"JCHY\") { edges { node { id } } } }", json!({})).await;
    let project = p["projects"]["edges"][0]["node"]["id"].clone();
    let mine = "query { myHouses { id } }";
    let o6 = s.sign_in("13800000006").await;
    let o7 = s.sign_in("13800000007").await;
    let h6 = s.ok(Some(&o6), mine, json!({})).await["myHouses"][0]["id"].clone();
    let h7 = s.ok(Some(&o7), mine, json!({})).await["myHouses"][0]["id"].clone();
    let devices = s
        .ok(
            Some(&admin),
            "query($p: ID!) { devices(projectId: $p, category: WATER_METER, first: 50) { edges { node { id houseId } } } }",
            json!({"p": project}),
        )
        .await;
    let today = s.clock_now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let this = today.with_day(1).unwrap();
    let months: Vec<NaiveDate> = (0..3).rev().map(|i| this - Months::new(i)).collect();
    for h in [&h6, &h7] {
        let meter = devices["devices"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| &e["node"]["houseId"] == h)
            .unwrap()["node"]["id"]
            .clone();
        for (m, reading) in months.iter().zip(["10", "20", "35"]) {
            s.ok(
                Some(&finance),
                "mutation($i: RecordMeterReadingInput!) { recordMeterReading(input: $i) { meterRecord { id } } }",
                json!({"i": {"deviceId": meter, "period": m.to_string(), "reading": reading}}),
            )
            .await;
        }
    }
    for m in &months[1..] {
        s.ok(
            Some(&finance),
            "mutation($i: BillRunInput!) { runBills(input: $i) { billRun { id created } } }",
            json!({"i": {"projectId": project, "period": m.to_string(), "houseIds": [h6, h7]}}),
        )
        .await;
    }
    let ids = |t: String| async move {
        let r = s.ok(Some(&t), "query { myBills(first: 10) { edges { node { id period } } } }", json!({})).await;
        let mut v: Vec<(String, Value)> = r["myBills"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["node"]["period"].as_str().unwrap().to_owned(), e["node"]["id"].clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.into_iter().map(|x| x.1).collect::<Vec<_>>()
    };
    let b = Bills { six: ids(o6).await, seven: ids(o7).await };
    assert_eq!((b.six.len(), b.seven.len()), (2, 2));
    b
}

async fn outstanding(s: &TestServer, token: &str, ids: &[Value]) -> Decimal {
    let mut sum = Decimal::ZERO;
    for id in ids {
        sum += dec(&s.ok(Some(token), BILL, json!({"id": id})).await["bill"]["outstanding"]);
    }
    sum
}

fn verify_app_sign(params: &Value) -> bool {
    let msg = format!(
        "{}\n{}\n{}\n{}\n",
        params["appid"].as_str().unwrap(),
        params["timestamp"].as_str().unwrap(),
        params["noncestr"].as_str().unwrap(),
        params["prepayid"].as_str().unwrap()
    );
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(wuye_tests::fakes::fixture("wechat-merchant.pub.pem").as_bytes())
        .unwrap();
    let raw = base64::engine::general_purpose::STANDARD.decode(params["sign"].as_str().unwrap()).unwrap();
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    jsonwebtoken::crypto::verify(&sig, msg.as_bytes(), &key, jsonwebtoken::Algorithm::RS256).unwrap()
}

#[tokio::test]
async fn a_wechat_payment_is_booked_once_from_its_signed_notification() {
    let wx = FakeWechatPay::start().await;
    let merchant = wx.merchant();
    let s = TestServer::seeded_with(|c| {
        c.pay.wechat.insert("JCWY".into(), merchant);
        c.pay.notify_base_url = "https://wuye.example.com".into();
    })
    .await;
    let b = bills(&s).await;
    let o6 = s.sign_in("13800000006").await;
    let o7 = s.sign_in("13800000007").await;
    let owed = outstanding(&s, &o6, &b.six).await;
    assert!(owed > Decimal::ZERO);

    // another owner's bill is not found, to pay or to see; bad input names the field
    let r = s.gql(Some(&o7), PAY, json!({"i": {"billIds": [b.six[0]], "provider": "WECHAT"}})).await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    let r =
        s.gql(Some(&o6), PAY, json!({"i": {"billIds": [b.six[0]], "provider": "WECHAT", "channel": "JSAPI"}})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "openid"), "{r}");
    let r = s.gql(Some(&o6), PAY, json!({"i": {"billIds": [], "provider": "WECHAT"}})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "billIds"), "{r}");
    let finance = s.sign_in("finance1").await;
    let r = s.gql(Some(&finance), PAY, json!({"i": {"billIds": [b.six[0]], "provider": "WECHAT"}})).await;
    assert_eq!(code(&r), "FORBIDDEN", "staff do not pay for owners: {r}");
    assert_eq!(wx.orders(), 0);

    // one order for both bills, resent on a weak signal: the same order, one prepay
    let input = json!({"billIds": b.six, "provider": "WECHAT", "clientMutationId": "pay-1"});
    let first = s.ok(Some(&o6), PAY, json!({"i": input})).await["payBills"]["payOrder"].clone();
    let again = s.ok(Some(&o6), PAY, json!({"i": input})).await["payBills"]["payOrder"].clone();
    assert_eq!(first["id"], again["id"]);
    assert_eq!(first["status"], "PENDING", "the retry did not close the order it gives back");
    // asked again without the id (the app restarted): the open order of the same bills
    let reopened = s.ok(Some(&o6), PAY, json!({"i": {"billIds": b.six, "provider": "WECHAT"}})).await;
    assert_eq!(reopened["payBills"]["payOrder"]["id"], first["id"]);
    assert_eq!(wx.orders(), 1);
    assert_eq!((first["status"].as_str(), dec(&first["amount"])), (Some("PENDING"), owed));
    let otn = first["outTradeNo"].as_str().unwrap().to_owned();
    let at_wx = wx.order(&otn).unwrap();
    assert_eq!(Decimal::new(at_wx.total, 2), owed);
    assert_eq!(at_wx.notify_url, "https://wuye.example.com/pay/wechat/JCWY/notify");
    let params: Value = serde_json::from_str(first["params"].as_str().unwrap()).unwrap();
    assert_eq!((params["appid"].as_str(), params["partnerid"].as_str()), (Some(WX_APPID), Some(WX_MCHID)));
    assert_eq!(params["package"], "Sign=WXPay");
    assert!(verify_app_sign(&params), "the app's parameters are signed with the merchant key: {params}");
    assert_eq!(wx.bad_auth(), 0, "every request carried a valid merchant signature");
    let r = s.gql(Some(&o7), ORDER, json!({"id": first["id"]})).await;
    assert_eq!(code(&r), "NOT_FOUND", "another owner's order: {r}");
    let seen = s.ok(Some(&finance), ORDER, json!({"id": first["id"]})).await;
    assert!(seen["payOrder"]["params"].is_null(), "only the payer gets the SDK parameters");

    // the owner pays in WeChat; WeChat notifies
    let txn = wx.pay(&otn);
    let url = format!("{}/pay/wechat/JCWY/notify", s.url);
    let now = s.clock_now().timestamp();
    for (n, why) in [
        (wx.notification(&otn, WxKey::Forged, now, None), "signed with another key"),
        (wx.notification(&otn, WxKey::Platform, now - 3600, None), "signed an hour ago"),
    ] {
        let (status, body) = wx.deliver(&url, &n).await;
        assert_eq!(status, 401, "{why}: {body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], "FAIL");
    }
    let mut tampered = wx.notification(&otn, WxKey::Platform, now, None);
    tampered.body = tampered.body.replace("TRANSACTION.SUCCESS", "TRANSACTION.SUCCESS ");
    assert_eq!(wx.deliver(&url, &tampered).await.0, 401, "a body changed after signing");
    let (status, _) = wx.deliver(&format!("{}/pay/wechat/NOPE/notify", s.url), &tampered).await;
    assert_eq!(status, 404);
    let big = wuye_tests::payfakes::WxNotification { headers: vec![], body: "x".repeat(200_000) };
    assert_eq!(wx.deliver(&url, &big).await.0, 413, "the webhook has its own body limit");
    assert_eq!(s.scalar("SELECT count(*) FROM payments").await, 0);

    // 20 deliveries at once (each signed anew, as WeChat retries): one payment
    let notes: Vec<_> = (0..20).map(|_| wx.notification(&otn, WxKey::Platform, now, None)).collect();
    let answers = futures_util::future::join_all(notes.iter().map(|n| wx.deliver(&url, n))).await;
    for (status, body) in &answers {
        assert_eq!((*status, body.as_str()), (204, ""), "success is 204 without a body");
    }
    assert_eq!(s.scalar("SELECT count(*) FROM payments").await, 1);
    // the same signed message again is a replay
    assert_eq!(wx.deliver(&url, &notes[3]).await.0, 401);
    assert_eq!(s.scalar("SELECT count(*) FROM payments").await, 1);
    let o = s.ok(Some(&o6), ORDER, json!({"id": first["id"]})).await["payOrder"].clone();
    assert_eq!((o["status"].as_str(), o["transactionId"].as_str()), (Some("PAID"), Some(txn.as_str())));
    assert!(o["params"].is_null());
    for id in &b.six {
        let bill = s.ok(Some(&o6), BILL, json!({"id": id})).await["bill"].clone();
        assert_eq!(bill["status"], "PAID", "{bill}");
        assert_eq!(dec(&bill["paid"]), dec(&bill["total"]));
        let p = &bill["payments"][0]["payment"];
        assert_eq!((p["method"].as_str(), p["reference"].as_str()), (Some("WECHAT"), Some(txn.as_str())));
    }
    // totals reconcile: the payment = its allocations = what the bills were marked paid
    assert_eq!(
        s.scalar(
            "SELECT count(*) FROM payments p WHERE p.amount = (SELECT sum(amount) FROM payment_allocations a
             WHERE a.payment_id = p.id) AND p.amount = (SELECT sum(paid) FROM bills)"
        )
        .await,
        1
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM audit_log WHERE action = 'payment.record' AND actor_id IS NULL").await,
        1,
        "booked and audited as the system"
    );
    s.wait_for("SELECT count(*) FROM notifications WHERE title = '缴费成功'", 1).await;
    // paid bills cannot be paid again
    let r = s.gql(Some(&o6), PAY, json!({"i": {"billIds": b.six, "provider": "WECHAT"}})).await;
    assert_eq!(code(&r), "CONFLICT", "{r}");

    // the public-key mode: answers and notifications signed with the WeChat Pay public key;
    // an amount that differs from the order is booked nowhere and finance is told at once
    wx.set_mode(WxKey::PublicKey);
    let seven = s.ok(Some(&o7), PAY, json!({"i": {"billIds": [b.seven[1]], "provider": "WECHAT"}})).await["payBills"]
        ["payOrder"]
        .clone();
    let otn7 = seven["outTradeNo"].as_str().unwrap().to_owned();
    wx.pay(&otn7);
    let total7 = wx.order(&otn7).unwrap().total;
    let n = wx.notification(&otn7, WxKey::PublicKey, s.clock_now().timestamp(), Some(total7 - 1));
    assert_eq!(wx.deliver(&url, &n).await.0, 204, "acknowledged: people look at it, WeChat need not retry");
    let o = s.ok(Some(&o7), ORDER, json!({"id": seven["id"]})).await["payOrder"].clone();
    assert_eq!(o["status"], "DISPUTED");
    assert!(o["paymentId"].is_string(), "the money received is held on a payment, to refund: {o}");
    assert_eq!(
        s.scalar(
            "SELECT count(*) FROM payments WHERE unapplied = amount AND NOT EXISTS
                  (SELECT 1 FROM payment_allocations a WHERE a.payment_id = payments.id)"
        )
        .await,
        1
    );
    assert_eq!(s.ok(Some(&o7), BILL, json!({"id": b.seven[1]})).await["bill"]["status"], "UNPAID", "nothing booked");
    let told = s
        .scalar(
            "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id
             WHERE n.priority = 'critical' AND n.title = '线上支付金额不符' AND u.username = 'finance1'",
        )
        .await;
    assert_eq!(told, 1, "finance is told once");

    // 退款: finance asks, the manager approves, WeChat pays it back; the later bill owes it again
    let payment = s.ok(Some(&o6), ORDER, json!({"id": first["id"]})).await["payOrder"]["paymentId"].clone();
    let ask = "mutation($i: RequestRefundInput!) { requestRefund(input: $i) { approval { id kind status } } }";
    let r =
        s.gql(Some(&finance), ask, json!({"i": {"paymentId": payment, "amount": "100000", "reason": "多收"}})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "amount"), "{r}");
    let r = s.gql(Some(&o6), ask, json!({"i": {"paymentId": payment, "amount": "1", "reason": "多收"}})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    let a = s
        .ok(Some(&finance), ask, json!({"i": {"paymentId": payment, "amount": "1.50", "reason": "水表读数有误，退还"}}))
        .await["requestRefund"]["approval"]
        .clone();
    assert_eq!(a["kind"], "REFUND");
    let manager = s.sign_in("manager").await;
    let decide = "mutation($i: DecideApprovalInput!) { decideApproval(input: $i) { approval { status } } }";
    s.ok(Some(&manager), decide, json!({"i": {"id": a["id"], "approve": true, "note": "同意"}})).await;
    let refunds = "query($p: ID!) { refunds(paymentId: $p) { status amount outRefundNo } }";
    let r = s.ok(Some(&finance), refunds, json!({"p": payment})).await;
    assert_eq!(r["refunds"][0]["status"], "PROCESSING");
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    let r = s.ok(Some(&finance), refunds, json!({"p": payment})).await;
    assert_eq!(r["refunds"][0]["status"], "PROCESSING", "WeChat is still paying it back: {r}");
    let later = s.ok(Some(&o6), BILL, json!({"id": b.six[1]})).await["bill"].clone();
    assert_eq!(later["status"], "PAID", "nothing booked before the money moved");
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    let r = s.ok(Some(&finance), refunds, json!({"p": payment})).await;
    assert_eq!(r["refunds"][0]["status"], "SUCCEEDED", "{r}");
    let paid_back = wx.refunds();
    assert_eq!(paid_back.len(), 1);
    assert_eq!(paid_back[0]["amount"]["refund"], 150);
    let later = s.ok(Some(&o6), BILL, json!({"id": b.six[1]})).await["bill"].clone();
    assert_eq!((later["status"].as_str(), dec(&later["outstanding"])), (Some("PARTIAL"), Decimal::new(150, 2)));
    assert_eq!(dec(&later["payments"][0]["payment"]["refunded"]), Decimal::new(150, 2));
    assert_eq!(s.scalar("SELECT count(*) FROM audit_log WHERE action = 'payment.refund'").await, 1);
    // the scheduler's next round changes nothing
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    assert_eq!(wx.refunds().len(), 1);
}

#[tokio::test]
async fn alipay_payments_are_found_by_asking_when_no_notification_comes() {
    let ali = FakeAlipay::start().await;
    let wx = FakeWechatPay::start().await;
    let merchant = ali.merchant();
    let wx_merchant = wx.merchant();
    let s = TestServer::seeded_with(|c| {
        c.pay.alipay.insert("JCWY".into(), merchant);
        c.pay.wechat.insert("JCWY".into(), wx_merchant);
        c.pay.reconcile_after_secs = 60;
    })
    .await;
    let b = bills(&s).await;
    let o6 = s.sign_in("13800000006").await;
    let o7 = s.sign_in("13800000007").await;
    let r =
        s.gql(Some(&o6), PAY, json!({"i": {"billIds": [b.six[1]], "provider": "ALIPAY", "channel": "JSAPI"}})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "channel"), "{r}");

    // the app opens Alipay with the signed order string, pays, and asks once the cashier closes
    let o =
        s.ok(Some(&o6), PAY, json!({"i": {"billIds": [b.six[1]], "provider": "ALIPAY"}})).await["payBills"]["payOrder"]
            .clone();
    let params: Value = serde_json::from_str(o["params"].as_str().unwrap()).unwrap();
    let otn = ali.open(params["orderString"].as_str().unwrap());
    assert_eq!(otn, o["outTradeNo"].as_str().unwrap());
    assert_eq!(ali.order(&otn).unwrap().total_amount, format!("{:.2}", dec(&o["amount"])));
    let pending = s.ok(Some(&o6), ORDER, json!({"id": o["id"], "r": true})).await["payOrder"].clone();
    assert_eq!(pending["status"], "PENDING", "not paid yet");
    let trade = ali.pay(&otn);
    s.advance(6);
    let paid = s.ok(Some(&o6), ORDER, json!({"id": o["id"], "r": true})).await["payOrder"].clone();
    assert_eq!((paid["status"].as_str(), paid["transactionId"].as_str()), (Some("PAID"), Some(trade.as_str())));
    // Alipay's notification comes later: answered `success`, nothing booked twice
    let url = format!("{}/pay/alipay/JCWY/notify", s.url);
    let note = ali.notification(&otn, None, false);
    assert_eq!(ali.deliver(&url, &note).await, (200, "success".to_owned()));
    assert_eq!(ali.deliver(&url, &note).await, (200, "success".to_owned()));
    assert_eq!(s.scalar("SELECT count(*) FROM payments").await, 1);

    // a notification signed with another key is refused (`fail`, Alipay tries again)
    let o = s.ok(Some(&o7), PAY, json!({"i": {"billIds": [b.seven[1]], "provider": "ALIPAY"}})).await["payBills"]
        ["payOrder"]
        .clone();
    let params: Value = serde_json::from_str(o["params"].as_str().unwrap()).unwrap();
    let otn7 = ali.open(params["orderString"].as_str().unwrap());
    ali.pay(&otn7);
    assert_eq!(ali.deliver(&url, &ali.notification(&otn7, None, true)).await.1, "fail");
    let mut tampered = ali.notification(&otn7, None, false);
    tampered = tampered.replace("total_amount=", "total_amount=1");
    assert_eq!(ali.deliver(&url, &tampered).await.1, "fail", "an amount changed after signing");
    assert_eq!(s.scalar("SELECT count(*) FROM payments").await, 1);
    assert_eq!(ali.deliver(&url, &ali.notification(&otn7, None, false)).await.1, "success");
    assert_eq!(s.scalar("SELECT count(*) FROM payments").await, 2);
    assert_eq!(s.ok(Some(&o7), BILL, json!({"id": b.seven[1]})).await["bill"]["status"], "PAID");

    // the same bill again through Alipay: the open order; through WeChat: refused while the
    // Alipay order string was never opened (Alipay cannot close it, it stays payable)
    let first =
        s.ok(Some(&o6), PAY, json!({"i": {"billIds": [b.six[0]], "provider": "ALIPAY"}})).await["payBills"]["payOrder"]
            .clone();
    let same = s.ok(Some(&o6), PAY, json!({"i": {"billIds": [b.six[0]], "provider": "ALIPAY"}})).await;
    assert_eq!(same["payBills"]["payOrder"]["id"], first["id"]);
    let r = s.gql(Some(&o6), PAY, json!({"i": {"billIds": [b.six[0]], "provider": "WECHAT"}})).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "billIds"), "{r}");
    // once opened, a WeChat order of the same bill closes it at Alipay
    let p1: Value = serde_json::from_str(first["params"].as_str().unwrap()).unwrap();
    let otn1 = ali.open(p1["orderString"].as_str().unwrap());
    let second =
        s.ok(Some(&o6), PAY, json!({"i": {"billIds": [b.six[0]], "provider": "WECHAT"}})).await["payBills"]["payOrder"]
            .clone();
    assert_ne!(first["id"], second["id"]);
    assert_eq!(ali.order(&otn1).unwrap().status, "TRADE_CLOSED");
    assert_eq!(s.ok(Some(&o6), ORDER, json!({"id": first["id"]})).await["payOrder"]["status"], "CLOSED");

    // paid, and neither a notification nor the app comes back: the scheduler asks WeChat
    let otn2 = second["outTradeNo"].as_str().unwrap().to_owned();
    wx.pay(&otn2);
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    assert_eq!(s.ok(Some(&o6), ORDER, json!({"id": second["id"]})).await["payOrder"]["status"], "PENDING", "too early");
    s.advance(61);
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    assert_eq!(s.ok(Some(&o6), ORDER, json!({"id": second["id"]})).await["payOrder"]["status"], "PAID");
    assert_eq!(s.scalar("SELECT count(*) FROM payments").await, 3);
    assert_eq!(ali.bad_signatures(), 0, "every gateway request carried the app's valid signature");
    // Alipay refunds through the approval as well
    let finance = s.sign_in("finance1").await;
    let payment = paid["paymentId"].clone();
    let ask = "mutation($i: RequestRefundInput!) { requestRefund(input: $i) { approval { id } } }";
    let a =
        s.ok(Some(&finance), ask, json!({"i": {"paymentId": payment, "amount": "2", "reason": "物业费多收"}})).await;
    let manager = s.sign_in("manager").await;
    let decide = "mutation($i: DecideApprovalInput!) { decideApproval(input: $i) { approval { status } } }";
    s.ok(
        Some(&manager),
        decide,
        json!({"i": {"id": a["requestRefund"]["approval"]["id"], "approve": true, "note": "同意"}}),
    )
    .await;
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    let refunds = ali.refunds();
    assert_eq!(refunds.values().collect::<Vec<_>>(), vec!["2.00"]);
}
