//! The JSON Schema of the spec format, generated from the doc-commented `RawSpec` types. Draft-07,
//! because that is what YAML language servers support fully.

use super::raw::RawSpec;
use schemars::generate::SchemaSettings;

/// The schema as pretty JSON with a trailing newline, exactly as `schemas/spec.schema.json` holds it.
pub fn spec_schema_json() -> String {
    draft07_json::<RawSpec>("spec.schema.json", "Connector spec")
}

/// The draft-07 schema of `T` as `schemas/<file>` holds it: pretty JSON with a trailing newline.
pub(crate) fn draft07_json<T: schemars::JsonSchema>(file: &str, title: &str) -> String {
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<T>();
    schema.insert("$id".into(), format!("https://schemas.invalid/engine/{file}").into());
    schema.insert("title".into(), title.into());
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serializes");
    text.push('\n');
    text
}
