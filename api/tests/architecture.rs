//! The layering of `api/src`, kept by the build instead of by memory (ARCHITECTURE.md):
//!
//! - layers, bottom to top: kit → rbac → org → notify → auth → equipment → iot →
//!   maintenance → onboarding → http → app; a file may name only its own layer and those
//!   below (`crate::x` paths);
//! - the kit names no domain;
//! - a `graphql.rs` never names a `repo`, and no file names another domain's `repo`;
//! - `model.rs`, `repo.rs` and `service.rs` never name `async_graphql`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

const LAYERS: &[&str] = &[
    "kit",
    "rbac",
    "files",
    "org",
    "notify",
    "auth",
    "equipment",
    "iot",
    "maintenance",
    "workorders",
    "people",
    "feedback",
    "billing",
    "onboarding",
    "http",
    "app",
];

fn layer(name: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == name)
}

/// The source without comments, so documentation may name anything.
fn code_of(src: &str) -> String {
    src.lines()
        .map(|l| match l.find("//") {
            // keep `//` inside string literals such as URLs
            Some(i) if l[..i].matches('"').count() % 2 == 0 => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `word` appears as a whole identifier (`repo::x`, `super::repo`, not `report`).
fn names_word(code: &str, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(word).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// `crate::a::b::c` paths named in the code (the segments after `crate`).
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `wuye_crate::`
        }
        let path: Vec<String> = rest
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .next()
            .unwrap_or("")
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        out.push(path);
    }
    out
}

/// The broken rules of one file, `rel` being its path under `api/src`.
fn violations(rel: &str, src: &str) -> Vec<String> {
    let code = code_of(src);
    let mut found = Vec::new();
    let parts: Vec<&str> = rel.split('/').collect();
    let top = parts[0].trim_end_matches(".rs");
    let file = parts.last().copied().unwrap_or("");
    let own = layer(top);
    if code.contains("crate::{") {
        found.push(format!("{rel}: write one `crate::` path per import (no `crate::{{…}}`)"));
    }
    for path in crate_paths(&code) {
        let Some(target) = path.first() else { continue };
        let (Some(mine), Some(theirs)) = (own, layer(target)) else { continue };
        if theirs > mine {
            found.push(format!("{rel}: `{top}` must not name the higher layer `crate::{}`", path.join("::")));
        }
        if top == "kit" && target != "kit" {
            found.push(format!("{rel}: the kit must not name a domain (`crate::{}`)", path.join("::")));
        }
        if target != top && path.iter().any(|s| s == "repo") {
            found.push(format!("{rel}: names another domain's repo `crate::{}`", path.join("::")));
        }
    }
    if file == "graphql.rs" && names_word(&code, "repo") {
        found.push(format!("{rel}: a graphql.rs must not name a repo"));
    }
    if matches!(file, "model.rs" | "repo.rs" | "service.rs") && code.contains("async_graphql") {
        found.push(format!("{rel}: {file} must not know async-graphql types"));
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn layers_point_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut all = Vec::new();
    let mut tops = std::collections::BTreeSet::new();
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
        let top = rel.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
        tops.insert(top);
        all.extend(violations(&rel, &std::fs::read_to_string(f).unwrap()));
    }
    // every top-level module has a place in the order (main.rs and lib.rs sit above all)
    for t in &tops {
        assert!(layer(t).is_some() || t == "main" || t == "lib", "module `{t}` has no layer in LAYERS");
    }
    assert!(all.is_empty(), "layering broken:\n{}", all.join("\n"));
}

#[test]
fn the_checker_sees_each_kind_of_breach() {
    let up = violations("org/estate/service.rs", "use crate::iot::alarms::service;\n");
    assert_eq!(up.len(), 1, "{up:?}");
    let kit = violations("kit/state.rs", "use crate::rbac::model::Actor;\n");
    assert!(kit.iter().any(|v| v.contains("the kit must not name a domain")), "{kit:?}");
    let repo = violations("iot/alarms/graphql.rs", "use super::repo::Alarm;\n");
    assert!(repo.iter().any(|v| v.contains("graphql.rs must not name a repo")), "{repo:?}");
    let report = violations("workorders/graphql.rs", "fn f() { service::report(); let reporter = 1; }\n");
    assert!(report.is_empty(), "a word that starts with repo is no repo: {report:?}");
    let other_repo = violations("maintenance/plans/service.rs", "crate::iot::alarms::repo::insert(&mut tx).await;\n");
    assert!(other_repo.iter().any(|v| v.contains("another domain's repo")), "{other_repo:?}");
    let gql = violations("org/company/model.rs", "use async_graphql::Enum;\n");
    assert_eq!(gql.len(), 1, "{gql:?}");
    // comments may name anything, and a lower layer is fine
    assert!(violations("org/estate/service.rs", "// crate::iot::x\nuse crate::rbac::model::Perm;\n").is_empty());
    assert!(violations("rbac/service.rs", "use crate::kit::state::AppState;\n").is_empty());
}

/// The server links the shared rules, never the apps' SDK (UniFFI, SQLite, its clients).
#[test]
fn the_server_does_not_link_the_sdk() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    assert!(manifest.contains("wuye-validate.workspace"));
    for sdk in ["wuye-mobile", "uniffi", "rusqlite"] {
        assert!(!manifest.contains(sdk), "api/Cargo.toml names {sdk}");
    }
}
