//! 公摊: a meter of common parts shared over houses by building area; a SHARED fee item
//! bills each house its share, the shares (4 decimals) adding up to the meter's usage.

use chrono::{Datelike, Months};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};
use wuye_tests::{TestServer, code, field};

use super::pay::bills;

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("a decimal string: {v}")).parse().unwrap()
}

#[tokio::test]
async fn a_shared_meter_is_billed_by_area_and_the_shares_add_up() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let finance = s.sign_in("finance1").await;
    let tech = s.sign_in("tech1").await;
    let p = s.ok(Some(&admin), "query { projects(search: \"JCHY\") { edges { node { id } } } }", json!({})).await;
    let project = p["projects"]["edges"][0]["node"]["id"].clone();
    let mine = "query { myHouses { id buildingArea } }";
    let o6 = s.sign_in("13800000006").await;
    let o7 = s.sign_in("13800000007").await;
    let h6 = s.ok(Some(&o6), mine, json!({})).await["myHouses"][0].clone();
    let h7 = s.ok(Some(&o7), mine, json!({})).await["myHouses"][0].clone();

    // the stairwell's electricity meter, on no house
    let create = "mutation($i: CreateDeviceInput!) { createDevice(input: $i) { device { id } } }";
    let meter = s
        .ok(
            Some(&admin),
            create,
            json!({"i": {"projectId": project, "code": "JC-PUB-EM-01", "name": "1栋公区电表", "category": "ELECTRICITY_METER",
                          "attributes": {"meterNo": "PUB-0001", "initialReading": "0"}}}),
        )
        .await["createDevice"]["device"]["id"]
        .clone();
    let set = "mutation($i: SetSharedMeterInput!) { setSharedMeter(input: $i) { deviceId } }";
    let r = s.gql(Some(&o6), set, json!({"i": {"deviceId": meter, "method": "AREA", "houseIds": [h6["id"]]}})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    let r = s.gql(Some(&tech), set, json!({"i": {"deviceId": meter, "method": "AREA", "houseIds": []}})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "houseIds"), "{r}");
    s.ok(Some(&tech), set, json!({"i": {"deviceId": meter, "method": "AREA", "houseIds": [h6["id"], h7["id"]]}})).await;
    let listed = s
        .ok(
            Some(&finance),
            "query($p: ID!) { sharedMeters(projectId: $p) { deviceId method houseIds } }",
            json!({"p": project}),
        )
        .await;
    assert_eq!(listed["sharedMeters"][0]["method"], "AREA");

    // 公摊电费 at 0.6 a kWh from last month
    let today = s.clock_now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let this = today.with_day(1).unwrap();
    let last = this - Months::new(1);
    let item = json!({"projectId": project, "name": "公摊电费", "kind": "SHARED", "method": "METERED", "cycle": "MONTHLY",
        "meterCategory": "ELECTRICITY_METER", "effectiveFrom": last.to_string(), "price": {"unitPrice": "0.6"}});
    s.ok(
        Some(&finance),
        "mutation($i: CreateFeeItemInput!) { createFeeItem(input: $i) { feeItem { id } } }",
        json!({"i": item}),
    )
    .await;
    let read = "mutation($i: RecordMeterReadingInput!) { recordMeterReading(input: $i) { meterRecord { usage } } }";
    for (m, v) in [(last, "1000"), (this, "1150.5")] {
        s.ok(Some(&tech), read, json!({"i": {"deviceId": meter, "period": m.to_string(), "reading": v}})).await;
    }

    // the runs (with the houses' water) bill each house its share
    let b = bills(&s).await;
    let (a6, a7) = (dec(&h6["buildingArea"]), dec(&h7["buildingArea"]));
    let bill = "query($id: ID!) { bill(id: $id) { total lines { name quantity unitPrice amount } } }";
    let share = |token: String, id: Value| {
        let s = &s;
        async move {
            let b = s.ok(Some(&token), bill, json!({"id": id})).await["bill"].clone();
            let l = b["lines"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["name"] == "公摊电费")
                .unwrap_or_else(|| panic!("{b}"))
                .clone();
            let sum: Decimal = b["lines"].as_array().unwrap().iter().map(|l| dec(&l["amount"])).sum();
            assert_eq!(sum, dec(&b["total"]));
            (dec(&l["quantity"]), dec(&l["amount"]))
        }
    };
    for (i, total) in [(0, Decimal::from(1000)), (1, "150.5".parse::<Decimal>().unwrap())] {
        let (q6, m6) = share(o6.clone(), b.six[i].clone()).await;
        let (q7, m7) = share(o7.clone(), b.seven[i].clone()).await;
        assert_eq!(q6 + q7, total, "the shares add up to the meter's usage");
        for (q, a) in [(q6, a6), (q7, a7)] {
            assert!((q - total * a / (a6 + a7)).abs() < Decimal::new(1, 4), "{q} for area {a}");
        }
        let fen = |d: Decimal| d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        assert_eq!(
            (m6, m7),
            (fen(q6 * "0.6".parse::<Decimal>().unwrap()), fen(q7 * "0.6".parse::<Decimal>().unwrap()))
        );
    }
}
