//! The broker's address and a device's broker account.

use crate::equipment::model::TopicPath;

/// Why the broker settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BrokerConfigError {
    #[error("WUYE_MQTT_URL: {0}")]
    Url(&'static str),
    #[error("WUYE_MQTT_PASSWORD_FILE: {0}")]
    PasswordFile(std::io::Error),
    #[error("WUYE_MQTT_CA_FILE: {0}")]
    CaFile(String),
    #[error("TLS: {0}")]
    Tls(String),
}

/// `mqtt://[user:password@]host[:port]` or `mqtts://…`, user and password percent-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl BrokerUrl {
    pub fn parse(url: &str) -> Result<BrokerUrl, BrokerConfigError> {
        let (scheme, rest) = url.split_once("://").ok_or(BrokerConfigError::Url("expected mqtt:// or mqtts://"))?;
        let tls = match scheme {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            _ => return Err(BrokerConfigError::Url("the scheme is mqtt:// or mqtts://")),
        };
        let rest = rest.split('/').next().unwrap_or(rest);
        let (creds, hostport) = match rest.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, rest),
        };
        let (username, password) = match creds {
            Some(c) => {
                let (u, p) = match c.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (c, None),
                };
                (Some(percent_decode(u)?), p.map(percent_decode).transpose()?)
            }
            None => (None, None),
        };
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(BrokerConfigError::Url("unclosed [ in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| BrokerConfigError::Url("the port is not a number"))?,
                None => default_port,
            };
            (h.to_owned(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => {
                    (h.to_owned(), p.parse().map_err(|_| BrokerConfigError::Url("the port is not a number"))?)
                }
                None => (hostport.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err(BrokerConfigError::Url("no host"));
        }
        Ok(BrokerUrl { tls, host, port, username: username.filter(|u| !u.is_empty()), password })
    }
}

fn percent_decode(s: &str) -> Result<String, BrokerConfigError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(BrokerConfigError::Url("a % without two hex digits"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| BrokerConfigError::Url("a % without two hex digits"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| BrokerConfigError::Url("credentials are not UTF-8"))
}

/// What a device may do on the broker: publish its telemetry, status, events and command
/// answers, and read its own command topic. Nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAcl {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

impl DeviceAcl {
    pub fn of(root: &str, path: &TopicPath) -> DeviceAcl {
        DeviceAcl {
            publish: ["telemetry", "status", "event", "command/ack"].iter().map(|l| path.topic(root, l)).collect(),
            subscribe: vec![path.topic(root, "command")],
        }
    }
}

/// A device's broker account as provisioned: the password is shown once; the device
/// connects with the username as its MQTT client id too.
#[derive(Debug, Clone)]
pub struct DeviceCredentials {
    pub username: String,
    pub password: String,
    pub acl: DeviceAcl,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = BrokerUrl::parse("mqtt://wuye-api:p%40ss%3Aword@broker:1884").unwrap();
        assert_eq!(
            u,
            BrokerUrl {
                tls: false,
                host: "broker".into(),
                port: 1884,
                username: Some("wuye-api".into()),
                password: Some("p@ss:word".into())
            }
        );
        let u = BrokerUrl::parse("mqtts://mq.example.com").unwrap();
        assert!(u.tls);
        assert_eq!((u.port, u.username), (8883, None));
        assert_eq!(BrokerUrl::parse("mqtt://[::1]:1883").unwrap().host, "::1");
        assert!(BrokerUrl::parse("http://x").is_err());
        assert!(BrokerUrl::parse("mqtt://:1883").is_err());
        assert!(BrokerUrl::parse("mqtt://u:%zz@h").is_err());
    }

    #[test]
    fn acl_is_the_device_own_topics() {
        let p = TopicPath { company: "JCWY".into(), device: "JC-ELV-11".into() };
        let acl = DeviceAcl::of("wuye", &p);
        assert!(acl.publish.contains(&"wuye/JCWY/JC-ELV-11/telemetry".to_owned()));
        assert!(acl.publish.contains(&"wuye/JCWY/JC-ELV-11/command/ack".to_owned()));
        assert!(!acl.publish.iter().any(|t| t.ends_with("/command")));
        assert_eq!(acl.subscribe, vec!["wuye/JCWY/JC-ELV-11/command".to_owned()]);
    }
}
