//! Device messages over the real Mosquitto: telemetry → live state + history + subscription
//! event; faults and offline; malformed and unknown messages never stall the consumer.

use serde_json::json;
use wuye_tests::{TestServer, code, ws};

#[tokio::test]
async fn telemetry_fault_and_offline_flow_through_to_live_state_and_subscribers() {
    let s = TestServer::seeded().await;
    let manager = s.sign_in("manager").await;
    let d = s.ok(Some(&manager), "{ deviceByCode(code: \"JC-PUMP-01\") { id projectId } }", json!({})).await;
    let (device, project) = (d["deviceByCode"]["id"].clone(), d["deviceByCode"]["projectId"].clone());
    let mut socket = ws::connect(&s.ws_url(), json!({"accessToken": manager})).await.unwrap();
    ws::subscribe(
        &mut socket,
        "d",
        &format!(
            "subscription {{ deviceStateChanged(projectId: \"{}\") {{ deviceId status }} }}",
            project.as_str().unwrap()
        ),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    // junk first: a malformed payload and an unknown device must not stop what follows
    s.mqtt_publish("JCHY/JC-PUMP-01/telemetry", b"{not json").await;
    s.mqtt_publish("JCHY/NO-SUCH-DEVICE/telemetry", br#"{"values":{"x":1}}"#).await;
    s.mqtt_publish("JCHY/JC-PUMP-01/telemetry", br#"{"values":{"pressureMpa":0.42,"running":1}}"#).await;
    let msg = ws::next_json(&mut socket).await.expect("a state change");
    assert_eq!(msg["payload"]["data"]["deviceStateChanged"], json!({"deviceId": device, "status": "normal"}), "{msg}");
    let q = "query($d: ID!) { deviceLiveState(deviceId: $d) { status values lastEvent } }";
    let live = s.ok(Some(&manager), q, json!({"d": device})).await;
    assert_eq!(live["deviceLiveState"]["values"], json!({"pressureMpa": 0.42, "running": 1.0}));
    assert_eq!(s.scalar("SELECT count(*) FROM telemetry").await, 2, "history stored in one batch");

    s.mqtt_publish("JCHY/JC-PUMP-01/event", r#"{"code":"E21","message":"电机过热"}"#.as_bytes()).await;
    let msg = ws::next_json(&mut socket).await.expect("fault");
    assert_eq!(msg["payload"]["data"]["deviceStateChanged"]["status"], "fault");
    let live = s.ok(Some(&manager), q, json!({"d": device})).await;
    assert_eq!(live["deviceLiveState"]["lastEvent"]["code"], "E21");

    s.mqtt_publish("JCHY/JC-PUMP-01/status", br#"{"status":"offline"}"#).await;
    let msg = ws::next_json(&mut socket).await.expect("offline");
    assert_eq!(msg["payload"]["data"]["deviceStateChanged"]["status"], "offline");

    // the dashboard: the pump is offline now, the rest of the estate's 20 devices never spoke
    let dash = s.ok(Some(&manager), "query($p: ID!) { deviceDashboard(projectId: $p) { total byStatus { status count } byCategory { category status count } } }", json!({"p": project})).await;
    assert_eq!(dash["deviceDashboard"]["total"], 20);
    let offline = dash["deviceDashboard"]["byStatus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["status"] == "offline")
        .unwrap()["count"]
        .clone();
    assert_eq!(offline, 20);
    s.mqtt_publish("JCHY/JC-ELV-11/telemetry", br#"{"values":{"floor":3}}"#).await;
    let _ = ws::next_json(&mut socket).await;
    let dash = s
        .ok(
            Some(&manager),
            "query($p: ID!) { deviceDashboard(projectId: $p) { byCategory { category status count } } }",
            json!({"p": project}),
        )
        .await;
    assert!(
        dash["deviceDashboard"]["byCategory"]
            .as_array()
            .unwrap()
            .contains(&json!({"category": "elevator", "status": "normal", "count": 1})),
        "{dash}"
    );

    let m = s.http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("mqtt_messages_total{result=\"malformed\"}"), "{m}");
    assert!(m.contains("mqtt_messages_total{result=\"unknown_device\"}"));

    // scope: the tower's technician cannot watch or read the estate's devices
    let tech2 = s.sign_in("tech2").await;
    assert_eq!(code(&s.gql(Some(&tech2), q, json!({"d": device})).await), "FORBIDDEN");
    let mut other = ws::connect(&s.ws_url(), json!({"accessToken": tech2})).await.unwrap();
    ws::subscribe(
        &mut other,
        "x",
        &format!("subscription {{ deviceStateChanged(projectId: \"{}\") {{ status }} }}", project.as_str().unwrap()),
    )
    .await;
    let msg = ws::next_json(&mut other).await.unwrap();
    assert_eq!(msg["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{msg}");
}
