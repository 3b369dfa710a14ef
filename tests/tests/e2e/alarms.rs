//! Alarms over the real Mosquitto: fault → alarm → outbox → escalation; thresholds with a
//! duration; auto-resolve; offline after missed heartbeats (and not after a restart);
//! reminders; rules and their permissions; elevator state, trends and meter readings.

use serde_json::json;
use wuye_tests::{TestServer, code, field, ws};

use crate::iot::{next_of, until_state_changes_flow};

async fn project_and_device(s: &TestServer, token: &str, device: &str) -> (String, String) {
    let d =
        s.ok(Some(token), "query($c: String!) { deviceByCode(code: $c) { id projectId } }", json!({"c": device})).await;
    (d["deviceByCode"]["projectId"].as_str().unwrap().to_owned(), d["deviceByCode"]["id"].as_str().unwrap().to_owned())
}

const ALARMS: &str = "query($p: ID, $d: ID) { alarms(projectId: $p, deviceId: $d) { edges { node { id title severity kind state resolution escalatedAt reminders } } } }";

/// The newest alarm of an `ALARMS` answer.
fn newest(list: &serde_json::Value) -> serde_json::Value {
    list["alarms"]["edges"][0]["node"].clone()
}

#[tokio::test]
async fn faults_raise_alarms_for_the_on_duty_staff_and_escalate_to_the_manager() {
    let s = TestServer::seeded_with(|c| c.iot.jobs = true).await;
    let manager = s.sign_in("manager").await;
    let (project, elevator) = project_and_device(&s, &manager, "JC-ELV-11").await;
    let (_, pump) = project_and_device(&s, &manager, "JC-PUMP-01").await;
    let mut socket = ws::connect(&s.ws_url(), json!({"accessToken": manager})).await.unwrap();
    ws::subscribe(
        &mut socket,
        "a",
        &format!("subscription {{ alarmRaised(projectId: \"{project}\") {{ id deviceId severity title }} }}"),
    )
    .await;
    // subscriptions of one connection start in order: once the later one delivers, so does "a"
    ws::subscribe(
        &mut socket,
        "d",
        &format!("subscription {{ deviceStateChanged(projectId: \"{project}\") {{ deviceId status }} }}"),
    )
    .await;
    until_state_changes_flow(&s, &manager, &mut socket, "JC-FIRE-01", false).await;

    // 困人: critical, and the manager's SMS goes out at once
    s.mqtt_publish("JCWY/JC-ELV-11/event", r#"{"code":"TRAPPED","message":"轿厢困人"}"#.as_bytes()).await;
    let msg = next_of(&mut socket, "a").await.expect("alarm event");
    let raised = &msg["payload"]["data"]["alarmRaised"];
    assert_eq!(raised["deviceId"], elevator.as_str());
    assert_eq!(raised["severity"], "CRITICAL", "{msg}");
    assert!(raised["title"].as_str().unwrap().contains("电梯困人"));
    // the same fault again is the same alarm
    s.mqtt_publish("JCWY/JC-ELV-11/event", br#"{"code":"TRAPPED"}"#).await;
    assert_eq!(s.wait_for("SELECT count(*) FROM alarms", 1).await, 1);
    let on_duty = "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id
                   WHERE n.category = 'alarm' AND n.priority = 'critical' AND u.username = 'tech1' AND 'push' = ANY(n.channels)";
    assert_eq!(s.wait_for(on_duty, 1).await, 1, "tech1 is on duty for 锦城花园");
    let other = "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.category = 'alarm' AND u.username IN ('tech2', 'admin')";
    assert_eq!(s.scalar(other).await, 0, "tech2 serves the tower; admins are not on duty");
    let sms = "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id
               WHERE n.category = 'alarm' AND u.username = 'manager' AND 'sms' = ANY(n.channels)";
    assert_eq!(s.scalar(sms).await, 1, "trapped passengers escalate at once");
    assert_eq!(
        s.scalar("SELECT count(*) FROM repair_requests WHERE source = 'alarm' AND reason LIKE '%电梯困人%'").await,
        1,
        "the alarm is a repair request on the device"
    );
    let live = s
        .ok(
            Some(&manager),
            "query($d: ID!) { elevatorState(deviceId: $d) { runningState trapped status } }",
            json!({"d": elevator}),
        )
        .await;
    assert_eq!(live["elevatorState"], json!({"runningState": "FAULT", "trapped": true, "status": "FAULT"}));

    // a pump fault: major, escalated only if nobody acknowledges it within 15 minutes
    s.mqtt_publish("JCWY/JC-PUMP-01/event", r#"{"code":"E-OVERHEAT","message":"电机过热"}"#.as_bytes()).await;
    let _ = next_of(&mut socket, "a").await.expect("second alarm");
    let list = s.ok(Some(&manager), ALARMS, json!({"d": pump})).await;
    let alarm = newest(&list);
    assert_eq!((alarm["kind"].as_str(), alarm["state"].as_str()), (Some("FAULT"), Some("OPEN")));
    assert!(alarm["escalatedAt"].is_null());

    // tech2 (the tower) cannot see or acknowledge it; the guard may not handle alarms at all
    let tech2 = s.sign_in("tech2").await;
    let ack = "mutation($id: ID!) { acknowledgeAlarm(input: {alarmId: $id}) { alarm { state acknowledgedBy } } }";
    assert_eq!(code(&s.gql(Some(&tech2), ack, json!({"id": alarm["id"]})).await), "NOT_FOUND");
    let guard = s.sign_in("guard1").await;
    assert_eq!(code(&s.gql(Some(&guard), ack, json!({"id": alarm["id"]})).await), "FORBIDDEN");

    s.advance(901);
    assert_eq!(s.wait_for(sms, 2).await, 2, "not acknowledged in 15 minutes: SMS to the manager");
    let manager = s.sign_in("manager").await;
    let tech1 = s.sign_in("tech1").await;
    let acked = s.ok(Some(&tech1), ack, json!({"id": alarm["id"]})).await;
    assert_eq!(acked["acknowledgeAlarm"]["alarm"]["state"], "ACKNOWLEDGED");
    let twice = s.gql(Some(&tech1), ack, json!({"id": alarm["id"]})).await;
    assert_eq!(code(&twice), "CONFLICT");
    assert_eq!(twice["errors"][0]["extensions"]["details"]["currentState"], "ACKNOWLEDGED", "{twice}");

    // the device clears its fault: the alarm resolves itself and the pump is green again
    s.mqtt_publish("JCWY/JC-PUMP-01/event", br#"{"code":"E-OVERHEAT","cleared":true}"#).await;
    let resolved = "SELECT count(*) FROM alarms WHERE state = 'resolved' AND resolution = 'auto'";
    assert_eq!(s.wait_for(resolved, 1).await, 1);
    let q = "query($d: ID!) { deviceLiveState(deviceId: $d) { status } }";
    assert_eq!(s.ok(Some(&manager), q, json!({"d": pump})).await["deviceLiveState"]["status"], "NORMAL");

    // low pressure for a minute (device time) → an alarm; normal pressure → resolved
    let now = s.clock_now();
    for (secs, p) in [(0, 0.1), (30, 0.1), (61, 0.11)] {
        let ts = (now + chrono::TimeDelta::seconds(secs)).to_rfc3339();
        let body = json!({"ts": ts, "values": {"pressureMpa": p}}).to_string();
        s.mqtt_publish("JCWY/JC-PUMP-02/telemetry", body.as_bytes()).await;
    }
    let low = "SELECT count(*) FROM alarms WHERE kind = 'threshold' AND state = 'open'";
    assert_eq!(s.wait_for(low, 1).await, 1, "below 0.15 MPa for 60 s");
    s.mqtt_publish("JCWY/JC-PUMP-02/telemetry", br#"{"values":{"pressureMpa":0.42}}"#).await;
    assert_eq!(s.wait_for(low, 0).await, 0);

    // a person resolves the trapped alarm; the device may raise a new one afterwards
    let trapped = newest(&s.ok(Some(&manager), ALARMS, json!({"d": elevator})).await)["id"].clone();
    let r = s
        .ok(
            Some(&tech1),
            "mutation($id: ID!) { resolveAlarm(input: {alarmId: $id, resolution: \"已救出乘客，复位\"}) { alarm { state resolvedBy } } }",
            json!({"id": trapped}),
        )
        .await;
    assert_eq!(r["resolveAlarm"]["alarm"]["state"], "RESOLVED");
    s.mqtt_publish("JCWY/JC-ELV-11/event", br#"{"code":"TRAPPED"}"#).await;
    assert_eq!(s.wait_for("SELECT count(*) FROM alarms WHERE kind = 'fault' AND state = 'open'", 1).await, 1);
}

#[tokio::test]
async fn offline_after_missed_heartbeats_reminders_and_no_false_alarm_after_a_restart() {
    let s = TestServer::seeded_with(|c| {
        c.iot.heartbeat_secs.insert("water_pump".into(), 1);
        c.iot.missed_heartbeats = 3;
        c.iot.jobs = true;
    })
    .await;
    let manager = s.sign_in("manager").await;
    let (project, pump) = project_and_device(&s, &manager, "JC-PUMP-01").await;
    let mut socket = ws::connect(&s.ws_url(), json!({"accessToken": manager})).await.unwrap();
    ws::subscribe(
        &mut socket,
        "d",
        &format!("subscription {{ deviceStateChanged(projectId: \"{project}\") {{ deviceId status }} }}"),
    )
    .await;
    until_state_changes_flow(&s, &manager, &mut socket, "JC-FIRE-01", false).await;
    s.mqtt_publish("JCWY/JC-PUMP-01/telemetry", br#"{"values":{"pressureMpa":0.4}}"#).await;
    assert_eq!(ws::next_json(&mut socket).await.unwrap()["payload"]["data"]["deviceStateChanged"]["status"], "NORMAL");

    // an api restart after a gap: devices silent while nobody ingested are not offline
    let alive = wuye_api::iot::telemetry::service::alive_key(&s.state);
    let mut conn = s.state.redis.clone();
    let _: () = redis::cmd("DEL").arg(&alive).query_async(&mut conn).await.unwrap();
    s.advance(10);
    wuye_api::iot::telemetry::service::ingest_heartbeat(&s.state).await.unwrap();
    wuye_api::iot::telemetry::service::sweep_offline(&s.state).await.unwrap();
    let q = "query($d: ID!) { deviceLiveState(deviceId: $d) { status } }";
    assert_eq!(s.ok(Some(&manager), q, json!({"d": pump})).await["deviceLiveState"]["status"], "NORMAL");

    // three missed heartbeats after ingest is back: offline
    s.advance(4);
    let msg = ws::next_json(&mut socket).await.expect("offline");
    assert_eq!(msg["payload"]["data"]["deviceStateChanged"], json!({"deviceId": pump, "status": "OFFLINE"}));

    // offline for ten minutes: an alarm; still unacknowledged half an hour later: a reminder
    let manager = s.sign_in("manager").await;
    s.advance(601);
    let offline = "SELECT count(*) FROM alarms WHERE kind = 'offline' AND state = 'open'";
    assert_eq!(s.wait_for(offline, 1).await, 1);
    s.advance(1801);
    assert_eq!(s.wait_for("SELECT count(*) FROM alarms WHERE kind = 'offline' AND reminders = 1", 1).await, 1);
    let reminders = "SELECT count(*) FROM notifications WHERE title LIKE '告警仍未确认%'";
    // nobody of the estate is clocked in: the alarm:duty holder and the manager
    assert_eq!(s.wait_for(reminders, 2).await, 2, "tech1 and the manager reminded");

    // back on the next message
    s.mqtt_publish("JCWY/JC-PUMP-01/status", br#"{"status":"online"}"#).await;
    assert_eq!(s.wait_for("SELECT count(*) FROM alarms WHERE kind = 'offline' AND state = 'resolved'", 1).await, 1);
    let manager2 = s.sign_in("manager").await;
    assert_eq!(s.ok(Some(&manager2), q, json!({"d": pump})).await["deviceLiveState"]["status"], "NORMAL");
    drop(manager);
}

#[tokio::test]
async fn rules_are_validated_and_scoped_and_meters_report_usage() {
    let s = TestServer::seeded().await;
    let manager = s.sign_in("manager").await;
    let tech1 = s.sign_in("tech1").await;
    let (project, meter) = project_and_device(&s, &manager, "JC-WM-0001").await;
    let create = "mutation($i: AlarmRuleInput!) { createAlarmRule(input: {rule: $i}) { rule { id name kind threshold enabled } } }";
    let rule = json!({"projectId": project, "category": "WATER_PUMP", "name": "水泵电流过高", "kind": "THRESHOLD",
                      "metric": "currentA", "op": "ABOVE", "threshold": 20.0, "durationSecs": 30, "severity": "MAJOR"});
    assert_eq!(code(&s.gql(Some(&tech1), create, json!({"i": rule})).await), "FORBIDDEN");
    let mut bad = rule.clone();
    bad["metric"] = json!("电流");
    let r = s.gql(Some(&manager), create, json!({"i": bad})).await;
    assert_eq!((code(&r), r["errors"][0]["extensions"]["field"].as_str()), ("VALIDATION", Some("metric")), "{r}");
    let mut bad = rule.clone();
    bad["kind"] = json!("JUMP");
    bad["factor"] = json!(3.0);
    let r = s.gql(Some(&manager), create, json!({"i": bad})).await;
    assert_eq!(r["errors"][0]["extensions"]["field"], "category", "jump rules are for meters: {r}");
    let company_wide = json!({"name": "x", "kind": "OFFLINE", "durationSecs": 120, "severity": "MINOR"});
    assert_eq!(
        code(&s.gql(Some(&manager), create, json!({"i": company_wide})).await),
        "FORBIDDEN",
        "manager's grant is per project"
    );
    let made = s.ok(Some(&manager), create, json!({"i": rule})).await;
    let id = made["createAlarmRule"]["rule"]["id"].clone();
    let mut off = rule.clone();
    off["enabled"] = json!(false);
    let upd = "mutation($id: ID!, $i: AlarmRuleInput!) { updateAlarmRule(input: {alarmRuleId: $id, rule: $i}) { rule { enabled } } }";
    assert_eq!(
        s.ok(Some(&manager), upd, json!({"id": id, "i": off})).await["updateAlarmRule"]["rule"]["enabled"],
        false
    );
    let mut moved = off.clone();
    moved["category"] = json!("ELEVATOR");
    let r = s.gql(Some(&manager), upd, json!({"id": id, "i": moved})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "kind"), "what a rule watches stays: {r}");
    let rules = s.ok(Some(&tech1), "{ alarmRules(first: 50) { edges { node { name } } } }", json!({})).await;
    assert!(rules["alarmRules"]["edges"].as_array().unwrap().len() >= 10, "defaults plus the new rule");

    // a meter over a day: usage = last − first reading; a sudden jump is an anomaly
    let now = s.clock_now();
    let start = now - chrono::TimeDelta::minutes(70);
    for i in 0..8 {
        let ts = (start + chrono::TimeDelta::minutes(10 * i)).to_rfc3339();
        let body = json!({"ts": ts, "values": {"reading": 100.0 + i as f64 * 0.5}}).to_string();
        s.mqtt_publish("JCWY/JC-WM-0001/telemetry", body.as_bytes()).await;
    }
    s.mqtt_publish("JCWY/JC-WM-0001/telemetry", br#"{"values":{"reading":130.0}}"#).await;
    assert_eq!(s.wait_for("SELECT count(*) FROM alarms WHERE kind = 'jump'", 1).await, 1);
    let day = now.with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let start_day = start.with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let mr = s
        .ok(
            Some(&manager),
            "query($p: ID!, $f: NaiveDate!, $t: NaiveDate!) { meterReadings(projectId: $p, category: WATER_METER, from: $f, to: $t, first: 50) { edges { node { deviceId category startReading endReading usage } } } }",
            json!({"p": project, "f": start_day.to_string(), "t": day.to_string()}),
        )
        .await;
    let rows: Vec<serde_json::Value> =
        mr["meterReadings"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
    assert!(!rows.is_empty() && rows.iter().all(|r| r["category"] == "WATER_METER"), "{mr}");
    let row = rows.iter().find(|r| r["deviceId"] == meter.as_str()).unwrap().clone();
    assert_eq!(row["category"], "WATER_METER");
    assert_eq!(
        (row["startReading"].as_str(), row["endReading"].as_str(), row["usage"].as_str()),
        (Some("100"), Some("130"), Some("30")),
        "{row}"
    );
    let trend = s
        .ok(
            Some(&manager),
            "query($d: ID!, $f: DateTime!, $t: DateTime!) { deviceTrend(deviceId: $d, metric: \"reading\", bucket: HOUR, from: $f, to: $t) { count max } }",
            json!({"d": meter, "f": (start - chrono::TimeDelta::hours(1)).to_rfc3339(), "t": (now + chrono::TimeDelta::minutes(1)).to_rfc3339()}),
        )
        .await;
    let total: i64 = trend["deviceTrend"].as_array().unwrap().iter().map(|p| p["count"].as_i64().unwrap()).sum();
    assert_eq!(total, 9);
    let r = s
        .gql(Some(&manager), "query($d: ID!) { deviceTrend(deviceId: $d, metric: \"reading\", bucket: HOUR, from: \"2026-01-01T00:00:00Z\", to: \"2026-06-01T00:00:00Z\") { count } }", json!({"d": meter}))
        .await;
    assert_eq!(code(&r), "VALIDATION");

    // elevator running state and component health from telemetry
    let (_, elevator) = project_and_device(&s, &manager, "JC-ELV-12").await;
    s.mqtt_publish(
        "JCWY/JC-ELV-12/telemetry",
        br#"{"values":{"mode":1,"floor":7,"door":0,"motorTempC":80,"ropeWearPct":30}}"#,
    )
    .await;
    let q = "query($d: ID!) { elevatorState(deviceId: $d) { runningState floor doorOpen components { component health } } }";
    let mut e = json!(null);
    for _ in 0..50 {
        e = s.ok(Some(&manager), q, json!({"d": elevator})).await;
        if e["elevatorState"]["floor"] == 7 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(e["elevatorState"]["runningState"], "RUNNING");
    assert_eq!(e["elevatorState"]["doorOpen"], false);
    assert_eq!(e["elevatorState"]["components"][0], json!({"component": "MOTOR", "health": "WARNING"}));
    assert_eq!(e["elevatorState"]["components"][2], json!({"component": "ROPES", "health": "OK"}));
}

#[tokio::test]
async fn acknowledging_once_per_client_mutation_id_and_never_twice() {
    let s = TestServer::seeded().await;
    let manager = s.sign_in("manager").await;
    let tech1 = s.sign_in("tech1").await;
    let (_, pump1) = project_and_device(&s, &manager, "JC-PUMP-01").await;
    let (_, pump2) = project_and_device(&s, &manager, "JC-PUMP-02").await;
    s.mqtt_publish("JCWY/JC-PUMP-01/event", br#"{"code":"E-OVERHEAT"}"#).await;
    s.mqtt_publish("JCWY/JC-PUMP-02/event", br#"{"code":"E-OVERHEAT"}"#).await;
    assert_eq!(s.wait_for("SELECT count(*) FROM alarms WHERE state = 'open'", 2).await, 2);
    let first_alarm = newest(&s.ok(Some(&manager), ALARMS, json!({"d": pump1})).await)["id"].clone();
    let second_alarm = newest(&s.ok(Some(&manager), ALARMS, json!({"d": pump2})).await)["id"].clone();
    let ack = "mutation($id: ID!, $m: String) { acknowledgeAlarm(input: {alarmId: $id, clientMutationId: $m}) { clientMutationId alarm { id state acknowledgedBy acknowledgedAt } } }";
    let audits = "SELECT count(*) FROM audit_log WHERE action = 'alarm.acknowledge'";

    // sequential: the retry answers like the first call and writes nothing
    let first = s.ok(Some(&tech1), ack, json!({"id": first_alarm, "m": "ack-1"})).await;
    assert_eq!(first["acknowledgeAlarm"]["clientMutationId"], "ack-1");
    assert_eq!(first["acknowledgeAlarm"]["alarm"]["state"], "ACKNOWLEDGED");
    let again = s.ok(Some(&tech1), ack, json!({"id": first_alarm, "m": "ack-1"})).await;
    assert_eq!(again, first);
    assert_eq!(s.scalar(audits).await, 1);

    // without the id, or with another one, it is a second acknowledgement: refused
    for m in [json!(null), json!("ack-2")] {
        let r = s.gql(Some(&tech1), ack, json!({"id": first_alarm, "m": m})).await;
        assert_eq!((code(&r), field(&r)), ("CONFLICT", "alarmId"), "{r}");
        assert_eq!(r["errors"][0]["extensions"]["details"]["currentState"], "ACKNOWLEDGED", "{r}");
    }
    assert_eq!(s.scalar(audits).await, 1);

    // concurrent: both answers show the one acknowledgement
    let (a, b) = tokio::join!(
        s.gql(Some(&tech1), ack, json!({"id": second_alarm, "m": "ack-3"})),
        s.gql(Some(&tech1), ack, json!({"id": second_alarm, "m": "ack-3"}))
    );
    assert!(a.get("errors").is_none() && b.get("errors").is_none(), "{a} {b}");
    assert_eq!(a["data"], b["data"]);
    assert_eq!(a["data"]["acknowledgeAlarm"]["alarm"]["state"], "ACKNOWLEDGED");
    assert_eq!(s.scalar(audits).await, 2);

    // the same id with other input is another mutation: refused
    let r = s.gql(Some(&tech1), ack, json!({"id": second_alarm, "m": "ack-1"})).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "clientMutationId"), "{r}");

    // resolving twice: the second time names the state it found
    let resolve =
        "mutation($id: ID!) { resolveAlarm(input: {alarmId: $id, resolution: \"已更换电机\"}) { alarm { state } } }";
    assert_eq!(
        s.ok(Some(&tech1), resolve, json!({"id": first_alarm})).await["resolveAlarm"]["alarm"]["state"],
        "RESOLVED"
    );
    let r = s.gql(Some(&tech1), resolve, json!({"id": first_alarm})).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "alarmId"), "{r}");
    assert_eq!(r["errors"][0]["extensions"]["details"]["currentState"], "RESOLVED", "{r}");
    let r = s.gql(Some(&tech1), ack, json!({"id": first_alarm})).await;
    assert_eq!(r["errors"][0]["extensions"]["details"]["currentState"], "RESOLVED", "{r}");
}
