//! Meter reading and bill runs: readings exact to the register, a register gone down
//! refused without a replacement, abnormal usage held for review; a run previewed, then
//! committed with hand-computed amounts (part of a month by its days, water tiers), run
//! again without adding anything, regenerated after a corrected reading, left alone once
//! paid; the owner sees only their own bills; offline payments numbered, allocated and
//! never more than owed, retried and raced.

use chrono::{Datelike, Months, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};
use wuye_tests::{TestServer, code, field};

const RECORD: &str = "mutation($i: RecordMeterReadingInput!) { recordMeterReading(input: $i) {
    meterRecord { id period reading previous usage status flagReason source } } }";
const PREVIEW: &str = "query($i: BillRunInput!) { billRunPreview(input: $i) { period dueDate created regenerated
    unchanged skipped lines total byBuilding { buildingId bills total } skipCounts { reason count }
    skippedHouses { houseId reason detail } } }";
const RUN: &str = "mutation($i: BillRunInput!) { runBills(input: $i) { clientMutationId
    billRun { id created regenerated unchanged skipped total } } }";
const MY_BILLS: &str = "query { myBills(first: 10) { edges { node { id period status total paid outstanding dueDate
    houseId lines { kind name quantity unitPrice months previousReading currentReading amount } } } } }";
const BILL: &str = "query($id: ID!) { bill(id: $id) { id status total paid outstanding lateFee
    lines { name amount } payments { amount payment { receiptNo method } } } }";
const PAY: &str = "mutation($i: RecordPaymentInput!) { recordPayment(input: $i) { payment { id receiptNo amount method
    allocations { billId amount } } } }";

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("a decimal string: {v}")).parse().unwrap()
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn fen(v: Decimal) -> Decimal {
    v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

struct Estate {
    project: Value,
    /// the owner 13800000006's house, its area and its water meter
    house: Value,
    area: Decimal,
    meter: Value,
    /// the next house (owner 13800000007) and its meter
    house7: Value,
    meter7: Value,
}

async fn estate(s: &TestServer) -> Estate {
    let admin = s.sign_in("admin").await;
    let p = s.ok(Some(&admin), "query { projects(search: \"JCHY\") { edges { node { id } } } }", json!({})).await;
    let project = p["projects"]["edges"][0]["node"]["id"].clone();
    let mine = "query { myHouses { id buildingArea } }";
    let o6 = s.sign_in("13800000006").await;
    let h6 = s.ok(Some(&o6), mine, json!({})).await["myHouses"][0].clone();
    let o7 = s.sign_in("13800000007").await;
    let h7 = s.ok(Some(&o7), mine, json!({})).await["myHouses"][0].clone();
    let devices = s
        .ok(
            Some(&admin),
            "query($p: ID!) { devices(projectId: $p, category: WATER_METER, first: 50) { edges { node { id houseId } } } }",
            json!({"p": project}),
        )
        .await;
    let meter_of = |h: &Value| {
        devices["devices"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["node"]["houseId"] == h["id"])
            .unwrap_or_else(|| panic!("a meter on {h}"))["node"]["id"]
            .clone()
    };
    Estate {
        project,
        area: dec(&h6["buildingArea"]),
        meter: meter_of(&h6),
        meter7: meter_of(&h7),
        house: h6["id"].clone(),
        house7: h7["id"].clone(),
    }
}

fn months(s: &TestServer) -> (NaiveDate, NaiveDate) {
    let today = s.clock_now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let this = today.with_day(1).unwrap();
    (this, this - Months::new(1))
}

async fn record(
    s: &TestServer,
    token: &str,
    meter: &Value,
    period: NaiveDate,
    reading: &str,
    cmid: Option<&str>,
) -> Value {
    s.gql(
        Some(token),
        RECORD,
        json!({"i": {"deviceId": meter, "period": period.to_string(), "reading": reading, "clientMutationId": cmid}}),
    )
    .await
}

#[tokio::test]
async fn a_bill_run_bills_exactly_once_and_follows_corrected_readings_until_paid() {
    let s = TestServer::seeded().await;
    let e = estate(&s).await;
    let finance = s.sign_in("finance1").await;
    let tech = s.sign_in("tech1").await;
    let (this, last) = months(&s);
    let dim = (this + Months::new(1) - this).num_days();

    // 抄表: last month 100.5 from the meter's initial 0, this month 132 (31.5 m³); a
    // technician enters it from the app, a retry applies once
    let r = record(&s, &tech, &e.meter, last, "100.5", None).await;
    assert!(r.get("errors").is_none(), "{r}");
    assert_eq!(dec(&r["data"]["recordMeterReading"]["meterRecord"]["usage"]), d("100.5"));
    for _ in 0..2 {
        let r = record(&s, &tech, &e.meter, this, "132.0000", Some("read-1")).await;
        let m = &r["data"]["recordMeterReading"]["meterRecord"];
        assert_eq!(
            (dec(&m["previous"]), dec(&m["usage"]), m["status"].as_str()),
            (d("100.5"), d("31.5"), Some("NORMAL")),
            "{r}"
        );
        assert_eq!(m["source"], "STAFF");
    }
    assert_eq!(s.scalar("SELECT count(*) FROM meter_readings").await, 2);
    // a register below the last one is refused, as are bad values and months to come
    for (reading, period, want) in [
        ("99.9", this, "reading"),
        ("-1", this, "reading"),
        ("1.00001", this, "reading"),
        ("10", this + Months::new(1), "period"),
        ("10", this + chrono::Days::new(1), "period"),
    ] {
        let r = record(&s, &tech, &e.meter, period, reading, None).await;
        assert_eq!((code(&r), field(&r)), ("VALIDATION", want), "{reading} {period}: {r}");
    }
    // the owner and a guard cannot read meters
    let owner = s.sign_in("13800000006").await;
    let r = record(&s, &owner, &e.meter, this, "140", None).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");

    // 计费开始: the house was handed over on the 14th: property and garbage by days
    let r = s
        .gql(
            Some(&finance),
            "mutation($i: SetChargeStartInput!) { setChargeStart(input: $i) { houses } }",
            json!({"i": {"houseIds": [e.house], "chargeStart": (this + chrono::Days::new(13)).to_string()}}),
        )
        .await;
    assert_eq!(r["data"]["setChargeStart"]["houses"], 1, "{r}");
    let days = Decimal::from(dim - 13);
    let property = fen(e.area * d("2.35") * days / Decimal::from(dim));
    let garbage = fen(d("10") * days / Decimal::from(dim));
    let water = d("126.07"); // 15 × 2.93 + 10 × 3.87 + 6.5 × 6.68
    let total = property + garbage + water;

    // preview: house 6 billed, house 7 (a meter without a reading) skipped with the reason
    let input = json!({"projectId": e.project, "period": this.to_string(), "houseIds": [e.house, e.house7]});
    let p = s.ok(Some(&finance), PREVIEW, json!({"i": input})).await["billRunPreview"].clone();
    assert_eq!((p["created"].as_i64(), p["skipped"].as_i64(), p["lines"].as_i64()), (Some(1), Some(1), Some(3)), "{p}");
    assert_eq!(dec(&p["total"]), total, "{p}");
    assert_eq!(p["skippedHouses"][0]["houseId"], e.house7);
    assert_eq!(p["skippedHouses"][0]["reason"], "NO_READING");
    assert_eq!(p["dueDate"], (this + Months::new(1) + chrono::Days::new(14)).to_string());
    assert_eq!(s.scalar("SELECT count(*) FROM bills").await, 0, "a preview writes nothing");

    // commit, resent on a weak signal: one run, one bill
    let mut run = input.clone();
    run["clientMutationId"] = json!("run-1");
    let a = s.ok(Some(&finance), RUN, json!({"i": run})).await;
    let b = s.ok(Some(&finance), RUN, json!({"i": run})).await;
    assert_eq!(a["runBills"]["billRun"]["id"], b["runBills"]["billRun"]["id"]);
    assert_eq!(a["runBills"]["billRun"]["created"], 1);
    assert_eq!(s.scalar("SELECT count(*) FROM bill_runs").await, 1);
    // the owner's bill, line by line
    let mine = s.ok(Some(&owner), MY_BILLS, json!({})).await;
    let bill = mine["myBills"]["edges"][0]["node"].clone();
    assert_eq!(
        (bill["status"].as_str(), dec(&bill["total"]), dec(&bill["outstanding"])),
        (Some("UNPAID"), total, total),
        "{bill}"
    );
    let line = |n: &str| bill["lines"].as_array().unwrap().iter().find(|l| l["name"] == n).unwrap().clone();
    assert_eq!(dec(&line("物业费")["amount"]), property);
    assert_eq!(dec(&line("物业费")["quantity"]), e.area);
    assert_eq!(
        dec(&line("物业费")["months"]),
        (days / Decimal::from(dim)).round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
    );
    assert_eq!(dec(&line("垃圾清运费")["amount"]), garbage);
    let w = line("水费");
    assert_eq!(
        (dec(&w["quantity"]), dec(&w["previousReading"]), dec(&w["currentReading"]), dec(&w["amount"])),
        (d("31.5"), d("100.5"), d("132"), water)
    );
    let sum: Decimal = bill["lines"].as_array().unwrap().iter().map(|l| dec(&l["amount"])).sum();
    assert_eq!(sum, total, "the lines add up to the total");

    // 账单通知: the owner has no phone registered for push, so the amount and the due date
    // also go by SMS; the inbox has it
    assert_eq!(s.wait_sms_count("13800000006", 1).await, 1);
    let sms =
        wuye_api::notify::sms::dev_messages(&s.state.redis, &s.state.config.redis_prefix, "13800000006").await.unwrap();
    let text = &sms[0].text;
    assert!(text.contains(bill["dueDate"].as_str().unwrap()) && text.contains(" 元"), "{text}");
    let amount: Decimal = text.split(" 元").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(amount, total, "{text}");
    let inbox = s
        .ok(Some(&owner), "query { notifications(first: 5) { edges { node { category title body } } } }", json!({}))
        .await;
    assert_eq!(inbox["notifications"]["edges"][0]["node"]["category"], "BILL", "{inbox}");
    // the same run again (no retry key) adds nothing
    let again = s.ok(Some(&finance), RUN, json!({"i": input})).await;
    assert_eq!(
        (again["runBills"]["billRun"]["created"].as_i64(), again["runBills"]["billRun"]["unchanged"].as_i64()),
        (Some(0), Some(1))
    );
    assert_eq!(s.scalar("SELECT count(*) FROM bills").await, 1);
    assert_eq!(s.scalar("SELECT count(*) FROM bill_lines").await, 3);

    // a corrected reading: 130 (29.5 m³ = 43.95 + 38.70 + 30.06 = 112.71); the unpaid bill is written again
    let r = record(&s, &tech, &e.meter, this, "130", None).await;
    assert_eq!(dec(&r["data"]["recordMeterReading"]["meterRecord"]["usage"]), d("29.5"), "{r}");
    let re = s.ok(Some(&finance), RUN, json!({"i": input})).await;
    assert_eq!(re["runBills"]["billRun"]["regenerated"], 1, "{re}");
    let total2 = property + garbage + d("112.71");
    assert_eq!(s.wait_sms_count("13800000006", 2).await, 2, "the changed bill is told again");
    let now = s.ok(Some(&owner), BILL, json!({"id": bill["id"]})).await;
    assert_eq!(dec(&now["bill"]["total"]), total2, "{now}");
    assert_eq!(s.scalar("SELECT count(*) FROM bill_lines").await, 3);

    // nobody else sees it: another owner, a technician, the second company's finance
    let other = s.sign_in("13800000007").await;
    assert_eq!(code(&s.gql(Some(&other), BILL, json!({"id": bill["id"]})).await), "NOT_FOUND");
    assert_eq!(s.ok(Some(&other), MY_BILLS, json!({})).await["myBills"]["edges"], json!([]));
    assert_eq!(code(&s.gql(Some(&tech), BILL, json!({"id": bill["id"]})).await), "NOT_FOUND");
    let list = "query($p: ID!, $m: NaiveDate!) { bills(projectId: $p, period: $m) { edges { node { id } } } }";
    let r = s.gql(Some(&tech), list, json!({"p": e.project, "m": this.to_string()})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    let r = s.gql(Some(&owner), RUN, json!({"i": input})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");

    // 线下收款: 100 in cash, resent: one payment, numbered; the bill part paid
    let pay = |amount: &str, method: &str, reference: Option<&str>, cmid: Option<&str>| json!({"i": {"billIds": [bill["id"]], "amount": amount, "method": method, "reference": reference, "clientMutationId": cmid}});
    let year = this.year();
    let p1 = s.ok(Some(&finance), PAY, pay("100", "CASH", None, Some("pay-1"))).await;
    let p1b = s.ok(Some(&finance), PAY, pay("100", "CASH", None, Some("pay-1"))).await;
    assert_eq!(p1["recordPayment"]["payment"]["id"], p1b["recordPayment"]["payment"]["id"]);
    assert_eq!(p1["recordPayment"]["payment"]["receiptNo"], format!("SK{year}-000001"));
    assert_eq!(dec(&p1["recordPayment"]["payment"]["allocations"][0]["amount"]), d("100"));
    let now = s.ok(Some(&owner), BILL, json!({"id": bill["id"]})).await;
    assert_eq!((now["bill"]["status"].as_str(), dec(&now["bill"]["paid"])), (Some("PARTIAL"), d("100")));
    // once paid in part, a corrected reading no longer rewrites the bill
    record(&s, &tech, &e.meter, this, "131", None).await;
    let re = s.ok(Some(&finance), RUN, json!({"i": input})).await;
    assert_eq!(re["runBills"]["billRun"]["regenerated"], 0, "{re}");
    let p = s.ok(Some(&finance), PREVIEW, json!({"i": input})).await["billRunPreview"].clone();
    assert!(p["skipCounts"].as_array().unwrap().iter().any(|c| c["reason"] == "HAS_PAYMENT"), "{p}");
    assert_eq!(dec(&s.ok(Some(&owner), BILL, json!({"id": bill["id"]})).await["bill"]["total"]), total2);

    // bad payments name their field; more than owed is refused
    let rest = total2 - d("100");
    for (v, want) in [
        (pay("0", "CASH", None, None), "amount"),
        (pay("-5", "CASH", None, None), "amount"),
        (pay("1.001", "CASH", None, None), "amount"),
        (pay(&(rest + d("0.01")).to_string(), "CASH", None, None), "amount"),
        (pay("10", "BANK_TRANSFER", None, None), "reference"),
        (pay("10", "WECHAT", Some("x"), None), "method"),
    ] {
        let r = s.gql(Some(&finance), PAY, v.clone()).await;
        assert_eq!((code(&r), field(&r)), ("VALIDATION", want), "{v}: {r}");
    }
    // two cashiers race to take the rest: one is taken, the other refused, never both
    let f1 = s.gql(Some(&finance), PAY, pay(&rest.to_string(), "POS", Some("POS-1"), None));
    let f2 = s.gql(Some(&finance), PAY, pay(&rest.to_string(), "POS", Some("POS-2"), None));
    let (r1, r2) = tokio::join!(f1, f2);
    let oks = [&r1, &r2].iter().filter(|r| r.get("errors").is_none()).count();
    assert_eq!(oks, 1, "{r1} {r2}");
    let now = s.ok(Some(&owner), BILL, json!({"id": bill["id"]})).await;
    assert_eq!((now["bill"]["status"].as_str(), dec(&now["bill"]["outstanding"])), (Some("PAID"), d("0")), "{now}");
    assert_eq!(now["bill"]["payments"].as_array().unwrap().len(), 2);
    // totals reconcile: lines = totals, allocations = paid, payments = allocations
    assert_eq!(
        s.scalar(
            "SELECT count(*) FROM bills b WHERE total <> (SELECT sum(amount) FROM bill_lines WHERE bill_id = b.id)"
        )
        .await,
        0
    );
    assert_eq!(s.scalar("SELECT count(*) FROM bills b WHERE paid <> coalesce((SELECT sum(amount) FROM payment_allocations WHERE bill_id = b.id), 0)").await, 0);
    assert_eq!(s.scalar("SELECT count(*) FROM payments p WHERE amount <> (SELECT sum(amount) FROM payment_allocations WHERE payment_id = p.id)").await, 0);
    assert_eq!(
        s.scalar("SELECT count(*) FROM audit_log WHERE action IN ('bill_run.commit', 'payment.record')").await,
        6
    );
}

#[tokio::test]
async fn telemetry_registers_are_read_exactly_and_abnormal_usage_waits_for_review() {
    let s = TestServer::seeded().await;
    let e = estate(&s).await;
    let finance = s.sign_in("finance1").await;
    let (this, last) = months(&s);
    // last month by hand, this month from the meter's own telemetry (JC-WM-0007)
    let r = record(&s, &finance, &e.meter7, last, "40", None).await;
    assert!(r.get("errors").is_none(), "{r}");
    s.mqtt_publish("JCWY/JC-WM-0007/telemetry", br#"{"values":{"reading":1000.1234,"flowLph":1.5}}"#).await;
    s.wait_for("SELECT count(*) FROM telemetry WHERE data ? 'reading'", 1).await;
    let collect =
        "mutation($i: CollectMeterReadingsInput!) { collectMeterReadings(input: $i) { read flagged missing already } }";
    let c = s.ok(Some(&finance), collect, json!({"i": {"projectId": e.project, "period": this.to_string()}})).await;
    assert_eq!(
        (c["collectMeterReadings"]["read"].as_i64(), c["collectMeterReadings"]["flagged"].as_i64()),
        (Some(1), Some(1)),
        "{c}"
    );
    assert_eq!(c["collectMeterReadings"]["missing"], 9, "the other meters sent nothing");
    let held = "query($p: ID!, $m: NaiveDate!) { meterRecords(projectId: $p, period: $m, status: FLAGGED) {
        edges { node { id reading usage source flagReason } } } }";
    let h = s.ok(Some(&finance), held, json!({"p": e.project, "m": this.to_string()})).await;
    let rec = h["meterRecords"]["edges"][0]["node"].clone();
    // exact: 1000.1234 − 40, never a float's 960.1233999…
    assert_eq!(
        (dec(&rec["reading"]), dec(&rec["usage"]), rec["source"].as_str()),
        (d("1000.1234"), d("960.1234"), Some("IOT")),
        "{rec}"
    );
    assert!(rec["flagReason"].as_str().unwrap().contains("3倍"), "{rec}");
    // a held reading keeps the house out of the run
    let input = json!({"projectId": e.project, "period": this.to_string(), "houseIds": [e.house7]});
    let p = s.ok(Some(&finance), PREVIEW, json!({"i": input})).await["billRunPreview"].clone();
    assert_eq!(p["skippedHouses"][0]["reason"], "FLAGGED_READING", "{p}");
    // a register gone down needs the replacement first; then reviewed: corrected and accepted
    let review =
        "mutation($i: ReviewMeterReadingInput!) { reviewMeterReading(input: $i) { meterRecord { status usage } } }";
    let r = s.gql(Some(&finance), review, json!({"i": {"id": rec["id"], "correctedReading": "12"}})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "reading"), "{r}");
    let replace = "mutation($i: ReplaceMeterInput!) { replaceMeter(input: $i) { deviceId } }";
    let r =
        s.ok(Some(&finance), replace, json!({"i": {"deviceId": e.meter7, "oldFinal": "52", "newInitial": "0"}})).await;
    assert_eq!(r["replaceMeter"]["deviceId"], e.meter7);
    let r = s.ok(Some(&finance), review, json!({"i": {"id": rec["id"], "correctedReading": "12"}})).await;
    // 52 − 40 on the old meter + 12 on the new one
    let m = &r["reviewMeterReading"]["meterRecord"];
    assert_eq!((m["status"].as_str(), dec(&m["usage"])), (Some("ACCEPTED"), d("24")), "{r}");
    let r = s.gql(Some(&finance), review, json!({"i": {"id": rec["id"]}})).await;
    assert_eq!(code(&r), "CONFLICT", "reviewed once");
    let p = s.ok(Some(&finance), PREVIEW, json!({"i": input})).await["billRunPreview"].clone();
    assert_eq!((p["created"].as_i64(), p["skipped"].as_i64()), (Some(1), Some(0)), "{p}");
    // collecting again leaves what is read
    let c = s.ok(Some(&finance), collect, json!({"i": {"projectId": e.project, "period": this.to_string()}})).await;
    assert_eq!(
        (c["collectMeterReadings"]["read"].as_i64(), c["collectMeterReadings"]["already"].as_i64()),
        (Some(0), Some(1))
    );
}

#[tokio::test]
async fn late_fees_accrue_daily_after_the_grace_days_on_what_is_unpaid_up_to_the_cap() {
    let s = TestServer::seeded().await;
    let finance = s.sign_in("finance1").await;
    let (this, _) = months(&s);
    let owner = s.sign_in("13800000021").await;
    let house = s.ok(Some(&owner), "query { myHouses { id } }", json!({})).await["myHouses"][0]["id"].clone();
    let p = s.ok(Some(&finance), "query { projects(search: \"JCHY\") { edges { node { id } } } }", json!({})).await;
    let project = p["projects"]["edges"][0]["node"]["id"].clone();
    let today = s.clock_now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let r = s
        .ok(
            Some(&finance),
            RUN,
            json!({"i": {"projectId": project, "period": this.to_string(), "houseIds": [house], "dueDate": today.to_string()}}),
        )
        .await;
    assert_eq!(r["runBills"]["billRun"]["created"], 1, "{r}");
    let bill = s.ok(Some(&owner), MY_BILLS, json!({})).await["myBills"]["edges"][0]["node"].clone();
    let total = dec(&bill["total"]);
    let set = "mutation($i: SetLateFeePolicyInput!) { setLateFeePolicy(input: $i) { lateFeePolicy { dailyRate graceDays capRatio } } }";
    for (rate, grace, cap, f) in
        [("0.02", 3, "0.1", "dailyRate"), ("0.0005", -1, "0.1", "graceDays"), ("0.0005", 3, "1.5", "capRatio")]
    {
        let r = s
            .gql(
                Some(&finance),
                set,
                json!({"i": {"projectId": project, "dailyRate": rate, "graceDays": grace, "capRatio": cap}}),
            )
            .await;
        assert_eq!((code(&r), field(&r)), ("VALIDATION", f), "{r}");
    }
    let r = s
        .ok(
            Some(&finance),
            set,
            json!({"i": {"projectId": project, "dailyRate": "0.0005", "graceDays": 3, "capRatio": "0.05"}}),
        )
        .await;
    assert_eq!(r["setLateFeePolicy"]["lateFeePolicy"]["graceDays"], 3);
    let accrue = || async { wuye_api::billing::bills::service::accrue_late_fees(&s.state).await.unwrap() };
    let late = |t: String| {
        let s = &s;
        let id = bill["id"].clone();
        async move { s.ok(Some(&t), BILL, json!({"id": id})).await["bill"].clone() }
    };
    // within the grace days nothing accrues
    s.advance(3 * 86_400);
    assert_eq!(accrue().await, 0);
    // ten days on: 7 days past the grace, of the whole principal
    s.advance(7 * 86_400);
    assert_eq!(accrue().await, 1);
    assert_eq!(accrue().await, 0, "once a day");
    let finance = s.sign_in("finance1").await;
    let b = late(finance.clone()).await;
    let mut fee = fen(total * d("0.0005") * d("7"));
    assert_eq!(dec(&b["lateFee"]), fee, "{b}");
    assert_eq!(dec(&b["outstanding"]), total + fee);
    // 100 paid: the next five days accrue on the rest only
    let pay =
        "mutation($b: ID!) { recordPayment(input: {billIds: [$b], amount: \"100\", method: CASH}) { payment { id } } }";
    s.ok(Some(&finance), pay, json!({"b": bill["id"]})).await;
    s.advance(5 * 86_400);
    accrue().await;
    fee = fen(fee + (total - d("100")) * d("0.0005") * d("5"));
    let finance = s.sign_in("finance1").await;
    let b = late(finance.clone()).await;
    assert_eq!((dec(&b["lateFee"]), b["status"].as_str()), (fee, Some("PARTIAL")), "{b}");
    // a long time later: capped at 5 % of the total; the issued lines never change
    s.advance(400 * 86_400);
    accrue().await;
    let finance = s.sign_in("finance1").await;
    let b = late(finance).await;
    assert_eq!(dec(&b["lateFee"]), fen(total * d("0.05")), "{b}");
    assert_eq!(dec(&b["total"]), total);
    assert_eq!(
        s.scalar("SELECT count(*) FROM audit_log WHERE action = 'late_fee.accrue' AND actor_id IS NULL").await,
        3
    );

    // 减免: finance asks, with a reason; nobody decides their own request; the manager approves
    let finance = s.sign_in("finance1").await;
    let ask = "mutation($i: RequestLateFeeWaiverInput!) { requestLateFeeWaiver(input: $i) { approval { id status kind reason } } }";
    let r = s.gql(Some(&finance), ask, json!({"i": {"billId": bill["id"], "reason": " "}})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "reason"), "{r}");
    let r = s.ok(Some(&finance), ask, json!({"i": {"billId": bill["id"], "reason": "业主住院，经理同意减免"}})).await;
    let approval = r["requestLateFeeWaiver"]["approval"].clone();
    assert_eq!((approval["status"].as_str(), approval["kind"].as_str()), (Some("PENDING"), Some("LATE_FEE_WAIVER")));
    let r = s.gql(Some(&finance), ask, json!({"i": {"billId": bill["id"], "reason": "再申请一次"}})).await;
    assert_eq!(code(&r), "CONFLICT", "one open request per bill: {r}");
    let decide = "mutation($i: DecideApprovalInput!) { decideApproval(input: $i) { approval { status decidedBy decisionNote } } }";
    let r = s.gql(Some(&finance), decide, json!({"i": {"id": approval["id"], "approve": true}})).await;
    assert_eq!(code(&r), "FORBIDDEN", "finance may ask, not decide: {r}");
    let other = s.sign_in("13800000021").await;
    let r = s.gql(Some(&other), decide, json!({"i": {"id": approval["id"], "approve": true}})).await;
    assert_eq!(code(&r), "NOT_FOUND", "an owner does not see it: {r}");
    let manager = s.sign_in("manager").await;
    let r = s.gql(Some(&manager), decide, json!({"i": {"id": approval["id"], "approve": false}})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "note"), "a rejection says why: {r}");
    let r = s.ok(Some(&manager), decide, json!({"i": {"id": approval["id"], "approve": true, "note": "同意"}})).await;
    assert_eq!(r["decideApproval"]["approval"]["status"], "APPROVED");
    let r = s.gql(Some(&manager), decide, json!({"i": {"id": approval["id"], "approve": true}})).await;
    assert_eq!(code(&r), "CONFLICT", "decided once: {r}");
    let b = late(finance.clone()).await;
    assert_eq!((dec(&b["lateFee"]), dec(&b["outstanding"])), (d("0"), total - d("100")), "{b}");
    s.advance(86_400);
    accrue().await;
    let b = late(s.sign_in("finance1").await).await;
    assert_eq!(dec(&b["lateFee"]), d("0"), "a waived late fee no longer accrues");

    // 欠费 and 收缴率: the house owes the rest; the month collected 100 of its total
    let finance = s.sign_in("finance1").await;
    let report = "query($p: ID!) { arrearsReport(projectId: $p) { houses outstanding byBuilding { houses outstanding }
        lines { houseId place payerName bills outstanding } csv } }";
    let r = s.ok(Some(&finance), report, json!({"p": project})).await["arrearsReport"].clone();
    assert_eq!((r["houses"].as_i64(), dec(&r["outstanding"])), (Some(1), total - d("100")), "{r}");
    assert_eq!(r["lines"][0]["houseId"], house);
    assert!(r["lines"][0]["place"].as_str().unwrap().contains("栋"), "{r}");
    let csv = r["csv"].as_str().unwrap();
    assert!(csv.starts_with("\u{feff}楼栋,房屋/车位,缴费人") && csv.lines().count() == 2, "{csv}");
    assert!(csv.contains(&format!(",1,{},", (total - d("100")).round_dp(2))), "{csv}");
    let rates = "query($p: ID!, $f: NaiveDate!, $t: NaiveDate!) { collectionRates(projectId: $p, from: $f, to: $t) {
        period bills paidBills billed collected rate } }";
    let r = s.ok(Some(&finance), rates, json!({"p": project, "f": this.to_string(), "t": this.to_string()})).await;
    let c = &r["collectionRates"][0];
    assert_eq!((c["bills"].as_i64(), dec(&c["billed"]), dec(&c["collected"])), (Some(1), total, d("100")), "{r}");
    assert_eq!(dec(&c["rate"]), (d("100") / total).round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero));
    let tech = s.sign_in("tech1").await;
    assert_eq!(code(&s.gql(Some(&tech), report, json!({"p": project})).await), "FORBIDDEN");
    assert_eq!(
        s.scalar("SELECT count(*) FROM audit_log WHERE action IN ('approval.request', 'approval.approve')").await,
        2
    );
}

#[tokio::test]
async fn a_month_of_readings_imports_from_csv_all_or_nothing() {
    let s = TestServer::seeded().await;
    let e = estate(&s).await;
    let tech = s.sign_in("tech1").await;
    let (this, last) = months(&s);
    let code_of = |m: &Value| {
        let m = m.clone();
        let s = &s;
        let tech = tech.clone();
        async move {
            s.ok(Some(&tech), "query($id: ID!) { device(id: $id) { code } }", json!({"id": m})).await["device"]["code"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (c6, c7) = (code_of(&e.meter).await, code_of(&e.meter7).await);
    let import = "mutation($i: ImportMeterReadingsInput!) { importMeterReadings(input: $i) { imported } }";
    let run = |period: NaiveDate, csv: String, cmid: Option<&str>| json!({"i": {"projectId": e.project, "period": period.to_string(), "csv": csv, "clientMutationId": cmid}});

    // a BOM, Chinese headers, resent on a weak signal: written once
    let csv = format!("\u{feff}设备编号,读数\n{c6},100.5\n{c7}, 20 \n");
    let a = s.ok(Some(&tech), import, run(last, csv.clone(), Some("imp-1"))).await;
    let b = s.ok(Some(&tech), import, run(last, csv, Some("imp-1"))).await;
    assert_eq!(
        (a["importMeterReadings"]["imported"].as_i64(), b["importMeterReadings"]["imported"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(s.scalar("SELECT count(*) FROM meter_readings WHERE source = 'import'").await, 2);
    assert_eq!(s.scalar("SELECT count(*) FROM audit_log WHERE action = 'meter_reading.import'").await, 1);

    // every bad line named, nothing written
    let bad = format!("deviceCode,reading\n{c6},abc\nNOPE-1,5\n{c7},-1\n{c6},101\n{c6},102\n");
    let r = s.gql(Some(&tech), import, run(this, bad, None)).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "csv"), "{r}");
    let errors = r["errors"][0]["extensions"]["details"]["errors"].as_array().unwrap().clone();
    let got: Vec<(i64, &str)> =
        errors.iter().map(|e| (e["line"].as_i64().unwrap(), e["field"].as_str().unwrap())).collect();
    assert_eq!(got, vec![(2, "reading"), (3, "deviceCode"), (4, "reading"), (6, "deviceCode")], "{r}");
    let r = s.gql(Some(&tech), import, run(this, format!("设备编号,读数\n{c6},99\n"), None)).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "csv"), "below the previous register: {r}");
    let r = s.gql(Some(&tech), import, run(this, "编号,值\nx,1\n".into(), None)).await;
    assert_eq!(code(&r), "VALIDATION", "{r}");
    assert_eq!(s.scalar("SELECT count(*) FROM meter_readings").await, 2);
    let owner = s.sign_in("13800000006").await;
    let r = s.gql(Some(&owner), import, run(this, format!("设备编号,读数\n{c6},120\n"), None)).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");

    // a good month: usage follows
    let r = s.ok(Some(&tech), import, run(this, format!("设备编号,读数\n{c6},120\n{c7},31\n"), None)).await;
    assert_eq!(r["importMeterReadings"]["imported"], 2);
    let usage = s.scalar("SELECT (sum(usage) * 10)::bigint FROM meter_readings WHERE period = date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai')::date").await;
    assert_eq!(usage, 305, "19.5 + 11 m³");
}
