//! Feeds arbitrary bytes to the JSON permit reader and the whole check; neither may panic.

#![no_main]

use chrono::{DateTime, Utc};
use epix_shared::permit::{check_document, read_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let as_of = DateTime::<Utc>::from_timestamp(1_765_000_000, 0).unwrap_or_default();
    let _ = check_document("application/json", body, as_of);
    if let Ok(read) = read_json(body) {
        let json = serde_json::to_string(&read.permit).unwrap_or_default();
        let again = read_json(json.as_bytes());
        assert!(again.is_ok(), "written JSON does not read back: {json}");
    }
});
