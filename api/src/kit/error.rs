//! One error type for the whole server. Each variant has a stable English code that
//! clients switch on, and a message in Chinese (English on request). Internal causes
//! are logged with their source chain and never reach the client.

use std::borrow::Cow;

/// The language of messages users see: Chinese unless the client asks for English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Locale {
    #[default]
    Zh,
    En,
}

impl Locale {
    /// Reads an `Accept-Language` header value: English only when it is preferred over Chinese.
    pub fn from_accept_language(value: Option<&str>) -> Self {
        let Some(value) = value else { return Locale::Zh };
        for part in value.split(',') {
            let tag = part.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if tag.starts_with("zh") {
                return Locale::Zh;
            }
            if tag.starts_with("en") {
                return Locale::En;
            }
        }
        Locale::Zh
    }
}

/// A user-facing message in both languages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub zh: Cow<'static, str>,
    pub en: Cow<'static, str>,
}

impl Msg {
    pub const fn new(zh: &'static str, en: &'static str) -> Self {
        Msg { zh: Cow::Borrowed(zh), en: Cow::Borrowed(en) }
    }

    pub fn owned(zh: impl Into<String>, en: impl Into<String>) -> Self {
        Msg { zh: Cow::Owned(zh.into()), en: Cow::Owned(en.into()) }
    }

    pub fn get(&self, locale: Locale) -> &str {
        match locale {
            Locale::Zh => &self.zh,
            Locale::En => &self.en,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("UNAUTHENTICATED: {}", .msg.zh)]
    Unauthenticated { reason: &'static str, msg: Msg },
    #[error("FORBIDDEN: {}", .msg.zh)]
    Forbidden { reason: &'static str, msg: Msg },
    #[error("NOT_FOUND: {entity}")]
    NotFound { entity: &'static str },
    #[error("VALIDATION: {field}: {}", .msg.zh)]
    Validation { field: Cow<'static, str>, msg: Msg, details: Option<serde_json::Value> },
    #[error("CONFLICT: {field}: {}", .msg.zh)]
    Conflict { field: Cow<'static, str>, msg: Msg, details: Option<serde_json::Value> },
    #[error("RATE_LIMITED: {}", .msg.zh)]
    RateLimited { reason: &'static str, msg: Msg, retry_after_secs: Option<u64> },
    #[error("UNAVAILABLE: {0}")]
    Unavailable(&'static str),
    #[error("INTERNAL")]
    Database(#[source] sqlx::Error),
    #[error("INTERNAL")]
    Redis(#[from] redis::RedisError),
    #[error("INTERNAL")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type AppResult<T> = Result<T, AppError>;

/// Redis is down or moving (a connection lost, a cluster failing over, a replica loading):
/// worth a retry, not a bug.
fn redis_unavailable(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::MasterDown
                        | ServerErrorKind::BusyLoading
                        | ServerErrorKind::ReadOnly
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::TryAgain
                )
        )
}

impl AppError {
    pub fn validation(field: impl Into<Cow<'static, str>>, msg: Msg) -> Self {
        AppError::Validation { field: field.into(), msg, details: None }
    }

    pub fn not_found(entity: &'static str) -> Self {
        AppError::NotFound { entity }
    }

    pub fn forbidden() -> Self {
        AppError::Forbidden {
            reason: "PERMISSION_DENIED",
            msg: Msg::new("没有权限执行此操作", "You do not have permission to do this"),
        }
    }

    pub fn unauthenticated() -> Self {
        AppError::Unauthenticated { reason: "SIGN_IN_REQUIRED", msg: Msg::new("请先登录", "Please sign in") }
    }

    pub fn conflict(field: impl Into<Cow<'static, str>>, msg: Msg) -> Self {
        AppError::Conflict { field: field.into(), msg, details: None }
    }

    /// A state machine refused a transition: CONFLICT naming the current state
    /// (`extensions.details.currentState`, the GraphQL enum value).
    pub fn wrong_state(field: impl Into<Cow<'static, str>>, current: &str, msg: Msg) -> Self {
        AppError::Conflict {
            field: field.into(),
            msg,
            details: Some(serde_json::json!({ "currentState": current.to_ascii_uppercase() })),
        }
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        AppError::Internal(Box::new(e))
    }

    /// The stable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated { .. } => "UNAUTHENTICATED",
            AppError::Forbidden { .. } => "FORBIDDEN",
            AppError::NotFound { .. } => "NOT_FOUND",
            AppError::Validation { .. } => "VALIDATION",
            AppError::Conflict { .. } => "CONFLICT",
            AppError::RateLimited { .. } => "RATE_LIMITED",
            AppError::Unavailable(_) => "UNAVAILABLE",
            AppError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => "UNAVAILABLE",
            AppError::Redis(e) if redis_unavailable(e) => "UNAVAILABLE",
            AppError::Database(_) | AppError::Redis(_) | AppError::Internal(_) => "INTERNAL",
        }
    }

    /// The message for a user, in their language.
    pub fn message(&self, locale: Locale) -> Cow<'static, str> {
        let pick = |m: &Msg| Cow::Owned(m.get(locale).to_owned());
        match self {
            AppError::Unauthenticated { msg, .. }
            | AppError::Forbidden { msg, .. }
            | AppError::Validation { msg, .. }
            | AppError::Conflict { msg, .. }
            | AppError::RateLimited { msg, .. } => pick(msg),
            AppError::NotFound { entity } => {
                let (zh, en) = entity_label(entity);
                match locale {
                    Locale::Zh => Cow::Owned(format!("{zh}不存在")),
                    Locale::En => Cow::Owned(format!("{en} not found")),
                }
            }
            _ if self.code() == "UNAVAILABLE" => match locale {
                Locale::Zh => Cow::Borrowed("服务暂时不可用，请稍后重试"),
                Locale::En => Cow::Borrowed("Service temporarily unavailable, please retry"),
            },
            _ => match locale {
                Locale::Zh => Cow::Borrowed("服务器内部错误"),
                Locale::En => Cow::Borrowed("Internal server error"),
            },
        }
    }

    /// Extra machine-readable facts for `extensions`: the field, a reason, retry-after.
    pub fn extensions(&self) -> Vec<(&'static str, serde_json::Value)> {
        use serde_json::Value;
        let mut ext = Vec::new();
        match self {
            AppError::Unauthenticated { reason, .. } | AppError::Forbidden { reason, .. } => {
                ext.push(("reason", Value::from(*reason)));
            }
            AppError::Validation { field, details, .. } => {
                ext.push(("field", Value::from(field.as_ref())));
                if let Some(d) = details {
                    ext.push(("details", d.clone()));
                }
            }
            AppError::Conflict { field, details, .. } => {
                ext.push(("field", Value::from(field.as_ref())));
                if let Some(d) = details {
                    ext.push(("details", d.clone()));
                }
            }
            AppError::RateLimited { reason, retry_after_secs, .. } => {
                ext.push(("reason", Value::from(*reason)));
                if let Some(s) = retry_after_secs {
                    ext.push(("retryAfter", Value::from(*s)));
                }
            }
            AppError::NotFound { entity } => ext.push(("entity", Value::from(*entity))),
            _ => {}
        }
        ext
    }

    /// Logs what a client will only see as INTERNAL / UNAVAILABLE.
    pub fn log_if_internal(&self) {
        if matches!(self.code(), "INTERNAL" | "UNAVAILABLE") {
            let mut chain = String::new();
            let mut src = std::error::Error::source(self);
            while let Some(s) = src {
                chain.push_str(" <- ");
                chain.push_str(&s.to_string());
                src = s.source();
            }
            tracing::error!(code = self.code(), error = %self, chain = %chain, "request failed");
        }
    }
}

/// A PostgreSQL unique / foreign-key / check violation is the client's mistake, not ours:
/// name the field instead of answering INTERNAL.
impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && let Some(constraint) = db.constraint()
            && let Some(mapped) = on_constraint(constraint)
        {
            return mapped;
        }
        AppError::Database(e)
    }
}

fn on_constraint(name: &str) -> Option<AppError> {
    let conflict =
        |field: &'static str, msg: Msg| Some(AppError::Conflict { field: Cow::Borrowed(field), msg, details: None });
    match name {
        "users_username_key" => conflict("username", Msg::new("用户名已被使用", "Username is already taken")),
        "users_company_phone_key" => {
            conflict("phone", Msg::new("手机号已被其他账号使用", "Phone number is already used by another account"))
        }
        "companies_code_key" => conflict("code", Msg::new("企业代码已被使用", "Company code is already taken")),
        "companies_credit_code_key" => {
            conflict("creditCode", Msg::new("统一社会信用代码已被登记", "Credit code is already registered"))
        }
        "certificates_number_key" => {
            conflict("number", Msg::new("该类证书编号已登记", "A certificate of this kind and number is registered"))
        }
        "employees_company_id_card_key" => {
            conflict("idCardNumber", Msg::new("身份证号已登记给其他员工", "The ID-card number is another employee's"))
        }
        "employees_employee_no_key" => {
            conflict("employeeNo", Msg::new("工号已被其他员工使用", "The employee number is another employee's"))
        }
        "shifts_name_key" => conflict("name", Msg::new("已有同名班次", "A shift of this name exists")),
        "rota_patterns_name_key" => {
            conflict("name", Msg::new("该项目已有同名排班规则", "The project has a pattern of this name"))
        }
        "attendance_terminals_name_key" => {
            conflict("name", Msg::new("已有同名考勤机", "A terminal of this name exists"))
        }
        "roles_company_code_key" => conflict("code", Msg::new("角色编码已存在", "Role code already exists")),
        "user_roles_user_role_key" => {
            conflict("roleId", Msg::new("该用户已拥有此角色", "The user already has this role"))
        }
        "projects_company_code_key" => conflict("code", Msg::new("项目编码已存在", "Project code already exists")),
        "fee_items_project_id_name_key" => {
            conflict("name", Msg::new("该项目已有同名收费项目", "The project has a fee item of this name"))
        }
        "buildings_project_name_key" => {
            conflict("name", Msg::new("该项目已有同名楼栋", "A building with this name already exists in the project"))
        }
        "units_building_name_key" => {
            conflict("name", Msg::new("该楼栋已有同名单元", "A unit with this name already exists in the building"))
        }
        "houses_unit_room_key" => {
            conflict("roomNo", Msg::new("该单元已有此房号", "This room number already exists in the unit"))
        }
        "owners_company_phone_key" => {
            conflict("phone", Msg::new("该手机号已登记为业主", "An owner with this phone number is already registered"))
        }
        "owners_company_id_card_key" => conflict(
            "idCardNumber",
            Msg::new("该身份证号已登记为业主", "An owner with this ID-card number is already registered"),
        ),
        "devices_company_code_key" => conflict("code", Msg::new("设备编码已存在", "Device code already exists")),
        "parking_spaces_project_code_key" => {
            conflict("code", Msg::new("车位编号已存在", "Parking space code already exists"))
        }
        "house_residents_pkey" => {
            conflict("houseId", Msg::new("该住户已关联此房屋", "The person is already linked to this house"))
        }
        _ => None,
    }
}

fn entity_label(entity: &str) -> (&'static str, &'static str) {
    match entity {
        "user" => ("用户", "User"),
        "role" => ("角色", "Role"),
        "company" => ("企业", "Company"),
        "project" => ("项目", "Project"),
        "building" => ("楼栋", "Building"),
        "unit" => ("单元", "Unit"),
        "house" => ("房屋", "House"),
        "owner" => ("业主", "Owner"),
        "parkingSpace" => ("车位", "Parking space"),
        "file" => ("文件", "File"),
        "announcement" => ("公告", "Announcement"),
        "device" => ("设备", "Device"),
        "command" => ("指令", "Command"),
        _ => ("记录", "Record"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language() {
        assert_eq!(Locale::from_accept_language(None), Locale::Zh);
        assert_eq!(Locale::from_accept_language(Some("en-US,en;q=0.9")), Locale::En);
        assert_eq!(Locale::from_accept_language(Some("zh-CN,en;q=0.8")), Locale::Zh);
        assert_eq!(Locale::from_accept_language(Some("fr")), Locale::Zh);
    }

    #[test]
    fn internal_never_leaks() {
        let e = AppError::Database(sqlx::Error::Protocol("relation users blah".into()));
        assert_eq!(e.code(), "INTERNAL");
        assert!(!e.message(Locale::En).contains("users"));
        assert!(!e.to_string().contains("users"));
    }
}
