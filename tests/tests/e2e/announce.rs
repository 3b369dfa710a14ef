//! 公告: audiences, visibility, expiry, read receipts, permission and scope.

use serde_json::{Value, json};
use wuye_tests::{TestServer, code, field};

const PUBLISH: &str = "mutation($i: PublishAnnouncementInput!) { publishAnnouncement(input: $i) { announcement { id recipientCount readCount } } }";
const LIST: &str = "{ announcements { edges { node { id title audience pinned read readCount recipientCount } } } }";

async fn ids(s: &TestServer, token: &str) -> (String, String, String, String) {
    let d = s.ok(Some(token), "{ projects { edges { node { id code } } } }", json!({})).await;
    let p = |c: &str| {
        d["projects"]["edges"].as_array().unwrap().iter().find(|e| e["node"]["code"] == c).unwrap()["node"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (estate, tower) = (p("JCHY"), p("TFGJ"));
    let b = s
        .ok(
            Some(token),
            "query($p: ID!) { buildings(projectId: $p) { edges { node { id name } } } }",
            json!({"p": estate}),
        )
        .await;
    let bid = |n: &str| {
        b["buildings"]["edges"].as_array().unwrap().iter().find(|x| x["node"]["name"] == n).unwrap()["node"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    (estate, tower, bid("1栋"), bid("2栋"))
}

fn titles(d: &Value) -> Vec<String> {
    d["announcements"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn audiences_visibility_expiry_and_read_receipts() {
    let s = TestServer::seeded().await;
    let manager = s.sign_in("manager").await;
    let (estate, tower, b1, b2) = ids(&s, &manager).await;
    let d = s.ok(Some(&manager), PUBLISH, json!({"i": {"projectId": estate, "audience": "OWNERS", "title": "停水通知", "body": "周六9:00-12:00停水", "pinned": true}})).await;
    assert_eq!(d["publishAnnouncement"]["announcement"]["recipientCount"], 100, "every active owner of the estate");
    let notice = d["publishAnnouncement"]["announcement"]["id"].clone();
    s.ok(Some(&manager), PUBLISH, json!({"i": {"projectId": estate, "audience": "BUILDING", "buildingId": b1, "title": "1栋电梯维保", "body": "..."}})).await;
    let d = s.ok(Some(&manager), PUBLISH, json!({"i": {"projectId": estate, "audience": "BUILDING", "buildingId": b2, "title": "2栋消防检查", "body": "..."}})).await;
    assert_eq!(d["publishAnnouncement"]["announcement"]["recipientCount"], 0);
    s.ok(
        Some(&manager),
        PUBLISH,
        json!({"i": {"projectId": estate, "audience": "STAFF", "title": "员工例会", "body": "..."}}),
    )
    .await;
    s.ok(
        Some(&manager),
        PUBLISH,
        json!({"i": {"projectId": tower, "audience": "OWNERS", "title": "写字楼通知", "body": "..."}}),
    )
    .await;
    s.ok(Some(&manager), PUBLISH, json!({"i": {"projectId": estate, "audience": "OWNERS", "title": "即将过期", "body": "...", "expiresAt": (chrono::Utc::now() + chrono::TimeDelta::seconds(60)).to_rfc3339()}})).await;

    // an owner of 1栋 in 锦城花园: estate-wide and 1栋 notices, not 2栋, staff-only or the tower's
    let owner = s.sign_in("13800000001").await;
    let d = s.ok(Some(&owner), LIST, json!({})).await;
    assert_eq!(titles(&d), vec!["即将过期", "1栋电梯维保", "停水通知"]);
    assert_eq!(d["announcements"]["edges"][0]["node"]["readCount"], Value::Null, "read receipts are for staff");
    // pushed through the outbox into the inbox
    let inbox =
        s.ok(Some(&owner), "{ notifications(category: ANNOUNCEMENT) { edges { node { title } } } }", json!({})).await;
    assert_eq!(inbox["notifications"]["edges"].as_array().unwrap().len(), 3);
    // expired notices disappear for owners
    s.clock.advance(120);
    assert_eq!(titles(&s.ok(Some(&owner), LIST, json!({})).await), vec!["1栋电梯维保", "停水通知"]);
    let pinned =
        s.ok(Some(&owner), "{ announcements(pinnedOnly: true) { edges { node { title } } } }", json!({})).await;
    assert_eq!(titles(&pinned), vec!["停水通知"]);

    // read receipts
    let r = s
        .ok(
            Some(&owner),
            "mutation($a: ID!) { markAnnouncementRead(input: {announcementId: $a}) { announcement { read } } }",
            json!({"a": notice}),
        )
        .await;
    assert_eq!(r["markAnnouncementRead"]["announcement"]["read"], true);
    s.ok(
        Some(&owner),
        "mutation($a: ID!) { markAnnouncementRead(input: {announcementId: $a}) { announcement { read } } }",
        json!({"a": notice}),
    )
    .await;
    let staff_view = s
        .ok(
            Some(&manager),
            "query($p: ID) { announcements(projectId: $p) { edges { node { id readCount } } } }",
            json!({"p": estate}),
        )
        .await;
    let row = staff_view["announcements"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["id"] == notice)
        .unwrap()
        .clone();
    assert_eq!(row["node"]["readCount"], 1, "one reader, counted once");
    // an owner cannot mark (or learn about) a notice they cannot see
    let staff_only = staff_view["announcements"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].clone())
        .collect::<Vec<_>>();
    let hidden = s.ok(Some(&manager), "{ announcements { edges { node { id audience } } } }", json!({})).await;
    let staff_notice =
        hidden["announcements"]["edges"].as_array().unwrap().iter().find(|e| e["node"]["audience"] == "STAFF").unwrap()
            ["node"]["id"]
            .clone();
    assert!(staff_only.contains(&staff_notice));
    let r = s
        .gql(
            Some(&owner),
            "mutation($a: ID!) { markAnnouncementRead(input: {announcementId: $a}) { announcement { read } } }",
            json!({"a": staff_notice}),
        )
        .await;
    assert_eq!(code(&r), "NOT_FOUND");

    // staff of the estate see the staff-only notice; staff of the tower do not see the estate's
    let tech1 = s.sign_in("tech1").await;
    assert!(titles(&s.ok(Some(&tech1), LIST, json!({})).await).contains(&"员工例会".to_owned()));
    let tech2 = s.sign_in("tech2").await;
    assert_eq!(titles(&s.ok(Some(&tech2), LIST, json!({})).await), vec!["写字楼通知"]);
}

#[tokio::test]
async fn publishing_needs_permission_scope_and_valid_input() {
    let s = TestServer::seeded().await;
    let manager = s.sign_in("manager").await;
    let (estate, tower, b1, _) = ids(&s, &manager).await;
    let tech = s.sign_in("tech1").await;
    let r = s
        .gql(Some(&tech), PUBLISH, json!({"i": {"projectId": estate, "audience": "OWNERS", "title": "x", "body": "y"}}))
        .await;
    assert_eq!(code(&r), "FORBIDDEN");
    let cs = s.sign_in("cs1").await; // customer service of 锦城花园 only
    let r = s
        .gql(Some(&cs), PUBLISH, json!({"i": {"projectId": tower, "audience": "OWNERS", "title": "x", "body": "y"}}))
        .await;
    assert_eq!(code(&r), "FORBIDDEN");
    s.ok(
        Some(&cs),
        PUBLISH,
        json!({"i": {"projectId": estate, "audience": "OWNERS", "title": "客服通知", "body": "y"}}),
    )
    .await;
    for (input, f) in [
        (json!({"projectId": estate, "audience": "BUILDING", "title": "x", "body": "y"}), "buildingId"),
        (
            json!({"projectId": tower, "audience": "BUILDING", "buildingId": b1, "title": "x", "body": "y"}),
            "buildingId",
        ),
        (json!({"projectId": estate, "audience": "OWNERS", "title": " ", "body": "y"}), "title"),
        (
            json!({"projectId": estate, "audience": "OWNERS", "title": "x", "body": "y", "expiresAt": "2020-01-01T00:00:00Z"}),
            "expiresAt",
        ),
    ] {
        let r = s.gql(Some(&manager), PUBLISH, json!({"i": input})).await;
        assert_eq!((code(&r), field(&r)), ("VALIDATION", f), "{r}");
    }
    assert_eq!(s.scalar("SELECT count(*) FROM announcements").await, 1, "nothing half-published");
    assert_eq!(s.scalar("SELECT count(*) FROM notifications").await, 100);
}

#[tokio::test]
async fn publishing_twice_with_one_client_mutation_id_publishes_once() {
    let s = TestServer::seeded().await;
    let manager = s.sign_in("manager").await;
    let (estate, _, _, _) = ids(&s, &manager).await;
    let input =
        json!({"projectId": estate, "audience": "OWNERS", "title": "重试", "body": "...", "clientMutationId": "pub-1"});
    let (a, b) = tokio::join!(
        s.gql(Some(&manager), PUBLISH, json!({"i": input.clone()})),
        s.gql(Some(&manager), PUBLISH, json!({"i": input.clone()}))
    );
    for r in [&a, &b] {
        assert!(r.get("errors").is_none(), "{r}");
    }
    assert_eq!(
        a["data"]["publishAnnouncement"], b["data"]["publishAnnouncement"],
        "both answers show one announcement"
    );
    assert_eq!(s.scalar("SELECT count(*) FROM announcements").await, 1);
    assert_eq!(s.scalar("SELECT count(*) FROM notifications").await, 100, "queued once");
    let mut other = input.clone();
    other["title"] = json!("另一条");
    let r = s.gql(Some(&manager), PUBLISH, json!({"i": other})).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "clientMutationId"));
}
