//! SQL for buildings, units, houses and parking spaces. The resident links are read here
//! only to find an owner's houses.

use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{Building, House, HouseStatus, HouseUsage, ParkingSpace, ParkingStatus, Unit};

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

/// A page of a project's buildings in id order.
pub async fn list_buildings(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    project_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Building>> {
    sqlx::query_as!(
        Building,
        "SELECT id, project_id, name, floors FROM buildings
         WHERE company_id = $4 AND project_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
        project_id,
        after,
        limit,
        company_id
    )
    .fetch_all(db)
    .await
}

/// Every building of a project (the import matches them by name).
pub async fn all_buildings(db: impl PgExecutor<'_>, project_id: Uuid) -> sqlx::Result<Vec<Building>> {
    sqlx::query_as!(
        Building,
        "SELECT id, project_id, name, floors FROM buildings WHERE project_id = $1 ORDER BY id",
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
    pub usage: HouseUsage,
    pub status: HouseStatus,
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
        h.usage.as_str(),
        h.status.as_str()
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
        h.usage.as_str(),
        h.status.as_str()
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_house(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<House>> {
    sqlx::query_as!(
        House,
        r#"SELECT h.id, h.project_id, h.building_id, b.name AS building_name, h.unit_id, u.name AS unit_name,
                  h.room_no, h.floor, h.building_area, h.indoor_area,
                  h.usage AS "usage: HouseUsage", h.status AS "status: HouseStatus"
           FROM houses h JOIN buildings b ON b.id = h.building_id JOIN units u ON u.id = h.unit_id
           WHERE h.company_id = $1 AND h.id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HouseFilter {
    pub projects: Option<Vec<Uuid>>,
    pub project_id: Option<Uuid>,
    pub building_id: Option<Uuid>,
    pub unit_id: Option<Uuid>,
    pub status: Option<HouseStatus>,
    /// a `like_term`: `%` and `_` are escaped
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
    if let Some(st) = f.status {
        q.push(" AND h.status = ").push_bind(st.as_str());
    }
    if let Some(text) = &f.search {
        q.push(" AND h.room_no LIKE '%' || ").push_bind(text.clone()).push(r" || '%' ESCAPE '\'");
    }
    if let Some(a) = after {
        q.push(" AND h.id > ").push_bind(a);
    }
    q.push(" ORDER BY h.id LIMIT ").push_bind(limit);
    q.build_query_as::<House>().fetch_all(db).await
}

/// Houses a person of the company is linked to, in id order.
pub async fn houses_of_owner(db: impl PgExecutor<'_>, company_id: Uuid, owner_id: Uuid) -> sqlx::Result<Vec<House>> {
    sqlx::query_as!(
        House,
        r#"SELECT h.id, h.project_id, h.building_id, b.name AS building_name, h.unit_id, u.name AS unit_name,
                  h.room_no, h.floor, h.building_area, h.indoor_area,
                  h.usage AS "usage: HouseUsage", h.status AS "status: HouseStatus"
           FROM house_residents r JOIN houses h ON h.id = r.house_id
           JOIN buildings b ON b.id = h.building_id JOIN units u ON u.id = h.unit_id
           WHERE r.company_id = $1 AND r.owner_id = $2 ORDER BY h.id"#,
        company_id,
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

pub async fn insert_parking(db: &mut PgConnection, company_id: Uuid, p: &ParkingSpace) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO parking_spaces (id, company_id, project_id, code, area, status, owner_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        p.id,
        company_id,
        p.project_id,
        p.code,
        p.area,
        p.status.as_str(),
        p.owner_id
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_parking(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<ParkingSpace>> {
    sqlx::query_as!(
        ParkingSpace,
        r#"SELECT id, project_id, code, area, status AS "status: ParkingStatus", owner_id
           FROM parking_spaces WHERE company_id = $1 AND id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn list_parking(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    project_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ParkingSpace>> {
    sqlx::query_as!(
        ParkingSpace,
        r#"SELECT id, project_id, code, area, status AS "status: ParkingStatus", owner_id FROM parking_spaces
           WHERE company_id = $4 AND project_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"#,
        project_id,
        after,
        limit,
        company_id
    )
    .fetch_all(db)
    .await
}

/// Fresh planner statistics after a bulk load (seed, large imports).
pub async fn analyze(db: impl PgExecutor<'_>) -> sqlx::Result<()> {
    sqlx::query!("ANALYZE houses, buildings, units, owners, house_residents, projects").execute(db).await?;
    Ok(())
}

/// How many of `ids` are buildings of the company's project.
pub async fn count_buildings_of_project(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    project_id: Uuid,
    ids: &[Uuid],
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM buildings WHERE company_id = $1 AND project_id = $2 AND id = ANY($3)"#,
        company_id,
        project_id,
        ids
    )
    .fetch_one(db)
    .await
}
