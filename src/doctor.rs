//! `gonogo doctor`: which dependency providers work on this machine. Takes
//! nothing but the environment; gives a [`Diagnosis`] (binaries found and
//! their versions, the account Postgres would run as, whether a Docker
//! daemon answers within its deadline, whether external URLs are set and
//! reachable) and renders it as text, with what to install for each
//! provider that does not work.

use std::fmt::Write as _;
use std::time::Duration;

use crate::deps::docker::{self, DockerStatus};
use crate::deps::embedded::binaries::version_output;
use crate::deps::embedded::{self, BINARIES, BinarySearch, ServerUser};
use crate::deps::{Availability, external};
use crate::scenario::ExternalSpec;

/// One binary the embedded provider needs.
#[derive(Debug, Clone)]
pub struct BinaryCheck {
    pub name: &'static str,
    /// Where it was found, or the error naming the package to install.
    pub found: Result<String, String>,
    /// `--version` output, when it ran.
    pub version: Option<String>,
}

/// One provider and whether it can run here.
#[derive(Debug, Clone)]
pub struct ProviderCheck {
    pub name: &'static str,
    pub works: bool,
    /// Why (not), and what to do about it.
    pub detail: String,
}

/// Everything `doctor` found.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub binaries: Vec<BinaryCheck>,
    /// The account Postgres would run as, or why there is none.
    pub server_user: Result<String, String>,
    pub docker: DockerStatus,
    pub providers: Vec<ProviderCheck>,
    /// promtool (alert-rule checks): version and path, or the install hint.
    pub promtool: Result<String, String>,
}

impl Diagnosis {
    /// Whether at least one provider works.
    pub fn any_works(&self) -> bool {
        self.providers.iter().any(|p| p.works)
    }
}

/// Look at this machine.
pub async fn diagnose() -> Diagnosis {
    let binaries = binaries().await;
    // SAFETY: geteuid cannot fail and has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let server_user = match ServerUser::choose() {
        Ok(user) if root => Ok(format!(
            "running as root; postgres would run as `{}` (uid {})",
            user.name, user.uid
        )),
        Ok(_) => Ok("not root; the servers run as the current user".into()),
        Err(e) => Err(e.to_string()),
    };
    let docker = docker::ping().await;
    let embedded = check("embedded", embedded::availability());
    let docker_check = check("docker", docker::availability(&docker));
    let external = external_check().await;
    Diagnosis {
        binaries,
        server_user,
        docker,
        providers: vec![embedded, docker_check, external],
        promtool: crate::alerts::promtool::diagnose().await,
    }
}

/// Where each binary of the embedded provider is, and its version.
async fn binaries() -> Vec<BinaryCheck> {
    let search = BinarySearch::from_env();
    let mut binaries = Vec::new();
    for name in BINARIES {
        let (found, version) = match search.find(name) {
            Ok(path) => {
                let version = tokio::time::timeout(Duration::from_secs(5), version_output(&path))
                    .await
                    .ok()
                    .and_then(Result::ok);
                (Ok(path.display().to_string()), version)
            }
            Err(e) => (Err(e.to_string()), None),
        };
        binaries.push(BinaryCheck {
            name,
            found,
            version,
        });
    }
    binaries
}

/// A provider's own availability check, as doctor lists it.
fn check(name: &'static str, availability: Availability) -> ProviderCheck {
    ProviderCheck {
        name,
        works: availability.works,
        detail: availability.detail,
    }
}

/// Whether `DATABASE_URL` and `REDIS_URL` are set and accept connections,
/// by the external provider's own check.
async fn external_check() -> ProviderCheck {
    let found = external::diagnose(&ExternalSpec::default()).await;
    let problems: Vec<&String> = found.iter().filter_map(|r| r.as_ref().err()).collect();
    ProviderCheck {
        name: "external",
        works: problems.is_empty(),
        detail: if problems.is_empty() {
            found
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            format!(
                "{} (set both to your servers' URLs to prove against them; the scenario's [external] table can rename them)",
                problems
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        },
    }
}

/// The diagnosis as the terminal shows it.
pub fn render(d: &Diagnosis) -> String {
    let mut out = String::from("binaries (embedded provider):\n");
    for b in &d.binaries {
        let _ = match &b.found {
            Ok(path) => writeln!(
                out,
                "  ok       {:<13} {}  ({path})",
                b.name,
                b.version.as_deref().unwrap_or("version unknown")
            ),
            Err(e) => writeln!(out, "  missing  {:<13} {e}", b.name),
        };
    }
    let _ = match &d.server_user {
        Ok(text) => writeln!(out, "server user:\n  ok       {text}"),
        Err(e) => writeln!(out, "server user:\n  missing  {e}"),
    };
    let _ = writeln!(
        out,
        "docker:\n  {}  {}{}",
        if d.docker.answers() {
            "ok      "
        } else {
            "no      "
        },
        d.docker.describe(),
        if docker::BUILT_IN {
            ""
        } else {
            " (this gonogo was built without docker support)"
        }
    );
    out.push_str("providers:\n");
    for p in &d.providers {
        let _ = writeln!(
            out,
            "  {}  {:<9} {}",
            if p.works { "works   " } else { "no      " },
            p.name,
            p.detail
        );
    }
    let _ = match &d.promtool {
        Ok(text) => writeln!(
            out,
            "tools (alert-rule checks):\n  ok       promtool      {text}"
        ),
        Err(e) => writeln!(
            out,
            "tools (alert-rule checks):\n  missing  promtool      {e}"
        ),
    };
    let _ = writeln!(
        out,
        "{}",
        if d.any_works() {
            "at least one provider works: `gonogo run` can prove a service here"
        } else {
            "no provider works here: install the embedded binaries (`gonogo doctor --install` says how), start Docker, or set DATABASE_URL and REDIS_URL"
        }
    );
    out
}
