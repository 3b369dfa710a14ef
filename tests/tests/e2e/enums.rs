//! Every text enum is stored in a column whose CHECK lists exactly the enum's codes: a
//! variant added in Rust without a migration (or a code the database allows that Rust
//! cannot decode) fails here, not in production.

use std::collections::BTreeSet;

use sqlx::PgPool;
use wuye_tests::fresh_database;

/// The codes a CHECK constraint of `table` allows for `column`.
async fn allowed(db: &PgPool, table: &str, column: &str) -> BTreeSet<String> {
    let defs: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
         WHERE t.relname = $1 AND c.contype = 'c'",
    )
    .bind(table)
    .fetch_all(db)
    .await
    .unwrap();
    let mut codes = BTreeSet::new();
    for def in defs.iter().filter(|d| d.contains(&format!("({column} ")) || d.contains(&format!("(({column} "))) {
        let mut rest = def.as_str();
        while let Some(start) = rest.find('\'') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('\'') else { break };
            codes.insert(after[..end].to_owned());
            rest = &after[end + 1..];
        }
    }
    codes
}

fn codes<T: Copy>(all: &[T], code: impl Fn(T) -> &'static str) -> BTreeSet<String> {
    all.iter().map(|v| code(*v).to_owned()).collect()
}

macro_rules! columns {
    ($($table:literal . $column:literal => $enum:path),* $(,)?) => {
        vec![$(($table, $column, codes(<$enum>::ALL, |v| v.as_str()))),*]
    };
}

#[tokio::test]
async fn db_enums_match_checks() {
    let (_name, url) = fresh_database().await;
    let db = PgPool::connect(&url).await.unwrap();
    use wuye_api::billing::bills::model as bills;
    use wuye_api::billing::fees::model as fees;
    use wuye_api::billing::meters::model as meters;
    use wuye_api::billing::pay::model as pay;
    use wuye_api::equipment::model as equipment;
    use wuye_api::feedback::model as fb;
    use wuye_api::files::model as files;
    use wuye_api::iot::alarms::model as alarms;
    use wuye_api::iot::commands::model as commands;
    use wuye_api::maintenance::patrols::model as patrols;
    use wuye_api::maintenance::plans::model as plans;
    use wuye_api::notify::announcements::model as announcements;
    use wuye_api::notify::model as notify;
    use wuye_api::org::company::model as company;
    use wuye_api::org::estate::model as estate;
    use wuye_api::org::owners::model as owners;
    use wuye_api::rbac::model as rbac;
    use wuye_api::workorders::model as wo;
    let mut expected = columns![
        "users"."status" => rbac::AccountStatus,
        "user_roles"."scope" => rbac::GrantScope,
        "projects"."kind" => company::ProjectKind,
        "houses"."usage" => estate::HouseUsage,
        "houses"."status" => estate::HouseStatus,
        "parking_spaces"."status" => estate::ParkingStatus,
        "house_residents"."relation" => owners::Relation,
        "notifications"."category" => notify::Category,
        "notification_prefs"."category" => notify::Category,
        "notifications"."priority" => notify::Priority,
        "notifications"."status" => notify::OutboxStatus,
        "notifications"."channels" => notify::Channel,
        "notification_deliveries"."channel" => notify::Channel,
        "notification_prefs"."channel" => notify::Channel,
        "notification_deliveries"."status" => notify::DeliveryStatus,
        "push_devices"."platform" => notify::Platform,
        "push_devices"."provider" => notify::Provider,
        "push_devices"."app" => notify::AppKind,
        "announcements"."audience" => announcements::Audience,
        "devices"."category" => equipment::DeviceCategory,
        "devices"."status" => equipment::DeviceStatus,
        "devices"."importance" => equipment::Importance,
        "alarm_rules"."category" => equipment::DeviceCategory,
        "maintenance_plans"."category" => equipment::DeviceCategory,
        "device_commands"."kind" => commands::CommandKind,
        "device_commands"."status" => commands::CommandStatus,
        "alarms"."state" => alarms::AlarmState,
        "alarms"."severity" => alarms::Severity,
        "alarm_rules"."severity" => alarms::Severity,
        "alarm_rules"."kind" => alarms::RuleKind,
        "alarms"."kind" => alarms::RuleKind,
        "repair_requests"."source" => alarms::RepairSource,
        "repair_requests"."status" => alarms::RepairStatus,
        "maintenance_plans"."interval_kind" => plans::IntervalKind,
        "maintenance_plans"."anchor" => plans::PlanAnchor,
        "maintenance_tasks"."state" => plans::TaskState,
        "maintenance_plans"."trigger" => plans::PlanTrigger,
        "maintenance_records"."kind" => plans::RecordKind,
        "patrol_tasks"."state" => patrols::PatrolState,
        "work_orders"."source" => wo::Source,
        "work_orders"."category" => wo::Category,
        "work_orders"."priority" => wo::Priority,
        "work_orders"."state" => wo::State,
        "work_order_events"."action" => wo::Action,
        "work_order_settings"."dispatch" => wo::Dispatch,
        "files"."purpose" => files::Purpose,
        "feedback"."kind" => fb::Kind,
        "feedback"."state" => fb::State,
        "fee_items"."kind" => fees::FeeKind,
        "fee_items"."payer" => fees::Payer,
        "fee_items"."paying_resident" => fees::PayingResident,
        "fee_items"."method" => fees::Method,
        "fee_items"."cycle" => fees::Cycle,
        "fee_items"."scope" => fees::Scope,
        "meter_readings"."source" => meters::ReadingSource,
        "meter_readings"."status" => meters::ReadingStatus,
        "bills"."status" => bills::BillStatus,
        "bills"."paying_resident" => fees::PayingResident,
        "bill_lines"."kind" => bills::LineKind,
        "payments"."method" => bills::PaymentMethod,
        "approvals"."kind" => wuye_api::kit::approval::ApprovalKind,
        "approvals"."status" => wuye_api::kit::approval::ApprovalStatus,
        "pay_orders"."provider" => pay::PayProvider,
        "pay_orders"."channel" => pay::PayChannel,
        "pay_orders"."status" => pay::PayOrderStatus,
        "refunds"."status" => pay::RefundStatus,
        "prepaid_entries"."kind" => wuye_api::billing::prepaid::model::EntryKind,
        "fee_discounts"."kind" => fees::DiscountKind,
        "shared_meters"."method" => meters::ShareMethod,
        "bill_prints"."status" => wuye_api::billing::print::model::PrintStatus,
        "employees"."gender" => wuye_api::people::staff::model::Gender,
        "employees"."status" => wuye_api::people::staff::model::EmployeeStatus,
        "certificates"."kind" => wuye_api::people::staff::model::CertificateKind,
        "certificate_requirements"."kind" => wuye_api::people::staff::model::CertificateKind,
        "certificate_requirements"."category" => wo::Category,
    ];
    // `op` is optional: '' stands for "no comparison" (None in Rust)
    let mut ops = codes(alarms::RuleOp::ALL, |v| v.as_str());
    ops.insert(String::new());
    expected.push(("alarm_rules", "op", ops));
    let mut wrong = Vec::new();
    for (table, column, want) in expected {
        let got = allowed(&db, table, column).await;
        if got != want {
            wrong.push(format!("{table}.{column}: CHECK allows {got:?}, the enum has {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
