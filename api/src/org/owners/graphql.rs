//! Owners and residents: types, the residents loader, queries and mutations.
//! `Owner.houses` is resolved in `estate/graphql.rs`: houses sit above owners.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model;
use super::service::{self, OwnerInput};
use crate::kit::gql::{Conn, StateExt, group_by, parse_id, parse_opt_id, to_id};
use crate::kit::pagination::Page;
use crate::kit::state::AppState;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

// ---- types ----------------------------------------------------------------------------

/// 住户关系 how a person is linked to a house.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Relation")]
pub enum Relation {
    /// 产权人 owns the house
    Owner,
    /// 家庭成员 a member of the owner's household
    Member,
    /// 租户 rents the house
    Tenant,
}

/// 业主/住户 a person registered by the property office (owner, household member or tenant).
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Owner {
    /// the owner record's id
    pub id: ID,
    /// the person's name
    pub name: String,
    /// mobile number: masked (138****0001) unless it is the caller's own record or the caller holds `pii:read`
    pub phone: String,
    /// 身份证号: masked (110105********002X) likewise
    pub id_card_number: Option<String>,
    /// whether the person has activated the app account
    pub activated: bool,
    /// when the person was registered
    pub created_at: DateTime<Utc>,
    /// the record's id, for the fields resolved in `estate`
    #[graphql(skip)]
    pub(crate) owner_id: Uuid,
}

impl From<model::OwnerView> for Owner {
    fn from(v: model::OwnerView) -> Self {
        Owner {
            id: to_id(v.owner.id),
            name: v.owner.name,
            phone: v.phone,
            id_card_number: v.id_card_number,
            activated: v.owner.activated,
            created_at: v.owner.created_at,
            owner_id: v.owner.id,
        }
    }
}

/// A person linked to a house.
#[derive(SimpleObject)]
pub struct Resident {
    /// the person's owner record
    pub owner_id: ID,
    /// the person's name
    pub name: String,
    /// mobile number: masked unless it is the caller's own or the caller holds `pii:read`
    pub phone: String,
    /// how the person is linked to the house
    pub relation: Relation,
}

impl From<model::Resident> for Resident {
    fn from(r: model::Resident) -> Self {
        Resident { owner_id: to_id(r.owner_id), name: r.name, phone: r.phone, relation: r.relation.into() }
    }
}

// ---- loaders --------------------------------------------------------------------------

/// Residents per house, batched per request (unmasked: `service::house_residents` decides
/// what the caller sees).
pub struct ResidentsLoader(pub AppState);

impl From<AppState> for ResidentsLoader {
    fn from(s: AppState) -> Self {
        ResidentsLoader(s)
    }
}

impl Loader<Uuid> for ResidentsLoader {
    type Value = Vec<model::Resident>;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::residents(&self.0, keys).await.map_err(|e| e.to_string())?;
        Ok(group_by(rows, |r| r.house_id))
    }
}

// ---- reads and payloads ---------------------------------------------------------------

/// A person as the caller may see them (their own record, or within `owner:read`).
pub async fn load_owner(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Owner> {
    let actor = ctx.actor()?;
    let state = ctx.state();
    let o = service::owner(state, &actor, id).await?;
    Ok(service::view_owner(state, &actor, o).into())
}

crate::object_payload!(
    /// The person a mutation registered or changed.
    OwnerPayload, owner: Owner, load_owner, "the person as they are now"
);

// ---- queries --------------------------------------------------------------------------

#[derive(Default)]
pub struct OwnersQuery;

#[Object]
impl OwnersQuery {
    /// Owners living in the caller's projects (`owner:read`), in registration order;
    /// `idCardNumber` finds one by the blind index.
    #[graphql(guard = "Perm::OwnerRead")]
    async fn owners(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "only people linked to a house of this project")] project_id: Option<ID>,
        #[graphql(desc = "part of the name or phone, taken literally")] search: Option<String>,
        #[graphql(desc = "a whole 18-character ID-card number")] id_card_number: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Owner>> {
        let actor = ctx.actor()?;
        let state = ctx.state();
        let page = Page::<Uuid>::new(ctx, first, after)?;
        let project_id = parse_opt_id("projectId", project_id.as_ref())?;
        let rows = service::owners(
            state,
            &actor,
            project_id,
            search.as_deref(),
            id_card_number.as_deref(),
            page.after,
            page.fetch(),
        )
        .await?;
        Ok(page.connection(rows, |o| o.id, |o| Owner::from(service::view_owner(state, &actor, o))))
    }

    /// A person: the caller's own record, or one within `owner:read`.
    async fn owner(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Owner> {
        load_owner(ctx, parse_id("id", &id)?).await
    }
}

// ---- mutations ------------------------------------------------------------------------

/// A house to link a person to, and how.
#[derive(InputObject)]
pub struct HouseLinkInput {
    /// the house
    pub house_id: ID,
    /// how the person is linked to it
    pub relation: Relation,
}

/// 业主登记: a person and the houses they are linked to.
#[derive(InputObject)]
pub struct RegisterOwnerInput {
    /// the person's name
    pub name: String,
    /// mainland mobile number; one owner per phone in a company
    pub phone: String,
    /// 18-character resident ID-card number (GB 11643), stored encrypted
    pub id_card_number: Option<String>,
    /// houses to link the person to, within the caller's `owner:write` scope
    #[graphql(default)]
    pub houses: Vec<HouseLinkInput>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A person to link to a house.
#[derive(InputObject)]
pub struct LinkOwnerHouseInput {
    /// the person
    pub owner_id: ID,
    /// the house, within the caller's `owner:write` scope
    pub house_id: ID,
    /// how the person is linked to it
    pub relation: Relation,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A person's link to a house, to end.
#[derive(InputObject)]
pub struct UnlinkOwnerHouseInput {
    /// the person
    pub owner_id: ID,
    /// the house, within the caller's `owner:write` scope
    pub house_id: ID,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

#[derive(Default)]
pub struct OwnersMutation;

#[Object]
impl OwnersMutation {
    /// 业主登记 (`owner:write`): the person can then activate the app with an SMS code; a
    /// member of staff with that phone keeps their one account.
    #[graphql(guard = "Perm::OwnerWrite")]
    async fn register_owner(
        &self,
        ctx: &Context<'_>,
        input: RegisterOwnerInput,
    ) -> async_graphql::Result<OwnerPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let mut houses = Vec::with_capacity(input.houses.len());
        for h in &input.houses {
            houses.push((parse_id("houses.houseId", &h.house_id)?, model::Relation::from(h.relation)));
        }
        let id = service::register_owner(
            ctx.state(),
            &actor,
            &retry,
            OwnerInput {
                name: &input.name,
                phone: &input.phone,
                id_card_number: input.id_card_number.as_deref(),
                houses,
            },
        )
        .await?;
        Ok(OwnerPayload::new(input.client_mutation_id, id))
    }

    /// Links a person to a house (`owner:write` over the house's project).
    #[graphql(guard = "Perm::OwnerWrite")]
    async fn link_owner_house(
        &self,
        ctx: &Context<'_>,
        input: LinkOwnerHouseInput,
    ) -> async_graphql::Result<OwnerPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = service::link_house(
            ctx.state(),
            &actor,
            &retry,
            parse_id("ownerId", &input.owner_id)?,
            parse_id("houseId", &input.house_id)?,
            input.relation.into(),
        )
        .await?;
        Ok(OwnerPayload::new(input.client_mutation_id, id))
    }

    /// Ends a person's link to a house (`owner:write` over the house's project).
    #[graphql(guard = "Perm::OwnerWrite")]
    async fn unlink_owner_house(
        &self,
        ctx: &Context<'_>,
        input: UnlinkOwnerHouseInput,
    ) -> async_graphql::Result<OwnerPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = service::unlink_house(
            ctx.state(),
            &actor,
            &retry,
            parse_id("ownerId", &input.owner_id)?,
            parse_id("houseId", &input.house_id)?,
        )
        .await?;
        Ok(OwnerPayload::new(input.client_mutation_id, id))
    }
}
