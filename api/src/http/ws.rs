//! GET /graphql/ws: graphql-transport-ws, the access token in `connection_init`
//! (`accessToken`, or `Authorization: Bearer …`). A connection lives only as long as the
//! access behind it: it is closed at once when the account is disabled, signed out or its
//! password changes (4401), and when the token expires (4401) unless the client sent a
//! fresh token in a `ping` payload (`{"accessToken": "…"}`). When its roles change it stays
//! open: each scoped subscription re-checks the current permissions before every event it
//! delivers (`rbac::graphql::LiveGrant`) and ends when they no longer reach. Queries and
//! mutations sent over it get the HTTP limits: timeout, introspection policy, DataLoaders,
//! the expensive-operation budget.

use std::net::SocketAddr;
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
use super::schema::{Introspection, loaders_into};
use super::{RequestId, Shared};
use crate::kit::gql::{ExpensiveBudget, RequestMeta};
use crate::kit::state::AppState;
use crate::rbac::model::Perm;
use crate::rbac::service::EVENT_SESSION_REVOKED;

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
            let ping_state = state.clone();
            let ping_session = session.clone();
            let gql = GqlWebSocket::new(schema.ws, input, protocol)
                .on_connection_init(move |payload: serde_json::Value| async move {
                    let state = init_state;
                    let token = bearer(&payload);
                    let caller = authenticate(&state, token.as_deref())
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
                    }
                    let introspection = dev || caller.actor().is_some_and(|a| a.is_staff() && a.has(Perm::SchemaRead));
                    let mut data = Data::default();
                    data.insert(caller);
                    data.insert(RequestMeta { locale, ip, request_id });
                    data.insert(ExpensiveBudget::new(state.config.limits.max_expensive_per_request));
                    data.insert(Introspection(introspection));
                    data.insert(init_session.clone());
                    loaders_into(&mut data, &state);
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
            let ended = watch_session(state.clone(), session.clone());
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
        })
        .into_response()
}

/// Resolves when the connection must end: the account's sessions ended (event bus, from
/// any replica), its token expired, or — checked every half second from the actor cache,
/// which catches what a missed event would hide — its token is no longer accepted.
async fn watch_session(state: AppState, session: WsSession) -> (u16, &'static str) {
    let mut rx = state.events.subscribe();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Some(s) = session.get() {
                    if s.expires_at <= state.clock.now().timestamp() {
                        return (4401, "token expired");
                    }
                    if crate::rbac::service::load_actor(&state, s.user_id, s.company_id, s.issued_at).await.is_err() {
                        return (4401, "session ended");
                    }
                }
            }
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    if let Some(s) = session.get()
                        && ev.user_id == Some(s.user_id)
                        && ev.kind == EVENT_SESSION_REVOKED
                    {
                        return (4401, "session ended");
                    }
                }
                // missed events: the next tick checks the account itself
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return (1001, "server stopping"),
            }
        }
    }
}
