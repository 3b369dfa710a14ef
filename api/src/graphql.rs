//! Schema assembly and the GraphQL transport: POST /graphql (JSON and multipart uploads,
//! with real body limits), GET /graphql (GraphiQL), GET /graphql/ws (graphql-transport-ws,
//! the access token in `connection_init`). Errors are given their code and the
//! caller's language here, once, for every resolver.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::dataloader::DataLoader;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextSubscribe};
use async_graphql::http::{GraphiQLSource, MultipartOptions};
use async_graphql::{
    BatchRequest, BatchResponse, Context, Data, Guard, MergedObject, MergedSubscription, OutputType, ParseRequestError,
    Schema, ServerError,
};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{AppError, AppResult, Locale, Msg};
use crate::rbac::model::{Actor, Perm, UserKind};

#[derive(MergedObject, Default)]
pub struct Query(
    crate::auth::graphql::AuthQuery,
    crate::rbac::graphql::RbacQuery,
    crate::org::graphql::OrgQuery,
    crate::notify::graphql::NotifyQuery,
    crate::notify::announcements::graphql::AnnouncementQuery,
    crate::equipment::graphql::EquipmentQuery,
    crate::iot::graphql::IotQuery,
    crate::iot::alarm_graphql::AlarmQuery,
    crate::maintenance::graphql::MaintenanceQuery,
    ServiceQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    crate::auth::graphql::AuthMutation,
    crate::rbac::graphql::RbacMutation,
    crate::org::graphql::OrgMutation,
    crate::notify::graphql::NotifyMutation,
    crate::notify::announcements::graphql::AnnouncementMutation,
    crate::equipment::graphql::EquipmentMutation,
    crate::iot::graphql::IotMutation,
    crate::iot::alarm_graphql::AlarmMutation,
    crate::maintenance::graphql::MaintenanceMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(
    crate::rbac::graphql::AccountSubscription,
    crate::notify::graphql::NotifySubscription,
    crate::iot::graphql::IotSubscription,
    crate::iot::alarm_graphql::AlarmSubscription,
);

pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// Two builds of one schema. An extension wraps every field resolution in its hooks, so
/// the one that localizes subscription errors sits only on the WebSocket side; HTTP
/// responses are localized in the handler (it cost ~10% of the houses benchmark).
#[derive(Clone)]
pub struct Schemas {
    pub http: AppSchema,
    pub ws: AppSchema,
}

pub fn build_schema(state: AppState) -> Schemas {
    let limits = state.config.limits.clone();
    let base = || {
        Schema::build(Query::default(), Mutation::default(), Subscription::default())
            .data(state.clone())
            .limit_depth(limits.max_depth)
            .limit_complexity(limits.max_complexity)
    };
    Schemas { http: base().finish(), ws: base().extension(LocalizeSubscriptions).finish() }
}

/// The schema as SDL, for `wuye export-schema` and the drift test.
pub fn sdl() -> String {
    Schema::build(Query::default(), Mutation::default(), Subscription::default()).finish().sdl()
}

/// What a request knows about its caller.
pub struct RequestCtx {
    pub auth: Result<Option<Arc<Actor>>, (&'static str, Msg)>,
    pub locale: Locale,
    pub ip: String,
}

pub trait CtxExt {
    fn state(&self) -> &AppState;
    fn req(&self) -> &RequestCtx;
    /// The signed-in caller, or UNAUTHENTICATED.
    fn actor(&self) -> AppResult<Arc<Actor>>;
}

impl CtxExt for Context<'_> {
    fn state(&self) -> &AppState {
        self.data_unchecked::<AppState>()
    }
    fn req(&self) -> &RequestCtx {
        self.data_unchecked::<RequestCtx>()
    }
    fn actor(&self) -> AppResult<Arc<Actor>> {
        match &self.req().auth {
            Ok(Some(a)) => Ok(a.clone()),
            Ok(None) => Err(AppError::unauthenticated()),
            Err((reason, msg)) => Err(AppError::Unauthenticated { reason, msg: msg.clone() }),
        }
    }
}

/// `#[graphql(guard = "Perm::UserRead")]`: the caller holds the permission (in some scope;
/// the service then checks the rows).
impl Guard for Perm {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        ctx.actor()?.require(*self)?;
        Ok(())
    }
}

// ---- connections ---------------------------------------------------------------------

pub type Conn<T> = Connection<String, T, EmptyFields, EmptyFields>;

/// Page arguments: `first` within the limits, `after` an opaque cursor from a previous page.
pub struct Page {
    pub after: Option<Uuid>,
    pub limit: usize,
}

impl Page {
    pub fn new(ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> AppResult<Page> {
        let l = &ctx.state().config.limits;
        let limit = crate::types::page_size(first, l.default_page_size, l.max_page_size)?;
        let after = match after {
            None => None,
            Some(c) => Some(
                Uuid::parse_str(&c)
                    .map_err(|_| AppError::validation("after", Msg::new("分页游标无效", "Invalid cursor")))?,
            ),
        };
        Ok(Page { after, limit })
    }

    /// Fetch `limit + 1` rows and pass them here: the extra row only tells there is a next page.
    pub fn connection<R, N: OutputType>(
        &self,
        mut rows: Vec<R>,
        id: impl Fn(&R) -> Uuid,
        node: impl Fn(R) -> N,
    ) -> Conn<N> {
        let has_next = rows.len() > self.limit;
        rows.truncate(self.limit);
        let mut c = Connection::new(self.after.is_some(), has_next);
        c.edges.extend(rows.into_iter().map(|r| Edge::new(id(&r).simple().to_string(), node(r))));
        c
    }

    pub fn fetch(&self) -> usize {
        self.limit + 1
    }
}

/// The DataLoaders of one request: batched relation lookups whose cache dies with it.
pub struct Loaders {
    pub assignments: DataLoader<crate::rbac::graphql::AssignmentsLoader>,
    pub residents: DataLoader<crate::org::graphql::ResidentsLoader>,
    pub units: DataLoader<crate::org::graphql::UnitsLoader>,
    pub team: DataLoader<crate::org::graphql::TeamLoader>,
}

impl Loaders {
    pub fn new(state: &AppState) -> Self {
        Loaders {
            assignments: DataLoader::new(crate::rbac::graphql::AssignmentsLoader(state.clone()), tokio::spawn),
            residents: DataLoader::new(crate::org::graphql::ResidentsLoader(state.clone()), tokio::spawn),
            units: DataLoader::new(crate::org::graphql::UnitsLoader(state.clone()), tokio::spawn),
            team: DataLoader::new(crate::org::graphql::TeamLoader(state.clone()), tokio::spawn),
        }
    }
}

/// Rows of a batched relation lookup, grouped by the key they belong to.
pub fn group_by<K: std::hash::Hash + Eq, V>(
    rows: Vec<V>,
    key: impl Fn(&V) -> K,
) -> std::collections::HashMap<K, Vec<V>> {
    let mut map: std::collections::HashMap<K, Vec<V>> = std::collections::HashMap::new();
    for r in rows {
        map.entry(key(&r)).or_default().push(r);
    }
    map
}

pub fn loader_error(e: String) -> AppError {
    AppError::internal(std::io::Error::other(e))
}

// ---- service config ------------------------------------------------------------------

#[derive(async_graphql::SimpleObject)]
pub struct ServiceConfig {
    pub environment: String,
    pub max_body_bytes: u64,
    pub max_upload_bytes: u64,
    pub max_upload_files: u64,
    pub max_query_depth: u64,
    pub max_query_complexity: u64,
    pub max_batch: u64,
    pub request_timeout_secs: u64,
    pub default_page_size: u64,
    pub max_page_size: u64,
    pub max_import_lines: u64,
    pub access_token_ttl_secs: u64,
    pub sms_code_resend_secs: u64,
    pub password_policy: String,
}

#[derive(Default)]
pub struct ServiceQuery;

#[async_graphql::Object]
impl ServiceQuery {
    /// The limits this server enforces, so clients can stay within them.
    async fn service_config(&self, ctx: &Context<'_>) -> ServiceConfig {
        let c = &ctx.state().config;
        let l = &c.limits;
        ServiceConfig {
            environment: if c.is_development() { "development" } else { "production" }.into(),
            max_body_bytes: l.max_body_bytes as u64,
            max_upload_bytes: l.max_upload_bytes as u64,
            max_upload_files: l.max_upload_files as u64,
            max_query_depth: l.max_depth as u64,
            max_query_complexity: l.max_complexity as u64,
            max_batch: l.max_batch as u64,
            request_timeout_secs: l.request_timeout_secs,
            default_page_size: l.default_page_size as u64,
            max_page_size: l.max_page_size as u64,
            max_import_lines: l.max_import_lines as u64,
            access_token_ttl_secs: c.auth.access_token_ttl_secs,
            sms_code_resend_secs: c.auth.otp_resend_secs,
            password_policy: match ctx.req().locale {
                Locale::Zh => "8至64位，须同时包含字母和数字".into(),
                Locale::En => "8 to 64 characters with letters and digits".into(),
            },
        }
    }
}

// ---- errors in the caller's language --------------------------------------------------

/// Gives every error a stable `extensions.code` and the message in `locale`.
pub fn localize(errors: &mut [ServerError], locale: Locale) -> Vec<&'static str> {
    let mut codes = Vec::with_capacity(errors.len());
    for err in errors.iter_mut() {
        let mapped = err.source::<AppError>().map(|app| {
            app.log_if_internal();
            (app.code(), app.message(locale).into_owned(), app.extensions())
        });
        let code = if let Some((code, message, extensions)) = mapped {
            err.message = message;
            let ext = err.extensions.get_or_insert_with(Default::default);
            for (k, v) in extensions {
                ext.set(k, async_graphql::Value::from_json(v).unwrap_or(async_graphql::Value::Null));
            }
            ext.set("code", code);
            code
        } else if let Some(existing) = err.extensions.as_ref().and_then(|e| e.get("code")) {
            match existing {
                async_graphql::Value::String(s) if s == "UNAUTHENTICATED" => "UNAUTHENTICATED",
                _ => "INTERNAL",
            }
        } else {
            // parse, validation, depth/complexity and input-coercion errors: the query is wrong
            let field = coerced_field(&err.message);
            let ext = err.extensions.get_or_insert_with(Default::default);
            ext.set("code", "VALIDATION");
            if let Some(f) = field {
                ext.set("field", f);
            }
            "VALIDATION"
        };
        codes.push(code);
    }
    codes
}

/// The input field named in an async-graphql coercion error
/// (`Invalid value for argument "input.buildingArea", …` → `buildingArea`).
fn coerced_field(message: &str) -> Option<String> {
    let rest = message.split_once("argument \"")?.1;
    let path = rest.split('"').next()?;
    path.rsplit('.').next().map(str::to_owned)
}

struct LocalizeSubscriptions;

impl ExtensionFactory for LocalizeSubscriptions {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LocalizeSubscriptions)
    }
}

#[async_trait::async_trait]
impl Extension for LocalizeSubscriptions {
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, async_graphql::Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, async_graphql::Response> {
        let locale = ctx.data_opt::<RequestCtx>().map(|r| r.locale).unwrap_or_default();
        next.run(ctx, stream)
            .map(move |mut r| {
                localize(&mut r.errors, locale);
                r
            })
            .boxed()
    }
}

// ---- metrics --------------------------------------------------------------------------

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// One Prometheus recorder per process (tests run several servers in one process).
pub fn metrics_handle() -> &'static PrometheusHandle {
    METRICS.get_or_init(|| {
        let buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let builder = PrometheusBuilder::new();
        let builder =
            match builder.set_buckets_for_metric(Matcher::Full("graphql_request_duration_seconds".into()), &buckets) {
                Ok(b) => b,
                Err(_) => PrometheusBuilder::new(),
            };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed");
        }
        handle
    })
}

/// Operation names become metric labels: only short, plain names; others are "other".
fn op_label(name: Option<&str>) -> String {
    match name {
        Some(n) if !n.is_empty() && n.len() <= 40 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            n.to_owned()
        }
        Some(_) => "other".into(),
        None => "anonymous".into(),
    }
}

// ---- HTTP ----------------------------------------------------------------------------

type Shared = (AppState, Schemas);

pub fn routes(state: AppState, schema: Schemas) -> Router {
    Router::new()
        .route("/graphql", get(graphiql).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .with_state((state, schema))
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql/ws").title("wuye 物业").finish())
}

fn client_ip(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> String {
    if state.config.trust_forwarded_for
        && let Some(first) =
            headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).and_then(|v| v.split(',').next())
        && let Ok(ip) = first.trim().parse::<std::net::IpAddr>()
    {
        return ip.to_string();
    }
    peer.ip().to_string()
}

/// Verifies a bearer token and loads its actor. A bad token is remembered, not fatal:
/// public operations (sign-in) still work; protected ones answer UNAUTHENTICATED.
pub async fn authenticate(
    state: &AppState,
    token: Option<&str>,
) -> AppResult<Result<Option<Arc<Actor>>, (&'static str, Msg)>> {
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Ok(None));
    };
    let claims = match crate::auth::service::verify_access_token(state, token) {
        Ok(c) => c,
        Err(AppError::Unauthenticated { reason, msg }) => return Ok(Err((reason, msg))),
        Err(e) => return Err(e),
    };
    match crate::rbac::service::load_actor(state, claims.sub, claims.cid).await {
        Ok(a) => Ok(Ok(Some(a))),
        Err(AppError::Unauthenticated { reason, msg }) => Ok(Err((reason, msg))),
        Err(e) => Err(e),
    }
}

fn error_response(status: StatusCode, err: AppError, locale: Locale) -> Response {
    let mut errors = vec![ServerError::new(err.to_string(), None)];
    errors[0].source = Some(Arc::new(err));
    localize(&mut errors, locale);
    (status, axum::Json(serde_json::json!({ "errors": errors }))).into_response()
}

async fn graphql_post(
    State((state, schema)): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let locale = Locale::from_accept_language(headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    let limits = &state.config.limits;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let multipart = content_type.as_deref().is_some_and(|c| c.starts_with("multipart/"));
    let max = if multipart { limits.max_multipart_bytes() } else { limits.max_body_bytes };
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            AppError::validation(
                "body",
                Msg::owned(format!("请求体超过{max}字节上限"), format!("Request body exceeds the {max}-byte limit")),
            ),
            locale,
        )
    };
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > max)
    {
        metrics::counter!("graphql_rejected_total", "reason" => "body_too_large").increment(1);
        return too_large();
    }
    // the async-graphql extractor would read any length: read it ourselves, bounded
    let bytes = match axum::body::to_bytes(body, max).await {
        Ok(b) => b,
        Err(_) => {
            metrics::counter!("graphql_rejected_total", "reason" => "body_too_large").increment(1);
            return too_large();
        }
    };
    let opts =
        MultipartOptions::default().max_file_size(limits.max_upload_bytes).max_num_files(limits.max_upload_files);
    let batch =
        match async_graphql::http::receive_batch_body(content_type, futures_util::io::Cursor::new(bytes), opts).await {
            Ok(b) => b,
            Err(ParseRequestError::PayloadTooLarge) => return too_large(),
            Err(e) => {
                let msg = Msg::owned(format!("无法解析请求：{e}"), format!("Cannot parse the request: {e}"));
                return error_response(StatusCode::BAD_REQUEST, AppError::validation("body", msg), locale);
            }
        };
    if let BatchRequest::Batch(v) = &batch
        && v.len() > limits.max_batch
    {
        let msg = Msg::owned(
            format!("批量请求最多{}个操作", limits.max_batch),
            format!("At most {} operations per batch", limits.max_batch),
        );
        return error_response(StatusCode::BAD_REQUEST, AppError::validation("body", msg), locale);
    }
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let auth = match authenticate(&state, bearer).await {
        Ok(a) => a,
        Err(e) => return error_response(StatusCode::SERVICE_UNAVAILABLE, e, locale),
    };
    let staff = matches!(&auth, Ok(Some(a)) if a.kind == UserKind::Staff);
    let introspection = state.config.is_development() || staff;
    let user = match &auth {
        Ok(Some(a)) => a.user_id.to_string(),
        _ => "-".into(),
    };
    let ip = client_ip(&state, &headers, peer);
    let op = match &batch {
        BatchRequest::Single(r) => op_label(r.operation_name.as_deref()),
        BatchRequest::Batch(_) => "batch".into(),
    };
    let prepare = |mut r: async_graphql::Request| {
        r = r.data(RequestCtx { auth: auth.clone(), locale, ip: ip.clone() });
        r = r.data(Loaders::new(&state));
        if !introspection {
            r = r.disable_introspection();
        }
        r
    };
    let batch = match batch {
        BatchRequest::Single(r) => BatchRequest::Single(prepare(r)),
        BatchRequest::Batch(v) => BatchRequest::Batch(v.into_iter().map(prepare).collect()),
    };
    let timeout = Duration::from_secs(limits.request_timeout_secs);
    let mut resp = match tokio::time::timeout(timeout, schema.http.execute_batch(batch)).await {
        Ok(r) => r,
        Err(_) => {
            metrics::counter!("graphql_errors_total", "code" => "UNAVAILABLE").increment(1);
            return error_response(StatusCode::SERVICE_UNAVAILABLE, AppError::Unavailable("timeout"), locale);
        }
    };
    let mut codes = Vec::new();
    match &mut resp {
        BatchResponse::Single(r) => codes.extend(localize(&mut r.errors, locale)),
        BatchResponse::Batch(v) => {
            for r in v {
                codes.extend(localize(&mut r.errors, locale));
            }
        }
    }
    let elapsed = started.elapsed();
    metrics::counter!("graphql_requests_total", "operation" => op.clone()).increment(1);
    metrics::histogram!("graphql_request_duration_seconds", "operation" => op.clone()).record(elapsed.as_secs_f64());
    for c in &codes {
        metrics::counter!("graphql_errors_total", "code" => *c).increment(1);
    }
    tracing::info!(operation = %op, user = %user, ms = elapsed.as_secs_f64() * 1000.0, errors = ?codes, "graphql");
    let body = match serde_json::to_vec(&resp) {
        Ok(b) => b,
        Err(e) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, AppError::internal(e), locale),
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn graphql_ws(
    State((state, schema)): State<Shared>,
    protocol: GraphQLProtocol,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let locale = Locale::from_accept_language(headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    let ip = String::new();
    let l = &state.config.limits;
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(l.ws_read_buffer_bytes)
        .write_buffer_size(l.ws_write_buffer_bytes)
        .max_message_size(l.ws_max_message_bytes)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema.ws, protocol)
                .on_connection_init(move |payload: serde_json::Value| async move {
                    let token = payload
                        .get("accessToken")
                        .and_then(|v| v.as_str())
                        .or_else(|| {
                            payload
                                .get("Authorization")
                                .and_then(|v| v.as_str())
                                .and_then(|v| v.strip_prefix("Bearer "))
                        })
                        .map(str::to_owned);
                    let auth = authenticate(&state, token.as_deref())
                        .await
                        .map_err(|e| async_graphql::Error::new(e.message(locale)))?;
                    if let Err((_, msg)) = &auth {
                        return Err(async_graphql::Error::new(msg.get(locale)));
                    }
                    let mut data = Data::default();
                    data.insert(RequestCtx { auth, locale, ip });
                    Ok(data)
                })
                .serve()
        })
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coercion_errors_name_the_field() {
        let m = r#"Invalid value for argument "input.buildingArea", expected type "Decimal""#;
        assert_eq!(coerced_field(m).as_deref(), Some("buildingArea"));
        assert_eq!(coerced_field("Unknown field"), None);
    }

    #[test]
    fn op_labels_are_bounded() {
        assert_eq!(op_label(Some("Me")), "Me");
        assert_eq!(op_label(Some("x y")), "other");
        assert_eq!(op_label(Some(&"a".repeat(41))), "other");
        assert_eq!(op_label(None), "anonymous");
    }
}
