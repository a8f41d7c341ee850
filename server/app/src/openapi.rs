//! The OpenAPI document: generated from the routes (OpenAPI 3.1, `gatehouse.json`) and
//! down-converted to 3.0 (`gatehouse-3.0.json`) for progenitor, which reads only 3.0.
//! See `docs/adr/0004-openapi-pipeline.md`.

use serde_json::{Map, Value};
use std::path::Path;

/// The canonical document (OpenAPI 3.1), pretty-printed with a trailing newline.
pub fn spec_json() -> String {
    let (_, spec) = crate::http::api_router().split_for_parts();
    let value = serde_json::to_value(&spec).unwrap_or(Value::Null);
    pretty(&value)
}

/// The same document as OpenAPI 3.0.3.
pub fn spec_json_30() -> String {
    let value: Value = serde_json::from_str(&spec_json()).unwrap_or(Value::Null);
    pretty(&downgrade_to_30(value))
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Writes the OpenAPI documents and the GraphQL schema (`gatehouse.graphql`) into `dir`.
pub fn write(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("gatehouse.json"), spec_json())?;
    std::fs::write(dir.join("gatehouse-3.0.json"), spec_json_30())?;
    std::fs::write(dir.join("gatehouse.graphql"), crate::graphql::sdl())
}

/// Whether the files in `dir` match the code.
pub fn is_fresh(dir: &Path) -> bool {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    read("gatehouse.json") == spec_json()
        && read("gatehouse-3.0.json") == spec_json_30()
        && read("gatehouse.graphql") == crate::graphql::sdl()
}

/// Rewrites the 3.1 constructs utoipa emits into their 3.0 equivalents:
/// `type: [T, "null"]` → `type: T, nullable: true`; `oneOf`/`anyOf` with a `null` arm →
/// the other arm, nullable; `examples` in schemas → `example`; `const` → one-value `enum`;
/// the license `identifier` (3.1 only) is dropped. Problem bodies are declared as
/// `application/json` there, because generators such as progenitor type only JSON bodies
/// (the server still answers `application/problem+json`, a JSON media type).
pub fn downgrade_to_30(mut doc: Value) -> Value {
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("openapi".into(), Value::String("3.0.3".into()));
        if let Some(license) = obj.get_mut("info").and_then(|i| i.get_mut("license")).and_then(Value::as_object_mut) {
            license.remove("identifier");
        }
    }
    walk(&mut doc);
    doc
}

fn walk(value: &mut Value) {
    match value {
        Value::Object(map) => {
            downgrade_schema(map);
            problem_as_json(map);
            for child in map.values_mut() {
                walk(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(walk),
        _ => {}
    }
}

fn problem_as_json(map: &mut Map<String, Value>) {
    if let Some(Value::Object(content)) = map.get_mut("content")
        && !content.contains_key("application/json")
        && let Some(media) = content.remove("application/problem+json")
    {
        content.insert("application/json".into(), media);
    }
}

fn is_null_schema(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null")
}

fn downgrade_schema(map: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = map.get("type").cloned() {
        let non_null: Vec<Value> = types.iter().filter(|t| t.as_str() != Some("null")).cloned().collect();
        if non_null.len() < types.len() {
            map.insert("nullable".into(), Value::Bool(true));
        }
        if let [single] = non_null.as_slice() {
            map.insert("type".into(), single.clone());
        } else {
            map.remove("type");
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(arms)) = map.get(key).cloned() {
            let rest: Vec<Value> = arms.iter().filter(|a| !is_null_schema(a)).cloned().collect();
            if rest.len() < arms.len() {
                map.insert("nullable".into(), Value::Bool(true));
                if let [only] = rest.as_slice() {
                    map.remove(key);
                    // A $ref cannot carry siblings in 3.0: wrap it in allOf.
                    if only.get("$ref").is_some() {
                        map.insert("allOf".into(), Value::Array(vec![only.clone()]));
                    } else if let Value::Object(inner) = only {
                        for (k, v) in inner {
                            map.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                } else {
                    map.insert(key.into(), Value::Array(rest));
                }
            }
        }
    }
    let is_schema = map.contains_key("type") || map.contains_key("$ref") || map.contains_key("allOf");
    if is_schema
        && let Some(Value::Array(examples)) = map.remove("examples")
        && let Some(first) = examples.into_iter().next()
    {
        map.insert("example".into(), first);
    }
    if let Some(constant) = map.remove("const") {
        map.insert("enum".into(), Value::Array(vec![constant]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn problem_bodies_are_declared_as_json_for_generators() {
        let doc = json!({"openapi": "3.1.0", "paths": {"/x": {"get": {"responses": {
            "4XX": {"content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
            "200": {"content": {"application/json": {"schema": {"type": "object"}}}}
        }}}}});
        let out = downgrade_to_30(doc);
        let responses = &out["paths"]["/x"]["get"]["responses"];
        assert_eq!(responses["4XX"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Problem");
        assert!(responses["4XX"]["content"].get("application/problem+json").is_none());
        assert_eq!(responses["200"]["content"]["application/json"]["schema"]["type"], "object");
    }

    #[test]
    fn nullable_types_and_null_arms_become_3_0_nullable() {
        let doc = json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1", "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
            "components": {"schemas": {"S": {"type": "object", "properties": {
                "a": {"type": ["string", "null"], "format": "date-time"},
                "b": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/T"}]},
                "c": {"type": "string", "examples": ["x", "y"]},
                "d": {"const": "fixed"}
            }}}}
        });
        let out = downgrade_to_30(doc);
        assert_eq!(out["openapi"], "3.0.3");
        assert!(out["info"]["license"].get("identifier").is_none());
        let props = &out["components"]["schemas"]["S"]["properties"];
        assert_eq!(props["a"], json!({"type": "string", "format": "date-time", "nullable": true}));
        assert_eq!(props["b"], json!({"allOf": [{"$ref": "#/components/schemas/T"}], "nullable": true}));
        assert_eq!(props["c"], json!({"type": "string", "example": "x"}));
        assert_eq!(props["d"], json!({"enum": ["fixed"]}));
    }

    #[test]
    fn the_generated_3_0_document_has_no_3_1_constructs() {
        let text = spec_json_30();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["openapi"], "3.0.3");
        fn check(v: &Value) {
            match v {
                Value::Object(m) => {
                    assert!(!matches!(m.get("type"), Some(Value::Array(_))), "type array left: {v}");
                    assert_ne!(m.get("type").and_then(Value::as_str), Some("null"), "null type left: {v}");
                    assert!(!m.contains_key("const"));
                    m.values().for_each(check);
                }
                Value::Array(a) => a.iter().for_each(check),
                _ => {}
            }
        }
        check(&doc);
    }
}
