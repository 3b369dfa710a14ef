//! Mosquitto's dynamic-security plugin, driven over its control topic: commands go out as
//! one JSON document on `$CONTROL/dynamic-security/v1`, the answers come back on
//! `…/v1/response`, matched to the waiting caller by the correlation data we sent. (EMQX
//! offers the same through its REST API: `/api/v5/authentication/…/users` and
//! `/api/v5/authorization/sources/built_in_database/rules/users`.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rumqttc::{AsyncClient, QoS};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::model::DeviceAcl;

pub const CONTROL_TOPIC: &str = "$CONTROL/dynamic-security/v1";
pub const RESPONSE_TOPIC: &str = "$CONTROL/dynamic-security/v1/response";
/// The role every server account gets: publish commands, read every device topic.
pub const SERVER_ROLE: &str = "wuye-server";

#[derive(Debug, thiserror::Error)]
pub enum DynsecError {
    #[error("the broker did not answer the dynamic-security command")]
    Timeout,
    #[error("the broker connection is not available: {0}")]
    Client(#[from] rumqttc::ClientError),
    #[error("the broker refused {command}: {error}")]
    Refused { command: String, error: String },
}

/// One answer of the plugin.
#[derive(Debug, Clone, Deserialize)]
pub struct Response {
    pub command: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default, rename = "correlationData")]
    pub correlation: Option<String>,
}

#[derive(Deserialize)]
struct Responses {
    responses: Vec<Response>,
}

/// Callers waiting for the plugin's answers (a state part; the command connection hands
/// every message of the response topic to `on_response`).
pub struct Dynsec {
    waiting: Mutex<HashMap<String, oneshot::Sender<Vec<Response>>>>,
    /// true while the command connection is subscribed to the response topic
    ready: tokio::sync::watch::Sender<bool>,
}

impl Default for Dynsec {
    fn default() -> Self {
        Dynsec { waiting: Mutex::default(), ready: tokio::sync::watch::Sender::new(false) }
    }
}

impl Dynsec {
    /// The command connection's subscription to the response topic came up (or went down):
    /// commands sent before it would have their answers lost.
    pub fn set_ready(&self, ready: bool) {
        self.ready.send_replace(ready);
    }

    /// A message on the response topic: the answers to one of our command documents (or
    /// another replica's, which nobody here waits for).
    pub fn on_response(&self, payload: &[u8]) {
        let Ok(r) = serde_json::from_slice::<Responses>(payload) else { return };
        let Some(corr) = r.responses.iter().find_map(|x| x.correlation.clone()) else { return };
        let waiter = self.waiting.lock().ok().and_then(|mut m| m.remove(&corr));
        if let Some(tx) = waiter {
            let _ = tx.send(r.responses);
        }
    }

    /// Sends the commands as one document and waits (5 s at most) for the answers.
    pub async fn run(&self, client: &AsyncClient, mut commands: Vec<Value>) -> Result<Vec<Response>, DynsecError> {
        // a server that has just started (or reconnected) waits for its subscription first
        let mut ready = self.ready.subscribe();
        if tokio::time::timeout(Duration::from_secs(10), ready.wait_for(|r| *r)).await.is_err() {
            return Err(DynsecError::Timeout);
        }
        let corr = uuid::Uuid::now_v7().simple().to_string();
        for c in &mut commands {
            c["correlationData"] = json!(corr);
        }
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.waiting.lock() {
            m.insert(corr.clone(), tx);
        }
        let body = json!({ "commands": commands }).to_string();
        let sent = client.publish(CONTROL_TOPIC, QoS::AtLeastOnce, false, body).await;
        let answer = match sent {
            Ok(()) => tokio::time::timeout(Duration::from_secs(5), rx).await.ok().and_then(Result::ok),
            Err(e) => {
                self.forget(&corr);
                return Err(e.into());
            }
        };
        self.forget(&corr);
        answer.ok_or(DynsecError::Timeout)
    }

    fn forget(&self, corr: &str) {
        if let Ok(mut m) = self.waiting.lock() {
            m.remove(corr);
        }
    }
}

/// Errors that leave the wanted state in place (deleting what is gone, creating what exists).
fn harmless(r: &Response) -> bool {
    match (r.command.as_str(), r.error.as_deref()) {
        (_, None) => true,
        ("deleteClient" | "deleteRole", Some(e)) => e.contains("not found"),
        ("createRole", Some(e)) => e.contains("already exists"),
        ("addClientRole", Some(e)) => e.contains("already"),
        _ => false,
    }
}

fn check(responses: Vec<Response>) -> Result<(), DynsecError> {
    match responses.into_iter().find(|r| !harmless(r)) {
        Some(r) => Err(DynsecError::Refused { command: r.command, error: r.error.unwrap_or_default() }),
        None => Ok(()),
    }
}

fn role_name(username: &str) -> String {
    format!("wuye-device:{username}")
}

/// The device's account with a new password: any earlier account of that name is deleted
/// first (which also disconnects a device still using the old password).
pub async fn provision(
    d: &Dynsec,
    client: &AsyncClient,
    username: &str,
    password: &str,
    acl: &DeviceAcl,
) -> Result<(), DynsecError> {
    let role = role_name(username);
    let mut acls: Vec<Value> = acl
        .publish
        .iter()
        .map(|t| json!({ "acltype": "publishClientSend", "topic": t, "priority": 0, "allow": true }))
        .collect();
    acls.extend(acl.subscribe.iter().flat_map(|t| {
        [
            json!({ "acltype": "subscribeLiteral", "topic": t, "priority": 0, "allow": true }),
            json!({ "acltype": "publishClientReceive", "topic": t, "priority": 0, "allow": true }),
        ]
    }));
    let commands = vec![
        json!({ "command": "deleteClient", "username": username }),
        json!({ "command": "deleteRole", "rolename": role }),
        json!({ "command": "createRole", "rolename": role, "acls": acls }),
        // the account connects only with its username as client id: it can never resume a
        // session of the server's (an ingest slot) or of another device
        json!({
            "command": "createClient", "username": username, "password": password, "clientid": username,
            "textname": "wuye device", "roles": [{ "rolename": role, "priority": 0 }]
        }),
    ];
    check(d.run(client, commands).await?)
}

/// Removes the device's account (connected sessions of it are disconnected).
pub async fn revoke(d: &Dynsec, client: &AsyncClient, username: &str) -> Result<(), DynsecError> {
    let commands = vec![
        json!({ "command": "deleteClient", "username": username }),
        json!({ "command": "deleteRole", "rolename": role_name(username) }),
    ];
    check(d.run(client, commands).await?)
}

/// The server's own account may publish commands and read every device topic; devices and
/// anonymous clients get nothing by default.
pub async fn ensure_server_role(
    d: &Dynsec,
    client: &AsyncClient,
    server_username: &str,
    root: &str,
    share_group: &str,
) -> Result<(), DynsecError> {
    let acls = json!([
        { "acltype": "publishClientSend", "topic": format!("{root}/+/+/command"), "priority": 0, "allow": true },
        { "acltype": "subscribePattern", "topic": format!("{root}/#"), "priority": 0, "allow": true },
        { "acltype": "subscribePattern", "topic": format!("$share/{share_group}/{root}/#"), "priority": 0, "allow": true },
        { "acltype": "publishClientReceive", "topic": format!("{root}/#"), "priority": 0, "allow": true },
    ]);
    let commands = vec![
        json!({ "command": "setDefaultACLAccess", "acls": [
            { "acltype": "publishClientSend", "allow": false },
            { "acltype": "publishClientReceive", "allow": false },
            { "acltype": "subscribe", "allow": false },
        ]}),
        json!({ "command": "createRole", "rolename": SERVER_ROLE }),
        json!({ "command": "modifyRole", "rolename": SERVER_ROLE, "acls": acls }),
        json!({ "command": "addClientRole", "username": server_username, "rolename": SERVER_ROLE, "priority": 10 }),
    ];
    check(d.run(client, commands).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_reach_their_caller() {
        let d = Dynsec::default();
        let (tx, mut rx) = oneshot::channel();
        d.waiting.lock().unwrap().insert("c1".into(), tx);
        d.on_response(
            br#"{"responses":[{"command":"createClient","error":"Client already exists","correlationData":"c2"}]}"#,
        );
        assert!(rx.try_recv().is_err());
        d.on_response(br#"{"responses":[{"command":"deleteClient","error":"Client not found","correlationData":"c1"},{"command":"createClient","correlationData":"c1"}]}"#);
        let got = rx.try_recv().unwrap();
        assert_eq!(got.len(), 2);
        assert!(check(got).is_ok());
        let refused =
            vec![Response { command: "createClient".into(), error: Some("Invalid".into()), correlation: None }];
        assert!(check(refused).is_err());
    }
}
