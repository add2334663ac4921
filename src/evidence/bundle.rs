//! Which artifacts a run writes, rendered from one [`Evidence`].
//!
//! Renderers here only turn the model into bytes; writing, atomicity and
//! the secret scan live in `write`. `--format` picks among [`Format`]s;
//! `evidence.json` is always written (`gonogo verify` checks the manifest
//! against it), and `manifest.json` is always added last, hashed from the
//! others' bytes.

use super::markdown::{self, TemplateError};
use super::write::Artifact;
use super::{Evidence, junit, manifest, scorecard};

/// One selectable artifact (`--format md,json,junit,scorecard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Format {
    /// `report.md`, the change-ticket report.
    Md,
    /// `evidence.json`, the model (what `gonogo render` reads back).
    Json,
    /// `junit.xml`, for CI test views.
    Junit,
    /// `readiness-scorecard.json`, for release gates.
    Scorecard,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Md, Format::Json, Format::Junit, Format::Scorecard];

    /// The file this format is written to.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Md => "report.md",
            Format::Json => "evidence.json",
            Format::Junit => "junit.xml",
            Format::Scorecard => "readiness-scorecard.json",
        }
    }
}

/// Options that shape the bundle.
#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    /// A report template to use instead of the built-in one.
    pub template: Option<String>,
    /// The artifacts to write; empty means all of them.
    pub formats: Vec<Format>,
}

/// Render every selected artifact of the bundle, then its manifest.
pub fn artifacts(
    evidence: &Evidence,
    options: &BundleOptions,
) -> Result<Vec<Artifact>, BundleError> {
    let mut formats = if options.formats.is_empty() {
        Format::ALL.to_vec()
    } else {
        options.formats.clone()
    };
    // The model is what `verify` checks the manifest's claims against.
    formats.push(Format::Json);
    formats.sort();
    formats.dedup();
    let mut out = Vec::new();
    for format in formats {
        let contents = match format {
            Format::Md => markdown::render(evidence, options.template.as_deref())?.into_bytes(),
            Format::Json => serde_json::to_vec_pretty(evidence)
                .map_err(|e| BundleError::Json(format!("evidence.json: {e}")))?,
            Format::Junit => junit::render(evidence)
                .map_err(|e| BundleError::Junit(e.to_string()))?
                .into_bytes(),
            Format::Scorecard => scorecard::render(evidence)
                .map_err(|e| BundleError::Json(format!("readiness-scorecard.json: {e}")))?,
        };
        out.push(Artifact {
            name: format.file_name().into(),
            contents,
        });
    }
    let manifest = manifest::render(&manifest::manifest(evidence, &out))
        .map_err(|e| BundleError::Json(format!("manifest.json: {e}")))?;
    out.push(Artifact {
        name: manifest::MANIFEST_FILE.into(),
        contents: manifest,
    });
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A user template failed: a usage error.
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("serialize {0}")]
    Json(String),
    #[error("serialize junit.xml: {0}")]
    Junit(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::sample::evidence as sample;

    fn names(formats: Vec<Format>) -> Vec<String> {
        let options = BundleOptions {
            template: None,
            formats,
        };
        artifacts(&sample(), &options)
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect()
    }

    #[test]
    fn all_formats_by_default_and_the_model_and_manifest_always() {
        assert_eq!(
            names(Vec::new()),
            [
                "report.md",
                "evidence.json",
                "junit.xml",
                "readiness-scorecard.json",
                "manifest.json"
            ]
        );
        assert_eq!(
            names(vec![Format::Junit, Format::Junit]),
            ["evidence.json", "junit.xml", "manifest.json"]
        );
    }
}
