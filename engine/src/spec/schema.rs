//! The JSON Schema of the spec format, generated from the doc-commented `RawSpec` types. Draft-07,
//! because that is what YAML language servers support fully.

use super::raw::RawSpec;
use schemars::generate::SchemaSettings;

/// The schema as pretty JSON with a trailing newline, exactly as `schemas/spec.schema.json` holds it.
pub fn spec_schema_json() -> String {
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<RawSpec>();
    schema.insert("$id".into(), "https://schemas.invalid/engine/spec.schema.json".into());
    schema.insert("title".into(), "Connector spec".into());
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serializes");
    text.push('\n');
    text
}
