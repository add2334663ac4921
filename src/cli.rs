//! Command line: parses arguments, runs the command, and turns the result
//! into an exit code. Errors are printed here and nowhere else.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use p256::elliptic_curve::zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::evidence::bundle::Format;
use crate::exit_codes;
use crate::progress::TerminalReporter;
use crate::run::RunOptions;
use crate::scenario;

const ABOUT: &str = "Prove a service's readiness contract against real Postgres and Redis, \
and write a masked audit-trail report whose exit code gates a release.";

const AFTER_HELP: &str = "\
Examples:
  gonogo run scenarios/reference.toml
      Start private Postgres and Redis, run the proof (migrations, ready,
      negative proof, fail-fast, latency, shutdown, gauge, runtime faults),
      write evidence/<UTC time>-reference/, exit 0 on GO.
  gonogo run scenarios/*.toml -j 2
      Prove several services side by side, each with its own servers.
  gonogo validate scenarios/*.toml
      Check scenario files without running anything.
  gonogo verify evidence/20260301T100000Z-reference --key gonogo.pub
      Check that an evidence bundle still matches its manifest.json and
      carries a valid signature; print its verdict, subjects and steps.
  gonogo keygen --out ~/.config/gonogo
      Make a signing key pair for `gonogo run --sign-key`.
  gonogo verify evidence/20260301T100000Z-reference
      Check that an evidence bundle still matches its manifest.json.
  gonogo stop /dev/shm/gonogo-1234-AbCdEfGh
      Stop the servers a `run --keep` left, and remove their directory.

Exit codes:
  0 GO   1 NO-GO   2 usage or scenario error   3 harness or infrastructure error
  4 INCONCLUSIVE (a required step could not run)   5 TAMPERED (verify)
  101 gonogo panicked (a bug)   130 interrupted";

#[derive(Debug, Parser)]
#[command(name = "gonogo", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a proof and write its evidence.
    #[command(after_help = "\
Examples:
  gonogo run scenarios/reference.toml
  gonogo run scenarios/reference.toml --out /tmp/evidence --operator alice
  gonogo run scenarios/reference.toml --env FEATURE_X=1 --environment staging
  gonogo run scenarios/reference.toml --keep      # leave servers up; prints `gonogo stop DIR`
  gonogo run scenarios/reference.toml --deadline 10m   # exit 3 if the proof takes longer
  gonogo run scenarios/*.toml -j 2                 # several proofs at once
  gonogo run scenarios/reference.toml --serial     # one step after another, for debugging
  gonogo run scenarios/reference.toml --deps external   # DATABASE_URL / REDIS_URL
  gonogo run scenarios/reference.toml --service-url http://127.0.0.1:8080
  gonogo run scenarios/reference.toml --sign-key gonogo.key \\
      --subject ghcr.io/acme/api@sha256:<64 hex>    # signed in-toto attestation

The verdict line goes to stdout; progress goes to stderr.
Exit codes: 0 GO, 1 NO-GO, 2 bad scenario or usage, 3 harness error,
4 INCONCLUSIVE, 130 interrupted. With several scenarios, the worst wins.")]
    Run(RunArgs),
    /// Show which dependency providers work on this machine, or install
    /// what they need (--install).
    #[command(after_help = "\
Examples:
  gonogo doctor
  gonogo doctor --install          # print the command that installs what is missing
  gonogo doctor --install --yes    # and run it (apt-get; as root, or through sudo -n)

Lists initdb, postgres and redis-server with their versions, the account
Postgres would run as, whether a Docker daemon answers GET /_ping within
2 s, and whether DATABASE_URL and REDIS_URL are set and reachable; says
what to install for each provider that does not work.
Exits 0 when at least one provider works, 3 otherwise.

--install checks initdb, postgres, redis-server and promtool (and, as root,
an account for Postgres), and prints the package manager's command for
what is missing: apt-get on Debian and Ubuntu, dnf, apk or brew elsewhere.
--yes runs it (apt-get only; as root, or through sudo -n, which must not
need a password). Exits 0 when nothing is missing (any more), 3 otherwise.")]
    Doctor(DoctorArgs),
    /// Write a commented starter scenario for your service.
    #[command(after_help = "\
Examples:
  gonogo init --command 'uvicorn server:app --port {{port}}' \\
      --ready-path /api/ready --live-path /api/live --version-path /api/version \\
      --migrate 'alembic upgrade head' --current 'alembic current' \\
      --out scenarios/backend.toml

The scenario is checked before it is written, so it passes
`gonogo validate`. Existing files are kept unless --force is given.
Walkthrough: docs/own-service.md.")]
    Init(InitArgs),
    /// Check scenario files without running them.
    #[command(after_help = "\
Examples:
  gonogo validate scenarios/reference.toml
  gonogo validate scenarios/*.toml

Exits 0 when every file is valid, 2 otherwise, naming file, line and field.")]
    Validate {
        /// Scenario files to check.
        #[arg(required = true, value_name = "SCENARIO")]
        scenarios: Vec<PathBuf>,
    },
    /// Check an evidence bundle: its files, its manifest and its signature.
    #[command(after_help = VERIFY_HELP)]
    Verify(VerifyArgs),
    /// Make a signing key pair (ECDSA P-256) for `gonogo run --sign-key`.
    #[command(after_help = "\
Examples:
  gonogo keygen --out ~/.config/gonogo
  gonogo keygen --out ci-keys --force        # replace an existing pair

Writes DIR/gonogo.key (PKCS#8 PEM, mode 0600: keep it secret, e.g. in the
CI secret store as GONOGO_SIGNING_KEY) and DIR/gonogo.pub (SPKI PEM: give
it to whoever verifies). Prints the key id, SHA256:<hex of the public
key's DER>. Existing files are kept unless --force is given.")]
    Keygen {
        /// The directory to write gonogo.key and gonogo.pub into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Replace an existing key pair.
        #[arg(long)]
        force: bool,
    },
    /// Re-render a report from a stored evidence.json, without re-running.
    #[command(after_help = "\
Examples:
  gonogo render evidence/20260301T100000Z-reference/evidence.json --template cab.md.j2
  gonogo render evidence/.../evidence.json --out ticket.md

The template sees the same model as the built-in one, which is compiled into
the binary (src/evidence/report.md.j2 in gonogo's repository).
Writes to stdout unless --out is given.")]
    Render {
        /// A stored evidence.json.
        #[arg(value_name = "EVIDENCE_JSON")]
        evidence: PathBuf,
        /// A minijinja template; the built-in report template by default.
        #[arg(long, value_name = "FILE")]
        template: Option<PathBuf>,
        /// Write the report here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Stop the servers a `run --keep` left running, and remove their directory.
    #[command(after_help = "\
Examples:
  gonogo run scenarios/reference.toml --keep
      ... kept      servers still running; their URLs, with passwords, are in
          /dev/shm/gonogo-1234-AbCdEfGh/connection.env ...
  set -a; . /dev/shm/gonogo-1234-AbCdEfGh/connection.env; set +a   # DATABASE_URL, REDIS_URL
  gonogo stop /dev/shm/gonogo-1234-AbCdEfGh

Stops each server recorded in DIR/pids, if it is still the same process
(pid and start time): Postgres with SIGINT (fast shutdown, as pg_ctl stop
-m fast), Redis with SIGTERM; waits up to 10 s, ends whatever is left of
their process trees (SIGTERM, then SIGKILL), then removes DIR with its
connection.env. Exits 0 when done, 2 when DIR was not left by --keep,
3 when something could not be stopped or removed.")]
    Stop {
        /// The directory `run --keep` printed.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Internal: the watchdog that ends gonogo's process tree if gonogo is
    /// killed (see src/process/watchdog.rs).
    #[command(name = "__watchdog", hide = true)]
    Watchdog {
        /// The gonogo process to watch (the watchdog's parent).
        parent: u32,
    },
}

const VERIFY_HELP: &str = "\
Examples:
  gonogo verify evidence/20260301T100000Z-reference
  gonogo verify evidence/20260301T100000Z-reference --key gonogo.pub
  gonogo verify DIR --key gonogo.pub --expect-manifest-sha256 39f9…

Checks every file against its SHA-256 in manifest.json (nothing missing,
nothing added but attestation.intoto.jsonl); that the manifest's verdict,
times, scenario and git SHA agree with evidence.json, whose verdict must
follow from its steps; and, for a signed bundle, that the attestation
names this manifest. Reads only regular files, each at most 64 MiB.

The hashes alone cannot catch someone who edits a report and recomputes
every hash: only a signature can. Pass --key with the signer's public key
to check it; without --key a signed bundle is reported as signed but not
checked, and an unsigned one as unsigned. A release gate should always
pass --key (or at least --expect-manifest-sha256 with the SHA-256 the CI
run published).

Prints the verdict, subjects, signer, time and each step's result, then
one line: ok, or TAMPERED. Exits 0 when intact, 5 naming each difference
(a missing manifest included), 2 for a bad --key or a directory that is
not a bundle, 3 when a file cannot be read.";

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The evidence directory (the one holding manifest.json).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The signer's public key (SPKI PEM, e.g. gonogo.pub or cosign.pub):
    /// the bundle must carry a valid signature by it.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// The SHA-256 manifest.json must have (as the CI run published it).
    #[arg(long, value_name = "HEX", value_parser = parse_sha256)]
    expect_manifest_sha256: Option<String>,
}

fn parse_sha256(text: &str) -> std::result::Result<String, String> {
    let hex = text
        .strip_prefix("sha256:")
        .unwrap_or(text)
        .to_ascii_lowercase();
    if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(format!("`{text}` is not a SHA-256 (64 hex characters)"))
    }
}

#[derive(Debug, Args)]
struct DoctorArgs {
    /// Print the package manager's command that installs what is missing
    /// (Postgres, redis-server, promtool) instead of the diagnosis.
    #[arg(long)]
    install: bool,
    /// With --install: run that command (apt-get only).
    #[arg(long, requires = "install")]
    yes: bool,
}

#[derive(Debug, Args)]
struct InitArgs {
    /// How to start the service, as a shell-like line; write {{port}} where
    /// the port goes (or read PORT from the environment).
    #[arg(long, value_name = "LINE")]
    command: String,
    /// Where to write the scenario.
    #[arg(long, value_name = "FILE", default_value = "gonogo.toml")]
    out: PathBuf,
    /// Scenario name (default: the file's stem).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// The service's working directory (default: the current directory).
    #[arg(long, value_name = "DIR")]
    workdir: Option<PathBuf>,
    /// The readiness endpoint.
    #[arg(long, value_name = "PATH", default_value = "/ready")]
    ready_path: String,
    /// The liveness endpoint.
    #[arg(long, value_name = "PATH", default_value = "/live")]
    live_path: String,
    /// The version endpoint, captured for the report.
    #[arg(long, value_name = "PATH")]
    version_path: Option<String>,
    /// The migration command, e.g. 'alembic upgrade head'.
    #[arg(long, value_name = "LINE")]
    migrate: Option<String>,
    /// The command that shows the current revision, e.g. 'alembic current'.
    #[arg(long, value_name = "LINE", requires = "migrate")]
    current: Option<String>,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The scenario file(s) (TOML) describing the proof. Several files are
    /// proved side by side (see --jobs), each with its own servers.
    #[arg(value_name = "SCENARIO", required = true)]
    scenarios: Vec<PathBuf>,
    /// How many proofs run at once when several scenarios are given.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Where Postgres and Redis come from: embedded (local binaries), docker
    /// (testcontainers), external (DATABASE_URL and REDIS_URL, read-only),
    /// or auto (embedded, else docker).
    #[arg(
        long,
        value_enum,
        value_name = "PROVIDER",
        default_value = "auto",
        env = "GONOGO_DEPS"
    )]
    deps: crate::deps::DepsChoice,
    /// Prove a service that is already running at this http:// base URL
    /// (e.g. behind kubectl port-forward): steps that need a restart or a
    /// fault are NOT RUN, and the verdict is INCONCLUSIVE unless waived.
    #[arg(long, value_name = "URL", conflicts_with = "deps")]
    service_url: Option<String>,
    /// Root directory for evidence; each run writes <UTC time>-<name>/ in it.
    #[arg(long, value_name = "DIR", default_value = "evidence")]
    out: PathBuf,
    /// Extra service environment, applied over the scenario's [service.env].
    /// Repeatable. Values of secret-looking names (…PASS…, …TOKEN…, …KEY…,
    /// …SECRET…, …AUTH…, …DSN…) are masked everywhere, in every encoding.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    env: Vec<(String, String)>,
    /// Environment label for the report's metadata (staging, prod, ci).
    /// Defaults to the scenario's `environment`, else `ci` under CI, else `local`.
    #[arg(long, value_name = "NAME")]
    environment: Option<String>,
    /// Leave the servers running and their temp dir in place, for debugging:
    /// DIR/connection.env (mode 0600, secret) holds their URLs, and
    /// `gonogo stop DIR` ends them.
    #[arg(long)]
    keep: bool,
    /// Render report.md with this minijinja template instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    template: Option<PathBuf>,
    /// Who ran the proof, for the report's metadata.
    #[arg(long, value_name = "NAME", env = "GONOGO_OPERATOR")]
    operator: Option<String>,
    /// Also partially mask hosts and IPs in URLs (keeps scheme and port).
    #[arg(long)]
    mask_hosts: bool,
    /// Print only step results and the verdict, not each action.
    #[arg(long, short)]
    quiet: bool,
    /// Artifacts to write, comma-separated; evidence.json and manifest.json
    /// are always written.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "md,json,junit,scorecard"
    )]
    format: Vec<Format>,
    /// The release this run gates, for the scorecard (over `[release] version`).
    #[arg(long, value_name = "NAME", env = "GONOGO_RELEASE")]
    release: Option<String>,
    /// Who owns the release gate, for the scorecard (over `[release] owner`).
    #[arg(long, value_name = "NAME", env = "GONOGO_OWNER")]
    owner: Option<String>,
    /// Sign the bundle with this private key (PKCS#8 PEM, see gonogo keygen):
    /// adds attestation.intoto.jsonl. GONOGO_SIGNING_KEY may hold the PEM
    /// text instead; it is never passed to the service.
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
    /// An artifact the signed attestation vouches for, e.g. the image the
    /// service was built into (repeatable; needs a signing key).
    #[arg(long = "subject", value_name = "NAME@sha256:HEX")]
    subjects: Vec<crate::attest::statement::Subject>,
    /// End a proof that runs longer than this (e.g. 90s, 30m, 2h; at most
    /// 24h) as a harness error (exit 3), naming the step it was in; every
    /// process is stopped and no evidence is written.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = crate::deadline::parse)]
    deadline: std::time::Duration,
    /// Run the steps one after another, in plan order, for debugging. By
    /// default steps that hold nothing in common run side by side (fail-fast
    /// cases, the negative proof, each dependency's faults on an instance and
    /// proxies of their own); the latency measurement always runs alone.
    #[arg(long)]
    serial: bool,
}

/// The GitHub Actions run page, from the variables every job has.
fn github_run_url() -> Option<String> {
    let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
    Some(format!(
        "{}/{}/actions/runs/{}",
        var("GITHUB_SERVER_URL")?,
        var("GITHUB_REPOSITORY")?,
        var("GITHUB_RUN_ID")?
    ))
}

/// A target URL gonogo can ask: `http://host:port[/prefix]`.
fn check_service_url(url: String) -> Result<String> {
    let parsed = url::Url::parse(&url)
        .map_err(|e| Error::Usage(format!("--service-url: parse it as a URL: {e}")))?;
    match parsed.scheme() {
        "http" if parsed.host_str().is_some() => Ok(url),
        "https" => Err(Error::Usage(
            "--service-url: https is not supported (gonogo's HTTP client is built without TLS); use kubectl port-forward or another plain-HTTP path to the service".into(),
        )),
        _ => Err(Error::Usage(
            "--service-url: give an http:// URL with a host, e.g. http://127.0.0.1:8080".into(),
        )),
    }
}

fn parse_key_value(text: &str) -> std::result::Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// Run the command line; returns the process exit code.
pub fn main() -> i32 {
    // SAFETY: the first thing gonogo does: no other thread exists yet.
    let env_key = unsafe { crate::attest::key::take_from_env() };
    let cli = Cli::parse();
    if let Command::Watchdog { parent } = cli.command {
        return crate::process::watchdog::main(parent);
    }
    // Commands that start processes own their whole tree (src/process.rs).
    let spawns = matches!(cli.command, Command::Run(_) | Command::Doctor(_));
    if spawns && let Err(error) = guard_the_tree() {
        let _ = writeln!(std::io::stderr(), "error: {error:#}");
        return error.exit_code();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return exit_codes::HARNESS;
        }
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            tokio::select! {
                result = execute(cli, env_key) => result,
                signal = interrupted() => Err(Error::Interrupted(signal)),
            }
        })
    }));
    // Dropping the runtime here, after the select dropped the run future,
    // means every guard has already stopped its process; what is left are
    // the orphans gonogo adopted as subreaper.
    drop(runtime);
    if spawns {
        crate::process::reaper::end_descendants();
        crate::process::watchdog::finish();
    }
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            // A closed stderr must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "error: {error:#}");
            error.exit_code()
        }
        Err(_panic) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: gonogo panicked (a bug; please report it); every child process was stopped and no evidence was written"
            );
            exit_codes::PANIC
        }
    }
}

/// Become the subreaper of everything gonogo starts, and start the
/// watchdog that ends it all if gonogo is killed (src/process.rs).
fn guard_the_tree() -> Result<()> {
    crate::process::reaper::become_subreaper()
        .map_err(|e| anyhow::anyhow!("become the subreaper of gonogo's children: {e}"))?;
    crate::process::watchdog::start().map_err(|e| {
        anyhow::anyhow!("start the watchdog that ends gonogo's children if it is killed: {e}")
    })?;
    Ok(())
}

/// Prove several scenarios, at most `jobs` at a time, each isolated with
/// its own servers, ports and temp dirs. Prints one verdict line per
/// scenario and gives one overall exit code: the worst of them, ranked
/// harness error, usage error, NO-GO, INCONCLUSIVE, GO.
async fn run_parallel(
    scenarios: Vec<scenario::Scenario>,
    options: RunOptions,
    jobs: usize,
    quiet: bool,
    deadline: std::time::Duration,
) -> i32 {
    // The proofs share this thread (a LocalSet): their real work happens
    // in child processes and runtime tasks, and children spawned from this
    // long-lived thread keep their death signal armed.
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(jobs));
    let local = tokio::task::LocalSet::new();
    let mut results = local
        .run_until(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for (index, scenario) in scenarios.into_iter().enumerate() {
                let options = options.clone();
                let permits = permits.clone();
                tasks.spawn_local(async move {
                    let _permit = permits.acquire_owned().await;
                    let mut reporter = TerminalReporter::new(quiet).with_prefix(&scenario.name);
                    let result =
                        crate::deadline::run_within(&scenario, &options, &mut reporter, deadline)
                            .await;
                    (index, scenario.name, result.map(|o| o.verdict))
                });
            }
            let mut results = Vec::new();
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok(result) => results.push(result),
                    Err(e) => results.push((
                        usize::MAX,
                        "?".into(),
                        Err(Error::Harness(anyhow::anyhow!("a proof task failed: {e}"))),
                    )),
                }
            }
            results
        })
        .await;
    results.sort_by_key(|(index, _, _)| *index);
    let rank = |code: i32| match code {
        exit_codes::HARNESS => 5,
        exit_codes::USAGE => 4,
        exit_codes::NO_GO => 3,
        exit_codes::INCONCLUSIVE => 2,
        exit_codes::GO => 1,
        _ => 6,
    };
    let mut overall = exit_codes::GO;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "summary of {} proofs:", results.len());
    for (_, name, result) in &results {
        let code = match result {
            Ok(verdict) => {
                let _ = writeln!(out, "  {:<13} {name}", verdict.label());
                verdict.exit_code()
            }
            Err(error) => {
                let _ = writeln!(out, "  {:<13} {name}: {error}", "ERROR");
                error.exit_code()
            }
        };
        if rank(code) > rank(overall) {
            overall = code;
        }
    }
    overall
}

/// Resolves on SIGINT, SIGTERM or SIGHUP, naming the signal.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
    }
}

async fn execute(cli: Cli, env_key: Option<Zeroizing<String>>) -> Result<i32> {
    match cli.command {
        Command::Validate { scenarios } => Ok(validate(&scenarios)),
        Command::Run(args) => {
            // Every file is checked before anything starts.
            let mut scenarios = Vec::new();
            for path in &args.scenarios {
                scenarios.push(crate::steps::load_scenario(path)?);
            }
            crate::evidence::out_dir::preflight(&args.out).map_err(Error::Usage)?;
            let template = args
                .template
                .as_deref()
                .map(crate::evidence::markdown::load_template)
                .transpose()
                .map_err(|e| Error::Usage(e.to_string()))?;
            let signing = signer(&args, env_key.as_deref().map(String::as_str))?;
            let options = RunOptions {
                out: args.out,
                env: args.env,
                environment: args.environment,
                keep: args.keep,
                template,
                operator: args.operator,
                mask_hosts: args.mask_hosts,
                command_line: crate::mask::names::command_line(
                    &std::env::args_os()
                        .map(|a| a.to_string_lossy().into_owned())
                        .collect::<Vec<_>>(),
                ),
                formats: args.format,
                release: args.release,
                owner: args.owner,
                step_summary: std::env::var_os("GITHUB_STEP_SUMMARY")
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from),
                ci_run_url: github_run_url(),
                deps: args.deps,
                service_url: args.service_url.map(check_service_url).transpose()?,
                signing,
                serial: args.serial,
            };
            if let [scenario] = scenarios.as_slice() {
                let mut reporter = TerminalReporter::new(args.quiet);
                let outcome =
                    crate::deadline::run_within(scenario, &options, &mut reporter, args.deadline)
                        .await?;
                return Ok(outcome.verdict.exit_code());
            }
            let jobs = usize::from(args.jobs);
            Ok(run_parallel(scenarios, options, jobs, args.quiet, args.deadline).await)
        }
        Command::Doctor(DoctorArgs { install: true, yes }) => crate::install::main(yes).await,
        Command::Doctor(_) => {
            let diagnosis = crate::doctor::diagnose().await;
            print!("{}", crate::doctor::render(&diagnosis));
            Ok(if diagnosis.any_works() {
                exit_codes::GO
            } else {
                exit_codes::HARNESS
            })
        }
        Command::Init(args) => init(args),
        Command::Verify(args) => verify(args),
        Command::Keygen { out, force } => keygen(&out, force),
        Command::Watchdog { .. } => Ok(exit_codes::USAGE),
        Command::Stop { dir } => {
            for line in crate::keep::stop(&dir)? {
                println!("{line}");
            }
            Ok(exit_codes::GO)
        }
        Command::Render {
            evidence,
            template,
            out,
        } => render(&evidence, template.as_deref(), out.as_deref()),
    }
}

/// `gonogo validate`: each file, then every step id it names; expired
/// waivers are warnings. Gives the exit code.
fn validate(scenarios: &[PathBuf]) -> i32 {
    let mut failed = false;
    for path in scenarios {
        match crate::steps::load_scenario(path) {
            Ok(s) => {
                println!(
                    "ok {}: scenario `{}`, {} failfast cases, migrations {}",
                    path.display(),
                    s.name,
                    s.failfast.cases.len(),
                    match s.migrations {
                        Some(scenario::MigrationSpec::SqlDir { .. }) => "from a SQL directory",
                        Some(scenario::MigrationSpec::Command { .. }) => "by command",
                        None => "not configured",
                    }
                );
                let today = chrono::Utc::now().date_naive();
                for warning in crate::waiver::expired(&s, today) {
                    let _ = writeln!(std::io::stderr(), "warning: {warning}");
                }
            }
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        exit_codes::USAGE
    } else {
        exit_codes::GO
    }
}

/// `gonogo keygen`: a signing key pair.
fn keygen(out: &std::path::Path, force: bool) -> Result<i32> {
    let pair = crate::attest::key::keygen(out, force).map_err(Error::Usage)?;
    println!(
        "wrote {} (private: keep it secret) and {} (public); key id {}\n\
         next: gonogo run SCENARIO --sign-key {}, then gonogo verify DIR --key {}",
        pair.private.display(),
        pair.public.display(),
        pair.keyid,
        pair.private.display(),
        pair.public.display()
    );
    Ok(exit_codes::GO)
}

/// `gonogo render`: a report from a stored evidence.json.
fn render(
    evidence: &std::path::Path,
    template: Option<&std::path::Path>,
    out: Option<&std::path::Path>,
) -> Result<i32> {
    let report = crate::evidence::markdown::rerender(evidence, template).map_err(Error::Usage)?;
    match out {
        Some(path) => std::fs::write(path, report)
            .map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?,
        None => {
            let _ = std::io::stdout().write_all(report.as_bytes());
        }
    }
    Ok(exit_codes::GO)
}

/// The run's signer, from `--sign-key` or `GONOGO_SIGNING_KEY`, checked
/// before anything starts; `--subject` needs one.
fn signer(args: &RunArgs, env_key: Option<&str>) -> Result<Option<crate::attest::Signer>> {
    let key =
        crate::attest::key::signing_key(args.sign_key.as_deref(), env_key).map_err(Error::Usage)?;
    match key {
        Some(key) => Ok(Some(crate::attest::Signer {
            key,
            subjects: args.subjects.clone(),
        })),
        None if !args.subjects.is_empty() => Err(Error::Usage(
            "--subject goes into the signed attestation: give a signing key with --sign-key FILE or GONOGO_SIGNING_KEY".into(),
        )),
        None => Ok(None),
    }
}

fn verify(args: VerifyArgs) -> Result<i32> {
    let key = args
        .key
        .as_deref()
        .map(crate::attest::key::verifying_key)
        .transpose()
        .map_err(Error::Usage)?;
    let options = crate::verify::VerifyOptions {
        key,
        expect_manifest_sha256: args.expect_manifest_sha256,
    };
    let verification = crate::verify::verify(&args.dir, &options)?;
    let mut err = std::io::stderr().lock();
    for mismatch in &verification.mismatches {
        let _ = writeln!(err, "{}: {mismatch}", args.dir.display());
    }
    drop(err);
    let _ = std::io::stdout().write_all(crate::verify::render(&verification).as_bytes());
    Ok(if verification.intact() {
        exit_codes::GO
    } else {
        exit_codes::TAMPERED
    })
}

fn init(args: InitArgs) -> Result<i32> {
    let cwd =
        std::env::current_dir().map_err(|e| anyhow::anyhow!("read the current directory: {e}"))?;
    let out = std::path::absolute(&args.out)
        .map_err(|e| Error::Usage(format!("--out {}: {e}", args.out.display())))?;
    if out.exists() && !args.force {
        return Err(Error::Usage(format!(
            "{} exists; pass --force to overwrite it",
            args.out.display()
        )));
    }
    let workdir = match args.workdir {
        Some(dir) => std::path::absolute(&dir)
            .map_err(|e| Error::Usage(format!("--workdir {}: {e}", dir.display())))?,
        None => cwd,
    };
    let options = crate::init::InitOptions {
        name: args.name,
        command: args.command,
        workdir,
        ready_path: args.ready_path,
        live_path: args.live_path,
        version_path: args.version_path,
        migrate: args.migrate,
        current: args.current,
    };
    let text = crate::init::render(&options, &out).map_err(Error::Usage)?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow::anyhow!("create {}: {e}", parent.display()))?;
    }
    std::fs::write(&out, text).map_err(|e| anyhow::anyhow!("write {}: {e}", out.display()))?;
    println!(
        "wrote {}; next: gonogo validate {} && gonogo run {}",
        args.out.display(),
        args.out.display(),
        args.out.display()
    );
    Ok(exit_codes::GO)
}
