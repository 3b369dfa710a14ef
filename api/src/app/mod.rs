//! The server, wired: connections, the domains' state parts, the schema and router, and
//! the background tasks (event bus, dispatcher, MQTT ingest, scheduler).

pub mod scheduler;
pub mod telemetry;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::watch;

use crate::http::{self, Schemas};
use crate::kit::clock::{Clock, SystemClock};
use crate::kit::config::Config;
use crate::kit::crypto::Keys;
use crate::kit::events::EventBus;
use crate::kit::redis::{Redis, Subscriber};
use crate::kit::state::{AppState, Parts};
use crate::kit::storage::Storage;
use crate::notify::Senders;
use crate::notify::push::{DevPushSender, PushSenders};
use crate::notify::sms::{DevSmsSender, SmsSender};
use crate::rbac::service::ActorCache;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(
        "cannot reach PostgreSQL at {url} ({source}); start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
    )]
    Postgres { url: String, source: sqlx::Error },
    #[error(
        "cannot reach Redis at {url} ({source}); start it: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no"
    )]
    Redis { url: String, source: redis::RedisError },
    #[error("{0}")]
    Keys(#[from] crate::kit::crypto::KeyError),
    #[error("{0}")]
    Fcm(#[from] crate::notify::push::fcm::FcmConfigError),
    #[error("SMS: {0}")]
    SmsProvider(String),
    #[error("payments: {0}")]
    Pay(#[from] crate::billing::pay::gateway::PayError),
    #[error("push: {0}")]
    Push(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("updating built-in roles failed: {0}")]
    Sync(String),
    #[error("MQTT broker: {0}")]
    Broker(#[from] crate::iot::broker::model::BrokerConfigError),
    #[error("file storage: {0}")]
    Storage(#[from] crate::kit::storage::StorageError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

/// Strips the password from a connection URL before it is printed.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

pub async fn connect_db(cfg: &Config) -> Result<PgPool, StartupError> {
    let timeout = cfg.database_statement_timeout_secs;
    pool(&cfg.database_url, cfg.database_max_connections, timeout, false).await
}

/// The pool `wuye migrate` uses: no statement timeout (a migration may rewrite a table).
pub async fn connect_db_for_migrations(cfg: &Config) -> Result<PgPool, StartupError> {
    pool(&cfg.database_url, 2, 0, false).await
}

/// The read-only pool: the replica's when one is configured, else none.
pub async fn connect_replica(cfg: &Config) -> Result<Option<PgPool>, StartupError> {
    match &cfg.database_replica_url {
        Some(url) => {
            Ok(Some(pool(url, cfg.database_replica_max_connections, cfg.database_statement_timeout_secs, true).await?))
        }
        None => Ok(None),
    }
}

async fn pool(url: &str, max: u32, statement_timeout_secs: u64, read_only: bool) -> Result<PgPool, StartupError> {
    let err = |source| StartupError::Postgres { url: redact_url(url), source };
    let timeout = format!("{}s", statement_timeout_secs);
    // keepalives: a replica that vanishes without closing its sockets loses its advisory
    // locks (scheduler, ingest slots) within ~25 s instead of the kernel's two hours
    let mut options = vec![
        ("tcp_keepalives_idle", "10"),
        ("tcp_keepalives_interval", "5"),
        ("tcp_keepalives_count", "3"),
        ("statement_timeout", timeout.as_str()),
        // no JIT: every query here is short or set-based, and where PostgreSQL ships LLVM
        // it compiled the outbox's and the ingest's statements on every run (measured: the
        // 50,000 bill notices took 274 s instead of 8 s, ingest 12,100 instead of 17,800/s)
        ("jit", "off"),
    ];
    if read_only {
        options.push(("default_transaction_read_only", "on"));
    }
    let opts = sqlx::postgres::PgConnectOptions::from_str(url).map_err(err)?.options(options);
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(opts)
        .await
        .map_err(err)
}

pub async fn connect_redis(cfg: &Config) -> Result<(Redis, Subscriber), StartupError> {
    let url = match cfg.redis_cluster_nodes.as_slice() {
        [] => redact_url(&cfg.redis_url),
        nodes => nodes.iter().map(|n| redact_url(n)).collect::<Vec<_>>().join(","),
    };
    crate::kit::redis::connect(&cfg.redis_url, &cfg.redis_cluster_nodes)
        .await
        .map_err(|source| StartupError::Redis { url, source })
}

pub async fn migrate(db: &PgPool) -> Result<(), StartupError> {
    sqlx::migrate!("../migrations").run(db).await?;
    crate::rbac::service::sync_builtin_roles(db).await.map_err(|e| StartupError::Sync(e.to_string()))?;
    Ok(())
}

fn sms_sender(config: &Config, redis: &Redis, name: &str) -> Result<Arc<dyn SmsSender>, StartupError> {
    let c = &config.sms;
    let http = |e: reqwest::Error| StartupError::SmsProvider(format!("{name}: {e}"));
    Ok(match name {
        "dev" => Arc::new(DevSmsSender::new(redis.clone(), &config.redis_prefix)),
        "aliyun" => Arc::new(
            crate::notify::sms::aliyun::AliyunSms::new(&c.aliyun, &c.sign_name, c.templates.clone()).map_err(http)?,
        ),
        "tencent" => Arc::new(
            crate::notify::sms::tencent::TencentSms::new(&c.tencent, &c.sign_name, c.templates.clone())
                .map_err(http)?,
        ),
        other => {
            return Err(StartupError::SmsProvider(format!("unknown SMS provider {other:?} (aliyun, tencent, dev)")));
        }
    })
}

/// A built server: the state, its router, and the background tasks it needs.
pub struct App {
    pub state: AppState,
    pub schemas: Schemas,
    redis_subscriber: Subscriber,
    mqtt_events: Option<rumqttc::EventLoop>,
}

impl App {
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> Result<App, StartupError> {
        crate::http::metrics::handle();
        let db = connect_db(&config).await?;
        let (redis, redis_subscriber) = connect_redis(&config).await?;
        let keys = Keys::from_config(&config)?;
        let primary = sms_sender(&config, &redis, &config.sms.provider)?;
        let sms: Arc<dyn SmsSender> = match &config.sms.secondary {
            Some(name) => Arc::new(crate::notify::sms::failover::Failover {
                primary,
                secondary: sms_sender(&config, &redis, name)?,
            }),
            None => primary,
        };
        let fcm: Arc<dyn crate::notify::push::PushSender> = match &config.push.fcm_service_account {
            Some(path) => Arc::new(crate::notify::push::fcm::FcmSender::from_file(path, &config.push.fcm_endpoint)?),
            None => Arc::new(DevPushSender::new(redis.clone(), &config.redis_prefix, "fcm")),
        };
        let p = &config.push;
        let jpush: Arc<dyn crate::notify::push::PushSender> = match &p.jpush_app_key {
            Some(key) => Arc::new(
                crate::notify::push::jpush::JPushSender::new(
                    key,
                    &p.jpush_master_secret,
                    &p.jpush_endpoint,
                    p.jpush_apns_production,
                )
                .map_err(|e| StartupError::Push(format!("jpush: {e}")))?,
            ),
            None => Arc::new(DevPushSender::new(redis.clone(), &config.redis_prefix, "jpush")),
        };
        let push = PushSenders { fcm, jpush };
        let events = EventBus::new(redis.clone(), &config.redis_prefix, config.event_bus_heartbeat_secs);
        let (mqtt, mqtt_events) = crate::iot::telemetry::mqtt::connect(&config)?;
        let storage = Arc::new(Storage::from_config(&config.storage_dir, &config.storage)?);
        let mut parts = Parts::default()
            .with(ActorCache::default())
            .with(crate::org::estate::service::HousePages::default())
            .with(Senders { sms, push })
            .with(crate::iot::telemetry::service::IotCache::default())
            .with(crate::iot::broker::dynsec::Dynsec::default())
            .with(crate::iot::telemetry::mqtt::BrokerLink::default())
            .with(crate::http::ws::Watchers::default())
            .with::<Arc<dyn crate::iot::alarms::service::RepairDesk>>(Arc::new(crate::workorders::service::Desk))
            .with::<Arc<dyn crate::workorders::service::Eligibility>>(Arc::new(crate::people::staff::service::Licences))
            .with::<Arc<dyn crate::rbac::service::DutyRoster>>(Arc::new(crate::people::attendance::service::Roster))
            .with(crate::billing::pay::service::Gateways::from_config(&config, &redis)?)
            .with(crate::billing::print::service::Printer::new(&config.print))
            .with(crate::kit::approval::Appliers(
                [
                    (
                        crate::kit::approval::ApprovalKind::LateFeeWaiver,
                        Arc::new(crate::billing::bills::service::WaiveLateFee)
                            as Arc<dyn crate::kit::approval::Applier>,
                    ),
                    (
                        crate::kit::approval::ApprovalKind::Refund,
                        Arc::new(crate::billing::pay::service::ApproveRefund) as Arc<dyn crate::kit::approval::Applier>,
                    ),
                    (
                        crate::kit::approval::ApprovalKind::BillAdjustment,
                        Arc::new(crate::billing::bills::service::AdjustBill) as Arc<dyn crate::kit::approval::Applier>,
                    ),
                    (
                        crate::kit::approval::ApprovalKind::Attendance,
                        Arc::new(crate::people::attendance::service::DecideAttendance)
                            as Arc<dyn crate::kit::approval::Applier>,
                    ),
                    (
                        crate::kit::approval::ApprovalKind::VacancyRelief,
                        Arc::new(crate::billing::bills::service::ApproveVacancyRelief)
                            as Arc<dyn crate::kit::approval::Applier>,
                    ),
                ]
                .into_iter()
                .collect(),
            ));
        if let Some(replica) = connect_replica(&config).await? {
            parts = parts.with(crate::kit::state::ReadReplica(replica));
        }
        let state = AppState::new(db, redis, Arc::new(config), Arc::new(keys), storage, clock, events, mqtt, parts);
        let schemas = http::schema::build(state.clone());
        Ok(App { state, schemas, redis_subscriber, mqtt_events: Some(mqtt_events) })
    }

    pub async fn build_default(config: Config) -> Result<App, StartupError> {
        Self::build(config, Arc::new(SystemClock::default())).await
    }

    pub fn router(&self) -> Router {
        http::router(self.state.clone(), self.schemas.clone())
    }

    /// Serves until `shutdown` turns true; background tasks stop with it.
    pub async fn serve(
        mut self,
        listener: tokio::net::TcpListener,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        let bus = self.state.events.clone();
        let bus_task = tokio::spawn(bus.run(self.redis_subscriber.clone(), shutdown.clone()));
        tokio::spawn(crate::rbac::service::follow_account_events(self.state.clone(), shutdown.clone()));
        tokio::spawn(crate::org::estate::service::follow_house_events(self.state.clone(), shutdown.clone()));
        tokio::spawn(crate::http::ws::follow_sessions(self.state.clone(), shutdown.clone()));
        tokio::spawn(crate::iot::telemetry::service::follow_ledger(self.state.clone(), shutdown.clone()));
        let dispatcher = self
            .state
            .config
            .notify
            .dispatcher
            .then(|| tokio::spawn(crate::notify::dispatcher::run(self.state.clone(), shutdown.clone())));
        let mut upkeep_stop = shutdown.clone();
        tokio::spawn(async move {
            // drains histogram samples so the recorder's memory stays flat
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => crate::http::metrics::handle().run_upkeep(),
                    _ = upkeep_stop.changed() => return,
                }
            }
        });
        let mqtt = self
            .mqtt_events
            .take()
            .map(|events| tokio::spawn(crate::iot::telemetry::mqtt::run(self.state.clone(), events, shutdown.clone())));
        let jobs = tokio::spawn(crate::app::scheduler::run(self.state.clone(), shutdown.clone()));
        let router = self.router();
        let mut stop = shutdown.clone();
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                while !*stop.borrow() {
                    if stop.changed().await.is_err() {
                        break;
                    }
                }
            })
            .await?;
        let _ = bus_task.await;
        if let Some(d) = dispatcher {
            let _ = d.await;
        }
        if let Some(m) = mqtt {
            let _ = m.await;
        }
        let _ = jobs.await;
        Ok(())
    }
}
