//! The committed OpenAPI documents must match the code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

#[test]
fn the_committed_openapi_documents_are_up_to_date() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi");
    assert!(
        gatehouse_server::openapi::is_fresh(&dir),
        "openapi/ is stale: run `cargo run -p gatehouse-server -- openapi` and commit the result"
    );
}

#[test]
fn every_operation_has_an_id_named_verb_resource() {
    let doc: serde_json::Value = serde_json::from_str(&gatehouse_server::openapi::spec_json()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default();
            let verb = id.split('_').next().unwrap_or_default();
            assert!(
                ["create", "get", "list", "update", "delete", "revoke", "rotate"].contains(&verb),
                "{method} {path} has operationId {id:?}"
            );
        }
    }
}
