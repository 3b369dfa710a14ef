//! 员工档案 over GraphQL: employees and their certificates, one's own record, the
//! certificates work needs.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::model;
use super::service::{self, CertificateInput, SaveEmployee};
use crate::kit::clock::business_date;
use crate::kit::gql::{Conn, StateExt, group_by, load_one, parse_id, parse_opt_id, to_id};
use crate::kit::pagination::Page;
use crate::kit::state::AppState;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;
use crate::workorders::graphql::WorkOrderCategory;

/// 性别
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Gender")]
pub enum Gender {
    /// 男
    Male,
    /// 女
    Female,
}

/// 在职状态
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::EmployeeStatus")]
pub enum EmployeeStatus {
    /// 在职
    Active,
    /// 休假: not offered work
    OnLeave,
    /// 离职: the account is disabled and its sessions ended
    Left,
}

/// 证书类别
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::CertificateKind")]
pub enum CertificateKind {
    /// 电工证
    Electrician,
    /// 保安员证
    SecurityGuard,
    /// 电梯安全管理员证
    ElevatorSafety,
    /// 消防设施操作员证
    FireControl,
    /// 焊工证
    Welder,
    /// 锅炉操作证
    Boiler,
    /// 其他
    Other,
}

/// 员工档案 a staff account with its employee record.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Employee {
    /// the staff account
    pub user_id: ID,
    /// the account's name
    pub name: String,
    /// the account's phone: masked unless it is the caller's own record or the caller holds `pii:read`
    pub phone: Option<String>,
    /// skills used by work-order dispatch (set with `setSkills`)
    pub skills: Vec<String>,
    /// whether HR has written the record
    pub recorded: bool,
    /// 性别
    pub gender: Option<Gender>,
    /// 身份证号, masked like the phone
    pub id_card_number: Option<String>,
    /// 入职日期
    pub hire_date: Option<NaiveDate>,
    /// 岗位
    pub position: String,
    /// 部门
    pub department: String,
    /// 在职状态
    pub status: EmployeeStatus,
    /// the day they left
    pub left_on: Option<NaiveDate>,
    /// 紧急联系人
    pub emergency_contact_name: String,
    /// the emergency contact's phone, masked like the phone
    pub emergency_contact_phone: String,
    /// 工号: what attendance terminals know them by
    pub employee_no: Option<String>,
    /// when the record last changed
    pub updated_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    photo_key: Option<String>,
    #[graphql(skip)]
    id: Uuid,
}

impl Employee {
    fn new(ctx: &Context<'_>, e: model::Employee) -> async_graphql::Result<Self> {
        let actor = ctx.actor()?;
        let v = service::view(ctx.state(), &actor, e);
        let e = v.employee;
        Ok(Employee {
            user_id: to_id(e.user_id),
            name: e.name,
            phone: v.phone,
            skills: e.skills,
            recorded: e.recorded,
            gender: e.gender.map(Into::into),
            id_card_number: v.id_card_number,
            hire_date: e.hire_date,
            position: e.position,
            department: e.department,
            status: e.status.into(),
            left_on: e.left_on,
            emergency_contact_name: e.emergency_name,
            emergency_contact_phone: v.emergency_phone,
            employee_no: e.employee_no,
            updated_at: e.updated_at,
            photo_key: e.photo_key,
            id: e.user_id,
        })
    }
}

#[ComplexObject]
impl Employee {
    /// 照片: a signed URL valid five minutes
    async fn photo_url(&self, ctx: &Context<'_>) -> Option<String> {
        self.photo_key.as_deref().map(|k| crate::files::service::signed_url(ctx.state(), k))
    }

    /// 资质证书, by kind then expiry
    async fn certificates(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Certificate>> {
        let today = business_date(ctx.state().clock.now());
        Ok(load_one::<CertificateLoader>(ctx, self.id)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(|c| Certificate::new(ctx, c, today))
            .collect())
    }
}

/// 资质证书 a licence for a special post.
#[derive(SimpleObject)]
pub struct Certificate {
    /// the certificate's id
    pub id: ID,
    /// whose
    pub user_id: ID,
    /// 类别
    pub kind: CertificateKind,
    /// 证书编号
    pub number: String,
    /// 发证机关
    pub issuer: String,
    /// 发证日期
    pub issued_on: NaiveDate,
    /// 有效期至 (none: it does not expire)
    pub expires_on: Option<NaiveDate>,
    /// valid today (Shanghai), the expiry day included
    pub valid: bool,
    /// days until it expires (negative: expired that long ago)
    pub days_left: Option<i32>,
    /// 扫描件: a signed URL valid five minutes
    pub scan_url: Option<String>,
}

impl Certificate {
    fn new(ctx: &Context<'_>, c: model::Certificate, today: NaiveDate) -> Self {
        Certificate {
            id: to_id(c.id),
            user_id: to_id(c.user_id),
            kind: c.kind.into(),
            valid: c.valid_on(today),
            days_left: c.expires_on.map(|e| i32::try_from((e - today).num_days()).unwrap_or(i32::MAX)),
            number: c.number,
            issuer: c.issuer,
            issued_on: c.issued_on,
            expires_on: c.expires_on,
            scan_url: c.scan_key.as_deref().map(|k| crate::files::service::signed_url(ctx.state(), k)),
        }
    }
}

/// The certificates of the employees of one response, in one query.
pub struct CertificateLoader(AppState);

impl From<AppState> for CertificateLoader {
    fn from(s: AppState) -> Self {
        CertificateLoader(s)
    }
}

impl Loader<Uuid> for CertificateLoader {
    type Value = Vec<model::Certificate>;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::certificates_of(&self.0, keys).await.map_err(|e| e.to_string())?;
        Ok(group_by(rows, |c| c.user_id))
    }
}

/// 持证上岗 the certificates work of a category needs.
#[derive(SimpleObject)]
pub struct CertificateRequirement {
    /// the kind of work
    pub category: WorkOrderCategory,
    /// a valid certificate of one of these
    pub kinds: Vec<CertificateKind>,
}

async fn load_employee(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Employee> {
    let actor = ctx.actor()?;
    let e = service::employee(ctx.state(), &actor, id).await?;
    Employee::new(ctx, e)
}

async fn load_certificate(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Certificate> {
    let actor = ctx.actor()?;
    let state = ctx.state();
    let c = service::certificate(state, &actor, id).await?;
    Ok(Certificate::new(ctx, c, business_date(state.clock.now())))
}

#[derive(Default)]
pub struct StaffQuery;

#[Object]
impl StaffQuery {
    /// 员工档案 (`staff:read`): staff accounts with their records, in id order; those of
    /// the caller's projects (by the employees' role grants).
    #[graphql(guard = "Perm::StaffRead")]
    async fn employees(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "only staff acting in this project")] project_id: Option<ID>,
        status: Option<EmployeeStatus>,
        #[graphql(desc = "part of the name (or the phone, with `pii:read`), taken literally")] search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Employee>> {
        let actor = ctx.actor()?;
        let page = Page::<Uuid>::new(ctx, first, after)?;
        let project = parse_opt_id("projectId", project_id.as_ref())?;
        let rows = service::employees(
            ctx.state(),
            &actor,
            project,
            status.map(Into::into),
            search.as_deref(),
            page.after,
            page.fetch(),
        )
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push((r.user_id, Employee::new(ctx, r)?));
        }
        Ok(page.connection(out, |r| r.0, |r| r.1))
    }

    /// One employee (`staff:read` reaching them, or one's own).
    async fn employee(&self, ctx: &Context<'_>, user_id: ID) -> async_graphql::Result<Employee> {
        load_employee(ctx, parse_id("userId", &user_id)?).await
    }

    /// 我的档案 (`self:profile`).
    #[graphql(guard = "Perm::SelfProfile")]
    async fn my_employee_record(&self, ctx: &Context<'_>) -> async_graphql::Result<Employee> {
        let actor = ctx.actor()?;
        load_employee(ctx, actor.user_id).await
    }

    /// 即将到期的证书 (`staff:read`): expired and expiring within `withinDays`, soonest
    /// first, of the staff of the caller's projects.
    #[graphql(guard = "Perm::StaffRead")]
    async fn expiring_certificates(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] within_days: i32,
    ) -> async_graphql::Result<Vec<Certificate>> {
        let actor = ctx.actor()?;
        let state = ctx.state();
        let today = business_date(state.clock.now());
        let max = state.config.limits.max_page_size;
        Ok(service::expiring(state, &actor, within_days, max)
            .await?
            .into_iter()
            .map(|c| Certificate::new(ctx, c, today))
            .collect())
    }

    /// 持证上岗 (`staff:read`): the certificates work of each category needs.
    #[graphql(guard = "Perm::StaffRead")]
    async fn certificate_requirements(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CertificateRequirement>> {
        requirements_of(ctx).await
    }
}

async fn requirements_of(ctx: &Context<'_>) -> async_graphql::Result<Vec<CertificateRequirement>> {
    let actor = ctx.actor()?;
    let mut out: Vec<CertificateRequirement> = Vec::new();
    for (category, kind) in service::requirements(ctx.state(), &actor).await? {
        let Some(c) = crate::workorders::model::Category::parse(&category) else { continue };
        let c: WorkOrderCategory = c.into();
        match out.iter_mut().find(|r| r.category == c) {
            Some(r) => r.kinds.push(kind.into()),
            None => out.push(CertificateRequirement { category: c, kinds: vec![kind.into()] }),
        }
    }
    Ok(out)
}

/// An employee record as HR writes it.
#[derive(InputObject)]
pub struct SaveEmployeeInput {
    /// the staff account
    pub user_id: ID,
    /// 性别
    pub gender: Option<Gender>,
    /// 18 characters; omitted: kept as it is; empty: removed
    pub id_card_number: Option<String>,
    /// 入职日期
    pub hire_date: Option<NaiveDate>,
    /// 岗位 (up to 50 characters)
    #[graphql(default)]
    pub position: String,
    /// 部门 (up to 50 characters)
    #[graphql(default)]
    pub department: String,
    /// a photo key from `uploadFile` (purpose STAFF); omitted: kept; empty: removed
    pub photo: Option<String>,
    /// 紧急联系人
    #[graphql(default)]
    pub emergency_contact_name: String,
    /// the emergency contact's mobile number
    #[graphql(default)]
    pub emergency_contact_phone: String,
    /// 工号 (1-20 letters, digits, dashes; unique in the company); omitted: kept; empty: removed
    pub employee_no: Option<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A status change.
#[derive(InputObject)]
pub struct SetEmployeeStatusInput {
    /// the staff account
    pub user_id: ID,
    /// the new status
    pub status: EmployeeStatus,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// What an employee changes of their own record; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateMyEmployeeRecordInput {
    /// 紧急联系人
    pub emergency_contact_name: Option<String>,
    /// the emergency contact's mobile number (empty: removed)
    pub emergency_contact_phone: Option<String>,
    /// a photo key from `uploadFile` (purpose STAFF); empty: removed
    pub photo: Option<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A certificate to register.
#[derive(InputObject)]
pub struct AddCertificateInput {
    /// the staff account
    pub user_id: ID,
    /// 类别
    pub kind: CertificateKind,
    /// 证书编号 (unique per kind in the company)
    pub number: String,
    /// 发证机关
    pub issuer: String,
    /// 发证日期 (not in the future)
    pub issued_on: NaiveDate,
    /// none: it does not expire
    pub expires_on: Option<NaiveDate>,
    /// a scan key from `uploadFile` (purpose STAFF)
    pub scan: Option<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A renewal or a correction.
#[derive(InputObject)]
pub struct UpdateCertificateInput {
    /// the certificate
    pub certificate_id: ID,
    /// 证书编号
    pub number: String,
    /// 发证机关
    pub issuer: String,
    /// 发证日期
    pub issued_on: NaiveDate,
    /// 有效期至 (none: it does not expire)
    pub expires_on: Option<NaiveDate>,
    /// a scan key from `uploadFile` (purpose STAFF); omitted: kept; empty: removed
    pub scan: Option<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A certificate to remove.
#[derive(InputObject)]
pub struct RemoveCertificateInput {
    /// the certificate
    pub certificate_id: ID,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// The certificates a kind of work needs.
#[derive(InputObject)]
pub struct SetCertificateRequirementInput {
    /// the kind of work
    pub category: WorkOrderCategory,
    /// a valid certificate of one of these (empty: none needed)
    pub kinds: Vec<CertificateKind>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

crate::object_payload!(
    /// The employee as they are now.
    EmployeePayload,
    employee: Employee,
    load_employee,
    "the employee"
);

crate::object_payload!(
    /// The certificate as it is now.
    CertificatePayload,
    certificate: Certificate,
    load_certificate,
    "the certificate"
);

/// The requirements after the change.
#[derive(SimpleObject)]
pub struct SetCertificateRequirementPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// every requirement of the company
    pub requirements: Vec<CertificateRequirement>,
}

#[derive(Default)]
pub struct StaffMutation;

#[Object]
impl StaffMutation {
    /// 录入员工信息 (`staff:write` reaching the employee): the record of a staff account.
    #[graphql(guard = "Perm::StaffWrite")]
    async fn save_employee(
        &self,
        ctx: &Context<'_>,
        input: SaveEmployeeInput,
    ) -> async_graphql::Result<EmployeePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let user = parse_id("userId", &input.user_id)?;
        let id = service::save(
            ctx.state(),
            &actor,
            &retry,
            SaveEmployee {
                user_id: user,
                gender: input.gender.map(Into::into),
                id_card_number: input.id_card_number,
                hire_date: input.hire_date,
                position: input.position,
                department: input.department,
                photo: input.photo,
                emergency_name: input.emergency_contact_name,
                emergency_phone: input.emergency_contact_phone,
                employee_no: input.employee_no,
            },
        )
        .await?;
        Ok(EmployeePayload::new(input.client_mutation_id, id))
    }

    /// 在职状态 (`staff:write`): LEFT disables the account and ends its sessions; ACTIVE
    /// after LEFT enables it again; ON_LEAVE keeps them from being offered work.
    #[graphql(guard = "Perm::StaffWrite")]
    async fn set_employee_status(
        &self,
        ctx: &Context<'_>,
        input: SetEmployeeStatusInput,
    ) -> async_graphql::Result<EmployeePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let user = parse_id("userId", &input.user_id)?;
        let id = service::set_status(ctx.state(), &actor, &retry, user, input.status.into()).await?;
        Ok(EmployeePayload::new(input.client_mutation_id, id))
    }

    /// 我的档案 (`self:profile`): one's emergency contact and photo.
    #[graphql(guard = "Perm::SelfProfile")]
    async fn update_my_employee_record(
        &self,
        ctx: &Context<'_>,
        input: UpdateMyEmployeeRecordInput,
    ) -> async_graphql::Result<EmployeePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = service::update_own(
            ctx.state(),
            &actor,
            &retry,
            input.emergency_contact_name,
            input.emergency_contact_phone,
            input.photo,
        )
        .await?;
        Ok(EmployeePayload::new(input.client_mutation_id, id))
    }

    /// 登记证书 (`staff:write` reaching the employee).
    #[graphql(guard = "Perm::StaffWrite")]
    async fn add_certificate(
        &self,
        ctx: &Context<'_>,
        input: AddCertificateInput,
    ) -> async_graphql::Result<CertificatePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let user = parse_id("userId", &input.user_id)?;
        let c = CertificateInput {
            number: input.number,
            issuer: input.issuer,
            issued_on: input.issued_on,
            expires_on: input.expires_on,
            scan: input.scan,
        };
        let id = service::add_certificate(ctx.state(), &actor, &retry, user, input.kind.into(), c).await?;
        Ok(CertificatePayload::new(input.client_mutation_id, id))
    }

    /// 换证 (`staff:write`): a renewal or a correction; a new expiry arms the reminders again.
    #[graphql(guard = "Perm::StaffWrite")]
    async fn update_certificate(
        &self,
        ctx: &Context<'_>,
        input: UpdateCertificateInput,
    ) -> async_graphql::Result<CertificatePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = parse_id("certificateId", &input.certificate_id)?;
        let c = CertificateInput {
            number: input.number,
            issuer: input.issuer,
            issued_on: input.issued_on,
            expires_on: input.expires_on,
            scan: input.scan,
        };
        let id = service::update_certificate(ctx.state(), &actor, &retry, id, c).await?;
        Ok(CertificatePayload::new(input.client_mutation_id, id))
    }

    /// 删除证书 (`staff:write`).
    #[graphql(guard = "Perm::StaffWrite")]
    async fn remove_certificate(
        &self,
        ctx: &Context<'_>,
        input: RemoveCertificateInput,
    ) -> async_graphql::Result<crate::kit::gql::DeletedPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = parse_id("certificateId", &input.certificate_id)?;
        let id = service::remove_certificate(ctx.state(), &actor, &retry, id).await?;
        Ok(crate::kit::gql::DeletedPayload::new(input.client_mutation_id, id))
    }

    /// 持证上岗 (`staff:write` company-wide): work of a category is offered only to holders
    /// of a valid certificate of one of the kinds.
    #[graphql(guard = "Perm::StaffWrite")]
    async fn set_certificate_requirement(
        &self,
        ctx: &Context<'_>,
        input: SetCertificateRequirementInput,
    ) -> async_graphql::Result<SetCertificateRequirementPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let kinds: Vec<model::CertificateKind> = input.kinds.into_iter().map(Into::into).collect();
        service::set_requirement(ctx.state(), &actor, &retry, input.category.into(), &kinds).await?;
        let requirements = requirements_of(ctx).await?;
        Ok(SetCertificateRequirementPayload { client_mutation_id: input.client_mutation_id, requirements })
    }
}
