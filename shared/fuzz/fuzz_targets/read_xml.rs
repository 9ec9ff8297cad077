//! Feeds arbitrary bytes to the ePermit XML reader and the whole check; neither may panic.
//! Whatever reads must also survive a v2 write and read back.

#![no_main]

use chrono::{DateTime, Utc};
use epix_shared::permit::{check_document, read_xml, write_xml_v2};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let as_of = DateTime::<Utc>::from_timestamp(1_765_000_000, 0).unwrap_or_default();
    let _ = check_document("application/xml", body, as_of);
    if let Ok(read) = read_xml(body) {
        let written = write_xml_v2(&read.permit);
        let again = read_xml(written.as_bytes());
        assert!(again.is_ok(), "written XML does not read back: {again:?}");
    }
});
