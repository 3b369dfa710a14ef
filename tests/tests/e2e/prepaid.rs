//! 预存: a top-up at the counter pays the house's unpaid bills at once, oldest first; a
//! balance pays new bills as a run issues them; bills, payments and balances reconcile
//! (balance = top-ups − deductions); only the house's people and billing staff see it.

use rust_decimal::Decimal;
use serde_json::{Value, json};
use wuye_tests::{TestServer, code, field};

use super::pay::bills;

const TOP_UP: &str = "mutation($i: TopUpPrepaidInput!) { topUpPrepaid(input: $i) { clientMutationId balance
    entries { kind amount balanceAfter method receiptNo paymentId } } }";
const BALANCE: &str = "query($h: ID!) { prepaidBalance(houseId: $h) }";
const BILL: &str = "query($id: ID!) { bill(id: $id) { status outstanding payments { amount payment { method } } } }";

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("a decimal string: {v}")).parse().unwrap()
}

#[tokio::test]
async fn a_prepaid_balance_pays_bills_as_they_are_issued_and_reconciles() {
    let s = TestServer::seeded().await;
    let finance = s.sign_in("finance1").await;
    let o6 = s.sign_in("13800000006").await;
    let o7 = s.sign_in("13800000007").await;
    let mine = "query { myHouses { id } }";
    let h6 = s.ok(Some(&o6), mine, json!({})).await["myHouses"][0]["id"].clone();
    let h7 = s.ok(Some(&o7), mine, json!({})).await["myHouses"][0]["id"].clone();

    // bad input names the field
    for (i, want) in [
        (json!({"houseId": h7, "amount": "0", "method": "CASH"}), "amount"),
        (json!({"houseId": h7, "amount": "10.001", "method": "CASH"}), "amount"),
        (json!({"houseId": h7, "amount": "10", "method": "WECHAT"}), "method"),
        (json!({"houseId": h7, "amount": "10", "method": "BANK_TRANSFER"}), "reference"),
    ] {
        let r = s.gql(Some(&finance), TOP_UP, json!({"i": i})).await;
        assert_eq!((code(&r), field(&r)), ("VALIDATION", want), "{i}: {r}");
    }
    let r = s.gql(Some(&o7), TOP_UP, json!({"i": {"houseId": h7, "amount": "10", "method": "CASH"}})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");

    // house 7 pays 1000 in before any bill: resent on a weak signal, booked once
    let i = json!({"houseId": h7, "amount": "1000", "method": "CASH", "clientMutationId": "top-1"});
    let a = s.ok(Some(&finance), TOP_UP, json!({"i": i})).await["topUpPrepaid"].clone();
    let b = s.ok(Some(&finance), TOP_UP, json!({"i": i})).await["topUpPrepaid"].clone();
    assert_eq!((dec(&a["balance"]), dec(&b["balance"])), (Decimal::new(1000, 0), Decimal::new(1000, 0)));
    assert!(a["entries"][0]["receiptNo"].as_str().unwrap().starts_with("SK"));

    // the runs issue bills: house 7's are paid from its balance as they are issued
    let bl = bills(&s).await;
    for id in &bl.seven {
        let bill = s.ok(Some(&o7), BILL, json!({"id": id})).await["bill"].clone();
        assert_eq!(bill["status"], "PAID", "{bill}");
        assert_eq!(bill["payments"][0]["payment"]["method"], "PREPAID");
    }
    let owed6: Decimal = {
        let mut t = Decimal::ZERO;
        for id in &bl.six {
            t += dec(&s.ok(Some(&o6), BILL, json!({"id": id})).await["bill"]["outstanding"]);
        }
        t
    };

    // house 6 tops up part of what it owes: the oldest bill first
    let first = dec(&s.ok(Some(&o6), BILL, json!({"id": bl.six[0]})).await["bill"]["outstanding"]);
    let part = first + Decimal::new(1, 2);
    let r = s
        .ok(
            Some(&finance),
            TOP_UP,
            json!({"i": {"houseId": h6, "amount": part.to_string(), "method": "POS", "reference": "POS-778"}}),
        )
        .await["topUpPrepaid"]
        .clone();
    assert_eq!(dec(&r["balance"]), Decimal::ZERO, "{r}");
    assert_eq!((r["entries"][0]["kind"].as_str(), dec(&r["entries"][0]["amount"])), (Some("DEDUCTION"), part));
    assert_eq!(s.ok(Some(&o6), BILL, json!({"id": bl.six[0]})).await["bill"]["status"], "PAID");
    let second = s.ok(Some(&o6), BILL, json!({"id": bl.six[1]})).await["bill"].clone();
    assert_eq!((second["status"].as_str(), dec(&second["outstanding"])), (Some("PARTIAL"), owed6 - part));

    // who sees a balance: the house's people and billing staff, not another owner
    assert_eq!(dec(&s.ok(Some(&o6), BALANCE, json!({"h": h6})).await["prepaidBalance"]), Decimal::ZERO);
    let r = s.gql(Some(&o7), BALANCE, json!({"h": h6})).await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    let tech = s.sign_in("tech1").await;
    let r = s.gql(Some(&tech), BALANCE, json!({"h": h6})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    let history =
        "query($h: ID!) { prepaidEntries(houseId: $h, first: 10) { edges { node { kind amount balanceAfter } } } }";
    let e = s.ok(Some(&o7), history, json!({"h": h7})).await;
    let kinds: Vec<&str> =
        e["prepaidEntries"]["edges"].as_array().unwrap().iter().map(|x| x["node"]["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.last(), Some(&"TOP_UP"), "{e}");
    assert!(kinds.len() >= 2);

    // everything reconciles: balances = top-ups − deductions; deductions = prepaid payments
    // = what they allocated; the scheduler finds nothing left to draw
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    assert_eq!(
        s.scalar(
            "SELECT count(*) FROM prepaid_accounts a WHERE a.balance =
               (SELECT coalesce(sum(CASE kind WHEN 'top_up' THEN amount ELSE -amount END), 0)
                FROM prepaid_entries e WHERE e.house_id = a.house_id)"
        )
        .await,
        2
    );
    assert_eq!(
        s.scalar(
            "SELECT count(*) FROM prepaid_entries e JOIN payments p ON p.id = e.payment_id
             WHERE p.method = 'prepaid' AND p.amount = e.amount
               AND p.amount = (SELECT sum(amount) FROM payment_allocations a WHERE a.payment_id = p.id)"
        )
        .await,
        s.scalar("SELECT count(*) FROM prepaid_entries WHERE kind = 'deduction'").await
    );
    assert_eq!(s.scalar("SELECT count(*) FROM audit_log WHERE action = 'prepaid.top_up'").await, 2);
}
