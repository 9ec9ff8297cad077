//! Code lists and CITES taxa embedded from the Species+ data files (UNEP-WCMC, BSD licence,
//! see `shared/data/cites-reference/LICENSE-SAPI`), loaded once on first use.
//!
//! The files are read as they are published: some end lines with a lone carriage return,
//! dates are `dd/mm/yyyy`, and notes hold HTML. The lists also disagree with each other, so
//! every list here is the union of its sources and each entry records where it came from.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use chrono::NaiveDate;

use super::codes::{Appendix, PurposeCode, SourceCode, TermCode, UnitCode};
use crate::PartyCode;

const PURPOSE_CODES: &str = include_str!("../../data/cites-reference/purpose_codes_utf8.csv");
const SOURCE_CODES: &str = include_str!("../../data/cites-reference/source_codes_utf8.csv");
const TERM_CODES: &str = include_str!("../../data/cites-reference/term_codes_utf8.csv");
const UNIT_CODES: &str = include_str!("../../data/cites-reference/unit_codes_utf8.csv");
const TERM_UNIT_PAIRS: &str = include_str!("../../data/cites-reference/term_unit_pairs_utf8.csv");
const COUNTRIES: &str = include_str!("../../data/cites-reference/countries_utf8.csv");
const COUNTRY_NAMES: &str =
    include_str!("../../data/cites-reference/country_codes_en_es_fr_utf8.csv");
const ANIMAL_TAXA: &str = include_str!("../../data/cites-reference/animalia_taxa_utf8.csv");
const PLANT_TAXA: &str = include_str!("../../data/cites-reference/plantae_taxa_utf8.csv");
const ANIMAL_LISTINGS: &str =
    include_str!("../../data/cites-reference/animalia_legislation_utf8.csv");
const PLANT_LISTINGS: &str =
    include_str!("../../data/cites-reference/plantae_legislation_utf8.csv");

/// Source file or document of a code-list entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeOrigin {
    /// The Species+ code-list file of that kind (purpose, source, term or unit codes).
    SpeciesPlusCodeList,
    /// Named only in the Species+ allowed term/unit pairs.
    SpeciesPlusTermUnitPairs,
    /// The Species+ geo-entity list (`countries_utf8.csv`).
    SpeciesPlusCountries,
    /// Only in the Species+ list of ISO names in French and Spanish.
    SpeciesPlusCountryNames,
    /// Codes of the CITES annual-report guidelines that the Species+ files lack.
    CitesGuidelines,
}

/// One code with its English name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeEntry {
    pub code: String,
    pub name: String,
    pub origin: CodeOrigin,
}

/// Kind of place a country code names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CountryKind {
    /// A country, territory or former State that can trade and issue documents.
    Entity,
    /// A code of the CITES trade data that names no single State, such as `XX` (unknown) or
    /// `ZZ` (introduction from the sea). It is valid only as a country of origin or re-export.
    Aggregate,
}

/// One country code with its English name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Country {
    pub code: PartyCode,
    pub name: String,
    pub kind: CountryKind,
    pub origin: CodeOrigin,
}

/// Dimension of a unit code. Counts are checked against term/unit pairs as a number of
/// specimens, because the pairs list no count unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitDimension {
    Count,
    Mass,
    Volume,
    Length,
    Area,
}

/// Units by dimension. The Species+ unit list gives names only, so the dimension is set here.
const UNIT_DIMENSIONS: &[(&str, UnitDimension)] = &[
    ("KIL", UnitDimension::Mass),
    ("GRM", UnitDimension::Mass),
    ("MGM", UnitDimension::Mass),
    ("MYG", UnitDimension::Mass),
    ("TON", UnitDimension::Mass),
    ("PND", UnitDimension::Mass),
    ("OUN", UnitDimension::Mass),
    ("LTR", UnitDimension::Volume),
    ("MLT", UnitDimension::Volume),
    ("CUM", UnitDimension::Volume),
    ("CCM", UnitDimension::Volume),
    ("CUF", UnitDimension::Volume),
    ("MTR", UnitDimension::Length),
    ("CTM", UnitDimension::Length),
    ("FEE", UnitDimension::Length),
    ("INC", UnitDimension::Length),
    ("YAR", UnitDimension::Length),
    ("SQM", UnitDimension::Area),
    ("SQC", UnitDimension::Area),
    ("SQD", UnitDimension::Area),
    ("SQF", UnitDimension::Area),
];

/// Source codes that the Species+ source list lacks: introduction from the sea and assisted
/// production (added for plants in 2019).
const EXTRA_SOURCES: &[(&str, &str)] = &[
    (
        "X",
        "Taken in the marine environment not under the jurisdiction of any State",
    ),
    ("Y", "Assisted production"),
];

/// Term codes of the annual-report guidelines that `term_codes_utf8.csv` lacks.
const EXTRA_TERMS: &[(&str, &str)] = &[("BUL", "bulbs"), ("WHO", "whole")];

/// Codes of the CITES trade data beyond the Species+ geo entities.
const EXTRA_COUNTRIES: &[(&str, &str, CountryKind)] = &[
    ("XX", "Unknown", CountryKind::Aggregate),
    ("XV", "Various", CountryKind::Aggregate),
    ("ZZ", "Introduction from the sea", CountryKind::Aggregate),
    ("XF", "Africa", CountryKind::Aggregate),
    ("XS", "Asia", CountryKind::Aggregate),
    ("XE", "Europe", CountryKind::Aggregate),
    ("XM", "South America", CountryKind::Aggregate),
    ("XC", "Caribbean", CountryKind::Aggregate),
    ("XA", "French Antilles", CountryKind::Entity),
    ("KV", "Kosovo", CountryKind::Entity),
    (
        "DD",
        "former German Democratic Republic",
        CountryKind::Entity,
    ),
    ("ZC", "former Czechoslovakia", CountryKind::Entity),
    (
        "PC",
        "former Pacific Islands Trust Territory",
        CountryKind::Entity,
    ),
    ("YD", "former Democratic Yemen", CountryKind::Entity),
    ("ZR", "former Zaire", CountryKind::Entity),
];

/// How many rows of one embedded file were read, and the rows that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub file: &'static str,
    pub rows: usize,
    /// Rows that could not be parsed, with the reason.
    pub rejected: Vec<String>,
    /// Keys of rows that parsed but are left out on purpose.
    pub ignored: Vec<String>,
}

/// Every embedded code list and the CITES taxa with their current listing.
#[derive(Debug)]
pub struct CodeLists {
    purposes: BTreeMap<String, CodeEntry>,
    sources: BTreeMap<String, CodeEntry>,
    terms: BTreeMap<String, CodeEntry>,
    units: BTreeMap<String, CodeEntry>,
    term_units: HashSet<(TermCode, Option<UnitCode>)>,
    countries: BTreeMap<PartyCode, Country>,
    taxa: Taxa,
    reports: Vec<FileReport>,
}

static CODE_LISTS: LazyLock<CodeLists> = LazyLock::new(CodeLists::load);

/// Returns the embedded code lists, loading them on the first call.
pub fn code_lists() -> &'static CodeLists {
    &CODE_LISTS
}

impl CodeLists {
    pub fn purpose(&self, code: PurposeCode) -> Option<&CodeEntry> {
        self.purposes.get(code.as_str())
    }

    pub fn source(&self, code: SourceCode) -> Option<&CodeEntry> {
        self.sources.get(code.as_str())
    }

    pub fn term(&self, code: TermCode) -> Option<&CodeEntry> {
        self.terms.get(code.as_str())
    }

    pub fn unit(&self, code: UnitCode) -> Option<&CodeEntry> {
        self.units.get(code.as_str())
    }

    pub fn country(&self, code: PartyCode) -> Option<&Country> {
        self.countries.get(&code)
    }

    pub fn terms(&self) -> impl Iterator<Item = &CodeEntry> {
        self.terms.values()
    }

    pub fn units(&self) -> impl Iterator<Item = &CodeEntry> {
        self.units.values()
    }

    pub fn countries(&self) -> impl Iterator<Item = &Country> {
        self.countries.values()
    }

    pub fn taxa(&self) -> &Taxa {
        &self.taxa
    }

    /// Rows read from each embedded file, for the test that proves none is lost.
    pub fn reports(&self) -> &[FileReport] {
        &self.reports
    }

    /// Returns the dimension of a unit, or `None` for a unit on no list.
    pub fn unit_dimension(&self, unit: UnitCode) -> Option<UnitDimension> {
        self.units.get(unit.as_str())?;
        let dimension = UNIT_DIMENSIONS
            .iter()
            .find(|(code, _)| *code == unit.as_str())
            .map_or(UnitDimension::Count, |(_, dimension)| *dimension);
        Some(dimension)
    }

    /// Tells whether the term/unit pairs allow this unit for this term.
    ///
    /// A count unit (such as `PCS`) or no unit means a number of specimens and is checked as
    /// the empty unit of the pairs. A unit that no pair names (such as `TON`) is allowed where
    /// the term allows some unit of the same dimension, so that a mass in tonnes passes where
    /// kilograms do.
    pub fn term_unit_allowed(&self, term: TermCode, unit: Option<UnitCode>) -> bool {
        let unit = match unit {
            Some(unit) if self.unit_dimension(unit) == Some(UnitDimension::Count) => None,
            other => other,
        };
        if self.term_units.contains(&(term, unit)) {
            return true;
        }
        let Some(unit) = unit else {
            return false;
        };
        let unit_in_pairs = self
            .term_units
            .iter()
            .any(|(_, paired)| *paired == Some(unit));
        if unit_in_pairs {
            return false;
        }
        let dimension = self.unit_dimension(unit);
        self.term_units.iter().any(|(paired_term, paired_unit)| {
            *paired_term == term
                && paired_unit.is_some_and(|paired| self.unit_dimension(paired) == dimension)
        })
    }

    /// Lists the units the pairs allow for a term, `""` standing for a number of specimens.
    pub fn units_for_term(&self, term: TermCode) -> Vec<String> {
        let mut units: Vec<String> = self
            .term_units
            .iter()
            .filter(|(paired_term, _)| *paired_term == term)
            .map(|(_, unit)| unit.map(|u| u.to_string()).unwrap_or_default())
            .collect();
        units.sort();
        units
    }

    fn load() -> Self {
        let mut reports = Vec::new();
        let purposes = load_codes("purpose_codes_utf8.csv", PURPOSE_CODES, &[], &mut reports);
        let sources = load_codes(
            "source_codes_utf8.csv",
            SOURCE_CODES,
            EXTRA_SOURCES,
            &mut reports,
        );
        let mut terms = load_codes("term_codes_utf8.csv", TERM_CODES, EXTRA_TERMS, &mut reports);
        let units = load_codes("unit_codes_utf8.csv", UNIT_CODES, &[], &mut reports);
        let term_units = load_term_units(&mut terms, &mut reports);
        let countries = load_countries(&mut reports);
        let taxa = Taxa::load(&mut reports);
        Self {
            purposes,
            sources,
            terms,
            units,
            term_units,
            countries,
            taxa,
            reports,
        }
    }
}

fn csv_reader(text: &str) -> csv::Reader<&[u8]> {
    // The csv crate's default terminator takes `\r`, `\n` and `\r\n` alike, which covers
    // the files that end lines with a lone carriage return.
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes())
}

/// Reads every record of a file, recording the ones that fail to parse.
fn records(
    file: &'static str,
    text: &str,
    reports: &mut Vec<FileReport>,
) -> Vec<csv::StringRecord> {
    let mut report = FileReport {
        file,
        rows: 0,
        rejected: Vec::new(),
        ignored: Vec::new(),
    };
    let mut rows = Vec::new();
    for record in csv_reader(text).records() {
        report.rows += 1;
        match record {
            Ok(record) => rows.push(record),
            Err(error) => report.rejected.push(error.to_string()),
        }
    }
    reports.push(report);
    rows
}

/// Records a row that was read but names nothing a permit can carry.
fn ignore(reports: &mut [FileReport], file: &str, key: &str) {
    if let Some(report) = reports.iter_mut().find(|report| report.file == file) {
        report.ignored.push(key.to_owned());
    }
}

fn reject(reports: &mut [FileReport], file: &str, reason: String) {
    if let Some(report) = reports.iter_mut().find(|report| report.file == file) {
        report.rejected.push(reason);
    }
}

fn load_codes(
    file: &'static str,
    text: &str,
    extra: &[(&str, &str)],
    reports: &mut Vec<FileReport>,
) -> BTreeMap<String, CodeEntry> {
    let mut codes = BTreeMap::new();
    for record in records(file, text, reports) {
        let code = record.get(0).unwrap_or("").trim();
        let name = record.get(1).unwrap_or("").trim();
        if code.is_empty() {
            reject(reports, file, format!("row without a code: {record:?}"));
            continue;
        }
        codes.insert(
            code.to_owned(),
            CodeEntry {
                code: code.to_owned(),
                name: plain_text(name),
                origin: CodeOrigin::SpeciesPlusCodeList,
            },
        );
    }
    for (code, name) in extra {
        codes
            .entry((*code).to_owned())
            .or_insert_with(|| CodeEntry {
                code: (*code).to_owned(),
                name: (*name).to_owned(),
                origin: CodeOrigin::CitesGuidelines,
            });
    }
    codes
}

fn load_term_units(
    terms: &mut BTreeMap<String, CodeEntry>,
    reports: &mut Vec<FileReport>,
) -> HashSet<(TermCode, Option<UnitCode>)> {
    const FILE: &str = "term_unit_pairs_utf8.csv";
    let mut pairs = HashSet::new();
    for record in records(FILE, TERM_UNIT_PAIRS, reports) {
        let term_text = record.get(0).unwrap_or("").trim();
        let unit_text = record.get(1).unwrap_or("").trim();
        let Ok(term) = term_text.parse::<TermCode>() else {
            reject(reports, FILE, format!("invalid term code {term_text:?}"));
            continue;
        };
        let unit = if unit_text.is_empty() {
            None
        } else {
            match unit_text.parse::<UnitCode>() {
                Ok(unit) => Some(unit),
                Err(_) => {
                    reject(reports, FILE, format!("invalid unit code {unit_text:?}"));
                    continue;
                }
            }
        };
        terms
            .entry(term_text.to_owned())
            .or_insert_with(|| CodeEntry {
                code: term_text.to_owned(),
                name: String::new(),
                origin: CodeOrigin::SpeciesPlusTermUnitPairs,
            });
        pairs.insert((term, unit));
    }
    pairs
}

fn load_countries(reports: &mut Vec<FileReport>) -> BTreeMap<PartyCode, Country> {
    const FILE: &str = "countries_utf8.csv";
    const NAMES_FILE: &str = "country_codes_en_es_fr_utf8.csv";
    let mut countries = BTreeMap::new();
    for record in records(FILE, COUNTRIES, reports) {
        let text = record.get(0).unwrap_or("").trim();
        let Ok(code) = text.parse::<PartyCode>() else {
            // Species+ gives former Sudan the code S1, which no ISO 3166 code can match.
            ignore(reports, FILE, text);
            continue;
        };
        countries.insert(
            code,
            Country {
                code,
                name: plain_text(record.get(1).unwrap_or("")),
                kind: CountryKind::Entity,
                origin: CodeOrigin::SpeciesPlusCountries,
            },
        );
    }
    for record in records(NAMES_FILE, COUNTRY_NAMES, reports) {
        let text = record.get(0).unwrap_or("").trim();
        let Ok(code) = text.parse::<PartyCode>() else {
            reject(
                reports,
                NAMES_FILE,
                format!("invalid country code {text:?}"),
            );
            continue;
        };
        // This file has French and Spanish names only, so the French one is used as the name.
        countries.entry(code).or_insert_with(|| Country {
            code,
            name: plain_text(record.get(1).unwrap_or("")),
            kind: CountryKind::Entity,
            origin: CodeOrigin::SpeciesPlusCountryNames,
        });
    }
    for (text, name, kind) in EXTRA_COUNTRIES {
        let Ok(code) = text.parse::<PartyCode>() else {
            continue;
        };
        let country = countries.entry(code).or_insert_with(|| Country {
            code,
            name: (*name).to_owned(),
            kind: *kind,
            origin: CodeOrigin::CitesGuidelines,
        });
        // The French/Spanish file also has XX, ZZ and others, without saying what they are.
        country.kind = *kind;
        if country.origin == CodeOrigin::SpeciesPlusCountryNames {
            country.name = (*name).to_owned();
        }
    }
    countries
}

/// Turns a field that may hold HTML (`<i>`, `<p>`, entities) into plain text.
pub fn plain_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let mut words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // Tags that closed right before punctuation leave a space in front of it.
    for mark in [" .", " ,", " ;", " :"] {
        words = words.replace(mark, &mark[1..]);
    }
    words
}

/// Kingdom of a taxon; the Species+ record ids are unique only within one kingdom and rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kingdom {
    Animalia,
    Plantae,
}

/// Taxonomic ranks of the Species+ files, from the top.
const RANKS: [&str; 10] = [
    "kingdom",
    "phylum",
    "class",
    "order",
    "family",
    "subfamily",
    "genus",
    "species",
    "subspecies",
    "variety",
];

/// Index of a rank in [`RANKS`], for any spelling case.
fn rank_index(rank: &str) -> Option<u8> {
    let rank = rank.trim().to_ascii_lowercase();
    RANKS
        .iter()
        .position(|known| *known == rank)
        .and_then(|index| u8::try_from(index).ok())
}

/// A taxon's key: Species+ record ids repeat across ranks (family 29 and order 29 differ).
type TaxonKey = (Kingdom, u8, u32);

const SPECIES: u8 = 7;

#[derive(Debug)]
struct TaxonNode {
    name: String,
    parent: Option<TaxonKey>,
}

/// One current listing of a taxon in an Appendix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub appendix: Appendix,
    pub effective_from: NaiveDate,
    /// The listing Party, for Appendix III listings.
    pub party: Option<String>,
    /// The populations the listing is limited to (ISO codes), when it is split.
    pub populations: Option<String>,
    /// The English annotation, as plain text.
    pub note: Option<String>,
}

/// The listing that applies to a name, found on the taxon itself or its nearest listed
/// ancestor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxonListing {
    /// Name of the taxon the listing is recorded on, such as `CROCODYLIA`.
    pub listed_taxon: String,
    pub listings: Vec<Listing>,
}

impl TaxonListing {
    pub fn appendices(&self) -> Vec<Appendix> {
        let mut appendices: Vec<Appendix> = self.listings.iter().map(|l| l.appendix).collect();
        appendices.sort();
        appendices.dedup();
        appendices
    }
}

/// The CITES taxa of Species+ and their current listings.
#[derive(Debug, Default)]
pub struct Taxa {
    nodes: HashMap<TaxonKey, TaxonNode>,
    by_name: HashMap<String, TaxonKey>,
    listings: HashMap<TaxonKey, Vec<Listing>>,
}

impl Taxa {
    fn load(reports: &mut Vec<FileReport>) -> Self {
        let mut taxa = Taxa::default();
        taxa.load_kingdom(
            Kingdom::Animalia,
            "animalia_taxa_utf8.csv",
            ANIMAL_TAXA,
            reports,
        );
        taxa.load_kingdom(
            Kingdom::Plantae,
            "plantae_taxa_utf8.csv",
            PLANT_TAXA,
            reports,
        );
        taxa.load_listings(
            Kingdom::Animalia,
            "animalia_legislation_utf8.csv",
            ANIMAL_LISTINGS,
            reports,
        );
        taxa.load_listings(
            Kingdom::Plantae,
            "plantae_legislation_utf8.csv",
            PLANT_LISTINGS,
            reports,
        );
        taxa
    }

    fn load_kingdom(
        &mut self,
        kingdom: Kingdom,
        file: &'static str,
        text: &str,
        reports: &mut Vec<FileReport>,
    ) {
        let mut keys = Vec::new();
        for record in records(file, text, reports) {
            let field = |index: usize| record.get(index).unwrap_or("").trim();
            let Some(rank) = rank_index(field(1)) else {
                reject(reports, file, format!("unknown rank in {record:?}"));
                continue;
            };
            let Ok(id) = field(2).parse::<u32>() else {
                reject(reports, file, format!("invalid RecID in {record:?}"));
                continue;
            };
            let parent = match (rank_index(field(3)), field(4).parse::<u32>()) {
                (Some(parent_rank), Ok(parent_id)) => Some((kingdom, parent_rank, parent_id)),
                // Only the kingdom itself has no parent.
                _ if rank == 0 => None,
                _ => {
                    reject(reports, file, format!("invalid parent in {record:?}"));
                    continue;
                }
            };
            let key = (kingdom, rank, id);
            self.nodes.insert(
                key,
                TaxonNode {
                    name: field(0).to_owned(),
                    parent,
                },
            );
            keys.push(key);
        }
        for key in keys {
            if let Some(full) = self.full_name(key) {
                self.by_name.entry(name_key(&full)).or_insert(key);
            }
        }
    }

    /// Builds the full name of a taxon: the files give species and lower ranks as epithets
    /// under their parent, so `mississippiensis` under `Alligator` is `Alligator
    /// mississippiensis`.
    fn full_name(&self, key: TaxonKey) -> Option<String> {
        let mut parts = Vec::new();
        let mut current = Some(key);
        // Below genus there are at most three levels: species, subspecies, variety.
        for _ in 0..4 {
            let key = current?;
            let node = self.nodes.get(&key)?;
            parts.push(node.name.as_str());
            if key.1 < SPECIES {
                break;
            }
            current = node.parent;
        }
        parts.reverse();
        Some(parts.join(" "))
    }

    fn load_listings(
        &mut self,
        kingdom: Kingdom,
        file: &'static str,
        text: &str,
        reports: &mut Vec<FileReport>,
    ) {
        for record in records(file, text, reports) {
            let field = |index: usize| record.get(index).unwrap_or("").trim();
            let (Some(rank), Ok(id)) = (rank_index(field(0)), field(1).parse::<u32>()) else {
                reject(
                    reports,
                    file,
                    format!("invalid rank or rec_id in {record:?}"),
                );
                continue;
            };
            let Ok(effective_from) = NaiveDate::parse_from_str(field(3), "%d/%m/%Y") else {
                reject(
                    reports,
                    file,
                    format!("invalid effective_from {:?}", field(3)),
                );
                continue;
            };
            let key = (kingdom, rank, id);
            if !self.nodes.contains_key(&key) {
                // A few listing rows name taxa that the taxa file of the same release lacks.
                ignore(reports, file, &format!("{} {id}", RANKS[usize::from(rank)]));
                continue;
            }
            // Deletions (DELII) and reservations (II/r, II/w) are history, not a listing.
            let Some(appendix) = Appendix::parse(field(2)) else {
                continue;
            };
            if field(5) != "1" {
                continue;
            }
            let optional = |index: usize| {
                let text = plain_text(field(index));
                (!text.is_empty()).then_some(text)
            };
            self.listings.entry(key).or_default().push(Listing {
                appendix,
                effective_from,
                party: optional(4),
                populations: optional(6),
                note: optional(12),
            });
        }
    }

    /// Number of taxa held.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Finds the current listing for a scientific name, walking up to the nearest listed
    /// ancestor. Returns `None` for a name that is not a CITES taxon; the listing list is
    /// empty for a taxon with no current listing.
    pub fn listing(&self, scientific_name: &str) -> Option<TaxonListing> {
        let key = name_key(scientific_name);
        let &found = self.by_name.get(&key).or_else(|| {
            // "Crocodylus spp." and similar name a genus or higher taxon.
            let genus = key
                .strip_suffix(" spp.")
                .or_else(|| key.strip_suffix(" spp"))?;
            self.by_name.get(genus)
        })?;
        let mut current = Some(found);
        // There are ten ranks, so a walk up ends within ten steps.
        for _ in 0..RANKS.len() {
            let Some(key) = current else { break };
            if let Some(listings) = self.listings.get(&key) {
                return Some(TaxonListing {
                    listed_taxon: self.full_name(key).unwrap_or_default(),
                    listings: listings.clone(),
                });
            }
            current = self.nodes.get(&key).and_then(|node| node.parent);
        }
        Some(TaxonListing {
            listed_taxon: String::new(),
            listings: Vec::new(),
        })
    }
}

/// Normalises a scientific name for look-up: lower case, single spaces, and no rank words
/// such as `subsp.` or `var.`.
fn name_key(name: &str) -> String {
    name.split_whitespace()
        .filter(|word| !matches!(*word, "subsp." | "ssp." | "var." | "subsp" | "var"))
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the records of a file without the csv crate: lines, after turning lone
    /// carriage returns into line ends, that are not inside a quoted field.
    fn count_records(text: &str) -> usize {
        let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
        let mut records = 0;
        let mut in_quotes = false;
        let mut line_has_text = false;
        for c in normalised.chars() {
            match c {
                '"' => {
                    in_quotes = !in_quotes;
                    line_has_text = true;
                }
                '\n' if !in_quotes => {
                    if line_has_text {
                        records += 1;
                    }
                    line_has_text = false;
                }
                _ => line_has_text = true,
            }
        }
        if line_has_text {
            records += 1;
        }
        // The first record is the header.
        records - 1
    }

    #[test]
    fn every_row_of_every_file_is_read() {
        let files: [(&str, &str); 11] = [
            ("purpose_codes_utf8.csv", PURPOSE_CODES),
            ("source_codes_utf8.csv", SOURCE_CODES),
            ("term_codes_utf8.csv", TERM_CODES),
            ("unit_codes_utf8.csv", UNIT_CODES),
            ("term_unit_pairs_utf8.csv", TERM_UNIT_PAIRS),
            ("countries_utf8.csv", COUNTRIES),
            ("country_codes_en_es_fr_utf8.csv", COUNTRY_NAMES),
            ("animalia_taxa_utf8.csv", ANIMAL_TAXA),
            ("plantae_taxa_utf8.csv", PLANT_TAXA),
            ("animalia_legislation_utf8.csv", ANIMAL_LISTINGS),
            ("plantae_legislation_utf8.csv", PLANT_LISTINGS),
        ];
        let reports = code_lists().reports();
        assert_eq!(reports.len(), files.len());
        for (file, text) in files {
            let report = reports
                .iter()
                .find(|report| report.file == file)
                .unwrap_or_else(|| panic!("{file} was not loaded"));
            assert_eq!(report.rows, count_records(text), "{file}: rows read");
            assert!(report.rejected.is_empty(), "{file}: {:?}", report.rejected);
            let ignored: &[&str] = match file {
                "countries_utf8.csv" => &["S1"],
                "animalia_legislation_utf8.csv" => &[
                    "species 14839",
                    "species 14839",
                    "species 17870",
                    "species 22562",
                    "species 14839",
                    "species 14839",
                ],
                "plantae_legislation_utf8.csv" => &[
                    "genus 192393",
                    "genus 192394",
                    "genus 192395",
                    "species 160608",
                    "species 160608",
                    "species 160608",
                ],
                _ => &[],
            };
            assert_eq!(report.ignored, ignored, "{file}: rows left out");
        }
    }

    #[test]
    fn mac_line_endings_are_split_into_rows() {
        assert!(COUNTRIES.contains('\r'));
        assert!(!COUNTRIES.contains('\n'));
        let lists = code_lists();
        let report = lists
            .reports()
            .iter()
            .find(|report| report.file == "countries_utf8.csv")
            .expect("countries loaded");
        assert!(report.rows > 200, "{} rows", report.rows);
        let swiss = lists
            .country("CH".parse().expect("code"))
            .expect("CH listed");
        assert_eq!(swiss.name, "Switzerland");
    }

    #[test]
    fn code_lists_are_unions_with_origins() {
        let lists = code_lists();
        let term = |code: &str| lists.term(code.parse().expect("term shape"));
        assert_eq!(
            term("LPS").map(|t| t.origin),
            Some(CodeOrigin::SpeciesPlusCodeList)
        );
        assert_eq!(
            term("WHO").map(|t| t.origin),
            Some(CodeOrigin::CitesGuidelines)
        );
        assert_eq!(
            term("FPL").map(|t| t.origin),
            Some(CodeOrigin::SpeciesPlusTermUnitPairs)
        );
        assert_eq!(
            lists.source(SourceCode::X).map(|s| s.origin),
            Some(CodeOrigin::CitesGuidelines)
        );
        let zz = lists
            .country("ZZ".parse().expect("code"))
            .expect("ZZ listed");
        assert_eq!(zz.kind, CountryKind::Aggregate);
    }

    #[test]
    fn every_letter_code_is_on_its_list() {
        let lists = code_lists();
        for code in PurposeCode::ALL {
            assert!(lists.purpose(*code).is_some(), "purpose {code}");
        }
        for code in SourceCode::ALL {
            assert!(lists.source(*code).is_some(), "source {code}");
        }
        assert_eq!(lists.purposes.len(), PurposeCode::ALL.len());
        assert_eq!(lists.sources.len(), SourceCode::ALL.len());
    }

    #[test]
    fn term_unit_pairs_treat_counts_as_specimens() {
        let lists = code_lists();
        let term = |code: &str| code.parse::<TermCode>().expect("term");
        let unit = |code: &str| Some(code.parse::<UnitCode>().expect("unit"));
        let cases = [
            ("LPS", None, true),
            ("LPS", unit("PCS"), true),
            ("LIV", unit("LTR"), false),
            ("CAV", unit("KIL"), true),
            ("CAV", unit("TON"), true),
            ("CAV", unit("SQM"), false),
        ];
        for (term_code, unit_code, allowed) in cases {
            assert_eq!(
                lists.term_unit_allowed(term(term_code), unit_code),
                allowed,
                "{term_code}/{unit_code:?}"
            );
        }
    }

    #[test]
    fn taxa_resolve_to_current_appendix() {
        let taxa = code_lists().taxa();
        assert!(taxa.len() > 25_000, "{} taxa", taxa.len());
        let cases = [
            ("Alligator mississippiensis", vec![Appendix::II]),
            ("Crocodylus siamensis", vec![Appendix::I]),
            ("alligator  MISSISSIPPIENSIS", vec![Appendix::II]),
        ];
        for (name, expected) in cases {
            let listing = taxa
                .listing(name)
                .unwrap_or_else(|| panic!("{name} unknown"));
            assert_eq!(listing.appendices(), expected, "{name}");
        }
        assert_eq!(taxa.listing("Felis catus domesticus"), None);
    }

    #[test]
    fn html_fields_become_plain_text() {
        assert_eq!(
            plain_text("Includes only one species: <i>Heliopora coerulea</i>."),
            "Includes only one species: Heliopora coerulea."
        );
        assert_eq!(plain_text("<p>a) Trade &amp; more<p>"), "a) Trade & more");
    }
}
