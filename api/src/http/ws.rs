//! GET /graphql/ws: graphql-transport-ws, the access token in `connection_init`
//! (`accessToken`, or `Authorization: Bearer …`). A connection lives only as long as the
//! access behind it: it is closed at once when the account is disabled, signed out or its
//! password changes (4401), and when the token expires (4401) unless the client sent a
//! fresh token in a `ping` payload (`{"accessToken": "…"}`). When its roles change it stays
//! open: each scoped subscription re-checks the current permissions before every event it
//! delivers (`rbac::graphql::LiveGrant`) and ends when they no longer reach. Queries and
//! mutations sent over it get the HTTP limits: timeout, introspection policy, DataLoaders,
//! the expensive-operation budget.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::Data;
use std::str::FromStr;

use async_graphql::http::{WebSocket as GqlWebSocket, WebSocketProtocols, WsMessage};
use axum::Extension;
use axum::extract::ws::{CloseFrame, Message};
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt, future};
use uuid::Uuid;

use super::auth::{authenticate, client_ip};
use super::graphql::locale_of;
use super::schema::Introspection;
use super::{RequestId, Shared};
use crate::kit::gql::{ExpensiveBudget, RequestMeta};
use crate::kit::state::AppState;
use crate::rbac::model::Perm;
use crate::rbac::service::{EVENT_PERMISSIONS_CHANGED, EVENT_SESSION_REVOKED};
use tokio::sync::Notify;

/// Who a connection serves, with the token it was opened (or last refreshed) with.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    pub user_id: Uuid,
    pub company_id: Uuid,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// The connection's session, shared with every operation it runs: each query and mutation
/// is authorised with the actor as it is now, not as it was at `connection_init`.
#[derive(Clone, Default)]
pub struct WsSession(pub Arc<Mutex<Option<Session>>>);

impl WsSession {
    pub fn get(&self) -> Option<Session> {
        self.0.lock().ok().and_then(|s| *s)
    }
}

fn bearer(payload: &serde_json::Value) -> Option<String> {
    payload
        .get("accessToken")
        .and_then(|v| v.as_str())
        .or_else(|| payload.get("Authorization").and_then(|v| v.as_str()).and_then(|v| v.strip_prefix("Bearer ")))
        .map(str::to_owned)
}

pub async fn upgrade(
    State((state, schema)): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request_id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    // graphql-transport-ws (or the older graphql-ws) from Sec-WebSocket-Protocol
    let Some(protocol) = headers
        .get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').find_map(|p| WebSocketProtocols::from_str(p.trim()).ok()))
    else {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    };
    let locale = locale_of(&headers);
    let ip = client_ip(&state, &headers, peer);
    let request_id = request_id.map(|Extension(r)| r.0).unwrap_or_default();
    let l = &state.config.limits;
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(l.ws_read_buffer_bytes)
        .write_buffer_size(l.ws_write_buffer_bytes)
        .max_message_size(l.ws_max_message_bytes)
        .on_upgrade(move |socket| async move {
            let session = WsSession::default();
            let (mut sink, stream) = socket.split();
            let input = stream.take_while(|m| future::ready(m.is_ok())).filter_map(|m| {
                future::ready(match m {
                    Ok(Message::Text(t)) => Some(t.as_str().as_bytes().to_vec()),
                    Ok(Message::Binary(b)) => Some(b.to_vec()),
                    _ => None,
                })
            });
            let init_state = state.clone();
            let init_session = session.clone();
            let wake = Arc::new(Notify::new());
            let init_wake = wake.clone();
            let registered = Arc::new(Mutex::new(Registered { state: state.clone(), entry: None }));
            let init_registered = registered.clone();
            let ping_state = state.clone();
            let ping_session = session.clone();
            let gql = GqlWebSocket::new(schema.ws, input, protocol)
                .on_connection_init(move |payload: serde_json::Value| async move {
                    let state = init_state;
                    let token = bearer(&payload);
                    let (caller, app) = authenticate(&state, token.as_deref())
                        .await
                        .map_err(|e| async_graphql::Error::new(e.message(locale)))?;
                    if let Err((_, msg)) = &caller.0 {
                        return Err(async_graphql::Error::new(msg.get(locale)));
                    }
                    let dev = state.config.is_development();
                    if let (Some(a), Some(t)) = (caller.actor(), token.as_deref())
                        && let Ok(claims) = crate::auth::service::verify_access_token(&state, t)
                        && let Ok(mut s) = init_session.0.lock()
                    {
                        *s = Some(Session {
                            user_id: a.user_id,
                            company_id: a.company_id,
                            issued_at: claims.iat,
                            expires_at: claims.exp,
                        });
                        if let (Ok(w), Ok(mut r)) = (state.part::<Watchers>(), init_registered.lock())
                            && r.entry.is_none()
                        {
                            r.entry = Some((a.user_id, w.add(a.user_id, init_wake.clone())));
                        }
                    }
                    let introspection = dev || caller.actor().is_some_and(|a| a.is_staff() && a.has(Perm::SchemaRead));
                    let mut data = Data::default();
                    data.insert(caller);
                    data.insert(RequestMeta { locale, ip, request_id, app });
                    data.insert(ExpensiveBudget::new(state.config.limits.max_expensive_per_request));
                    data.insert(Introspection(introspection));
                    data.insert(init_session.clone());
                    data.insert(crate::kit::gql::Loaders::default());
                    Ok(data)
                })
                .on_ping(move |_data: Option<&Data>, payload: Option<serde_json::Value>| {
                    let token = payload.as_ref().and_then(bearer);
                    async move {
                        // a fresh, still valid token for the same user extends the connection
                        if let Some(t) = token
                            && let Ok(claims) = crate::auth::service::verify_access_token(&ping_state, &t)
                            && crate::rbac::service::load_actor(&ping_state, claims.sub, claims.cid, claims.iat)
                                .await
                                .is_ok()
                            && let Ok(mut s) = ping_session.0.lock()
                            && let Some(cur) = s.as_mut()
                            && cur.user_id == claims.sub
                        {
                            cur.issued_at = claims.iat;
                            cur.expires_at = claims.exp;
                        }
                        Ok(None)
                    }
                });
            let gql = gql.map(|msg| match msg {
                WsMessage::Text(text) => Message::Text(text.into()),
                WsMessage::Close(code, reason) => Message::Close(Some(CloseFrame { code, reason: reason.into() })),
            });
            futures_util::pin_mut!(gql);
            let ended = watch_session(state.clone(), session.clone(), wake);
            futures_util::pin_mut!(ended);
            loop {
                tokio::select! {
                    msg = gql.next() => match msg {
                        Some(m) => {
                            if sink.send(m).await.is_err() {
                                break;
                            }
                        }
                        None => break,
                    },
                    (code, reason) = &mut ended => {
                        let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                        break;
                    }
                }
            }
            drop(registered);
        })
        .into_response()
}

/// The open connections by user, so that one task follows the event bus for all of them
/// instead of every connection waking for every event (a state part).
/// A connection's registration: its number and what wakes it.
type Watcher = (u64, Arc<Notify>);

#[derive(Default)]
pub struct Watchers {
    by_user: Mutex<HashMap<Uuid, Vec<Watcher>>>,
    next: AtomicU64,
}

impl Watchers {
    fn add(&self, user: Uuid, wake: Arc<Notify>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.by_user.lock() {
            m.entry(user).or_default().push((id, wake));
        }
        id
    }

    fn remove(&self, user: Uuid, id: u64) {
        if let Ok(mut m) = self.by_user.lock()
            && let Some(v) = m.get_mut(&user)
        {
            v.retain(|(i, _)| *i != id);
            if v.is_empty() {
                m.remove(&user);
            }
        }
    }

    fn wake(&self, user: Uuid) {
        if let Ok(m) = self.by_user.lock()
            && let Some(v) = m.get(&user)
        {
            v.iter().for_each(|(_, n)| n.notify_one());
        }
    }

    fn wake_all(&self) {
        if let Ok(m) = self.by_user.lock() {
            m.values().flatten().for_each(|(_, n)| n.notify_one());
        }
    }
}

/// Wakes the connections of every account whose sessions or permissions changed (events
/// from any replica); after missed events, every connection checks itself.
pub async fn follow_sessions(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let Ok(watchers) = state.part::<Watchers>() else { return };
    let mut rx = state.events.subscribe();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            ev = rx.recv() => match ev {
                Ok(ev) if ev.kind == EVENT_SESSION_REVOKED || ev.kind == EVENT_PERMISSIONS_CHANGED => {
                    if let Some(u) = ev.user_id {
                        // the cached actor goes first, so the woken connections see the change
                        crate::rbac::service::forget_actor(&state, u);
                        watchers.wake(u);
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => watchers.wake_all(),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// A connection checks its token's expiry this often (against the server's clock), and
/// its account through the actor cache every `ACCOUNT_EVERY` checks — the safety net for a
/// missed event; events themselves wake it at once.
const RECHECK: Duration = Duration::from_secs(2);
const ACCOUNT_EVERY: u32 = 15;

/// Resolves when the connection must end: the account's sessions ended (an event from any
/// replica wakes it at once), its token expired, or its token is no longer accepted.
async fn watch_session(state: AppState, session: WsSession, wake: Arc<Notify>) -> (u16, &'static str) {
    // connections opened together do not all wake together
    let jitter = Duration::from_millis(rand::random::<u64>() % RECHECK.as_millis() as u64);
    tokio::time::sleep(jitter).await;
    let mut ticks: u32 = 0;
    loop {
        let woken = tokio::select! {
            _ = wake.notified() => true,
            _ = tokio::time::sleep(RECHECK) => false,
        };
        ticks = ticks.wrapping_add(1);
        if let Some(s) = session.get() {
            if s.expires_at <= state.clock.now().timestamp() {
                return (4401, "token expired");
            }
            if (woken || ticks.is_multiple_of(ACCOUNT_EVERY))
                && crate::rbac::service::load_actor(&state, s.user_id, s.company_id, s.issued_at).await.is_err()
            {
                return (4401, "session ended");
            }
        }
    }
}

/// Takes a connection out of the registry when it ends, however it ends.
struct Registered {
    state: AppState,
    entry: Option<(Uuid, u64)>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let (Some((user, id)), Ok(w)) = (self.entry, self.state.part::<Watchers>()) {
            w.remove(user, id);
        }
    }
}
