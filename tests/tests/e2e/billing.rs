//! Fee items (费用项目设置): finance sets items and prices, every method's amount is
//! computed exactly (area, fixed, tiers, a formula) and rounded half-up once, a price
//! change applies from its day, and nobody without `fee:*` reads or writes them.

use rust_decimal::Decimal;
use serde_json::{Value, json};
use wuye_tests::{TestServer, code, field};

const ITEMS: &str = "query($p: ID!) { feeItems(projectId: $p, first: 50) { edges { node {
    id name kind payer method cycle meterCategory prices { effectiveFrom unitPrice tiers { upTo price } formula } } } } }";

const QUOTE: &str = "query($f: ID!, $h: ID!, $on: NaiveDate!, $u: Decimal, $m: Decimal, $d: Decimal) {
    feeQuote(feeItemId: $f, houseId: $h, on: $on, usage: $u, months: $m, days: $d) {
        quantity unitPrice amount price { effectiveFrom unitPrice } } }";

const CREATE: &str = "mutation($i: CreateFeeItemInput!) { createFeeItem(input: $i) { clientMutationId
    feeItem { id name method prices { unitPrice formula } } } }";

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("a decimal string: {v}")).parse().unwrap()
}

async fn quote(s: &TestServer, token: &str, vars: Value) -> Value {
    s.gql(Some(token), QUOTE, vars).await
}

#[tokio::test]
async fn finance_prices_fee_items_and_every_method_computes_exactly() {
    let s = TestServer::seeded().await;
    let finance = s.sign_in("finance1").await;
    let p = s.ok(Some(&finance), "query { projects(search: \"JCHY\") { edges { node { id } } } }", json!({})).await;
    let project = p["projects"]["edges"][0]["node"]["id"].clone();
    let items = s.ok(Some(&finance), ITEMS, json!({"p": project})).await;
    let items: Vec<Value> = items["feeItems"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
    let by_name = |n: &str| items.iter().find(|i| i["name"] == n).unwrap_or_else(|| panic!("{n}: {items:?}")).clone();
    let (property, water, garbage) = (by_name("物业费"), by_name("水费"), by_name("垃圾清运费"));
    assert_eq!((property["method"].as_str(), water["method"].as_str()), (Some("BUILDING_AREA"), Some("TIERED")));
    assert_eq!(water["meterCategory"], "WATER_METER");
    assert_eq!(by_name("停车管理费")["payer"], "PARKING_SPACE");

    // a house of the estate and its area
    let h = s
        .ok(
            Some(&finance),
            "query($p: ID!) { houses(projectId: $p, first: 1) { edges { node { id buildingArea } } } }",
            json!({"p": project}),
        )
        .await;
    let house = h["houses"]["edges"][0]["node"].clone();
    assert!(house["buildingArea"].is_string(), "{h}");
    let area = dec(&house["buildingArea"]);
    let on = "2026-11-27";
    // 物业费: area × 2.35 for a month, × 3 for a quarter, rounded half-up once
    let r = quote(&s, &finance, json!({"f": property["id"], "h": house["id"], "on": on})).await;
    assert!(r.get("errors").is_none(), "{r}");
    let want =
        (area * Decimal::new(235, 2)).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    assert_eq!(dec(&r["data"]["feeQuote"]["amount"]), want, "{r}");
    assert_eq!(dec(&r["data"]["feeQuote"]["quantity"]), area);
    let r = quote(&s, &finance, json!({"f": property["id"], "h": house["id"], "on": on, "m": "3"})).await;
    let want3 = (area * Decimal::new(235, 2) * Decimal::from(3))
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    assert_eq!(dec(&r["data"]["feeQuote"]["amount"]), want3);
    let r = quote(&s, &finance, json!({"f": garbage["id"], "h": house["id"], "on": on, "m": "3"})).await;
    assert_eq!(dec(&r["data"]["feeQuote"]["amount"]), Decimal::from(30));
    // 水费 31.5 m³ over the tiers: 15 × 2.93 + 10 × 3.87 + 6.5 × 6.68 = 126.07
    let r = quote(&s, &finance, json!({"f": water["id"], "h": house["id"], "on": on, "u": "31.5"})).await;
    assert_eq!(dec(&r["data"]["feeQuote"]["amount"]), "126.07".parse::<Decimal>().unwrap(), "{r}");
    assert_eq!(dec(&r["data"]["feeQuote"]["unitPrice"]), "4.0022".parse::<Decimal>().unwrap());
    let r = quote(&s, &finance, json!({"f": water["id"], "h": house["id"], "on": on})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "usage"), "a metered item needs its usage");
    // a parking fee is not quoted on a house
    let parking = by_name("停车管理费");
    let r = quote(&s, &finance, json!({"f": parking["id"], "h": house["id"], "on": on})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "feeItemId"));
    // before the item existed there is no price
    let r = quote(&s, &finance, json!({"f": property["id"], "h": house["id"], "on": "2025-06-01"})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "on"));
    let r = quote(&s, &finance, json!({"f": property["id"], "h": house["id"], "on": on, "d": "-1"})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "days"));

    // a formula item, resent on a weak signal: one item
    let formula = json!({"projectId": project, "name": "公共能耗分摊", "kind": "SHARED", "method": "FORMULA",
        "cycle": "MONTHLY", "effectiveFrom": "2026-11-01", "clientMutationId": "fee-1",
        "price": {"unitPrice": "0.5", "formula": "area * price + ceil(days / 30) * 5"}});
    let made = s.ok(Some(&finance), CREATE, json!({"i": formula})).await;
    let again = s.ok(Some(&finance), CREATE, json!({"i": formula})).await;
    let id = made["createFeeItem"]["feeItem"]["id"].clone();
    assert_eq!(again["createFeeItem"]["feeItem"]["id"], id);
    assert_eq!(s.scalar("SELECT count(*) FROM fee_items WHERE name = '公共能耗分摊'").await, 1);
    let r = quote(&s, &finance, json!({"f": id, "h": house["id"], "on": on, "d": "45"})).await;
    assert!(r.get("errors").is_none(), "{r}");
    let want = (area * Decimal::new(5, 1) + Decimal::from(10))
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    assert_eq!(dec(&r["data"]["feeQuote"]["amount"]), want, "{r}");
    // the same name again is a conflict; bad input names its field
    let mut dup = formula.clone();
    dup["clientMutationId"] = json!("fee-2");
    let r = s.gql(Some(&finance), CREATE, json!({"i": dup})).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "name"));
    for (patch, want_field) in [
        (json!({"price": {"unitPrice": "1", "formula": "area * rate"}}), "formula"),
        (json!({"price": {"unitPrice": "1", "formula": "area; DROP TABLE fee_items"}}), "formula"),
        (json!({"method": "FIXED", "price": {"unitPrice": "1.23456"}}), "unitPrice"),
        (json!({"method": "FIXED", "price": {"unitPrice": "-1"}}), "unitPrice"),
        (json!({"method": "METERED", "price": {"unitPrice": "1"}}), "meterCategory"),
        (
            json!({"method": "TIERED", "meterCategory": "WATER_METER", "price": {"tiers": [{"upTo": "20", "price": "1"}, {"upTo": "10", "price": "2"}, {"price": "3"}]}}),
            "tiers",
        ),
        (
            json!({"method": "TIERED", "meterCategory": "WATER_METER", "price": {"tiers": [{"upTo": "20", "price": "1"}]}}),
            "tiers",
        ),
        (json!({"method": "FIXED", "effectiveTo": "2026-01-01", "price": {"unitPrice": "1"}}), "effectiveTo"),
        (json!({"method": "FIXED", "appliesTo": {"scope": "BUILDINGS"}, "price": {"unitPrice": "1"}}), "scope"),
        (json!({"price": {"formula": "area * price"}}), "unitPrice"),
        (
            json!({"method": "TIERED", "meterCategory": "WATER_METER", "price": {"unitPrice": "1", "tiers": [{"price": "3"}]}}),
            "unitPrice",
        ),
    ] {
        let mut bad = formula.clone();
        bad["clientMutationId"] = Value::Null;
        bad["name"] = json!("测试项目");
        for (k, v) in patch.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let r = s.gql(Some(&finance), CREATE, json!({"i": bad})).await;
        assert_eq!((code(&r), field(&r)), ("VALIDATION", want_field), "{patch}: {r}");
    }
    assert_eq!(s.scalar("SELECT count(*) FROM fee_items WHERE name = '测试项目'").await, 0, "nothing half-written");

    // a new price from 1 January: December keeps the old one
    let set =
        "mutation($i: SetFeePriceInput!) { setFeePrice(input: $i) { feeItem { prices { effectiveFrom unitPrice } } } }";
    let r = s
        .ok(
            Some(&finance),
            set,
            json!({"i": {"feeItemId": property["id"], "effectiveFrom": "2027-01-01", "price": {"unitPrice": "2.60"}}}),
        )
        .await;
    let prices = r["setFeePrice"]["feeItem"]["prices"].as_array().unwrap().clone();
    assert_eq!(prices.len(), 2);
    assert_eq!(prices[1]["effectiveFrom"], "2027-01-01");
    let dec31 = quote(&s, &finance, json!({"f": property["id"], "h": house["id"], "on": "2026-12-31"})).await;
    let jan1 = quote(&s, &finance, json!({"f": property["id"], "h": house["id"], "on": "2027-01-01"})).await;
    assert_eq!(dec(&dec31["data"]["feeQuote"]["price"]["unitPrice"]), Decimal::new(235, 2));
    assert_eq!(dec(&jan1["data"]["feeQuote"]["price"]["unitPrice"]), Decimal::new(26, 1));
    let r = s
        .gql(
            Some(&finance),
            set,
            json!({"i": {"feeItemId": property["id"], "effectiveFrom": "2025-01-01", "price": {"unitPrice": "1"}}}),
        )
        .await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "effectiveFrom"), "not before the item");
    let yesterday =
        (s.clock_now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive() - chrono::Duration::days(1)).to_string();
    let back = json!({"i": {"feeItemId": property["id"], "effectiveFrom": yesterday, "price": {"unitPrice": "1"}}});
    let r = s.gql(Some(&finance), set, back).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "effectiveFrom"), "past periods keep their prices");
    assert_eq!(
        s.scalar("SELECT count(*) FROM audit_log WHERE action IN ('fee_item.create', 'fee_item.price')").await,
        6
    );

    // the manager reads but does not price; a technician and an owner see nothing
    let manager = s.sign_in("manager").await;
    assert_eq!(
        s.ok(Some(&manager), ITEMS, json!({"p": project})).await["feeItems"]["edges"].as_array().unwrap().len(),
        5
    );
    let r = s
        .gql(
            Some(&manager),
            set,
            json!({"i": {"feeItemId": property["id"], "effectiveFrom": "2027-02-01", "price": {"unitPrice": "9"}}}),
        )
        .await;
    assert_eq!(code(&r), "FORBIDDEN");
    for who in ["tech1", "13800000006"] {
        let t = s.sign_in(who).await;
        assert_eq!(code(&s.gql(Some(&t), ITEMS, json!({"p": project})).await), "FORBIDDEN", "{who}");
        let r = quote(&s, &t, json!({"f": property["id"], "h": house["id"], "on": on})).await;
        assert_eq!(code(&r), "NOT_FOUND", "{who}");
    }
}
