//! SQL for owners and their house links. A link's house is read here by its own SQL
//! (its project, its occupancy), so this part never calls `estate`.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{Owner, Relation, Resident};

pub struct NewOwner<'a> {
    pub id: Uuid,
    pub company_id: Uuid,
    pub user_id: Option<Uuid>,
    pub name: &'a str,
    pub phone: &'a str,
    pub id_card_enc: Option<&'a [u8]>,
    pub id_card_idx: Option<&'a [u8]>,
}

pub async fn insert_owner(db: &mut PgConnection, o: &NewOwner<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO owners (id, company_id, user_id, name, phone, id_card_enc, id_card_idx) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        o.id,
        o.company_id,
        o.user_id,
        o.name,
        o.phone,
        o.id_card_enc,
        o.id_card_idx
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_owner(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Owner>> {
    sqlx::query_as!(
        Owner,
        r#"SELECT o.id, o.company_id, o.user_id, o.name, o.phone, o.id_card_enc,
                  COALESCE(u.status = 'active', false) AS "activated!", o.created_at
           FROM owners o LEFT JOIN users u ON u.id = o.user_id
           WHERE o.company_id = $1 AND o.id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn owner_id_by_phone(db: impl PgExecutor<'_>, company_id: Uuid, phone: &str) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!("SELECT id FROM owners WHERE company_id = $1 AND phone = $2", company_id, phone)
        .fetch_optional(db)
        .await
}

pub async fn owner_id_by_id_card(db: impl PgExecutor<'_>, company_id: Uuid, idx: &[u8]) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!("SELECT id FROM owners WHERE company_id = $1 AND id_card_idx = $2", company_id, idx)
        .fetch_optional(db)
        .await
}

pub struct OwnerFilter<'a> {
    /// `None`: any project of the company
    pub projects: Option<&'a [Uuid]>,
    pub project_id: Option<Uuid>,
    /// a `like_term` (`%` and `_` escaped) for names, and for phones when `phone_partial`
    pub search: Option<&'a str>,
    pub phone_partial: bool,
    /// a whole phone number
    pub phone_exact: Option<&'a str>,
    pub id_card_idx: Option<&'a [u8]>,
}

/// Owners in id order; with a project filter, those linked to a house there.
pub async fn list_owners(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    f: &OwnerFilter<'_>,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Owner>> {
    sqlx::query_as!(
        Owner,
        r#"SELECT o.id, o.company_id, o.user_id, o.name, o.phone, o.id_card_enc,
                  COALESCE(u.status = 'active', false) AS "activated!", o.created_at
           FROM owners o LEFT JOIN users u ON u.id = o.user_id
           WHERE o.company_id = $1
             AND (($2::uuid[] IS NULL AND $3::uuid IS NULL) OR EXISTS (
                   SELECT 1 FROM house_residents r WHERE r.owner_id = o.id
                   AND ($2::uuid[] IS NULL OR r.project_id = ANY($2))
                   AND ($3::uuid IS NULL OR r.project_id = $3)))
             AND ($4::text IS NULL OR o.name LIKE '%' || $4 || '%' ESCAPE '\'
                  OR ($8 AND o.phone LIKE '%' || $4 || '%' ESCAPE '\'))
             AND ($9::text IS NULL OR o.phone = $9)
             AND ($5::bytea IS NULL OR o.id_card_idx = $5)
             AND ($6::uuid IS NULL OR o.id > $6)
           ORDER BY o.id LIMIT $7"#,
        company_id,
        f.projects,
        f.project_id,
        f.search,
        f.id_card_idx,
        after,
        limit,
        f.phone_partial,
        f.phone_exact
    )
    .fetch_all(db)
    .await
}

/// Projects an owner lives in (for data-scope checks on one owner).
pub async fn projects_of_owner(db: impl PgExecutor<'_>, owner_id: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!("SELECT DISTINCT project_id FROM house_residents WHERE owner_id = $1", owner_id)
        .fetch_all(db)
        .await
}

/// The project of a house of the company.
pub async fn house_project(db: impl PgExecutor<'_>, company_id: Uuid, house_id: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!("SELECT project_id FROM houses WHERE company_id = $1 AND id = $2", company_id, house_id)
        .fetch_optional(db)
        .await
}

pub async fn insert_resident(
    db: &mut PgConnection,
    company_id: Uuid,
    project_id: Uuid,
    house_id: Uuid,
    owner_id: Uuid,
    relation: Relation,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO house_residents (house_id, owner_id, company_id, project_id, relation) VALUES ($1, $2, $3, $4, $5)",
        house_id,
        owner_id,
        company_id,
        project_id,
        relation.as_str()
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn delete_resident(db: &mut PgConnection, house_id: Uuid, owner_id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query!("DELETE FROM house_residents WHERE house_id = $1 AND owner_id = $2", house_id, owner_id)
        .execute(db)
        .await?
        .rows_affected())
}

/// A house is occupied while anyone is linked to it.
pub async fn set_house_status(db: &mut PgConnection, house_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE houses SET status = CASE WHEN EXISTS (SELECT 1 FROM house_residents WHERE house_id = $1) THEN 'occupied' ELSE 'vacant' END
         WHERE id = $1",
        house_id
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn residents_of_houses(db: impl PgExecutor<'_>, house_ids: &[Uuid]) -> sqlx::Result<Vec<Resident>> {
    sqlx::query_as!(
        Resident,
        r#"SELECT r.house_id, r.owner_id, r.relation AS "relation: Relation", o.name, o.phone
           FROM house_residents r JOIN owners o ON o.id = r.owner_id
           WHERE r.house_id = ANY($1) ORDER BY r.relation, o.name"#,
        house_ids
    )
    .fetch_all(db)
    .await
}

/// Is the person linked to the house?
pub async fn lives_in(db: impl PgExecutor<'_>, owner_id: Uuid, house_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM house_residents WHERE owner_id = $1 AND house_id = $2) AS "linked!""#,
        owner_id,
        house_id
    )
    .fetch_one(db)
    .await
}

/// How the person is linked to the house, if at all.
pub async fn relation_to(db: impl PgExecutor<'_>, owner_id: Uuid, house_id: Uuid) -> sqlx::Result<Option<Relation>> {
    sqlx::query_scalar!(
        r#"SELECT relation AS "relation: Relation" FROM house_residents WHERE owner_id = $1 AND house_id = $2"#,
        owner_id,
        house_id
    )
    .fetch_optional(db)
    .await
}

/// Active app accounts of people living in a project (optionally one building).
pub async fn resident_users(
    db: impl PgExecutor<'_>,
    project_id: Uuid,
    building_id: Option<Uuid>,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT DISTINCT o.user_id AS "user_id!" FROM house_residents r
           JOIN owners o ON o.id = r.owner_id JOIN users u ON u.id = o.user_id JOIN houses h ON h.id = r.house_id
           WHERE r.project_id = $1 AND ($2::uuid IS NULL OR h.building_id = $2) AND u.status = 'active'"#,
        project_id,
        building_id
    )
    .fetch_all(db)
    .await
}

/// (project, building) pairs where an owner lives.
pub async fn homes_of_owner(db: impl PgExecutor<'_>, owner_id: Uuid) -> sqlx::Result<Vec<(Uuid, Uuid)>> {
    let rows = sqlx::query!(
        "SELECT DISTINCT h.project_id, h.building_id FROM house_residents r JOIN houses h ON h.id = r.house_id WHERE r.owner_id = $1",
        owner_id
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.project_id, r.building_id)).collect())
}
