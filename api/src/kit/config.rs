//! Typed configuration: defaults that work against the local services, then an optional
//! TOML file, then `WUYE_*` environment variables (nested keys with `__`, e.g.
//! `WUYE_LIMITS__MAX_DEPTH=10`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub const DEV_JWT_SECRET: &str = "dev-only-jwt-secret-do-not-use-in-production";
/// 32 bytes, base64: the development key for PII encryption.
pub const DEV_DATA_KEY: &str = "ZGV2LW9ubHktZGF0YS1rZXktMzItYnl0ZXMtbG9uZyE=";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RunEnv {
    #[default]
    Development,
    Production,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `development` or `production` (production refuses development secrets and helpers)
    pub env: RunEnv,
    /// the primary PostgreSQL: `postgres://user:password@host:5432/wuye`
    pub database_url: String,
    /// connections this replica opens at most (keep replicas × this, plus the replica
    /// pools, under the server's `max_connections`; PgBouncer only in session mode: the
    /// scheduler and ingest hold session advisory locks)
    pub database_max_connections: u32,
    /// a statement running longer is cancelled by PostgreSQL (0: never); `wuye migrate`
    /// runs without it
    pub database_statement_timeout_secs: u64,
    /// a streaming replica for read-only work (reports, device history); unset: the primary.
    /// Its sessions are read-only whatever the URL says
    pub database_replica_url: Option<String>,
    /// connections to the replica at most
    pub database_replica_max_connections: u32,
    /// Redis: OTP codes, rate limits, live device state, nonces, the event bus (`redis://:password@host:6379`)
    pub redis_url: String,
    /// the seed nodes of a Redis Cluster (`["redis://:password@10.0.0.1:6379", …]`); set:
    /// cluster mode and `redis_url` is not used. Keys that must share a slot carry hash tags;
    /// the event bus listens on one node at a time (pub/sub reaches every node)
    pub redis_cluster_nodes: Vec<String>,
    /// how often the event bus checks its subscription by a heartbeat to itself; six
    /// missed in a row (30 s by default, longer than a failover's resends) and it
    /// subscribes again, dropping the caches kept by events meanwhile
    pub event_bus_heartbeat_secs: u64,
    /// Every Redis key starts with this, so tests (and several deployments) can share a server.
    pub redis_prefix: String,
    /// the broker: `mqtt://[user:password@]host[:port]` or `mqtts://…` (TLS, port 8883 by
    /// default); user and password percent-encoded
    pub mqtt_url: String,
    /// the broker password from a file (a mounted secret) instead of the URL
    pub mqtt_password_file: Option<PathBuf>,
    /// `mqtts://`: the PEM file of the CA that signed the broker's certificate; unset: the
    /// system's trusted roots
    pub mqtt_ca_file: Option<PathBuf>,
    /// devices publish to `{root}/{companyCode}/{deviceCode}/telemetry|status|event`
    pub mqtt_topic_root: String,
    /// replicas share the topics through `$share/{group}/…`
    pub mqtt_share_group: String,
    /// client ids of this deployment start with it: the ingest slots connect as
    /// `{prefix}-ingest-{n}` (one replica at a time, leased through PostgreSQL), each replica's
    /// command connection as `{prefix}-{random}`; replicas of one deployment share it
    pub mqtt_client_prefix: String,
    /// consume device messages in this replica
    pub mqtt_ingest: bool,
    /// false (production): the broker keeps an ingest slot's session and queued QoS 1
    /// messages until a replica takes the slot again; tests use throw-away sessions
    pub mqtt_clean_session: bool,
    /// the broker runs Mosquitto's dynamic-security plugin and this server's broker account
    /// may administer it: `provisionDeviceCredentials` creates each device's own account
    pub mqtt_dynsec: bool,
    /// a device command not acknowledged within this many seconds has failed
    pub command_timeout_secs: u64,
    /// where the API listens; a development server listens only on loopback unless
    /// `allow_non_loopback` says otherwise
    pub http_addr: SocketAddr,
    /// development only: listen on a non-loopback address although the development helpers
    /// (demo logins, recorded SMS codes) are switched on — never on a shared network
    pub allow_non_loopback: bool,
    /// HS256 key of access tokens; at least 32 random characters in production
    pub jwt_secret: SecretString,
    /// base64 of 32 random bytes: AES-256-GCM for ID-card numbers and the key of their blind index
    pub data_key: SecretString,
    /// the local folder of stored files (`storage.backend = "local"`)
    pub storage_dir: PathBuf,
    /// where files live: the local folder, or an S3-compatible bucket shared by every replica
    pub storage: StorageConfig,
    /// Public base URL of stored files (logos), e.g. `https://wuye.example.com/files`.
    pub files_base_url: String,
    /// Take the client IP from `X-Forwarded-For` (only behind your own proxies).
    pub trust_forwarded_for: bool,
    /// The proxies in front of the API (addresses or CIDR blocks, e.g. `10.0.0.0/8`): the
    /// client is the right-most address of `X-Forwarded-For` (after the peer) that is not one
    /// of them — never the left-most, which the client writes itself.
    pub trusted_proxies: Vec<String>,
    /// `/metrics` answers only with `Authorization: Bearer <metrics_token>`; unset: only to
    /// callers on this host (a local Prometheus agent or sidecar)
    pub metrics_token: Option<SecretString>,
    /// OpenTelemetry: send traces (a span per request and per service call) over OTLP/HTTP
    /// to this collector, e.g. `http://otel-collector:4318`; unset: no export
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported traces
    pub otlp_service_name: String,
    pub sms: SmsConfig,
    pub push: PushConfig,
    pub notify: NotifyConfig,
    pub patrol: PatrolConfig,
    pub attendance: AttendanceConfig,
    pub training: TrainingConfig,
    pub auth: AuthConfig,
    pub limits: Limits,
    pub iot: IotConfig,
    pub pay: PayConfig,
    pub print: PrintConfig,
}

/// 打印 printed bills and receipts: the font every PDF embeds (subset to what it prints).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PrintConfig {
    /// a TrueType font (`.ttf`, or a `.ttc` with `font_index`) with Chinese glyphs;
    /// the scripts install WenQuanYi Micro Hei (Debian `fonts-wqy-microhei`)
    pub font_path: PathBuf,
    /// the face of a `.ttc` font file
    pub font_index: u32,
    /// a run print's renderer renews its lease this often; a replica that stopped
    /// leaves its print to another after it ran out
    pub lease_secs: u64,
    /// bills of a run print rendered between progress updates
    pub chunk: usize,
}

impl Default for PrintConfig {
    fn default() -> Self {
        PrintConfig {
            font_path: PathBuf::from("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
            font_index: 0,
            lease_secs: 120,
            chunk: 500,
        }
    }
}

/// 线上支付: WeChat Pay API v3 and Alipay merchants, by company code. A company without
/// a merchant of a provider cannot pay through it (a development server uses the
/// development gateway instead, which reports every order paid when asked).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PayConfig {
    /// the public base URL the providers call: `{base}/pay/wechat/{companyCode}/notify`,
    /// `{base}/pay/alipay/{companyCode}/notify`
    pub notify_base_url: String,
    /// an unpaid order closes after this many minutes
    pub expire_minutes: u32,
    /// a pending order is asked about at the provider after this many seconds
    pub reconcile_after_secs: u64,
    /// largest notification body accepted
    pub notify_max_body_bytes: usize,
    /// a WeChat Pay notification signed longer ago than this (or ahead) is refused
    pub notify_max_skew_secs: i64,
    pub wechat: std::collections::BTreeMap<String, WechatMerchant>,
    pub alipay: std::collections::BTreeMap<String, AlipayMerchant>,
    /// development only: a company without a merchant pays through the development
    /// gateway, which reports every order paid when asked (`deploy/dev.sh` turns it on;
    /// production refuses it)
    pub dev_gateway: bool,
}

impl Default for PayConfig {
    fn default() -> Self {
        PayConfig {
            notify_base_url: "http://127.0.0.1:8080".into(),
            expire_minutes: 30,
            reconcile_after_secs: 120,
            notify_max_body_bytes: 64 * 1024,
            notify_max_skew_secs: 300,
            wechat: Default::default(),
            alipay: Default::default(),
            dev_gateway: false,
        }
    }
}

/// A WeChat Pay (API v3) merchant.
#[derive(Debug, Clone, Deserialize)]
pub struct WechatMerchant {
    /// 商户号
    pub mchid: String,
    /// the app's AppID (App payments)
    pub appid: String,
    /// the official account's or mini program's AppID (JSAPI payments; default `appid`)
    pub jsapi_appid: Option<String>,
    /// the serial number of the merchant API certificate
    pub serial_no: String,
    /// the merchant API private key (`apiclient_key.pem`)
    pub private_key_file: PathBuf,
    /// the APIv3 key (32 characters) that decrypts notifications
    pub apiv3_key: SecretString,
    /// 平台证书 platform certificates by serial number (PEM files)
    #[serde(default)]
    pub platform_certs: std::collections::BTreeMap<String, PathBuf>,
    /// 微信支付公钥 the public-key mode: its id (`PUB_KEY_ID_…`) and PEM file
    pub public_key_id: Option<String>,
    /// WeChat Pay's platform public key (PEM) that signs notifications
    pub public_key_file: Option<PathBuf>,
    #[serde(default = "wechat_endpoint")]
    /// the API base (tests point it at the local fake)
    pub endpoint: String,
}

fn wechat_endpoint() -> String {
    "https://api.mch.weixin.qq.com".into()
}

/// An Alipay open-platform app (RSA2).
#[derive(Debug, Clone, Deserialize)]
pub struct AlipayMerchant {
    /// the Alipay application id
    pub app_id: String,
    /// the app's private key: PEM, or the bare base64 the Alipay key tool writes
    pub private_key_file: PathBuf,
    /// 支付宝公钥 Alipay's public key: PEM or bare base64
    pub alipay_public_key_file: PathBuf,
    /// the merchant's Alipay account id (2088…): notifications for another seller are refused
    pub seller_id: Option<String>,
    #[serde(default = "alipay_gateway")]
    /// the gateway URL (tests point it at the local fake)
    pub gateway: String,
}

fn alipay_gateway() -> String {
    "https://openapi.alipay.com/gateway.do".into()
}

/// What makes a patrol scan believable.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PatrolConfig {
    /// a scan needs the phone's reported accuracy within this many metres
    pub max_accuracy_m: f64,
    /// no faster than this between two scans (metres a second; a brisk walk is 1.5-2)
    pub max_speed_mps: f64,
    /// and at least this many seconds apart
    pub min_scan_gap_secs: u64,
}

impl Default for PatrolConfig {
    fn default() -> Self {
        PatrolConfig { max_accuracy_m: 50.0, max_speed_mps: 4.0, min_scan_gap_secs: 10 }
    }
}

/// Where files (photos, bills, materials) are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// `storage_dir` on this host: development, or one replica
    #[default]
    Local,
    /// an S3-compatible bucket (Aliyun OSS, Tencent COS, MinIO, AWS S3): every replica
    /// reads what any replica wrote
    S3,
}

/// The bucket of `storage.backend = "s3"`. Requests are signed with AWS Signature
/// Version 4; the bucket stays private (files reach people through the API's signed URLs).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// `local` (`storage_dir`) or `s3` (a bucket every replica shares)
    pub backend: StorageBackend,
    /// e.g. `https://oss-cn-chengdu.aliyuncs.com`; unset: AWS's endpoint for `region`
    pub endpoint: Option<String>,
    /// the bucket (private: no anonymous access)
    pub bucket: String,
    /// the bucket's region (signing)
    pub region: String,
    /// the access key the replicas sign with
    pub access_key_id: Option<String>,
    /// its secret
    pub secret_access_key: Option<SecretString>,
    /// `bucket.endpoint/key` (Aliyun OSS requires it) rather than `endpoint/bucket/key`
    pub virtual_hosted_style: bool,
    /// plain HTTP to the endpoint (a store on the same private network only)
    pub allow_http: bool,
    /// seconds before a storage request is given up
    pub timeout_secs: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: StorageBackend::Local,
            endpoint: None,
            bucket: "wuye-files".into(),
            region: "cn-chengdu".into(),
            access_key_id: None,
            secret_access_key: None,
            virtual_hosted_style: false,
            allow_http: false,
            timeout_secs: 30,
        }
    }
}

/// What makes a punch believable, and how long one may take to arrive.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AttendanceConfig {
    /// a phone punch needs the reported accuracy within this many metres
    pub max_accuracy_m: f64,
    /// a punch queued offline is accepted this long after the phone recorded it
    pub offline_max_hours: i64,
    /// a terminal's buffered punches, likewise
    pub terminal_offline_max_hours: i64,
    /// a punch's time may run ahead of the server's clock by this much (phone clocks drift)
    pub clock_skew_secs: i64,
    /// a second punch this close to one already taken is the same punch (a double tap)
    pub double_tap_secs: i64,
    /// 补签 for punches up to this many days back
    pub correction_max_days: i64,
    /// punches count for a shift from this long before its start
    pub window_before_minutes: i64,
    /// and until this long after its end
    pub window_after_minutes: i64,
    /// a terminal's signed timestamp may differ from the server's clock by this much
    pub terminal_max_skew_secs: i64,
    /// punches in one terminal request
    pub terminal_batch_max: usize,
    /// bytes in one terminal request
    pub terminal_max_body_bytes: usize,
}

impl Default for AttendanceConfig {
    fn default() -> Self {
        AttendanceConfig {
            max_accuracy_m: 100.0,
            offline_max_hours: 24,
            terminal_offline_max_hours: 72,
            clock_skew_secs: 120,
            double_tap_secs: 60,
            correction_max_days: 31,
            window_before_minutes: 240,
            window_after_minutes: 360,
            terminal_max_skew_secs: 300,
            terminal_batch_max: 500,
            terminal_max_body_bytes: 256 * 1024,
        }
    }
}

/// Training materials: each kind has its own size limit (they arrive on their own route,
/// not through GraphQL).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TrainingConfig {
    /// largest PDF course material
    pub max_pdf_bytes: usize,
    /// largest MP4 course material
    pub max_video_bytes: usize,
    /// material uploads written to storage at once per process, the others wait (each
    /// holds at most three 5 MB parts in memory on a bucket, a chunk on a folder; one that
    /// sends nothing for 30 s is given up)
    pub concurrent_uploads: usize,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig { max_pdf_bytes: 20 * 1024 * 1024, max_video_bytes: 200 * 1024 * 1024, concurrent_uploads: 8 }
    }
}

/// Device ingest, offline detection, alarm follow-up and the scheduler.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IotConfig {
    /// ingest slots of the deployment (every replica must agree): each is one MQTT connection
    /// in the shared subscription with a fixed client id, held by one replica at a time;
    /// replicas split them evenly and take over the slots of one that died within seconds
    pub ingest_slots: usize,
    /// device messages larger than this are rejected (counted and dropped); configure the
    /// broker's `max_packet_size` a little above it
    pub max_payload_bytes: usize,
    /// batch writers; a device's messages always go to the same one, in order
    pub ingest_workers: usize,
    /// most messages stored in one batch
    pub batch_max: usize,
    /// a device is offline after this many missed heartbeats
    pub missed_heartbeats: u32,
    /// expected seconds between messages, per category (others: `default_heartbeat_secs`)
    pub heartbeat_secs: std::collections::BTreeMap<String, u64>,
    /// a device not heard from for this long is offline (unless its own heartbeat says otherwise)
    pub default_heartbeat_secs: u64,
    /// unacknowledged alarms are sent again to the on-duty staff this often
    pub remind_every_secs: u64,
    /// how often the scheduler (one replica, by advisory lock) runs its jobs
    pub jobs_interval_ms: u64,
    /// run the scheduler in this replica (it still takes the lock first)
    pub jobs: bool,
}

impl Default for IotConfig {
    fn default() -> Self {
        let hb = [
            ("elevator", 30),
            ("access_door", 60),
            ("water_pump", 30),
            ("fire_equipment", 300),
            ("camera", 60),
            ("water_meter", 900),
            ("electricity_meter", 900),
            ("gas_meter", 900),
        ];
        IotConfig {
            ingest_slots: 4,
            max_payload_bytes: 16 * 1024,
            ingest_workers: 2,
            batch_max: 2000,
            missed_heartbeats: 3,
            heartbeat_secs: hb.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            default_heartbeat_secs: 300,
            remind_every_secs: 1800,
            jobs_interval_ms: 5000,
            jobs: true,
        }
    }
}

impl IotConfig {
    /// silence longer than this means offline
    pub fn offline_after(&self, category: &str) -> chrono::TimeDelta {
        let hb = self.heartbeat_secs.get(category).copied().unwrap_or(self.default_heartbeat_secs);
        chrono::TimeDelta::seconds((hb * self.missed_heartbeats.max(1) as u64) as i64)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PushConfig {
    /// FCM HTTP v1: path of the service-account JSON; unset: the development sender
    pub fcm_service_account: Option<PathBuf>,
    /// base URL of the FCM API (tests point it at a local fake)
    pub fcm_endpoint: String,
    /// JPush app key; unset: the development sender
    pub jpush_app_key: Option<String>,
    /// JPush master secret
    pub jpush_master_secret: SecretString,
    /// the JPush push API (tests point it at the local fake)
    pub jpush_endpoint: String,
    /// iOS through JPush: production APNs (false for development builds of the app)
    pub jpush_apns_production: bool,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            fcm_service_account: None,
            fcm_endpoint: "https://fcm.googleapis.com".into(),
            jpush_app_key: None,
            jpush_master_secret: SecretString::from(""),
            jpush_endpoint: "https://api.jpush.cn".into(),
            jpush_apns_production: true,
        }
    }
}

/// The outbox dispatcher.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct NotifyConfig {
    /// run a dispatcher in this replica
    pub dispatcher: bool,
    /// outbox rows one dispatcher claims at a time
    pub batch: usize,
    /// deliveries in flight per replica
    pub concurrency: usize,
    /// how long a replica holds rows it is sending before others may take them
    pub lease_secs: u64,
    /// how often an idle dispatcher looks for work
    pub poll_ms: u64,
    /// first retry delay of a failed delivery (doubles each time)
    pub backoff_base_ms: u64,
    /// longest retry delay
    pub backoff_max_secs: u64,
    /// after this long a notification still not delivered is marked failed
    pub give_up_after_secs: u64,
    /// notification SMS per phone per Shanghai day, counted in Redis before any gateway
    /// is called (critical ones are exempt; sign-in codes have their own limits)
    pub sms_daily_per_phone: u32,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            dispatcher: true,
            batch: 200,
            concurrency: 64,
            lease_secs: 60,
            poll_ms: 1000,
            backoff_base_ms: 2000,
            backoff_max_secs: 600,
            give_up_after_secs: 24 * 3600,
            sms_daily_per_phone: 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SmsConfig {
    /// `aliyun`, `tencent`, or `dev` (records messages in Redis instead of sending them)
    pub provider: String,
    /// tried when the primary fails for a reason that is not the message's fault
    pub secondary: Option<String>,
    /// 短信签名
    pub sign_name: String,
    pub templates: SmsTemplates,
    pub aliyun: AliyunSmsConfig,
    pub tencent: TencentSmsConfig,
}

/// Template code (Aliyun) or id (Tencent) per kind of message.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct SmsTemplates {
    /// the template of sign-in and verification codes
    pub security_code: Option<String>,
    /// bills and reminders
    pub bill_notice: Option<String>,
    /// alarms escalated to SMS
    pub alarm_escalation: Option<String>,
    /// work-order updates
    pub work_order_update: Option<String>,
    /// announcements and other notices
    pub notice: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AliyunSmsConfig {
    /// Aliyun AccessKey ID
    pub access_key_id: String,
    /// its secret
    pub access_key_secret: SecretString,
    /// the SMS API endpoint (tests point it at the local fake)
    pub endpoint: String,
}

impl Default for AliyunSmsConfig {
    fn default() -> Self {
        AliyunSmsConfig {
            access_key_id: String::new(),
            access_key_secret: SecretString::from(""),
            endpoint: "https://dysmsapi.aliyuncs.com".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TencentSmsConfig {
    /// Tencent Cloud SecretId
    pub secret_id: String,
    /// its SecretKey
    pub secret_key: SecretString,
    /// the SMS application's SdkAppId
    pub sdk_app_id: String,
    /// the API region
    pub region: String,
    /// the SMS API endpoint (tests point it at the local fake)
    pub endpoint: String,
}

impl Default for TencentSmsConfig {
    fn default() -> Self {
        TencentSmsConfig {
            secret_id: String::new(),
            secret_key: SecretString::from(""),
            sdk_app_id: String::new(),
            region: "ap-guangzhou".into(),
            endpoint: "https://sms.tencentcloudapi.com".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthConfig {
    /// `iss` of access tokens; a token from another issuer is refused
    pub jwt_issuer: String,
    /// `aud` of access tokens; a token for another audience is refused
    pub jwt_audience: String,
    /// lifetime of an access token
    pub access_token_ttl_secs: u64,
    /// lifetime of a refresh token (each use rotates it)
    pub refresh_token_ttl_days: u64,
    /// argon2id parameters (OWASP: m=19 MiB, t=2, p=1)
    pub argon2_memory_kib: u32,
    /// argon2id passes
    pub argon2_iterations: u32,
    /// argon2id lanes
    pub argon2_parallelism: u32,
    /// ask for a captcha at every password sign-in
    pub captcha_always: bool,
    /// failures (per login or address) before a captcha is asked
    pub captcha_after_failures: u32,
    /// lifetime of a captcha
    pub captcha_ttl_secs: u64,
    /// failed sign-ins of one login before it is locked
    pub lockout_failures: u32,
    /// the window those failures are counted in
    pub lockout_window_secs: u64,
    /// how long a locked login stays locked
    pub lockout_secs: u64,
    /// lifetime of an SMS code
    pub otp_ttl_secs: u64,
    /// wrong entries before an SMS code is void
    pub otp_max_attempts: u32,
    /// seconds before another code may be sent to the same phone
    pub otp_resend_secs: u64,
    /// codes one phone may receive a day
    pub otp_daily_per_phone: u32,
    /// codes one address may request an hour
    pub otp_hourly_per_ip: u32,
}

/// Limits that protect the server; clients read them through `serviceConfig`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Limits {
    /// largest plain GraphQL request body
    pub max_body_bytes: usize,
    /// largest uploaded file
    pub max_upload_bytes: usize,
    /// most files in one multipart request
    pub max_upload_files: usize,
    /// deepest selection a data query may have
    pub max_depth: usize,
    /// most complex query accepted
    pub max_complexity: usize,
    /// most operations in one batch
    pub max_batch: usize,
    /// a request is cut off after this
    pub request_timeout_secs: u64,
    /// rows in a page when `first` is not given
    pub default_page_size: usize,
    /// largest `first`
    pub max_page_size: usize,
    /// most lines in a CSV import
    pub max_import_lines: usize,
    /// sign-ins, password changes, SMS-code and captcha requests one HTTP request may run,
    /// all aliases and batch entries together (a WebSocket connection: in its lifetime)
    pub max_expensive_per_request: usize,
    /// lookups by phone (4+ digits) or ID-card number a user without `pii:read` may run a
    /// minute: each could confirm a masked value
    pub pii_lookups_per_minute: u64,
    /// days a mutation's `clientMutationId` is remembered (phones queue actions offline
    /// for at most this long)
    pub client_mutation_retention_days: u64,
    /// per WebSocket connection: the read buffer (tungstenite's default is 128 KiB, which
    /// would cost 1.25 GiB for 10,000 idle subscribers), the write buffer, and the largest message
    pub ws_read_buffer_bytes: usize,
    /// per WebSocket connection: the write buffer
    pub ws_write_buffer_bytes: usize,
    /// per WebSocket connection: the largest message
    pub ws_max_message_bytes: usize,
    /// hold tokens of the owner and staff apps to the operations of their manifest
    /// (`schema/persisted/`); unset: on in production, off in development
    pub persisted_only: Option<bool>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            env: RunEnv::Development,
            database_url: "postgres://postgres@127.0.0.1:5432/wuye".into(),
            database_max_connections: 20,
            database_statement_timeout_secs: 60,
            database_replica_url: None,
            database_replica_max_connections: 10,
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_cluster_nodes: Vec::new(),
            event_bus_heartbeat_secs: 5,
            redis_prefix: "wuye:".into(),
            mqtt_url: "mqtt://127.0.0.1:1883".into(),
            mqtt_password_file: None,
            mqtt_ca_file: None,
            mqtt_topic_root: "wuye".into(),
            mqtt_share_group: "wuye".into(),
            mqtt_client_prefix: "wuye".into(),
            mqtt_ingest: true,
            mqtt_clean_session: false,
            mqtt_dynsec: false,
            command_timeout_secs: 10,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allow_non_loopback: false,
            jwt_secret: SecretString::from(DEV_JWT_SECRET),
            data_key: SecretString::from(DEV_DATA_KEY),
            storage_dir: PathBuf::from("data/files"),
            storage: StorageConfig::default(),
            files_base_url: "/files".into(),
            trust_forwarded_for: false,
            trusted_proxies: vec!["127.0.0.0/8".into(), "::1/128".into()],
            metrics_token: None,
            otlp_endpoint: None,
            otlp_service_name: "wuye-api".into(),
            sms: SmsConfig::default(),
            push: PushConfig::default(),
            notify: NotifyConfig::default(),
            patrol: PatrolConfig::default(),
            attendance: AttendanceConfig::default(),
            training: TrainingConfig::default(),
            auth: AuthConfig::default(),
            limits: Limits::default(),
            iot: IotConfig::default(),
            pay: PayConfig::default(),
            print: PrintConfig::default(),
        }
    }
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            provider: "dev".into(),
            secondary: None,
            sign_name: "物业".into(),
            templates: SmsTemplates::default(),
            aliyun: AliyunSmsConfig::default(),
            tencent: TencentSmsConfig::default(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_issuer: "wuye".into(),
            jwt_audience: "wuye-api".into(),
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_days: 30,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            captcha_always: false,
            captcha_after_failures: 3,
            captcha_ttl_secs: 120,
            lockout_failures: 5,
            lockout_window_secs: 15 * 60,
            lockout_secs: 15 * 60,
            otp_ttl_secs: 5 * 60,
            otp_max_attempts: 5,
            otp_resend_secs: 60,
            otp_daily_per_phone: 10,
            otp_hourly_per_ip: 30,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            max_upload_bytes: 2 * 1024 * 1024,
            max_upload_files: 4,
            max_depth: 12,
            max_complexity: 2000,
            max_batch: 10,
            request_timeout_secs: 30,
            default_page_size: 20,
            max_page_size: 100,
            max_import_lines: 20_000,
            client_mutation_retention_days: 7,
            max_expensive_per_request: 3,
            pii_lookups_per_minute: 30,
            ws_read_buffer_bytes: 4096,
            ws_write_buffer_bytes: 4096,
            ws_max_message_bytes: 64 * 1024,
            persisted_only: None,
        }
    }
}

impl Limits {
    /// A multipart body may carry the uploads plus the operations part.
    pub fn max_multipart_bytes(&self) -> usize {
        self.max_upload_bytes * self.max_upload_files + self.max_body_bytes
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("production refuses to start: {0}")]
    Insecure(&'static str),
}

/// `mqtt://user:password@host:port`: does the URL carry credentials?
fn mqtt_has_password(url: &str) -> bool {
    let Some(rest) = url.split_once("://").map(|(_, r)| r) else { return false };
    match rest.split_once('@') {
        Some((creds, _)) => creds.split_once(':').is_some_and(|(u, p)| !u.is_empty() && !p.is_empty()),
        None => false,
    }
}

impl Config {
    /// defaults < TOML file (when given) < WUYE_* environment variables
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::new();
        if let Some(f) = file {
            fig = fig.merge(Toml::file_exact(f));
        }
        let cfg: Config = fig.merge(Env::prefixed("WUYE_").split("__")).extract().map_err(Box::new)?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Production must not run with the development secrets or the development SMS sender.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.env != RunEnv::Production {
            return Ok(());
        }
        if self.jwt_secret.expose_secret() == DEV_JWT_SECRET || self.jwt_secret.expose_secret().len() < 32 {
            return Err(ConfigError::Insecure(
                "WUYE_JWT_SECRET is the development secret or shorter than 32 characters",
            ));
        }
        if self.data_key.expose_secret() == DEV_DATA_KEY {
            return Err(ConfigError::Insecure("WUYE_DATA_KEY is the development key"));
        }
        if self.sms.provider == "dev" || self.sms.secondary.as_deref() == Some("dev") {
            return Err(ConfigError::Insecure("the development SMS sender is configured (WUYE_SMS__PROVIDER)"));
        }
        if self.pay.dev_gateway {
            return Err(ConfigError::Insecure("the development payment gateway is on (WUYE_PAY__DEV_GATEWAY)"));
        }
        if self.push.fcm_service_account.is_none() && self.push.jpush_app_key.is_none() {
            return Err(ConfigError::Insecure(
                "no push provider is configured (WUYE_PUSH__FCM_SERVICE_ACCOUNT or WUYE_PUSH__JPUSH_APP_KEY): \
                 the development sender would drop alarms silently",
            ));
        }
        if !mqtt_has_password(&self.mqtt_url) && self.mqtt_password_file.is_none() {
            return Err(ConfigError::Insecure(
                "WUYE_MQTT_URL has no username and password: the broker must not accept anonymous clients",
            ));
        }
        Ok(())
    }

    /// A development server exposes development helpers: it listens only on loopback
    /// unless `allow_non_loopback` is set. Production listens where it is told.
    pub fn check_listen(&self, addr: SocketAddr) -> Result<(), ConfigError> {
        if self.is_development() && !addr.ip().is_loopback() && !self.allow_non_loopback {
            return Err(ConfigError::Insecure(
                "a development server listens only on loopback (127.0.0.1 / ::1); set WUYE_ALLOW_NON_LOOPBACK=true \
                 to expose it anyway, or run with WUYE_ENV=production",
            ));
        }
        Ok(())
    }

    pub fn is_development(&self) -> bool {
        self.env == RunEnv::Development
    }

    /// Whether app tokens may send only their manifest's operations.
    pub fn persisted_only(&self) -> bool {
        self.limits.persisted_only.unwrap_or(!self.is_development())
    }
}

// ---- the configuration reference (wuye config-reference) -----------------------------------

/// Every setting as a Markdown reference, read from this file's own source: each struct's
/// fields with their doc comments, nested sections followed from `Config` down. The
/// committed copy (`deploy/CONFIGURATION.md`) is checked against it by a test.
pub fn reference() -> String {
    let src = include_str!("config.rs");
    let structs = source_structs(src);
    let mut rows = Vec::new();
    walk(&structs, "Config", &[], &mut rows);
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated by `wuye config-reference` from `api/src/kit/config.rs`; do not edit.\n\n\
         Settings come from the defaults, then a TOML file (`--config`, see `deploy/wuye.example.toml`), \
         then `WUYE_*` environment variables: nested keys join with `__` \
         (`limits.max_depth` is `WUYE_LIMITS__MAX_DEPTH`; a map entry such as \
         `pay.wechat.<company>.mch_id` is `WUYE_PAY__WECHAT__<COMPANY>__MCH_ID`). \
         Lists and tables are written in TOML syntax (`WUYE_TRUSTED_PROXIES='[\"10.0.0.0/8\"]'`).\n\n\
         | key | environment variable | type | meaning |\n| --- | --- | --- | --- |\n",
    );
    for (path, ty, doc) in rows {
        let env = format!("WUYE_{}", path.join("__").to_ascii_uppercase());
        let key = path.join(".");
        let doc = if doc.is_empty() { "—".to_owned() } else { doc.replace('|', "\\|") };
        out.push_str(&format!("| `{key}` | `{env}` | `{}` | {doc} |\n", ty.replace('|', "\\|")));
    }
    out
}

type Field = (String, String, String);

/// struct name → its fields (name, type, doc), from source text.
fn source_structs(src: &str) -> std::collections::BTreeMap<String, Vec<Field>> {
    let mut out = std::collections::BTreeMap::new();
    let mut current: Option<(String, Vec<Field>)> = None;
    let mut doc: Vec<String> = Vec::new();
    for line in src.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("pub struct ").and_then(|r| r.strip_suffix(" {")) {
            current = Some((name.to_owned(), Vec::new()));
            doc.clear();
            continue;
        }
        let Some((_, fields)) = current.as_mut() else { continue };
        if t == "}" {
            if let Some((name, fields)) = current.take() {
                out.insert(name, fields);
            }
            continue;
        }
        if let Some(d) = t.strip_prefix("///") {
            doc.push(d.trim().to_owned());
        } else if let Some(rest) = t.strip_prefix("pub ")
            && let Some((name, ty)) = rest.split_once(": ")
        {
            fields.push((name.to_owned(), ty.trim_end_matches(',').to_owned(), doc.join(" ")));
            doc.clear();
        } else if !t.starts_with("#[") {
            doc.clear();
        }
    }
    out
}

fn walk(
    structs: &std::collections::BTreeMap<String, Vec<Field>>,
    name: &str,
    prefix: &[String],
    rows: &mut Vec<(Vec<String>, String, String)>,
) {
    let Some(fields) = structs.get(name) else { return };
    for (field, ty, doc) in fields {
        let mut path = prefix.to_vec();
        path.push(field.clone());
        let inner = ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')).unwrap_or(ty);
        let map_value = inner
            .rsplit_once("BTreeMap<String, ")
            .and_then(|(_, v)| v.strip_suffix('>'))
            .filter(|v| structs.contains_key(*v));
        if structs.contains_key(inner) {
            walk(structs, inner, &path, rows);
        } else if let Some(v) = map_value {
            path.push("<company>".into());
            walk(structs, v, &path, rows);
        } else {
            rows.push((path, ty.clone(), doc.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_reads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/wuye.example.toml");
        let cfg: Config = Figment::new().merge(Toml::file_exact(path)).extract().unwrap();
        assert!(cfg.mqtt_dynsec);
        assert_eq!(cfg.iot.ingest_slots, 4);
        assert_eq!(cfg.limits.pii_lookups_per_minute, 30);
        assert_eq!(cfg.patrol.min_scan_gap_secs, 10);
        assert_eq!((cfg.print.font_index, cfg.print.chunk), (0, 500));
        assert_eq!(cfg.pay.wechat["JCWY"].platform_certs.len(), 1);
        assert_eq!(cfg.pay.alipay["JCWY"].gateway, "https://openapi.alipay.com/gateway.do");
    }

    #[test]
    fn production_needs_a_broker_account() {
        let mut c = Config {
            env: RunEnv::Production,
            jwt_secret: SecretString::from("x".repeat(40)),
            data_key: SecretString::from("another-key"),
            ..Config::default()
        };
        c.sms.provider = "aliyun".into();
        c.push.jpush_app_key = Some("k".into());
        assert!(c.check().is_err(), "no broker password");
        c.mqtt_password_file = Some(PathBuf::from("/run/secrets/mqtt"));
        assert!(c.check().is_ok());
        c.mqtt_password_file = None;
        c.mqtt_url = "mqtt://wuye-api:pw@broker:1883".into();
        assert!(c.check().is_ok());
    }
}
