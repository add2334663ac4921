//! Which artifacts a run writes, rendered from one [`Evidence`].
//!
//! Renderers here only turn the model into bytes; writing, atomicity and
//! the secret scan live in `write`.

use super::Evidence;
use super::markdown::{self, TemplateError};
use super::write::Artifact;

/// Options that shape the bundle.
#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    /// A report template to use instead of the built-in one.
    pub template: Option<String>,
}

/// Render every artifact of the bundle.
pub fn artifacts(
    evidence: &Evidence,
    options: &BundleOptions,
) -> Result<Vec<Artifact>, BundleError> {
    let report = markdown::render(evidence, options.template.as_deref())?;
    let json = serde_json::to_vec_pretty(evidence).map_err(|e| BundleError::Json(e.to_string()))?;
    Ok(vec![
        Artifact {
            name: "report.md".into(),
            contents: report.into_bytes(),
        },
        Artifact {
            name: "evidence.json".into(),
            contents: json,
        },
    ])
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A user template failed: a usage error.
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("serialize evidence.json: {0}")]
    Json(String),
}
