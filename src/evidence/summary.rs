//! The CI step summary: the [`Evidence`] in, a compact Markdown block out
//! (verdict, a table of steps, waivers, where the full report and the
//! manifest are), appended to the file `GITHUB_STEP_SUMMARY` names.
//!
//! [`render`] only formats; [`append`] is the one place that writes, and it
//! refuses text holding a known secret, like the bundle writer.
//!
//! Sample:
//!
//! ```text
//! ### ❌ gonogo: NO-GO — reference
//!
//! > 3 of 4 required steps passed; failed: Step 3 (Negative proof (Redis broken, ready 503))
//!
//! | # | Step | Result | Duration | Summary |
//! |---|------|--------|----------|---------|
//! | 1 | Migration gate (Postgres) | PASS | 310 ms | 2 of 2 checks passed |
//! ```

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context;

use super::Evidence;
use super::write::Written;
use crate::verdict::Verdict;
use crate::waiver::WaiverState;

/// Where the summary points the reader.
#[derive(Debug, Clone, Default)]
pub struct SummaryLinks {
    /// The report's path as the run wrote it.
    pub report: String,
    /// The evidence directory, for the `gonogo verify` hint.
    pub dir: String,
    /// SHA-256 of `manifest.json`, so the CI log vouches for the manifest.
    pub manifest_sha256: Option<String>,
    /// The CI run's page, where the uploaded evidence is.
    pub run_url: Option<String>,
    /// The key id that signed the bundle's attestation, when signed.
    pub signed_by: Option<String>,
}

/// The Markdown block for `evidence`.
pub fn render(evidence: &Evidence, links: &SummaryLinks) -> String {
    let mark = match evidence.verdict {
        Verdict::Go => "✅",
        Verdict::NoGo => "❌",
        Verdict::Inconclusive => "⚠️",
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### {mark} gonogo: {} — {}\n",
        evidence.verdict, evidence.scenario.name
    );
    let _ = writeln!(out, "> {}\n", evidence.headline);
    if let Some(release) = &evidence.metadata.release {
        let owner = evidence
            .metadata
            .owner
            .as_ref()
            .map(|o| format!(" (owner: {o})"))
            .unwrap_or_default();
        let _ = writeln!(out, "Release `{release}`{owner}\n");
    }
    out.push_str("| # | Step | Result | Duration | Summary |\n");
    out.push_str("|---|------|--------|----------|---------|\n");
    for step in &evidence.steps {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            step.number,
            cell(&step.title),
            step.status.label(),
            super::appendix::ms(step.duration_ms),
            cell(step.summary.as_str())
        );
    }
    let shown: Vec<_> = evidence
        .waivers
        .iter()
        .filter(|w| w.state != WaiverState::Unused)
        .collect();
    if !shown.is_empty() {
        out.push_str("\n**Waivers**\n\n");
        for w in shown {
            let _ = writeln!(
                out,
                "- `{}` {}: {} (approved by {}, expires {})",
                w.step,
                w.state.label(),
                cell(w.justification.as_str()),
                cell(w.approver.as_str()),
                w.expires
            );
        }
    }
    out.push('\n');
    let _ = write!(out, "Full report: `{}`", links.report);
    if let Some(url) = &links.run_url {
        let _ = write!(out, " (in this run's [evidence artifact]({url}))");
    }
    out.push('\n');
    if let Some(sha) = &links.manifest_sha256 {
        let _ = writeln!(
            out,
            "\nIntegrity: `manifest.json` sha256 `{sha}`; check the bundle with `gonogo verify {}`",
            links.dir
        );
    }
    if let Some(keyid) = &links.signed_by {
        let _ = writeln!(
            out,
            "\nSigned: `{}` (in-toto test-result attestation) by key `{keyid}`; check it with `gonogo verify {} --key gonogo.pub`",
            super::ATTESTATION_FILE,
            links.dir
        );
    }
    out.push('\n');
    out
}

/// Render the summary of a written bundle and append it to `path`.
pub fn publish(
    path: &Path,
    evidence: &Evidence,
    written: &Written,
    run_url: Option<String>,
    signed_by: Option<String>,
    secrets: &crate::mask::SecretTable,
) -> anyhow::Result<()> {
    let manifest_sha256 = super::manifest::sha256_of(&written.dir);
    let links = SummaryLinks {
        report: written.report.display().to_string(),
        dir: written.dir.display().to_string(),
        manifest_sha256,
        run_url,
        signed_by,
    };
    append(path, &render(evidence, &links), secrets)
}

/// Append `text` to the step summary file at `path`, unless it holds one of
/// `secrets` in any encoding.
pub fn append(path: &Path, text: &str, secrets: &crate::mask::SecretTable) -> anyhow::Result<()> {
    if secrets.found_in(text) {
        anyhow::bail!("the step summary holds a secret; it was not written");
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open step summary {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("append to step summary {}", path.display()))
}

fn cell(text: &str) -> String {
    let flat = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace("\r\n", " ")
        .replace('\n', " ");
    if flat.is_empty() { "—".into() } else { flat }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::sample::evidence as sample;

    #[test]
    fn names_verdict_steps_waivers_and_the_report() {
        let text = render(
            &sample(),
            &SummaryLinks {
                report: "evidence/x/report.md".into(),
                dir: "evidence/x".into(),
                manifest_sha256: Some("feed".into()),
                run_url: Some("https://ci.example/run/1".into()),
                signed_by: Some("SHA256:beef".into()),
            },
        );
        assert!(text.starts_with("### ❌ gonogo: NO-GO — sample"), "{text}");
        assert!(text.contains("| 4 | Title of d-step | WAIVED |"), "{text}");
        assert!(text.contains("`d-step` applied: known issue"), "{text}");
        assert!(text.contains("`b-step` expired"), "{text}");
        assert!(text.contains("&lt;script&gt;"), "{text}");
        assert!(text.contains("`evidence/x/report.md`"), "{text}");
        assert!(text.contains("sha256 `feed`"), "{text}");
        assert!(text.contains("by key `SHA256:beef`"), "{text}");
    }

    #[test]
    fn append_refuses_secrets_and_appends_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        std::fs::write(&path, "before\n").unwrap();
        let secrets = crate::mask::SecretTable::of(&["s3cretvalue"]);
        append(&path, "after\n", &secrets).unwrap();
        assert!(append(&path, "a s3cretvalue\n", &secrets).is_err());
        assert!(append(&path, "a czNjcmV0dmFsdWU=\n", &secrets).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "before\nafter\n");
    }
}
