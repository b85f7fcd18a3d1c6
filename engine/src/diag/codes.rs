//! The registry of diagnostic codes. A code, once published, keeps its meaning forever: retire a code by
//! leaving it here unused rather than giving its number to something else.
//!
//! Families: `E1xx` file and structure, `E2xx` expressions, templates and JSONPath, `E3xx` HTTP, auth,
//! paging and incremental sync, `E4xx` references between parts of a spec, `E5xx` shapes and indicators,
//! `W6xx` warnings, `E7xx` operator config files (not specs: raised by `config::load`).

use serde::{Serialize, Serializer};

macro_rules! codes {
    ($($variant:ident = $code:literal : $summary:literal,)*) => {
        /// A stable diagnostic code. `engine validate --format json` reports it as a string such as `"E101"`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($variant,)* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// One line on what the code means, used by the reference documentation.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }
        }
    };
}

codes! {
    Unreadable = "E100": "the file cannot be read, is too large, or is not valid YAML",
    UnknownKey = "E101": "a key that this place of the spec does not accept",
    WrongType = "E102": "a value of the wrong type or an invalid value",
    MissingKey = "E103": "a required key is missing",
    Limits = "E104": "the document exceeds a safety limit (size, aliases, nesting)",
    SpecVersion = "E105": "an unsupported spec_version",
    BadName = "E106": "a name (id, resource, shape type, indicator slug) that is not lower snake_case",
    BadDuration = "E107": "a duration that is not a number followed by ms, s, m, h or d",
    Conflict = "E108": "keys that cannot be used together, or a choice that needs exactly one of several keys",
    ExprSyntax = "E200": "an expression that does not parse",
    UnknownFunction = "E201": "an expression calls a function that does not exist",
    UnknownVariable = "E202": "an expression or template reads a variable that is not available there",
    ExprTooComplex = "E203": "an expression that is too long or too deeply nested",
    TemplateSyntax = "E204": "a template with an unbalanced or empty `{}` hole",
    JsonPathSyntax = "E205": "a JSONPath that does not parse",
    BandSyntax = "E206": "a band threshold that is not a comparison such as `>= 95`",
    BadUrl = "E300": "a URL or URL template that is not absolute http(s), or that a template could redirect",
    SecretLeak = "E301": "a secret could reach a place other than the authentication of allowed hosts",
    BadPath = "E302": "a request path that does not start with `/`",
    Paging = "E303": "pagination settings that do not fit together",
    Incremental = "E304": "incremental settings that do not fit together",
    StatusPolicy = "E305": "a status policy that cannot apply",
    UnknownBudget = "E306": "a resource refers to a rate budget that is not defined",
    Retry = "E307": "a retry policy or budget with impossible numbers",
    UnknownConfig = "E400": "a reference to a config field that is not defined",
    UnknownResource = "E401": "a reference to a resource that is not defined",
    FanOutCycle = "E402": "resources whose fan-out forms a cycle",
    ConfigDefault = "E403": "a config default that does not fit its field or depends on itself",
    ConfigField = "E404": "a config field definition that is inconsistent",
    ResourceSelector = "E405": "a resource-selecting list whose values do not match the resources",
    UnknownShapeType = "E500": "an aggregate reads a shape type that no resource emits",
    UnknownAttribute = "E501": "a predicate reads an attribute that the shape type does not have",
    UnknownAggregate = "E502": "a formula or evidence refers to an aggregate that is not defined",
    ShapeConflict = "E503": "two emitters define the same shape type differently",
    AggregateField = "E504": "an aggregate needs a field, or has one it cannot use",
    UnusedConfig = "W600": "a config field that nothing reads",
    NoEmit = "W601": "a resource that emits nothing and feeds no fan-out",
    UnreadResource = "W602": "an indicator fallback names a resource that the indicator does not read",
    ConfigFileKey = "E700": "a config file key or name the spec does not define: a top-level key, config field, KRI or metric",
    ConfigFileValue = "E701": "a config file value that does not fit: type, pattern, range, allowed values, instance name, band threshold, or a computed default that fails its field",
    ConfigFileMissing = "E702": "a config file leaves out a required config field, or a band override its `green`",
    ConfigFileSecret = "E703": "a secret written inline in a config file, or an `env:`/`file:` reference that cannot be resolved",
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} is used twice");
            assert_eq!(text.len(), 4);
            assert!(text.starts_with('E') || text.starts_with('W'));
            assert_eq!(text.starts_with('W'), text.as_bytes()[1] == b'6', "{text}: warnings are W6xx");
        }
    }
}
