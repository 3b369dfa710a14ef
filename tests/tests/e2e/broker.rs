//! Devices on the broker as shipped (deploy/mosquitto/wuye.conf): the server signs in over
//! TLS with its own account, each device gets its own account from the ledger, and the
//! broker keeps every device to its own topics. Also: oversized messages, per-message
//! receive times, and topics unique across companies.

use std::collections::HashMap;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use wuye_tests::broker::ShippedBroker;
use wuye_tests::*;

const PROVISION: &str = "mutation($d: ID!, $m: String) { provisionDeviceCredentials(input: {deviceId: $d, clientMutationId: $m}) { username password topics { publish subscribe } device { brokerUsername } } }";

async fn device_id(s: &TestServer, token: &str, code: &str) -> String {
    let q = "query($c: String!) { deviceByCode(code: $c) { id } }";
    s.ok(Some(token), q, json!({"c": code})).await["deviceByCode"]["id"].as_str().unwrap().to_owned()
}

/// Connects like a device (MQTT 3.1.1), with its username as client id; `Err` when the
/// broker refuses the connection.
async fn connect(port: u16, account: Option<(&str, &str)>) -> Result<(AsyncClient, rumqttc::EventLoop), String> {
    let id = account.map(|(u, _)| u.to_owned()).unwrap_or_else(|| format!("dev-{}", uuid::Uuid::now_v7().simple()));
    connect_as(port, &id, account).await
}

async fn connect_as(
    port: u16,
    client_id: &str,
    account: Option<(&str, &str)>,
) -> Result<(AsyncClient, rumqttc::EventLoop), String> {
    let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    if let Some((u, p)) = account {
        o.set_credentials(u, p);
    }
    let (client, mut events) = AsyncClient::new(o, 100);
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => return Ok((client, events)),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("{e:?}")),
            Err(_) => return Err("timeout".into()),
        }
    }
}

/// Publishes with MQTT 5 and returns the broker's answer: `Ok(())` when accepted,
/// `Err(reason)` when refused.
async fn publish_v5(port: u16, user: &str, password: &str, topic: &str, body: &str) -> Result<(), String> {
    use rumqttc::v5::mqttbytes::v5::{Packet as P5, PubAckReason};
    use rumqttc::v5::{AsyncClient as C5, Event as E5, MqttOptions as O5};
    let mut o = O5::new(user, "127.0.0.1", port);
    o.set_credentials(user, password);
    let (client, mut events) = C5::new(o, 10);
    client.publish(topic, rumqttc::v5::mqttbytes::QoS::AtLeastOnce, false, body.as_bytes().to_vec()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), events.poll()).await {
            Ok(Ok(E5::Incoming(P5::PubAck(a)))) => {
                let _ = client.disconnect().await;
                return match a.reason {
                    PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Ok(()),
                    r => Err(format!("{r:?}")),
                };
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("{e:?}")),
            Err(_) => break,
        }
    }
    Err("no answer".into())
}

#[tokio::test]
async fn devices_have_their_own_accounts_and_only_their_own_topics() {
    let broker = ShippedBroker::start().await;
    // the server signs in over TLS, checking the broker's certificate against our CA
    let tls_url = broker.server_tls_url();
    let ca = broker.ca_file.clone();
    let s = TestServer::seeded_with(|c| {
        c.mqtt_url = tls_url;
        c.mqtt_ca_file = Some(ca);
        c.mqtt_dynsec = true;
    })
    .await;
    let root = s.state.config.mqtt_topic_root.clone();
    let admin = s.sign_in("admin").await;
    let lift = device_id(&s, &admin, "JC-ELV-11").await;
    let pump = device_id(&s, &admin, "JC-PUMP-01").await;

    // anonymous clients and wrong passwords are turned away
    assert!(connect(broker.port, None).await.is_err(), "anonymous access is off");
    assert!(connect(broker.port, Some(("JCWY/JC-ELV-11", "guess"))).await.is_err());

    // only equipment:write provisions; the password is shown once, a retry does not repeat it
    let tech = s.sign_in("tech1").await;
    let r = s.gql(Some(&tech), PROVISION, json!({"d": lift})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    let p =
        s.ok(Some(&admin), PROVISION, json!({"d": lift, "m": "prov-1"})).await["provisionDeviceCredentials"].clone();
    assert_eq!(p["username"], "JCWY/JC-ELV-11");
    assert_eq!(p["device"]["brokerUsername"], "JCWY/JC-ELV-11");
    assert_eq!(p["topics"]["subscribe"], json!([format!("{root}/JCWY/JC-ELV-11/command")]));
    let lift_pw = p["password"].as_str().unwrap().to_owned();
    let again =
        s.ok(Some(&admin), PROVISION, json!({"d": lift, "m": "prov-1"})).await["provisionDeviceCredentials"].clone();
    assert_eq!(again["username"], "JCWY/JC-ELV-11");
    assert_eq!(again["password"], Value::Null, "a replay never shows the secret again");
    assert_eq!(s.scalar("SELECT count(*) FROM audit_log WHERE action = 'device.broker_provision'").await, 1);
    let pump_pw = s.ok(Some(&admin), PROVISION, json!({"d": pump})).await["provisionDeviceCredentials"]["password"]
        .as_str()
        .unwrap()
        .to_owned();

    // a device account is bound to its own client id: it cannot take over the session of an
    // ingest slot (and with it every company's messages) nor another device's
    let slot = format!("{}-ingest-0", s.state.config.mqtt_client_prefix);
    assert!(connect_as(broker.port, &slot, Some(("JCWY/JC-ELV-11", &lift_pw))).await.is_err());
    assert!(connect_as(broker.port, "JCWY/JC-PUMP-01", Some(("JCWY/JC-ELV-11", &lift_pw))).await.is_err());

    // the lift publishes its own telemetry: stored
    let own = format!("{root}/JCWY/JC-ELV-11/telemetry");
    publish_v5(broker.port, "JCWY/JC-ELV-11", &lift_pw, &own, r#"{"values":{"floor":7}}"#).await.unwrap();
    assert_eq!(s.wait_for("SELECT count(*) FROM telemetry", 1).await, 1);
    // …but not the pump's, nor a command to another device: the broker refuses both
    let foreign = format!("{root}/JCWY/JC-PUMP-01/telemetry");
    let refused =
        publish_v5(broker.port, "JCWY/JC-ELV-11", &lift_pw, &foreign, r#"{"values":{"pressureMpa":9.9}}"#).await;
    assert!(refused.is_err_and(|e| e.contains("NotAuthorized")), "a device cannot speak for another");
    let cmd = format!("{root}/JCWY/TF-DOOR-01/command");
    let refused = publish_v5(broker.port, "JCWY/JC-ELV-11", &lift_pw, &cmd, r#"{"kind":"open_door"}"#).await;
    assert!(refused.is_err_and(|e| e.contains("NotAuthorized")), "only the server sends commands");
    // and it may not listen to another device's commands
    let (c, mut ev) = connect(broker.port, Some(("JCWY/JC-ELV-11", &lift_pw))).await.unwrap();
    c.subscribe(format!("{root}/JCWY/JC-PUMP-01/command"), QoS::AtLeastOnce).await.unwrap();
    let suback = loop {
        if let Ok(Event::Incoming(Packet::SubAck(a))) = ev.poll().await {
            break a;
        }
    };
    assert!(matches!(suback.return_codes[0], rumqttc::SubscribeReasonCode::Failure));

    // a command reaches the lift through its own subscription; its answer comes back
    c.subscribe(format!("{root}/JCWY/JC-ELV-11/command"), QoS::AtLeastOnce).await.unwrap();
    loop {
        if let Ok(Event::Incoming(Packet::SubAck(a))) = ev.poll().await {
            assert!(matches!(a.return_codes[0], rumqttc::SubscribeReasonCode::Success(_)));
            break;
        }
    }
    let send =
        "mutation($d: ID!) { sendDeviceCommand(input: {deviceId: $d, kind: ELEVATOR_TO_BASE}) { command { id } } }";
    let cmd_id = s.ok(Some(&admin), send, json!({"d": lift})).await["sendDeviceCommand"]["command"]["id"].clone();
    let got = loop {
        match tokio::time::timeout(Duration::from_secs(5), ev.poll()).await.expect("the command arrives") {
            Ok(Event::Incoming(Packet::Publish(p))) => break p,
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    };
    let body: Value = serde_json::from_slice(&got.payload).unwrap();
    assert_eq!(body["id"], cmd_id);
    let ack = json!({"id": cmd_id, "ok": true, "message": "done"}).to_string();
    c.publish(format!("{root}/JCWY/JC-ELV-11/command/ack"), QoS::AtLeastOnce, false, ack).await.unwrap();
    // the device's connection keeps turning (the ack goes out through it)
    let device_loop = tokio::spawn(async move { while ev.poll().await.is_ok() {} });
    let q = "query($i: ID!) { deviceCommand(id: $i) { status } }";
    let done = s
        .wait_until(|| async {
            s.ok(Some(&admin), q, json!({"i": cmd_id})).await["deviceCommand"]["status"] == "SUCCEEDED"
        })
        .await;
    assert!(done, "the device's answer reached the server");
    device_loop.abort();

    // the device simulator publishes with the devices' own accounts
    let creds: HashMap<String, String> =
        [("JCWY/JC-ELV-11".to_owned(), lift_pw.clone()), ("JCWY/JC-PUMP-01".to_owned(), pump_pw)].into();
    use wuye_api::equipment::model::DeviceCategory;
    use wuye_api::iot::sim::model::{SimDevice, SimOptions};
    let report = wuye_api::iot::sim::service::simulate(SimOptions {
        mqtt_url: broker.device_url(),
        ca_file: None,
        credentials: creds,
        root: root.clone(),
        devices: vec![
            SimDevice { company: "JCWY".into(), code: "JC-ELV-11".into(), category: DeviceCategory::Elevator },
            SimDevice { company: "JCWY".into(), code: "JC-PUMP-01".into(), category: DeviceCategory::WaterPump },
        ],
        rate: 0.0,
        count: 40,
        fault_rate: 0.0,
        offline: 0,
        connections: 1,
    })
    .await
    .unwrap();
    assert_eq!(report.sent, 40);
    assert_eq!(s.wait_for("SELECT count(*) FROM telemetry", 41).await, 41, "all simulated readings stored");

    // a new password retires the old one at once; revoking ends the account
    let r = s.ok(Some(&admin), PROVISION, json!({"d": lift})).await;
    assert_ne!(r["provisionDeviceCredentials"]["password"].as_str().unwrap(), lift_pw);
    assert!(connect(broker.port, Some(("JCWY/JC-ELV-11", &lift_pw))).await.is_err(), "the old password is dead");
    let revoke = "mutation($d: ID!) { revokeDeviceCredentials(input: {deviceId: $d}) { device { brokerUsername } } }";
    let r = s.ok(Some(&admin), revoke, json!({"d": pump})).await;
    assert_eq!(r["revokeDeviceCredentials"]["device"]["brokerUsername"], Value::Null);
}

#[tokio::test]
async fn provisioning_needs_a_broker_with_dynamic_security() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let lift = device_id(&s, &admin, "JC-ELV-11").await;
    let r = s.gql(Some(&admin), PROVISION, json!({"d": lift})).await;
    assert_eq!(code(&r), "CONFLICT", "{r}");
}

#[tokio::test]
async fn an_oversized_message_is_rejected_and_ingest_goes_on() {
    let s = TestServer::seeded().await;
    let big = format!(r#"{{"values":{{"x":1}},"pad":"{}"}}"#, "x".repeat(64 * 1024));
    s.mqtt_publish("JCWY/JC-PUMP-01/telemetry", big.as_bytes()).await;
    s.mqtt_publish("JCWY/JC-PUMP-01/telemetry", br#"{"values":{"pressureMpa":0.42}}"#).await;
    assert_eq!(s.wait_for("SELECT count(*) FROM telemetry", 1).await, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.scalar("SELECT count(*) FROM telemetry WHERE data ? 'x'").await, 0, "the big one was dropped");
    // the connection survived it: later messages still arrive
    s.mqtt_publish("JCWY/JC-PUMP-01/telemetry", br#"{"values":{"pressureMpa":0.43}}"#).await;
    assert_eq!(s.wait_for("SELECT count(*) FROM telemetry", 2).await, 2);
}

#[tokio::test]
async fn readings_without_ts_keep_the_time_each_arrived_through_a_backlog() {
    let s = TestServer::seeded().await;
    // the database stalls (the history table is locked): messages pile up in the server
    let mut blocker = s.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE telemetry IN ACCESS EXCLUSIVE MODE").execute(&mut *blocker).await.unwrap();
    for v in 1..=3 {
        s.mqtt_publish("JCWY/JC-PUMP-01/telemetry", format!(r#"{{"values":{{"seq":{v}}}}}"#).as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.advance(60);
    }
    blocker.commit().await.unwrap();
    assert_eq!(s.wait_for("SELECT count(*) FROM telemetry", 3).await, 3);
    let times: Vec<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT ts FROM telemetry ORDER BY (data->>'seq')::float8").fetch_all(&s.db).await.unwrap();
    assert!(times[1] - times[0] >= chrono::TimeDelta::seconds(59), "{times:?}");
    assert!(times[2] - times[1] >= chrono::TimeDelta::seconds(59), "{times:?}");
}

#[tokio::test]
async fn two_companies_with_the_same_device_codes_never_share_a_topic() {
    let s = TestServer::seeded().await;
    let (other, _) = wuye_api::onboarding::create_company(
        &s.state,
        wuye_api::onboarding::NewCompany { name: "第二物业", code: Some("DEYW"), credit_code: None },
        "admin2",
        "Wuye@2026x",
        false,
    )
    .await
    .unwrap();
    // the second company has a project and a device with the demo's codes
    let project = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO projects (id, company_id, name, code, kind) VALUES ($1, $2, '二号项目', 'JCHY', 'residential')",
    )
    .bind(project)
    .bind(other)
    .execute(&s.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO devices (id, company_id, project_id, code, name, category, status, attributes)
         VALUES (gen_random_uuid(), $1, $2, 'JC-PUMP-01', '二号水泵', 'water_pump', 'in_use', '{}')",
    )
    .bind(other)
    .bind(project)
    .execute(&s.db)
    .await
    .unwrap();
    s.state.part::<wuye_api::iot::telemetry::service::IotCache>().unwrap().forget_devices();
    s.mqtt_publish("DEYW/JC-PUMP-01/telemetry", br#"{"values":{"pressureMpa":0.11}}"#).await;
    s.mqtt_publish("JCWY/JC-PUMP-01/telemetry", br#"{"values":{"pressureMpa":0.22}}"#).await;
    assert_eq!(s.wait_for("SELECT count(*) FROM telemetry", 2).await, 2);
    let per_company: Vec<(String, f64)> = sqlx::query_as(
        "SELECT c.code, (t.data->>'pressureMpa')::float8 FROM telemetry t JOIN devices d ON d.id = t.device_id
         JOIN companies c ON c.id = d.company_id ORDER BY c.code",
    )
    .fetch_all(&s.db)
    .await
    .unwrap();
    assert_eq!(per_company, vec![("DEYW".to_owned(), 0.11), ("JCWY".to_owned(), 0.22)]);
    // the company's code is part of its profile
    let admin = s.sign_in("admin").await;
    assert_eq!(s.ok(Some(&admin), "{ company { code } }", json!({})).await["company"]["code"], "JCWY");
}
