//! Two companies on one server, each with the whole demo estate. Every query, mutation and
//! subscription argument that takes an id — found in the schema itself, so a new field is
//! covered the day it is added — is tried by the second company's administrator with the
//! first company's id (every other id its own): the answer is NOT_FOUND, and the first
//! company's row is untouched. A field the table below cannot classify fails the test.

use std::collections::{BTreeMap, HashMap};

use async_graphql::parser::types::{BaseType, InputValueDefinition, Type, TypeKind, TypeSystemDefinition};
use serde_json::{Value, json};
use wuye_api::onboarding::seed::SECOND;
use wuye_tests::*;

/// What an id argument names.
fn kind_of(field: &str, path: &str) -> Option<&'static str> {
    let leaf = path.rsplit('.').next().unwrap_or(path);
    Some(match (field, leaf) {
        (_, "companyId") => "company",
        ("user", "id") => "user",
        ("project", "id") => "project",
        ("house", "id") => "house",
        ("owner", "id") => "owner",
        ("device", "id") => "device",
        ("deviceCommand", "id") => "command",
        ("alarm", "id") => "alarm",
        ("alarmRule", "id") => "alarm_rule",
        ("maintenanceTask", "id") => "maintenance_task",
        ("workOrder", "id") => "work_order",
        (_, "workOrderId") => "work_order",
        ("feedback", "id") => "feedback",
        (_, "feedbackId") => "feedback",
        ("feeItem", "id") => "fee_item",
        (_, "feeItemId") => "fee_item",
        ("meterRecord", "id") | ("reviewMeterReading", "id") => "meter_reading",
        ("bill", "id") => "bill",
        (_, "billIds") => "bill",
        ("billRun", "id") => "bill_run",
        (_, "runId") => "bill_run",
        ("billPrint", "id") => "bill_print",
        (_, "certificateId") => "certificate",
        ("attendanceRequest", "id") => "attendance_request",
        ("saveShift", "id") | ("saveRotaPattern", "slots") | (_, "shiftId") => "shift",
        ("saveRotaPattern", "id") | (_, "patternId") => "rota_pattern",
        (_, "terminalId") => "terminal",
        ("exam", "id") | (_, "examId") => "exam",
        ("examAttempt", "id") | (_, "attemptId") => "exam_attempt",
        ("saveExamQuestion", "id") | (_, "questionId") => "exam_question",
        (_, "candidateIds" | "trainerId" | "attendeeIds" | "attendedIds" | "absentIds") => "user",
        ("course", "id") | ("saveCourse", "id") | (_, "courseId") => "course",
        ("trainingSession", "id") | (_, "sessionId") => "training_session",
        (_, "materialId") => "course_material",
        ("payment", "id") => "payment",
        (_, "paymentId") => "payment",
        ("payOrder", "id") => "pay_order",
        ("approval", "id") | ("decideApproval", "id") => "approval",
        (_, "billId") => "bill",
        (_, "ownerIds") => "owner",
        (_, "buildingIds") => "building",
        (_, "houseIds") => "house",
        (_, "assigneeId") => "user",
        ("markNotificationsRead", "ids") => "notification",
        ("completeMaintenanceTask", "taskId") => "maintenance_task",
        (_, "projectId" | "projectIds") => "project",
        (_, "buildingId") => "building",
        (_, "unitId") => "unit",
        (_, "houseId") => "house",
        (_, "deviceId") => "device",
        (_, "ownerId") => "owner",
        (_, "userId" | "userIds" | "managerId" | "serviceStaffIds" | "responsibleUserId") => "user",
        (_, "roleId") => "role",
        (_, "assignmentId") => "grant",
        (_, "alarmId") => "alarm",
        (_, "alarmRuleId") => "alarm_rule",
        (_, "planId") => "plan",
        (_, "announcementId") => "announcement",
        _ => return None,
    })
}

/// Arguments that name a company on purpose: where to sign in or activate. Another
/// company's id there is a sign-in attempt against that company, not a read of it.
fn exempt(field: &str, path: &str) -> bool {
    path.ends_with("companyId") && matches!(field, "signIn" | "signInWithSmsCode" | "activateOwner" | "resetPassword")
}

/// One row of each kind in a company.
async fn ids_of(s: &TestServer, company: uuid::Uuid) -> HashMap<&'static str, String> {
    let q = |sql: &'static str| async move {
        sqlx::query_scalar::<_, uuid::Uuid>(sql)
            .bind(company)
            .fetch_optional(&s.db)
            .await
            .unwrap()
            .map(|u| u.to_string())
    };
    let mut m = HashMap::new();
    for (k, sql) in [
        ("project", "SELECT id FROM projects WHERE company_id = $1 AND code = 'JCHY'"),
        (
            "building",
            "SELECT b.id FROM buildings b JOIN projects p ON p.id = b.project_id WHERE p.company_id = $1 AND p.code = 'JCHY' ORDER BY b.name LIMIT 1",
        ),
        (
            "unit",
            "SELECT u.id FROM units u JOIN buildings b ON b.id = u.building_id JOIN projects p ON p.id = b.project_id WHERE p.company_id = $1 AND p.code = 'JCHY' ORDER BY b.name, u.name LIMIT 1",
        ),
        (
            "house",
            "SELECT h.id FROM houses h JOIN units u ON u.id = h.unit_id JOIN buildings b ON b.id = u.building_id JOIN projects p ON p.id = b.project_id WHERE p.company_id = $1 AND p.code = 'JCHY' ORDER BY b.name, u.name, h.room_no DESC LIMIT 1",
        ),
        ("device", "SELECT id FROM devices WHERE company_id = $1 AND code = 'JC-ELV-11'"),
        ("owner", "SELECT id FROM owners WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("user", "SELECT id FROM users WHERE company_id = $1 AND username LIKE '%tech1'"),
        ("role", "SELECT id FROM roles WHERE company_id = $1 AND code = 'technician'"),
        (
            "grant",
            "SELECT ur.id FROM user_roles ur JOIN users u ON u.id = ur.user_id WHERE u.company_id = $1 AND u.username LIKE '%tech1'",
        ),
        ("alarm", "SELECT id FROM alarms WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("alarm_rule", "SELECT id FROM alarm_rules WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("command", "SELECT id FROM device_commands WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("plan", "SELECT id FROM maintenance_plans WHERE company_id = $1 ORDER BY id LIMIT 1"),
        (
            "maintenance_task",
            "SELECT t.id FROM maintenance_tasks t JOIN maintenance_plans p ON p.id = t.plan_id WHERE p.company_id = $1 ORDER BY t.id LIMIT 1",
        ),
        ("announcement", "SELECT id FROM announcements WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("work_order", "SELECT id FROM work_orders WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("feedback", "SELECT id FROM feedback WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("fee_item", "SELECT id FROM fee_items WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("meter_reading", "SELECT id FROM meter_readings WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("bill", "SELECT id FROM bills WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("bill_run", "SELECT id FROM bill_runs WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("payment", "SELECT id FROM payments WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("approval", "SELECT id FROM approvals WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("pay_order", "SELECT id FROM pay_orders WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("bill_print", "SELECT id FROM bill_prints WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("certificate", "SELECT id FROM certificates WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("shift", "SELECT id FROM shifts WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("rota_pattern", "SELECT id FROM rota_patterns WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("terminal", "SELECT id FROM attendance_terminals WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("attendance_request", "SELECT id FROM attendance_requests WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("exam", "SELECT id FROM exams WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("exam_attempt", "SELECT id FROM exam_attempts WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("exam_question", "SELECT id FROM exam_questions WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("course", "SELECT id FROM courses WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("training_session", "SELECT id FROM training_sessions WHERE company_id = $1 ORDER BY id LIMIT 1"),
        ("course_material", "SELECT id FROM course_materials WHERE company_id = $1 ORDER BY id LIMIT 1"),
        (
            "notification",
            "SELECT n.id FROM notifications n JOIN users u ON u.id = n.user_id WHERE u.company_id = $1 ORDER BY n.id LIMIT 1",
        ),
        ("company", "SELECT id FROM companies WHERE id = $1"),
    ] {
        if let Some(id) = q(sql).await {
            m.insert(k, id);
        }
    }
    m
}

struct Schema {
    inputs: HashMap<String, Vec<InputValueDefinition>>,
    enums: HashMap<String, Vec<String>>,
    objects: std::collections::HashSet<String>,
    roots: Vec<(&'static str, String, Vec<InputValueDefinition>, Type)>,
}

fn schema() -> Schema {
    let doc = async_graphql::parser::parse_schema(wuye_api::http::sdl()).unwrap();
    let mut inputs = HashMap::new();
    let mut enums = HashMap::new();
    let mut objects = std::collections::HashSet::new();
    let mut fields_of = HashMap::new();
    for d in doc.definitions {
        let TypeSystemDefinition::Type(t) = d else { continue };
        let name = t.node.name.node.to_string();
        match t.node.kind {
            TypeKind::InputObject(i) => {
                inputs.insert(name, i.fields.into_iter().map(|f| f.node).collect());
            }
            TypeKind::Enum(e) => {
                enums.insert(name, e.values.into_iter().map(|v| v.node.value.node.to_string()).collect());
            }
            TypeKind::Object(o) => {
                objects.insert(name.clone());
                fields_of.insert(name, o.fields.into_iter().map(|f| f.node).collect::<Vec<_>>());
            }
            TypeKind::Interface(_) | TypeKind::Union(_) => {
                objects.insert(name);
            }
            _ => {}
        }
    }
    let mut roots = Vec::new();
    for (op, root) in [("query", "Query"), ("mutation", "Mutation"), ("subscription", "Subscription")] {
        for f in fields_of.remove(root).unwrap_or_default() {
            roots.push((op, f.name.node.to_string(), f.arguments.into_iter().map(|a| a.node).collect(), f.ty.node));
        }
    }
    Schema { inputs, enums, objects, roots }
}

fn named(t: &Type) -> String {
    match &t.base {
        BaseType::Named(n) => n.to_string(),
        BaseType::List(inner) => named(inner),
    }
}

fn is_list(t: &Type) -> bool {
    matches!(t.base, BaseType::List(_))
}

/// The paths of every ID inside an argument (through input objects).
fn id_paths(schema: &Schema, prefix: &str, v: &InputValueDefinition, depth: usize, out: &mut Vec<String>) {
    let path = if prefix.is_empty() { v.name.node.to_string() } else { format!("{prefix}.{}", v.name.node) };
    let ty = named(&v.ty.node);
    if ty == "ID" {
        out.push(path);
    } else if let Some(fields) = schema.inputs.get(&ty)
        && depth < 4
    {
        for f in fields {
            id_paths(schema, &path, f, depth + 1, out);
        }
    }
}

/// A value for an argument: ids from `ids` (the one under test from `foreign`), the rest
/// plausible enough to get past validation to the id.
#[allow(clippy::too_many_arguments)]
fn value_for(
    schema: &Schema,
    field: &str,
    path: &str,
    v: &InputValueDefinition,
    target: &str,
    own: &HashMap<&'static str, String>,
    foreign: &HashMap<&'static str, String>,
    depth: usize,
) -> Option<Value> {
    let t = &v.ty.node;
    let ty = named(t);
    let here = if path.is_empty() { v.name.node.to_string() } else { format!("{path}.{}", v.name.node) };
    let on_path = target == here || target.starts_with(&format!("{here}."));
    // optional values stay out unless the id under test is in them
    if t.nullable && !on_path && !required_extra(field, &here) {
        return None;
    }
    let one = if ty == "ID" {
        let kind = kind_of(field, &here)?;
        let ids = if target == here { foreign } else { own };
        json!(ids.get(kind)?)
    } else if let Some(fields) = schema.inputs.get(&ty) {
        if depth > 4 {
            return None;
        }
        let mut o = serde_json::Map::new();
        for f in fields {
            if let Some(x) = value_for(schema, field, &here, f, target, own, foreign, depth + 1) {
                o.insert(f.name.node.to_string(), x);
            }
        }
        Value::Object(o)
    } else if let Some(values) = schema.enums.get(&ty) {
        json!(enum_choice(field, &here, values))
    } else {
        scalar(field, &here, &ty)
    };
    // a list of ids carries one; other lists one plausible element (photos none: they are
    // upload keys)
    if v.name.node.as_str() == "photos" {
        return Some(json!([]));
    }
    Some(if is_list(t) { json!([one]) } else { one })
}

/// Optional values a field needs to get as far as its ids.
fn required_extra(field: &str, path: &str) -> bool {
    matches!(
        (field, path),
        ("createPatrolRoute", "input.checkpoints")
            | ("assignRole", "input.projectIds")
            | ("createMaintenancePlan", "input.deviceId")
    )
}

fn enum_choice(field: &str, path: &str, values: &[String]) -> String {
    let pick = |v: &str| values.iter().find(|x| *x == v).cloned();
    match (field, path) {
        ("assignRole", "input.scope") => pick("PROJECTS"),
        ("sendDeviceCommand", "input.kind") => pick("ELEVATOR_TO_BASE"),
        ("createAlarmRule" | "updateAlarmRule", "input.rule.kind") => pick("OFFLINE"),
        ("createDevice", "input.category") => pick("ELEVATOR"),
        ("createAlarmRule" | "updateAlarmRule", "input.rule.category") => pick("ELEVATOR"),
        ("createMaintenancePlan", "input.cycle") => pick("MONTHLY"),
        ("sendNotification", "input.category") => pick("SYSTEM"),
        _ => None,
    }
    .unwrap_or_else(|| values[0].clone())
}

fn scalar(field: &str, path: &str, ty: &str) -> Value {
    let leaf = path.rsplit('.').next().unwrap_or(path);
    match (ty, field, leaf) {
        ("String", "createBuilding" | "createUnit", "name") => {
            json!(format!("测试{}", &uuid::Uuid::new_v4().simple().to_string()[..4]))
        }
        ("String", "createHouse", "roomNo") => json!("9901"),
        ("String", "createParkingSpace", "code") => {
            json!(format!("T-{}", &uuid::Uuid::new_v4().simple().to_string()[..4]))
        }
        ("String", "createDevice", "code") => json!(format!("T-{}", &uuid::Uuid::new_v4().simple().to_string()[..6])),
        ("String", "createProject" | "updateProject", "code") => {
            json!(format!("T{}", &uuid::Uuid::new_v4().simple().to_string()[..4]))
        }
        ("String", _, "phone") => json!("13912345678"),
        ("String", _, "csv") => json!(""),
        ("String", _, "times") => json!("08:00"),
        ("String", _, "title" | "body" | "message" | "content") => json!("测试内容"),
        ("String", _, "code") => json!("TEST-CODE"),
        ("String", _, "newPassword" | "password") => json!("Xyz@2026abc"),
        ("String", _, _) => json!("测试"),
        ("Int", _, "first") => json!(5),
        ("Int", _, "floors") => json!(10),
        ("Int", _, "floor") => json!(9),
        ("Int", _, "everyN" | "leadDays") => json!(3),
        ("Int", _, "windowMinutes") => json!(60),
        ("Int", _, _) => json!(1),
        ("Float", _, "lat") => json!(30.5728),
        ("Float", _, "lng") => json!(104.0668),
        ("Float", _, "accuracyM") => json!(5.0),
        ("Float", _, _) => json!(1.0),
        ("Boolean", _, _) => json!(false),
        ("DateTime", "patrolTasks", "to") => json!((chrono::Utc::now() + chrono::TimeDelta::days(1)).to_rfc3339()),
        ("DateTime", _, _) => json!(chrono::Utc::now().to_rfc3339()),
        ("Date" | "NaiveDate", _, _) => json!(chrono::Utc::now().date_naive().to_string()),
        ("Decimal" | "Money", _, _) => json!("1.00"),
        ("JSON", _, _) => json!({}),
        _ => json!("测试"),
    }
}

/// The operation for one root field, its arguments passed as variables.
fn operation(
    op: &str,
    field: &str,
    args: &[InputValueDefinition],
    ret: &Type,
    schema: &Schema,
    vars: &serde_json::Map<String, Value>,
) -> String {
    let decl: Vec<String> = args
        .iter()
        .filter(|a| vars.contains_key(a.name.node.as_str()))
        .map(|a| format!("${}: {}", a.name.node, a.ty.node))
        .collect();
    let pass: Vec<String> = args
        .iter()
        .filter(|a| vars.contains_key(a.name.node.as_str()))
        .map(|a| format!("{0}: ${0}", a.name.node))
        .collect();
    let sel = if schema.objects.contains(&named(ret)) { " { __typename }" } else { "" };
    let decl = if decl.is_empty() { String::new() } else { format!("({})", decl.join(", ")) };
    let pass = if pass.is_empty() { String::new() } else { format!("({})", pass.join(", ")) };
    format!("{op} Scope{decl} {{ {field}{pass}{sel} }}")
}

#[tokio::test]
async fn every_id_argument_is_resolved_within_the_caller_s_company() {
    let s = TestServer::seeded().await;
    let b_company = wuye_api::onboarding::seed::seed_company_with(&s.state, SECOND, true).await.unwrap();
    let a_company: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM companies WHERE code = 'JCWY'").fetch_one(&s.db).await.unwrap();
    let a_admin = s.sign_in("admin").await;
    let b_admin = s.sign_in("b-admin").await;
    let me = s.ok(Some(&b_admin), "{ me { companyId } }", json!({})).await;
    assert_eq!(me["me"]["companyId"], b_company.to_string(), "b-admin works for the second company");
    // alarms, commands, announcements and notifications in both companies
    for c in ["JCWY", "RCWY"] {
        s.mqtt_publish(&format!("{c}/JC-ELV-11/event"), br#"{"code":"TRAPPED"}"#).await;
    }
    assert_eq!(s.wait_for("SELECT count(*) FROM alarms", 2).await, 2);
    for token in [&a_admin, &b_admin] {
        let lift = s.ok(Some(token), "{ deviceByCode(code: \"JC-ELV-11\") { id projectId } }", json!({})).await["deviceByCode"].clone();
        let send = "mutation($d: ID!) { sendDeviceCommand(input: {deviceId: $d, kind: ELEVATOR_TO_BASE}) { clientMutationId } }";
        s.ok(Some(token), send, json!({"d": lift["id"]})).await;
        let publish = "mutation($p: ID!) { publishAnnouncement(input: {projectId: $p, audience: OWNERS, title: \"停水通知\", body: \"明日停水\"}) { clientMutationId } }";
        s.ok(Some(token), publish, json!({"p": lift["projectId"]})).await;
    }
    // owner feedback in the first company
    let a_owner = s.sign_in("13800000001").await;
    let fb = "mutation { submitFeedback(input: {kind: SUGGESTION, content: \"增加充电桩\"}) { clientMutationId } }";
    s.ok(Some(&a_owner), fb, json!({})).await;
    // a meter reading, a bill run with its bill, and a payment in both companies
    let today = s.clock_now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let period = chrono::Datelike::with_day(&today, 1).unwrap().to_string();
    for token in [&a_admin, &b_admin] {
        let m = s.ok(Some(token), "{ deviceByCode(code: \"JC-WM-0001\") { id houseId projectId } }", json!({})).await["deviceByCode"].clone();
        let read = "mutation($d: ID!, $p: NaiveDate!) { recordMeterReading(input: {deviceId: $d, period: $p, reading: \"5\"}) { clientMutationId } }";
        s.ok(Some(token), read, json!({"d": m["id"], "p": period})).await;
        let run = "mutation($p: ID!, $m: NaiveDate!, $h: ID!) { runBills(input: {projectId: $p, period: $m, houseIds: [$h]}) { billRun { created } } }";
        let r = s.ok(Some(token), run, json!({"p": m["projectId"], "m": period, "h": m["houseId"]})).await;
        assert_eq!(r["runBills"]["billRun"]["created"], 1, "{r}");
        let list = "query($p: ID!, $m: NaiveDate!) { bills(projectId: $p, period: $m) { edges { node { id } } } }";
        let b = s.ok(Some(token), list, json!({"p": m["projectId"], "m": period})).await;
        let pay = "mutation($b: ID!) { recordPayment(input: {billIds: [$b], amount: \"1\", method: CASH}) { clientMutationId } }";
        s.ok(Some(token), pay, json!({"b": b["bills"]["edges"][0]["node"]["id"]})).await;
    }
    // a waiting request in each company (a late fee needs weeks of the clock: filed directly)
    sqlx::query(
        "INSERT INTO approvals (id, company_id, project_id, kind, subject_id, reason, approver_perm, status, requested_by,
                                requested_at)
         SELECT gen_random_uuid(), b.company_id, b.project_id, 'late_fee_waiver', b.id, '测试', 'bill:approve', 'pending',
                (SELECT u.id FROM users u WHERE u.company_id = b.company_id AND u.username LIKE '%finance1'), now()
         FROM bills b",
    )
    .execute(&s.db)
    .await
    .unwrap();
    // an online order of each company's bill (closed: nobody asks the provider about it)
    sqlx::query(
        "INSERT INTO pay_orders (id, company_id, project_id, payer_id, created_by, provider, channel, out_trade_no,
                                 bill_ids, amount, status, expires_at, created_at)
         SELECT gen_random_uuid(), b.company_id, b.project_id, b.payer_id,
                (SELECT u.id FROM users u WHERE u.company_id = b.company_id AND u.username LIKE '%finance1'),
                'wechat', 'app', replace(gen_random_uuid()::text, '-', ''), ARRAY[b.id], 1, 'closed', now(), now()
         FROM bills b",
    )
    .execute(&s.db)
    .await
    .unwrap();
    // a print of each company's run (queued: nobody renders it here)
    sqlx::query(
        "INSERT INTO bill_prints (id, company_id, run_id, building_ids, status, requested_by, created_at, attempts)
         SELECT gen_random_uuid(), r.company_id, r.id, '{}', 'queued',
                (SELECT u.id FROM users u WHERE u.company_id = r.company_id AND u.username LIKE '%finance1'), now(), 99
         FROM bill_runs r",
    )
    .execute(&s.db)
    .await
    .unwrap();
    // a certificate of each company's technician
    sqlx::query(
        "INSERT INTO certificates (id, company_id, user_id, kind, number, issuer, issued_on, created_by, created_at,
                                   updated_at)
         SELECT gen_random_uuid(), u.company_id, u.id, 'electrician', 'E-' || u.id, '应急管理局', '2020-01-01', u.id,
                now(), now()
         FROM users u WHERE u.username LIKE '%tech1'",
    )
    .execute(&s.db)
    .await
    .unwrap();
    // each company's shift, pattern, terminal and a technician's leave request
    for sql in [
        "INSERT INTO shifts (id, company_id, project_id, name, starts_at, ends_at, created_at, updated_at)
         SELECT gen_random_uuid(), company_id, id, '早班', '08:00', '17:00', now(), now() FROM projects WHERE code = 'JCHY'",
        "INSERT INTO rota_patterns (id, company_id, project_id, name, kind, slots, observe_holidays, created_at, updated_at)
         SELECT gen_random_uuid(), company_id, project_id, '常白班', 'week', ARRAY[id, id, id, id, id, NULL, NULL]::uuid[],
                true, now(), now() FROM shifts",
        "INSERT INTO attendance_terminals (id, company_id, project_id, name, kind, key_enc, created_at)
         SELECT gen_random_uuid(), company_id, id, '南门人脸机', 'face', '\\x00', now() FROM projects WHERE code = 'JCHY'",
        "INSERT INTO attendance_requests (id, company_id, project_id, user_id, kind, leave_type, starts_at, ends_at, reason,
                                          status, created_at)
         SELECT gen_random_uuid(), u.company_id, p.id, u.id, 'leave', 'sick', now(), now() + interval '1 day', '测试',
                'pending', now()
         FROM users u JOIN projects p ON p.company_id = u.company_id AND p.code = 'JCHY' WHERE u.username LIKE '%tech1'",
        "INSERT INTO exam_questions (id, company_id, topic, kind, stem, options, answer, created_by, created_at, updated_at)
         SELECT gen_random_uuid(), u.company_id, '消防', 'true_false', '消防通道可以堆物', ARRAY['正确', '错误'], ARRAY[1]::smallint[],
                u.id, now(), now()
         FROM users u WHERE u.username LIKE '%tech1'",
        "INSERT INTO exams (id, company_id, title, draws, time_limit_minutes, attempts_allowed, pass_mark, opens_at,
                            closes_at, created_by, created_at)
         SELECT gen_random_uuid(), company_id, '消防考试', '[{\"topic\": \"消防\", \"count\": 1}]', 30, 3, 60,
                now() - interval '1 hour', now() + interval '1 day', created_by, now()
         FROM exam_questions",
        "INSERT INTO exam_candidates (exam_id, user_id) SELECT e.id, q.created_by FROM exams e
         JOIN exam_questions q ON q.company_id = e.company_id",
        "INSERT INTO exam_attempts (id, exam_id, company_id, user_id, number, started_at, deadline, questions, option_orders)
         SELECT gen_random_uuid(), c.exam_id, e.company_id, c.user_id, 1, now(), now() + interval '30 minutes',
                ARRAY[q.id], jsonb_build_object(q.id::text, jsonb_build_array(0, 1))
         FROM exam_candidates c JOIN exams e ON e.id = c.exam_id JOIN exam_questions q ON q.company_id = e.company_id",
        "INSERT INTO courses (id, company_id, project_id, title, created_by, created_at, updated_at)
         SELECT gen_random_uuid(), p.company_id, p.id, '电梯应急救援', p.manager_id, now(), now()
         FROM projects p WHERE p.code = 'JCHY'",
        "INSERT INTO training_sessions (id, company_id, course_id, project_id, starts_at, ends_at, place, trainer_id,
                                        created_by, created_at)
         SELECT gen_random_uuid(), company_id, id, project_id, now() + interval '1 day', now() + interval '26 hours',
                '会议室', created_by, created_by, now()
         FROM courses",
        "INSERT INTO files (id, company_id, uploaded_by, purpose, key, content_type, size_bytes, created_at)
         SELECT gen_random_uuid(), company_id, created_by, 'training', 'private/' || company_id || '/training/' || id || '.pdf',
                'application/pdf', 10, now()
         FROM courses",
        "INSERT INTO course_materials (id, company_id, course_id, file_key, kind, name, size_bytes, created_by, created_at)
         SELECT gen_random_uuid(), company_id, id, 'private/' || company_id || '/training/' || id || '.pdf', 'pdf', '手册', 10,
                created_by, now()
         FROM courses",
    ] {
        sqlx::query(sql).execute(&s.db).await.unwrap();
    }
    // the maintenance plans' tasks exist
    wuye_api::maintenance::plans::service::schedule(&s.state).await.unwrap();
    let foreign = ids_of(&s, a_company).await;
    let own = ids_of(&s, b_company).await;
    for k in [
        "project",
        "building",
        "unit",
        "house",
        "device",
        "owner",
        "user",
        "alarm",
        "command",
        "announcement",
        "notification",
        "meter_reading",
        "bill",
        "bill_run",
        "payment",
        "approval",
        "pay_order",
        "bill_print",
        "certificate",
        "shift",
        "rota_pattern",
        "terminal",
        "attendance_request",
        "exam",
        "exam_attempt",
        "exam_question",
        "course",
        "training_session",
        "course_material",
    ] {
        assert!(foreign.contains_key(k) && own.contains_key(k), "both companies have a {k}: {foreign:?} {own:?}");
    }

    let schema = schema();
    let mut unclassified = Vec::new();
    let mut failures = Vec::new();
    let mut tried = 0;
    let mut seen_fields = BTreeMap::new();
    let snapshot = || async { company_fingerprint(&s, a_company).await };
    let before = snapshot().await;
    for (op, field, args, ret) in &schema.roots {
        let mut paths = Vec::new();
        for a in args {
            id_paths(&schema, "", a, 0, &mut paths);
        }
        for path in paths {
            if exempt(field, &path) {
                continue;
            }
            if kind_of(field, &path).is_none() {
                unclassified.push(format!("{field}({path})"));
                continue;
            }
            let mut vars = serde_json::Map::new();
            for a in args {
                if let Some(v) = value_for(&schema, field, "", a, &path, &own, &foreign, 0) {
                    vars.insert(a.name.node.to_string(), v);
                }
            }
            let query = operation(op, field, args, ret, &schema, &vars);
            let outcome = if *op == "subscription" {
                subscribe_outcome(&s, &b_admin, &query, Value::Object(vars.clone())).await
            } else {
                let r = s.gql(Some(&b_admin), &query, Value::Object(vars.clone())).await;
                match r["errors"][0]["extensions"]["code"].as_str() {
                    // an id refused as the argument it was given in is as good as not found
                    Some("NOT_FOUND") => "NOT_FOUND".to_owned(),
                    Some("VALIDATION") if refused_field(&r, &path) => "NOT_FOUND".to_owned(),
                    Some(c) => format!("{c} {}", r["errors"][0]),
                    None => format!("OK {r}"),
                }
            };
            tried += 1;
            seen_fields.insert(field.clone(), ());
            if outcome != "NOT_FOUND" {
                failures.push(format!("{field}({path}) answered {outcome}\n    {query}\n    {}", Value::Object(vars)));
            }
        }
    }
    assert!(
        unclassified.is_empty(),
        "id arguments without a two-company case (add them to kind_of): {unclassified:#?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {tried} id arguments were not NOT_FOUND for another company:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(seen_fields.len() > 50, "the schema walk found the id-taking fields ({})", seen_fields.len());
    assert_eq!(before, snapshot().await, "nothing of the first company changed");
}

/// Whether a VALIDATION error names the id argument under test (`input.managerId` as
/// `managerId`, a list entry as the list).
fn refused_field(r: &Value, path: &str) -> bool {
    let field = r["errors"][0]["extensions"]["field"].as_str().unwrap_or("");
    let short = path.strip_prefix("input.").unwrap_or(path);
    !field.is_empty() && (field == short || field == path || field.starts_with(&format!("{short}[")))
}

/// Counts and a checksum of what the first company has: a foreign write would show.
async fn company_fingerprint(s: &TestServer, company: uuid::Uuid) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for (name, sql) in [
        ("projects", "SELECT count(*) FROM projects WHERE company_id = $1 AND updated_at = created_at"),
        (
            "buildings",
            "SELECT count(*) FROM buildings b JOIN projects p ON p.id = b.project_id WHERE p.company_id = $1",
        ),
        (
            "units",
            "SELECT count(*) FROM units u JOIN buildings b ON b.id = u.building_id JOIN projects p ON p.id = b.project_id WHERE p.company_id = $1",
        ),
        (
            "houses",
            "SELECT count(*) FROM houses h JOIN units u ON u.id = h.unit_id JOIN buildings b ON b.id = u.building_id JOIN projects p ON p.id = b.project_id WHERE p.company_id = $1",
        ),
        (
            "parking",
            "SELECT count(*) FROM parking_spaces ps JOIN projects p ON p.id = ps.project_id WHERE p.company_id = $1",
        ),
        ("devices", "SELECT count(*) FROM devices WHERE company_id = $1 AND updated_at = created_at"),
        (
            "owner links",
            "SELECT count(*) FROM house_residents hr JOIN owners o ON o.id = hr.owner_id WHERE o.company_id = $1",
        ),
        ("grants", "SELECT count(*) FROM user_roles ur JOIN users u ON u.id = ur.user_id WHERE u.company_id = $1"),
        ("roles", "SELECT count(*) FROM roles WHERE company_id = $1"),
        ("open alarms", "SELECT count(*) FROM alarms WHERE company_id = $1 AND state = 'open'"),
        ("rules", "SELECT count(*) FROM alarm_rules WHERE company_id = $1"),
        ("plans", "SELECT count(*) FROM maintenance_plans WHERE company_id = $1 AND active"),
        ("commands", "SELECT count(*) FROM device_commands WHERE company_id = $1"),
        (
            "unread",
            "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id WHERE u.company_id = $1 AND n.read_at IS NULL",
        ),
        ("active users", "SELECT count(*) FROM users WHERE company_id = $1 AND status = 'active'"),
        ("audit", "SELECT count(*) FROM audit_log WHERE company_id = $1"),
    ] {
        let n: i64 = sqlx::query_scalar(sql).bind(company).fetch_one(&s.db).await.unwrap_or(-1);
        out.push((name.to_owned(), n));
    }
    out
}

async fn subscribe_outcome(s: &TestServer, token: &str, query: &str, vars: Value) -> String {
    let mut sock = ws::connect(&s.ws_url(), json!({"accessToken": token})).await.unwrap();
    ws::send(&mut sock, json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": vars}})).await;
    match ws::next_json_within(&mut sock, std::time::Duration::from_secs(3)).await {
        Some(m) if m["type"] == "error" => m["payload"][0]["extensions"]["code"].as_str().unwrap_or("?").to_owned(),
        Some(m) if m["type"] == "next" => {
            m["payload"]["errors"][0]["extensions"]["code"].as_str().unwrap_or("OK").to_owned()
        }
        Some(m) => format!("{m}"),
        None => "OPEN (no error)".into(),
    }
}
