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

/// Who a connection serves and until when its token is good.
#[derive(Debug, Clone, Copy)]
struct Session {
    user_id: Uuid,
    expires_at: i64,
}

type SessionCell = Arc<Mutex<Option<Session>>>;

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
            let session: SessionCell = Arc::default();
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
                        && let Ok(mut s) = init_session.lock()
                    {
                        *s = Some(Session { user_id: a.user_id, expires_at: claims.exp });
                    }
                    let introspection = dev || caller.actor().is_some_and(|a| a.is_staff() && a.has(Perm::SchemaRead));
                    let mut data = Data::default();
                    data.insert(caller);
                    data.insert(RequestMeta { locale, ip, request_id });
                    data.insert(ExpensiveBudget::new(state.config.limits.max_expensive_per_request));
                    data.insert(Introspection(introspection));
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
                            && let Ok(mut s) = ping_session.lock()
                            && let Some(cur) = s.as_mut()
                            && cur.user_id == claims.sub
                        {
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

/// Resolves when the connection must end: the account's sessions ended or its roles
/// changed (event bus, from any replica), or its token expired.
async fn watch_session(state: AppState, session: SessionCell) -> (u16, &'static str) {
    let mut rx = state.events.subscribe();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        let current = session.lock().ok().and_then(|s| *s);
        tokio::select! {
            _ = tick.tick() => {
                if let Some(s) = current
                    && s.expires_at <= state.clock.now().timestamp()
                {
                    return (4401, "token expired");
                }
            }
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    if let Some(s) = current
                        && ev.user_id == Some(s.user_id)
                        && ev.kind == EVENT_SESSION_REVOKED
                    {
                        return (4401, "session ended");
                    }
                }
                // a missed SESSION_REVOKED must not leave a connection serving: check the
                // account itself
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    if let Some(s) = current
                        && let Ok(account) = crate::rbac::service::account(&state, s.user_id).await
                        && account.status != crate::rbac::model::AccountStatus::Active
                    {
                        return (4401, "session ended");
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return (1001, "server stopping"),
            }
        }
    }
}
