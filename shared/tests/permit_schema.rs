//! The committed JSON Schema of the permit's JSON form must match the model.
//!
//! To refresh the file after changing the model, run
//! `EPIX_UPDATE_SCHEMA=1 cargo test -p epix-shared --test permit_schema`.

use std::path::PathBuf;

use epix_shared::permit::permit_json_schema;

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/permit.schema.json")
}

fn generated() -> String {
    let schema = permit_json_schema();
    let mut text = serde_json::to_string_pretty(&schema).expect("schema serialises");
    text.push('\n');
    text
}

#[test]
fn committed_schema_matches_model() {
    let path = schema_path();
    let expected = generated();
    if std::env::var_os("EPIX_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &expected).expect("schema file is writable");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "{} differs from the model: run EPIX_UPDATE_SCHEMA=1 cargo test -p epix-shared --test permit_schema",
        path.display()
    );
}

#[test]
fn schema_lists_required_fields() {
    let schema = permit_json_schema();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .expect("required list")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for field in [
        "document_type",
        "permit_number",
        "issuing_country",
        "valid_until",
        "importer",
        "exporter",
        "purpose",
        "lines",
        "issue_date",
    ] {
        assert!(
            required.contains(&field),
            "{field} not required: {required:?}"
        );
    }
    assert_eq!(required.len(), 9, "{required:?}");
}
