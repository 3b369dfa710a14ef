//! Courses and training sessions: materials uploaded on their own route (PDF or video by
//! their first bytes, each within its limit, private behind signed URLs), sessions that
//! tell their attendees, attendance marked by the trainer once the session starts, the
//! transcript, and who may see what.

use chrono::TimeDelta;
use serde_json::{Value, json};
use wuye_tests::{TestServer, code, field};

async fn user_id(s: &TestServer, token: &str) -> String {
    s.ok(Some(token), "{ me { user { id } } }", json!({})).await["me"]["user"]["id"].as_str().unwrap().to_owned()
}

async fn upload(s: &TestServer, token: Option<&str>, course: &str, name: &str, body: Vec<u8>) -> (u16, Value) {
    let url = format!("{}/training/courses/{course}/materials?name={name}", s.url);
    let mut req = reqwest::Client::new().post(url).body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn courses_sessions_and_private_materials() {
    let s = TestServer::seeded_with(|c| c.training.max_pdf_bytes = 4096).await;
    let manager = s.sign_in("manager").await;
    let tech1 = s.sign_in("tech1").await;
    let tech2 = s.sign_in("tech2").await;
    let (m, t1, t2) = (user_id(&s, &manager).await, user_id(&s, &tech1).await, user_id(&s, &tech2).await);
    let estate: String =
        sqlx::query_scalar("SELECT id::text FROM projects WHERE code = 'JCHY'").fetch_one(&s.db).await.unwrap();
    let save = "mutation($i: SaveCourseInput!) { saveCourse(input: $i) { course { id title materials { id } } } }";
    let course = json!({"projectId": estate, "title": "电梯应急救援", "content": "困人救援流程与盘车操作", "audience": "维修人员"});
    assert_eq!(code(&s.gql(Some(&tech1), save, json!({"i": course})).await), "FORBIDDEN");
    let id = s.ok(Some(&manager), save, json!({"i": course})).await["saveCourse"]["course"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // materials: a PDF; not a web page; not too big; not by a technician; not without a token
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend(vec![b' '; 100]);
    let (status, m1) = upload(&s, Some(&manager), &id, "操作手册", pdf.clone()).await;
    assert_eq!((status, m1["kind"].as_str()), (201, Some("pdf")), "{m1}");
    let (status, r) = upload(&s, Some(&manager), &id, "网页", b"<html></html>".to_vec()).await;
    assert_eq!((status, r["code"].as_str(), r["field"].as_str()), (400, Some("VALIDATION"), Some("file")), "{r}");
    let mut big = b"%PDF-1.7\n".to_vec();
    big.extend(vec![b' '; 5000]);
    let (status, r) = upload(&s, Some(&manager), &id, "大文件", big).await;
    assert_eq!((status, r["field"].as_str()), (400, Some("file")), "each kind has its own limit: {r}");
    assert_eq!(upload(&s, Some(&tech1), &id, "x", pdf.clone()).await.0, 403);
    assert_eq!(upload(&s, None, &id, "x", pdf.clone()).await.0, 401);
    let mut video = b"\0\0\0\x18ftypmp42".to_vec();
    video.extend(vec![0u8; 8000]);
    let (status, v) = upload(&s, Some(&manager), &id, "演示视频", video).await;
    assert_eq!((status, v["kind"].as_str()), (201, Some("video")), "the video limit is the video's: {v}");

    // nobody outside the course sees it until they take part
    let get = "query($i: ID!) { course(id: $i) { title materials { kind name url } } }";
    assert_eq!(code(&s.gql(Some(&tech1), get, json!({"i": id})).await), "NOT_FOUND");
    let now = s.clock_now();
    let sched = "mutation($i: ScheduleTrainingSessionInput!) { scheduleTrainingSession(input: $i) { session { id attendees { userId attended } } } }";
    let session = json!({"courseId": id, "startsAt": (now + TimeDelta::hours(1)).to_rfc3339(),
        "endsAt": (now + TimeDelta::hours(3)).to_rfc3339(), "place": "物业中心会议室", "trainerId": m, "attendeeIds": [t1]});
    let bad = s
        .gql(
            Some(&manager),
            sched,
            json!({"i": {"courseId": id, "startsAt": now.to_rfc3339(), "endsAt": now.to_rfc3339(),
            "place": "会议室", "trainerId": m, "attendeeIds": [t1]}}),
        )
        .await;
    assert_eq!((code(&bad), field(&bad)), ("VALIDATION", "endsAt"));
    let sid = s.ok(Some(&manager), sched, json!({"i": session})).await["scheduleTrainingSession"]["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let told = "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id WHERE u.username = 'tech1' AND n.category = 'training'";
    assert_eq!(s.scalar(told).await, 1, "the attendee is told");
    let c = s.ok(Some(&tech1), get, json!({"i": id})).await["course"].clone();
    assert_eq!(c["materials"].as_array().unwrap().len(), 2);
    let url = c["materials"][0]["url"].as_str().unwrap();
    assert!(url.starts_with("/private/"), "{url}");
    let file = reqwest::get(format!("{}{url}", s.url)).await.unwrap();
    assert_eq!(file.status().as_u16(), 200);
    assert_eq!(file.headers()["content-type"], "application/pdf");
    assert_eq!(code(&s.gql(Some(&tech2), get, json!({"i": id})).await), "NOT_FOUND", "not tech2's course");
    let one = "query($i: ID!) { trainingSession(id: $i) { id place } }";
    assert_eq!(code(&s.gql(Some(&tech2), one, json!({"i": sid})).await), "NOT_FOUND");
    let mine = "query($f: DateTime!, $t: DateTime!) { trainingSessions(mine: true, from: $f, to: $t) { id } }";
    let range = json!({"f": now.to_rfc3339(), "t": (now + TimeDelta::days(1)).to_rfc3339()});
    assert_eq!(s.ok(Some(&tech1), mine, range.clone()).await["trainingSessions"][0]["id"], sid.as_str());

    // attendance: once the session has started, by its trainer, for its attendees only
    let mark = "mutation($i: MarkSessionAttendanceInput!) { markSessionAttendance(input: $i) { session { attendees { userId attended } } } }";
    let early = s.gql(Some(&manager), mark, json!({"i": {"sessionId": sid, "attendedIds": [t1]}})).await;
    assert_eq!(code(&early), "CONFLICT", "{early}");
    s.advance(2 * 3600);
    let manager = s.sign_in("manager").await;
    let r = s.gql(Some(&manager), mark, json!({"i": {"sessionId": sid, "attendedIds": [t2]}})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "attendedIds"));
    let tech1 = s.sign_in("tech1").await;
    assert_eq!(
        code(&s.gql(Some(&tech1), mark, json!({"i": {"sessionId": sid, "attendedIds": [t1]}})).await),
        "FORBIDDEN",
        "nobody marks themself present"
    );
    let r = s.ok(Some(&manager), mark, json!({"i": {"sessionId": sid, "attendedIds": [t1]}})).await;
    assert_eq!(r["markSessionAttendance"]["session"]["attendees"][0]["attended"], true);
    let t = "query($u: ID!) { transcript(userId: $u) { sessions { title attended } } }";
    let tr = s.ok(Some(&tech1), t, json!({"u": t1})).await;
    assert_eq!(tr["transcript"]["sessions"][0], json!({"title": "电梯应急救援", "attended": true}));
}
