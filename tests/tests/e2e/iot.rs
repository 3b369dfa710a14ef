//! Device messages over the real Mosquitto: telemetry → live state + history + subscription
//! event; faults and offline; malformed and unknown messages never stall the consumer.

use std::time::{Duration, Instant};

use serde_json::json;
use wuye_tests::{TestServer, code, ws};

/// The next message of subscription `id` on `socket` (messages of others are skipped).
pub(crate) async fn next_of(socket: &mut ws::Socket, id: &str) -> Option<serde_json::Value> {
    loop {
        let msg = ws::next_json(socket).await?;
        if msg["id"] == id {
            return Some(msg);
        }
    }
}

/// Waits, without a fixed sleep, until a `deviceStateChanged` subscription of the estate
/// on `socket` delivers: `probe` (an estate device the test does not otherwise watch)
/// reports offline and online in turn until a change comes through. The probe ends offline
/// or normal as asked, and the changes still on their way are drained.
pub(crate) async fn until_state_changes_flow(
    s: &TestServer,
    token: &str,
    socket: &mut ws::Socket,
    probe: &str,
    end_offline: bool,
) {
    let body = |online: bool| if online { &br#"{"status":"online"}"#[..] } else { &br#"{"status":"offline"}"#[..] };
    let topic = format!("JCWY/{probe}/status");
    let mut flowing = false;
    'probe: for _ in 0..20 {
        for online in [false, true] {
            s.mqtt_publish(&topic, body(online)).await;
            if ws::next_json_within(socket, Duration::from_millis(250)).await.is_some() {
                flowing = true;
                break 'probe;
            }
        }
    }
    assert!(flowing, "no state change came through the subscription");
    s.mqtt_publish(&topic, body(!end_offline)).await;
    let want = if end_offline { "OFFLINE" } else { "NORMAL" };
    let id = s.ok(Some(token), "query($c: String!) { deviceByCode(code: $c) { id } }", json!({"c": probe})).await
        ["deviceByCode"]["id"]
        .clone();
    let q = "query($d: ID!) { deviceLiveState(deviceId: $d) { status } }";
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.ok(Some(token), q, json!({"d": id})).await["deviceLiveState"]["status"] != want {
        assert!(Instant::now() < deadline, "{probe} never became {want}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    while ws::next_json_within(socket, Duration::from_millis(300)).await.is_some() {}
}

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
    // an extinguisher that stays offline, like the rest of the estate that never spoke
    until_state_changes_flow(&s, &manager, &mut socket, "JC-FIRE-01", true).await;

    // junk first: a malformed payload and an unknown device must not stop what follows
    s.mqtt_publish("JCWY/JC-PUMP-01/telemetry", b"{not json").await;
    s.mqtt_publish("JCWY/NO-SUCH-DEVICE/telemetry", br#"{"values":{"x":1}}"#).await;
    s.mqtt_publish("JCWY/JC-PUMP-01/telemetry", br#"{"values":{"pressureMpa":0.42,"running":1}}"#).await;
    let msg = ws::next_json(&mut socket).await.expect("a state change");
    assert_eq!(msg["payload"]["data"]["deviceStateChanged"], json!({"deviceId": device, "status": "NORMAL"}), "{msg}");
    let q = "query($d: ID!) { deviceLiveState(deviceId: $d) { status values lastEvent } }";
    let live = s.ok(Some(&manager), q, json!({"d": device})).await;
    assert_eq!(live["deviceLiveState"]["values"], json!({"pressureMpa": 0.42, "running": 1.0}));
    assert_eq!(s.scalar("SELECT count(*) FROM telemetry").await, 1, "history: one row per message");

    s.mqtt_publish("JCWY/JC-PUMP-01/event", r#"{"code":"E21","message":"电机过热"}"#.as_bytes()).await;
    let msg = ws::next_json(&mut socket).await.expect("fault");
    assert_eq!(msg["payload"]["data"]["deviceStateChanged"]["status"], "FAULT");
    let live = s.ok(Some(&manager), q, json!({"d": device})).await;
    assert_eq!(live["deviceLiveState"]["lastEvent"]["code"], "E21");

    s.mqtt_publish("JCWY/JC-PUMP-01/status", br#"{"status":"offline"}"#).await;
    let msg = ws::next_json(&mut socket).await.expect("offline");
    assert_eq!(msg["payload"]["data"]["deviceStateChanged"]["status"], "OFFLINE");

    // the dashboard: the pump is offline now, the rest of the estate's 20 devices never spoke
    let dash = s.ok(Some(&manager), "query($p: ID!) { deviceDashboard(projectId: $p) { total byStatus { status count } byCategory { category status count } } }", json!({"p": project})).await;
    assert_eq!(dash["deviceDashboard"]["total"], 20);
    let offline = dash["deviceDashboard"]["byStatus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["status"] == "OFFLINE")
        .unwrap()["count"]
        .clone();
    assert_eq!(offline, 20);
    s.mqtt_publish("JCWY/JC-ELV-11/telemetry", br#"{"values":{"floor":3}}"#).await;
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
            .contains(&json!({"category": "ELEVATOR", "status": "NORMAL", "count": 1})),
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

/// A device on the broker: answers every command on its topic with `ok`.
async fn fake_device(root: &str, company: &str, device: &str, ok: bool) -> tokio::task::JoinHandle<()> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut opts = MqttOptions::new(format!("dev-{}", uuid::Uuid::now_v7().simple()), "127.0.0.1", 1883);
    opts.set_keep_alive(std::time::Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(opts, 10);
    let topic = format!("{root}/{company}/{device}/command");
    client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    // wait for the SUBACK so no command is missed
    loop {
        if let Ok(Event::Incoming(Packet::SubAck(_))) = events.poll().await {
            break;
        }
    }
    tokio::spawn(async move {
        while let Ok(ev) = events.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = ev {
                let cmd: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                let ack = json!({"id": cmd["id"], "ok": ok, "message": if ok { "已执行" } else { "门锁卡死" }});
                client.publish(format!("{topic}/ack"), QoS::AtLeastOnce, false, ack.to_string()).await.unwrap();
            }
        }
    })
}

#[tokio::test]
async fn remote_commands_are_acknowledged_refused_or_time_out() {
    let s = TestServer::seeded().await;
    let root = s.state.config.mqtt_topic_root.clone();
    let manager = s.sign_in("manager").await;
    let id_of = |d: serde_json::Value| d["deviceByCode"]["id"].clone();
    let door = id_of(s.ok(Some(&manager), "{ deviceByCode(code: \"TF-DOOR-01\") { id } }", json!({})).await);
    let lift = id_of(s.ok(Some(&manager), "{ deviceByCode(code: \"JC-ELV-11\") { id } }", json!({})).await);
    let send = "mutation($d: ID!, $k: DeviceCommandKind!, $m: String) { sendDeviceCommand(input: {deviceId: $d, kind: $k, clientMutationId: $m}) { clientMutationId command { id status } } }";

    let _device = fake_device(&root, "JCWY", "TF-DOOR-01", true).await;
    let sent = s.ok(Some(&manager), send, json!({"d": door, "k": "OPEN_DOOR", "m": "open-1"})).await;
    let c = sent["sendDeviceCommand"]["command"].clone();
    assert_eq!(c["status"], "SENT");
    let status = until_finished(&s, &manager, &c["id"]).await;
    assert_eq!(status, json!({"status": "SUCCEEDED", "result": "已执行"}));
    assert_eq!(s.scalar("SELECT count(*) FROM audit_log WHERE action = 'device.command'").await, 1);
    // a retry with the same clientMutationId is the same command, neither recorded nor sent again
    let again = s.ok(Some(&manager), send, json!({"d": door, "k": "OPEN_DOOR", "m": "open-1"})).await;
    assert_eq!(again["sendDeviceCommand"]["command"]["id"], c["id"]);
    assert_eq!(again["sendDeviceCommand"]["clientMutationId"], "open-1");
    assert_eq!(s.scalar("SELECT count(*) FROM device_commands").await, 1);
    assert_eq!(s.scalar("SELECT count(*) FROM audit_log WHERE action = 'device.command'").await, 1);

    // permission per kind and per project; the kind must fit the device
    let guard = s.sign_in("guard1").await; // doors of 锦城花园 only
    assert_eq!(code(&s.gql(Some(&guard), send, json!({"d": door, "k": "OPEN_DOOR"})).await), "FORBIDDEN");
    let tech1 = s.sign_in("tech1").await; // elevators yes, doors no
    let elevator_door = s.gql(Some(&tech1), send, json!({"d": lift, "k": "OPEN_DOOR"})).await;
    assert_eq!(code(&elevator_door), "FORBIDDEN");
    let r = s.gql(Some(&manager), send, json!({"d": lift, "k": "OPEN_DOOR"})).await;
    assert_eq!((code(&r), wuye_tests::field(&r)), ("VALIDATION", "kind"));

    // no device listening: FAILED after the timeout
    let c = s.ok(Some(&tech1), send, json!({"d": lift, "k": "ELEVATOR_TO_BASE"})).await["sendDeviceCommand"]["command"]
        .clone();
    s.clock.advance(11);
    let status = until_finished(&s, &manager, &c["id"]).await;
    assert_eq!(status, json!({"status": "FAILED", "result": "timeout"}));
}

/// Polls a command until it is no longer SENT (or 10 s pass); returns its status and result.
async fn until_finished(s: &TestServer, token: &str, id: &serde_json::Value) -> serde_json::Value {
    let poll = "query($c: ID!) { deviceCommand(id: $c) { status result } }";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = s.ok(Some(token), poll, json!({"c": id})).await["deviceCommand"].clone();
        if status["status"] != "SENT" || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
