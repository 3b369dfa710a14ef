//! Generates the SDK's typed operations from the apps' persisted-operation manifests
//! (`schema/persisted/{owner,staff}.json`, which `wuye export-schema` makes from
//! `schema/operations/`): one `Operation` variant per operation, with its hash, kind,
//! variables (name, GraphQL type) and the apps whose manifest holds it. Nothing here is
//! written by hand, so an operation the server does not know cannot be sent.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

struct Op {
    id: String,
    kind: String,
    body: String,
    apps: Vec<&'static str>,
}

/// `$name: Type = default` declarations of an operation's first line(s).
fn variables(body: &str) -> Vec<(String, String)> {
    let head = &body[..body.find('{').unwrap_or(body.len())];
    let (Some(open), Some(close)) = (head.find('('), head.rfind(')')) else { return Vec::new() };
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, open + 1);
    let inner = &head[..close];
    let mut parts = Vec::new();
    for (i, c) in inner.char_indices().skip(open + 1) {
        match c {
            '"' => quoted = !quoted,
            '[' | '{' if !quoted => depth += 1,
            ']' | '}' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    for p in parts {
        let p = p.trim();
        let Some(rest) = p.strip_prefix('$') else { continue };
        let Some((name, ty)) = rest.split_once(':') else { continue };
        let ty = ty.split('=').next().unwrap_or("").trim();
        out.push((name.trim().to_owned(), ty.to_owned()));
    }
    out
}

fn main() {
    // read when the script runs (not baked in when it was compiled: a target directory may
    // be shared by several checkouts)
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let root = Path::new(&manifest_dir).join("..").join("schema").join("persisted");
    let mut ops: BTreeMap<String, Op> = BTreeMap::new();
    for app in ["owner", "staff"] {
        let path = root.join(format!("{app}.json"));
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let manifest: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for o in manifest["operations"].as_array().into_iter().flatten() {
            let name = o["name"].as_str().unwrap_or_default().to_owned();
            let entry = ops.entry(name).or_insert_with(|| Op {
                id: o["id"].as_str().unwrap_or_default().to_owned(),
                kind: o["type"].as_str().unwrap_or_default().to_owned(),
                body: o["body"].as_str().unwrap_or_default().to_owned(),
                apps: Vec::new(),
            });
            entry.apps.push(app);
        }
    }
    let mut code = String::from(
        "/// Every operation of the owner and staff apps' manifests (generated from\n\
         /// `schema/persisted/` by `build.rs`; never written by hand).\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]\npub enum Operation {\n",
    );
    for name in ops.keys() {
        let _ = writeln!(code, "    {name},");
    }
    code.push_str("}\n\nimpl Operation {\n    pub const ALL: &'static [Operation] = &[\n");
    for name in ops.keys() {
        let _ = writeln!(code, "        Operation::{name},");
    }
    code.push_str("    ];\n\n");
    let arm = |code: &mut String, sig: &str, f: &dyn Fn(&str, &Op) -> String| {
        let _ = writeln!(code, "    {sig} {{\n        match self {{");
        for (name, op) in &ops {
            let _ = writeln!(code, "            Operation::{name} => {},", f(name, op));
        }
        code.push_str("        }\n    }\n\n");
    };
    arm(&mut code, "pub fn name(self) -> &'static str", &|n, _| format!("{n:?}"));
    arm(
        &mut code,
        "/// SHA-256 of the body: what the server knows it by\n    pub fn id(self) -> &'static str",
        &|_, o| format!("{:?}", o.id),
    );
    arm(&mut code, "pub fn kind(self) -> OperationKind", &|_, o| match o.kind.as_str() {
        "mutation" => "OperationKind::Mutation".into(),
        "subscription" => "OperationKind::Subscription".into(),
        _ => "OperationKind::Query".into(),
    });
    arm(&mut code, "pub fn body(self) -> &'static str", &|_, o| format!("{:?}", o.body));
    arm(
        &mut code,
        "/// (name, GraphQL type) of each variable\n    pub fn variables(self) -> &'static [(&'static str, &'static str)]",
        &|_, o| {
            let vars: Vec<String> = variables(&o.body).iter().map(|(n, t)| format!("({n:?}, {t:?})")).collect();
            format!("&[{}]", vars.join(", "))
        },
    );
    arm(
        &mut code,
        "/// the apps whose manifest holds it\n    pub fn apps(self) -> &'static [&'static str]",
        &|_, o| format!("&{:?}", o.apps),
    );
    code.push_str("}\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("operations.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("cannot write {}: {e}", out.display());
    }
}
