//! The committed OpenAPI document must match what the code generates.

#[test]
fn committed_openapi_matches_code() {
    let generated = epix_hub::http::openapi()
        .to_pretty_json()
        .expect("serialises")
        + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date; regenerate it with `cargo run -p epix-hub -- openapi --output openapi/openapi.json`"
    );
}
