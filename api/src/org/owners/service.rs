//! Owner rules: who may see and change which person, masking of personal data, and one
//! account per person. A person is reached within the caller's company, then through the
//! projects of the houses they are linked to.

use uuid::Uuid;

use super::model::{CheckedOwner, Owner, OwnerView, Relation, Resident};
use super::repo::{self, NewOwner, OwnerFilter};
use crate::kit::audit;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::{Retry, Tx};
use crate::kit::state::AppState;
use crate::kit::types::{self, IdCardNumber, Phone};
use crate::rbac::model::{Actor, Perm, ProjectFilter};

// ---- what a caller sees ------------------------------------------------------------------

/// A person's phone and ID-card number as the caller may see them: in clear for their
/// own record or with `pii:read`, masked otherwise.
pub fn view_owner(state: &AppState, actor: &Actor, owner: Owner) -> OwnerView {
    let unmask = actor.unmask_pii() || actor.owner_id == Some(owner.id);
    let id_card = owner.id_card_enc.as_deref().map(|ct| match state.keys.decrypt_pii(ct) {
        Ok(plain) if unmask => plain,
        Ok(plain) => IdCardNumber::masked(&plain),
        Err(e) => {
            tracing::error!(owner = %owner.id, error = %e, "ID-card number does not decrypt");
            "****".into()
        }
    });
    let phone = if unmask { owner.phone.clone() } else { Phone::masked(&owner.phone) };
    OwnerView { phone, id_card_number: id_card, owner }
}

/// Who lives in a house, for staff whose `owner:read` reaches its project or for one of
/// the residents; phones masked as for `view_owner`.
pub fn house_residents(actor: &Actor, project_id: Uuid, rows: Vec<Resident>) -> AppResult<Vec<Resident>> {
    let staff = actor.projects(Perm::OwnerRead).is_ok_and(|f| f.allows(project_id));
    let resident = actor.owner_id.is_some_and(|o| rows.iter().any(|r| r.owner_id == o));
    if !staff && !resident {
        return Err(AppError::forbidden());
    }
    Ok(rows
        .into_iter()
        .map(|mut r| {
            if actor.owner_id != Some(r.owner_id) && !actor.unmask_pii() {
                r.phone = Phone::masked(&r.phone);
            }
            r
        })
        .collect())
}

/// Residents of houses the caller has already been shown (for the per-request loader;
/// `house_residents` decides what the caller sees of them).
pub async fn residents(state: &AppState, house_ids: &[Uuid]) -> AppResult<Vec<Resident>> {
    Ok(repo::residents_of_houses(&state.db, house_ids).await?)
}

/// Is the person linked to the house?
pub async fn lives_in(state: &AppState, owner_id: Uuid, house_id: Uuid) -> AppResult<bool> {
    Ok(repo::lives_in(&state.db, owner_id, house_id).await?)
}

/// The app account of an owner record, if it has one.
pub async fn user_of_owner(state: &AppState, company_id: Uuid, owner_id: Uuid) -> AppResult<Option<Uuid>> {
    Ok(repo::get_owner(&state.db, company_id, owner_id).await?.and_then(|o| o.user_id))
}

/// How the person is linked to the house (owner, member, tenant), if at all.
pub async fn relation_to(state: &AppState, owner_id: Uuid, house_id: Uuid) -> AppResult<Option<Relation>> {
    Ok(repo::relation_to(&state.db, owner_id, house_id).await?)
}

async fn owner_in_scope(state: &AppState, actor: &Actor, perm: Perm, id: Uuid) -> AppResult<Owner> {
    let filter = actor.projects(perm)?;
    let o = repo::get_owner(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("owner"))?;
    if let ProjectFilter::Only(ids) = &filter {
        let theirs = repo::projects_of_owner(&state.db, id).await?;
        // a person linked to no house yet is in no project: whoever may register owners sees them
        let unplaced = theirs.is_empty() && actor.projects(Perm::OwnerWrite).is_ok();
        if !unplaced && !theirs.iter().any(|p| ids.contains(p)) {
            return Err(AppError::not_found("owner"));
        }
    }
    Ok(o)
}

/// NOT_FOUND unless the owner belongs to the company and lives in a project `perm` reaches
/// (or in none yet), in the caller's transaction.
pub async fn require_owner_in_scope(tx: &mut sqlx::PgConnection, actor: &Actor, perm: Perm, id: Uuid) -> AppResult<()> {
    let filter = actor.projects(perm)?;
    repo::get_owner(&mut *tx, actor.company_id, id).await?.ok_or(AppError::not_found("owner"))?;
    if let ProjectFilter::Only(ids) = &filter {
        let theirs = repo::projects_of_owner(&mut *tx, id).await?;
        if !theirs.is_empty() && !theirs.iter().any(|p| ids.contains(p)) {
            return Err(AppError::not_found("owner"));
        }
    }
    Ok(())
}

/// A person: the caller's own record, or one within `owner:read` (or, to read a change
/// back, `owner:write`).
pub async fn owner(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Owner> {
    if actor.owner_id == Some(id) {
        return repo::get_owner(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("owner"));
    }
    let perm = if actor.has(Perm::OwnerRead) { Perm::OwnerRead } else { Perm::OwnerWrite };
    owner_in_scope(state, actor, perm, id).await
}

/// Owners living in the projects `owner:read` reaches, in id order. `search` matches
/// name or phone literally; `id_card_number` finds one through the blind index.
pub async fn owners(
    state: &AppState,
    actor: &Actor,
    project_id: Option<Uuid>,
    search: Option<&str>,
    id_card_number: Option<&str>,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Owner>> {
    let filter = actor.projects(Perm::OwnerRead)?;
    if let Some(p) = project_id {
        actor.require_project(Perm::OwnerRead, p)?;
    }
    // searching by ID number goes through the blind index: the number is never stored in clear
    let idx = match id_card_number.map(str::trim).filter(|s| !s.is_empty()) {
        Some(n) => {
            let n = IdCardNumber::parse("idCardNumber", n)?;
            crate::rbac::service::pii_lookup(state, actor, "idCard", n.as_str()).await?;
            Some(state.keys.blind_index(n.as_str()))
        }
        None => None,
    };
    let search = crate::rbac::service::person_search(state, actor, search).await?;
    let only = filter.as_sql();
    let f = OwnerFilter {
        projects: only.as_deref(),
        project_id,
        search: search.like.as_deref(),
        phone_partial: search.phone_partial,
        phone_exact: search.phone_exact.as_deref(),
        id_card_idx: idx.as_deref(),
    };
    Ok(repo::list_owners(&state.db, actor.company_id, &f, after, limit as i64).await?)
}

// ---- registering people ------------------------------------------------------------------

/// Validates owner fields; `prefix` is put before the field names (`owner` in the import).
pub fn check_owner(name: &str, phone: &str, id_card: Option<&str>, prefix: &str) -> AppResult<CheckedOwner> {
    let f = |n: &str| format!("{prefix}{n}");
    Ok(CheckedOwner {
        name: types::text(f("name"), name, 50)?,
        phone: Phone::parse(f("phone"), phone)?,
        id_card: match id_card.map(str::trim).filter(|s| !s.is_empty()) {
            Some(n) => Some(IdCardNumber::parse(f("idCardNumber"), n)?),
            None => None,
        },
    })
}

/// The owner of a phone in the company, if one is registered.
pub async fn owner_id_by_phone(
    tx: &mut sqlx::PgConnection,
    company_id: Uuid,
    phone: &Phone,
) -> AppResult<Option<Uuid>> {
    Ok(repo::owner_id_by_phone(tx, company_id, phone.as_str()).await?)
}

/// Is an ID-card number already registered to an owner of the company?
pub async fn id_card_registered(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    company_id: Uuid,
    card: &IdCardNumber,
) -> AppResult<bool> {
    Ok(repo::owner_id_by_id_card(tx, company_id, &state.keys.blind_index(card.as_str())).await?.is_some())
}

/// NOT_FOUND unless the owner belongs to the company.
pub async fn require_owner(tx: &mut sqlx::PgConnection, company_id: Uuid, id: Uuid) -> AppResult<()> {
    repo::get_owner(tx, company_id, id).await?.ok_or(AppError::not_found("owner"))?;
    Ok(())
}

/// Writes an owner record in the caller's transaction, linked to the company's account
/// with that phone (a member of staff who owns a flat keeps one account) or to a new
/// pending account the owner activates by SMS code. The account holds the owner's
/// permissions because it is linked, not through a role grant.
///
/// Returns the owner's id and, when the account existed before, its id: after commit the
/// caller calls `crate::rbac::service::account_changed` for it, so its sessions learn of the
/// owner permissions at once.
pub async fn insert_owner(
    state: &AppState,
    tx: &mut Tx,
    company_id: Uuid,
    o: &CheckedOwner,
) -> AppResult<(Uuid, Option<Uuid>)> {
    let owner_id = Uuid::now_v7();
    let (user_id, existed) = crate::rbac::service::owner_account(tx, company_id, &o.name, &o.phone).await?;
    let enc = o.id_card.as_ref().map(|n| state.keys.encrypt_pii(n.as_str()));
    let idx = o.id_card.as_ref().map(|n| state.keys.blind_index(n.as_str()));
    repo::insert_owner(
        tx,
        &NewOwner {
            id: owner_id,
            company_id,
            user_id: Some(user_id),
            name: &o.name,
            phone: o.phone.as_str(),
            id_card_enc: enc.as_deref(),
            id_card_idx: idx.as_deref(),
        },
    )
    .await?;
    Ok((owner_id, existed.then_some(user_id)))
}

/// Links a person to a house in the caller's transaction (the house's occupancy is the
/// caller's to set: the import inserts houses with it).
pub async fn add_resident(
    tx: &mut sqlx::PgConnection,
    company_id: Uuid,
    project_id: Uuid,
    house_id: Uuid,
    owner_id: Uuid,
    relation: Relation,
) -> AppResult<()> {
    repo::insert_resident(tx, company_id, project_id, house_id, owner_id, relation).await?;
    Ok(())
}

fn phone_registered() -> AppError {
    AppError::conflict(
        "phone",
        Msg::new("该手机号已登记为业主", "An owner with this phone number is already registered"),
    )
}

pub struct OwnerInput<'a> {
    pub name: &'a str,
    pub phone: &'a str,
    pub id_card_number: Option<&'a str>,
    /// (house, relation)
    pub houses: Vec<(Uuid, Relation)>,
}

/// 业主登记: a person, their account and their house links, all or nothing; returns the
/// owner's id. Every house must lie within the caller's `owner:write` scope.
pub async fn register_owner(state: &AppState, actor: &Actor, retry: &Retry, input: OwnerInput<'_>) -> AppResult<Uuid> {
    let filter = actor.projects(Perm::OwnerWrite)?;
    let checked = check_owner(input.name, input.phone, input.id_card_number, "")?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let mut links = Vec::with_capacity(input.houses.len());
    for (house_id, relation) in &input.houses {
        let project =
            repo::house_project(&mut *tx, actor.company_id, *house_id).await?.ok_or(AppError::not_found("house"))?;
        if !filter.allows(project) {
            return Err(AppError::forbidden());
        }
        links.push((*house_id, project, *relation));
    }
    if repo::owner_id_by_phone(&mut *tx, actor.company_id, checked.phone.as_str()).await?.is_some() {
        // "already registered" confirms a number: counted like a lookup by phone
        drop(tx);
        crate::rbac::service::pii_lookup(state, actor, "phone", checked.phone.as_str()).await?;
        return Err(phone_registered());
    }
    let (id, existing_account) = insert_owner(state, &mut tx, actor.company_id, &checked).await?;
    for (house_id, project_id, relation) in &links {
        repo::insert_resident(&mut tx, actor.company_id, *project_id, *house_id, id, *relation).await?;
        repo::set_house_status(&mut tx, *house_id).await?;
    }
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "owner.register",
        "owner",
        Some(id),
        serde_json::json!({ "houses": links.len() }),
    )
    .await?;
    tx.commit(&id).await?;
    crate::org::estate::service::houses_changed(state, actor.company_id).await;
    if let Some(user) = existing_account {
        crate::rbac::service::account_changed(state, user, crate::rbac::service::EVENT_PERMISSIONS_CHANGED).await;
    }
    Ok(id)
}

/// Links a person to a house within the caller's `owner:write` scope; returns the owner's id.
pub async fn link_house(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    owner_id: Uuid,
    house_id: Uuid,
    relation: Relation,
) -> AppResult<Uuid> {
    actor.projects(Perm::OwnerWrite)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let project =
        repo::house_project(&mut *tx, actor.company_id, house_id).await?.ok_or(AppError::not_found("house"))?;
    actor.require_project(Perm::OwnerWrite, project)?;
    // the person must be within the caller's scope too: linking someone who lives elsewhere
    // would show their phone and ID-card number to the caller
    require_owner_in_scope(&mut tx, actor, Perm::OwnerWrite, owner_id).await?;
    repo::insert_resident(&mut tx, actor.company_id, project, house_id, owner_id, relation).await?;
    repo::set_house_status(&mut tx, house_id).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "owner.link",
        "owner",
        Some(owner_id),
        serde_json::json!({ "house": house_id, "relation": relation }),
    )
    .await?;
    tx.commit(&owner_id).await?;
    crate::org::estate::service::houses_changed(state, actor.company_id).await;
    Ok(owner_id)
}

/// Ends a person's link to a house within the caller's `owner:write` scope; returns the
/// owner's id.
pub async fn unlink_house(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    owner_id: Uuid,
    house_id: Uuid,
) -> AppResult<Uuid> {
    actor.projects(Perm::OwnerWrite)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let project =
        repo::house_project(&mut *tx, actor.company_id, house_id).await?.ok_or(AppError::not_found("house"))?;
    actor.require_project(Perm::OwnerWrite, project)?;
    require_owner(&mut tx, actor.company_id, owner_id).await?;
    if repo::delete_resident(&mut tx, house_id, owner_id).await? == 0 {
        return Err(AppError::validation(
            "houseId",
            Msg::new("该住户未关联此房屋", "The person is not linked to this house"),
        ));
    }
    repo::set_house_status(&mut tx, house_id).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "owner.unlink",
        "owner",
        Some(owner_id),
        serde_json::json!({ "house": house_id }),
    )
    .await?;
    tx.commit(&owner_id).await?;
    crate::org::estate::service::houses_changed(state, actor.company_id).await;
    Ok(owner_id)
}

// ---- for other domains ---------------------------------------------------------------------

/// Active app accounts of the people living in a project or one of its buildings.
pub async fn resident_users(state: &AppState, project_id: Uuid, building_id: Option<Uuid>) -> AppResult<Vec<Uuid>> {
    Ok(repo::resident_users(&state.db, project_id, building_id).await?)
}

/// Where an owner lives: (project, building) pairs.
pub async fn homes_of_owner(state: &AppState, owner_id: Uuid) -> AppResult<Vec<(Uuid, Uuid)>> {
    Ok(repo::homes_of_owner(&state.db, owner_id).await?)
}
