//! Owner feedback: submitted by an owner, answered by the estate's customer service in a
//! conversation, turned into a work order, rated; nobody else reads it; an unanswered
//! complaint reaches the manager after its deadline.

use serde_json::{Value, json};
use wuye_tests::{TestServer, code, field};

const F: &str = "id kind state content workOrderId firstReplyAt rating messages { fromStaff body } photoUrls";

async fn submit(s: &TestServer, token: &str, input: Value) -> Value {
    let q = format!("mutation($i: SubmitFeedbackInput!) {{ submitFeedback(input: $i) {{ feedback {{ {F} }} }} }}");
    s.gql(Some(token), &q, json!({"i": input})).await
}

async fn post(s: &TestServer, token: &str, id: &str, body: &str) -> Value {
    let q = format!(
        "mutation($i: PostFeedbackMessageInput!) {{ postFeedbackMessage(input: $i) {{ feedback {{ {F} }} }} }}"
    );
    s.gql(Some(token), &q, json!({"i": {"feedbackId": id, "body": body}})).await
}

#[tokio::test]
async fn an_owner_complains_customer_service_answers_converts_and_the_owner_rates() {
    let s = TestServer::seeded_with(|c| c.iot.jobs = true).await;
    let owner = s.sign_in("13800000009").await;
    let cs = s.sign_in("cs1").await;
    let houses = s.ok(Some(&owner), "{ myHouses { id } }", json!({})).await;
    let house = houses["myHouses"][0]["id"].as_str().unwrap().to_owned();
    let (photo, _) = s.upload_photo(&owner, "FEEDBACK").await;
    let r = submit(
        &s,
        &owner,
        json!({"kind": "COMPLAINT", "content": "楼上漏水到我家卫生间", "houseId": house, "photos": [photo]}),
    )
    .await;
    let f = r["data"]["submitFeedback"]["feedback"].clone();
    assert_eq!((f["state"].as_str(), f["kind"].as_str()), (Some("OPEN"), Some("COMPLAINT")), "{r}");
    let id = f["id"].as_str().unwrap().to_owned();
    assert_eq!(f["photoUrls"].as_array().unwrap().len(), 1);
    let told = "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id
                WHERE n.category = 'feedback' AND u.username = 'cs1'";
    assert_eq!(s.scalar(told).await, 1, "the estate's customer service hears of it");
    // bad input, another owner, another project's staff
    let r = submit(&s, &owner, json!({"kind": "PRAISE", "content": " "})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "content"));
    let neighbour = s.sign_in("13800000010").await;
    let q = format!("query($id: ID!) {{ feedback(id: $id) {{ {F} }} }}");
    assert_eq!(code(&s.gql(Some(&neighbour), &q, json!({"id": id})).await), "NOT_FOUND");
    assert_eq!(code(&post(&s, &neighbour, &id, "我也是").await), "NOT_FOUND");
    let r = submit(&s, &neighbour, json!({"kind": "COMPLAINT", "content": "x", "houseId": house})).await;
    assert_eq!(code(&r), "NOT_FOUND", "not their house");
    let tech2 = s.sign_in("tech2").await;
    assert_eq!(code(&s.gql(Some(&tech2), &q, json!({"id": id})).await), "NOT_FOUND");

    // the conversation: customer service answers (the owner is told), the owner follows up
    let r = post(&s, &cs, &id, "您好，已安排师傅上门查看").await;
    assert_eq!(r["data"]["postFeedbackMessage"]["feedback"]["state"], "REPLIED", "{r}");
    let owner_told = "SELECT count(*) FROM notifications n JOIN owners o ON o.user_id = n.user_id
                      WHERE n.category = 'feedback' AND o.phone = '13800000009'";
    assert_eq!(s.scalar(owner_told).await, 1);
    let r = post(&s, &owner, &id, "请尽快，还在滴水").await;
    assert_eq!(r["data"]["postFeedbackMessage"]["feedback"]["state"], "OPEN");
    // turned into a work order for the owner's house
    let conv = format!(
        "mutation($i: ConvertFeedbackInput!) {{ convertFeedbackToWorkOrder(input: $i) {{ feedback {{ {F} }} }} }}"
    );
    let input = json!({"i": {"feedbackId": id, "category": "PLUMBING", "clientMutationId": "conv-1"}});
    let r = s.ok(Some(&cs), &conv, input.clone()).await["convertFeedbackToWorkOrder"]["feedback"].clone();
    let order = r["workOrderId"].as_str().unwrap().to_owned();
    let again = s.ok(Some(&cs), &conv, input).await["convertFeedbackToWorkOrder"]["feedback"].clone();
    assert_eq!(again["workOrderId"], order.as_str(), "a retry makes no second order");
    assert_eq!(s.scalar("SELECT count(*) FROM work_orders WHERE source = 'service'").await, 1);
    let wo = s
        .ok(Some(&owner), "query($id: ID!) { workOrder(id: $id) { source priority houseId } }", json!({"id": order}))
        .await;
    assert_eq!(
        wo["workOrder"],
        json!({"source": "SERVICE", "priority": "HIGH", "houseId": house}),
        "the owner sees it"
    );
    let messages: Vec<bool> =
        r["messages"].as_array().unwrap().iter().map(|m| m["fromStaff"].as_bool().unwrap()).collect();
    assert_eq!(messages, [false, true, false, true]);
    // the owner rates; it closes; nothing more can be said
    let rate = "mutation($i: RateFeedbackInput!) { rateFeedback(input: $i) { feedback { state rating } } }";
    let r = s.gql(Some(&owner), rate, json!({"i": {"feedbackId": id, "rating": 0}})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "rating"));
    assert_eq!(code(&s.gql(Some(&cs), rate, json!({"i": {"feedbackId": id, "rating": 5}})).await), "FORBIDDEN");
    let r = s.ok(Some(&owner), rate, json!({"i": {"feedbackId": id, "rating": 4, "comment": "处理及时"}})).await;
    assert_eq!(r["rateFeedback"]["feedback"], json!({"state": "CLOSED", "rating": 4}));
    let r = post(&s, &cs, &id, "还有问题吗").await;
    assert_eq!(code(&r), "CONFLICT");
    assert_eq!(r["errors"][0]["extensions"]["details"]["currentState"], "CLOSED");
    // lists: the team's queue and the owner's own
    let list = "query($s: [FeedbackState!]) { feedbackList(states: $s) { edges { node { id } } } }";
    let mine = s.ok(Some(&neighbour), list, json!({})).await;
    assert_eq!(mine["feedbackList"]["edges"], json!([]));
    let queue = s.ok(Some(&cs), list, json!({"s": ["CLOSED"]})).await;
    assert_eq!(queue["feedbackList"]["edges"][0]["node"]["id"], id.as_str());

    // an unanswered complaint reaches the manager after two hours, once
    let r = submit(&s, &neighbour, json!({"kind": "COMPLAINT", "content": "夜间施工噪音"})).await;
    assert!(r.get("errors").is_none(), "{r}");
    let escalated = "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id
                     WHERE n.category = 'feedback' AND u.username = 'manager' AND n.title LIKE '%超时未回复%'";
    s.advance(2 * 3_600 + 60);
    assert_eq!(s.wait_for(escalated, 1).await, 1);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(s.scalar(escalated).await, 1);
}
