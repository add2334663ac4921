//! What `gonogo run --keep` leaves behind, and `gonogo stop DIR`, which
//! ends it. Takes the kept temp root and its servers; writes two files in
//! the root:
//!
//! - `connection.env`: the servers' URLs **with their passwords**, mode
//!   0600 from creation. It is deliberately secret-bearing, lives only in
//!   the kept temp root (never in the evidence), and goes when `gonogo
//!   stop` removes the root.
//! - `pids`: each server's name, pid, start time (clock ticks after boot,
//!   so a reused pid is never mistaken for it) and stop signal.
//!
//! `gonogo stop DIR` signals each recorded server that is still the same
//! process (Postgres `SIGINT`, its fast shutdown, as `pg_ctl stop -m fast`
//! does; Redis `SIGTERM`), waits, ends whatever is left of their trees
//! (`SIGTERM`, then `SIGKILL`), then removes the directory.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::process::tree::{self, Identity};
use crate::service::shell_quote;

/// The file with the URLs (and passwords) in a kept root.
pub const CONNECTION_ENV: &str = "connection.env";
/// The file with the servers' identities in a kept root.
pub const PIDS: &str = "pids";
/// How long `gonogo stop` waits for a server's own shutdown.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// How long the leftovers get after `SIGTERM`, before `SIGKILL`.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

/// One server left running.
#[derive(Debug, Clone)]
pub struct KeptServer {
    pub name: &'static str,
    pub pid: u32,
    /// The signal that stops it cleanly.
    pub stop_signal: crate::process::Signal,
}

fn signal_name(signal: crate::process::Signal) -> &'static str {
    use crate::process::Signal;
    match signal {
        Signal::Term => "TERM",
        Signal::Int => "INT",
        Signal::Quit => "QUIT",
        Signal::Kill => "KILL",
    }
}

fn signal_from(name: &str) -> Option<libc::c_int> {
    Some(match name {
        "TERM" => libc::SIGTERM,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        _ => return None,
    })
}

/// Writes `connection.env` (mode 0600) and `pids` into the kept `root`;
/// gives the line to show the user (no password in it).
pub fn record(root: &Path, servers: &[KeptServer], urls: &[(&str, String)]) -> String {
    let stop = format!("gonogo stop {}", shell_quote(&root.display().to_string()));
    match write_files(root, servers, urls, &stop) {
        Ok(()) => format!(
            "servers still running; their URLs, with passwords, are in {} (secret: mode 0600, never part of the evidence); stop them and remove {} with `{stop}`",
            root.join(CONNECTION_ENV).display(),
            root.display()
        ),
        Err(e) => format!(
            "servers still running in {}, but their connection details could not be written ({e}); stop them with `{stop}`",
            root.display()
        ),
    }
}

fn write_files(
    root: &Path,
    servers: &[KeptServer],
    urls: &[(&str, String)],
    stop: &str,
) -> std::io::Result<()> {
    let mut pids =
        String::from("# name pid start-time stop-signal (written by gonogo run --keep)\n");
    for server in servers {
        // A server without an identity has already exited: nothing to stop.
        if let Some(identity) = Identity::of(server.pid) {
            let _ = writeln!(
                pids,
                "{} {} {} {}",
                server.name,
                identity.pid,
                identity.start,
                signal_name(server.stop_signal)
            );
        }
    }
    std::fs::write(root.join(PIDS), pids)?;
    let mut env = format!(
        "# Written by gonogo run --keep. SECRET: these URLs hold the servers' passwords.\n\
         # It is not part of the evidence; do not commit or attach it.\n\
         # Load it with: set -a; . {0}; set +a\n\
         # Stop the servers and remove this directory with: {stop}\n",
        shell_quote(&root.join(CONNECTION_ENV).display().to_string())
    );
    for (key, url) in urls {
        let _ = writeln!(env, "{key}={}", shell_quote(url));
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(root.join(CONNECTION_ENV))?;
    file.write_all(env.as_bytes())
}

/// One line of `pids`.
struct Recorded {
    name: String,
    identity: Identity,
    signal: libc::c_int,
}

fn parse_pids(text: &str) -> std::result::Result<Vec<Recorded>, String> {
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let parsed = match words.as_slice() {
            [name, pid, start, signal] => pid
                .parse()
                .ok()
                .zip(start.parse().ok())
                .zip(signal_from(signal).map(|s| (name.to_string(), s))),
            _ => None,
        };
        let Some(((pid, start), (name, signal))) = parsed else {
            return Err(format!(
                "line {}: expected `name pid start signal`",
                number + 1
            ));
        };
        out.push(Recorded {
            name,
            identity: Identity { pid, start },
            signal,
        });
    }
    Ok(out)
}

/// Stops one recorded server and its tree; says how it went.
fn stop_server(server: &Recorded) -> String {
    let Recorded { name, identity, .. } = server;
    if !identity.alive() {
        return format!("{name} (pid {}) was not running", identity.pid);
    }
    let began = Instant::now();
    let mut tree: Vec<Identity> = vec![*identity];
    tree.extend(tree::descendants(identity.pid).iter().map(|p| p.identity()));
    identity.signal(server.signal);
    while identity.alive() && began.elapsed() < STOP_WAIT {
        std::thread::sleep(Duration::from_millis(20));
    }
    let clean = !identity.alive();
    let left = tree::end_blocking(&tree, LEFTOVER_GRACE, &|_| false);
    let took = crate::progress::secs(began.elapsed());
    match (clean, left.is_empty()) {
        (true, true) => format!("stopped {name} (pid {}) in {took}", identity.pid),
        (false, true) => format!(
            "{name} (pid {}) ignored its stop signal for {} s and was killed",
            identity.pid,
            STOP_WAIT.as_secs()
        ),
        (_, false) => format!(
            "{name} (pid {}): could not end {:?}",
            identity.pid,
            left.iter().map(|i| i.pid).collect::<Vec<_>>()
        ),
    }
}

/// `gonogo stop DIR`: stops what a `--keep` run left in `dir`, then
/// removes `dir`. Gives one line per server and one for the directory.
pub fn stop(dir: &Path) -> Result<Vec<String>> {
    let not_kept = |why: &str| {
        Error::Usage(format!(
            "{} is not a directory left by `gonogo run --keep`: {why}",
            dir.display()
        ))
    };
    if !dir.join(".kept").is_file() {
        return Err(not_kept("it has no `.kept` marker"));
    }
    let text = std::fs::read_to_string(dir.join(PIDS))
        .map_err(|e| not_kept(&format!("read its `{PIDS}` file: {e}")))?;
    let servers = parse_pids(&text).map_err(|e| not_kept(&format!("its `{PIDS}` file, {e}")))?;
    let mut lines: Vec<String> = servers.iter().map(stop_server).collect();
    let failed = lines.iter().any(|l| l.contains("could not end"));
    if failed {
        return Err(Error::Harness(anyhow::anyhow!(
            "{}; {} was kept",
            lines.join("; "),
            dir.display()
        )));
    }
    std::fs::remove_dir_all(dir).map_err(|e| {
        Error::Harness(anyhow::anyhow!(
            "{}; remove {}: {e}",
            lines.join("; "),
            dir.display()
        ))
    })?;
    lines.push(format!("removed {}", dir.display()));
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::{CONNECTION_ENV, KeptServer, PIDS, parse_pids, record, stop};
    use crate::process::Signal;
    use crate::process::tree::Identity;

    #[test]
    fn records_a_private_env_file_and_stops_what_it_names() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().expect("tempdir");
        let root = base.path().join("gonogo-1-abcdefgh");
        std::fs::create_dir(&root).expect("mkdir");
        std::fs::write(root.join(".kept"), b"").expect("marker");
        let mut server = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn");
        let identity = Identity::of(server.id()).expect("identity");
        let kept = [KeptServer {
            name: "sleeper",
            pid: server.id(),
            stop_signal: Signal::Term,
        }];
        let urls = [("REDIS_URL", "redis://:pw@127.0.0.1:1/0".to_string())];
        let line = record(&root, &kept, &urls);
        assert!(line.contains("gonogo stop"), "{line}");
        assert!(!line.contains("pw@"), "{line}");
        let env = root.join(CONNECTION_ENV);
        let mode = std::fs::metadata(&env).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&env).expect("read");
        assert!(
            text.contains("\nREDIS_URL=redis://:pw@127.0.0.1:1/0\n"),
            "{text}"
        );
        let pids = std::fs::read_to_string(root.join(PIDS)).expect("pids");
        assert_eq!(parse_pids(&pids).expect("parses").len(), 1);

        // Reap the sleep from here once stop has signalled it.
        let reaper = std::thread::spawn(move || server.wait());
        let lines = stop(&root).expect("stop");
        assert!(lines[0].starts_with("stopped sleeper"), "{lines:?}");
        reaper.join().expect("join").expect("reaped");
        assert!(!identity.alive());
        assert!(!root.exists(), "the kept root is removed");
    }

    #[test]
    fn refuses_a_directory_that_was_not_kept() {
        let base = tempfile::tempdir().expect("tempdir");
        let error = stop(base.path()).expect_err("not kept");
        assert!(
            error.to_string().contains("not a directory left by"),
            "{error}"
        );
        assert!(base.path().exists());
        assert!(parse_pids("postgres 1 2 HUP").is_err());
        assert!(parse_pids("postgres x 2 TERM").is_err());
    }
}
