//! What every `graphql.rs` uses: the request's metadata, ids, connections, loaders and the
//! retry key of a mutation. Only resolvers import this module; services never see
//! async-graphql types.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, ID, OutputType, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::{AppError, AppResult, Locale, Msg};
use super::idempotency::{MutationKey, Retry, client_id};
use super::pagination::{CursorKey, Page};
use super::state::AppState;

/// What the transport knows about a request besides its caller.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub locale: Locale,
    /// the client's address (see `trust_forwarded_for`)
    pub ip: String,
    /// `X-Request-Id`, taken from the client or made here
    pub request_id: String,
    /// the app the caller's token was issued to (none when anonymous)
    pub app: Option<ClientApp>,
}

crate::text_enum! {
    /// Which app a session was opened in. Access tokens carry it; in production the apps
    /// may send only the operations of their manifest, the playground anything.
    pub enum ClientApp { Owner = "owner", Staff = "staff", Playground = "playground" }
}

pub trait StateExt {
    fn state(&self) -> &AppState;
    fn meta(&self) -> &RequestMeta;
    /// The caller's language.
    fn locale(&self) -> Locale {
        self.meta().locale
    }
}

impl StateExt for Context<'_> {
    fn state(&self) -> &AppState {
        self.data_unchecked::<AppState>()
    }
    fn meta(&self) -> &RequestMeta {
        self.data_unchecked::<RequestMeta>()
    }
}

// ---- expensive fields -------------------------------------------------------------------

/// How many expensive operations (password hashing, SMS codes, captchas, token issuance)
/// one HTTP request — all its aliases and batch entries together — may run.
pub struct ExpensiveBudget {
    used: std::sync::atomic::AtomicUsize,
    max: usize,
}

impl ExpensiveBudget {
    pub fn new(max: usize) -> std::sync::Arc<Self> {
        std::sync::Arc::new(ExpensiveBudget { used: std::sync::atomic::AtomicUsize::new(0), max })
    }
}

/// Counts one expensive operation against the request's budget; past it, RATE_LIMITED.
pub fn spend_expensive(ctx: &Context<'_>) -> AppResult<()> {
    let Some(b) = ctx.data_opt::<std::sync::Arc<ExpensiveBudget>>() else { return Ok(()) };
    if b.used.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= b.max {
        return Err(AppError::RateLimited {
            reason: "TOO_MANY_IN_ONE_REQUEST",
            msg: Msg::owned(
                format!("一次请求最多执行{}个登录、验证码或改密操作", b.max),
                format!("At most {} sign-in, code or password operations per request", b.max),
            ),
            retry_after_secs: None,
        });
    }
    Ok(())
}

// ---- ids ------------------------------------------------------------------------------

pub fn to_id(u: Uuid) -> ID {
    ID(u.to_string())
}

pub fn parse_id(field: &'static str, id: &ID) -> AppResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| AppError::validation(field, Msg::new("ID格式无效", "Invalid ID")))
}

pub fn parse_opt_id(field: &'static str, id: Option<&ID>) -> AppResult<Option<Uuid>> {
    id.map(|i| parse_id(field, i)).transpose()
}

pub fn parse_ids(field: &'static str, ids: &[ID]) -> AppResult<Vec<Uuid>> {
    ids.iter().map(|i| parse_id(field, i)).collect()
}

// ---- money ------------------------------------------------------------------------------

/// 金额 an amount of money in yuan with fen, as a string: `"1234.50"`. Inputs accept up
/// to two decimals; amounts are never floating point.
#[async_graphql::Scalar(name = "Money")]
impl async_graphql::ScalarType for super::money::Money {
    fn parse(value: Value) -> async_graphql::InputValueResult<Self> {
        match &value {
            Value::String(s) => super::money::Money::parse("amount", s, true).map_err(|_| {
                async_graphql::InputValueError::custom("an amount in yuan with at most 2 decimals, as a string")
            }),
            _ => Err(async_graphql::InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.to_string())
    }
}

// ---- connections ------------------------------------------------------------------------

pub type Conn<T> = Connection<String, T, EmptyFields, EmptyFields>;

impl<K: CursorKey> Page<K> {
    /// Page arguments read against the configured page sizes.
    pub fn new(ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> AppResult<Page<K>> {
        let l = &ctx.state().config.limits;
        Page::parse(first, after.as_deref(), l.default_page_size, l.max_page_size)
    }

    /// A connection from `fetch()` rows: the extra row only says that a next page exists.
    pub fn connection<R, N: OutputType>(
        &self,
        mut rows: Vec<R>,
        key: impl Fn(&R) -> K,
        node: impl Fn(R) -> N,
    ) -> Conn<N> {
        let has_next = rows.len() > self.limit;
        rows.truncate(self.limit);
        let mut c = Connection::new(self.after.is_some(), has_next);
        c.edges.extend(rows.into_iter().map(|r| Edge::new(key(&r).encode(), node(r))));
        c
    }
}

// ---- loaders ----------------------------------------------------------------------------

/// Rows of a batched relation lookup, grouped by the key they belong to.
pub fn group_by<K: Hash + Eq, V>(rows: Vec<V>, key: impl Fn(&V) -> K) -> HashMap<K, Vec<V>> {
    let mut map: HashMap<K, Vec<V>> = HashMap::new();
    for r in rows {
        map.entry(key(&r)).or_default().push(r);
    }
    map
}

/// DataLoader errors are strings (they are shared between the waiting fields).
pub fn loader_error(e: String) -> AppError {
    AppError::internal(std::io::Error::other(e))
}

/// The DataLoaders of one request (or WebSocket connection), each made on first use: a
/// request that loads no relation pays for none, and an idle subscriber holds one empty
/// map. They keep no cache, so nothing outlives the request.
#[derive(Default)]
pub struct Loaders(std::sync::Mutex<HashMap<std::any::TypeId, Arc<dyn std::any::Any + Send + Sync>>>);

type Loader<L> = async_graphql::dataloader::DataLoader<L>;

impl Loaders {
    fn get<L>(&self, state: &AppState) -> Arc<Loader<L>>
    where
        L: async_graphql::dataloader::Loader<Uuid, Error = String> + From<AppState>,
    {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let any = map
            .entry(std::any::TypeId::of::<L>())
            .or_insert_with(|| Arc::new(Loader::new(L::from(state.clone()), tokio::spawn)))
            .clone();
        drop(map);
        match any.downcast::<Loader<L>>() {
            Ok(l) => l,
            // unreachable: the map is keyed by the loader's type
            Err(_) => Arc::new(Loader::new(L::from(state.clone()), tokio::spawn)),
        }
    }
}

/// Loads one key through the request's DataLoader of `L` (the transport puts a `Loaders`
/// into every request and WebSocket connection).
pub async fn load_one<L>(ctx: &Context<'_>, key: Uuid) -> AppResult<Option<L::Value>>
where
    L: async_graphql::dataloader::Loader<Uuid, Error = String> + From<AppState>,
{
    let loaders = ctx.data::<Loaders>().map_err(|e| AppError::internal(std::io::Error::other(e.message)))?;
    loaders.get::<L>(ctx.state()).load_one(key).await.map_err(loader_error)
}

/// The bytes of a multipart upload, one byte past the upload limit at most (the service
/// refuses what is too large); VALIDATION `file` when it cannot be read.
pub fn read_upload(ctx: &Context<'_>, file: &async_graphql::Upload) -> AppResult<Vec<u8>> {
    use std::io::Read;
    let unreadable =
        || AppError::validation("file", super::error::Msg::new("无法读取上传的文件", "Cannot read the uploaded file"));
    let max = ctx.state().config.limits.max_upload_bytes;
    let value = file.value(ctx).map_err(|_| unreadable())?;
    let mut bytes = Vec::new();
    value.into_read().take(max as u64 + 1).read_to_end(&mut bytes).map_err(|_| unreadable())?;
    Ok(bytes)
}

// ---- retry keys ---------------------------------------------------------------------------

/// The retry key of the mutation being resolved: the client's id, the mutation's name and
/// a hash of its arguments with `clientMutationId` left out, in canonical form.
pub fn retry_key(ctx: &Context<'_>, user_id: Uuid, client_mutation_id: Option<&str>) -> AppResult<Retry> {
    let Some(raw) = client_mutation_id else { return Ok(Retry::none()) };
    let client_id = client_id(raw)?;
    let field = ctx.field();
    let args = field.arguments().map_err(|e| AppError::internal(std::io::Error::other(e.message)))?;
    let mut h = Sha256::new();
    for (name, value) in args {
        h.update(name.as_bytes());
        h.update(b"=");
        canonical(&strip_client_id(value), &mut h);
        h.update(b";");
    }
    Ok(Retry::keyed(MutationKey {
        user_id,
        client_id,
        operation: field.name().to_owned(),
        input_hash: h.finalize().to_vec(),
    }))
}

fn strip_client_id(v: Value) -> Value {
    match v {
        Value::Object(mut m) => {
            m.shift_remove("clientMutationId");
            Value::Object(m)
        }
        other => other,
    }
}

/// The input in one spelling, however the client wrote it: keys sorted, an explicit `null`
/// the same as an omitted field, an enum the same whether written inline or sent as a
/// variable string, `1` the same as `1.0`.
fn canonical(v: &Value, h: &mut Sha256) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<_> = m.iter().filter(|(_, x)| !matches!(x, Value::Null)).map(|(k, _)| k).collect();
            keys.sort();
            h.update(b"{");
            for k in keys {
                h.update(k.as_bytes());
                h.update(b":");
                if let Some(x) = m.get(k) {
                    canonical(x, h);
                }
                h.update(b",");
            }
            h.update(b"}");
        }
        Value::List(l) => {
            h.update(b"[");
            for x in l {
                canonical(x, h);
                h.update(b",");
            }
            h.update(b"]");
        }
        Value::Enum(name) => {
            h.update(b"\"");
            h.update(name.as_bytes());
            h.update(b"\"");
        }
        Value::String(s) => {
            h.update(b"\"");
            h.update(s.as_bytes());
            h.update(b"\"");
        }
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => h.update(format!("{}", f as i64).as_bytes()),
            _ => h.update(n.to_string().as_bytes()),
        },
        other => h.update(other.to_string().as_bytes()),
    }
}

/// What a delete or revoke mutation removed.
#[derive(async_graphql::SimpleObject)]
pub struct DeletedPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// the id of what was removed
    pub deleted_id: ID,
}

impl DeletedPayload {
    pub fn new(client_mutation_id: Option<String>, id: Uuid) -> Self {
        DeletedPayload { client_mutation_id, deleted_id: to_id(id) }
    }
}

/// A payload that shows objects by id, read again when the payload is resolved: the
/// first call and every repeat of a mutation answer the same way, whatever the selection.
///
/// `object_payload!(AlarmPayload, alarm: Alarm, load_alarm, "the alarm as it is now")`
/// needs `async fn load_alarm(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Alarm>`.
#[macro_export]
macro_rules! object_payload {
    ($(#[$doc:meta])* $name:ident, $field:ident: $ty:ty, $load:path, $field_doc:literal) => {
        $(#[$doc])*
        #[derive(async_graphql::SimpleObject)]
        #[graphql(complex)]
        pub struct $name {
            /// the `clientMutationId` of the input, echoed
            pub client_mutation_id: Option<String>,
            #[graphql(skip)]
            pub id: uuid::Uuid,
        }

        impl $name {
            pub fn new(client_mutation_id: Option<String>, id: uuid::Uuid) -> Self {
                $name { client_mutation_id, id }
            }
        }

        #[async_graphql::ComplexObject]
        impl $name {
            #[doc = $field_doc]
            async fn $field(&self, ctx: &async_graphql::Context<'_>) -> async_graphql::Result<$ty> {
                $load(ctx, self.id).await
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(v: &Value) -> Vec<u8> {
        let mut h = Sha256::new();
        canonical(v, &mut h);
        h.finalize().to_vec()
    }

    #[test]
    fn canonical_ignores_how_the_input_was_written() {
        let inline = Value::Object(
            [
                (async_graphql::Name::new("state"), Value::Enum(async_graphql::Name::new("OPEN"))),
                (async_graphql::Name::new("n"), Value::from(1)),
                (async_graphql::Name::new("note"), Value::Null),
            ]
            .into_iter()
            .collect(),
        );
        let variables = Value::from_json(serde_json::json!({"state": "OPEN", "n": 1.0})).unwrap();
        assert_eq!(hash(&inline), hash(&variables));
    }

    #[test]
    fn canonical_ignores_key_order_and_client_id() {
        let a = Value::from_json(serde_json::json!({"a": 1, "b": [1, 2], "clientMutationId": "x"})).unwrap();
        let b = Value::from_json(serde_json::json!({"b": [1, 2], "a": 1})).unwrap();
        let c = Value::from_json(serde_json::json!({"b": [2, 1], "a": 1})).unwrap();
        assert_eq!(hash(&strip_client_id(a)), hash(&b));
        assert_ne!(hash(&b), hash(&c));
    }
}
