//! The schema: every domain's queries, mutations and subscriptions merged, the service
//! configuration query, and the per-request data (caller, metadata, DataLoaders).

use std::sync::Arc;
use std::time::Duration;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest};
use async_graphql::{
    Context, MergedObject, MergedSubscription, Request, Schema, ServerError, ServerResult, SimpleObject, ValidationMode,
};

use super::localize::LocalizeSubscriptions;
use super::persisted::Persisted;
use super::ws::WsSession;
use crate::kit::error::Locale;
use crate::kit::gql::StateExt;
use crate::kit::state::AppState;
use crate::rbac::graphql::Caller;

/// Everything a signed-in user may read; each field says which permission it needs.
#[derive(MergedObject, Default)]
pub struct Query(
    crate::auth::graphql::AuthQuery,
    crate::rbac::graphql::RbacQuery,
    crate::org::company::graphql::CompanyQuery,
    crate::org::estate::graphql::EstateQuery,
    crate::org::owners::graphql::OwnersQuery,
    crate::notify::graphql::NotifyQuery,
    crate::notify::announcements::graphql::AnnouncementQuery,
    crate::equipment::graphql::EquipmentQuery,
    crate::iot::telemetry::graphql::TelemetryQuery,
    crate::iot::commands::graphql::CommandQuery,
    crate::iot::alarms::graphql::AlarmQuery,
    crate::iot::history::graphql::HistoryQuery,
    crate::maintenance::plans::graphql::MaintenanceQuery,
    crate::maintenance::patrols::graphql::PatrolQuery,
    crate::workorders::graphql::WorkOrderQuery,
    crate::feedback::graphql::FeedbackQuery,
    crate::billing::fees::graphql::FeeQuery,
    crate::billing::meters::graphql::MeterQuery,
    crate::billing::bills::graphql::BillQuery,
    crate::billing::pay::graphql::PayQuery,
    crate::billing::fees::graphql::DiscountQuery,
    crate::billing::meters::graphql::SharedMeterQuery,
    crate::billing::prepaid::graphql::PrepaidQuery,
    crate::billing::print::graphql::PrintQuery,
    crate::people::staff::graphql::StaffQuery,
    crate::people::attendance::graphql::AttendanceQuery,
    crate::people::training::graphql::TrainingQuery,
    crate::people::courses::graphql::CourseQuery,
    crate::billing::bills::graphql::BillReportQuery,
    crate::rbac::graphql::ApprovalQuery,
    ServiceQuery,
);

/// Every change; each takes one `input` (with an optional `clientMutationId` that makes a
/// retry apply once) and returns a payload.
#[derive(MergedObject, Default)]
pub struct Mutation(
    crate::auth::graphql::AuthMutation,
    crate::rbac::graphql::RbacMutation,
    crate::files::graphql::FileMutation,
    crate::org::company::graphql::CompanyMutation,
    crate::org::estate::graphql::EstateMutation,
    crate::org::owners::graphql::OwnersMutation,
    crate::notify::graphql::NotifyMutation,
    crate::notify::announcements::graphql::AnnouncementMutation,
    crate::equipment::graphql::EquipmentMutation,
    crate::iot::commands::graphql::CommandMutation,
    crate::iot::broker::graphql::BrokerMutation,
    crate::iot::alarms::graphql::AlarmMutation,
    crate::maintenance::plans::graphql::MaintenanceMutation,
    crate::maintenance::patrols::graphql::PatrolMutation,
    crate::workorders::graphql::WorkOrderMutation,
    crate::feedback::graphql::FeedbackMutation,
    crate::billing::fees::graphql::FeeMutation,
    crate::billing::meters::graphql::MeterMutation,
    crate::billing::bills::graphql::BillMutation,
    crate::billing::pay::graphql::PayMutation,
    crate::billing::fees::graphql::DiscountMutation,
    crate::billing::meters::graphql::SharedMeterMutation,
    crate::billing::prepaid::graphql::PrepaidMutation,
    crate::billing::print::graphql::PrintMutation,
    crate::people::staff::graphql::StaffMutation,
    crate::people::attendance::graphql::AttendanceMutation,
    crate::people::training::graphql::TrainingMutation,
    crate::people::courses::graphql::CourseMutation,
    crate::rbac::graphql::ApprovalMutation,
);

/// Live events over graphql-transport-ws (`/graphql/ws`, the access token in `connection_init`).
#[derive(MergedSubscription, Default)]
pub struct Subscription(
    crate::rbac::graphql::AccountSubscription,
    crate::notify::graphql::NotifySubscription,
    crate::iot::telemetry::graphql::TelemetrySubscription,
    crate::iot::alarms::graphql::AlarmSubscription,
    crate::workorders::graphql::WorkOrderSubscription,
);

pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// Two builds of one schema. An extension wraps every field resolution in its hooks, so
/// the one that localizes subscription errors sits only on the WebSocket side; HTTP
/// responses are localized in the handler (it cost ~10% of the houses benchmark).
#[derive(Clone)]
pub struct Schemas {
    pub http: AppSchema,
    pub ws: AppSchema,
    /// for introspection queries only (run with `only_introspection`): the standard
    /// introspection query that GraphiQL and schema tools send nests deeper than data
    /// queries may, so its depth is counted apart
    pub introspection: AppSchema,
    /// runs manifest documents only: they were checked against the schema when the
    /// manifests were built (and by the operations test), so each request skips the
    /// document rules and keeps the depth and complexity limits; variables are still
    /// checked as they are read
    pub manifest: AppSchema,
    /// the apps' operations, parsed once (`persisted.rs`)
    pub persisted: Arc<Persisted>,
}

/// How deep an introspection query may nest (the standard one needs 13).
const INTROSPECTION_DEPTH: usize = 20;

pub fn build(state: AppState) -> Schemas {
    let limits = state.config.limits.clone();
    let base = || {
        Schema::build(Query::default(), Mutation::default(), Subscription::default())
            .data(state.clone())
            .limit_depth(limits.max_depth)
            .limit_complexity(limits.max_complexity)
    };
    let introspection = Schema::build(Query::default(), Mutation::default(), Subscription::default())
        .data(state.clone())
        .limit_depth(INTROSPECTION_DEPTH)
        .limit_complexity(limits.max_complexity)
        .finish();
    let persisted = Arc::new(Persisted::embedded(state.config.persisted_only()));
    let ws = base()
        .extension(LocalizeSubscriptions)
        .extension(WsLimits { timeout: Duration::from_secs(limits.request_timeout_secs), persisted: persisted.clone() })
        .finish();
    let manifest = base().validation_mode(ValidationMode::Fast).finish();
    Schemas { http: base().finish(), ws, introspection, manifest, persisted }
}

/// The schema as SDL, for `wuye export-schema` and the drift test.
pub fn sdl() -> String {
    Schema::build(Query::default(), Mutation::default(), Subscription::default()).finish().sdl()
}

/// Whether a document only asks the schema about itself: every operation is a query whose
/// top-level fields are all `__schema`, `__type` or `__typename` (parsed only when the
/// cheap test hits). A data query that also selects `__typename` is not one.
pub fn is_introspection(query: &str) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationDefinition, OperationType, Selection};
    if !(query.contains("__schema") || query.contains("__type")) {
        return false;
    }
    let Ok(doc) = async_graphql::parser::parse_query(query) else { return false };
    let only_meta = |op: &OperationDefinition| {
        op.ty == OperationType::Query
            && op.selection_set.node.items.iter().all(|s| match &s.node {
                Selection::Field(f) => matches!(f.node.name.node.as_str(), "__schema" | "__type" | "__typename"),
                _ => false,
            })
    };
    match &doc.operations {
        DocumentOperations::Single(op) => only_meta(&op.node),
        DocumentOperations::Multiple(ops) => ops.values().all(|op| only_meta(&op.node)),
    }
}

/// The DataLoaders of one request, made on first use (`kit::gql::Loaders`).
pub fn with_loaders(r: Request) -> Request {
    r.data(crate::kit::gql::Loaders::default())
}

/// Whether the caller of a WebSocket connection may introspect the schema.
pub struct Introspection(pub bool);

/// The HTTP rules for queries and mutations sent over a WebSocket connection: the
/// introspection policy and the request timeout.
pub struct WsLimits {
    timeout: Duration,
    persisted: Arc<Persisted>,
}

impl ExtensionFactory for WsLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(WsLimits { timeout: self.timeout, persisted: self.persisted.clone() })
    }
}

#[async_trait::async_trait]
impl Extension for WsLimits {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Err(e) = super::input::check(&request) {
            let mut err = ServerError::new(e.to_string(), None);
            err.source = Some(Arc::new(e));
            return Err(err);
        }
        // the actor as it is now: roles revoked since `connection_init` no longer count
        let mut fresh = None;
        if let (Some(session), Some(state)) = (ctx.data_opt::<WsSession>(), ctx.data_opt::<AppState>())
            && let Some(s) = session.get()
        {
            let caller = match crate::rbac::service::load_actor(state, s.user_id, s.company_id, s.issued_at).await {
                Ok(a) => Caller(Ok(Some(a))),
                Err(crate::kit::error::AppError::Unauthenticated { reason, msg }) => Caller(Err((reason, msg))),
                Err(e) => {
                    let mut err = ServerError::new(e.to_string(), None);
                    err.source = Some(Arc::new(e));
                    return Err(err);
                }
            };
            fresh = Some(caller.clone());
            request.data.insert(caller);
        }
        let app = ctx.data_opt::<crate::kit::gql::RequestMeta>().and_then(|m| m.app);
        if let Some(caller) = fresh.as_ref().or_else(|| ctx.data_opt::<Caller>())
            && let Err(e) = self.persisted.prepare(&mut request, caller, app).map(|_| ())
        {
            let mut err = ServerError::new(e.to_string(), None);
            err.source = Some(Arc::new(e));
            return Err(err);
        }
        let allowed = ctx.data_opt::<Introspection>().is_some_and(|i| i.0);
        next.run(ctx, if allowed { request } else { request.disable_introspection() }).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> async_graphql::Response {
        match tokio::time::timeout(self.timeout, next.run(ctx, operation_name)).await {
            Ok(r) => r,
            Err(_) => {
                let mut e = ServerError::new("timeout", None);
                e.source = Some(Arc::new(crate::kit::error::AppError::Unavailable("timeout")));
                async_graphql::Response::from_errors(vec![e])
            }
        }
    }
}

/// The limits this server enforces.
#[derive(SimpleObject)]
pub struct ServiceConfig {
    /// `development` or `production`
    pub environment: String,
    /// largest request body (bytes) of a plain GraphQL request
    pub max_body_bytes: u64,
    /// largest uploaded file (bytes)
    pub max_upload_bytes: u64,
    /// most files in one multipart request
    pub max_upload_files: u64,
    /// deepest selection a data query may have (introspection is counted apart)
    pub max_query_depth: u64,
    /// most complex query accepted
    pub max_query_complexity: u64,
    /// most operations in one batch
    pub max_batch: u64,
    /// seconds before a request is cut off
    pub request_timeout_secs: u64,
    /// rows in a page when `first` is not given
    pub default_page_size: u64,
    /// largest `first`
    pub max_page_size: u64,
    /// most lines in a CSV import
    pub max_import_lines: u64,
    /// lifetime of an access token (seconds)
    pub access_token_ttl_secs: u64,
    /// seconds before another SMS code may be requested for the same phone
    pub sms_code_resend_secs: u64,
    /// days a `clientMutationId` is remembered: a retry within them applies nothing twice
    pub client_mutation_retention_days: u64,
    /// the password rule, in the caller's language
    pub password_policy: String,
}

#[derive(Default)]
pub struct ServiceQuery;

#[async_graphql::Object]
impl ServiceQuery {
    /// The limits this server enforces, so clients can stay within them. Anyone may read it.
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
            client_mutation_retention_days: l.client_mutation_retention_days,
            password_policy: match ctx.locale() {
                Locale::Zh => "8至64位，须同时包含字母和数字".into(),
                Locale::En => "8 to 64 characters with letters and digits".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_introspection;

    #[test]
    fn only_schema_questions_are_introspection() {
        assert!(is_introspection("{ __schema { types { name } } }"));
        assert!(is_introspection("query { __type(name: \"User\") { name } __typename }"));
        // a data query that also asks for type names runs on the data schema
        assert!(!is_introspection("{ user(id: \"1\") { __typename } }"));
        assert!(!is_introspection("{ __schema { queryType { name } } me { user { id } } }"));
        assert!(!is_introspection("mutation { __typename }"));
        assert!(!is_introspection("{ me { id } }"));
    }
}
