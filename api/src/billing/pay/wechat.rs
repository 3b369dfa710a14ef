//! WeChat Pay API v3: requests signed `WECHATPAY2-SHA256-RSA2048` with the merchant key,
//! answers and notifications verified with a platform certificate or the WeChat Pay
//! public key (both modes, chosen by the `Wechatpay-Serial` header), notification
//! resources decrypted with AES-256-GCM under the APIv3 key.

use std::collections::HashMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{DecodingKey, EncodingKey};
use reqwest::Method;
use rust_decimal::Decimal;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::gateway::{
    Gateway, NotifyRequest, PayError, PrepayRequest, RefundRequest, RefundState, Trade, TradeState, fen, nonce,
    private_key, public_key, read_key_file, rsa_sign, rsa_verify,
};
use super::model::PayChannel;
use crate::kit::clock::BUSINESS_TZ;
use crate::kit::config::WechatMerchant;

pub struct WechatPay {
    http: reqwest::Client,
    endpoint: String,
    mchid: String,
    appid: String,
    jsapi_appid: String,
    serial_no: String,
    key: EncodingKey,
    apiv3_key: Aes256Gcm,
    /// platform certificate serial numbers and the public key id → the key that verifies
    verifiers: HashMap<String, DecodingKey>,
    max_skew_secs: i64,
}

impl WechatPay {
    pub fn new(m: &WechatMerchant, max_skew_secs: i64) -> Result<Self, PayError> {
        let key = private_key(&read_key_file(&m.private_key_file)?)?;
        let v3 = m.apiv3_key.expose_secret().as_bytes();
        if v3.len() != 32 {
            return Err(PayError::Key("the APIv3 key must be 32 characters".into()));
        }
        let apiv3_key = Aes256Gcm::new_from_slice(v3).map_err(|_| PayError::Key("APIv3 key".into()))?;
        let mut verifiers = HashMap::new();
        for (serial, path) in &m.platform_certs {
            verifiers.insert(serial.clone(), public_key(&read_key_file(path)?)?);
        }
        match (&m.public_key_id, &m.public_key_file) {
            (Some(id), Some(path)) => {
                verifiers.insert(id.clone(), public_key(&read_key_file(path)?)?);
            }
            (None, None) => {}
            _ => return Err(PayError::Key("public_key_id and public_key_file go together".into())),
        }
        if verifiers.is_empty() {
            return Err(PayError::Key("no platform certificate and no WeChat Pay public key".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| PayError::Transport(e.to_string()))?;
        Ok(WechatPay {
            http,
            endpoint: m.endpoint.trim_end_matches('/').to_owned(),
            mchid: m.mchid.clone(),
            appid: m.appid.clone(),
            jsapi_appid: m.jsapi_appid.clone().unwrap_or_else(|| m.appid.clone()),
            serial_no: m.serial_no.clone(),
            key,
            apiv3_key,
            verifiers,
            max_skew_secs,
        })
    }

    fn authorization(&self, method: &str, path: &str, body: &str) -> Result<String, PayError> {
        let ts = Utc::now().timestamp();
        let n = nonce();
        let sig = rsa_sign(&self.key, format!("{method}\n{path}\n{ts}\n{n}\n{body}\n").as_bytes())?;
        Ok(format!(
            "WECHATPAY2-SHA256-RSA2048 mchid=\"{}\",nonce_str=\"{n}\",signature=\"{sig}\",timestamp=\"{ts}\",serial_no=\"{}\"",
            self.mchid, self.serial_no
        ))
    }

    /// `Wechatpay-Timestamp\nWechatpay-Nonce\nbody\n` signed by the key `Wechatpay-Serial` names.
    fn verify(&self, headers: &HashMap<String, String>, body: &[u8], now: i64) -> Result<(), PayError> {
        let get = |k: &str| headers.get(k).map(String::as_str).ok_or(PayError::Signature("missing Wechatpay headers"));
        let (ts, n, sig, serial) = (
            get("wechatpay-timestamp")?,
            get("wechatpay-nonce")?,
            get("wechatpay-signature")?,
            get("wechatpay-serial")?,
        );
        let t: i64 = ts.parse().map_err(|_| PayError::Signature("bad timestamp"))?;
        if (now - t).abs() > self.max_skew_secs {
            return Err(PayError::Signature("timestamp out of range"));
        }
        let key =
            self.verifiers.get(serial).ok_or(PayError::Signature("unknown certificate serial or public key id"))?;
        let mut msg = Vec::with_capacity(ts.len() + n.len() + body.len() + 3);
        for part in [ts.as_bytes(), n.as_bytes(), body] {
            msg.extend_from_slice(part);
            msg.push(b'\n');
        }
        if !rsa_verify(key, &msg, sig) {
            return Err(PayError::Signature("signature does not verify"));
        }
        Ok(())
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<(u16, Vec<u8>), PayError> {
        let text = body.map(Value::to_string).unwrap_or_default();
        let auth = self.authorization(method.as_str(), path, &text)?;
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.endpoint))
            .header("Authorization", auth)
            .header("Accept", "application/json")
            .header("User-Agent", "wuye-api");
        if body.is_some() {
            req = req.header("Content-Type", "application/json").body(text);
        }
        let resp = req.send().await.map_err(|e| PayError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let headers: HashMap<String, String> = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
            .collect();
        let bytes = resp.bytes().await.map_err(|e| PayError::Transport(e.to_string()))?;
        if status >= 500 || status == 429 {
            return Err(PayError::Transport(format!("HTTP {status}")));
        }
        if (200..300).contains(&status) {
            self.verify(&headers, &bytes, Utc::now().timestamp())?;
            return Ok((status, bytes.to_vec()));
        }
        let e: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Err(PayError::Refused {
            code: e["code"].as_str().map(str::to_owned).unwrap_or_else(|| format!("HTTP_{status}")),
            message: e["message"].as_str().unwrap_or_default().to_owned(),
        })
    }

    fn paid_check(&self, t: &Transaction) -> Result<(), PayError> {
        if t.mchid != self.mchid || (t.appid != self.appid && t.appid != self.jsapi_appid) {
            return Err(PayError::Malformed("another merchant's transaction".into()));
        }
        Ok(())
    }
}

fn refund_state(bytes: &[u8]) -> Result<RefundState, PayError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| PayError::Malformed(e.to_string()))?;
    let id = v["refund_id"].as_str().map(str::to_owned);
    Ok(match v["status"].as_str().unwrap_or_default() {
        "SUCCESS" => RefundState::Succeeded { refund_id: id },
        "PROCESSING" => RefundState::Processing { refund_id: id },
        other => RefundState::Failed(format!("refund {other}")),
    })
}

#[derive(Deserialize)]
struct Amount {
    total: i64,
}

#[derive(Deserialize)]
struct Transaction {
    #[serde(default)]
    appid: String,
    #[serde(default)]
    mchid: String,
    out_trade_no: String,
    transaction_id: Option<String>,
    trade_state: String,
    amount: Option<Amount>,
    success_time: Option<String>,
}

impl Transaction {
    fn trade(self) -> Trade {
        let state = match self.trade_state.as_str() {
            // REFUND: paid, then (part) refunded
            "SUCCESS" | "REFUND" => TradeState::Paid,
            "NOTPAY" => TradeState::NotPaid,
            "CLOSED" | "REVOKED" | "PAYERROR" => TradeState::Closed,
            other => TradeState::Other(other.to_owned()),
        };
        Trade {
            out_trade_no: self.out_trade_no,
            state,
            transaction_id: self.transaction_id.filter(|t| !t.is_empty()),
            amount: self.amount.map(|a| Decimal::new(a.total, 2)),
            paid_at: self
                .success_time
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

#[derive(Deserialize)]
struct Resource {
    algorithm: String,
    ciphertext: String,
    #[serde(default)]
    associated_data: String,
    nonce: String,
}

#[derive(Deserialize)]
struct Notification {
    event_type: String,
    resource: Resource,
}

#[async_trait::async_trait]
impl Gateway for WechatPay {
    async fn prepay(&self, o: &PrepayRequest<'_>) -> Result<Value, PayError> {
        let expire = o.expires_at.with_timezone(&BUSINESS_TZ).format("%Y-%m-%dT%H:%M:%S%:z").to_string();
        let (path, appid) = match o.channel {
            PayChannel::App => ("/v3/pay/transactions/app", &self.appid),
            PayChannel::Jsapi => ("/v3/pay/transactions/jsapi", &self.jsapi_appid),
        };
        let mut body = json!({
            "appid": appid,
            "mchid": self.mchid,
            "description": o.description,
            "out_trade_no": o.out_trade_no,
            "time_expire": expire,
            "notify_url": o.notify_url,
            "amount": { "total": fen(o.amount)?, "currency": "CNY" },
        });
        if o.channel == PayChannel::Jsapi {
            let openid = o.openid.ok_or_else(|| PayError::Malformed("JSAPI needs the payer's openid".into()))?;
            body["payer"] = json!({ "openid": openid });
        }
        let (_, bytes) = self.call(Method::POST, path, Some(&body)).await?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| PayError::Malformed(e.to_string()))?;
        let prepay_id = v["prepay_id"].as_str().ok_or_else(|| PayError::Malformed("no prepay_id".into()))?;
        let ts = Utc::now().timestamp().to_string();
        let n = nonce();
        Ok(match o.channel {
            PayChannel::App => {
                let sign = rsa_sign(&self.key, format!("{appid}\n{ts}\n{n}\n{prepay_id}\n").as_bytes())?;
                json!({ "appid": appid, "partnerid": self.mchid, "prepayid": prepay_id, "package": "Sign=WXPay",
                        "noncestr": n, "timestamp": ts, "sign": sign })
            }
            PayChannel::Jsapi => {
                let package = format!("prepay_id={prepay_id}");
                let sign = rsa_sign(&self.key, format!("{appid}\n{ts}\n{n}\n{package}\n").as_bytes())?;
                json!({ "appId": appid, "timeStamp": ts, "nonceStr": n, "package": package, "signType": "RSA",
                        "paySign": sign })
            }
        })
    }

    async fn query(&self, out_trade_no: &str) -> Result<Trade, PayError> {
        let path = format!("/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={}", self.mchid);
        match self.call(Method::GET, &path, None).await {
            Ok((_, bytes)) => {
                let t: Transaction = serde_json::from_slice(&bytes).map_err(|e| PayError::Malformed(e.to_string()))?;
                if t.out_trade_no != out_trade_no {
                    return Err(PayError::Malformed("the answer is about another order".into()));
                }
                self.paid_check(&t)?;
                Ok(t.trade())
            }
            Err(PayError::Refused { code, .. }) if code == "ORDER_NOT_EXIST" => Ok(Trade {
                out_trade_no: out_trade_no.to_owned(),
                state: TradeState::NotPaid,
                transaction_id: None,
                amount: None,
                paid_at: None,
            }),
            Err(e) => Err(e),
        }
    }

    async fn close(&self, out_trade_no: &str) -> Result<bool, PayError> {
        let path = format!("/v3/pay/transactions/out-trade-no/{out_trade_no}/close");
        match self.call(Method::POST, &path, Some(&json!({ "mchid": self.mchid }))).await {
            Ok(_) => Ok(true),
            // never created there: it cannot be paid either
            Err(PayError::Refused { code, .. }) if code == "ORDER_NOT_EXIST" => Ok(true),
            Err(e) => Err(e),
        }
    }

    async fn refund(&self, r: &RefundRequest<'_>) -> Result<RefundState, PayError> {
        let body = json!({
            "transaction_id": r.transaction_id,
            "out_refund_no": r.out_refund_no,
            "reason": r.reason.chars().take(80).collect::<String>(),
            "amount": { "refund": fen(r.amount)?, "total": fen(r.total)?, "currency": "CNY" },
        });
        match self.call(Method::POST, "/v3/refund/domestic/refunds", Some(&body)).await {
            Ok((_, bytes)) => refund_state(&bytes),
            // worth asking again later: the merchant's balance, limits, WeChat's own trouble
            Err(PayError::Refused { code, message })
                if matches!(code.as_str(), "SYSTEM_ERROR" | "FREQUENCY_LIMITED" | "NOT_ENOUGH") =>
            {
                Err(PayError::Transport(format!("{code}: {message}")))
            }
            Err(PayError::Refused { code, message }) => Ok(RefundState::Failed(format!("{code}: {message}"))),
            Err(e) => Err(e),
        }
    }

    async fn refund_status(&self, r: &RefundRequest<'_>) -> Result<RefundState, PayError> {
        let path = format!("/v3/refund/domestic/refunds/{}", r.out_refund_no);
        match self.call(Method::GET, &path, None).await {
            Ok((_, bytes)) => refund_state(&bytes),
            // never reached WeChat: ask for it again
            Err(PayError::Refused { code, .. }) if code == "RESOURCE_NOT_EXISTS" => self.refund(r).await,
            Err(e) => Err(e),
        }
    }

    fn notice(&self, n: &NotifyRequest<'_>, now: DateTime<Utc>) -> Result<Trade, PayError> {
        self.verify(n.headers, n.body, now.timestamp())?;
        let note: Notification = serde_json::from_slice(n.body).map_err(|e| PayError::Malformed(e.to_string()))?;
        if note.resource.algorithm != "AEAD_AES_256_GCM" {
            return Err(PayError::Malformed(format!("algorithm {}", note.resource.algorithm)));
        }
        let ct = STANDARD.decode(&note.resource.ciphertext).map_err(|_| PayError::Malformed("ciphertext".into()))?;
        let nonce = note.resource.nonce.as_bytes();
        if nonce.len() != 12 {
            return Err(PayError::Malformed("nonce".into()));
        }
        let plain = self
            .apiv3_key
            .decrypt(Nonce::from_slice(nonce), Payload { msg: &ct, aad: note.resource.associated_data.as_bytes() })
            .map_err(|_| PayError::Signature("resource does not decrypt under the APIv3 key"))?;
        let t: Transaction = serde_json::from_slice(&plain).map_err(|e| PayError::Malformed(e.to_string()))?;
        self.paid_check(&t)?;
        let mut trade = t.trade();
        if note.event_type != "TRANSACTION.SUCCESS" && trade.state == TradeState::Paid {
            trade.state = TradeState::Other(note.event_type);
        }
        Ok(trade)
    }
}
