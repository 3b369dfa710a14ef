//! Live events over graphql-transport-ws: a subscription of the app's manifest, sent by
//! hash, on a thread of its own. When the connection drops (no signal, the server
//! restarted, a replica went away) it reconnects with backoff, signs in again with a
//! fresh token and subscribes again; the app hears of each reconnection.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::client::{SdkError, WuyeClient};
use crate::operations::{Operation, OperationKind};

/// What a subscription tells the app. Called on the subscription's own thread.
#[uniffi::export(with_foreign)]
pub trait SubscriptionListener: Send + Sync {
    /// an event: the subscription field's `data` as JSON
    fn on_next(&self, data_json: String);
    /// the server refused the subscription or one event (`code` as in `SdkError.Graphql`);
    /// a refusal of the subscription itself ends it
    fn on_error(&self, code: String, message: String);
    /// the connection dropped; reconnecting (attempt 1, 2, …)
    fn on_reconnecting(&self, attempt: u32);
}

/// A running subscription; `cancel` ends it.
#[derive(uniffi::Object)]
pub struct Subscription {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[uniffi::export]
impl Subscription {
    /// Ends the subscription and waits for its thread.
    pub fn cancel(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }

    pub fn is_running(&self) -> bool {
        self.thread.lock().ok().is_some_and(|t| t.as_ref().is_some_and(|h| !h.is_finished()))
    }
}

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// How often the client pings (with a fresh token).
const PING_EVERY: Duration = Duration::from_secs(30);
/// No frame for this long (not even the answer to a ping): the connection is dead.
const SILENT_FOR: Duration = Duration::from_secs(75);

enum Ended {
    /// cancelled by the app, or the server completed the subscription
    Done,
    /// the server refused it: no point subscribing again
    Refused,
    /// the connection dropped: reconnect
    Dropped,
}

pub(crate) fn start(
    client: Arc<WuyeClient>,
    op: Operation,
    variables: Value,
    listener: Arc<dyn SubscriptionListener>,
) -> Result<Arc<Subscription>, SdkError> {
    if op.kind() != OperationKind::Subscription {
        return Err(SdkError::Invalid { message: format!("{} is not a subscription", op.name()) });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("wuye-{}", op.name()))
        .spawn(move || run(client, op, variables, listener, flag))
        .map_err(|e| SdkError::Storage { message: e.to_string() })?;
    Ok(Arc::new(Subscription { stop, thread: Mutex::new(Some(thread)) }))
}

fn run(
    client: Arc<WuyeClient>,
    op: Operation,
    vars: Value,
    listener: Arc<dyn SubscriptionListener>,
    stop: Arc<AtomicBool>,
) {
    let mut attempt = 0u32;
    while !stop.load(Ordering::Relaxed) {
        match once(&client, op, &vars, listener.as_ref(), &stop) {
            Ok(Ended::Done) | Ok(Ended::Refused) => return,
            Err(SdkError::SignedOut) => {
                listener.on_error("UNAUTHENTICATED".into(), "signed out".into());
                return;
            }
            Ok(Ended::Dropped) | Err(_) => {}
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        attempt += 1;
        listener.on_reconnecting(attempt);
        // 0.2 s, 0.4 s, … up to 10 s, watching for cancel
        let wait = Duration::from_millis(200u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(10));
        let until = Instant::now() + wait;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn send(ws: &mut Socket, v: Value) -> Result<(), tungstenite::Error> {
    ws.send(Message::text(v.to_string()))
}

/// One connection: init, subscribe, deliver until it ends.
fn once(
    client: &WuyeClient,
    op: Operation,
    vars: &Value,
    listener: &dyn SubscriptionListener,
    stop: &AtomicBool,
) -> Result<Ended, SdkError> {
    let net = |e: tungstenite::Error| SdkError::Network { message: e.to_string() };
    let token = client.fresh_token()?;
    let url = client.ws_url();
    let mut request = url.as_str().into_client_request().map_err(net)?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", tungstenite::http::HeaderValue::from_static("graphql-transport-ws"));
    let (mut ws, _) = tungstenite::connect(request).map_err(net)?;
    // short reads, so a cancel is noticed within a second
    let tcp = match ws.get_mut() {
        MaybeTlsStream::Plain(s) => Some(&*s),
        MaybeTlsStream::Rustls(s) => Some(s.get_ref()),
        _ => None,
    };
    if let Some(t) = tcp {
        let _ = t.set_read_timeout(Some(Duration::from_secs(1)));
    }
    send(&mut ws, json!({ "type": "connection_init", "payload": { "accessToken": token } })).map_err(net)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut subscribed = false;
    let mut last_frame = Instant::now();
    let mut last_ping = Instant::now();
    loop {
        // a ping now and then carries a fresh token (the server extends the connection
        // with it) and proves the connection alive: no frame at all for a while means a
        // half-open connection (NAT expiry, a switched network), so make a new one
        if subscribed && last_ping.elapsed() >= PING_EVERY {
            let token = client.fresh_token().ok();
            let _ = send(&mut ws, json!({ "type": "ping", "payload": { "accessToken": token } }));
            last_ping = Instant::now();
        }
        if subscribed && last_frame.elapsed() >= SILENT_FOR {
            return Ok(Ended::Dropped);
        }
        if stop.load(Ordering::Relaxed) {
            let _ = send(&mut ws, json!({ "id": "1", "type": "complete" }));
            let _ = ws.close(None);
            return Ok(Ended::Done);
        }
        let msg = match ws.read() {
            Ok(m) => m,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
            {
                if !subscribed && Instant::now() > deadline {
                    return Ok(Ended::Dropped);
                }
                continue;
            }
            Err(_) => return Ok(Ended::Dropped),
        };
        last_frame = Instant::now();
        let text = match msg {
            Message::Text(t) => t.to_string(),
            Message::Close(_) => return Ok(Ended::Dropped),
            _ => continue,
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
        match v["type"].as_str() {
            Some("connection_ack") => {
                let payload = json!({
                    "operationName": op.name(),
                    "variables": vars,
                    "extensions": { "persistedQuery": { "version": 1, "sha256Hash": op.id() } },
                });
                send(&mut ws, json!({ "id": "1", "type": "subscribe", "payload": payload })).map_err(net)?;
                subscribed = true;
            }
            Some("ping") => {
                let _ = send(&mut ws, json!({ "type": "pong" }));
            }
            Some("next") => {
                let p = &v["payload"];
                match p["errors"].as_array().and_then(|e| e.first()) {
                    Some(e) if p["data"].is_null() => {
                        let code = e["extensions"]["code"].as_str().unwrap_or("INTERNAL").to_owned();
                        listener.on_error(code, e["message"].as_str().unwrap_or_default().to_owned());
                        return Ok(Ended::Refused);
                    }
                    Some(e) => listener.on_error(
                        e["extensions"]["code"].as_str().unwrap_or("INTERNAL").to_owned(),
                        e["message"].as_str().unwrap_or_default().to_owned(),
                    ),
                    None => listener.on_next(p["data"].to_string()),
                }
            }
            Some("error") => {
                let first = &v["payload"][0];
                let code = first["extensions"]["code"].as_str().unwrap_or("INTERNAL").to_owned();
                listener.on_error(code, first["message"].as_str().unwrap_or_default().to_owned());
                return Ok(Ended::Refused);
            }
            Some("complete") => return Ok(Ended::Done),
            _ => {}
        }
    }
}
