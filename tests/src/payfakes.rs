//! Local fakes of WeChat Pay API v3 and the Alipay open-platform gateway. Each holds its
//! own test keys (tests/fixtures), checks the merchant's signatures as the real service
//! does, signs its answers and notifications as the real service does, and lets a test
//! play the payer (pay an order) and the provider's notifier (build a signed, encrypted
//! notification, or a forged one).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::{Value, json};

use crate::fakes::fixture;

pub const WX_MCHID: &str = "1900000109";
pub const WX_APPID: &str = "wx8888888888888888";
pub const WX_MERCHANT_SERIAL: &str = "5E1A2B3C4D5E6F708192A3B4C5D6E7F8091A2B3C";
pub const WX_PLATFORM_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";
pub const WX_PUB_KEY_ID: &str = "PUB_KEY_ID_0119000001092025112700000000000";
pub const WX_APIV3_KEY: &str = "wuyeTestApiV3Key0123456789abcdef";
pub const ALI_APP_ID: &str = "2021000000000001";
pub const ALI_SELLER_ID: &str = "2088000000000001";

fn sign(key: &EncodingKey, msg: &[u8]) -> String {
    let url = jsonwebtoken::crypto::sign(msg, key, Algorithm::RS256).unwrap();
    STANDARD.encode(URL_SAFE_NO_PAD.decode(url).unwrap())
}

fn verify(key: &DecodingKey, msg: &[u8], sig: &str) -> bool {
    let Ok(raw) = STANDARD.decode(sig) else { return false };
    jsonwebtoken::crypto::verify(&URL_SAFE_NO_PAD.encode(raw), msg, key, Algorithm::RS256).unwrap_or(false)
}

fn random(n: usize) -> String {
    use rand::Rng;
    const C: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut r = rand::rng();
    (0..n).map(|_| C[r.random_range(0..C.len())] as char).collect()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

// ---- WeChat Pay ----------------------------------------------------------------------

/// Which key WeChat Pay signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WxKey {
    /// the platform certificate's key (`Wechatpay-Serial` = its serial number)
    Platform,
    /// the WeChat Pay public-key mode (`Wechatpay-Serial` = the public key id)
    PublicKey,
    /// someone else's key, presented under the platform certificate's serial
    Forged,
}

#[derive(Debug, Clone)]
pub struct WxOrder {
    pub appid: String,
    pub total: i64,
    pub notify_url: String,
    pub state: String,
    pub transaction_id: Option<String>,
    pub openid: Option<String>,
}

struct WxState {
    merchant_key: DecodingKey,
    platform: EncodingKey,
    pubkey: EncodingKey,
    forged: EncodingKey,
    apiv3: Aes256Gcm,
    mode: Mutex<WxKey>,
    orders: Mutex<HashMap<String, WxOrder>>,
    refunds: Mutex<HashMap<String, Value>>,
    bad_auth: AtomicUsize,
    calls: AtomicUsize,
    refuse_refunds: AtomicBool,
}

pub struct FakeWechatPay {
    pub url: String,
    state: Arc<WxState>,
}

impl WxState {
    fn key(&self, k: WxKey) -> (&EncodingKey, &'static str) {
        match k {
            WxKey::Platform => (&self.platform, WX_PLATFORM_SERIAL),
            WxKey::PublicKey => (&self.pubkey, WX_PUB_KEY_ID),
            WxKey::Forged => (&self.forged, WX_PLATFORM_SERIAL),
        }
    }

    fn signed_headers(&self, k: WxKey, ts: i64, body: &str) -> Vec<(String, String)> {
        let (key, serial) = self.key(k);
        let nonce = random(32);
        let sig = sign(key, format!("{ts}\n{nonce}\n{body}\n").as_bytes());
        vec![
            ("Wechatpay-Timestamp".into(), ts.to_string()),
            ("Wechatpay-Nonce".into(), nonce),
            ("Wechatpay-Signature".into(), sig),
            ("Wechatpay-Serial".into(), serial.into()),
            ("Wechatpay-Signature-Type".into(), "WECHATPAY2-SHA256-RSA2048".into()),
        ]
    }

    /// An answer signed as WeChat Pay signs its answers.
    fn answer(&self, status: StatusCode, body: Option<Value>) -> Response {
        let text = body.map(|b| b.to_string()).unwrap_or_default();
        let mode = *self.mode.lock().unwrap();
        let mut r = (status, text.clone()).into_response();
        for (k, v) in self.signed_headers(mode, now(), &text) {
            r.headers_mut().insert(axum::http::HeaderName::try_from(k).unwrap(), v.parse().unwrap());
        }
        if !text.is_empty() {
            r.headers_mut().insert("content-type", "application/json".parse().unwrap());
        }
        r
    }

    fn error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        (status, axum::Json(json!({"code": code, "message": message}))).into_response()
    }

    /// The merchant's `Authorization`: its mchid and certificate serial, a fresh timestamp,
    /// and SHA256withRSA over `METHOD\nURL\ntimestamp\nnonce\nbody\n`.
    fn authorized(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> bool {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let ok = (|| {
            let auth = headers.get("authorization")?.to_str().ok()?;
            let rest = auth.strip_prefix("WECHATPAY2-SHA256-RSA2048 ")?;
            let mut f = HashMap::new();
            for part in rest.split(',') {
                let (k, v) = part.split_once('=')?;
                f.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
            }
            let ts: i64 = f.get("timestamp")?.parse().ok()?;
            if f.get("mchid")? != WX_MCHID || f.get("serial_no")? != WX_MERCHANT_SERIAL || (now() - ts).abs() > 300 {
                return None;
            }
            let url = uri.path_and_query()?.as_str();
            let mut msg = format!("{method}\n{url}\n{ts}\n{}\n", f.get("nonce_str")?).into_bytes();
            msg.extend_from_slice(body);
            msg.push(b'\n');
            verify(&self.merchant_key, &msg, f.get("signature")?).then_some(())
        })()
        .is_some();
        if !ok {
            self.bad_auth.fetch_add(1, Ordering::SeqCst);
        }
        ok
    }

    fn transaction(&self, otn: &str, o: &WxOrder, total: i64) -> Value {
        json!({
            "appid": o.appid, "mchid": WX_MCHID, "out_trade_no": otn,
            "transaction_id": o.transaction_id, "trade_type": if o.openid.is_some() { "JSAPI" } else { "APP" },
            "trade_state": o.state, "trade_state_desc": o.state, "bank_type": "OTHERS",
            "success_time": (o.state == "SUCCESS" || o.state == "REFUND").then(|| chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m-%dT%H:%M:%S%:z").to_string()),
            "payer": { "openid": o.openid.clone().unwrap_or_else(|| "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into()) },
            "amount": { "total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY" },
        })
    }
}

async fn wx_prepay(
    State(s): State<Arc<WxState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !s.authorized(&method, &uri, &headers, &body) {
        return s.error(StatusCode::UNAUTHORIZED, "SIGN_ERROR", "签名错误");
    }
    let Ok(b) = serde_json::from_slice::<Value>(&body) else {
        return s.error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "JSON 格式错误");
    };
    let jsapi = uri.path().ends_with("/jsapi");
    let otn = b["out_trade_no"].as_str().unwrap_or_default().to_owned();
    let total = b["amount"]["total"].as_i64().unwrap_or(0);
    let openid = b["payer"]["openid"].as_str().map(str::to_owned);
    let well_formed = b["appid"] == WX_APPID
        && b["mchid"] == WX_MCHID
        && (6..=32).contains(&otn.len())
        && total > 0
        && b["amount"]["currency"] == "CNY"
        && b["description"].as_str().is_some_and(|d| !d.is_empty() && d.chars().count() <= 127)
        && b["notify_url"].as_str().is_some_and(|u| u.starts_with("http"))
        && b["time_expire"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
        && (!jsapi || openid.is_some());
    if !well_formed {
        return s.error(StatusCode::BAD_REQUEST, "PARAM_ERROR", &format!("参数错误 {b}"));
    }
    let mut orders = s.orders.lock().unwrap();
    if let Some(o) = orders.get(&otn)
        && o.total != total
    {
        return s.error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "201 商户订单号重复");
    }
    orders.entry(otn.clone()).or_insert(WxOrder {
        appid: WX_APPID.into(),
        total,
        notify_url: b["notify_url"].as_str().unwrap_or_default().to_owned(),
        state: "NOTPAY".into(),
        transaction_id: None,
        openid,
    });
    drop(orders);
    s.answer(StatusCode::OK, Some(json!({"prepay_id": format!("wx{}", random(30))})))
}

async fn wx_query(
    State(s): State<Arc<WxState>>,
    UrlPath(otn): UrlPath<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !s.authorized(&method, &uri, &headers, b"") {
        return s.error(StatusCode::UNAUTHORIZED, "SIGN_ERROR", "签名错误");
    }
    if uri.query().is_none_or(|q| q != format!("mchid={WX_MCHID}")) {
        return s.error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "缺少 mchid");
    }
    let o = s.orders.lock().unwrap().get(&otn).cloned();
    match o {
        None => s.error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在"),
        Some(o) => {
            let t = s.transaction(&otn, &o, o.total);
            s.answer(StatusCode::OK, Some(t))
        }
    }
}

async fn wx_close(
    State(s): State<Arc<WxState>>,
    UrlPath(otn): UrlPath<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !s.authorized(&method, &uri, &headers, &body) {
        return s.error(StatusCode::UNAUTHORIZED, "SIGN_ERROR", "签名错误");
    }
    let mut orders = s.orders.lock().unwrap();
    match orders.get_mut(&otn) {
        None => s.error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在"),
        Some(o) if o.state == "SUCCESS" => s.error(StatusCode::BAD_REQUEST, "ORDERPAID", "订单已支付"),
        Some(o) => {
            o.state = "CLOSED".into();
            drop(orders);
            s.answer(StatusCode::NO_CONTENT, None)
        }
    }
}

async fn wx_refund(
    State(s): State<Arc<WxState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !s.authorized(&method, &uri, &headers, &body) {
        return s.error(StatusCode::UNAUTHORIZED, "SIGN_ERROR", "签名错误");
    }
    let Ok(b) = serde_json::from_slice::<Value>(&body) else {
        return s.error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "JSON 格式错误");
    };
    let no = b["out_refund_no"].as_str().unwrap_or_default().to_owned();
    if let Some(done) = s.refunds.lock().unwrap().get(&no) {
        return s.answer(StatusCode::OK, Some(done.clone()));
    }
    if s.refuse_refunds.load(Ordering::SeqCst) {
        return s.error(StatusCode::FORBIDDEN, "NOT_ENOUGH", "基本账户余额不足");
    }
    let txn = b["transaction_id"].as_str().unwrap_or_default();
    let mut orders = s.orders.lock().unwrap();
    let Some((otn, o)) = orders.iter_mut().find(|(_, o)| o.transaction_id.as_deref() == Some(txn)) else {
        return s.error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "订单不存在");
    };
    let refund = b["amount"]["refund"].as_i64().unwrap_or(0);
    let before: i64 = s
        .refunds
        .lock()
        .unwrap()
        .values()
        .filter(|r| r["transaction_id"] == txn)
        .map(|r| r["amount"]["refund"].as_i64().unwrap())
        .sum();
    if !matches!(o.state.as_str(), "SUCCESS" | "REFUND") {
        return s.error(StatusCode::FORBIDDEN, "TRADE_ERROR", "订单状态不允许退款");
    }
    if b["amount"]["total"].as_i64() != Some(o.total) || refund <= 0 || before + refund > o.total || no.is_empty() {
        return s.error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "退款金额错误");
    }
    o.state = "REFUND".into();
    // WeChat answers PROCESSING; the refund query tells SUCCESS later
    let answer = json!({"refund_id": format!("5030{}", random(24)), "out_refund_no": no, "transaction_id": txn,
        "out_trade_no": otn, "channel": "ORIGINAL", "status": "PROCESSING",
        "amount": {"refund": refund, "total": o.total, "currency": "CNY"}});
    drop(orders);
    s.refunds.lock().unwrap().insert(no, answer.clone());
    s.answer(StatusCode::OK, Some(answer))
}

async fn wx_refund_query(
    State(s): State<Arc<WxState>>,
    UrlPath(no): UrlPath<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !s.authorized(&method, &uri, &headers, b"") {
        return s.error(StatusCode::UNAUTHORIZED, "SIGN_ERROR", "签名错误");
    }
    let mut refunds = s.refunds.lock().unwrap();
    let Some(r) = refunds.get_mut(&no) else {
        drop(refunds);
        return s.error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "退款单不存在");
    };
    r["status"] = json!("SUCCESS");
    let answer = r.clone();
    drop(refunds);
    s.answer(StatusCode::OK, Some(answer))
}

/// A notification as WeChat Pay would send it: headers and body.
pub struct WxNotification {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl FakeWechatPay {
    pub async fn start() -> FakeWechatPay {
        let state = Arc::new(WxState {
            merchant_key: DecodingKey::from_rsa_pem(fixture("wechat-merchant.pub.pem").as_bytes()).unwrap(),
            platform: EncodingKey::from_rsa_pem(fixture("wechat-platform-key.pem").as_bytes()).unwrap(),
            pubkey: EncodingKey::from_rsa_pem(fixture("wechat-pubkey-key.pem").as_bytes()).unwrap(),
            forged: EncodingKey::from_rsa_pem(fixture("fcm-wrong-key.pem").as_bytes()).unwrap(),
            apiv3: Aes256Gcm::new_from_slice(WX_APIV3_KEY.as_bytes()).unwrap(),
            mode: Mutex::new(WxKey::Platform),
            orders: Mutex::new(HashMap::new()),
            refunds: Mutex::new(HashMap::new()),
            bad_auth: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
            refuse_refunds: AtomicBool::new(false),
        });
        let app = Router::new()
            .route("/v3/pay/transactions/app", post(wx_prepay))
            .route("/v3/pay/transactions/jsapi", post(wx_prepay))
            .route("/v3/pay/transactions/out-trade-no/{otn}", get(wx_query))
            .route("/v3/pay/transactions/out-trade-no/{otn}/close", post(wx_close))
            .route("/v3/refund/domestic/refunds", post(wx_refund))
            .route("/v3/refund/domestic/refunds/{no}", get(wx_refund_query))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeWechatPay { url, state }
    }

    /// The merchant configuration a server needs (both verification modes trusted).
    pub fn merchant(&self) -> wuye_api::kit::config::WechatMerchant {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        wuye_api::kit::config::WechatMerchant {
            mchid: WX_MCHID.into(),
            appid: WX_APPID.into(),
            jsapi_appid: None,
            serial_no: WX_MERCHANT_SERIAL.into(),
            private_key_file: dir.join("wechat-merchant-key.pem"),
            apiv3_key: WX_APIV3_KEY.to_owned().into(),
            platform_certs: [(WX_PLATFORM_SERIAL.to_owned(), dir.join("wechat-platform-cert.pem"))]
                .into_iter()
                .collect(),
            public_key_id: Some(WX_PUB_KEY_ID.into()),
            public_key_file: Some(dir.join("wechat-pubkey.pub.pem")),
            endpoint: self.url.clone(),
        }
    }

    /// Sign answers with the platform certificate's key or in the public-key mode.
    pub fn set_mode(&self, k: WxKey) {
        *self.state.mode.lock().unwrap() = k;
    }

    pub fn order(&self, otn: &str) -> Option<WxOrder> {
        self.state.orders.lock().unwrap().get(otn).cloned()
    }

    pub fn orders(&self) -> usize {
        self.state.orders.lock().unwrap().len()
    }

    pub fn bad_auth(&self) -> usize {
        self.state.bad_auth.load(Ordering::SeqCst)
    }

    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    pub fn refunds(&self) -> Vec<Value> {
        self.state.refunds.lock().unwrap().values().cloned().collect()
    }

    pub fn refuse_refunds(&self, on: bool) {
        self.state.refuse_refunds.store(on, Ordering::SeqCst);
    }

    /// The payer pays in WeChat: the order is paid; its transaction id.
    pub fn pay(&self, otn: &str) -> String {
        let mut orders = self.state.orders.lock().unwrap();
        let o = orders.get_mut(otn).expect("an order the server created");
        assert_eq!(o.state, "NOTPAY", "WeChat takes payment only of an open order");
        o.state = "SUCCESS".into();
        o.transaction_id = Some(format!("42000{}", &random(23)).chars().filter(char::is_ascii_alphanumeric).collect());
        o.transaction_id.clone().unwrap()
    }

    /// The TRANSACTION.SUCCESS notification of a paid order: the transaction encrypted
    /// with the APIv3 key, signed with `key` at `ts`; `total` overrides the amount.
    pub fn notification(&self, otn: &str, key: WxKey, ts: i64, total: Option<i64>) -> WxNotification {
        let o = self.order(otn).expect("an order the server created");
        let plain = self.state.transaction(otn, &o, total.unwrap_or(o.total)).to_string();
        let nonce = random(12);
        let ct = self
            .state
            .apiv3
            .encrypt(Nonce::from_slice(nonce.as_bytes()), Payload { msg: plain.as_bytes(), aad: b"transaction" })
            .unwrap();
        let body = json!({
            "id": uuid::Uuid::now_v7().to_string(), "create_time": chrono::Utc::now().to_rfc3339(),
            "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
            "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": STANDARD.encode(ct), "associated_data": "transaction", "nonce": nonce},
        })
        .to_string();
        WxNotification { headers: self.state.signed_headers(key, ts, &body), body }
    }

    /// Delivers a notification to the server; the status and body it answered.
    pub async fn deliver(&self, url: &str, n: &WxNotification) -> (u16, String) {
        self.try_deliver(url, n).await.unwrap()
    }

    /// Delivers a notification; `Err` when no answer came (the server went away).
    pub async fn try_deliver(&self, url: &str, n: &WxNotification) -> Result<(u16, String), reqwest::Error> {
        let mut req = reqwest::Client::new().post(url).header("content-type", "application/json").body(n.body.clone());
        for (k, v) in &n.headers {
            req = req.header(k, v);
        }
        let r = req.send().await?;
        Ok((r.status().as_u16(), r.text().await?))
    }
}

// ---- Alipay --------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct AliOrder {
    pub total_amount: String,
    pub notify_url: String,
    pub status: String,
    pub trade_no: Option<String>,
}

struct AliState {
    app_key: DecodingKey,
    alipay: EncodingKey,
    forged: EncodingKey,
    orders: Mutex<HashMap<String, AliOrder>>,
    refunds: Mutex<HashMap<String, String>>,
    bad_sign: AtomicUsize,
}

pub struct FakeAlipay {
    /// the gateway URL (`…/gateway.do`)
    pub url: String,
    state: Arc<AliState>,
}

fn sign_content(p: &BTreeMap<String, String>, exclude: &[&str]) -> String {
    p.iter()
        .filter(|(k, v)| !v.is_empty() && !exclude.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

impl AliState {
    /// `{"<method>_response": {...}, "sign": "..."}`, signed over the exact response text.
    fn answer(&self, method: &str, body: Value) -> Response {
        let node = format!("{}_response", method.replace('.', "_"));
        let text = body.to_string();
        let sig = sign(&self.alipay, text.as_bytes());
        let out = format!("{{\"{node}\":{text},\"sign\":\"{sig}\"}}");
        ([("content-type", "text/html;charset=utf-8")], out).into_response()
    }

    fn business_error(&self, method: &str, sub_code: &str, sub_msg: &str) -> Response {
        self.answer(
            method,
            json!({"code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg}),
        )
    }
}

async fn ali_gateway(State(s): State<Arc<AliState>>, body: Bytes) -> Response {
    let p: BTreeMap<String, String> =
        form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let method = p.get("method").cloned().unwrap_or_default();
    let signed = p.get("sign").is_some_and(|sig| verify(&s.app_key, sign_content(&p, &["sign"]).as_bytes(), sig));
    if !signed
        || p.get("app_id").map(String::as_str) != Some(ALI_APP_ID)
        || p.get("sign_type").map(String::as_str) != Some("RSA2")
    {
        s.bad_sign.fetch_add(1, Ordering::SeqCst);
        let e = json!({"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature", "sub_msg": "验签出错"});
        return ([("content-type", "text/html;charset=utf-8")], json!({"error_response": e}).to_string())
            .into_response();
    }
    let biz: Value = serde_json::from_str(p.get("biz_content").map(String::as_str).unwrap_or("{}")).unwrap_or_default();
    let otn = biz["out_trade_no"].as_str().unwrap_or_default().to_owned();
    let mut orders = s.orders.lock().unwrap();
    match method.as_str() {
        "alipay.trade.query" => match orders.get(&otn) {
            None => {
                drop(orders);
                s.business_error(&method, "ACQ.TRADE_NOT_EXIST", "交易不存在")
            }
            Some(o) => {
                let v = json!({"code": "10000", "msg": "Success", "out_trade_no": otn, "trade_no": o.trade_no,
                    "trade_status": o.status, "total_amount": o.total_amount, "buyer_logon_id": "159****5620",
                    "send_pay_date": chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m-%d %H:%M:%S").to_string()});
                drop(orders);
                s.answer(&method, v)
            }
        },
        "alipay.trade.close" => match orders.get_mut(&otn) {
            None => {
                drop(orders);
                s.business_error(&method, "ACQ.TRADE_NOT_EXIST", "交易不存在")
            }
            Some(o) if o.status == "TRADE_SUCCESS" => {
                drop(orders);
                s.business_error(&method, "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            }
            Some(o) => {
                o.status = "TRADE_CLOSED".into();
                drop(orders);
                s.answer(&method, json!({"code": "10000", "msg": "Success", "out_trade_no": otn}))
            }
        },
        "alipay.trade.fastpay.refund.query" => {
            drop(orders);
            let req_no = biz["out_request_no"].as_str().unwrap_or_default().to_owned();
            let done = s.refunds.lock().unwrap().get(&req_no).cloned();
            match done {
                Some(amount) => s.answer(
                    &method,
                    json!({"code": "10000", "msg": "Success", "out_trade_no": otn,
                    "out_request_no": req_no, "refund_amount": amount, "refund_status": "REFUND_SUCCESS"}),
                ),
                None => s.answer(&method, json!({"code": "10000", "msg": "Success"})),
            }
        }
        "alipay.trade.refund" => {
            let req_no = biz["out_request_no"].as_str().unwrap_or_default().to_owned();
            let amount = biz["refund_amount"].as_str().unwrap_or_default().to_owned();
            let Some(o) = orders.get(&otn).cloned() else {
                drop(orders);
                return s.business_error(&method, "ACQ.TRADE_NOT_EXIST", "交易不存在");
            };
            drop(orders);
            if o.status != "TRADE_SUCCESS" {
                return s.business_error(&method, "ACQ.TRADE_STATUS_ERROR", "交易状态不合法");
            }
            let mut refunds = s.refunds.lock().unwrap();
            let repeat = refunds.contains_key(&req_no);
            let cents = |a: &str| (a.parse::<f64>().unwrap_or(0.0) * 100.0).round() as i64;
            let before: i64 = refunds.values().map(|a| cents(a)).sum();
            if !repeat && (cents(&amount) <= 0 || before + cents(&amount) > cents(&o.total_amount)) {
                drop(refunds);
                return s.business_error(&method, "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限");
            }
            refunds.insert(req_no, amount.clone());
            drop(refunds);
            s.answer(
                &method,
                json!({"code": "10000", "msg": "Success", "trade_no": o.trade_no, "out_trade_no": otn,
                "fund_change": if repeat { "N" } else { "Y" }, "refund_fee": amount}),
            )
        }
        _ => {
            drop(orders);
            s.business_error(&method, "isv.invalid-method", "不存在的方法名")
        }
    }
}

impl FakeAlipay {
    pub async fn start() -> FakeAlipay {
        let state = Arc::new(AliState {
            app_key: DecodingKey::from_rsa_pem(fixture("alipay-app.pub.pem").as_bytes()).unwrap(),
            alipay: EncodingKey::from_rsa_pem(fixture("alipay-platform-key.pem").as_bytes()).unwrap(),
            forged: EncodingKey::from_rsa_pem(fixture("fcm-wrong-key.pem").as_bytes()).unwrap(),
            orders: Mutex::new(HashMap::new()),
            refunds: Mutex::new(HashMap::new()),
            bad_sign: AtomicUsize::new(0),
        });
        let app = Router::new().route("/gateway.do", post(ali_gateway)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/gateway.do", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeAlipay { url, state }
    }

    pub fn merchant(&self) -> wuye_api::kit::config::AlipayMerchant {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        wuye_api::kit::config::AlipayMerchant {
            app_id: ALI_APP_ID.into(),
            private_key_file: dir.join("alipay-app-key.txt"),
            alipay_public_key_file: dir.join("alipay-platform.pub.txt"),
            seller_id: Some(ALI_SELLER_ID.into()),
            gateway: self.url.clone(),
        }
    }

    /// The app hands the order string to the Alipay SDK: its signature is checked as
    /// Alipay checks it, and the order exists (waiting for the payer). Its out_trade_no.
    pub fn open(&self, order_string: &str) -> String {
        let p: BTreeMap<String, String> =
            form_urlencoded::parse(order_string.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        assert!(
            verify(&self.state.app_key, sign_content(&p, &["sign"]).as_bytes(), &p["sign"]),
            "the order string is signed with the app's key"
        );
        assert_eq!(p["method"], "alipay.trade.app.pay");
        assert_eq!(p["app_id"], ALI_APP_ID);
        let biz: Value = serde_json::from_str(&p["biz_content"]).unwrap();
        assert_eq!(biz["product_code"], "QUICK_MSECURITY_PAY");
        let otn = biz["out_trade_no"].as_str().unwrap().to_owned();
        if let Some(o) = self.order(&otn) {
            assert_eq!(o.status, "WAIT_BUYER_PAY", "Alipay does not reopen a closed or paid trade");
            return otn;
        }
        self.state.orders.lock().unwrap().insert(
            otn.clone(),
            AliOrder {
                total_amount: biz["total_amount"].as_str().unwrap().to_owned(),
                notify_url: p["notify_url"].clone(),
                status: "WAIT_BUYER_PAY".into(),
                trade_no: None,
            },
        );
        otn
    }

    pub fn order(&self, otn: &str) -> Option<AliOrder> {
        self.state.orders.lock().unwrap().get(otn).cloned()
    }

    pub fn refunds(&self) -> HashMap<String, String> {
        self.state.refunds.lock().unwrap().clone()
    }

    pub fn bad_signatures(&self) -> usize {
        self.state.bad_sign.load(Ordering::SeqCst)
    }

    /// The payer pays: the trade succeeds; its trade number.
    pub fn pay(&self, otn: &str) -> String {
        let mut orders = self.state.orders.lock().unwrap();
        let o = orders.get_mut(otn).expect("an order the app opened");
        assert_eq!(o.status, "WAIT_BUYER_PAY", "Alipay takes payment only of an open trade");
        o.status = "TRADE_SUCCESS".into();
        o.trade_no = Some(format!("2026112722001{}", random(15)).chars().filter(char::is_ascii_alphanumeric).collect());
        o.trade_no.clone().unwrap()
    }

    /// The trade_status_sync notification of a paid order as a form body, signed by Alipay
    /// (or `forged`); `total` overrides the amount.
    pub fn notification(&self, otn: &str, total: Option<&str>, forged: bool) -> String {
        let o = self.order(otn).expect("an order the app opened");
        let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m-%d %H:%M:%S").to_string();
        let amount = total.unwrap_or(&o.total_amount).to_owned();
        let mut p = BTreeMap::new();
        for (k, v) in [
            ("notify_time", now.clone()),
            ("notify_type", "trade_status_sync".into()),
            ("notify_id", format!("ac05099524730693a8b330c5ecf72da{}", random(6))),
            ("app_id", ALI_APP_ID.into()),
            ("charset", "utf-8".into()),
            ("version", "1.0".into()),
            ("sign_type", "RSA2".into()),
            ("trade_no", o.trade_no.clone().unwrap_or_default()),
            ("out_trade_no", otn.into()),
            ("trade_status", "TRADE_SUCCESS".into()),
            ("total_amount", amount.clone()),
            ("receipt_amount", amount.clone()),
            ("buyer_pay_amount", amount),
            ("seller_id", ALI_SELLER_ID.into()),
            ("subject", "物业账单".into()),
            // empty parameters are signed too
            ("passback_params", String::new()),
            ("gmt_create", now.clone()),
            ("gmt_payment", now),
        ] {
            p.insert(k.to_owned(), v);
        }
        let key = if forged { &self.state.forged } else { &self.state.alipay };
        let content = p
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "sign" | "sign_type"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let sig = sign(key, content.as_bytes());
        p.insert("sign".into(), sig);
        form_urlencoded::Serializer::new(String::new()).extend_pairs(p.iter()).finish()
    }

    pub async fn deliver(&self, url: &str, form: &str) -> (u16, String) {
        let r = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
            .body(form.to_owned())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}
