//! Permissions, built-in roles, data scope and the signed-in `Actor`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::kit::error::{AppError, Msg};

macro_rules! permissions {
    ($($variant:ident => $code:literal, $zh:literal, $en:literal;)*) => {
        /// A permission code (`user:write`); every function the API offers needs one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Perm { $($variant),* }

        impl Perm {
            pub const ALL: &'static [Perm] = &[$(Perm::$variant),*];

            pub fn code(self) -> &'static str {
                match self { $(Perm::$variant => $code),* }
            }

            pub fn label(self) -> Msg {
                match self { $(Perm::$variant => Msg::new($zh, $en)),* }
            }

            pub fn parse(code: &str) -> Option<Perm> {
                match code { $($code => Some(Perm::$variant),)* _ => None }
            }
        }
    };
}

permissions! {
    CompanyRead => "company:read", "查看企业信息", "View company information";
    CompanyWrite => "company:write", "修改企业信息", "Edit company information";
    ProjectRead => "project:read", "查看项目", "View projects";
    ProjectWrite => "project:write", "管理项目", "Manage projects";
    EstateRead => "estate:read", "查看楼栋房屋车位", "View buildings, houses and parking";
    EstateWrite => "estate:write", "管理楼栋房屋车位", "Manage buildings, houses and parking";
    EstateImport => "estate:import", "批量导入房屋业主", "Bulk import houses and owners";
    OwnerRead => "owner:read", "查看业主档案", "View owners";
    OwnerWrite => "owner:write", "管理业主档案", "Manage owners";
    UserRead => "user:read", "查看用户", "View users";
    UserWrite => "user:write", "管理用户", "Manage users";
    RoleRead => "role:read", "查看角色权限", "View roles and permissions";
    RoleWrite => "role:write", "管理角色与授权", "Manage roles and grant them";
    PiiRead => "pii:read", "查看完整手机号与身份证号", "See unmasked phone and ID numbers";
    AuditRead => "audit:read", "查看审计日志", "View the audit log";
    NotificationSend => "notification:send", "发送系统通知", "Send system notifications";
    AnnouncementWrite => "announcement:write", "发布公告", "Publish announcements";
    EquipmentRead => "equipment:read", "查看设备台账", "View the equipment ledger";
    EquipmentWrite => "equipment:write", "管理设备台账", "Manage the equipment ledger";
    CommandDoor => "device:command:door", "远程开门", "Open doors remotely";
    CommandElevator => "device:command:elevator", "远程控制电梯", "Control elevators remotely";
    CommandReset => "device:command:reset", "远程复位设备", "Reset devices remotely";
    AlarmRead => "alarm:read", "查看设备告警", "View device alarms";
    AlarmHandle => "alarm:handle", "确认与处理设备告警", "Acknowledge and resolve device alarms";
    AlarmDuty => "alarm:duty", "值班接收设备告警", "On duty: receive device alarms";
    AlarmRuleWrite => "alarm:rule:write", "管理告警规则", "Manage alarm rules";
    RepairRead => "repair:read", "查看设备报修需求", "View device repair requests";
    MaintenanceRead => "maintenance:read", "查看保养计划与记录", "View maintenance plans and records";
    MaintenancePlan => "maintenance:plan", "管理保养计划", "Manage maintenance plans";
    MaintenanceDo => "maintenance:do", "执行保养任务", "Carry out maintenance tasks";
    PatrolRead => "patrol:read", "查看巡检", "View patrols";
    PatrolWrite => "patrol:write", "管理巡检路线", "Manage patrol routes";
    PatrolDo => "patrol:do", "执行巡检打卡", "Walk patrols and scan checkpoints";
    WorkorderRead => "workorder:read", "查看工单", "View work orders";
    WorkorderCreate => "workorder:create", "创建工单（代报修、公区）", "Create work orders (for owners, public areas)";
    WorkorderDispatch => "workorder:dispatch", "派单与调度工单", "Dispatch work orders";
    WorkorderDo => "workorder:do", "接单与处理工单", "Take and carry out work orders";
    WorkorderVisit => "workorder:visit", "工单确认与回访", "Confirm work orders and make return visits";
    FeedbackRead => "feedback:read", "查看业主投诉建议", "View owner feedback";
    FeedbackHandle => "feedback:handle", "回复与处理业主投诉建议", "Answer and handle owner feedback";
    FeeRead => "fee:read", "查看收费项目与收费标准", "View fee items and prices";
    FeeWrite => "fee:write", "设置收费项目与收费标准", "Set fee items and prices";
    MeterRead => "meter:read", "查看抄表记录", "View meter readings";
    MeterWrite => "meter:write", "抄表、换表与审核异常读数", "Read meters, record replacements, review abnormal readings";
    BillRead => "bill:read", "查看账单与收款", "View bills and payments";
    BillRun => "bill:run", "生成账单", "Run bills";
    PaymentWrite => "payment:write", "登记线下收款", "Record offline payments";
    PaymentRefund => "payment:refund", "申请退款", "Ask for refunds";
    BillApprove => "bill:approve", "审批滞纳金减免等账务申请", "Approve late-fee waivers and other billing requests";
    SelfHouse => "self:house", "我的房屋", "My houses";
    StaffRead => "staff:read", "查看员工档案与证书", "View employee records and certificates";
    StaffWrite => "staff:write", "管理员工档案与证书", "Manage employee records and certificates";
    SelfProfile => "self:profile", "我的员工档案", "My employee record";
    AttendanceRead => "attendance:read", "查看考勤记录与报表", "View attendance records and reports";
    AttendanceWrite => "attendance:write", "管理班次、排班与考勤机", "Manage shifts, rotas and terminals";
    AttendanceApprove => "attendance:approve", "审批补签与请假", "Approve corrections and leave";
    SelfAttendance => "self:attendance", "打卡、我的考勤、补签与请假", "Clock in, my attendance, corrections and leave";
    TrainingRead => "training:read", "查看考试成绩与员工成绩档案", "View exam results and transcripts";
    TrainingWrite => "training:write", "管理题库、考试与实操考核", "Manage the question bank, exams and practical assessments";
    SelfTraining => "self:training", "参加考试、我的成绩", "Sit exams, my results";
    DevTools => "dev:tools", "开发调试工具（仅开发环境）", "Development helpers (development servers only)";
    SchemaRead => "schema:read", "查看接口文档（操练场）", "Read the API schema (playground docs)";
}

/// Which rows a permission reaches: the whole company, listed projects, or own records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Company,
    Projects(HashSet<Uuid>),
    Own,
}

impl Scope {
    pub fn kind(&self) -> GrantScope {
        match self {
            Scope::Company => GrantScope::Company,
            Scope::Projects(_) => GrantScope::Projects,
            Scope::Own => GrantScope::Own,
        }
    }

    /// The listed projects of a `Projects` scope (empty otherwise).
    pub fn project_ids(&self) -> Vec<Uuid> {
        match self {
            Scope::Projects(ids) => {
                let mut v: Vec<Uuid> = ids.iter().copied().collect();
                v.sort();
                v
            }
            _ => Vec::new(),
        }
    }

    /// The wider of two grants of the same permission.
    pub fn merge(self, other: Scope) -> Scope {
        match (self, other) {
            (Scope::Company, _) | (_, Scope::Company) => Scope::Company,
            (Scope::Projects(mut a), Scope::Projects(b)) => {
                a.extend(b);
                Scope::Projects(a)
            }
            (p @ Scope::Projects(_), Scope::Own) | (Scope::Own, p @ Scope::Projects(_)) => p,
            (Scope::Own, Scope::Own) => Scope::Own,
        }
    }

    /// Does this scope include everything `other` includes?
    pub fn covers(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::Company, _) => true,
            (Scope::Projects(a), Scope::Projects(b)) => b.is_subset(a),
            (Scope::Projects(_) | Scope::Own, Scope::Own) => true,
            _ => false,
        }
    }
}

crate::text_enum! {
    /// 账号状态 whether an account may sign in.
    pub enum AccountStatus {
        Active = "active",
        /// an owner registered by the office who has not activated the app yet
        Pending = "pending",
        Disabled = "disabled",
    }
}

crate::text_enum! {
    /// 数据范围 how far one grant of a role reaches.
    pub enum GrantScope {
        Company = "company",
        Projects = "projects",
        /// staff: the projects they serve as manager or customer service; owners: their own houses
        Own = "own",
    }
}

/// 用户 an account: one person of one company. It may hold staff roles and be linked to
/// an owner record at once (a technician who owns a flat signs in once).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Account {
    pub id: Uuid,
    pub company_id: Uuid,
    pub username: Option<String>,
    pub phone: Option<String>,
    pub name: String,
    pub status: AccountStatus,
    pub must_change_password: bool,
    pub created_at: DateTime<Utc>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    /// a staff account: it has a username or holds a role other than the owner role
    pub is_staff: bool,
}

/// 角色 a named set of permissions of a company.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Role {
    pub id: Uuid,
    pub company_id: Uuid,
    pub code: String,
    pub name: String,
    pub builtin: bool,
    pub permissions: Vec<String>,
}

/// 授权 a role granted to an account with a data scope.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoleGrant {
    pub id: Uuid,
    pub user_id: Uuid,
    pub role_id: Uuid,
    pub role_code: String,
    pub role_name: String,
    pub permissions: Vec<String>,
    pub scope: GrantScope,
    pub project_ids: Vec<Uuid>,
}

impl RoleGrant {
    pub fn scope(&self) -> Scope {
        match self.scope {
            GrantScope::Company => Scope::Company,
            GrantScope::Projects => Scope::Projects(self.project_ids.iter().copied().collect()),
            GrantScope::Own => Scope::Own,
        }
    }
}

/// The built-in role every account linked to an owner record holds (over its own houses).
pub const OWNER_ROLE: &str = "owner";

/// The caller of a request: who, in which company, with which permissions and scopes.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Uuid,
    pub company_id: Uuid,
    /// holds a staff role (it may be an owner too)
    pub is_staff: bool,
    pub name: String,
    /// the owner record linked to this account, if any
    pub owner_id: Option<Uuid>,
    /// projects this staff member serves as manager or customer service ("own" scope)
    pub own_projects: HashSet<Uuid>,
    /// every project of the caller's company: a project id from a client is resolved here
    /// first, so another company's project is NOT_FOUND whatever the caller's scope
    pub company_projects: HashSet<Uuid>,
    pub perms: HashMap<Perm, Scope>,
    pub must_change_password: bool,
    pub loaded_at: DateTime<Utc>,
    /// unique to this load of the actor in this process: a new load (a role, scope or
    /// account change drops the cached actor) has a new version, so answers cached for
    /// the old one are never served again
    pub version: u64,
    /// access tokens issued before this instant are void (sign-out, password change, disabling)
    pub tokens_valid_after: Option<DateTime<Utc>>,
    /// the account as loaded with the actor (for `me`, without another query)
    pub account: Account,
}

impl crate::kit::audit::Auditor for Actor {
    fn audit_company(&self) -> Uuid {
        self.company_id
    }
    fn audit_user(&self) -> Option<Uuid> {
        Some(self.user_id)
    }
}

/// Which projects a read may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectFilter {
    All,
    Only(Vec<Uuid>),
}

impl ProjectFilter {
    pub fn allows(&self, project: Uuid) -> bool {
        match self {
            ProjectFilter::All => true,
            ProjectFilter::Only(ids) => ids.contains(&project),
        }
    }
    /// For SQL: `NULL` means all projects of the company.
    pub fn as_sql(&self) -> Option<Vec<Uuid>> {
        match self {
            ProjectFilter::All => None,
            ProjectFilter::Only(ids) => Some(ids.clone()),
        }
    }
}

impl Actor {
    pub fn is_staff(&self) -> bool {
        self.is_staff
    }

    pub fn has(&self, perm: Perm) -> bool {
        self.perms.contains_key(&perm)
    }

    /// The scope of `perm`, or FORBIDDEN. A first sign-in with an initial password may
    /// do nothing but change it.
    pub fn require(&self, perm: Perm) -> Result<&Scope, AppError> {
        if self.must_change_password {
            return Err(password_change_required());
        }
        self.perms.get(&perm).ok_or_else(AppError::forbidden)
    }

    /// The projects `perm` reaches.
    pub fn projects(&self, perm: Perm) -> Result<ProjectFilter, AppError> {
        Ok(match self.require(perm)? {
            Scope::Company => ProjectFilter::All,
            Scope::Projects(ids) => ProjectFilter::Only(ids.iter().copied().collect()),
            Scope::Own => ProjectFilter::Only(self.own_projects.iter().copied().collect()),
        })
    }

    /// NOT_FOUND unless `project` belongs to the caller's company (nothing is revealed
    /// about another company's), then FORBIDDEN unless `perm` reaches it.
    pub fn require_project(&self, perm: Perm, project: Uuid) -> Result<(), AppError> {
        let filter = self.projects(perm)?;
        if !self.company_projects.contains(&project) {
            return Err(AppError::not_found("project"));
        }
        if filter.allows(project) { Ok(()) } else { Err(AppError::forbidden()) }
    }

    /// `require_project` for something of a project, or `perm` over the whole company for
    /// something company-wide (`project` None): a company-wide shift, course or exam.
    pub fn require_over(&self, perm: Perm, project: Option<Uuid>) -> Result<(), AppError> {
        match project {
            Some(p) => self.require_project(perm, p),
            None => match self.projects(perm)? {
                ProjectFilter::All => Ok(()),
                ProjectFilter::Only(_) => Err(AppError::forbidden()),
            },
        }
    }

    /// Whether any of `perms` reaches `project`, a project of the caller's company (a row's
    /// project, already read within the company; for a client's id use `require_project`).
    pub fn reaches(&self, perms: &[Perm], project: Uuid) -> bool {
        self.company_projects.contains(&project)
            && perms.iter().any(|p| self.projects(*p).is_ok_and(|f| f.allows(project)))
    }

    pub fn unmask_pii(&self) -> bool {
        self.has(Perm::PiiRead) && !self.must_change_password
    }
}

pub fn password_change_required() -> AppError {
    AppError::Forbidden {
        reason: "PASSWORD_CHANGE_REQUIRED",
        msg: Msg::new("首次登录请先修改初始密码", "Change your initial password first"),
    }
}

/// A role that every company gets when it is created.
pub struct BuiltinRole {
    pub code: &'static str,
    pub name: &'static str,
    pub perms: &'static [Perm],
}

use Perm::*;

pub const BUILTIN_ROLES: &[BuiltinRole] = &[
    BuiltinRole { code: "admin", name: "系统管理员", perms: &[] /* every permission */ },
    BuiltinRole {
        code: "project_manager",
        name: "项目经理",
        perms: &[
            CompanyRead,
            ProjectRead,
            ProjectWrite,
            EstateRead,
            EstateWrite,
            EstateImport,
            OwnerRead,
            OwnerWrite,
            UserRead,
            RoleRead,
            PiiRead,
            AnnouncementWrite,
            EquipmentRead,
            EquipmentWrite,
            CommandDoor,
            CommandElevator,
            CommandReset,
            AlarmRead,
            AlarmHandle,
            AlarmRuleWrite,
            RepairRead,
            MaintenanceRead,
            MaintenancePlan,
            MaintenanceDo,
            PatrolRead,
            PatrolWrite,
            WorkorderRead,
            WorkorderCreate,
            WorkorderDispatch,
            WorkorderDo,
            WorkorderVisit,
            FeedbackRead,
            FeedbackHandle,
            FeeRead,
            MeterRead,
            BillRead,
            BillApprove,
            StaffRead,
            SelfProfile,
            AttendanceRead,
            AttendanceWrite,
            AttendanceApprove,
            SelfAttendance,
            TrainingRead,
            TrainingWrite,
            SelfTraining,
            SchemaRead,
        ],
    },
    BuiltinRole {
        code: "technician",
        name: "维修人员",
        perms: &[
            CompanyRead,
            ProjectRead,
            EstateRead,
            EquipmentRead,
            CommandElevator,
            CommandReset,
            AlarmRead,
            AlarmHandle,
            AlarmDuty,
            RepairRead,
            MaintenanceRead,
            MaintenanceDo,
            PatrolRead,
            WorkorderRead,
            WorkorderDo,
            MeterRead,
            MeterWrite,
            SelfProfile,
            SelfAttendance,
            SelfTraining,
        ],
    },
    BuiltinRole {
        code: "customer_service",
        name: "客服人员",
        perms: &[
            CompanyRead,
            ProjectRead,
            EstateRead,
            OwnerRead,
            OwnerWrite,
            AnnouncementWrite,
            WorkorderRead,
            WorkorderCreate,
            WorkorderDispatch,
            WorkorderVisit,
            FeedbackRead,
            FeedbackHandle,
            SelfProfile,
            SelfAttendance,
            SelfTraining,
        ],
    },
    BuiltinRole {
        code: "finance",
        name: "财务人员",
        perms: &[
            CompanyRead,
            ProjectRead,
            EstateRead,
            OwnerRead,
            FeeRead,
            FeeWrite,
            MeterRead,
            MeterWrite,
            BillRead,
            BillRun,
            PaymentWrite,
            PaymentRefund,
            SelfProfile,
            SelfAttendance,
            SelfTraining,
        ],
    },
    BuiltinRole {
        code: "guard",
        name: "安保人员",
        perms: &[ProjectRead, EstateRead, CommandDoor, PatrolRead, PatrolDo, SelfProfile, SelfAttendance, SelfTraining],
    },
    BuiltinRole { code: OWNER_ROLE, name: "业主", perms: &[SelfHouse] },
];

impl BuiltinRole {
    pub fn permission_codes(&self) -> Vec<String> {
        let perms = if self.code == "admin" { Perm::ALL } else { self.perms };
        perms.iter().map(|p| p.code().to_owned()).collect()
    }
}

/// One entry of the app's function menu, shown when the user holds `perm`.
pub struct MenuItem {
    pub code: &'static str,
    pub title: Msg,
    pub perm: Perm,
}

pub const MENU: &[MenuItem] = &[
    MenuItem { code: "company", title: Msg::new("企业信息", "Company"), perm: CompanyRead },
    MenuItem { code: "projects", title: Msg::new("项目管理", "Projects"), perm: ProjectRead },
    MenuItem { code: "estate", title: Msg::new("房产资料", "Buildings & houses"), perm: EstateRead },
    MenuItem { code: "owners", title: Msg::new("业主档案", "Owners"), perm: OwnerRead },
    MenuItem { code: "users", title: Msg::new("用户管理", "Users"), perm: UserRead },
    MenuItem { code: "roles", title: Msg::new("角色权限", "Roles"), perm: RoleRead },
    MenuItem { code: "my-houses", title: Msg::new("我的房屋", "My houses"), perm: SelfHouse },
    MenuItem { code: "announcements", title: Msg::new("公告管理", "Announcements"), perm: AnnouncementWrite },
    MenuItem { code: "equipment", title: Msg::new("设备台账", "Equipment"), perm: EquipmentRead },
    MenuItem { code: "alarms", title: Msg::new("设备告警", "Alarms"), perm: AlarmRead },
    MenuItem { code: "maintenance", title: Msg::new("维保计划", "Maintenance"), perm: MaintenanceRead },
    MenuItem { code: "patrols", title: Msg::new("巡检", "Patrols"), perm: PatrolRead },
    MenuItem { code: "workorders", title: Msg::new("工单", "Work orders"), perm: WorkorderRead },
    MenuItem { code: "my-repairs", title: Msg::new("我的报修", "My repairs"), perm: SelfHouse },
    MenuItem { code: "feedback", title: Msg::new("投诉建议", "Feedback"), perm: FeedbackRead },
    MenuItem { code: "my-feedback", title: Msg::new("投诉建议", "My feedback"), perm: SelfHouse },
    MenuItem { code: "fee-items", title: Msg::new("收费项目", "Fee items"), perm: FeeRead },
    MenuItem { code: "meter-readings", title: Msg::new("抄表", "Meter readings"), perm: MeterRead },
    MenuItem { code: "bills", title: Msg::new("账单", "Bills"), perm: BillRead },
    MenuItem { code: "my-bills", title: Msg::new("我的账单", "My bills"), perm: SelfHouse },
    MenuItem { code: "approvals", title: Msg::new("审批", "Approvals"), perm: BillApprove },
    MenuItem { code: "staff", title: Msg::new("员工档案", "Staff"), perm: StaffRead },
    MenuItem { code: "my-profile", title: Msg::new("我的档案", "My record"), perm: SelfProfile },
    MenuItem { code: "attendance", title: Msg::new("考勤", "Attendance"), perm: AttendanceRead },
    MenuItem { code: "my-attendance", title: Msg::new("打卡", "Clock in"), perm: SelfAttendance },
    MenuItem { code: "training", title: Msg::new("培训考核", "Training"), perm: TrainingRead },
    MenuItem { code: "my-exams", title: Msg::new("我的考试", "My exams"), perm: SelfTraining },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for p in Perm::ALL {
            assert_eq!(Perm::parse(p.code()), Some(*p));
        }
        assert_eq!(Perm::parse("nope"), None);
    }

    #[test]
    fn scope_merge_and_cover() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let pa = Scope::Projects([a].into());
        let pab = Scope::Projects([a, b].into());
        assert_eq!(pa.clone().merge(Scope::Projects([b].into())), pab);
        assert_eq!(pa.clone().merge(Scope::Company), Scope::Company);
        assert!(pab.covers(&pa));
        assert!(!pa.covers(&pab));
        assert!(!pa.covers(&Scope::Company));
        assert!(Scope::Company.covers(&pab));
    }
}
