//! The provision stage against real servers: Postgres and Redis start,
//! enforce their passwords and stop; a cluster copied from the template
//! behaves like a fresh `initdb`; and nothing outlives a SIGKILLed `gonogo`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use gonogo::deps::Secret;
use gonogo::deps::embedded::redis::auth_and_ping;
use gonogo::deps::embedded::{
    BinarySearch, ClusterSource, Embedded, EmbeddedOptions, EmbeddedPostgres, PostgresOptions,
    RedisOptions, TempRoot,
};
use tokio::net::TcpStream;

use crate::support::{gonogo, leftovers, marker, processes_with_marker, reference_service, repo};

/// Whether `pid` is gone (or a zombie waiting for someone else to reap it).
fn is_gone(pid: u32) -> bool {
    let raw = libc::pid_t::try_from(pid).expect("pid fits");
    // SAFETY: signal 0 only checks for existence.
    if unsafe { libc::kill(raw, 0) } != 0 {
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
    })
}

fn wait_until_gone(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if is_gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    is_gone(pid)
}

/// Pids of the live children of `parent`. (Postgres's helpers each
/// `setsid()`, so they are not in the postmaster's process group.)
fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Fields after the command: state, ppid.
        if fields.get(1) == Some(&parent.to_string().as_str()) && fields[0] != "Z" {
            children.push(pid);
        }
    }
    children
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .unwrap_or_default()
}

/// Runs `psql <url>` with `args`, returning (success, stdout + stderr).
async fn psql(url: &Secret, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new("psql")
        .arg(url.expose())
        .args(["-X", "-A", "-t", "-w"])
        .args(args)
        .env_remove("PGPASSWORD")
        .env_remove("PGOPTIONS")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run psql (apt-get install postgresql-client)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn with_password(url: &Secret, real: &Secret, replacement: &str) -> Secret {
    Secret::new(url.expose().replace(real.expose(), replacement))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_servers_work_enforce_passwords_and_shut_down() {
    let started = Instant::now();
    let embedded = Embedded::start(&EmbeddedOptions::default())
        .await
        .expect("start embedded servers");
    let both_ready = started.elapsed();
    let root = embedded.root().to_path_buf();
    let postgres = embedded.postgres();
    let redis = embedded.redis();
    println!(
        "postgres {:?}; redis {:?}; both (concurrent) {both_ready:?}",
        postgres.timings(),
        redis.timings()
    );

    let name = root.file_name().expect("name").to_string_lossy();
    let owner = format!("gonogo-{}-", std::process::id());
    assert!(
        root.starts_with(gonogo::deps::embedded::default_temp_base()) && name.starts_with(&owner),
        "{}",
        root.display()
    );
    assert!(postgres.version().starts_with("PostgreSQL "));
    assert!(redis.version().starts_with("Redis "));
    assert_eq!(postgres.database(), "gonogo_app");
    assert!(!format!("{postgres:?}").contains(postgres.password().expose()));
    assert!(
        !postgres
            .redacted_url()
            .contains(postgres.password().expose())
    );
    assert!(postgres.url().expose().ends_with("/gonogo_app"));

    // Postgres: TCP, a real query through the URL, and a wrong password.
    TcpStream::connect(("127.0.0.1", postgres.port()))
        .await
        .expect("postgres accepts TCP");
    let (ok, out) = psql(&postgres.url(), &["-c", "select 1"]).await;
    assert!(ok && out.trim() == "1", "psql select 1: {out}");
    let wrong = with_password(&postgres.url(), postgres.password(), "wrongpassword");
    let (ok, out) = psql(&wrong, &["-c", "select 1"]).await;
    assert!(
        !ok && out.contains("password authentication failed"),
        "{out}"
    );

    // Redis: AUTH + PING, a wrong password, and no password in argv.
    auth_and_ping(redis.port(), redis.password())
        .await
        .expect("redis answers AUTH and PING");
    let refused = auth_and_ping(redis.port(), &Secret::new("wrongpassword"))
        .await
        .expect_err("a wrong password is refused");
    assert!(refused.to_string().contains("WRONGPASS"), "{refused}");
    assert!(!cmdline(redis.pid()).contains(redis.password().expose()));
    assert!(redis.url().expose().starts_with("redis://:"));

    let postgres_pid = postgres.pid();
    let redis_pid = redis.pid();
    let helpers = children_of(postgres_pid);
    assert!(helpers.len() > 2, "postgres has its helpers: {helpers:?}");

    let report = embedded.shutdown().await.expect("shut down");
    assert!(is_gone(postgres_pid) && is_gone(redis_pid));
    for helper in helpers {
        assert!(
            wait_until_gone(helper, Duration::from_secs(2)),
            "postgres helper {helper} left behind"
        );
    }
    assert!(!root.exists(), "temp root removed");
    assert!(
        report.postgres.status.success(),
        "postgres fast shutdown exits 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_embedded_stops_everything() {
    let embedded = Embedded::start(&EmbeddedOptions::default())
        .await
        .expect("start embedded servers");
    let root = embedded.root().to_path_buf();
    let mut pids = vec![embedded.postgres().pid(), embedded.redis().pid()];
    pids.extend(children_of(embedded.postgres().pid()));
    assert!(pids.len() > 4, "postgres has its helpers: {pids:?}");
    drop(embedded);
    for pid in pids {
        assert!(
            wait_until_gone(pid, Duration::from_secs(2)),
            "pid {pid} still running"
        );
    }
    assert!(!root.exists(), "temp root removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_binaries_say_what_to_install() {
    let nowhere = BinarySearch::new("/nonexistent-gonogo", "/nonexistent-gonogo");
    let options = EmbeddedOptions {
        postgres: PostgresOptions {
            binaries: nowhere.clone(),
            ..PostgresOptions::default()
        },
        ..EmbeddedOptions::default()
    };
    let error = Embedded::start(&options).await.expect_err("no postgres");
    let message = format!("{error:#}");
    assert!(message.contains("start embedded postgres"), "{message}");
    assert!(message.contains("apt-get install postgresql"), "{message}");

    let options = EmbeddedOptions {
        redis: RedisOptions {
            binaries: nowhere,
            ..RedisOptions::default()
        },
        ..EmbeddedOptions::default()
    };
    let error = Embedded::start(&options).await.expect_err("no redis");
    let message = format!("{error:#}");
    assert!(message.contains("start embedded redis"), "{message}");
    assert!(
        message.contains("apt-get install redis-server"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_and_detach_leave_the_servers_running() {
    let options = EmbeddedOptions {
        keep: true,
        ..EmbeddedOptions::default()
    };
    let embedded = Embedded::start(&options)
        .await
        .expect("start embedded servers");
    let (postgres, redis) = (embedded.postgres().pid(), embedded.redis().pid());
    let redis_port = embedded.redis().port();
    let password = embedded.redis().password().clone();
    let root = embedded.detach();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!is_gone(postgres) && !is_gone(redis));
    assert!(root.join("pg/data/PG_VERSION").exists());
    assert!(root.join(".kept").exists(), "later sweeps leave it alone");
    auth_and_ping(redis_port, &password)
        .await
        .expect("redis still answers");

    for (pid, signal) in [(postgres, libc::SIGQUIT), (redis, libc::SIGKILL)] {
        let raw = libc::pid_t::try_from(pid).expect("pid fits");
        // SAFETY: we started these processes; kill has no memory preconditions.
        unsafe { libc::kill(raw, signal) };
        assert!(
            wait_until_gone(pid, Duration::from_secs(5)),
            "pid {pid} survived"
        );
    }
    std::fs::remove_dir_all(&root).expect("remove the kept temp root");
}

/// Starts Postgres alone under `root` with `options`.
async fn start_postgres(root: &TempRoot, options: &PostgresOptions) -> EmbeddedPostgres {
    gonogo::deps::embedded::postgres::start(root.path(), options)
        .await
        .expect("start postgres")
}

/// What a cluster answers: the password check, the reference migrations
/// applied with `psql -f`, and a fixed set of queries and their results.
async fn behaviour(postgres: &EmbeddedPostgres) -> Vec<String> {
    let url = postgres.url();
    let mut seen = Vec::new();
    let (ok, out) = psql(&url, &["-c", "select current_user, current_database()"]).await;
    assert!(ok, "the per-run password works: {out}");
    seen.push(out);
    let wrong = with_password(&url, postgres.password(), "wrongpassword");
    let (ok, out) = psql(&wrong, &["-c", "select 1"]).await;
    assert!(
        !ok && out.contains("password authentication failed"),
        "a wrong password is refused: {out}"
    );
    let no_password = Secret::new(
        url.expose()
            .replace(&format!(":{}", postgres.password().expose()), ""),
    );
    let (ok, out) = psql(&no_password, &["-c", "select 1"]).await;
    assert!(!ok, "no password is refused: {out}");

    let migrations = repo().join("reference-service/migrations");
    let mut files: Vec<_> = std::fs::read_dir(&migrations)
        .expect("read migrations")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let file = file.display().to_string();
        let (ok, out) = psql(&url, &["-v", "ON_ERROR_STOP=1", "-q", "-f", &file]).await;
        assert!(ok, "{file}: {out}");
        seen.push(out);
    }

    for query in [
        "SELECT table_name, column_name, data_type, is_nullable, column_default \
         FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
        "INSERT INTO widgets (name) VALUES ('bolt'), ('nut') RETURNING id, name",
        "INSERT INTO widget_tags VALUES (1, 'metal'), (2, 'metal'), (2, 'small')",
        "INSERT INTO widgets (name) VALUES ('bolt')",
        "SELECT w.name, string_agg(t.tag, ',' ORDER BY t.tag) FROM widgets w \
         JOIN widget_tags t ON t.widget_id = w.id GROUP BY 1 ORDER BY 1",
        "DELETE FROM widgets WHERE name = 'nut'",
        "SELECT count(*) FROM widget_tags",
        "SELECT rolname, rolsuper, rolcanlogin FROM pg_roles WHERE rolname = current_user",
        "SELECT datname, pg_encoding_to_char(encoding), datcollate FROM pg_database ORDER BY 1",
        "SHOW server_encoding",
        "SHOW password_encryption",
    ] {
        let (_, out) = psql(&url, &["-c", query]).await;
        seen.push(format!("{query}\n{out}"));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_and_initdb_clusters_behave_the_same() {
    let cache = tempfile::tempdir().expect("cache dir");
    let cached = PostgresOptions {
        database: "widgets_db".to_owned(),
        template_cache: Some(cache.path().to_path_buf()),
        ..PostgresOptions::default()
    };
    let uncached = PostgresOptions {
        template_cache: None,
        ..cached.clone()
    };

    // The first run with an empty cache makes the template.
    let first_root = TempRoot::create().expect("temp root");
    let first = start_postgres(&first_root, &cached).await;
    assert_eq!(first.timings().source, ClusterSource::Initdb);
    assert!(first.timings().store_template.is_some());
    let templates: Vec<_> = std::fs::read_dir(cache.path())
        .expect("read cache")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(templates.len(), 1, "{templates:?}");
    assert!(templates[0].starts_with("pg-template-"), "{templates:?}");

    let (template_root, fresh_root) = (
        TempRoot::create().expect("temp root"),
        TempRoot::create().expect("temp root"),
    );
    let from_template = start_postgres(&template_root, &cached).await;
    let from_initdb = start_postgres(&fresh_root, &uncached).await;
    assert_eq!(from_template.timings().source, ClusterSource::Template);
    assert_eq!(from_template.timings().store_template, None);
    assert_eq!(from_initdb.timings().source, ClusterSource::Initdb);
    assert_eq!(from_initdb.timings().store_template, None);
    println!("first (initdb + store): {:?}", first.timings());
    println!("template: {:?}", from_template.timings());
    println!("initdb: {:?}", from_initdb.timings());

    let passwords = [
        first.password().clone(),
        from_template.password().clone(),
        from_initdb.password().clone(),
    ];
    assert_ne!(passwords[0], passwords[1], "each run has its own password");
    let (template_answers, initdb_answers) =
        tokio::join!(behaviour(&from_template), behaviour(&from_initdb));
    assert_eq!(template_answers, initdb_answers);
    assert!(
        template_answers
            .iter()
            .any(|answer| answer.contains("bolt|metal")),
        "{template_answers:#?}"
    );

    for postgres in [first, from_template, from_initdb] {
        postgres.shutdown().await.expect("stop postgres");
    }
    assert_no_secret_in(cache.path(), &passwords);
}

/// Fails if any file under `dir` contains any of `secrets`.
fn assert_no_secret_in(dir: &Path, secrets: &[Secret]) {
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).expect("read dir").flatten() {
            let path = entry.path();
            if entry.file_type().expect("file type").is_dir() {
                stack.push(path);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).expect("read file");
            for secret in secrets {
                let needle = secret.expose().as_bytes();
                assert!(
                    !bytes.windows(needle.len()).any(|window| window == needle),
                    "a password is in {}",
                    path.display()
                );
            }
        }
    }
    assert!(files > 100, "the cache holds a cluster ({files} files)");
}

#[test]
fn sigkilled_gonogo_leaves_no_server_and_its_root_is_swept() {
    reference_service();
    let out = tempfile::tempdir().expect("tempdir");
    let marker = marker("sigkill");
    let mut command = gonogo(&marker);
    command
        .args(["run", "scenarios/reference.toml", "--out"])
        .arg(out.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn gonogo");
    let gonogo_pid = child.id();
    let stderr = child.stderr.take().expect("piped");
    let mut seen = String::new();
    let started = Instant::now();
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.expect("read stderr");
        seen.push_str(&line);
        seen.push('\n');
        // Step 3 (the negative proof) runs the service, Postgres and Redis.
        if line.contains("[3/") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{seen}");
    }
    std::thread::spawn(move || for _ in lines {});
    std::thread::sleep(Duration::from_millis(300));
    // redis-server rewrites its environment (setproctitle), hiding the
    // marker; it is a direct child of gonogo, so count those too.
    let mut running = processes_with_marker(&marker);
    for child in children_of(gonogo_pid) {
        if running.iter().all(|(pid, _)| *pid != child) {
            running.push((child, cmdline(child)));
        }
    }
    // Postgres's helpers overwrite theirs too (the process title).
    let postmasters: Vec<u32> = running
        .iter()
        .filter(|(_, cmd)| cmd.contains("bin/postgres"))
        .map(|(pid, _)| *pid)
        .collect();
    for postmaster in postmasters {
        let helpers = children_of(postmaster);
        assert!(helpers.len() > 2, "postgres has its helpers: {helpers:?}");
        running.extend(helpers.into_iter().map(|pid| (pid, cmdline(pid))));
    }
    for server in ["postgres", "redis-server", "reference-service"] {
        assert!(
            running.iter().any(|(_, cmd)| cmd.contains(server)),
            "{server} is running before the kill: {running:#?}\n{seen}"
        );
    }
    let root = std::fs::read_dir(gonogo::deps::embedded::default_temp_base())
        .expect("read the temp base")
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name().is_some_and(|n| {
                n.to_string_lossy()
                    .starts_with(&format!("gonogo-{gonogo_pid}-"))
            })
        })
        .expect("gonogo's temp root carries its pid");

    child.kill().expect("SIGKILL gonogo");
    child.wait().expect("reap gonogo");
    let killed = Instant::now();
    for (pid, cmd) in &running {
        assert!(
            wait_until_gone(
                *pid,
                Duration::from_secs(3).saturating_sub(killed.elapsed())
            ),
            "{cmd} ({pid}) outlived gonogo by 3 s"
        );
    }
    println!(
        "{} processes gone {:?} after the kill",
        running.len(),
        killed.elapsed()
    );
    assert_eq!(leftovers(&marker), Vec::new(), "no marked process is left");

    // Nothing ran Drop: the root is still there, until the next harness
    // creates its own root and sweeps it.
    assert!(root.exists(), "{} was left by the kill", root.display());
    drop(TempRoot::create().expect("temp root"));
    assert!(!root.exists(), "{} was swept", root.display());
}
