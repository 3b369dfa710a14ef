//! Connecting to the broker, and each device's own account on it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::dynsec::{self, Dynsec};
use super::model::{BrokerConfigError, BrokerUrl, DeviceAcl, DeviceCredentials};
use crate::kit::audit;
use crate::kit::config::Config;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::rbac::model::Actor;

/// The broker as configured: address, the server's account (password from the URL or the
/// password file) and TLS.
pub fn broker_url(cfg: &Config) -> Result<BrokerUrl, BrokerConfigError> {
    let mut url = BrokerUrl::parse(&cfg.mqtt_url)?;
    if let Some(f) = &cfg.mqtt_password_file {
        let p = std::fs::read_to_string(f).map_err(BrokerConfigError::PasswordFile)?;
        url.password = Some(p.trim_end_matches(['\r', '\n']).to_owned());
    }
    Ok(url)
}

/// Connection options for one of the server's connections.
pub fn mqtt_options(cfg: &Config, client_id: String) -> Result<MqttOptions, BrokerConfigError> {
    let url = broker_url(cfg)?;
    let mut o = MqttOptions::new(client_id, url.host.clone(), url.port);
    if let Some(user) = &url.username {
        o.set_credentials(user.clone(), url.password.clone().unwrap_or_default());
    }
    if url.tls {
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(tls_config(
            cfg.mqtt_ca_file.as_deref(),
        )?))));
    }
    o.set_keep_alive(Duration::from_secs(30));
    // larger than any message we accept (oversized ones are rejected and acknowledged, not
    // left to break the connection), small enough that the in-flight window stays bounded
    let incoming = (cfg.iot.max_payload_bytes * 4).max(256 * 1024);
    o.set_max_packet_size(incoming, 64 * 1024);
    Ok(o)
}

/// The options a device (the simulator, the tests) connects with.
pub fn device_options(
    mqtt_url: &str,
    client_id: String,
    ca_file: Option<&Path>,
) -> Result<MqttOptions, BrokerConfigError> {
    let url = BrokerUrl::parse(mqtt_url)?;
    let mut o = MqttOptions::new(client_id, url.host.clone(), url.port);
    if let Some(user) = &url.username {
        o.set_credentials(user.clone(), url.password.clone().unwrap_or_default());
    }
    if url.tls {
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(tls_config(ca_file)?))));
    }
    Ok(o)
}

fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, BrokerConfigError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(f) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(f)
                .map_err(|e| BrokerConfigError::CaFile(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| BrokerConfigError::CaFile(e.to_string()))?;
            if certs.is_empty() {
                return Err(BrokerConfigError::CaFile("no certificate in the file".into()));
            }
            for c in certs {
                roots.add(c).map_err(|e| BrokerConfigError::CaFile(e.to_string()))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BrokerConfigError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn dynsec_off() -> AppError {
    AppError::wrong_state(
        "deviceId",
        "external",
        Msg::new(
            "设备接入账号由代理服务器管理员在 wuye 之外管理（未启用 mqtt_dynsec）",
            "Broker accounts are managed outside wuye on this server (mqtt_dynsec is off)",
        ),
    )
}

fn broker_failed(e: dynsec::DynsecError) -> AppError {
    tracing::warn!(error = %e, "dynamic-security command failed");
    AppError::Unavailable("broker")
}

/// What `provisionDeviceCredentials` answers a retry with: the password is never stored,
/// so a replayed call says who, not the secret.
#[derive(Serialize, Deserialize)]
pub struct Provisioned {
    pub device_id: Uuid,
    pub username: String,
}

/// Gives a device its own broker account with a fresh password (any earlier password stops
/// working, and a device connected with it is disconnected). The password is returned
/// once and kept only by the broker.
pub async fn provision_device(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    device_id: Uuid,
) -> AppResult<(Provisioned, Option<DeviceCredentials>)> {
    let (_, path) = crate::equipment::service::device_for_broker(state, actor, device_id).await?;
    if !state.config.mqtt_dynsec {
        return Err(dynsec_off());
    }
    let dynsec = state.part::<Dynsec>()?;
    let mut tx = match retry.begin::<Provisioned>(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok((done, None)),
    };
    let now = state.clock.now();
    let username = path.username();
    crate::equipment::service::set_broker_account(&mut tx, actor, device_id, Some(&username), Some(now)).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "device.broker_provision",
        "device",
        Some(device_id),
        serde_json::json!({ "username": username }),
    )
    .await?;
    let password = crate::kit::crypto::random_token()[..24].to_owned();
    let acl = DeviceAcl::of(&state.config.mqtt_topic_root, &path);
    dynsec::provision(dynsec, &state.mqtt, &username, &password, &acl).await.map_err(broker_failed)?;
    let out = Provisioned { device_id, username: username.clone() };
    tx.commit(&out).await?;
    Ok((out, Some(DeviceCredentials { username, password, acl })))
}

/// Removes a device's broker account: it can no longer connect.
pub async fn revoke_device(state: &AppState, actor: &Actor, retry: &Retry, device_id: Uuid) -> AppResult<Uuid> {
    let (_, path) = crate::equipment::service::device_for_broker(state, actor, device_id).await?;
    if !state.config.mqtt_dynsec {
        return Err(dynsec_off());
    }
    let dynsec = state.part::<Dynsec>()?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let now = state.clock.now();
    crate::equipment::service::set_broker_account(&mut tx, actor, device_id, None, None).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "device.broker_revoke",
        "device",
        Some(device_id),
        serde_json::json!({ "username": path.username() }),
    )
    .await?;
    dynsec::revoke(dynsec, &state.mqtt, &path.username()).await.map_err(broker_failed)?;
    tx.commit(&device_id).await?;
    Ok(device_id)
}

/// At connect: the server's own account gets its role (publish commands, read device
/// topics), and unknown clients get nothing.
pub async fn prepare_broker(state: &AppState) {
    if !state.config.mqtt_dynsec {
        return;
    }
    let Ok(dynsec) = state.part::<Dynsec>() else { return };
    let user = broker_url(&state.config).ok().and_then(|u| u.username).unwrap_or_default();
    if let Err(e) = dynsec::ensure_server_role(
        dynsec,
        &state.mqtt,
        &user,
        &state.config.mqtt_topic_root,
        &state.config.mqtt_share_group,
    )
    .await
    {
        tracing::error!(error = %e, "the broker's dynamic-security setup failed: device commands may be refused");
    }
}
