//! A declarative connector engine. A connector is a YAML spec: the API's endpoints, authentication,
//! paging, incremental cursors, how records map into storage shapes, and key risk indicators as
//! expressions. One generic engine interprets any spec; nothing in this crate knows a vendor.
//!
//! The pipeline, each stage producing the type the next one reads:
//!
//! ```text
//! Source ──load──▶ RawSpec ──validate──▶ Spec (+ every Diagnostic)
//! ```
//!
//! ```
//! use engine::source::Source;
//! use engine::validate::validate;
//!
//! let source = Source::new("demo.yaml", r#"
//! spec_version: 1
//! id: demo
//! title: Demo
//! config:
//!   api_base_url: { type: url, default: "https://api.example.com" }
//! http:
//!   base_url: "{config.api_base_url}"
//! resources:
//!   users:
//!     request: { path: /users }
//!     records: "$.items[*]"
//!     emit:
//!       - entity:
//!           type: demo_user
//!           id: $.id
//!           attributes:
//!             active: $.active
//! kris:
//!   inactive_users:
//!     title: Inactive users
//!     let:
//!       inactive: { count: entity.demo_user, where: "active != true" }
//!     value: inactive
//! "#);
//! let validated = validate(&source);
//! assert!(validated.diagnostics.is_empty());
//! let spec = validated.spec.expect("a valid spec compiles");
//! assert_eq!(spec.resources[0].request.path.source(), "/users");
//! assert_eq!(spec.kris[0].lets[0].type_key, "entity.demo_user");
//!
//! // A broken spec yields every problem at once, each with a code and a place in the file.
//! let broken = Source::new("broken.yaml", source.text.replace("$.items[*]", "$.items[*").replace("active !=", "actve !="));
//! let codes: Vec<&str> = validate(&broken).diagnostics.iter().map(|d| d.code.as_str()).collect();
//! assert_eq!(codes, ["E205", "E501"]);
//! ```

// Diagnostics are returned on cold paths only (a spec that does not load), so their size does not
// matter and boxing them would only add noise at every call site.
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod config;
pub mod diag;
pub mod doc;
pub mod expr;
pub mod http;
pub mod jsonpath;
pub mod kri;
pub mod map;
pub mod model;
pub mod run;
pub mod sandbox;
pub mod source;
pub mod spec;
pub mod store;
pub mod validate;
