//! JSON Schema of the permit's JSON form, generated from the model.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::model::Permit;
use crate::PartyCode;

impl JsonSchema for PartyCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PartyCode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[A-Z]{2}$",
            "description": "ISO 3166-1 alpha-2 country code as CITES uses it, such as CH",
        })
    }
}

/// Returns the JSON Schema (draft 2020-12) of a permit's JSON form.
pub fn permit_json_schema() -> serde_json::Value {
    schemars::schema_for!(Permit).to_value()
}
