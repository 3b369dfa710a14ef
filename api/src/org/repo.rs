//! SQL for the company, projects and estate structure.

use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{Building, Company, House, Owner, ParkingSpace, Project, Resident, Unit};

pub async fn insert_company(
    db: &mut PgConnection,
    id: Uuid,
    name: &str,
    credit_code: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query!("INSERT INTO companies (id, name, credit_code) VALUES ($1, $2, $3)", id, name, credit_code)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn company_by_name(db: impl PgExecutor<'_>, name: &str) -> sqlx::Result<Option<Company>> {
    sqlx::query_as!(
        Company,
        "SELECT id, name, address, phone, credit_code, logo_key, created_at FROM companies WHERE name = $1 ORDER BY id LIMIT 1",
        name
    )
    .fetch_optional(db)
    .await
}

pub async fn get_company(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Company>> {
    sqlx::query_as!(
        Company,
        "SELECT id, name, address, phone, credit_code, logo_key, created_at FROM companies WHERE id = $1",
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn update_company(db: &mut PgConnection, c: &Company) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE companies SET name = $2, address = $3, phone = $4, credit_code = $5, logo_key = $6, updated_at = now() WHERE id = $1",
        c.id,
        c.name,
        c.address,
        c.phone,
        c.credit_code,
        c.logo_key
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn insert_project(db: &mut PgConnection, p: &Project) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO projects (id, company_id, name, code, address, kind, building_area, households, manager_id,
                               geofence_lat, geofence_lng, geofence_radius_m)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        p.id,
        p.company_id,
        p.name,
        p.code,
        p.address,
        p.kind,
        p.building_area,
        p.households,
        p.manager_id,
        p.geofence_lat,
        p.geofence_lng,
        p.geofence_radius_m
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn update_project(db: &mut PgConnection, p: &Project) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE projects SET name = $3, code = $4, address = $5, kind = $6, building_area = $7, households = $8,
                manager_id = $9, geofence_lat = $10, geofence_lng = $11, geofence_radius_m = $12, updated_at = now()
         WHERE company_id = $1 AND id = $2",
        p.company_id,
        p.id,
        p.name,
        p.code,
        p.address,
        p.kind,
        p.building_area,
        p.households,
        p.manager_id,
        p.geofence_lat,
        p.geofence_lng,
        p.geofence_radius_m
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_project(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Project>> {
    sqlx::query_as!(
        Project,
        "SELECT id, company_id, name, code, address, kind, building_area, households, manager_id,
                geofence_lat, geofence_lng, geofence_radius_m, created_at
         FROM projects WHERE company_id = $1 AND id = $2",
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn project_by_code(db: impl PgExecutor<'_>, company_id: Uuid, code: &str) -> sqlx::Result<Option<Project>> {
    sqlx::query_as!(
        Project,
        "SELECT id, company_id, name, code, address, kind, building_area, households, manager_id,
                geofence_lat, geofence_lng, geofence_radius_m, created_at
         FROM projects WHERE company_id = $1 AND code = $2",
        company_id,
        code
    )
    .fetch_optional(db)
    .await
}

pub async fn list_projects(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    only: Option<&[Uuid]>,
    search: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Project>> {
    sqlx::query_as!(
        Project,
        "SELECT id, company_id, name, code, address, kind, building_area, households, manager_id,
                geofence_lat, geofence_lng, geofence_radius_m, created_at
         FROM projects
         WHERE company_id = $1 AND ($2::uuid[] IS NULL OR id = ANY($2))
           AND ($3::text IS NULL OR name ILIKE '%' || $3 || '%' OR code ILIKE '%' || $3 || '%')
           AND ($4::uuid IS NULL OR id > $4)
         ORDER BY id LIMIT $5",
        company_id,
        only,
        search,
        after,
        limit
    )
    .fetch_all(db)
    .await
}

pub async fn count_projects(db: impl PgExecutor<'_>, company_id: Uuid, ids: &[Uuid]) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM projects WHERE company_id = $1 AND id = ANY($2)"#,
        company_id,
        ids
    )
    .fetch_one(db)
    .await
}

pub async fn set_service_staff(db: &mut PgConnection, project_id: Uuid, users: &[Uuid]) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM project_service_staff WHERE project_id = $1", project_id).execute(&mut *db).await?;
    sqlx::query!(
        "INSERT INTO project_service_staff (project_id, user_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING",
        project_id,
        users
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn service_staff(db: impl PgExecutor<'_>, project_ids: &[Uuid]) -> sqlx::Result<Vec<(Uuid, Uuid)>> {
    let rows = sqlx::query!(
        "SELECT project_id, user_id FROM project_service_staff WHERE project_id = ANY($1) ORDER BY user_id",
        project_ids
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.project_id, r.user_id)).collect())
}

/// Staff users of the company among `ids` (to validate a manager or team).
pub async fn count_staff(db: impl PgExecutor<'_>, company_id: Uuid, ids: &[Uuid]) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM users WHERE company_id = $1 AND kind = 'staff' AND id = ANY($2)"#,
        company_id,
        ids
    )
    .fetch_one(db)
    .await
}

pub async fn insert_building(db: &mut PgConnection, company_id: Uuid, b: &Building) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO buildings (id, company_id, project_id, name, floors) VALUES ($1, $2, $3, $4, $5)",
        b.id,
        company_id,
        b.project_id,
        b.name,
        b.floors
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_building(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Building>> {
    sqlx::query_as!(
        Building,
        "SELECT id, project_id, name, floors FROM buildings WHERE company_id = $1 AND id = $2",
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn list_buildings(db: impl PgExecutor<'_>, project_id: Uuid) -> sqlx::Result<Vec<Building>> {
    sqlx::query_as!(
        Building,
        "SELECT id, project_id, name, floors FROM buildings WHERE project_id = $1 ORDER BY name",
        project_id
    )
    .fetch_all(db)
    .await
}

pub async fn insert_unit(db: &mut PgConnection, company_id: Uuid, u: &Unit) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO units (id, company_id, project_id, building_id, name) VALUES ($1, $2, $3, $4, $5)",
        u.id,
        company_id,
        u.project_id,
        u.building_id,
        u.name
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_unit(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Unit>> {
    sqlx::query_as!(
        Unit,
        "SELECT id, project_id, building_id, name FROM units WHERE company_id = $1 AND id = $2",
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn list_units(db: impl PgExecutor<'_>, building_ids: &[Uuid]) -> sqlx::Result<Vec<Unit>> {
    sqlx::query_as!(
        Unit,
        "SELECT id, project_id, building_id, name FROM units WHERE building_id = ANY($1) ORDER BY name",
        building_ids
    )
    .fetch_all(db)
    .await
}

pub struct NewHouse<'a> {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub building_id: Uuid,
    pub unit_id: Uuid,
    pub room_no: &'a str,
    pub floor: i32,
    pub building_area: Decimal,
    pub indoor_area: Option<Decimal>,
    pub usage: &'a str,
    pub status: &'a str,
}

pub async fn insert_house(db: &mut PgConnection, h: &NewHouse<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO houses (id, company_id, project_id, building_id, unit_id, room_no, floor, building_area, indoor_area, usage, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        h.id,
        h.company_id,
        h.project_id,
        h.building_id,
        h.unit_id,
        h.room_no,
        h.floor,
        h.building_area,
        h.indoor_area,
        h.usage,
        h.status
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn update_house(db: &mut PgConnection, company_id: Uuid, h: &House) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE houses SET room_no = $3, floor = $4, building_area = $5, indoor_area = $6, usage = $7, status = $8, updated_at = now()
         WHERE company_id = $1 AND id = $2",
        company_id,
        h.id,
        h.room_no,
        h.floor,
        h.building_area,
        h.indoor_area,
        h.usage,
        h.status
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_house(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<House>> {
    sqlx::query_as!(
        House,
        "SELECT h.id, h.project_id, h.building_id, b.name AS building_name, h.unit_id, u.name AS unit_name,
                h.room_no, h.floor, h.building_area, h.indoor_area, h.usage, h.status
         FROM houses h JOIN buildings b ON b.id = h.building_id JOIN units u ON u.id = h.unit_id
         WHERE h.company_id = $1 AND h.id = $2",
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

pub struct HouseFilter {
    pub projects: Option<Vec<Uuid>>,
    pub project_id: Option<Uuid>,
    pub building_id: Option<Uuid>,
    pub unit_id: Option<Uuid>,
    pub status: Option<String>,
    pub search: Option<String>,
}

/// Keyset pages of houses. The SQL holds only the filters given, so the planner sees a
/// plain `project_id = $1 AND id > $2 ORDER BY id LIMIT n` and walks the (project_id, id)
/// (or (company_id, id)) index in order, stopping after `limit` rows; optional filters
/// written as `($n IS NULL OR col = $n)` made generic plans scan and sort every house of
/// the project. This is why this query is built rather than a `query_as!` literal.
pub async fn list_houses(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    f: &HouseFilter,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<House>> {
    let mut q = sqlx::QueryBuilder::new(
        "SELECT h.id, h.project_id, h.building_id, b.name AS building_name, h.unit_id, u.name AS unit_name,
                h.room_no, h.floor, h.building_area, h.indoor_area, h.usage, h.status
         FROM houses h JOIN buildings b ON b.id = h.building_id JOIN units u ON u.id = h.unit_id
         WHERE h.company_id = ",
    );
    q.push_bind(company_id);
    if let Some(p) = f.project_id {
        q.push(" AND h.project_id = ").push_bind(p);
    } else if let Some(ps) = &f.projects {
        q.push(" AND h.project_id = ANY(").push_bind(ps.clone()).push(")");
    }
    if let Some(b) = f.building_id {
        q.push(" AND h.building_id = ").push_bind(b);
    }
    if let Some(u) = f.unit_id {
        q.push(" AND h.unit_id = ").push_bind(u);
    }
    if let Some(st) = &f.status {
        q.push(" AND h.status = ").push_bind(st.clone());
    }
    if let Some(text) = &f.search {
        q.push(" AND h.room_no LIKE '%' || ").push_bind(text.clone()).push(" || '%'");
    }
    if let Some(a) = after {
        q.push(" AND h.id > ").push_bind(a);
    }
    q.push(" ORDER BY h.id LIMIT ").push_bind(limit);
    q.build_query_as::<House>().fetch_all(db).await
}

/// Houses a person is linked to.
pub async fn houses_of_owner(db: impl PgExecutor<'_>, owner_id: Uuid) -> sqlx::Result<Vec<House>> {
    sqlx::query_as!(
        House,
        "SELECT h.id, h.project_id, h.building_id, b.name AS building_name, h.unit_id, u.name AS unit_name,
                h.room_no, h.floor, h.building_area, h.indoor_area, h.usage, h.status
         FROM house_residents r JOIN houses h ON h.id = r.house_id
         JOIN buildings b ON b.id = h.building_id JOIN units u ON u.id = h.unit_id
         WHERE r.owner_id = $1 ORDER BY h.id",
        owner_id
    )
    .fetch_all(db)
    .await
}

/// (building name, unit name, room no) of every house in a project: for import checks.
pub async fn house_keys(db: impl PgExecutor<'_>, project_id: Uuid) -> sqlx::Result<Vec<(String, String, String)>> {
    let rows = sqlx::query!(
        "SELECT b.name AS building, u.name AS unit, h.room_no FROM houses h
         JOIN buildings b ON b.id = h.building_id JOIN units u ON u.id = h.unit_id WHERE h.project_id = $1",
        project_id
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.building, r.unit, r.room_no)).collect())
}

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

pub async fn owner_by_phone(db: impl PgExecutor<'_>, company_id: Uuid, phone: &str) -> sqlx::Result<Option<Owner>> {
    sqlx::query_as!(
        Owner,
        r#"SELECT o.id, o.company_id, o.user_id, o.name, o.phone, o.id_card_enc,
                  COALESCE(u.status = 'active', false) AS "activated!", o.created_at
           FROM owners o LEFT JOIN users u ON u.id = o.user_id
           WHERE o.company_id = $1 AND o.phone = $2"#,
        company_id,
        phone
    )
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
    pub search: Option<&'a str>,
    pub id_card_idx: Option<&'a [u8]>,
}

/// Owners linked to a house in the filtered projects.
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
             AND ($4::text IS NULL OR o.name LIKE '%' || $4 || '%' OR o.phone LIKE '%' || $4 || '%')
             AND ($5::bytea IS NULL OR o.id_card_idx = $5)
             AND ($6::uuid IS NULL OR o.id > $6)
           ORDER BY o.id LIMIT $7"#,
        company_id,
        f.projects,
        f.project_id,
        f.search,
        f.id_card_idx,
        after,
        limit
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

pub async fn insert_resident(
    db: &mut PgConnection,
    company_id: Uuid,
    project_id: Uuid,
    house_id: Uuid,
    owner_id: Uuid,
    relation: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO house_residents (house_id, owner_id, company_id, project_id, relation) VALUES ($1, $2, $3, $4, $5)",
        house_id,
        owner_id,
        company_id,
        project_id,
        relation
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
        "SELECT r.house_id, r.owner_id, r.relation, o.name, o.phone
         FROM house_residents r JOIN owners o ON o.id = r.owner_id
         WHERE r.house_id = ANY($1) ORDER BY r.relation, o.name",
        house_ids
    )
    .fetch_all(db)
    .await
}

pub async fn insert_parking(db: &mut PgConnection, company_id: Uuid, p: &ParkingSpace) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO parking_spaces (id, company_id, project_id, code, area, status, owner_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        p.id,
        company_id,
        p.project_id,
        p.code,
        p.area,
        p.status,
        p.owner_id
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn list_parking(
    db: impl PgExecutor<'_>,
    project_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ParkingSpace>> {
    sqlx::query_as!(
        ParkingSpace,
        "SELECT id, project_id, code, area, status, owner_id FROM parking_spaces
         WHERE project_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
        project_id,
        after,
        limit
    )
    .fetch_all(db)
    .await
}

/// Fresh planner statistics after a bulk load (seed, large imports).
pub async fn analyze(db: impl PgExecutor<'_>) -> sqlx::Result<()> {
    sqlx::query!("ANALYZE houses, buildings, units, owners, house_residents, projects").execute(db).await?;
    Ok(())
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
