//! Reading and validating permits: `cargo bench -p epix-shared --bench permit`.

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use epix_shared::permit::{Rules, code_lists::code_lists, read_document, validate, write_xml_v2};

const SAMPLE: &[u8] = include_bytes!("../tests/fixtures/citesepermit-v2-reexport.xml");

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
    // A running hub loads the code lists once, so they load before timing starts.
    let started = Instant::now();
    black_box(code_lists());
    eprintln!("code lists loaded in {:?}", started.elapsed());
    let as_of: DateTime<Utc> = "2026-12-04T12:00:00Z".parse().unwrap_or_default();
    let rules = Rules::default();

    c.bench_function("read EPIX v2 sample (44 KB XML)", |b| {
        b.iter(|| read_document("application/xml", black_box(SAMPLE)))
    });

    c.bench_function("read JSON permit", |b| {
        b.iter(|| read_document("application/json", black_box(JSON_PERMIT.as_bytes())))
    });

    let Ok(read) = read_document("application/json", JSON_PERMIT.as_bytes()) else {
        return;
    };
    c.bench_function("validate permit (2 blocks)", |b| {
        b.iter(|| validate(black_box(&read.permit), as_of, &rules))
    });

    let Ok(sample) = read_document("application/xml", SAMPLE) else {
        return;
    };
    c.bench_function("write EPIX v2 sample as XML", |b| {
        b.iter(|| write_xml_v2(black_box(&sample.permit)))
    });
}

criterion_group!(permit, benchmarks);
criterion_main!(permit);
