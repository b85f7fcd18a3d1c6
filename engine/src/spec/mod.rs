//! The spec format: [`raw`] mirrors the YAML, [`load`](mod@load) turns a [`Source`](crate::source::Source) into a
//! `RawSpec` plus every structural diagnostic, and [`schema`] generates the JSON Schema editors use.
//! The checked, compiled form lives in [`crate::validate`].

pub mod load;
pub mod raw;
pub mod schema;

pub use load::load;
pub use raw::RawSpec;
#[cfg(test)]
mod tests;
