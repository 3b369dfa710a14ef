//! Alipay (open platform, RSA2): requests are form posts to the gateway signed
//! SHA256withRSA over the sorted parameters; answers are verified over the exact JSON text
//! of their `…_response` member; notifications are form posts verified over their sorted
//! parameters without `sign` and `sign_type`, answered with the plain text `success`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDateTime, Utc};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::gateway::{
    Gateway, NotifyRequest, PayError, PrepayRequest, RefundRequest, RefundState, Trade, TradeState, private_key,
    public_key, read_key_file, rsa_sign, rsa_verify,
};
use super::model::PayChannel;
use crate::kit::clock::BUSINESS_TZ;
use crate::kit::config::AlipayMerchant;

pub struct Alipay {
    http: reqwest::Client,
    gateway: String,
    app_id: String,
    seller_id: Option<String>,
    key: EncodingKey,
    alipay_key: DecodingKey,
}

/// A notification's signed text: every parameter but `sign` and `sign_type`, empty ones
/// included, sorted, `k=v` joined by `&`.
pub fn notify_sign_content(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "sign" | "sign_type"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A request's signed text: the sorted parameters, empty values and the excluded keys left out.
pub fn sign_content(params: &BTreeMap<String, String>, exclude: &[&str]) -> String {
    params
        .iter()
        .filter(|(k, v)| !v.is_empty() && !exclude.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn shanghai(t: DateTime<Utc>) -> String {
    t.with_timezone(&BUSINESS_TZ).format("%Y-%m-%d %H:%M:%S").to_string()
}

fn parse_shanghai(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .and_then(|n| n.and_local_timezone(BUSINESS_TZ).single())
        .map(|t| t.with_timezone(&Utc))
}

fn trade_state(s: &str) -> TradeState {
    match s {
        "TRADE_SUCCESS" | "TRADE_FINISHED" => TradeState::Paid,
        "WAIT_BUYER_PAY" => TradeState::NotPaid,
        "TRADE_CLOSED" => TradeState::Closed,
        other => TradeState::Other(other.to_owned()),
    }
}

fn amount(v: Option<&str>) -> Option<Decimal> {
    v.and_then(|a| a.parse::<Decimal>().ok())
}

impl Alipay {
    pub fn new(m: &AlipayMerchant) -> Result<Self, PayError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| PayError::Transport(e.to_string()))?;
        Ok(Alipay {
            http,
            gateway: m.gateway.clone(),
            app_id: m.app_id.clone(),
            seller_id: m.seller_id.clone(),
            key: private_key(&read_key_file(&m.private_key_file)?)?,
            alipay_key: public_key(&read_key_file(&m.alipay_public_key_file)?)?,
        })
    }

    fn signed(
        &self,
        method: &str,
        biz: &Value,
        notify_url: Option<&str>,
    ) -> Result<BTreeMap<String, String>, PayError> {
        let mut p = BTreeMap::new();
        p.insert("app_id".to_owned(), self.app_id.clone());
        p.insert("method".to_owned(), method.to_owned());
        p.insert("format".to_owned(), "JSON".to_owned());
        p.insert("charset".to_owned(), "utf-8".to_owned());
        p.insert("sign_type".to_owned(), "RSA2".to_owned());
        p.insert("timestamp".to_owned(), shanghai(Utc::now()));
        p.insert("version".to_owned(), "1.0".to_owned());
        p.insert("biz_content".to_owned(), biz.to_string());
        if let Some(n) = notify_url {
            p.insert("notify_url".to_owned(), n.to_owned());
        }
        let sign = rsa_sign(&self.key, sign_content(&p, &["sign"]).as_bytes())?;
        p.insert("sign".to_owned(), sign);
        Ok(p)
    }

    /// Calls a gateway method; the `…_response` object once its signature verifies.
    async fn call(&self, method: &str, biz: &Value) -> Result<Value, PayError> {
        let params = self.signed(method, biz, None)?;
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
        let resp = self
            .http
            .post(format!("{}?charset=utf-8", self.gateway))
            .header("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
            .body(body)
            .send()
            .await
            .map_err(|e| PayError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| PayError::Transport(e.to_string()))?;
        if status != 200 {
            return Err(PayError::Transport(format!("HTTP {status}")));
        }
        let parts: HashMap<String, &RawValue> =
            serde_json::from_str(&text).map_err(|e| PayError::Malformed(e.to_string()))?;
        let node = format!("{}_response", method.replace('.', "_"));
        let (raw, signed) = match parts.get(&node) {
            Some(r) => (*r, true),
            None => (*parts.get("error_response").ok_or_else(|| PayError::Malformed("no response".into()))?, false),
        };
        let sign: Option<String> = parts.get("sign").and_then(|s| serde_json::from_str(s.get()).ok());
        match sign {
            Some(s) if rsa_verify(&self.alipay_key, raw.get().as_bytes(), &s) => {}
            // an error_response about our own request (bad app id, bad signature) comes unsigned
            None if !signed => {}
            _ => return Err(PayError::Signature("the gateway's answer does not verify")),
        }
        let v: Value = serde_json::from_str(raw.get()).map_err(|e| PayError::Malformed(e.to_string()))?;
        if v["code"].as_str() != Some("10000") {
            let code = v["sub_code"].as_str().or(v["code"].as_str()).unwrap_or("UNKNOWN").to_owned();
            let message = v["sub_msg"].as_str().or(v["msg"].as_str()).unwrap_or_default().to_owned();
            if code.ends_with("SYSTEM_ERROR") || v["code"].as_str() == Some("20000") {
                return Err(PayError::Transport(format!("{code}: {message}")));
            }
            return Err(PayError::Refused { code, message });
        }
        Ok(v)
    }
}

#[async_trait::async_trait]
impl Gateway for Alipay {
    async fn prepay(&self, o: &PrepayRequest<'_>) -> Result<Value, PayError> {
        if o.channel != PayChannel::App {
            return Err(PayError::Malformed("Alipay takes app payments here".into()));
        }
        let biz = json!({
            "out_trade_no": o.out_trade_no,
            "total_amount": format!("{:.2}", o.amount),
            "subject": o.description,
            "product_code": "QUICK_MSECURITY_PAY",
            "time_expire": shanghai(o.expires_at),
        });
        let params = self.signed("alipay.trade.app.pay", &biz, Some(o.notify_url))?;
        let order = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
        Ok(json!({ "orderString": order }))
    }

    async fn query(&self, out_trade_no: &str) -> Result<Trade, PayError> {
        match self.call("alipay.trade.query", &json!({ "out_trade_no": out_trade_no })).await {
            Ok(v) => {
                if v["out_trade_no"].as_str() != Some(out_trade_no) {
                    return Err(PayError::Malformed("the answer is about another order".into()));
                }
                Ok(Trade {
                    out_trade_no: out_trade_no.to_owned(),
                    state: trade_state(v["trade_status"].as_str().unwrap_or_default()),
                    transaction_id: v["trade_no"].as_str().map(str::to_owned),
                    amount: amount(v["total_amount"].as_str()),
                    paid_at: v["send_pay_date"].as_str().and_then(parse_shanghai),
                })
            }
            Err(PayError::Refused { code, .. }) if code == "ACQ.TRADE_NOT_EXIST" => Ok(Trade {
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
        match self.call("alipay.trade.close", &json!({ "out_trade_no": out_trade_no })).await {
            Ok(_) => Ok(true),
            // the app has not opened the order string yet: Alipay cannot close it, and it
            // stays payable until it expires
            Err(PayError::Refused { code, .. }) if code == "ACQ.TRADE_NOT_EXIST" => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn refund(&self, r: &RefundRequest<'_>) -> Result<RefundState, PayError> {
        let biz = json!({
            "out_trade_no": r.out_trade_no,
            "refund_amount": format!("{:.2}", r.amount),
            "out_request_no": r.out_refund_no,
            "refund_reason": r.reason.chars().take(80).collect::<String>(),
        });
        match self.call("alipay.trade.refund", &biz).await {
            // money moved now; "N" (a repeat, or not yet): confirmed by the refund query
            Ok(v) if v["fund_change"].as_str() == Some("Y") => {
                Ok(RefundState::Succeeded { refund_id: Some(r.out_refund_no.to_owned()) })
            }
            Ok(_) => self.refund_status(r).await,
            Err(PayError::Refused { code, message }) => Ok(RefundState::Failed(format!("{code}: {message}"))),
            Err(e) => Err(e),
        }
    }

    async fn refund_status(&self, r: &RefundRequest<'_>) -> Result<RefundState, PayError> {
        let biz = json!({ "out_trade_no": r.out_trade_no, "out_request_no": r.out_refund_no });
        let v = self.call("alipay.trade.fastpay.refund.query", &biz).await?;
        // a refund that exists answers with its number; REFUND_SUCCESS (or no status) is done
        if v["out_request_no"].as_str() != Some(r.out_refund_no) {
            return Ok(RefundState::Processing { refund_id: None });
        }
        Ok(match v["refund_status"].as_str() {
            None | Some("REFUND_SUCCESS") => RefundState::Succeeded { refund_id: Some(r.out_refund_no.to_owned()) },
            Some(_) => RefundState::Processing { refund_id: None },
        })
    }

    fn notice(&self, n: &NotifyRequest<'_>, _now: DateTime<Utc>) -> Result<Trade, PayError> {
        let params: BTreeMap<String, String> =
            form_urlencoded::parse(n.body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let sign = params.get("sign").ok_or(PayError::Signature("no sign"))?;
        if params.get("sign_type").map(String::as_str) != Some("RSA2") {
            return Err(PayError::Signature("sign_type is not RSA2"));
        }
        if !rsa_verify(&self.alipay_key, notify_sign_content(&params).as_bytes(), sign) {
            return Err(PayError::Signature("signature does not verify"));
        }
        if params.get("app_id") != Some(&self.app_id) {
            return Err(PayError::Malformed("another app's notification".into()));
        }
        if let Some(seller) = &self.seller_id
            && params.get("seller_id") != Some(seller)
        {
            return Err(PayError::Malformed("another seller's notification".into()));
        }
        let get = |k: &str| params.get(k).map(String::as_str);
        Ok(Trade {
            out_trade_no: get("out_trade_no").ok_or_else(|| PayError::Malformed("no out_trade_no".into()))?.to_owned(),
            state: trade_state(get("trade_status").unwrap_or_default()),
            transaction_id: get("trade_no").map(str::to_owned),
            amount: amount(get("total_amount")),
            paid_at: get("gmt_payment").and_then(parse_shanghai),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_content_sorts_and_skips() {
        let mut p = BTreeMap::new();
        p.insert("b".to_owned(), "2".to_owned());
        p.insert("a".to_owned(), "1 x".to_owned());
        p.insert("empty".to_owned(), String::new());
        p.insert("sign".to_owned(), "S".to_owned());
        p.insert("sign_type".to_owned(), "RSA2".to_owned());
        assert_eq!(sign_content(&p, &["sign"]), "a=1 x&b=2&sign_type=RSA2");
        assert_eq!(sign_content(&p, &["sign", "sign_type"]), "a=1 x&b=2");
        assert_eq!(notify_sign_content(&p), "a=1 x&b=2&empty=");
    }

    #[test]
    fn shanghai_times_round_trip() {
        let t = parse_shanghai("2026-11-28 08:30:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-28T00:30:00+00:00");
        assert_eq!(shanghai(t), "2026-11-28 08:30:00");
    }
}
