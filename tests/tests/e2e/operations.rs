//! Every operation the apps and the playground ship (`schema/operations/**/*.graphql`) is
//! valid against the schema: each is run as the administrator with placeholder variables of
//! the declared types. Errors of the data (not found, bad phone) are fine; a document error
//! (unknown field, wrong argument, bad type) has no `path` and fails the test.

use std::path::{Path, PathBuf};

use async_graphql::parser::types::{BaseType, DocumentOperations, OperationType, Type};
use serde_json::{Map, Value, json};
use wuye_tests::TestServer;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "graphql") {
            out.push(p);
        }
    }
}

/// A value of the declared type: an unknown id, a short string, one, an enum's first value.
fn placeholder(ty: &Type, enums: &Map<String, Value>) -> Value {
    match &ty.base {
        // a list of input objects (which have no placeholder) is empty
        BaseType::List(inner) => match placeholder(inner, enums) {
            Value::Null => json!([]),
            v => json!([v]),
        },
        BaseType::Named(name) => match name.as_str() {
            "ID" => json!(uuid::Uuid::now_v7().to_string()),
            "String" => json!("x"),
            "Int" => json!(1),
            "Float" => json!(1.5),
            "Boolean" => json!(false),
            "DateTime" => json!("2026-11-27T00:00:00Z"),
            "NaiveDate" => json!("2026-11-27"),
            "Decimal" | "Money" => json!("1.5"),
            other => enums.get(other).cloned().unwrap_or(Value::Null),
        },
    }
}

#[tokio::test]
async fn shipped_operations_are_valid_against_the_schema() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    // the first value of every enum, from introspection
    let types = s.ok(Some(&admin), "{ __schema { types { name kind enumValues { name } } } }", json!({})).await;
    let mut enums = Map::new();
    for t in types["__schema"]["types"].as_array().unwrap() {
        if t["kind"] == "ENUM" {
            enums.insert(t["name"].as_str().unwrap().to_owned(), t["enumValues"][0]["name"].clone());
        }
    }
    let mut paths = Vec::new();
    files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/operations"), &mut paths);
    assert!(paths.iter().any(|p| p.to_string_lossy().contains("/manager/")), "the managers' operations are there");
    let mut checked = 0;
    let mut broken = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let doc = async_graphql::parser::parse_query(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ops: Vec<_> = match &doc.operations {
            DocumentOperations::Single(op) => vec![(None, op)],
            DocumentOperations::Multiple(m) => m.iter().map(|(n, op)| (Some(n.to_string()), op)).collect(),
        };
        for (name, op) in ops {
            if op.node.ty == OperationType::Subscription {
                continue; // subscriptions are exercised over the WebSocket in their own tests
            }
            let upload = |t: &Type| matches!(&t.base, BaseType::Named(n) if n.as_str() == "Upload");
            if op.node.variable_definitions.iter().any(|v| upload(&v.node.var_type.node)) {
                continue; // uploads are multipart requests, exercised in their own tests
            }
            let mut vars = Map::new();
            for v in &op.node.variable_definitions {
                vars.insert(v.node.name.node.to_string(), placeholder(&v.node.var_type.node, &enums));
            }
            let mut body = json!({ "query": text, "variables": vars });
            if let Some(n) = &name {
                body["operationName"] = json!(n);
            }
            let (_, resp) = s.post(Some(&admin), None, body).await;
            for e in resp["errors"].as_array().cloned().unwrap_or_default() {
                if e.get("path").is_none() {
                    broken.push(format!("{} {}: {}", path.display(), name.clone().unwrap_or_default(), e["message"]));
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} operations found");
    assert!(broken.is_empty(), "invalid operations:\n{}", broken.join("\n"));
}
