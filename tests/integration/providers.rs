//! Dependency providers and ways in (issue 4): external servers the test
//! starts itself and gonogo must leave untouched, target mode against a
//! service the test runs, `auto`, docker failing fast, `doctor` and `init`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gonogo::deps::embedded::{Embedded, EmbeddedOptions};
use gonogo::deps::resp::{RespConnection, RespValue};
use sqlx::Connection;

use crate::support::{
    all_files, evidence_dir, gonogo, marker, reference_service, repo, run_with_limit, scenario,
    stderr, stdout,
};

/// Postgres and Redis servers the test owns, playing someone's staging.
struct Servers {
    runtime: tokio::runtime::Runtime,
    embedded: Option<Embedded>,
}

impl Servers {
    fn start() -> Servers {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let embedded = runtime
            .block_on(Embedded::start(&EmbeddedOptions::default()))
            .expect("start the test's own postgres and redis");
        Servers {
            runtime,
            embedded: Some(embedded),
        }
    }

    fn embedded(&self) -> &Embedded {
        self.embedded.as_ref().expect("servers running")
    }

    fn database_url(&self) -> String {
        self.embedded().postgres().url().expose().to_string()
    }

    fn redis_url(&self) -> String {
        self.embedded().redis().url().expose().to_string()
    }

    fn passwords(&self) -> [String; 2] {
        [
            self.embedded().postgres().password().expose().to_string(),
            self.embedded().redis().password().expose().to_string(),
        ]
    }

    /// Apply the reference migrations, as a deployed staging database has.
    fn migrate(&self) {
        let url = self.database_url();
        self.runtime.block_on(async {
            let migrator =
                sqlx::migrate::Migrator::new(repo().join("reference-service/migrations"))
                    .await
                    .expect("read migrations");
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
            migrator.run(&mut conn).await.expect("migrate");
        });
    }

    fn sql(&self, statements: &[&'static str]) {
        let url = self.database_url();
        self.runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
            for statement in statements {
                sqlx::query(*statement)
                    .execute(&mut conn)
                    .await
                    .expect(statement);
            }
        });
    }

    fn redis(&self, args: &[&str]) -> RespValue {
        let port = self.embedded().redis().port();
        let password = self.embedded().redis().password().expose().to_string();
        self.runtime.block_on(async {
            let mut conn = RespConnection::connect(port).await.expect("connect redis");
            conn.command(&[b"AUTH", password.as_bytes()])
                .await
                .expect("auth");
            let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            conn.command(&args).await.expect("redis command")
        })
    }

    /// Every table's rows (hashed), the migration history, and every Redis
    /// key with its value: what "left exactly as it was" compares.
    fn state(&self) -> (Vec<(String, String)>, String) {
        let url = self.database_url();
        let tables = self.runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT schemaname || '.' || tablename FROM pg_tables \
                 WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
            )
            .fetch_all(&mut conn)
            .await
            .expect("list tables");
            let mut out = Vec::new();
            for name in names {
                let digest: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {name} t"
                )))
                .fetch_one(&mut conn)
                .await
                .expect("hash table");
                out.push((name, digest.unwrap_or_default()));
            }
            out
        });
        let keys = format!("{:?}", self.redis(&["KEYS", "*"]));
        let sentinel = format!("{:?}", self.redis(&["GET", "gonogo:sentinel"]));
        let size = format!("{:?}", self.redis(&["DBSIZE"]));
        (tables, format!("{keys} {sentinel} {size}"))
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        if let Some(embedded) = self.embedded.take() {
            let _ = self.runtime.block_on(embedded.shutdown());
        }
    }
}

fn evidence_json(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("evidence.json")).expect("read evidence.json");
    serde_json::from_str(&text).expect("parse evidence.json")
}

fn step_statuses(evidence: &serde_json::Value) -> Vec<(String, String, String)> {
    evidence["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or_default().to_string(),
                s["status"].as_str().unwrap_or_default().to_string(),
                s["summary"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn external_mode_proves_the_reference_service_and_leaves_the_servers_as_they_were() {
    reference_service();
    let servers = Servers::start();
    servers.migrate();
    servers.sql(&[
        "CREATE TABLE staging_sentinel (id int PRIMARY KEY, note text NOT NULL)",
        "INSERT INTO staging_sentinel VALUES (1, 'owned by staging, not by gonogo')",
    ]);
    servers.redis(&["SET", "gonogo:sentinel", "owned by staging"]);
    let before = servers.state();

    let out = tempfile::tempdir().expect("tempdir");
    let mark = marker("external");
    let mut command = gonogo(&mark);
    command
        .args(["run", "--deps", "external", "--out"])
        .arg(out.path())
        .arg(scenario("scenarios/reference.toml"))
        .env("DATABASE_URL", servers.database_url())
        .env("REDIS_URL", servers.redis_url());
    let output = run_with_limit(command, Duration::from_secs(400));
    // Every step passes but the one that would change the server: gonogo
    // never makes someone else's Postgres read-only, so that step is NOT
    // RUN and the verdict cannot be GO.
    assert_eq!(
        output.status.code(),
        Some(gonogo::exit_codes::INCONCLUSIVE),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(
        stdout(&output).starts_with("INCONCLUSIVE"),
        "{}",
        stdout(&output)
    );

    // Both servers still run and hold exactly what they held.
    assert_eq!(servers.state(), before, "the external servers changed");

    let dir = evidence_dir(out.path());
    let evidence = evidence_json(&dir);
    for (id, status, summary) in step_statuses(&evidence) {
        if id == "postgres-read-only" {
            assert_eq!(status, "NOT RUN", "{summary}");
            assert!(
                summary.starts_with("needs a Postgres server gonogo owns and may change;")
                    && summary.contains("never changes someone else's server"),
                "{summary}"
            );
        } else {
            assert_eq!(status, "PASS", "{id}: {summary}");
        }
    }
    for dep in evidence["dependencies"].as_array().expect("dependencies") {
        assert_eq!(dep["provider"], "external", "{dep}");
        // Read-only version queries: `SHOW server_version`, `INFO server`.
        let version = dep["version"].as_str().unwrap_or_default();
        assert!(
            version.starts_with("PostgreSQL ") || version.starts_with("Redis "),
            "{dep}"
        );
    }
    // The migration gate only read the schema: nothing was applied.
    let migration = &evidence["steps"][0];
    assert_eq!(migration["id"], "migration-gate");
    assert_eq!(migration["status"], "PASS", "{migration}");
    let labels: Vec<&str> = migration["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["label"].as_str())
        .collect();
    assert!(!labels.contains(&"sqlx migrate run"), "{labels:?}");

    let files = all_files(&dir);
    assert!(files.len() >= 2, "{files:?}");
    for (name, text) in &files {
        for password in servers.passwords() {
            assert!(
                !text.contains(&password),
                "{name} contains an external password"
            );
        }
    }
    for password in servers.passwords() {
        assert!(!stderr(&output).contains(&password), "progress leaks it");
    }
}

#[test]
fn external_mode_without_urls_names_the_variable() {
    let out = tempfile::tempdir().expect("tempdir");
    let mut command = gonogo(&marker("external-unset"));
    command
        .args(["run", "--deps", "external", "--out"])
        .arg(out.path())
        .arg(scenario("scenarios/reference.toml"))
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL");
    let output = run_with_limit(command, Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("`DATABASE_URL`"),
        "{}",
        stderr(&output)
    );
}

/// A reference service the test runs itself, against the test's servers.
struct Deployed {
    child: std::process::Child,
    port: u16,
}

impl Deployed {
    fn start(servers: &Servers) -> Deployed {
        let port = gonogo::process::free_port().expect("free port");
        let child = std::process::Command::new(reference_service())
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("DATABASE_URL", servers.database_url())
            .env("REDIS_URL", servers.redis_url())
            .env("ENV", "staging")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the reference service");
        let deployed = Deployed { child, port };
        let started = Instant::now();
        while http_status(port, "/ready") != Some(200) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the reference service never became ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        deployed
    }
}

impl Drop for Deployed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    reply.split_whitespace().nth(1)?.parse().ok()
}

/// A scenario for the deployed reference service, with `extra` appended.
fn target_scenario(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("deployed.toml");
    let text = format!(
        r#"name = "deployed"

[service]
command = ["{service}"]
ready_path = "/ready"
live_path = "/live"
version_path = "/version"

[service.env]
HOST = "{{{{host}}}}"
PORT = "{{{{port}}}}"
DATABASE_URL = "{{{{database_url}}}}"
REDIS_URL = "{{{{redis_url}}}}"
CI_STRICT = "1"

[migrations]
dir = "{migrations}"

[ready]
expect = [
  {{ pointer = "/dependencies/database", equals = "connected" }},
  {{ pointer = "/dependencies/redis", equals = "connected" }},
  {{ pointer = "/dependencies/migrations", equals = "head" }},
]
{extra}"#,
        service = reference_service().display(),
        migrations = repo().join("reference-service/migrations").display(),
    );
    std::fs::write(&path, text).expect("write scenario");
    path
}

#[test]
fn target_mode_is_inconclusive_until_the_steps_it_cannot_run_are_waived() {
    let servers = Servers::start();
    servers.migrate();
    let deployed = Deployed::start(&servers);
    let url = format!("http://127.0.0.1:{}", deployed.port);
    let work = tempfile::tempdir().expect("tempdir");
    // The deployment's manifest and alert rule: judged on what target mode
    // can observe (healthy answers, one scrape), saying what it cannot.
    // The latency SLO is loose: tests run proofs side by side, and this
    // one is about target mode, not this machine's speed.
    let deploy = repo().join("examples/reference/deploy");
    let conformance = format!(
        "\n[latency]\nrequests = 50\np95_ms = 2000\n\n[metrics]\npath = \"/metrics\"\ngauge = \"aether_readyz_success\"\nlabels = {{ service = \"reference-service\" }}\n\n[kubernetes]\nmanifest = \"{}\"\n\n[alerts]\nrules = \"{}\"\n",
        deploy.join("deployment.yaml").display(),
        deploy.join("alerts.yml").display()
    );

    let out = work.path().join("inconclusive");
    let mut command = gonogo(&marker("target"));
    command
        .args(["run", "--service-url", &url, "--out"])
        .arg(&out)
        .arg(target_scenario(work.path(), &conformance));
    let output = run_with_limit(command, Duration::from_secs(120));
    assert_eq!(
        output.status.code(),
        Some(gonogo::exit_codes::INCONCLUSIVE),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(stdout(&output).starts_with("INCONCLUSIVE"));
    let evidence = evidence_json(&evidence_dir(&out));
    assert_eq!(evidence["dependencies"].as_array().map(Vec::len), Some(0));
    let steps = step_statuses(&evidence);
    let ready = steps.iter().find(|s| s.0 == "ready-gate").expect("ready");
    assert_eq!(ready.1, "PASS", "{steps:?}");
    // Requests alone need no restart: the latency SLO runs against it too.
    let latency = steps
        .iter()
        .find(|s| s.0 == "latency-slo")
        .expect("latency");
    assert_eq!(latency.1, "PASS", "{steps:?}");
    assert!(
        evidence["metadata"]["service_version"].is_string(),
        "the version is captured"
    );
    let not_run: Vec<&(String, String, String)> =
        steps.iter().filter(|s| s.1 == "NOT RUN").collect();
    for id in [
        "migration-gate",
        "negative-proof",
        "fail-fast",
        "runtime-faults",
    ] {
        let step = not_run
            .iter()
            .find(|s| s.0 == id)
            .unwrap_or_else(|| panic!("{id} is NOT RUN: {steps:?}"));
        assert!(step.2.contains("target mode"), "{step:?}");
    }
    assert!(
        steps.iter().all(|s| s.1 == "PASS" || s.1 == "NOT RUN"),
        "{steps:?}"
    );
    // Each reason names what the step itself needs: the shutdown step
    // signals an instance gonogo started, it restarts nothing.
    let shutdown = not_run
        .iter()
        .find(|s| s.0 == "graceful-shutdown")
        .expect("graceful-shutdown is NOT RUN");
    assert!(
        shutdown.2.contains("SIGTERM") && !shutdown.2.contains("restart"),
        "{shutdown:?}"
    );
    let report = std::fs::read_to_string(evidence_dir(&out).join("report.md")).expect("report");
    assert!(report.contains("NOT RUN"), "the report lists them");
    for id in ["kubernetes-probes", "alert-rules"] {
        let step = steps.iter().find(|s| s.0 == id).expect(id);
        assert_eq!(step.1, "PASS", "{steps:?}");
    }
    let probes = evidence["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "kubernetes-probes")
        .unwrap();
    let text = probes.to_string();
    assert!(
        text.contains(
            "the cold start, SIGTERM to exit and the probes during an outage cannot be observed"
        ),
        "{text}"
    );
    assert!(text.contains("probe-timeout (readinessProbe)"), "{text}");
    let alerts = evidence["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "alert-rules")
        .unwrap()
        .to_string();
    assert!(
        alerts.contains("quiet while healthy ReadyzDependencyFailure"),
        "{alerts}"
    );
    assert!(
        !alerts.contains("fires during the outage ReadyzDependencyFailure"),
        "{alerts}"
    );
    assert!(alerts.contains("no outage was scraped"), "{alerts}");

    let waivers: String = not_run
        .iter()
        .map(|s| {
            format!(
                "\n[[waiver]]\nstep = \"{}\"\njustification = \"proved with embedded servers in CI\"\napprover = \"release-manager\"\nexpires = \"2099-12-31\"\n",
                s.0
            )
        })
        .collect();
    let out = work.path().join("waived");
    let mut command = gonogo(&marker("target-waived"));
    command
        .args(["run", "--service-url", &url, "--out"])
        .arg(&out)
        .arg(target_scenario(
            work.path(),
            &format!("{conformance}{waivers}"),
        ));
    let output = run_with_limit(command, Duration::from_secs(120));
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&output),
        stderr(&output)
    );
    let steps = step_statuses(&evidence_json(&evidence_dir(&out)));
    assert!(
        steps.iter().all(|s| s.1 == "PASS" || s.1 == "WAIVED"),
        "{steps:?}"
    );
    // Target mode never touched the deployed service's configuration.
    assert_eq!(http_status(deployed.port, "/ready"), Some(200));
}

#[test]
fn auto_picks_embedded_here() {
    reference_service();
    let work = tempfile::tempdir().expect("tempdir");
    let path = target_scenario(work.path(), "\n[faults]\nenabled = false\n");
    let out = work.path().join("evidence");
    let mut command = gonogo(&marker("auto"));
    command
        .args(["run", "--out"])
        .arg(&out)
        .arg(&path)
        .env_remove("GONOGO_DEPS");
    let output = run_with_limit(command, Duration::from_secs(180));
    assert!(
        matches!(output.status.code(), Some(0) | Some(4)),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&output),
        stderr(&output)
    );
    let evidence = evidence_json(&evidence_dir(&out));
    let deps = evidence["dependencies"].as_array().expect("dependencies");
    assert_eq!(deps.len(), 2);
    for dep in deps {
        assert_eq!(dep["provider"], "embedded", "{dep}");
    }
    assert!(stderr(&output).contains("embedded postgres"));
}

/// Run `gonogo run --deps docker` with `DOCKER_HOST`; gives the output
/// and how long it took.
fn run_docker(docker_host: &str) -> (std::process::Output, Duration) {
    // The scenario's service must exist, or gonogo stops (exit 2) before
    // it asks for a provider.
    reference_service();
    let out = tempfile::tempdir().expect("tempdir");
    let mut command = gonogo(&marker("docker"));
    command
        .args(["run", "--deps", "docker", "--out"])
        .arg(out.path())
        .arg(scenario("scenarios/reference.toml"))
        .env("DOCKER_HOST", docker_host);
    let started = Instant::now();
    let output = run_with_limit(command, Duration::from_secs(30));
    let took = started.elapsed();
    assert!(
        std::fs::read_dir(out.path())
            .expect("read out")
            .next()
            .is_none(),
        "no evidence is written"
    );
    (output, took)
}

#[test]
fn docker_fails_fast_without_a_daemon() {
    let socket = format!("/tmp/gonogo-no-daemon-{}.sock", std::process::id());
    let (output, took) = run_docker(&format!("unix://{socket}"));
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let message = stderr(&output);
    assert!(
        message.contains("--deps docker") && message.contains("has no daemon at"),
        "{message}"
    );
}

#[test]
fn docker_fails_fast_when_the_daemon_never_answers() {
    let socket = format!("/tmp/gonogo-silent-{}.sock", std::process::id());
    let _ = std::fs::remove_file(&socket);
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    // Accept every connection and hold it open without a word.
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            match stream {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
            if held.len() >= 4 {
                break;
            }
        }
        std::thread::sleep(Duration::from_secs(10));
    });
    let (output, took) = run_docker(&format!("unix://{socket}"));
    let _ = std::fs::remove_file(&socket);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(took < Duration::from_secs(6), "took {took:?}");
    let message = stderr(&output);
    assert!(
        message.contains("does not answer") && message.contains("GET /_ping"),
        "{message}"
    );
    drop(holder);
}

#[test]
fn doctor_names_the_binaries_and_their_versions() {
    let mut command = gonogo(&marker("doctor"));
    command.arg("doctor");
    let output = run_with_limit(command, Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    for needle in [
        "initdb",
        "postgres",
        "redis-server",
        "(PostgreSQL) ",
        "v=",
        "docker",
        "works     embedded",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn init_writes_a_scenario_that_validates_and_never_overwrites_silently() {
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("scenarios/backend.toml");
    let init = |force: bool| {
        let mut command = gonogo(&marker("init"));
        command.current_dir(work.path()).args([
            "init",
            "--command",
            "uvicorn server:app --port {{port}}",
            "--ready-path",
            "/api/ready",
            "--live-path",
            "/api/live",
            "--version-path",
            "/api/version",
            "--migrate",
            "alembic upgrade head",
            "--current",
            "alembic current",
            "--name",
            "backend",
            "--out",
            "scenarios/backend.toml",
        ]);
        if force {
            command.arg("--force");
        }
        run_with_limit(command, Duration::from_secs(30))
    };
    let first = init(false);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let text = std::fs::read_to_string(&out).expect("written");
    assert!(text.contains(r#"command = ["uvicorn", "server:app", "--port", "{{port}}"]"#));
    assert!(text.contains(r#"workdir = "..""#), "{text}");

    let mut validate = gonogo(&marker("init-validate"));
    validate.arg("validate").arg(&out);
    let validated = run_with_limit(validate, Duration::from_secs(30));
    assert_eq!(validated.status.code(), Some(0), "{}", stderr(&validated));
    assert!(stdout(&validated).contains("scenario `backend`"));

    std::fs::write(&out, "# mine\n").expect("overwrite");
    let again = init(false);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(&out).expect("kept"), "# mine\n");
    assert_eq!(init(true).status.code(), Some(0));
}

/// Whether a Docker daemon answers `GET /_ping` within 2 s, and where.
fn docker_daemon() -> Result<String, String> {
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let Some(path) = host.strip_prefix("unix://") else {
        return Err(format!(
            "DOCKER_HOST={host} is not a unix socket this test knows how to ping"
        ));
    };
    let mut stream = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("no Docker daemon at {host}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
    stream.set_write_timeout(Some(Duration::from_secs(2))).ok();
    stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .map_err(|e| format!("the Docker daemon at {host} did not take a request: {e}"))?;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    if answer.ends_with("OK") {
        Ok(host)
    } else {
        Err(format!(
            "the Docker daemon at {host} did not answer GET /_ping within 2 s"
        ))
    }
}

#[test]
fn docker_provider_proves_the_reference_service_when_a_daemon_answers() {
    if !cfg!(feature = "docker") {
        println!(
            "SKIPPED docker_provider_proves_the_reference_service_when_a_daemon_answers: \
             gonogo was built without the `docker` feature (cargo test --features docker)"
        );
        return;
    }
    let host = match docker_daemon() {
        Ok(host) => host,
        Err(why) => {
            println!(
                "SKIPPED docker_provider_proves_the_reference_service_when_a_daemon_answers: {why}"
            );
            return;
        }
    };
    crate::support::reference_service();
    let out = tempfile::tempdir().unwrap();
    let marker = crate::support::marker("docker-go");
    let mut command = crate::support::gonogo(&marker);
    command
        .args([
            "run",
            "scenarios/reference.toml",
            "--deps",
            "docker",
            "--out",
        ])
        .arg(out.path());
    let output = crate::support::run_with_limit(command, Duration::from_secs(600));
    assert_eq!(
        output.status.code(),
        Some(0),
        "docker provider at {host}: {}",
        crate::support::stderr(&output)
    );
}
