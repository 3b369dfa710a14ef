//! 空置房优惠 and 账单调整 through the approval kit: a relief approved by someone else
//! takes its share of the property fee off as a discount line that reruns keep exactly
//! once; an adjustment is the way to change a bill with a payment, never below what was paid.

use rust_decimal::Decimal;
use serde_json::{Value, json};
use wuye_tests::{TestServer, code, field};

use super::pay::bills;

const BILL: &str = "query($id: ID!) { bill(id: $id) { status total paid outstanding period
    lines { kind name amount } } }";
const DECIDE: &str = "mutation($i: DecideApprovalInput!) { decideApproval(input: $i) { approval { status } } }";

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("a decimal string: {v}")).parse().unwrap()
}

fn line(bill: &Value, kind: &str) -> Option<Value> {
    bill["lines"].as_array().unwrap().iter().find(|l| l["kind"] == kind).cloned()
}

#[tokio::test]
async fn vacancy_relief_and_adjustments_change_bills_only_once_approved() {
    let s = TestServer::seeded().await;
    let b = bills(&s).await;
    let finance = s.sign_in("finance1").await;
    let manager = s.sign_in("manager").await;
    let o6 = s.sign_in("13800000006").await;
    let h6 = s.ok(Some(&o6), "query { myHouses { id } }", json!({})).await["myHouses"][0]["id"].clone();
    let this = s.ok(Some(&o6), BILL, json!({"id": b.six[1]})).await["bill"].clone();
    let period = this["period"].as_str().unwrap().to_owned();
    let property = dec(&this["lines"].as_array().unwrap().iter().find(|l| l["name"] == "物业费").unwrap()["amount"]);

    // 空置房优惠: bad input names the field; the owner cannot ask
    let ask = "mutation($i: RequestVacancyReliefInput!) { requestVacancyRelief(input: $i) { approval { id kind } } }";
    let input = |from: &str, to: &str, ratio: &str| json!({"i": {"houseId": h6, "fromPeriod": from, "toPeriod": to, "ratio": ratio, "reason": "房屋空置，业主在外地"}});
    for (i, want) in [
        (input(&period, &period, "1.5"), "ratio"),
        (input(&period, &period, "0"), "ratio"),
        (input("2026-01-02", &period, "0.5"), "fromPeriod"),
        (input(&period, "2020-01-01", "0.5"), "toPeriod"),
    ] {
        let r = s.gql(Some(&finance), ask, i.clone()).await;
        assert_eq!((code(&r), field(&r)), ("VALIDATION", want), "{i}: {r}");
    }
    let r = s.gql(Some(&o6), ask, input(&period, &period, "0.5")).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    let a = s.ok(Some(&finance), ask, input(&period, &period, "0.5")).await["requestVacancyRelief"]["approval"].clone();
    assert_eq!(a["kind"], "VACANCY_RELIEF");

    // nothing changes before the approval; a rerun after it takes half the property fee off
    let admin = s.sign_in("admin").await;
    let p = s.ok(Some(&admin), "query { projects(search: \"JCHY\") { edges { node { id } } } }", json!({})).await;
    let project = p["projects"]["edges"][0]["node"]["id"].clone();
    let run = "mutation($i: BillRunInput!) { runBills(input: $i) { billRun { regenerated unchanged } } }";
    let again = json!({"i": {"projectId": project, "period": period, "houseIds": [h6]}});
    let r = s.ok(Some(&finance), run, again.clone()).await;
    assert_eq!(r["runBills"]["billRun"]["unchanged"], 1, "not approved yet: {r}");
    s.ok(Some(&manager), DECIDE, json!({"i": {"id": a["id"], "approve": true, "note": "同意"}})).await;
    let r = s.ok(Some(&finance), run, again.clone()).await;
    assert_eq!(r["runBills"]["billRun"]["regenerated"], 1, "{r}");
    let bill = s.ok(Some(&o6), BILL, json!({"id": b.six[1]})).await["bill"].clone();
    let off = (property / Decimal::TWO).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    let d = line(&bill, "DISCOUNT").expect("a discount line");
    assert_eq!(dec(&d["amount"]), -off, "{bill}");
    assert!(d["name"].as_str().unwrap().contains("空置房优惠"));
    assert_eq!(dec(&bill["total"]), dec(&this["total"]) - off);
    let sum: Decimal = bill["lines"].as_array().unwrap().iter().map(|l| dec(&l["amount"])).sum();
    assert_eq!(sum, dec(&bill["total"]), "the lines add up to the total");
    // 优惠: 10% off the garbage fee for this house from this month; bad input names the field
    let items = s
        .ok(
            Some(&finance),
            "query($p: ID!) { feeItems(projectId: $p, first: 20) { edges { node { id name } } } }",
            json!({"p": project}),
        )
        .await;
    let garbage_item = items["feeItems"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["name"] == "垃圾清运费")
        .unwrap()["node"]["id"]
        .clone();
    let add = "mutation($i: AddFeeDiscountInput!) { addFeeDiscount(input: $i) { discountId } }";
    let disc = |kind: &str, extra: Value| {
        let mut i = json!({"feeItemId": garbage_item, "name": "老人优惠", "kind": kind, "houseIds": [h6], "effectiveFrom": period});
        for (k, v) in extra.as_object().unwrap() {
            i[k] = v.clone();
        }
        json!({"i": i})
    };
    let r = s.gql(Some(&finance), add, disc("PERCENTAGE", json!({"rate": "2"}))).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "rate"), "{r}");
    let r = s.gql(Some(&finance), add, disc("FREE_MONTHS", json!({}))).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "payMonths"), "{r}");
    let r = s.gql(Some(&o6), add, disc("PERCENTAGE", json!({"rate": "0.1"}))).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    s.ok(Some(&finance), add, disc("PERCENTAGE", json!({"rate": "0.1"}))).await;
    let r = s.ok(Some(&finance), run, again.clone()).await;
    assert_eq!(r["runBills"]["billRun"]["regenerated"], 1, "{r}");
    let bill = s.ok(Some(&o6), BILL, json!({"id": b.six[1]})).await["bill"].clone();
    let garbage = dec(&bill["lines"].as_array().unwrap().iter().find(|l| l["name"] == "垃圾清运费").unwrap()["amount"]);
    let g_off = bill["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"].as_str().unwrap().starts_with("垃圾清运费优惠"))
        .unwrap()
        .clone();
    assert_eq!(
        dec(&g_off["amount"]),
        -(garbage / Decimal::TEN).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
        "{bill}"
    );
    assert!(g_off["name"].as_str().unwrap().contains("老人优惠"));
    let sum: Decimal = bill["lines"].as_array().unwrap().iter().map(|l| dec(&l["amount"])).sum();
    assert_eq!(sum, dec(&bill["total"]));

    // run again: the same discounts, once
    let r = s.ok(Some(&finance), run, again).await;
    assert_eq!(r["runBills"]["billRun"]["unchanged"], 1, "{r}");
    let bill = s.ok(Some(&o6), BILL, json!({"id": b.six[1]})).await["bill"].clone();
    assert_eq!(bill["lines"].as_array().unwrap().iter().filter(|l| l["kind"] == "DISCOUNT").count(), 2);

    // 账单调整: last month's bill paid in full, then 12.50 more approved
    let last = s.ok(Some(&o6), BILL, json!({"id": b.six[0]})).await["bill"].clone();
    let pay = "mutation($i: RecordPaymentInput!) { recordPayment(input: $i) { payment { id } } }";
    s.ok(Some(&finance), pay, json!({"i": {"billIds": [b.six[0]], "amount": last["outstanding"], "method": "CASH"}}))
        .await;
    let adjust =
        "mutation($i: RequestBillAdjustmentInput!) { requestBillAdjustment(input: $i) { approval { id kind } } }";
    let r = s.gql(Some(&finance), adjust, json!({"i": {"billId": b.six[0], "amount": "-5", "reason": "多算"}})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "amount"), "never below what was paid: {r}");
    let r = s.gql(Some(&finance), adjust, json!({"i": {"billId": b.six[0], "amount": "0", "reason": "无"}})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "amount"), "{r}");
    let r = s.gql(Some(&o6), adjust, json!({"i": {"billId": b.six[0], "amount": "1", "reason": "自己加"}})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    let a = s
        .ok(Some(&finance), adjust, json!({"i": {"billId": b.six[0], "amount": "12.50", "reason": "补收公共维修分摊"}}))
        .await["requestBillAdjustment"]["approval"]
        .clone();
    assert_eq!(a["kind"], "BILL_ADJUSTMENT");
    let r = s.gql(Some(&finance), DECIDE, json!({"i": {"id": a["id"], "approve": true}})).await;
    assert_eq!(code(&r), "FORBIDDEN", "maker is not checker: {r}");
    s.ok(Some(&manager), DECIDE, json!({"i": {"id": a["id"], "approve": true, "note": "同意"}})).await;
    let adjusted = s.ok(Some(&o6), BILL, json!({"id": b.six[0]})).await["bill"].clone();
    assert_eq!(
        (adjusted["status"].as_str(), dec(&adjusted["outstanding"]), dec(&adjusted["total"])),
        (Some("PARTIAL"), Decimal::new(1250, 2), dec(&last["total"]) + Decimal::new(1250, 2)),
        "{adjusted}"
    );
    assert_eq!(dec(&line(&adjusted, "ADJUSTMENT").unwrap()["amount"]), Decimal::new(1250, 2));
    let sum: Decimal = adjusted["lines"].as_array().unwrap().iter().map(|l| dec(&l["amount"])).sum();
    assert_eq!(sum, dec(&adjusted["total"]));
    assert_eq!(s.scalar("SELECT count(*) FROM audit_log WHERE action = 'bill.adjust'").await, 1);
}
