//! Use cases that span the domains: a new company — its row, built-in roles, first
//! administrator and default alarm rules, in one transaction — and the demo estate.

pub mod seed;

use uuid::Uuid;

use crate::kit::error::AppResult;
use crate::kit::state::AppState;

/// A new company with its built-in roles, default alarm rules and a first administrator.
/// Returns (company id, administrator's user id).
/// The company being created: its name, its short code (generated when absent) and its
/// unified social credit code.
#[derive(Debug, Clone, Copy)]
pub struct NewCompany<'a> {
    pub name: &'a str,
    pub code: Option<&'a str>,
    pub credit_code: Option<&'a str>,
}

pub async fn create_company(
    state: &AppState,
    company: NewCompany<'_>,
    admin_username: &str,
    password: &str,
    must_change: bool,
) -> AppResult<(Uuid, Uuid)> {
    let mut tx = state.db.begin().await?;
    let company =
        crate::org::company::service::insert_company(state, &mut tx, company.name, company.code, company.credit_code)
            .await?;
    crate::rbac::service::ensure_builtin_roles(&mut tx, company).await?;
    crate::iot::alarms::service::ensure_default_rules(&mut tx, company).await?;
    let admin = crate::rbac::service::create_admin_account(
        state,
        &mut tx,
        company,
        admin_username,
        "系统管理员",
        password,
        must_change,
    )
    .await?;
    tx.commit().await?;
    Ok((company, admin))
}

/// `wuye bootstrap`: a real company whose administrator must change the random initial
/// password at the first sign-in. Returns that password.
pub async fn bootstrap(state: &AppState, company: &str, code: Option<&str>, admin_username: &str) -> AppResult<String> {
    let password = format!("Wy{}9", &crate::kit::crypto::random_token()[..12]);
    create_company(state, NewCompany { name: company, code, credit_code: None }, admin_username, &password, true)
        .await?;
    Ok(password)
}
