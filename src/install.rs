//! `gonogo doctor --install`: what this machine lacks for a proof, and the
//! package manager's command that installs it. Takes the binary search
//! path, whether an unprivileged account for Postgres exists, and the
//! package managers on `PATH`; gives an [`InstallPlan`] that [`render`]
//! prints and [`execute`] runs (with `--yes`, through apt-get only).
//!
//! It mirrors `scripts/install-deps`, which does the same before gonogo is
//! built, so a service's repository needs no copy of gonogo's scripts.
//!
//! Sample:
//!
//! ```text
//! present  postgres      /usr/lib/postgresql/15/bin/initdb, /usr/lib/postgresql/15/bin/postgres
//! missing  redis-server  no `redis-server`: the Redis server the embedded provider starts
//! package manager: apt-get (Debian, Ubuntu)
//! install with:
//!   sudo apt-get update -qq
//!   sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
//! ```

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::Duration;

use crate::deps::embedded::{BinarySearch, ServerUser};
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::process::{ChildGuard, GuardOptions};

/// How long one install command (an `apt-get update`, an `apt-get install`)
/// may take before it is stopped.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// Something a proof needs from the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// `initdb` and `postgres` (and the `postgres` account a root run uses).
    Postgres,
    /// `redis-server`.
    Redis,
    /// `promtool`, for the Prometheus alert-rule checks.
    Promtool,
}

impl Component {
    /// Every component, in the order they are reported.
    pub const ALL: [Component; 3] = [Component::Postgres, Component::Redis, Component::Promtool];

    /// The name users know it by.
    pub fn label(self) -> &'static str {
        match self {
            Component::Postgres => "postgres",
            Component::Redis => "redis-server",
            Component::Promtool => "promtool",
        }
    }

    /// What gonogo uses it for.
    pub fn purpose(self) -> &'static str {
        match self {
            Component::Postgres => "initdb and postgres, for the embedded provider's Postgres",
            Component::Redis => "the Redis server the embedded provider starts",
            Component::Promtool => "checks Prometheus alert rules",
        }
    }
}

/// Whether one component is here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentCheck {
    pub component: Component,
    /// Where it was found, or why it counts as missing.
    pub found: std::result::Result<String, String>,
}

/// A package manager gonogo knows the package names for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackageManager {
    /// Debian, Ubuntu: the one gonogo runs itself (and CI tests).
    Apt,
    /// Fedora, RHEL.
    Dnf,
    /// Alpine.
    Apk,
    /// Homebrew (on Linux; gonogo itself needs Linux).
    Brew,
}

impl PackageManager {
    /// In the order they are looked for.
    pub const ALL: [PackageManager; 4] = [
        PackageManager::Apt,
        PackageManager::Dnf,
        PackageManager::Apk,
        PackageManager::Brew,
    ];

    /// Its command.
    pub fn program(self) -> &'static str {
        match self {
            PackageManager::Apt => "apt-get",
            PackageManager::Dnf => "dnf",
            PackageManager::Apk => "apk",
            PackageManager::Brew => "brew",
        }
    }

    /// Where it is found.
    pub fn systems(self) -> &'static str {
        match self {
            PackageManager::Apt => "Debian, Ubuntu",
            PackageManager::Dnf => "Fedora, RHEL",
            PackageManager::Apk => "Alpine",
            PackageManager::Brew => "Homebrew",
        }
    }

    /// The first package manager on the search path.
    pub fn detect(search: &BinarySearch) -> Option<PackageManager> {
        PackageManager::ALL
            .into_iter()
            .find(|m| search.find(m.program()).is_ok())
    }

    /// The package that provides `component`, when this manager has one.
    pub fn package(self, component: Component) -> Option<&'static str> {
        use Component::*;
        use PackageManager::*;
        match (self, component) {
            (Apt, Postgres) => Some("postgresql"),
            (Apt, Redis) => Some("redis-server"),
            (Apt, Promtool) => Some("prometheus"),
            (Dnf, Postgres) => Some("postgresql-server"),
            (Dnf, Redis) => Some("redis"),
            (Dnf, Promtool) => None,
            (Apk, Postgres) => Some("postgresql16"),
            (Apk, Redis) => Some("redis"),
            (Apk, Promtool) => Some("prometheus"),
            (Brew, Postgres) => Some("postgresql@16"),
            (Brew, Redis) => Some("redis"),
            (Brew, Promtool) => Some("prometheus"),
        }
    }

    /// Whether a system package manager needs root (Homebrew refuses it).
    fn needs_root(self) -> bool {
        self != PackageManager::Brew
    }

    /// The commands that install `packages`, without any `sudo`.
    fn commands(self, packages: &[&str], machine: Machine) -> Vec<InstallStep> {
        let with = |head: &[&str]| InstallStep::required(&[head, packages].concat());
        match self {
            PackageManager::Apt => apt_commands(packages, machine),
            PackageManager::Dnf => vec![with(&["dnf", "install", "-y"])],
            PackageManager::Apk => vec![with(&["apk", "add", "--no-cache"])],
            PackageManager::Brew => vec![with(&["brew", "install"])],
        }
    }

    /// What the printed commands do not say.
    fn notes(self, missing: &[Component], machine: Machine) -> Vec<String> {
        let mut notes = Vec::new();
        if self == PackageManager::Apt && missing.contains(&Component::Promtool) {
            notes.push(format!(
                "promtool comes in the prometheus package, installed without recommends; {} keeps its server from starting{}",
                if machine.policy_rc_d {
                    format!("this machine's {POLICY_RC_D} decides whether the install")
                } else {
                    format!("a temporary {POLICY_RC_D}")
                },
                if machine.systemd { ", and systemctl disables it" } else { "" }
            ));
        }
        if self != PackageManager::Apt {
            notes.push(format!(
                "gonogo runs only apt-get itself and is tested with it; check these {} package names against your release",
                self.program()
            ));
        }
        if self == PackageManager::Dnf && missing.contains(&Component::Promtool) {
            notes.push(
                "promtool: take it from the Prometheus release tarball (prometheus.io/download) and put it on PATH".into(),
            );
        }
        if self == PackageManager::Brew {
            notes.push("gonogo runs on Linux; postgresql@16 is keg-only: put `$(brew --prefix postgresql@16)/bin` on PATH".into());
        }
        notes
    }
}

/// Debian's hook that lets a package's install start its service, or not.
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

/// apt-get: the servers with their recommends; the prometheus package
/// (for promtool) without, its server kept from starting, as
/// `scripts/install-deps` does.
fn apt_commands(packages: &[&str], machine: Machine) -> Vec<InstallStep> {
    let install = [
        "env",
        "DEBIAN_FRONTEND=noninteractive",
        "apt-get",
        "install",
        "-y",
        "-qq",
    ];
    let (prometheus, others): (Vec<&str>, Vec<&str>) =
        packages.iter().partition(|p| **p == "prometheus");
    let mut steps = vec![InstallStep::required(&["apt-get", "update", "-qq"])];
    if !others.is_empty() {
        steps.push(InstallStep::required(&[&install[..], &others].concat()));
    }
    if prometheus.is_empty() {
        return steps;
    }
    let deny =
        format!("printf '#!/bin/sh\\nexit 101\\n' > {POLICY_RC_D} && chmod 755 {POLICY_RC_D}");
    if !machine.policy_rc_d {
        steps.push(InstallStep::required(&["sh", "-c", &deny]));
    }
    let no_recommends = ["--no-install-recommends", "prometheus"];
    steps.push(InstallStep::required(
        &[&install[..], &no_recommends].concat(),
    ));
    if !machine.policy_rc_d {
        steps.push(InstallStep::new(
            &["rm", "-f", POLICY_RC_D],
            StepKind::Cleanup,
        ));
    }
    if machine.systemd {
        let disable = ["systemctl", "disable", "--now", "prometheus"];
        steps.push(InstallStep::new(&disable, StepKind::BestEffort));
    }
    steps
}

/// How a failed step affects the rest of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// Must succeed; after a failure no further `Required` step runs.
    Required,
    /// Undoes an earlier step, so it runs even after a failure.
    Cleanup,
    /// Reported when it fails, never fatal.
    BestEffort,
}

/// One command of a plan, without `sudo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallStep {
    pub argv: Vec<String>,
    pub kind: StepKind,
}

impl InstallStep {
    fn new(argv: &[&str], kind: StepKind) -> InstallStep {
        InstallStep {
            argv: argv.iter().map(|a| (*a).to_string()).collect(),
            kind,
        }
    }

    fn required(argv: &[&str]) -> InstallStep {
        InstallStep::new(argv, StepKind::Required)
    }
}

/// What about this machine shapes the commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Machine {
    pub root: bool,
    pub has_sudo: bool,
    /// A `policy-rc.d` exists already; it is then left as it is.
    pub policy_rc_d: bool,
    /// systemd runs here (`/run/systemd/system`).
    pub systemd: bool,
}

impl Machine {
    /// This machine.
    pub fn here(search: &BinarySearch) -> Machine {
        Machine {
            // SAFETY: geteuid cannot fail and has no preconditions.
            root: unsafe { libc::geteuid() } == 0,
            has_sudo: search.find("sudo").is_ok(),
            policy_rc_d: std::path::Path::new(POLICY_RC_D).exists(),
            systemd: std::path::Path::new("/run/systemd/system").is_dir(),
        }
    }
}

/// What is missing and how to install it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallPlan {
    pub checks: Vec<ComponentCheck>,
    pub manager: Option<PackageManager>,
    /// Prefix each command with `sudo` (not root, and the manager needs it).
    pub sudo: bool,
    /// The install commands; empty when nothing is missing.
    pub commands: Vec<InstallStep>,
    /// Caveats for this manager.
    pub notes: Vec<String>,
}

impl InstallPlan {
    /// The missing components.
    pub fn missing(&self) -> Vec<Component> {
        self.checks
            .iter()
            .filter(|c| c.found.is_err())
            .map(|c| c.component)
            .collect()
    }

    /// Whether gonogo can run the commands itself (`--yes`).
    pub fn runnable(&self) -> bool {
        self.manager == Some(PackageManager::Apt) && !self.commands.is_empty()
    }
}

/// Whether each component is present: binaries through `search`, and for
/// Postgres also the account a root run would use (`server_user`).
pub fn check(
    search: &BinarySearch,
    server_user: std::result::Result<(), String>,
) -> Vec<ComponentCheck> {
    Component::ALL
        .into_iter()
        .map(|component| {
            let not_found = |e: crate::deps::embedded::MissingBinary| format!("no `{}`", e.binary);
            let found = match component {
                Component::Postgres => {
                    crate::deps::embedded::binaries::PostgresBinaries::find(search)
                        .map(|b| format!("{}, {}", b.initdb.display(), b.postgres.display()))
                        .map_err(not_found)
                        .and_then(|found| server_user.clone().map(|()| found))
                }
                Component::Redis => search
                    .find("redis-server")
                    .map(|p| p.display().to_string())
                    .map_err(not_found),
                Component::Promtool => search
                    .find("promtool")
                    .map(|p| p.display().to_string())
                    .map_err(not_found),
            };
            ComponentCheck { component, found }
        })
        .collect()
}

/// The plan for `checks` with `manager` on `machine`.
pub fn plan(
    checks: Vec<ComponentCheck>,
    manager: Option<PackageManager>,
    machine: Machine,
) -> InstallPlan {
    let missing: Vec<Component> = checks
        .iter()
        .filter(|c| c.found.is_err())
        .map(|c| c.component)
        .collect();
    let (commands, notes, sudo) = match manager {
        Some(m) if !missing.is_empty() => {
            let mut packages: Vec<&str> = missing.iter().filter_map(|c| m.package(*c)).collect();
            packages.dedup();
            let commands = if packages.is_empty() {
                Vec::new()
            } else {
                m.commands(&packages, machine)
            };
            let mut notes = m.notes(&missing, machine);
            let sudo = m.needs_root() && !machine.root;
            if sudo && !machine.has_sudo {
                notes.push("these need root: run them as root (sudo is not installed here)".into());
            }
            (commands, notes, sudo)
        }
        _ => (Vec::new(), Vec::new(), false),
    };
    InstallPlan {
        checks,
        manager,
        sudo,
        commands,
        notes,
    }
}

/// The plan for this machine.
pub fn plan_here() -> InstallPlan {
    let search = BinarySearch::from_env();
    let server_user = ServerUser::choose().map(|_| ()).map_err(|e| e.to_string());
    let checks = check(&search, server_user);
    plan(
        checks,
        PackageManager::detect(&search),
        Machine::here(&search),
    )
}

/// One command as a shell line, with `sudo` when the plan needs it.
pub fn shell_line(plan: &InstallPlan, argv: &[String]) -> String {
    let words = argv.iter().map(|a| crate::service::shell_quote(a));
    let line = words.collect::<Vec<_>>().join(" ");
    if plan.sudo {
        format!("sudo {line}")
    } else {
        line
    }
}

/// The plan as the terminal shows it.
pub fn render(plan: &InstallPlan) -> String {
    let mut out = String::new();
    for c in &plan.checks {
        let _ = match &c.found {
            Ok(path) => writeln!(out, "present  {:<13} {path}", c.component.label()),
            Err(why) => writeln!(
                out,
                "missing  {:<13} {why}: {}",
                c.component.label(),
                c.component.purpose()
            ),
        };
    }
    let missing = plan.missing();
    if missing.is_empty() {
        out.push_str("nothing to install\n");
        return out;
    }
    let Some(manager) = plan.manager else {
        let _ = writeln!(
            out,
            "no known package manager (apt-get, dnf, apk, brew) on PATH: install {} with your system's tools",
            missing
                .iter()
                .map(|c| c.label())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return out;
    };
    let _ = writeln!(
        out,
        "package manager: {} ({})",
        manager.program(),
        manager.systems()
    );
    if !plan.commands.is_empty() {
        out.push_str("install with:\n");
        for step in &plan.commands {
            let _ = writeln!(out, "  {}", shell_line(plan, &step.argv));
        }
    }
    for note in &plan.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// Run the plan's commands in order, their output going straight to the
/// terminal. After a failure only cleanup steps run; a best-effort step's
/// failure is only reported.
pub async fn execute(plan: &InstallPlan) -> std::result::Result<(), String> {
    let mut failed: Option<String> = None;
    for step in &plan.commands {
        if failed.is_some() && step.kind != StepKind::Cleanup {
            continue;
        }
        if let Err(e) = run_step(plan, step).await {
            match step.kind {
                StepKind::BestEffort => say(&format!("gonogo doctor --install: ignored: {e}")),
                _ => failed = failed.or(Some(e)),
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

/// One command under a guard with [`COMMAND_DEADLINE`]. `sudo` runs with
/// `-n`: a password prompt would hang a CI job.
async fn run_step(plan: &InstallPlan, step: &InstallStep) -> std::result::Result<(), String> {
    let line = shell_line(plan, &step.argv);
    let mut full: Vec<&str> = Vec::new();
    if plan.sudo {
        full.extend(["sudo", "-n"]);
    }
    full.extend(step.argv.iter().map(String::as_str));
    say(&format!("gonogo doctor --install: running {line}"));
    let mut command = tokio::process::Command::new(full[0]);
    command
        .args(&full[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut guard = ChildGuard::spawn(full[0], command, GuardOptions::default())
        .map_err(|e| format!("start `{line}`: {e}"))?;
    let status = guard
        .wait_timeout(COMMAND_DEADLINE)
        .await
        .map_err(|e| format!("wait for `{line}`: {e}"))?;
    let Some(status) = status else {
        let _ = guard.stop().await;
        return Err(format!(
            "`{line}` did not finish within {} min; it was stopped",
            COMMAND_DEADLINE.as_secs() / 60
        ));
    };
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{line}` failed ({status})"))
    }
}

/// One line to stdout; a closed stdout is not worth a panic.
fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// `gonogo doctor --install [--yes]`: print the plan; with `yes`, run it
/// and check again. Exits 0 when nothing is missing (any more), 3 when
/// something still is.
pub async fn main(yes: bool) -> Result<i32> {
    let plan = plan_here();
    say(render(&plan).trim_end());
    if plan.missing().is_empty() {
        return Ok(exit_codes::GO);
    }
    if !yes {
        if plan.runnable() {
            say(
                "run them, or `gonogo doctor --install --yes` to have gonogo run them (as root, or with sudo that needs no password)",
            );
        }
        return Ok(exit_codes::HARNESS);
    }
    if !plan.runnable() {
        let why = match plan.manager {
            None => "nothing was installed: gonogo knows no package manager here",
            Some(_) => "--yes runs apt-get only; run the commands above yourself",
        };
        return Err(Error::Harness(anyhow::anyhow!(why)));
    }
    execute(&plan)
        .await
        .map_err(|e| Error::Harness(anyhow::anyhow!("{e}")))?;
    let after = plan_here();
    let still: Vec<&str> = after.missing().iter().map(|c| c.label()).collect();
    if still.is_empty() {
        say("installed; nothing is missing now");
        Ok(exit_codes::GO)
    } else {
        Err(Error::Harness(anyhow::anyhow!(
            "still missing after the install: {}",
            still.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of empty executables named `names`, as a search path.
    fn bin_dir(names: &[&str]) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        for name in names {
            let path = dir.path().join(name);
            std::fs::write(&path, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        dir
    }

    fn search(dir: &tempfile::TempDir) -> BinarySearch {
        BinarySearch::new(dir.path(), dir.path().join("no-postgres-libs"))
    }

    fn user() -> Machine {
        Machine {
            has_sudo: true,
            ..Machine::default()
        }
    }

    fn root() -> Machine {
        Machine {
            root: true,
            ..Machine::default()
        }
    }

    fn lines(plan: &InstallPlan) -> Vec<String> {
        plan.commands
            .iter()
            .map(|step| shell_line(plan, &step.argv))
            .collect()
    }

    #[test]
    fn an_empty_machine_with_apt_gets_every_debian_package() {
        let dir = bin_dir(&["apt-get"]);
        let checks = check(&search(&dir), Ok(()));
        let plan = plan(checks, PackageManager::detect(&search(&dir)), user());
        assert_eq!(
            plan.missing(),
            vec![Component::Postgres, Component::Redis, Component::Promtool]
        );
        assert!(plan.runnable());
        assert_eq!(
            lines(&plan),
            [
                "sudo apt-get update -qq",
                "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server",
                r"sudo sh -c 'printf '\''#!/bin/sh\nexit 101\n'\'' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'",
                "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus",
                "sudo rm -f /usr/sbin/policy-rc.d",
            ]
        );
        let kinds: Vec<StepKind> = plan.commands.iter().map(|s| s.kind).collect();
        assert_eq!(kinds[4], StepKind::Cleanup);
        assert!(render(&plan).contains("a temporary /usr/sbin/policy-rc.d keeps its server"));
    }

    #[test]
    fn promtool_alone_keeps_the_machines_policy_and_disables_the_server_under_systemd() {
        let dir = bin_dir(&["apt-get", "initdb", "postgres", "redis-server"]);
        let machine = Machine {
            root: true,
            policy_rc_d: true,
            systemd: true,
            ..Machine::default()
        };
        let plan = plan(
            check(&search(&dir), Ok(())),
            Some(PackageManager::Apt),
            machine,
        );
        assert_eq!(plan.missing(), vec![Component::Promtool]);
        assert!(!plan.sudo);
        assert_eq!(
            lines(&plan),
            [
                "apt-get update -qq",
                "env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus",
                "systemctl disable --now prometheus",
            ]
        );
        assert_eq!(plan.commands[2].kind, StepKind::BestEffort);
        let text = render(&plan);
        assert!(text.contains("present  redis-server"), "{text}");
        assert!(
            text.contains("this machine's /usr/sbin/policy-rc.d decides"),
            "{text}"
        );
    }

    #[test]
    fn a_root_run_without_a_postgres_account_installs_postgresql() {
        let dir = bin_dir(&["initdb", "postgres", "redis-server", "promtool"]);
        let checks = check(&search(&dir), Err("no account".into()));
        let plan = plan(checks, Some(PackageManager::Apt), root());
        assert_eq!(plan.missing(), vec![Component::Postgres]);
        assert_eq!(
            lines(&plan)[1],
            "env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql"
        );
    }

    #[test]
    fn nothing_missing_means_nothing_to_run() {
        let dir = bin_dir(&["initdb", "postgres", "redis-server", "promtool", "apt-get"]);
        let plan = plan(
            check(&search(&dir), Ok(())),
            Some(PackageManager::Apt),
            user(),
        );
        assert!(plan.commands.is_empty());
        assert!(!plan.runnable());
        assert!(render(&plan).ends_with("nothing to install\n"));
    }

    #[test]
    fn other_managers_are_printed_with_their_caveats_and_not_run() {
        for (manager, expect) in [
            (
                PackageManager::Dnf,
                "dnf install -y postgresql-server redis",
            ),
            (
                PackageManager::Apk,
                "apk add --no-cache postgresql16 redis prometheus",
            ),
            (
                PackageManager::Brew,
                "brew install postgresql@16 redis prometheus",
            ),
        ] {
            let dir = bin_dir(&[]);
            let plan = plan(check(&search(&dir), Ok(())), Some(manager), user());
            let text = render(&plan);
            assert!(text.contains(expect), "{text}");
            assert!(!plan.runnable(), "{text}");
            assert!(text.contains("gonogo runs only apt-get itself"), "{text}");
            assert_eq!(plan.sudo, manager != PackageManager::Brew);
        }
        let dir = bin_dir(&[]);
        let dnf = render(&plan(
            check(&search(&dir), Ok(())),
            Some(PackageManager::Dnf),
            root(),
        ));
        assert!(
            dnf.contains("promtool: take it from the Prometheus release tarball"),
            "{dnf}"
        );
    }

    #[test]
    fn without_a_package_manager_it_names_what_to_install() {
        let dir = bin_dir(&[]);
        let plan = plan(check(&search(&dir), Ok(())), None, Machine::default());
        let text = render(&plan);
        assert!(
            text.contains(
                "no known package manager (apt-get, dnf, apk, brew) on PATH: install postgres, redis-server, promtool"
            ),
            "{text}"
        );
        assert!(plan.commands.is_empty());
    }

    #[test]
    fn a_user_without_sudo_is_told_to_use_root() {
        let dir = bin_dir(&[]);
        let plan = plan(
            check(&search(&dir), Ok(())),
            Some(PackageManager::Apt),
            Machine::default(),
        );
        assert!(render(&plan).contains("run them as root (sudo is not installed here)"));
    }

    /// The cleanup step runs after a failed install, and a best-effort
    /// step's failure does not fail the plan (real commands: `false`).
    #[tokio::test]
    async fn after_a_failure_only_cleanup_runs() {
        let dir = tempfile::tempdir().expect("temp dir");
        let marker = dir.path().join("cleaned");
        let touch = format!("touch {}", marker.display());
        let plan = InstallPlan {
            checks: Vec::new(),
            manager: Some(PackageManager::Apt),
            sudo: false,
            commands: vec![
                InstallStep::required(&["false"]),
                InstallStep::required(&["sh", "-c", "exit 7"]),
                InstallStep::new(&["sh", "-c", &touch], StepKind::Cleanup),
            ],
            notes: Vec::new(),
        };
        let err = execute(&plan).await.expect_err("false fails");
        assert!(err.contains("`false` failed"), "{err}");
        assert!(marker.exists(), "the cleanup step ran");
        let plan = InstallPlan {
            commands: vec![
                InstallStep::new(&["false"], StepKind::BestEffort),
                InstallStep::required(&["true"]),
            ],
            ..plan
        };
        assert_eq!(execute(&plan).await, Ok(()));
    }
}
