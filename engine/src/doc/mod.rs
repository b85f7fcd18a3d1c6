//! Renders a connector's reference documentation as Markdown from a checked `Spec` alone.

use crate::model::Spec;

pub fn render(spec: &Spec) -> String {
    format!("# {}\n", spec.title)
}
