//! `wuye seed-demo` (a Chengdu estate, an office tower, staff of every role, owners) and
//! `wuye bootstrap` (a real company's first administrator). Both go through the services.

use rust_decimal::Decimal;
use uuid::Uuid;

use crate::kit::error::{AppError, AppResult};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::org::company::model::ProjectKind;
use crate::org::company::service::{self as company, ProjectInput};
use crate::org::estate::model::{HouseStatus, HouseUsage};
use crate::org::estate::service::{self as estate, HouseInput, ParkingInput};
use crate::org::owners::model::Relation;
use crate::org::owners::service::{self as owners, OwnerInput};
use crate::rbac::model::GrantScope;
use crate::rbac::service::{self as rbac, GrantInput, NewStaff};

pub const DEMO_COMPANY: &str = "成都锦城物业服务有限公司";
/// The demo company's short code: its devices publish under `{root}/JCWY/…`.
pub const DEMO_COMPANY_CODE: &str = "JCWY";
pub const DEMO_PASSWORD: &str = "Wuye@2026";
pub const DEMO_OWNERS: u32 = 100;

/// The first valid completion of a 17-character prefix: the validator is the only
/// place that knows the check algorithms.
fn with_check(prefix: &str, chars: &str, valid: impl Fn(String) -> bool) -> String {
    chars.chars().map(|c| format!("{prefix}{c}")).find(|s| valid(s.clone())).unwrap_or_default()
}

pub fn demo_id_card(i: u32) -> String {
    let prefix = format!("510104{}{:02}{:02}{:03}", 1960 + i % 40, 1 + i % 12, 1 + i % 28, i % 1000);
    with_check(&prefix, "0123456789X", |s| wuye_validate::validate_id_card(&s).is_ok())
}

pub fn demo_owner_phone(i: u32) -> String {
    format!("138{:08}", i)
}

fn credit_code(prefix: &str) -> String {
    with_check(prefix, "0123456789ABCDEFGHJKLMNPQRTUWXY", |s| wuye_validate::validate_credit_code(&s).is_ok())
}

/// A company with the demo estate: its name, code, the first 17 characters of its credit
/// code, and what its staff usernames start with (usernames are unique on the server).
#[derive(Debug, Clone, Copy)]
pub struct DemoCompany<'a> {
    pub name: &'a str,
    pub code: &'a str,
    pub credit_prefix: &'a str,
    pub username_prefix: &'a str,
}

pub const DEMO: DemoCompany<'static> = DemoCompany {
    name: DEMO_COMPANY,
    code: DEMO_COMPANY_CODE,
    credit_prefix: "91510100MA6CJ8WY0",
    username_prefix: "",
};

/// A second company with the same estate, for tests across companies: staff sign in as
/// `b-admin`, `b-manager`, …
pub const SECOND: DemoCompany<'static> = DemoCompany {
    name: "成都蓉城物业管理有限公司",
    code: "RCWY",
    credit_prefix: "91510100MA6CJ9RC0",
    username_prefix: "b-",
};

fn logins() -> String {
    format!(
        "demo logins (password {DEMO_PASSWORD}):\n  staff:  admin (系统管理员), manager (项目经理), tech1 / tech2 (维修), cs1 (客服), finance1 (财务), guard1 (保安)\n  owners: phone {} … {} (or sign in by SMS code: an admin reads the codes with the devSentSms query)",
        demo_owner_phone(1),
        demo_owner_phone(DEMO_OWNERS)
    )
}

/// Demo ledger: elevators, pumps, extinguishers and meters in the estate; elevators and a
/// door in the tower.
async fn seed_devices(
    s: &AppState,
    admin: &crate::rbac::model::Actor,
    estate: Uuid,
    tower: Uuid,
    houses: &[Uuid],
) -> AppResult<()> {
    use crate::equipment::model::{DeviceCategory as C, Importance};
    use crate::equipment::service::{DeviceInput, create};
    let none = Retry::none();
    let dev = |project: Uuid, code: String, name: String, category: C, attributes: serde_json::Value| DeviceInput {
        project_id: Some(project),
        code: Some(code),
        name: Some(name),
        category: Some(category),
        manufacturer: Some(if category == C::Elevator { "日立电梯(中国)有限公司" } else { "成都本地供应商" }.into()),
        install_date: chrono::NaiveDate::from_ymd_opt(2021, 6, 1),
        warranty_expiry: chrono::NaiveDate::from_ymd_opt(2026, 6, 1),
        attributes: Some(attributes),
        importance: Some(match category {
            C::Elevator | C::WaterPump | C::FireEquipment => Importance::Critical,
            C::WaterMeter | C::ElectricityMeter | C::GasMeter => Importance::Low,
            _ => Importance::Normal,
        }),
        ..DeviceInput::default()
    };
    for b in 1..=2 {
        for u in 1..=2 {
            let attrs = serde_json::json!({"elevatorNo": format!("{b}-{u}#"), "floorsServed": 26, "ratedSpeed": "2.5",
                "ratedLoadKg": 1000, "registrationCode": format!("3110510100201907{b}{u:03}"), "nextInspection": "2027-03-01"});
            create(
                s,
                admin,
                &none,
                dev(estate, format!("JC-ELV-{b}{u}"), format!("{b}栋{u}单元客梯"), C::Elevator, attrs),
            )
            .await?;
        }
    }
    for n in 1..=2 {
        create(
            s,
            admin,
            &none,
            dev(estate, format!("JC-PUMP-{n:02}"), format!("生活水泵{n}号"), C::WaterPump, serde_json::json!({})),
        )
        .await?;
    }
    for n in 1..=4 {
        let attrs = serde_json::json!({"fireType": "干粉灭火器", "pressureMinMpa": "1.0", "pressureMaxMpa": "1.4", "nextCheck": "2026-12-01"});
        create(
            s,
            admin,
            &none,
            dev(estate, format!("JC-FIRE-{n:02}"), format!("{n}号消防灭火器"), C::FireEquipment, attrs),
        )
        .await?;
    }
    for (i, h) in houses.iter().take(10).enumerate() {
        let attrs = serde_json::json!({"meterNo": format!("W{:04}", i + 1), "houseId": h, "multiplier": "1", "initialReading": "0"});
        create(
            s,
            admin,
            &none,
            dev(estate, format!("JC-WM-{:04}", i + 1), format!("户表{:04}", i + 1), C::WaterMeter, attrs),
        )
        .await?;
    }
    for n in 1..=2 {
        let attrs = serde_json::json!({"elevatorNo": format!("A-{n}#"), "floorsServed": 10, "ratedSpeed": "1.75",
            "ratedLoadKg": 1350, "registrationCode": format!("31105101002020010{n:03}"), "nextInspection": "2027-05-01"});
        create(s, admin, &none, dev(tower, format!("TF-ELV-{n:02}"), format!("A座{n}号客梯"), C::Elevator, attrs))
            .await?;
    }
    let door = serde_json::json!({"doorLocation": "A座大堂", "controlMode": "face"});
    create(s, admin, &none, dev(tower, "TF-DOOR-01".into(), "A座大堂门禁".into(), C::AccessDoor, door)).await?;
    Ok(())
}

/// Demo plans (elevators monthly and yearly, extinguishers monthly, pumps quarterly) and a
/// patrol route round the estate.
async fn seed_maintenance(s: &AppState, admin: &crate::rbac::model::Actor, estate: Uuid, tech: Uuid) -> AppResult<()> {
    use crate::equipment::model::DeviceCategory as C;
    use crate::maintenance::patrols::model::{CheckpointInput, RouteInput};
    use crate::maintenance::patrols::service::create_route;
    use crate::maintenance::plans::model::{IntervalKind as I, PlanAnchor, PlanInput, Usage};
    use crate::maintenance::plans::service::create_plan;
    let none = Retry::none();
    let plan = |category: C, name: &str, checklist: &[&str], interval: I, start: (i32, u32, u32)| PlanInput {
        project_id: estate,
        device_id: None,
        category: Some(category),
        name: name.into(),
        checklist: checklist.iter().map(|c| c.to_string()).collect(),
        interval_kind: Some(interval),
        interval_days: None,
        usage: None,
        anchor: PlanAnchor::Schedule,
        start_date: chrono::NaiveDate::from_ymd_opt(start.0, start.1, start.2).unwrap_or_default(),
        lead_days: 5,
        responsible_user_id: Some(tech),
    };
    let plans = [
        plan(
            C::Elevator,
            "电梯月度例行保养",
            &["曳引机运行与油位", "制动器间隙与动作", "层门与轿门联锁", "轿厢照明与通风", "紧急报警与对讲"],
            I::Monthly,
            (2026, 1, 5),
        ),
        plan(
            C::Elevator,
            "电梯年度全面检验",
            &["安全钳与限速器联动试验", "钢丝绳磨损与张力", "缓冲器", "平衡系数测定"],
            I::Yearly,
            (2026, 3, 1),
        ),
        plan(
            C::FireEquipment,
            "灭火器月度压力检查",
            &["压力表指针在绿区", "瓶体无锈蚀变形", "铅封与保险销完好"],
            I::Monthly,
            (2026, 1, 1),
        ),
        plan(
            C::WaterPump,
            "水泵季度保养",
            &["轴承润滑", "机械密封无渗漏", "电机绝缘测试", "压力表校验"],
            I::Quarterly,
            (2026, 1, 10),
        ),
    ];
    // by use: ropes lubricated every 20,000 trips, pump bearings greased every 500 hours run
    let by_use = |category: C, name: &str, checklist: &[&str], metric: &str, every: f64, lead: f64| PlanInput {
        interval_kind: None,
        usage: Some(Usage { metric: metric.into(), every, lead }),
        ..plan(category, name, checklist, I::Monthly, (2026, 1, 1))
    };
    let used = [
        by_use(C::Elevator, "曳引钢丝绳润滑", &["钢丝绳润滑", "绳头组合紧固"], "trips", 20_000.0, 2_000.0),
        by_use(C::WaterPump, "水泵轴承加脂", &["轴承加注润滑脂", "运行噪声与振动"], "runHours", 500.0, 50.0),
    ];
    for p in plans.into_iter().chain(used) {
        create_plan(s, admin, &none, p).await?;
    }
    let point = |name: &str, lat: f64, lng: f64| CheckpointInput {
        name: name.into(),
        lat: Some(lat),
        lng: Some(lng),
        radius_m: Some(50),
    };
    create_route(
        s,
        admin,
        &none,
        RouteInput {
            project_id: estate,
            name: "锦城花园夜间巡逻".into(),
            times: vec!["09:00".into(), "21:00".into()],
            window_minutes: 90,
            checkpoints: vec![
                point("北门岗亭", 30.57280, 104.06680),
                point("1栋大堂", 30.57320, 104.06720),
                point("地下车库B1", 30.57350, 104.06650),
                point("水泵房", 30.57300, 104.06600),
            ],
        },
    )
    .await?;
    Ok(())
}

/// Demo fee items of the estate: property fee by building area, garbage removal fixed,
/// water by tiers, parking fixed per space.
async fn seed_fees(s: &AppState, admin: &crate::rbac::model::Actor, estate: Uuid) -> AppResult<()> {
    use crate::billing::fees::model::{Cycle, FeeKind, Method, Payer, PayingResident, Scope, Tier};
    use crate::billing::fees::service::{ItemInput, PriceInput, create_item};
    use crate::equipment::model::DeviceCategory;
    let none = Retry::none();
    let from = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
    let item = |name: &str, kind, payer, method, cycle, unit: Option<Decimal>, tiers: Vec<Tier>| ItemInput {
        project_id: estate,
        name: name.into(),
        kind,
        payer,
        paying_resident: PayingResident::Owner,
        method,
        cycle,
        prepaid: false,
        scope: Scope::All,
        building_ids: Vec::new(),
        house_usage: None,
        house_ids: Vec::new(),
        meter_category: (method == Method::Tiered).then_some(DeviceCategory::WaterMeter),
        effective_from: from,
        effective_to: None,
        price: PriceInput { effective_from: None, unit_price: unit, tiers, formula: None },
    };
    let water = vec![
        Tier { up_to: Some(Decimal::from(15)), price: Decimal::new(293, 2) },
        Tier { up_to: Some(Decimal::from(25)), price: Decimal::new(387, 2) },
        Tier { up_to: None, price: Decimal::new(668, 2) },
    ];
    let items = [
        item(
            "物业费",
            FeeKind::Property,
            Payer::House,
            Method::BuildingArea,
            Cycle::Monthly,
            Some(Decimal::new(235, 2)),
            vec![],
        ),
        item(
            "垃圾清运费",
            FeeKind::Garbage,
            Payer::House,
            Method::Fixed,
            Cycle::Monthly,
            Some(Decimal::from(10)),
            vec![],
        ),
        item("水费", FeeKind::Water, Payer::House, Method::Tiered, Cycle::Monthly, None, water),
        item(
            "停车管理费",
            FeeKind::Parking,
            Payer::ParkingSpace,
            Method::Fixed,
            Cycle::Monthly,
            Some(Decimal::from(150)),
            vec![],
        ),
    ];
    for i in items {
        create_item(s, admin, &none, i).await?;
    }
    Ok(())
}

/// The demo company; `activity` adds what a working estate has going on (work orders in
/// the pool), which the development server shows and most tests do without.
pub async fn seed_demo(state: &AppState, activity: bool) -> AppResult<String> {
    if company::company_exists(state, DEMO_COMPANY).await? {
        return Ok(format!("demo data already present\n{}", logins()));
    }
    seed_company_with(state, DEMO, activity).await?;
    Ok(logins())
}

/// A company with the whole demo estate (no activity). Returns the company's id.
pub async fn seed_company(state: &AppState, demo: DemoCompany<'_>) -> AppResult<Uuid> {
    seed_company_with(state, demo, false).await
}

/// A company with the whole demo estate: staff, projects, houses, owners, parking, devices,
/// maintenance plans and patrol routes; with `activity`, work orders too. Returns the
/// company's id.
pub async fn seed_company_with(state: &AppState, demo: DemoCompany<'_>, activity: bool) -> AppResult<Uuid> {
    let credit = credit_code(demo.credit_prefix);
    let new = super::NewCompany { name: demo.name, code: Some(demo.code), credit_code: Some(&credit) };
    let admin_name = format!("{}admin", demo.username_prefix);
    let (company, admin_id) = super::create_company(state, new, &admin_name, DEMO_PASSWORD, false).await?;
    let admin = rbac::load_actor(state, admin_id, company, i64::MAX).await?;
    let s = state;
    let none = Retry::none();

    let mut staff = std::collections::HashMap::new();
    for (username, name, phone) in [
        ("manager", "王经理", "13900000001"),
        ("tech1", "李师傅", "13900000002"),
        ("tech2", "张师傅", "13900000003"),
        ("cs1", "刘客服", "13900000004"),
        ("finance1", "陈会计", "13900000005"),
        ("guard1", "赵保安", "13900000006"),
    ] {
        let login = format!("{}{username}", demo.username_prefix);
        let u = rbac::create_staff_user(
            s,
            &admin,
            &none,
            NewStaff {
                username: &login,
                name,
                phone: Some(phone),
                initial_password: DEMO_PASSWORD,
                must_change_password: false,
            },
        )
        .await?;
        staff.insert(username, u);
    }
    let id_of = |k: &str| staff.get(k).copied().ok_or(AppError::not_found("user"));

    let estate_id = company::create_project(
        s,
        &admin,
        &none,
        ProjectInput {
            name: Some("锦城花园"),
            code: Some("JCHY"),
            address: Some("四川省成都市高新区天府大道中段666号"),
            kind: Some(ProjectKind::Residential),
            building_area: Some(Decimal::new(2_350_000, 2)),
            households: Some(200),
            manager_id: Some(id_of("manager")?),
            service_staff_ids: Some(vec![id_of("cs1")?]),
            geofence: Some((30.5728, 104.0668, 300)),
        },
    )
    .await?;
    let tower_id = company::create_project(
        s,
        &admin,
        &none,
        ProjectInput {
            name: Some("天府国际中心"),
            code: Some("TFGJ"),
            address: Some("四川省成都市高新区交子大道88号"),
            kind: Some(ProjectKind::Office),
            building_area: Some(Decimal::new(4_800_000, 2)),
            households: Some(40),
            manager_id: Some(id_of("manager")?),
            service_staff_ids: None,
            geofence: Some((30.5836, 104.0612, 200)),
        },
    )
    .await?;

    // the company has projects now: the administrator's actor learns them
    let admin = rbac::load_actor(state, admin_id, company, i64::MAX).await?;
    let roles = rbac::roles(s, &admin, None, 100).await?;
    let role = |code: &str| roles.iter().find(|r| r.code == code).map(|r| r.id).ok_or(AppError::not_found("role"));
    for (user, code, projects) in [
        ("manager", "project_manager", vec![estate_id, tower_id]),
        ("tech1", "technician", vec![estate_id]),
        ("tech2", "technician", vec![tower_id]),
        ("cs1", "customer_service", vec![estate_id]),
        ("finance1", "finance", vec![]),
        ("guard1", "guard", vec![estate_id]),
    ] {
        let scope = if projects.is_empty() { GrantScope::Company } else { GrantScope::Projects };
        rbac::assign_role(
            s,
            &admin,
            &none,
            GrantInput { user_id: id_of(user)?, role_id: role(code)?, scope, project_ids: projects },
        )
        .await?;
    }

    // 锦城花园: 2 buildings × 2 units × 25 floors × 2 flats = 200 houses
    let mut houses = Vec::new();
    for b in ["1栋", "2栋"] {
        let building = estate::create_building(s, &admin, &none, estate_id, b, Some(25)).await?;
        for u in ["1单元", "2单元"] {
            let unit = estate::create_unit(s, &admin, &none, building, u).await?;
            for floor in 1..=25 {
                for flat in 1..=2 {
                    let room = format!("{floor}{flat:02}");
                    let area = if flat == 1 { Decimal::new(8912, 2) } else { Decimal::new(12_650, 2) };
                    let h = estate::create_house(
                        s,
                        &admin,
                        &none,
                        unit,
                        HouseInput {
                            room_no: Some(&room),
                            floor: Some(floor),
                            building_area: Some(area),
                            indoor_area: Some((area * Decimal::new(80, 2)).round_dp(2)),
                            usage: Some(HouseUsage::Residence),
                            status: Some(HouseStatus::Vacant),
                        },
                    )
                    .await?;
                    houses.push(h);
                }
            }
        }
    }
    // 天府国际中心: A座, 10 floors × 4 offices
    let a = estate::create_building(s, &admin, &none, tower_id, "A座", Some(10)).await?;
    let unit = estate::create_unit(s, &admin, &none, a, "1单元").await?;
    for floor in 1..=10 {
        for n in 1..=4 {
            let room = format!("{floor}{n:02}");
            estate::create_house(
                s,
                &admin,
                &none,
                unit,
                HouseInput {
                    room_no: Some(&room),
                    floor: Some(floor),
                    building_area: Some(Decimal::new(21_000, 2)),
                    indoor_area: None,
                    usage: Some(HouseUsage::Office),
                    status: Some(HouseStatus::Vacant),
                },
            )
            .await?;
        }
    }

    let surnames = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴"];
    let given = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳"];
    let hash = rbac::hash_password(s, crate::kit::types::NewPassword::parse("password", DEMO_PASSWORD)?).await?;
    for i in 1..=DEMO_OWNERS {
        let name = format!(
            "{}{}{}",
            surnames[(i % 10) as usize],
            given[((i / 10) % 10) as usize],
            if i % 3 == 0 { "华" } else { "" }
        );
        let phone = demo_owner_phone(i);
        let card = demo_id_card(i);
        let o = owners::register_owner(
            s,
            &admin,
            &none,
            OwnerInput {
                name: &name,
                phone: &phone,
                id_card_number: Some(&card),
                houses: vec![(houses[(i - 1) as usize], Relation::Owner)],
            },
        )
        .await?;
        if let Some(user) = owners::owner(s, &admin, o).await?.user_id {
            crate::auth::service::activate_with_hash(s, user, &hash).await?;
        }
    }
    for n in 1..=20 {
        let code = format!("B1-{n:03}");
        estate::create_parking_space(
            s,
            &admin,
            &none,
            ParkingInput { project_id: estate_id, code: &code, area: Some(Decimal::new(1250, 2)), owner_id: None },
        )
        .await?;
    }
    seed_devices(s, &admin, estate_id, tower_id, &houses).await?;
    seed_maintenance(s, &admin, estate_id, id_of("tech1")?).await?;
    seed_fees(s, &admin, estate_id).await?;
    if activity {
        seed_work_orders(s, company, estate_id, id_of("cs1")?).await?;
    }
    estate::analyze(s).await?;
    Ok(company)
}

/// Two orders in the estate's pool: the first owner's leaking tap, and a public-area job
/// customer service opened.
async fn seed_work_orders(s: &AppState, company: Uuid, estate_id: Uuid, cs: Uuid) -> AppResult<()> {
    use crate::workorders::model::Category;
    use crate::workorders::service::{self as wo, CreateInput, ReportInput};
    let none = Retry::none();
    let phone = crate::kit::types::Phone::parse("phone", &demo_owner_phone(1))?;
    let mut conn = s.db.acquire().await?;
    let owner = owners::owner_id_by_phone(&mut conn, company, &phone).await?;
    drop(conn);
    let owner_user = match owner {
        Some(o) => owners::user_of_owner(s, company, o).await?,
        None => None,
    };
    if let Some(u) = owner_user {
        let owner = rbac::load_actor(s, u, company, i64::MAX).await?;
        if let Some(house) = estate::my_houses(s, &owner).await?.first() {
            let report = ReportInput {
                house_id: house.id,
                category: Category::Plumbing,
                description: "厨房水龙头一直滴水".into(),
                photos: Vec::new(),
                preferred_from: None,
                preferred_to: None,
            };
            wo::report(s, &owner, &none, report).await?;
            let note = crate::feedback::service::SubmitInput {
                project_id: None,
                house_id: None,
                kind: crate::feedback::model::Kind::Suggestion,
                content: "建议小区增加电动车充电桩".into(),
                photos: Vec::new(),
            };
            crate::feedback::service::submit(s, &owner, &none, note).await?;
        }
    }
    let cs = rbac::load_actor(s, cs, company, i64::MAX).await?;
    let job = CreateInput {
        project_id: estate_id,
        category: Category::PublicFacility,
        priority: None,
        title: "2栋大堂感应灯不亮".into(),
        description: "夜间大堂照明不足".into(),
        location: Some("2栋1单元大堂".into()),
        house_id: None,
        owner_id: None,
        device_id: None,
        photos: Vec::new(),
        preferred_from: None,
        preferred_to: None,
    };
    wo::create(s, &cs, &none, job).await?;
    Ok(())
}
