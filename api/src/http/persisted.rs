//! Persisted operations. Every operation the owner app, the staff app and the managers'
//! playground ship lives in `schema/operations/{shared,owner,staff,manager}/`; `wuye
//! export-schema` writes one manifest per app to `schema/persisted/` in the Apollo
//! persisted-query manifest format, and the server embeds them.
//!
//! A request may name a manifest operation by hash (`extensions.persistedQuery.sha256Hash`,
//! the Apollo convention) instead of sending its text, or send the text as usual. Either
//! way the document of a manifest operation was parsed once, at start-up, and is never
//! parsed again. In production (`limits.persisted_only`, on unless set) a token issued to
//! the owner or the staff app may run only the operations of its own manifest, so a token
//! lifted from a phone cannot run ad-hoc queries; a playground token of a staff member who
//! holds `schema:read` may run anything. Callers without a token may send any document:
//! without one, only the sign-in fields answer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use async_graphql::Request;
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use serde::{Deserialize, Serialize};

use crate::kit::crypto::sha256_hex;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::gql::ClientApp;
use crate::org::estate::graphql::reads_only_house_pages;
use crate::rbac::graphql::Caller;
use crate::rbac::model::Perm;

pub const FORMAT: &str = "apollo-persisted-query-manifest";

/// A manifest: the Apollo persisted-query manifest format, version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub operations: Vec<ManifestOperation>,
}

/// One operation: its hash (SHA-256 of the body, hex), name, type and text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestOperation {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub body: String,
}

/// Each manifest: its file in `schema/persisted/`, the app whose tokens may run it, and
/// the folders of `schema/operations/` it is made of.
pub const MANIFESTS: [(&str, ClientApp, &[&str]); 3] = [
    ("owner", ClientApp::Owner, &["shared", "owner"]),
    ("staff", ClientApp::Staff, &["shared", "staff"]),
    ("manager", ClientApp::Playground, &["manager"]),
];

const EMBEDDED: [(&str, &str); 3] = [
    ("owner", include_str!("../../../schema/persisted/owner.json")),
    ("staff", include_str!("../../../schema/persisted/staff.json")),
    ("manager", include_str!("../../../schema/persisted/manager.json")),
];

/// The longest manifest operation: longer texts are not looked up.
const MAX_BODY: usize = 16 * 1024;

// ---- building the manifests (wuye export-schema) -----------------------------------------

fn graphql_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            graphql_files(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "graphql") {
            out.push(p);
        }
    }
    Ok(())
}

/// The definitions of a file, each as its own text: a definition starts at a line that
/// begins with `query`, `mutation`, `subscription` or `fragment`; comment lines are dropped.
fn definitions(text: &str) -> Vec<String> {
    let starts = |l: &str| ["query", "mutation", "subscription", "fragment"].iter().any(|k| l.starts_with(k));
    let mut defs: Vec<Vec<&str>> = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        if starts(line) {
            defs.push(Vec::new());
        }
        if let Some(d) = defs.last_mut() {
            d.push(line.trim_end());
        }
    }
    defs.into_iter().map(|d| d.join("\n").trim().to_owned()).filter(|d| !d.is_empty()).collect()
}

/// Names of the fragments a text spreads (`...Name`, not inline fragments `... on T`).
fn spreads(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("...") {
        rest = &rest[i + 3..];
        let name: String = rest.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() && name != "on" {
            out.insert(name);
        }
    }
    out
}

/// The manifest made of `folders` of `ops_dir`: one entry per operation, its body the
/// operation's text followed by the fragments it uses.
pub fn build_manifest(ops_dir: &Path, folders: &[&str]) -> Result<Manifest, String> {
    let mut files = Vec::new();
    for f in folders {
        graphql_files(&ops_dir.join(f), &mut files).map_err(|e| format!("{}: {e}", ops_dir.join(f).display()))?;
    }
    let mut ops = Vec::new();
    let mut fragments = BTreeMap::new();
    for path in &files {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for def in definitions(&text) {
            if let Some(rest) = def.strip_prefix("fragment") {
                let name: String = rest.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                fragments.insert(name, def);
            } else {
                ops.push((path.clone(), def));
            }
        }
    }
    let mut names = BTreeSet::new();
    let mut operations = Vec::new();
    for (path, def) in ops {
        let mut body = def.clone();
        let mut used = BTreeSet::new();
        let mut todo: Vec<String> = spreads(&def).into_iter().collect();
        while let Some(f) = todo.pop() {
            if used.insert(f.clone()) {
                let frag = fragments.get(&f).ok_or_else(|| format!("{}: unknown fragment {f}", path.display()))?;
                todo.extend(spreads(frag));
            }
        }
        for f in &used {
            body.push_str("\n\n");
            body.push_str(&fragments[f]);
        }
        let doc = async_graphql::parser::parse_query(&body).map_err(|e| format!("{}: {e}", path.display()))?;
        let (name, kind) = match &doc.operations {
            DocumentOperations::Multiple(m) if m.len() == 1 => {
                let (n, op) = m.iter().next().ok_or("empty")?;
                (n.to_string(), op.node.ty)
            }
            _ => return Err(format!("{}: every operation needs a name: {body}", path.display())),
        };
        if body.len() > MAX_BODY {
            return Err(format!("{}: {name} is longer than {MAX_BODY} bytes", path.display()));
        }
        if !names.insert(name.clone()) {
            return Err(format!("{}: {name} is named twice in one manifest ({folders:?})", path.display()));
        }
        let kind = match kind {
            OperationType::Query => "query",
            OperationType::Mutation => "mutation",
            OperationType::Subscription => "subscription",
        };
        operations.push(ManifestOperation { id: sha256_hex(&body), name, kind: kind.into(), body });
    }
    Ok(Manifest { format: FORMAT.into(), version: 1, operations })
}

// ---- serving them -------------------------------------------------------------------------

struct Known {
    id: String,
    doc: ExecutableDocument,
    body: String,
    /// the apps whose manifests hold it
    apps: Vec<ClientApp>,
    /// its whole answer may be kept with the house pages
    keepable: Option<Keepable>,
}

/// A manifest query that reads nothing but `houses` pages (`reads_only_house_pages`): its
/// whole answer may be kept, keyed by the variables it declares.
#[derive(Debug)]
pub struct Keepable {
    /// the operation's name (a request naming another operation is not answered from it)
    pub name: String,
    /// the variables it declares, the only ones its answer depends on
    pub variables: Vec<String>,
}

impl Keepable {
    fn of(doc: &ExecutableDocument) -> Option<Keepable> {
        if !reads_only_house_pages(doc) {
            return None;
        }
        let (name, op) = doc.operations.iter().next()?;
        Some(Keepable {
            name: name?.to_string(),
            variables: op.node.variable_definitions.iter().map(|v| v.node.name.node.to_string()).collect(),
        })
    }
}

/// A request that runs a manifest operation.
#[derive(Debug, Clone, Copy)]
pub struct ManifestOp<'a> {
    /// its hash
    pub id: &'a str,
    /// set when its whole answer may be kept
    pub keepable: Option<&'a Keepable>,
}

/// The embedded manifests, parsed, and whether the apps are held to them.
pub struct Persisted {
    by_hash: HashMap<String, Known>,
    enforce: bool,
}

fn refused() -> AppError {
    AppError::Forbidden {
        reason: "PERSISTED_QUERY_ONLY",
        msg: Msg::new(
            "此应用只能发送已登记的操作，请更新App",
            "This app may send only its registered operations; update the app",
        ),
    }
}

impl Persisted {
    /// The manifests built into this binary. `enforce`: hold app tokens to their manifest.
    pub fn embedded(enforce: bool) -> Persisted {
        let mut by_hash: HashMap<String, Known> = HashMap::new();
        for (file, json) in EMBEDDED {
            let Some((_, app, _)) = MANIFESTS.iter().find(|(f, _, _)| *f == file) else { continue };
            let manifest: Manifest = match serde_json::from_str(json) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(manifest = file, error = %e, "persisted operations: unreadable manifest");
                    continue;
                }
            };
            for op in manifest.operations {
                if let Some(k) = by_hash.get_mut(&op.id) {
                    k.apps.push(*app);
                    continue;
                }
                match async_graphql::parser::parse_query(&op.body) {
                    Ok(doc) if sha256_hex(&op.body) == op.id => {
                        let keepable = Keepable::of(&doc);
                        let known = Known { id: op.id.clone(), doc, body: op.body, apps: vec![*app], keepable };
                        by_hash.insert(op.id, known);
                    }
                    _ => tracing::error!(manifest = file, operation = %op.name, "persisted operations: bad entry"),
                }
            }
        }
        Persisted { by_hash, enforce }
    }

    /// Fills in a request that names a manifest operation by hash, hands the executor the
    /// document parsed at start-up, and refuses what the caller's app may not send. Some
    /// when the request runs a manifest document (checked against the schema when it was
    /// built: `wuye export-schema` and the operations test).
    pub fn prepare(
        &self,
        r: &mut Request,
        caller: &Caller,
        app: Option<ClientApp>,
    ) -> AppResult<Option<ManifestOp<'_>>> {
        let named = match r.extensions.remove("persistedQuery") {
            None => None,
            Some(v) => {
                let hash = match &v {
                    async_graphql::Value::Object(o) => match o.get("sha256Hash") {
                        Some(async_graphql::Value::String(h)) => Some(h.to_ascii_lowercase()),
                        _ => None,
                    },
                    _ => None,
                };
                let field = "extensions.persistedQuery.sha256Hash";
                let hash = hash.ok_or_else(|| {
                    AppError::validation(field, Msg::new("缺少操作的SHA-256", "The operation's SHA-256 is missing"))
                })?;
                if !r.query.is_empty() && sha256_hex(&r.query) != hash {
                    return Err(AppError::validation(
                        field,
                        Msg::new("SHA-256与操作文本不符", "The SHA-256 does not match the operation's text"),
                    ));
                }
                Some(hash)
            }
        };
        let known = match named {
            Some(h) => match self.by_hash.get(&h) {
                Some(k) => Some(k),
                None if r.query.is_empty() => return Err(AppError::not_found("persistedQuery")),
                None => None,
            },
            // text without a hash: a manifest operation all the same if its text is one
            None if r.query.len() <= MAX_BODY => self.by_hash.get(&sha256_hex(&r.query)),
            None => None,
        };
        if !self.may_run(known, caller, app) {
            return Err(refused());
        }
        if let Some(k) = known {
            if r.query.is_empty() {
                r.query = k.body.clone();
            }
            r.set_parsed_query(k.doc.clone());
        }
        Ok(known.map(|k| ManifestOp { id: &k.id, keepable: k.keepable.as_ref() }))
    }

    fn may_run(&self, known: Option<&Known>, caller: &Caller, app: Option<ClientApp>) -> bool {
        if !self.enforce {
            return true;
        }
        let Some(actor) = caller.actor() else { return true };
        match app {
            Some(ClientApp::Playground) => known.is_some() || (actor.is_staff() && actor.has(Perm::SchemaRead)),
            Some(a) => known.is_some_and(|k| k.apps.contains(&a)),
            None => known.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_split_on_keywords_and_drop_comments() {
        let text =
            "# one\nquery A {\n  a\n}\n\n# two\nmutation B($x: Int) {\n  b(x: $x) { ...F }\n}\nfragment F on T { c }\n";
        let defs = definitions(text);
        assert_eq!(
            defs,
            vec!["query A {\n  a\n}", "mutation B($x: Int) {\n  b(x: $x) { ...F }\n}", "fragment F on T { c }"]
        );
        assert_eq!(spreads(&defs[1]), BTreeSet::from(["F".to_owned()]));
        assert!(spreads("{ a { ... on T { b } } }").is_empty());
    }

    #[test]
    fn only_house_page_queries_may_keep_their_answers() {
        let kept = |q: &str| reads_only_house_pages(&async_graphql::parser::parse_query(q).unwrap());
        assert!(kept(
            "query H($p: ID) { houses(projectId: $p) { edges { cursor node { id roomNo } } pageInfo { hasNextPage } } }"
        ));
        assert!(kept("query H { a: houses { ...P } } fragment P on HouseConnection { nodes { ... on House { id } } }"));
        assert!(kept("{ __typename houses { nodes { id } } }"));
        // residents (directly or in a fragment), another root field, a mutation, two operations
        assert!(!kept("query H { houses { nodes { id residents { name } } } }"));
        assert!(!kept("query H { houses { ...P } } fragment P on HouseConnection { nodes { residents { name } } }"));
        assert!(!kept("query H { houses { nodes { id } } me { user { id } } }"));
        assert!(!kept("query H { house(id: 1) { id } }"));
        assert!(!kept("mutation H { houses { nodes { id } } }"));
        assert!(!kept("query A { houses { nodes { id } } } query B { houses { nodes { id } } }"));
        // of the embedded manifests: the staff app's Houses, not the managers' (residents)
        let p = Persisted::embedded(true);
        let bodies: Vec<&str> = p.by_hash.values().filter(|k| k.keepable.is_some()).map(|k| k.body.as_str()).collect();
        assert!(!bodies.is_empty());
        for b in bodies {
            assert!(b.starts_with("query Houses(") && !b.contains("residents"), "{b}");
        }
    }

    #[test]
    fn the_embedded_manifests_are_whole() {
        let p = Persisted::embedded(true);
        let total: usize = EMBEDDED
            .iter()
            .map(|(_, j)| serde_json::from_str::<Manifest>(j).map(|m| m.operations.len()).unwrap_or(0))
            .sum();
        assert!(p.by_hash.len() > 40, "{} operations", p.by_hash.len());
        // shared operations are in two manifests but parsed once
        assert!(p.by_hash.len() < total);
        for (_, k) in p.by_hash.iter() {
            assert!(!k.apps.is_empty());
        }
    }
}
