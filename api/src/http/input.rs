//! Text input checked once at the edge, for every string argument of every operation: no
//! control characters (NUL, which PostgreSQL refuses, and the rest of C0/C1 but tab, line
//! feed and carriage return). Variables are walked as sent; the query text is parsed only
//! when it could hold such a character at all (a `\u` escape or a raw control character),
//! so ordinary requests pay one scan of their text.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Positioned, Request};
use async_graphql_value::{ConstValue, Value};

use crate::kit::error::{AppError, Msg};

fn bad_char(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

fn refused(field: String) -> AppError {
    AppError::validation(
        field,
        Msg::new("不能包含控制字符（如 \\u0000）", "Must not contain control characters (such as \\u0000)"),
    )
}

/// The path of the first string in `v` with a control character (keys joined by `.`).
fn find_const(v: &ConstValue, path: &mut Vec<String>) -> bool {
    match v {
        ConstValue::String(s) => s.chars().any(bad_char),
        ConstValue::List(items) => items.iter().any(|i| find_const(i, path)),
        ConstValue::Object(map) => map.iter().any(|(k, v)| {
            // a key with a control character is reported as its object
            if k.chars().any(bad_char) {
                return true;
            }
            path.push(k.to_string());
            if find_const(v, path) {
                return true;
            }
            path.pop();
            false
        }),
        _ => false,
    }
}

fn find_value(v: &Value, path: &mut Vec<String>) -> bool {
    match v {
        Value::String(s) => s.chars().any(bad_char),
        Value::List(items) => items.iter().any(|i| find_value(i, path)),
        Value::Object(map) => map.iter().any(|(k, v)| {
            // a key with a control character is reported as its object
            if k.chars().any(bad_char) {
                return true;
            }
            path.push(k.to_string());
            if find_value(v, path) {
                return true;
            }
            path.pop();
            false
        }),
        _ => false,
    }
}

/// Every field of a selection set, through inline fragments (named ones are walked apart).
fn fields<'a>(set: &'a SelectionSet, out: &mut Vec<&'a async_graphql::parser::types::Field>) {
    for s in &set.items {
        match &s.node {
            Selection::Field(f) => {
                out.push(&f.node);
                fields(&f.node.selection_set.node, out);
            }
            Selection::InlineFragment(i) => fields(&i.node.selection_set.node, out),
            Selection::FragmentSpread(_) => {}
        }
    }
}

fn all_fields(doc: &ExecutableDocument) -> Vec<&async_graphql::parser::types::Field> {
    let mut out = Vec::new();
    for (_, op) in doc.operations.iter() {
        fields(&op.node.selection_set.node, &mut out);
    }
    for f in doc.fragments.values() {
        fields(&f.node.selection_set.node, &mut out);
    }
    out
}

/// The argument a variable is passed to (to name the field a client knows).
fn argument_of(doc: &ExecutableDocument, var: &str) -> Option<String> {
    all_fields(doc).into_iter().find_map(|f| {
        f.arguments.iter().find_map(|(name, value): &(Positioned<Name>, Positioned<Value>)| {
            matches!(&value.node, Value::Variable(v) if v.as_str() == var).then(|| name.node.to_string())
        })
    })
}

fn join(root: String, path: &[String]) -> String {
    // `input.name` reads as `name`, the way every other validation error names input fields
    match path.split_first() {
        Some(_) if root == "input" => path.join("."),
        Some(_) => format!("{root}.{}", path.join(".")),
        None => root,
    }
}

/// Refuses a request whose variables or literal arguments hold a control character, with
/// VALIDATION naming the field.
pub fn check(r: &Request) -> Result<(), AppError> {
    let mut path = Vec::new();
    for (name, value) in r.variables.iter() {
        if find_const(value, &mut path) {
            let root = async_graphql::parser::parse_query(&r.query)
                .ok()
                .and_then(|doc| argument_of(&doc, name.as_str()))
                .unwrap_or_else(|| name.to_string());
            return Err(refused(join(root, &path)));
        }
    }
    // an escape (`\u0000`, `\b`, `\f`…) or a raw control character: read the literals
    let suspicious = r.query.contains('\\') || r.query.chars().any(bad_char);
    if !suspicious {
        return Ok(());
    }
    // unparseable text is the executor's to report
    let Ok(doc) = async_graphql::parser::parse_query(&r.query) else { return Ok(()) };
    for (_, op) in doc.operations.iter() {
        for var in &op.node.variable_definitions {
            let mut path = Vec::new();
            if let Some(default) = &var.node.default_value
                && find_const(&default.node, &mut path)
            {
                let name = var.node.name.node.as_str();
                let root = argument_of(&doc, name).unwrap_or_else(|| name.to_owned());
                return Err(refused(join(root, &path)));
            }
        }
    }
    for f in all_fields(&doc) {
        for (name, value) in &f.arguments {
            let mut path = Vec::new();
            if find_value(&value.node, &mut path) {
                return Err(refused(join(name.node.to_string(), &path)));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(r: Request) -> Option<String> {
        match check(&r) {
            Err(AppError::Validation { field, .. }) => Some(field.into_owned()),
            Err(e) => panic!("{e}"),
            Ok(()) => None,
        }
    }

    #[test]
    fn control_characters_are_found_and_named() {
        let q = "query($s: String) { devices(search: $s) { totalCount } }";
        let vars = |v: serde_json::Value| async_graphql::Variables::from_json(v);
        assert_eq!(
            field_of(Request::new(q).variables(vars(serde_json::json!({"s": "a\u{0}b"})))),
            Some("search".into())
        );
        assert_eq!(field_of(Request::new(q).variables(vars(serde_json::json!({"s": "多行\n文本\t"})))), None);
        let m = "mutation($input: CreateDeviceInput!) { createDevice(input: $input) { clientMutationId } }";
        let r = Request::new(m).variables(vars(serde_json::json!({"input": {"name": "ok", "location": "x\u{7}"}})));
        assert_eq!(field_of(r), Some("location".into()));
        assert_eq!(field_of(Request::new(r#"{ deviceByCode(code: "A\u0000") { id } }"#)), Some("code".into()));
        assert_eq!(
            field_of(Request::new(r#"mutation { m(input: {tags: ["ok", "\u0085"]}) { x } }"#)),
            Some("tags".into())
        );
        assert_eq!(field_of(Request::new(r#"{ deviceByCode(code: "\u4e2d") { id } }"#)), None);
        // short escapes and default values of variables are read too
        assert_eq!(field_of(Request::new(r#"{ deviceByCode(code: "a\bb") { id } }"#)), Some("code".into()));
        assert_eq!(field_of(Request::new(r#"{ deviceByCode(code: "a\fb") { id } }"#)), Some("code".into()));
        assert_eq!(field_of(Request::new(r#"{ deviceByCode(code: "a\nb") { id } }"#)), None);
        let with_default = r#"query($c: String = "\u0000") { deviceByCode(code: $c) { id } }"#;
        assert_eq!(field_of(Request::new(with_default)), Some("code".into()));
        let key = Request::new(q).variables(vars(serde_json::json!({"s": {"a\u{0}": 1}})));
        assert_eq!(field_of(key), Some("search".into()));
        assert_eq!(field_of(Request::new("{ me { id } }")), None);
    }
}
