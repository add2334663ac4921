//! gonogo's benchmark: prints numbers, asserts nothing (targets live in
//! BENCHMARKS.md, not in timed tests that flake on a noisy machine).
//!
//! Run with `cargo bench --bench harness`. It measures, on real servers:
//! - embedded Postgres ready time from the template cache versus `initdb`;
//! - embedded Redis ready time;
//! - ready latency through the fault proxy versus a direct connection;
//! - wall time of the full reference proof, broken down by phase, and
//!   gonogo's peak memory;
//! - one proof versus four in parallel;
//! - masking throughput: every encoding of every known secret in one
//!   Aho-Corasick pass, against one `replace` per form.

// A panic is how a test or a benchmark reports: it may unwrap.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gonogo::deps::embedded::{PostgresOptions, RedisOptions, TempRoot, postgres, redis};
use gonogo::proxy::FaultProxy;

const ROUNDS: usize = 5;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The reference service binary in the same profile as this bench.
fn reference_service() -> PathBuf {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "reference-service", "--quiet"])
        .current_dir(repo())
        .status()
        .expect("build the reference service");
    assert!(status.success());
    repo().join("target/release/reference-service")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    // `cargo bench` passes --bench; a filter argument picks sections.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    println!(
        "gonogo benchmark on {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if wanted("mask") {
        masking();
    }
    if wanted("provision") {
        provisioning().await;
    }
    let service = reference_service();
    if wanted("proxy") {
        proxy_overhead(&service).await;
    }
    if wanted("proof") {
        proofs(&service);
    }
}

/// Mask 1 MiB of log-like text holding 8 secrets in several encodings:
/// the masker's one pass over all forms, the hygiene search, and (for
/// scale) a `str::replace` per secret and form.
fn masking() {
    use gonogo::mask::{Masker, encodings::ENCODINGS};
    println!("\n## Masking 1 MiB of captured text, 8 known secrets");
    let mut masker = Masker::new();
    let secrets: Vec<String> = (0..8)
        .map(|i| format!("s3cr{i}t/p@ss w\\rd&<{i}\"k{}", "x".repeat(i)))
        .collect();
    for (i, secret) in secrets.iter().enumerate() {
        masker.learn_from_env(&format!("SECRET_{i}"), secret);
    }
    let forms: Vec<String> = secrets
        .iter()
        .flat_map(|s| ENCODINGS.iter().flat_map(|e| (e.forms)(s)))
        .map(|f| f.text)
        .collect();
    let line = "2026-03-01T10:00:00Z INFO request handled path=/ready status=200 took=1.2ms\n";
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 1024 * 1024 {
        text.push_str(line);
        if i % 500 == 0 {
            text.push_str(&format!("leak {}\n", forms[i / 500 % forms.len()]));
        }
        i += 1;
    }
    let mib = text.len() as f64 / (1024.0 * 1024.0);
    let rate = |took: Duration| format!("{:.0} MiB/s", mib / took.as_secs_f64());
    let started = Instant::now();
    let masked = masker.mask(&text);
    let one_pass = started.elapsed();
    let started = Instant::now();
    let hits = masker.revealed_in(&text);
    let search = started.elapsed();
    let started = Instant::now();
    let mut naive = text.clone();
    for form in &forms {
        naive = naive.replace(form.as_str(), "***");
    }
    let replaces = started.elapsed();
    println!("patterns (secrets x forms):        {}", forms.len());
    println!(
        "mask (one automaton, + rules):     {} ({})",
        ms(one_pass),
        rate(one_pass)
    );
    println!(
        "hygiene search (hits {:>3}):         {} ({})",
        hits.len(),
        ms(search),
        rate(search)
    );
    println!(
        "str::replace per form (for scale): {} ({})",
        ms(replaces),
        rate(replaces)
    );
    assert!(!masker.table().found_in(masked.as_str()));
}

async fn provisioning() {
    println!("\n## Embedded dependencies ({ROUNDS} rounds, median)");
    let cache = tempfile::tempdir().expect("cache dir");
    let mut fresh = Vec::new();
    let mut templated = Vec::new();
    let mut redis_ready = Vec::new();
    for round in 0..=ROUNDS {
        for use_template in [false, true] {
            let root = TempRoot::create().expect("temp root");
            let options = PostgresOptions {
                template_cache: use_template.then(|| cache.path().to_path_buf()),
                ..PostgresOptions::default()
            };
            let started = Instant::now();
            let pg = postgres::start(root.path(), &options)
                .await
                .expect("postgres");
            let took = started.elapsed();
            if round > 0 && std::env::var_os("GONOGO_BENCH_VERBOSE").is_some() {
                println!("  {:?}", pg.timings());
            }
            let _ = pg.shutdown().await;
            // Round 0 fills the template cache; it is not measured.
            if round > 0 {
                if use_template {
                    templated.push(took);
                } else {
                    fresh.push(took);
                }
            }
        }
        let root = TempRoot::create().expect("temp root");
        let started = Instant::now();
        let r = redis::start(root.path(), &RedisOptions::default())
            .await
            .expect("redis");
        let took = started.elapsed();
        let _ = r.shutdown().await;
        if round > 0 {
            redis_ready.push(took);
        }
    }
    println!("postgres ready via initdb:        {}", ms(median(fresh)));
    println!(
        "postgres ready from the template: {}   (target ≤ 250 ms)",
        ms(median(templated))
    );
    println!(
        "redis ready:                      {}   (target ≤ 30 ms)",
        ms(median(redis_ready))
    );
}

/// Start a reference service instance pointed at the given URLs.
fn spawn_service(binary: &Path, db: &str, redis: &str) -> (std::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(binary)
        .env("PORT", port.to_string())
        .env("DATABASE_URL", db)
        .env("REDIS_URL", redis)
        .env_remove("REFERENCE_FLAW")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn reference service");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, port)
}

async fn proxy_overhead(service: &Path) {
    println!("\n## Ready latency through the fault proxy (2 × 1000 requests, interleaved)");
    let embedded = gonogo::deps::embedded::Embedded::start(&Default::default())
        .await
        .expect("embedded");
    let pg = embedded.postgres();
    let rd = embedded.redis();
    let loopback = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let pg_proxy = FaultProxy::start("postgres", loopback(pg.port()))
        .await
        .unwrap();
    let rd_proxy = FaultProxy::start("redis", loopback(rd.port()))
        .await
        .unwrap();
    let db = |port: u16| {
        format!(
            "postgresql://gonogo:{}@127.0.0.1:{port}/{}",
            pg.password().expose(),
            pg.database()
        )
    };
    let redis_url = |port: u16| format!("redis://:{}@127.0.0.1:{port}/0", rd.password().expose());
    // Migrations, so ready reports head and answers 200.
    let migrate = Command::new(service)
        .arg("migrate")
        .env("DATABASE_URL", db(pg.port()))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(migrate.success());
    let (mut direct, direct_port) = spawn_service(service, &db(pg.port()), &redis_url(rd.port()));
    let (mut proxied, proxied_port) = spawn_service(
        service,
        &db(pg_proxy.local_addr().port()),
        &redis_url(rd_proxy.local_addr().port()),
    );
    let probe = gonogo::http::Probe::new();
    let mut a = Vec::new();
    let mut b = Vec::new();
    for i in 0..2200 {
        let (which, port) = if i % 2 == 0 {
            (&mut a, direct_port)
        } else {
            (&mut b, proxied_port)
        };
        let exchange = probe
            .get(
                &format!("http://127.0.0.1:{port}/ready"),
                Duration::from_secs(5),
            )
            .await;
        assert_eq!(exchange.status, Some(200), "{}", exchange.body);
        // The first 100 of each warm the pools.
        if i >= 200 {
            which.push(exchange.elapsed);
        }
    }
    a.sort();
    b.sort();
    let (p50a, p50b) = (percentile(&a, 0.5), percentile(&b, 0.5));
    println!(
        "direct:  p50 {}  p95 {}",
        ms(p50a),
        ms(percentile(&a, 0.95))
    );
    println!(
        "proxied: p50 {}  p95 {}",
        ms(p50b),
        ms(percentile(&b, 0.95))
    );
    println!(
        "proxy adds at p50: {:+.3} ms   (target < 1 ms)",
        (p50b.as_secs_f64() - p50a.as_secs_f64()) * 1000.0
    );
    let _ = direct.kill();
    let _ = proxied.kill();
    let _ = direct.wait();
    let _ = proxied.wait();
    pg_proxy.shutdown().await;
    rd_proxy.shutdown().await;
    let _ = embedded.shutdown().await;
}

/// A copy of the reference scenario that runs the release service.
fn scenario(dir: &Path, service: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("scenarios/reference.toml")).unwrap();
    let text = text
        .replace(
            "command = [\"target/debug/reference-service\"]",
            &format!("command = [\"{}\"]", service.display()),
        )
        .replace(
            "workdir = \"..\"",
            &format!("workdir = \"{}\"", repo().display()),
        )
        .replace(
            "dir = \"../reference-service/migrations\"",
            &format!(
                "dir = \"{}/reference-service/migrations\"",
                repo().display()
            ),
        );
    let path = dir.join("reference.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct ProofRun {
    wall: Duration,
    peak_kib: u64,
    evidence: Vec<serde_json::Value>,
}

/// Run `copies` proofs at once, as separate gonogo processes.
fn run_proofs(scenario: &Path, copies: usize) -> ProofRun {
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut children: Vec<_> = (0..copies)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_gonogo"))
                .arg("run")
                .arg(scenario)
                .arg("--out")
                .arg(out.path().join(i.to_string()))
                .arg("--quiet")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut peak_kib = 0;
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        for child in &children {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
                for line in status.lines() {
                    if let Some(v) = line.strip_prefix("VmHWM:") {
                        let kib: u64 = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                        peak_kib = peak_kib.max(kib);
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = started.elapsed();
    for child in &mut children {
        assert!(child.wait().unwrap().success(), "a proof was not GO");
    }
    let mut evidence = Vec::new();
    for i in 0..copies {
        let dir = out.path().join(i.to_string());
        let run = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path();
        evidence.push(
            serde_json::from_str(&std::fs::read_to_string(run.join("evidence.json")).unwrap())
                .unwrap(),
        );
    }
    ProofRun {
        wall,
        peak_kib,
        evidence,
    }
}

fn proofs(service: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario(dir.path(), service);
    println!("\n## Full reference proof (release build)");
    let _warm = run_proofs(&scenario, 1); // fills the template cache
    let one = run_proofs(&scenario, 1);
    let evidence = &one.evidence[0];
    let total = Duration::from_millis(evidence["metadata"]["duration_ms"].as_u64().unwrap());
    println!(
        "wall time: {}   (gonogo's own clock: {})",
        ms(one.wall),
        ms(total)
    );
    let mut steps_ms = 0;
    for dep in evidence["dependencies"].as_array().unwrap() {
        println!(
            "  provision {:<9} {:>8} ms",
            dep["name"].as_str().unwrap(),
            dep["ready_ms"]
        );
    }
    for step in evidence["steps"].as_array().unwrap() {
        let d = step["duration_ms"].as_u64().unwrap();
        steps_ms += d;
        println!(
            "  step {:>2} {:<70} {:>6} ms",
            step["number"],
            step["title"].as_str().unwrap(),
            d
        );
    }
    let phases = &evidence["metadata"]["phases"];
    let in_steps = phases["steps_ms"].as_u64().unwrap_or(steps_ms);
    println!(
        "phases: provisioning {} ms, steps {in_steps} ms, teardown {} ms (step durations overlap: a dependency's four fault steps share one service)",
        phases["provision_ms"], phases["teardown_ms"]
    );
    let overhead = one.wall.saturating_sub(Duration::from_millis(in_steps));
    println!(
        "harness overhead outside the steps (start-up, provisioning, teardown, evidence): {}   (target ≤ 1 s)",
        ms(overhead)
    );
    println!("gonogo peak RSS: {} MiB", one.peak_kib / 1024);

    println!("\n## One proof versus four in parallel");
    let four = run_proofs(&scenario, 4);
    println!("1 proof:  {}", ms(one.wall));
    println!(
        "4 proofs: {}   ratio {:.2}×   (target ≤ 2×)",
        ms(four.wall),
        four.wall.as_secs_f64() / one.wall.as_secs_f64()
    );
    println!(
        "peak RSS of one gonogo among four: {} MiB",
        four.peak_kib / 1024
    );
}
