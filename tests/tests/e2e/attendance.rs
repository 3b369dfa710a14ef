//! Attendance through the API: a shift around the test's own clock, phone punches against
//! the project's geofence (edges, accuracy, a punch queued offline, retries and double taps),
//! who is on duty and where alarms go, results settling, corrections and leave changing
//! them through approvals, the monthly report, terminals signing their requests (forged,
//! stale and replayed ones refused, on any replica), and who may read what.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use wuye_tests::{TestServer, code, field};

/// 锦城花园's geofence: centre and radius (the seed's).
const LAT: f64 = 30.5728;
const LNG: f64 = 104.0668;
/// metres per degree of latitude on the haversine's sphere
const M_PER_DEG: f64 = 111_194.93;

const PUNCH: &str = "mutation($i: PunchInput!) { punch(input: $i) { punch { id at receivedAt source distanceM } day { day status firstPunch lateMinutes } } }";
const DAYS: &str = "query($p: ID, $u: ID, $f: NaiveDate!, $t: NaiveDate!) { attendanceDays(projectId: $p, userId: $u, from: $f, to: $t) { edges { node { userId day status lateMinutes earlyMinutes missingPunches overtimeMinutes leaveMinutes workedMinutes settled firstPunch lastPunch } } } }";
const ON_DUTY: &str = "query($p: ID!) { onDuty(projectId: $p) { userId name since shift { name } } }";
const DECIDE: &str = "mutation($i: DecideApprovalInput!) { decideApproval(input: $i) { approval { status } } }";

fn shanghai(t: DateTime<Utc>) -> chrono::NaiveDateTime {
    t.with_timezone(&chrono_tz::Asia::Shanghai).naive_local()
}

async fn user_id(s: &TestServer, token: &str) -> String {
    s.ok(Some(token), "{ me { user { id } } }", json!({})).await["me"]["user"]["id"].as_str().unwrap().to_owned()
}

async fn estate(s: &TestServer) -> String {
    sqlx::query_scalar("SELECT id::text FROM projects WHERE code = 'JCHY'").fetch_one(&s.db).await.unwrap()
}

/// A rostered shift: eight hours that started an hour ago (to the minute), every day.
struct Rostered {
    project: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    /// the business day the current shift belongs to
    day: NaiveDate,
}

async fn roster(s: &TestServer, admin: &str, users: &[&str]) -> Rostered {
    let project = estate(s).await;
    let now = s.clock_now();
    let start = now - TimeDelta::hours(1);
    let start = start - TimeDelta::seconds(start.second() as i64) - TimeDelta::nanoseconds(start.nanosecond() as i64);
    let end = start + TimeDelta::hours(8);
    let hhmm = |t: DateTime<Utc>| shanghai(t).format("%H:%M").to_string();
    let shift = s
        .ok(
            Some(admin),
            "mutation($i: SaveShiftInput!) { saveShift(input: $i) { shift { id crossesMidnight } } }",
            json!({"i": {"projectId": project, "name": "测试班", "startsAt": hhmm(start), "endsAt": hhmm(end),
                   "lateGraceMinutes": 5}}),
        )
        .await["saveShift"]["shift"]["id"]
        .clone();
    let pattern = s
        .ok(
            Some(admin),
            "mutation($i: SaveRotaPatternInput!) { saveRotaPattern(input: $i) { pattern { id slots } } }",
            json!({"i": {"projectId": project, "name": "全勤", "kind": "WEEK", "slots": vec![shift.clone(); 7],
                   "observeHolidays": false}}),
        )
        .await["saveRotaPattern"]["pattern"]["id"]
        .clone();
    let mut ids = Vec::new();
    for u in users {
        let id: String = sqlx::query_scalar("SELECT id::text FROM users WHERE username = $1")
            .bind(u)
            .fetch_one(&s.db)
            .await
            .unwrap();
        ids.push(id);
    }
    let day = shanghai(start).date();
    s.ok(
        Some(admin),
        "mutation($i: AssignRotaInput!) { assignRota(input: $i) { pattern { id } } }",
        json!({"i": {"patternId": pattern, "userIds": ids, "from": (day - TimeDelta::days(1)).to_string()}}),
    )
    .await;
    Rostered { project, start, end, day }
}

fn fix(north_m: f64) -> Value {
    json!({"lat": LAT + north_m / M_PER_DEG, "lng": LNG, "accuracyM": 15.0})
}

fn with(mut v: Value, extra: Value) -> Value {
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

async fn day_of(s: &TestServer, token: &str, project: &str, user: &str, day: NaiveDate) -> Value {
    let r = s.ok(Some(token), DAYS, json!({"p": project, "u": user, "f": day.to_string(), "t": day.to_string()})).await;
    r["attendanceDays"]["edges"][0]["node"].clone()
}

#[tokio::test]
async fn phone_punches_are_fenced_kept_once_and_put_people_on_duty() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let tech1 = s.sign_in("tech1").await;
    let t1 = user_id(&s, &tech1).await;
    let r = roster(&s, &admin, &["tech1"]).await;

    // the geofence's edge: 300 m
    let out = s.gql(Some(&tech1), PUNCH, json!({"i": fix(310.0)})).await;
    assert_eq!((code(&out), field(&out)), ("VALIDATION", "lat"), "{out}");
    let details = &out["errors"][0]["extensions"]["details"];
    assert_eq!(details["radiusM"], 300, "{out}");
    assert!((details["distanceM"].as_f64().unwrap() - 310.0).abs() <= 1.0, "{out}");
    let vague = s.gql(Some(&tech1), PUNCH, json!({"i": with(fix(0.0), json!({"accuracyM": 150.0}))})).await;
    assert_eq!((code(&vague), field(&vague)), ("VALIDATION", "accuracyM"), "{vague}");
    let nowhere = s.gql(Some(&tech1), PUNCH, json!({"i": {"lat": 91.0, "lng": LNG, "accuracyM": 5.0}})).await;
    assert_eq!((code(&nowhere), field(&nowhere)), ("VALIDATION", "lat"));
    assert_eq!(s.scalar("SELECT count(*) FROM punches").await, 0, "nothing refused is written");

    // queued offline ten minutes before the shift, sent now, inside the fence by 10 m
    let at = r.start - TimeDelta::minutes(10);
    let queued = with(fix(290.0), json!({"at": at.to_rfc3339(), "clientMutationId": "punch-1"}));
    let first = s.ok(Some(&tech1), PUNCH, json!({"i": queued})).await["punch"].clone();
    assert_eq!(first["punch"]["source"], "PHONE");
    assert_eq!(
        first["punch"]["at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap(),
        at,
        "the phone's time is kept"
    );
    assert!(first["punch"]["receivedAt"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap() > at);
    assert_eq!(first["day"]["status"], "IN_PROGRESS", "{first}");
    assert_eq!(first["day"]["lateMinutes"], 0);
    assert_eq!(first["day"]["day"], r.day.to_string());
    // the same send again (weak signal), and a second tap twenty seconds later: one punch
    let again = s.ok(Some(&tech1), PUNCH, json!({"i": queued})).await["punch"]["punch"]["id"].clone();
    assert_eq!(again, first["punch"]["id"]);
    let tap = with(fix(0.0), json!({"at": (at + TimeDelta::seconds(20)).to_rfc3339(), "clientMutationId": "punch-2"}));
    let tapped = s.ok(Some(&tech1), PUNCH, json!({"i": tap})).await["punch"]["punch"]["id"].clone();
    assert_eq!(tapped, first["punch"]["id"], "a double tap is the same punch");
    assert_eq!(s.scalar("SELECT count(*) FROM punches").await, 1);
    // too old for the offline queue, or ahead of the clock
    let now = s.clock_now();
    for t in [now - TimeDelta::hours(25), now + TimeDelta::minutes(10)] {
        let r2 = s.gql(Some(&tech1), PUNCH, json!({"i": with(fix(0.0), json!({"at": t.to_rfc3339()}))})).await;
        assert_eq!((code(&r2), field(&r2)), ("VALIDATION", "at"), "{r2}");
    }

    // on shift and clocked in: on duty
    let manager = s.sign_in("manager").await;
    let duty = s.ok(Some(&manager), ON_DUTY, json!({"p": r.project})).await["onDuty"].clone();
    assert_eq!(duty.as_array().unwrap().len(), 1, "{duty}");
    assert_eq!(duty[0]["userId"], t1.as_str());
    assert_eq!(duty[0]["shift"]["name"], "测试班");
    // an owner of the same server cannot ask
    let owner = s.sign_in("13800000001").await;
    assert_eq!(code(&s.gql(Some(&owner), ON_DUTY, json!({"p": r.project})).await), "FORBIDDEN");

    // clocked out an hour into the shift: off duty, and leaving seven hours early is absence
    s.ok(Some(&tech1), PUNCH, json!({"i": with(fix(0.0), json!({"direction": "OUT"}))})).await;
    assert_eq!(s.ok(Some(&manager), ON_DUTY, json!({"p": r.project})).await["onDuty"], json!([]));
    s.advance((r.end - s.clock_now()).num_seconds() + 6 * 3600 + 60);
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    let manager = s.sign_in("manager").await;
    let d = day_of(&s, &manager, &r.project, &t1, r.day).await;
    assert_eq!(d["status"], "ABSENT", "{d}");
    assert_eq!(d["settled"], true);
    assert!(d["earlyMinutes"].as_i64().unwrap() >= 419, "{d}");
    // the phone sends its queued punch once more a day later: still the first answer
    s.advance(11 * 3600);
    let tech1 = s.sign_in("tech1").await;
    let late_retry = s.ok(Some(&tech1), PUNCH, json!({"i": queued})).await["punch"]["punch"]["id"].clone();
    assert_eq!(late_retry, first["punch"]["id"]);
}

#[tokio::test]
async fn corrections_and_leave_change_results_through_approvals() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let t1 = user_id(&s, &s.sign_in("tech1").await).await;
    let r = roster(&s, &admin, &["tech1"]).await;
    // nobody punched: once the window closes the day is absence, two punches missing
    s.advance((r.end - s.clock_now()).num_seconds() + 6 * 3600 + 60);
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    let manager = s.sign_in("manager").await;
    let tech1 = s.sign_in("tech1").await;
    let d = day_of(&s, &manager, &r.project, &t1, r.day).await;
    assert_eq!((d["status"].as_str(), d["missingPunches"].as_i64()), (Some("ABSENT"), Some(2)), "{d}");

    // 补签: the arrival and the departure (forty minutes over)
    let ask = "mutation($i: AskAttendanceCorrectionInput!) { askAttendanceCorrection(input: $i) { request { id status kind } } }";
    let mut approvals = Vec::new();
    for (at, dir) in [(r.start - TimeDelta::minutes(5), "IN"), (r.end + TimeDelta::minutes(40), "OUT")] {
        let req = s
            .ok(
                Some(&tech1),
                ask,
                json!({"i": {"at": at.to_rfc3339(), "direction": dir, "reason": "手机没电忘记打卡"}}),
            )
            .await["askAttendanceCorrection"]["request"]
            .clone();
        assert_eq!(req["status"], "PENDING");
        let a: String = sqlx::query_scalar("SELECT id::text FROM approvals WHERE subject_id = $1::uuid")
            .bind(req["id"].as_str().unwrap())
            .fetch_one(&s.db)
            .await
            .unwrap();
        approvals.push(a);
    }
    let far = s.clock_now() - TimeDelta::days(40);
    let r2 =
        s.gql(Some(&tech1), ask, json!({"i": {"at": far.to_rfc3339(), "direction": "IN", "reason": "太久以前"}})).await;
    assert_eq!((code(&r2), field(&r2)), ("VALIDATION", "at"));
    // nobody approves their own; the technician cannot approve at all
    let own = s.gql(Some(&tech1), DECIDE, json!({"i": {"id": approvals[0], "approve": true}})).await;
    assert!(matches!(code(&own), "FORBIDDEN" | "NOT_FOUND"), "{own}");
    for a in &approvals {
        let ok = s.ok(Some(&manager), DECIDE, json!({"i": {"id": a, "approve": true}})).await;
        assert_eq!(ok["decideApproval"]["approval"]["status"], "APPROVED");
    }
    let d = day_of(&s, &manager, &r.project, &t1, r.day).await;
    assert_eq!(d["status"], "NORMAL", "{d}");
    assert_eq!((d["lateMinutes"].as_i64(), d["overtimeMinutes"].as_i64()), (Some(0), Some(40)), "{d}");
    let told = "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id WHERE u.username = 'tech1' AND n.category = 'attendance'";
    assert_eq!(s.scalar(told).await, 2, "the employee hears of each decision");
    let audited = "SELECT count(*) FROM audit_log WHERE action = 'approval.approve'";
    assert_eq!(s.scalar(audited).await, 2);

    // 请假 for the next shift: rejected with a note, asked again, approved
    let leave = "mutation($i: AskLeaveInput!) { askLeave(input: $i) { request { id status leaveType } } }";
    let next = (r.start + TimeDelta::days(1), r.end + TimeDelta::days(1));
    let span =
        json!({"leaveType": "SICK", "from": next.0.to_rfc3339(), "to": next.1.to_rfc3339(), "reason": "发烧就医"});
    let bad = s.gql(Some(&tech1), leave, json!({"i": with(span.clone(), json!({"to": next.0.to_rfc3339()}))})).await;
    assert_eq!((code(&bad), field(&bad)), ("VALIDATION", "to"));
    for approve in [false, true] {
        let req = s.ok(Some(&tech1), leave, json!({"i": span})).await["askLeave"]["request"].clone();
        let a: String = sqlx::query_scalar("SELECT id::text FROM approvals WHERE subject_id = $1::uuid")
            .bind(req["id"].as_str().unwrap())
            .fetch_one(&s.db)
            .await
            .unwrap();
        let i = if approve {
            json!({"id": a, "approve": true})
        } else {
            json!({"id": a, "approve": false, "note": "请附病历"})
        };
        s.ok(Some(&manager), DECIDE, json!({"i": i})).await;
        let status = s
            .ok(Some(&tech1), "query($i: ID!) { attendanceRequest(id: $i) { status } }", json!({"i": req["id"]}))
            .await["attendanceRequest"]["status"]
            .clone();
        assert_eq!(status, if approve { "APPROVED" } else { "REJECTED" });
    }
    assert_eq!(s.scalar(told).await, 4);
    s.advance(24 * 3600);
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    let manager = s.sign_in("manager").await;
    let d = day_of(&s, &manager, &r.project, &t1, r.day + TimeDelta::days(1)).await;
    assert_eq!(d["status"], "LEAVE", "{d}");
    assert_eq!(d["leaveMinutes"], 480);

    // the month: per employee, with a CSV; a technician reads only their own days
    let month = r.day.format("%Y-%m").to_string();
    let q = "query($m: String!, $p: ID) { attendanceReport(month: $m, projectId: $p) { rows { userId name scheduledDays attendedDays absentDays overtimeMinutes leaveMinutes } csv } }";
    let report = s.ok(Some(&manager), q, json!({"m": month, "p": r.project})).await["attendanceReport"].clone();
    let row = report["rows"].as_array().unwrap().iter().find(|x| x["userId"] == t1.as_str()).unwrap().clone();
    // the rota began the day before, when nobody came: that day stays absence (if in this month)
    let before = i64::from((r.day - TimeDelta::days(1)).month() == r.day.month());
    assert_eq!((row["absentDays"].as_i64(), row["overtimeMinutes"].as_i64()), (Some(before), Some(40)), "{row}");
    assert_eq!(row["leaveMinutes"], 480);
    assert!(report["csv"].as_str().unwrap().starts_with("\u{feff}工号,姓名"));
    assert!(report["csv"].as_str().unwrap().contains("李师傅"));
    // dates no business means are refused by name, never a database error
    let far = s.gql(Some(&manager), "{ attendanceCalendar(year: -6604) { day } }", json!({})).await;
    assert_eq!((code(&far), field(&far)), ("VALIDATION", "year"), "{far}");
    let days = s.gql(Some(&manager), DAYS, json!({"p": r.project, "f": "0001-01-01", "t": "0001-01-02"})).await;
    assert_eq!((code(&days), field(&days)), ("VALIDATION", "from"), "{days}");
    let bad_month = s.gql(Some(&manager), q, json!({"m": "2026-13"})).await;
    assert_eq!((code(&bad_month), field(&bad_month)), ("VALIDATION", "month"));
    let tech1 = s.sign_in("tech1").await;
    assert_eq!(code(&s.gql(Some(&tech1), q, json!({"m": month})).await), "FORBIDDEN");
    let others =
        s.gql(Some(&tech1), DAYS, json!({"p": r.project, "f": r.day.to_string(), "t": r.day.to_string()})).await;
    assert_eq!(code(&others), "FORBIDDEN", "a technician does not read the project's days");
    let mine = s
        .ok(
            Some(&tech1),
            "query($f: NaiveDate!, $t: NaiveDate!) { myAttendance(from: $f, to: $t) { day status } }",
            json!({"f": r.day.to_string(), "t": r.day.to_string()}),
        )
        .await;
    assert_eq!(mine["myAttendance"][0]["status"], "NORMAL");
    // cs1 works in the estate but keeps no attendance: not even the project's report
    let cs = s.sign_in("cs1").await;
    assert_eq!(code(&s.gql(Some(&cs), q, json!({"m": month, "p": r.project})).await), "FORBIDDEN");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sign(key: &str, terminal: &str, ts: i64, nonce: &str, body: &str) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
    m.update(format!("{terminal}\n{ts}\n{nonce}\n{body}").as_bytes());
    hex(&m.finalize().into_bytes())
}

async fn send(s: &TestServer, terminal: &str, key: &str, ts: i64, nonce: &str, body: &str) -> (u16, Value) {
    let url = format!("{}/attendance/terminals/{terminal}/punches", s.url);
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-wuye-timestamp", ts.to_string())
        .header("x-wuye-nonce", nonce)
        .header("x-wuye-signature", sign(key, terminal, ts, nonce, body))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn terminals_sign_their_punches_and_replays_are_refused_on_every_replica() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let t1 = user_id(&s, &s.sign_in("tech1").await).await;
    let t2 = user_id(&s, &s.sign_in("tech2").await).await;
    let save = "mutation($i: SaveEmployeeInput!) { saveEmployee(input: $i) { employee { employeeNo } } }";
    s.ok(Some(&admin), save, json!({"i": {"userId": t1, "employeeNo": "JC001"}})).await;
    s.ok(Some(&admin), save, json!({"i": {"userId": t2, "employeeNo": "TF001"}})).await;
    let taken = s.gql(Some(&admin), save, json!({"i": {"userId": t2, "employeeNo": "JC001"}})).await;
    assert_eq!((code(&taken), field(&taken)), ("CONFLICT", "employeeNo"));
    let project = estate(&s).await;
    let add = "mutation($i: AddAttendanceTerminalInput!) { addAttendanceTerminal(input: $i) { key terminal { id enabled } } }";
    let t = s
        .ok(
            Some(&admin),
            add,
            json!({"i": {"projectId": project, "name": "南门人脸机", "kind": "FACE", "clientMutationId": "term-1"}}),
        )
        .await["addAttendanceTerminal"]
        .clone();
    let (id, key) = (t["terminal"]["id"].as_str().unwrap().to_owned(), t["key"].as_str().unwrap().to_owned());
    let retried = s
        .ok(
            Some(&admin),
            add,
            json!({"i": {"projectId": project, "name": "南门人脸机", "kind": "FACE", "clientMutationId": "term-1"}}),
        )
        .await;
    assert_eq!(retried["addAttendanceTerminal"]["key"], Value::Null, "the key is shown once");
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT key_enc FROM attendance_terminals").fetch_one(&s.db).await.unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains(&key), "the key is encrypted at rest");

    let now = s.clock_now();
    let at = (now - TimeDelta::minutes(3)).to_rfc3339();
    let body = json!({"punches": [
        {"recordId": "r-1", "employeeNo": "JC001", "at": at},
        {"recordId": "r-2", "employeeNo": "NOBODY", "at": at},
        {"recordId": "r-3", "employeeNo": "TF001", "at": at},
        {"recordId": "r-4", "employeeNo": "JC001", "at": (now - TimeDelta::hours(80)).to_rfc3339()},
    ]})
    .to_string();
    let ts = now.timestamp();
    let (status, receipt) = send(&s, &id, &key, ts, "nonce-0001", &body).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["accepted"], 1);
    let codes: Vec<&str> =
        receipt["rejected"].as_array().unwrap().iter().map(|x| x["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["UNKNOWN_EMPLOYEE", "NOT_OF_PROJECT", "TOO_OLD"], "{receipt}");
    // the same request again, here or on another replica: refused
    let (status, _) = send(&s, &id, &key, ts, "nonce-0001", &body).await;
    assert_eq!(status, 409);
    let other = s.replica().await;
    let (status, _) = send(&other, &id, &key, ts, "nonce-0001", &body).await;
    assert_eq!(status, 409, "the nonce is shared by every replica");
    // resent with a fresh nonce (the terminal never heard back): applied once
    let (status, receipt) = send(&other, &id, &key, ts, "nonce-0002", &body).await;
    assert_eq!((status, receipt["accepted"].as_i64(), receipt["duplicates"].as_i64()), (200, Some(0), Some(1)));
    assert_eq!(s.scalar("SELECT count(*) FROM punches WHERE source = 'terminal'").await, 1);
    // forged, tampered, stale
    let (status, _) = send(&s, &id, "not-the-key", ts, "nonce-0003", &body).await;
    assert_eq!(status, 401);
    let url = format!("{}/attendance/terminals/{id}/punches", s.url);
    let tampered = reqwest::Client::new()
        .post(url)
        .header("x-wuye-timestamp", ts.to_string())
        .header("x-wuye-nonce", "nonce-0004")
        .header("x-wuye-signature", sign(&key, &id, ts, "nonce-0004", &body))
        .body(body.replace("JC001", "TF001"))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status().as_u16(), 401);
    let (status, _) = send(&s, &id, &key, ts - 600, "nonce-0005", &body).await;
    assert_eq!(status, 400, "a timestamp outside five minutes");
    let (status, answer) = send(&s, &id, &key, ts, "nonce-0006", "{\"punches\": 1}").await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("VALIDATION")));
    // a rotated key ends the old one; a disabled terminal is refused
    let upd = "mutation($i: UpdateAttendanceTerminalInput!) { updateAttendanceTerminal(input: $i) { key terminal { enabled } } }";
    let new_key = s.ok(Some(&admin), upd, json!({"i": {"terminalId": id, "enabled": true, "rotateKey": true}})).await
        ["updateAttendanceTerminal"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(send(&s, &id, &key, ts, "nonce-0007", &body).await.0, 401);
    assert_eq!(send(&s, &id, &new_key, ts, "nonce-0008", &body).await.0, 200);
    s.ok(Some(&admin), upd, json!({"i": {"terminalId": id, "enabled": false}})).await;
    assert_eq!(send(&s, &id, &new_key, ts, "nonce-0009", &body).await.0, 401);
    // the estate's terminals are not the tower technician's business
    let tech2 = s.sign_in("tech2").await;
    let list = "query($p: ID!) { attendanceTerminals(projectId: $p) { id } }";
    assert_eq!(code(&s.gql(Some(&tech2), list, json!({"p": project})).await), "FORBIDDEN");
}

/// Who was told of a device's alarms.
async fn told(s: &TestServer, dev: &str) -> Vec<String> {
    let q = "SELECT u.username FROM notifications n JOIN users u ON u.id = n.user_id
             WHERE n.category = 'alarm' AND n.data->>'deviceId' = (SELECT id::text FROM devices WHERE code = $1)
             ORDER BY u.username";
    sqlx::query_scalar::<_, String>(q).bind(dev).fetch_all(&s.db).await.unwrap()
}

#[tokio::test]
async fn alarms_go_to_whoever_is_on_duty_and_never_to_no_one() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let tech1 = s.sign_in("tech1").await;
    let r = roster(&s, &admin, &["tech1"]).await;
    // nobody clocked in: the alarm:duty holder and the manager
    s.mqtt_publish("JCWY/JC-PUMP-01/event", br#"{"code":"E-OVERHEAT"}"#).await;
    assert!(s.wait_until(|| async { told(&s, "JC-PUMP-01").await.len() == 2 }).await);
    assert_eq!(told(&s, "JC-PUMP-01").await, ["manager", "tech1"]);
    // tech1 clocks in: the next alarm is theirs alone
    s.ok(Some(&tech1), PUNCH, json!({"i": fix(0.0)})).await;
    let manager = s.sign_in("manager").await;
    assert_eq!(s.ok(Some(&manager), ON_DUTY, json!({"p": r.project})).await["onDuty"].as_array().unwrap().len(), 1);
    s.mqtt_publish("JCWY/JC-PUMP-02/event", br#"{"code":"E-OVERHEAT"}"#).await;
    assert!(s.wait_until(|| async { !told(&s, "JC-PUMP-02").await.is_empty() }).await);
    assert_eq!(told(&s, "JC-PUMP-02").await, ["tech1"]);
}
