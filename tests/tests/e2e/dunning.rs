//! 催缴: reminders of overdue bills by each project's schedule (each step once per bill,
//! only the latest step due), by hand (once a day per bill), logged per bill; staff see
//! every notice about a bill and how each channel ended, owners do not.

use serde_json::json;
use wuye_tests::{TestServer, code, field};

use super::pay::bills;

const FOLLOW: &str = "query($id: ID!) { bill(id: $id) { status reminders { step owed sentBy }
    notices { title status channels deliveries { channel status } } } }";

#[tokio::test]
async fn overdue_bills_are_reminded_by_schedule_and_staff_see_each_delivery() {
    let s = TestServer::seeded().await;
    let b = bills(&s).await;
    let finance = s.sign_in("finance1").await;
    let admin = s.sign_in("admin").await;
    let p = s.ok(Some(&admin), "query { projects(search: \"JCHY\") { edges { node { id } } } }", json!({})).await;
    let project = p["projects"]["edges"][0]["node"]["id"].clone();
    let set = "mutation($i: SetDunningPolicyInput!) { setDunningPolicy(input: $i) { daysAfterDue } }";
    for bad in [json!([]), json!([0]), json!([400]), json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])] {
        let r = s.gql(Some(&finance), set, json!({"i": {"projectId": project, "daysAfterDue": bad}})).await;
        assert_eq!((code(&r), field(&r)), ("VALIDATION", "daysAfterDue"), "{bad}: {r}");
    }
    let owner = s.sign_in("13800000006").await;
    let r = s.gql(Some(&owner), set, json!({"i": {"projectId": project, "daysAfterDue": [1]}})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    let r = s.ok(Some(&finance), set, json!({"i": {"projectId": project, "daysAfterDue": [30, 1, 1]}})).await;
    assert_eq!(r["setDunningPolicy"]["daysAfterDue"], json!([1, 30]));

    // last month's bills fell due three days ago, this month's in ten days
    sqlx::query(
        "UPDATE bills SET due_date = (now() AT TIME ZONE 'Asia/Shanghai')::date
             + CASE WHEN period < date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai') THEN -3 ELSE 10 END",
    )
    .execute(&s.db)
    .await
    .unwrap();
    let sms_before = s.sms_count("13800000006").await;
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    assert_eq!(s.scalar("SELECT count(*) FROM bill_reminders WHERE step = 1").await, 2, "one per overdue bill");
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    assert_eq!(s.scalar("SELECT count(*) FROM bill_reminders").await, 2, "each step once");
    assert_eq!(s.wait_sms_count("13800000006", sms_before + 1).await, sms_before + 1);
    let sms =
        wuye_api::notify::sms::dev_messages(&s.state.redis, &s.state.config.redis_prefix, "13800000006").await.unwrap();
    assert!(
        sms.iter().any(|m| m.text.contains("已逾期 3 天")),
        "{:?}",
        sms.iter().map(|m| &m.text).collect::<Vec<_>>()
    );

    // 27 days on: the 30-day step, only for the bills 30 days overdue
    s.advance(27 * 86_400);
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    assert_eq!(s.scalar("SELECT count(*) FROM bill_reminders WHERE step = 30").await, 2);

    // by hand the next day: once a day per bill
    s.advance(86_400);
    let finance = s.sign_in("finance1").await;
    let owner = s.sign_in("13800000006").await;

    let remind = "mutation($i: RemindBillsInput!) { remindBills(input: $i) { sent } }";
    let r = s.ok(Some(&finance), remind, json!({"i": {"billIds": [b.six[0]]}})).await;
    assert_eq!(r["remindBills"]["sent"], 1);
    let r = s.ok(Some(&finance), remind, json!({"i": {"billIds": [b.six[0]]}})).await;
    assert_eq!(r["remindBills"]["sent"], 0, "already reminded today");
    let r = s.gql(Some(&owner), remind, json!({"i": {"billIds": [b.six[0]]}})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    // two clerks at once the next day: one reminder
    s.advance(86_400);
    let finance = s.sign_in("finance1").await;
    let owner = s.sign_in("13800000006").await;
    let clerk = s.sign_in("finance1").await;
    let both = futures_util::future::join(
        s.gql(Some(&finance), remind, json!({"i": {"billIds": [b.six[0]]}})),
        s.gql(Some(&clerk), remind, json!({"i": {"billIds": [b.six[0]]}})),
    )
    .await;
    let sent: Vec<i64> = [&both.0, &both.1].iter().filter_map(|r| r["data"]["remindBills"]["sent"].as_i64()).collect();
    assert_eq!(sent.iter().sum::<i64>(), 1, "{both:?}");
    let other = s.sign_in("13800000007").await;
    let r = s.gql(Some(&other), remind, json!({"i": {"billIds": [b.six[0]]}})).await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");

    // staff follow it up: the reminders, and every notice with each channel's outcome
    s.wait_for("SELECT count(*) FROM notifications WHERE title = '缴费提醒' AND status = 'pending'", 0).await;
    let f = s.ok(Some(&finance), FOLLOW, json!({"id": b.six[0]})).await["bill"].clone();
    let steps: Vec<i64> = f["reminders"].as_array().unwrap().iter().map(|r| r["step"].as_i64().unwrap()).collect();
    assert_eq!(steps, vec![1, 30, 0, 0], "{f}");
    assert!(f["reminders"][2]["sentBy"].is_string() && f["reminders"][0]["sentBy"].is_null());
    let notices = f["notices"].as_array().unwrap();
    assert_eq!(notices.iter().filter(|n| n["title"] == "缴费提醒").count(), 4, "{f}");
    assert!(notices.iter().any(|n| n["title"].as_str().unwrap().ends_with("物业账单")), "the run's notice: {f}");
    for n in notices {
        assert_eq!(n["status"], "DONE", "{n}");
        assert!(
            n["deliveries"].as_array().unwrap().iter().any(|d| d["channel"] == "SMS" && d["status"] == "SENT"),
            "{n}"
        );
    }
    // the owner sees the bill, not the follow-up
    let mine = s.ok(Some(&owner), FOLLOW, json!({"id": b.six[0]})).await["bill"].clone();
    assert_eq!((mine["reminders"].as_array().unwrap().len(), mine["notices"].as_array().unwrap().len()), (0, 0));
    assert!(s.scalar("SELECT count(*) FROM audit_log WHERE action = 'bill.remind'").await >= 4);
}
