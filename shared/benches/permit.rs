//! Reading and validating permits: `cargo bench -p epix-shared --bench permit`.

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use epix_shared::permit::{Rules, code_lists::code_lists, read_document, validate};

const JSON_PERMIT: &str = r#"{
    "document_type": "export",
    "permit_number": "26CH000123",
    "issuing_country": "CH",
    "issue_date": "2026-12-01",
    "valid_until": "2027-05-31",
    "purpose": "T",
    "importer": {"name": "Zoo Leipzig", "city": "Leipzig", "country": "DE"},
    "exporter": {"name": "Reptilien AG", "city": "Basel", "country": "CH"},
    "lines": [
        {"scientific_name": "Alligator mississippiensis", "appendix": "II", "source": "W",
         "term": "LPS", "quantity": 5, "unit": "PCS"},
        {"scientific_name": "Crocodylus siamensis", "appendix": "I", "source": "D",
         "term": "LPS", "quantity": 10, "unit": ""}
    ]
}"#;

fn benchmarks(c: &mut Criterion) {
    // Load the code lists before timing, as a running hub has.
    black_box(code_lists());
    let as_of: DateTime<Utc> = "2026-12-04T12:00:00Z".parse().unwrap_or_default();
    let rules = Rules::default();

    c.bench_function("read JSON permit", |b| {
        b.iter(|| read_document("application/json", black_box(JSON_PERMIT.as_bytes())))
    });

    let Ok(read) = read_document("application/json", JSON_PERMIT.as_bytes()) else {
        return;
    };
    c.bench_function("validate permit (2 blocks)", |b| {
        b.iter(|| validate(black_box(&read.permit), as_of, &rules))
    });
}

criterion_group!(permit, benchmarks);
criterion_main!(permit);
