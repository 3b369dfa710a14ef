//! Company and project rules. Changing the company needs a company-wide grant; project
//! reads and writes stay within the projects the caller's permission reaches.

use rust_decimal::Decimal;
use uuid::Uuid;

use super::model::{Company, Contact, Office, Project, ProjectKind};
use super::repo;
use crate::kit::audit;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::kit::storage::sniff_image;
use crate::kit::types::{self, CreditCode, Geofence};
use crate::rbac::model::{Actor, Perm, Scope};

// ---- company -------------------------------------------------------------------------

/// A company's short code: an upper-case letter then 1-11 upper-case letters or digits. It
/// names the company in device topics and broker usernames, so it is unique on the server
/// and never changes.
pub fn company_code(field: &'static str, input: &str) -> AppResult<String> {
    let c = input.trim().to_ascii_uppercase();
    let ok = (2..=12).contains(&c.len())
        && c.starts_with(|ch: char| ch.is_ascii_uppercase())
        && c.chars().all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit());
    if !ok {
        return Err(AppError::validation(
            field,
            Msg::new(
                "企业代码为 2-12 位大写字母或数字，以字母开头",
                "A company code is 2-12 upper-case letters or digits, starting with a letter",
            ),
        ));
    }
    Ok(c)
}

/// A fresh company code when the operator gives none: `C` and seven random characters.
fn generated_code() -> String {
    let t = crate::kit::crypto::random_token().to_ascii_uppercase();
    let tail: String = t.chars().filter(|c| c.is_ascii_alphanumeric()).take(7).collect();
    format!("C{tail}")
}

/// A new company, written in the caller's transaction (onboarding: companies are created
/// by the operator, never through the API).
pub async fn insert_company(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    name: &str,
    code: Option<&str>,
    credit_code: Option<&str>,
) -> AppResult<Uuid> {
    let name = types::text("company", name, 100)?;
    let short = match code {
        Some(c) => company_code("code", c)?,
        None => generated_code(),
    };
    let credit = credit_code.map(|c| CreditCode::parse("creditCode", c)).transpose()?;
    let id = Uuid::now_v7();
    repo::insert_company(tx, id, &name, &short, credit.map(CreditCode::into_inner).as_deref()).await?;
    audit::record(
        tx,
        state.clock.now(),
        &audit::System(id),
        "company.create",
        "company",
        Some(id),
        serde_json::json!({ "name": name, "code": short }),
    )
    .await?;
    Ok(id)
}

pub async fn company_exists(state: &AppState, name: &str) -> AppResult<bool> {
    Ok(repo::company_by_name(&state.db, name).await?.is_some())
}

/// The caller's company (`company:read`, or `company:write` to read a change back).
pub async fn company(state: &AppState, actor: &Actor) -> AppResult<Company> {
    actor.require(Perm::CompanyRead).or_else(|_| actor.require(Perm::CompanyWrite))?;
    repo::get_company(&state.db, actor.company_id).await?.ok_or(AppError::not_found("company"))
}

/// The company is one object: only a company-wide `company:write` changes it.
fn require_company_write(actor: &Actor) -> AppResult<()> {
    if actor.require(Perm::CompanyWrite)? != &Scope::Company {
        return Err(AppError::forbidden());
    }
    Ok(())
}

pub struct CompanyPatch<'a> {
    pub name: Option<&'a str>,
    pub address: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub credit_code: Option<&'a str>,
}

/// Changes the given fields of the company profile; returns the company's id.
pub async fn update_company(state: &AppState, actor: &Actor, retry: &Retry, p: CompanyPatch<'_>) -> AppResult<Uuid> {
    require_company_write(actor)?;
    let name = p.name.map(|n| types::text("name", n, 100)).transpose()?;
    let address = p.address.map(|a| types::optional_text("address", Some(a), 200)).transpose()?;
    let phone = p.phone.map(company_phone).transpose()?;
    let credit_code =
        p.credit_code.map(|c| CreditCode::parse("creditCode", c).map(CreditCode::into_inner)).transpose()?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let mut c = repo::get_company(&mut *tx, actor.company_id).await?.ok_or(AppError::not_found("company"))?;
    if let Some(n) = name {
        c.name = n;
    }
    if let Some(a) = address {
        c.address = a;
    }
    if let Some(ph) = phone {
        c.phone = ph;
    }
    if let Some(code) = credit_code {
        c.credit_code = Some(code);
    }
    repo::update_company(&mut tx, &c).await?;
    audit::record(&mut tx, state.clock.now(), actor, "company.update", "company", Some(c.id), serde_json::json!({}))
        .await?;
    tx.commit(&c.id).await?;
    Ok(c.id)
}

/// A company phone may be a landline (028-12345678) or a mobile number.
fn company_phone(input: &str) -> AppResult<String> {
    let t = input.trim();
    let ok = (7..=20).contains(&t.len()) && t.chars().all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | ' '));
    if t.is_empty() || ok {
        Ok(t.to_owned())
    } else {
        Err(AppError::validation("phone", Msg::new("请输入正确的联系电话", "Enter a valid phone number")))
    }
}

/// Stores a PNG or JPEG logo (checked by content, not by name); returns the company's id.
/// The file is stored after the retry key is claimed, so a repeat stores nothing.
pub async fn set_company_logo(state: &AppState, actor: &Actor, retry: &Retry, bytes: Vec<u8>) -> AppResult<Uuid> {
    require_company_write(actor)?;
    if bytes.len() > state.config.limits.max_upload_bytes {
        return Err(AppError::validation("file", Msg::new("文件过大", "The file is too large")));
    }
    let Some((_, ext)) = sniff_image(&bytes).filter(|(mime, _)| *mime != "image/png" || png_ok(&bytes)) else {
        return Err(AppError::validation(
            "file",
            Msg::new("仅支持PNG或JPEG图片", "Only PNG or JPEG images are accepted"),
        ));
    };
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let key = format!("company-logos/{}/{}.{ext}", actor.company_id, Uuid::now_v7());
    state.storage.put(&key, &bytes).await.map_err(AppError::internal)?;
    let mut c = repo::get_company(&mut *tx, actor.company_id).await?.ok_or(AppError::not_found("company"))?;
    c.logo_key = Some(key);
    repo::update_company(&mut tx, &c).await?;
    audit::record(&mut tx, state.clock.now(), actor, "company.logo", "company", Some(c.id), serde_json::json!({}))
        .await?;
    tx.commit(&c.id).await?;
    Ok(c.id)
}

fn png_ok(bytes: &[u8]) -> bool {
    png::Decoder::new(std::io::Cursor::new(bytes)).read_info().is_ok()
}

// ---- projects ------------------------------------------------------------------------

/// Projects `project:read` reaches, in id order; `search` matches name or code literally.
pub async fn projects(
    state: &AppState,
    actor: &Actor,
    search: Option<&str>,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Project>> {
    let only = actor.projects(Perm::ProjectRead)?.as_sql();
    let search = types::like_term(search);
    Ok(repo::list_projects(&state.db, actor.company_id, only.as_deref(), search.as_deref(), after, limit as i64)
        .await?)
}

/// A project the actor may reach with `perm`; another company's is NOT_FOUND.
pub async fn project(state: &AppState, actor: &Actor, perm: Perm, id: Uuid) -> AppResult<Project> {
    let filter = actor.projects(perm)?;
    let p = repo::get_project(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("project"))?;
    if !filter.allows(p.id) {
        return Err(AppError::forbidden());
    }
    Ok(p)
}

/// The company's projects (of `only`), for work the system does: where a punch may be.
pub async fn projects_of_company(state: &AppState, company_id: Uuid, only: Option<&[Uuid]>) -> AppResult<Vec<Project>> {
    Ok(repo::list_projects(&state.db, company_id, only, None, None, 100_000).await?)
}

/// A project of the company, for work the system does (no caller to check).
pub async fn project_of_company(state: &AppState, company_id: Uuid, id: Uuid) -> AppResult<Project> {
    repo::get_project(&state.db, company_id, id).await?.ok_or(AppError::not_found("project"))
}

/// (project, staff account) pairs of the customer-service teams of projects the caller has
/// already been shown.
pub async fn service_staff(state: &AppState, project_ids: &[Uuid]) -> AppResult<Vec<(Uuid, Uuid)>> {
    Ok(repo::service_staff(&state.db, project_ids).await?)
}

pub struct ProjectInput<'a> {
    pub name: Option<&'a str>,
    pub code: Option<&'a str>,
    pub address: Option<&'a str>,
    pub kind: Option<ProjectKind>,
    pub building_area: Option<Decimal>,
    pub households: Option<i32>,
    pub manager_id: Option<Uuid>,
    /// the complete customer-service team
    pub service_staff_ids: Option<Vec<Uuid>>,
    /// (lat, lng, radius m)
    pub geofence: Option<(f64, f64, i32)>,
}

/// A project input checked on its own; the people are checked against the accounts
/// inside the transaction.
struct ProjectChanges {
    name: Option<String>,
    code: Option<String>,
    address: Option<String>,
    kind: Option<ProjectKind>,
    building_area: Option<Decimal>,
    households: Option<i32>,
    geofence: Option<Geofence>,
    manager_id: Option<Uuid>,
    team: Option<Vec<Uuid>>,
}

fn project_code(input: &str) -> AppResult<String> {
    let c = input.trim().to_ascii_uppercase();
    let ok = (2..=20).contains(&c.len()) && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-');
    if ok {
        Ok(c)
    } else {
        Err(AppError::validation(
            "code",
            Msg::new("项目编码为2到20位字母、数字或横线", "A project code has 2-20 letters, digits or dashes"),
        ))
    }
}

fn check_project(input: ProjectInput<'_>) -> AppResult<ProjectChanges> {
    let name = input.name.map(|n| types::text("name", n, 100)).transpose()?;
    let code = input.code.map(project_code).transpose()?;
    let address = input.address.map(|a| types::optional_text("address", Some(a), 200)).transpose()?;
    let building_area = input.building_area.map(|a| types::area("buildingArea", a)).transpose()?;
    if input.households.is_some_and(|h| !(0..=1_000_000).contains(&h)) {
        return Err(AppError::validation("households", Msg::new("户数无效", "Invalid number of households")));
    }
    let geofence = input.geofence.map(|(lat, lng, r)| Geofence::parse("geofence", lat, lng, r)).transpose()?;
    let team = input.service_staff_ids.map(|mut ids| {
        ids.sort();
        ids.dedup();
        ids
    });
    Ok(ProjectChanges {
        name,
        code,
        address,
        kind: input.kind,
        building_area,
        households: input.households,
        geofence,
        manager_id: input.manager_id,
        team,
    })
}

impl ProjectChanges {
    /// VALIDATION unless the manager and the team are staff accounts of the company.
    async fn check_people(&self, tx: &mut sqlx::PgConnection, company_id: Uuid) -> AppResult<()> {
        if let Some(m) = self.manager_id
            && crate::rbac::service::count_staff(tx, company_id, &[m]).await? != 1
        {
            return Err(AppError::validation(
                "managerId",
                Msg::new("项目经理必须是本企业员工", "The manager must be a staff user of the company"),
            ));
        }
        if let Some(ids) = &self.team
            && crate::rbac::service::count_staff(tx, company_id, ids).await? != ids.len() as i64
        {
            return Err(AppError::validation(
                "serviceStaffIds",
                Msg::new("客服团队成员必须是本企业员工", "Team members must be staff users of the company"),
            ));
        }
        Ok(())
    }

    fn apply(&self, p: &mut Project) {
        if let Some(n) = &self.name {
            p.name = n.clone();
        }
        if let Some(c) = &self.code {
            p.code = c.clone();
        }
        if let Some(a) = &self.address {
            p.address = a.clone();
        }
        if let Some(k) = self.kind {
            p.kind = k;
        }
        if let Some(a) = self.building_area {
            p.building_area = Some(a);
        }
        if let Some(h) = self.households {
            p.households = Some(h);
        }
        if let Some(g) = self.geofence {
            (p.geofence_lat, p.geofence_lng, p.geofence_radius_m) = (Some(g.lat), Some(g.lng), Some(g.radius_m));
        }
        if let Some(m) = self.manager_id {
            p.manager_id = Some(m);
        }
    }
}

/// A manager or team member holds the project in their "own" scope: their cached actor
/// must be built again, here and on every replica.
async fn forget_people(state: &AppState, people: impl IntoIterator<Item = Uuid>) {
    let people: std::collections::BTreeSet<Uuid> = people.into_iter().collect();
    let changed = |u| crate::rbac::service::account_changed(state, u, crate::rbac::service::EVENT_PERMISSIONS_CHANGED);
    futures_util::future::join_all(people.into_iter().map(changed)).await;
}

/// A new project (company-wide `project:write`); returns its id.
pub async fn create_project(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    input: ProjectInput<'_>,
) -> AppResult<Uuid> {
    if actor.require(Perm::ProjectWrite)? != &Scope::Company {
        return Err(AppError::forbidden());
    }
    types::required(&[("name", input.name.is_some()), ("code", input.code.is_some()), ("kind", input.kind.is_some())])?;
    let changes = check_project(input)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    changes.check_people(&mut tx, actor.company_id).await?;
    let mut p = Project {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        name: String::new(),
        code: String::new(),
        address: String::new(),
        kind: ProjectKind::Other,
        building_area: None,
        households: None,
        manager_id: None,
        geofence_lat: None,
        geofence_lng: None,
        geofence_radius_m: None,
        created_at: state.clock.now(),
    };
    changes.apply(&mut p);
    repo::insert_project(&mut tx, &p).await?;
    if let Some(ids) = &changes.team {
        repo::set_service_staff(&mut tx, p.id, ids).await?;
    }
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "project.create",
        "project",
        Some(p.id),
        serde_json::json!({ "code": p.code }),
    )
    .await?;
    tx.commit(&p.id).await?;
    crate::rbac::service::company_projects_changed(state, actor.company_id).await;
    forget_people(state, p.manager_id.into_iter().chain(changes.team.unwrap_or_default())).await;
    Ok(p.id)
}

/// Changes the given fields of a project within the caller's `project:write` scope;
/// `service_staff_ids` replaces the whole team. Returns the project's id.
pub async fn update_project(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    id: Uuid,
    input: ProjectInput<'_>,
) -> AppResult<Uuid> {
    let filter = actor.projects(Perm::ProjectWrite)?;
    let changes = check_project(input)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let mut p = repo::get_project(&mut *tx, actor.company_id, id).await?.ok_or(AppError::not_found("project"))?;
    if !filter.allows(p.id) {
        return Err(AppError::forbidden());
    }
    changes.check_people(&mut tx, actor.company_id).await?;
    let old_manager = p.manager_id;
    let old_team: Vec<Uuid> = match &changes.team {
        Some(_) => repo::service_staff(&mut *tx, &[id]).await?.into_iter().map(|(_, u)| u).collect(),
        None => Vec::new(),
    };
    changes.apply(&mut p);
    repo::update_project(&mut tx, &p).await?;
    if let Some(ids) = &changes.team {
        repo::set_service_staff(&mut tx, p.id, ids).await?;
    }
    audit::record(&mut tx, state.clock.now(), actor, "project.update", "project", Some(p.id), serde_json::json!({}))
        .await?;
    tx.commit(&p.id).await?;
    // only those whose "own" projects changed: a rename tells nobody
    let mut people = std::collections::BTreeSet::new();
    if old_manager != p.manager_id {
        people.extend(old_manager.into_iter().chain(p.manager_id));
    }
    if let Some(team) = changes.team {
        let old: std::collections::BTreeSet<Uuid> = old_team.into_iter().collect();
        people.extend(old.symmetric_difference(&team.into_iter().collect()).copied());
    }
    forget_people(state, people).await;
    Ok(p.id)
}

// ---- the property office owners see --------------------------------------------------------

/// 物业服务中心 the company and, for each estate the caller lives in, its office card
/// (`self:house`).
pub async fn my_offices(state: &AppState, actor: &Actor) -> AppResult<(Company, Vec<Office>)> {
    actor.require(Perm::SelfHouse)?;
    let company = repo::get_company(&state.db, actor.company_id).await?.ok_or(AppError::not_found("company"))?;
    let Some(owner) = actor.owner_id else { return Ok((company, Vec::new())) };
    let mut projects: Vec<Uuid> =
        crate::org::owners::service::homes_of_owner(state, owner).await?.into_iter().map(|(p, _)| p).collect();
    projects.sort();
    projects.dedup();
    let rows = repo::office_rows(&state.db, actor.company_id, &projects).await?;
    let published: Vec<Uuid> = rows.iter().filter(|r| r.4).map(|r| r.0).collect();
    let contacts = if published.is_empty() { Vec::new() } else { repo::office_contacts(&state.db, &published).await? };
    let offices = rows
        .into_iter()
        .map(|(id, name, address, phone, _)| Office {
            project_id: id,
            project_name: name,
            project_address: address,
            service_phone: phone,
            contacts: contacts
                .iter()
                .filter(|c| c.0 == id)
                .map(|c| Contact { role: c.1.clone(), name: c.2.clone(), phone: c.3.clone() })
                .collect(),
        })
        .collect();
    Ok((company, offices))
}

/// A project's office card: its service phone, and whether owners see its manager and
/// customer-service team (`project:write` over it).
pub async fn set_office(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    project: Uuid,
    service_phone: &str,
    publish_contacts: bool,
) -> AppResult<Uuid> {
    actor.require_project(Perm::ProjectWrite, project)?;
    let phone = service_phone.trim();
    let ok = phone.len() <= 20 && phone.chars().all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | ' ' | '(' | ')'));
    if !ok {
        return Err(AppError::validation(
            "servicePhone",
            Msg::new(
                "服务电话最多20位，只含数字、空格、+、-和括号",
                "A service phone has up to 20 digits, spaces, +, - or brackets",
            ),
        ));
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let now = state.clock.now();
    if repo::set_office(&mut *tx, actor.company_id, project, phone, publish_contacts, now).await? == 0 {
        return Err(AppError::not_found("project"));
    }
    audit::record(
        &mut tx,
        now,
        actor,
        "project.office",
        "project",
        Some(project),
        serde_json::json!({ "servicePhone": phone, "publishContacts": publish_contacts }),
    )
    .await?;
    tx.commit(&project).await?;
    Ok(project)
}
