//! Device broker accounts over GraphQL: provision (a fresh password, shown once) and revoke.

use async_graphql::{ComplexObject, Context, ID, InputObject, Object, SimpleObject};
use uuid::Uuid;

use super::service;
use crate::equipment::graphql::{Device, load_device};
use crate::kit::gql::{StateExt, parse_id};
use crate::rbac::graphql::ActorExt;

/// What a device may do on the broker.
#[derive(SimpleObject)]
pub struct DeviceTopics {
    /// topics it may publish to: telemetry, status, event and command/ack
    pub publish: Vec<String>,
    /// the one topic it may subscribe to: its commands
    pub subscribe: Vec<String>,
}

/// 设备接入凭据 a device's broker account.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ProvisionDeviceCredentialsPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// the MQTT username: `{companyCode}/{deviceCode}`
    pub username: String,
    /// the MQTT password: shown this once (the broker keeps only a hash); null when a retry
    /// replays the call — provision again to set a new one
    pub password: Option<String>,
    /// what the account may do (null on a replayed retry)
    pub topics: Option<DeviceTopics>,
    #[graphql(skip)]
    pub device_id: Uuid,
}

#[ComplexObject]
impl ProvisionDeviceCredentialsPayload {
    /// the device, with its broker username recorded
    async fn device(&self, ctx: &Context<'_>) -> async_graphql::Result<Device> {
        load_device(ctx, self.device_id).await
    }
}

crate::object_payload!(
    /// The device whose broker account was removed.
    RevokeDeviceCredentialsPayload, device: Device, load_device, "the device, without a broker account now"
);

/// The device whose broker account to create, replace or remove.
#[derive(InputObject)]
pub struct DeviceCredentialsInput {
    /// the device (`equipment:write` over its project)
    pub device_id: ID,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

#[derive(Default)]
pub struct BrokerMutation;

#[Object]
impl BrokerMutation {
    /// 设备接入: gives a device its own broker account with a fresh password — it may then
    /// publish only its own telemetry, status, event and command/ack topics and read only
    /// its own command topic. An earlier password stops working at once. Needs
    /// `equipment:write` over the device's project and a broker with dynamic security.
    async fn provision_device_credentials(
        &self,
        ctx: &Context<'_>,
        input: DeviceCredentialsInput,
    ) -> async_graphql::Result<ProvisionDeviceCredentialsPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let (done, creds) =
            service::provision_device(ctx.state(), &actor, &retry, parse_id("deviceId", &input.device_id)?).await?;
        Ok(ProvisionDeviceCredentialsPayload {
            client_mutation_id: input.client_mutation_id,
            username: done.username,
            password: creds.as_ref().map(|c| c.password.clone()),
            topics: creds.map(|c| DeviceTopics { publish: c.acl.publish, subscribe: c.acl.subscribe }),
            device_id: done.device_id,
        })
    }

    /// Removes a device's broker account: it can no longer connect (a connected session is
    /// closed). Same permission as provisioning.
    async fn revoke_device_credentials(
        &self,
        ctx: &Context<'_>,
        input: DeviceCredentialsInput,
    ) -> async_graphql::Result<RevokeDeviceCredentialsPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = service::revoke_device(ctx.state(), &actor, &retry, parse_id("deviceId", &input.device_id)?).await?;
        Ok(RevokeDeviceCredentialsPayload::new(input.client_mutation_id, id))
    }
}
