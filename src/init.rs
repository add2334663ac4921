//! `gonogo init`: a few facts about a service in ([`InitOptions`]: its
//! start command, health paths, migration commands), a commented starter
//! scenario out. The text is checked with the scenario loader before it is
//! written, so what `init` writes always passes `gonogo validate`.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

/// What `gonogo init` was told.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Scenario name (default: the output file's stem).
    pub name: Option<String>,
    /// The start command, as a shell-like line; `{{port}}` where the port goes.
    pub command: String,
    /// The service's working directory (default: the current directory).
    pub workdir: PathBuf,
    pub ready_path: String,
    pub live_path: String,
    pub version_path: Option<String>,
    /// The migration command, e.g. `alembic upgrade head`.
    pub migrate: Option<String>,
    /// The command that shows the current revision, e.g. `alembic current`.
    pub current: Option<String>,
}

/// Split a shell-like line into argv: whitespace separates, single and
/// double quotes group, backslash escapes outside single quotes.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated single quote in `{line}`")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => word.push(c),
                            None => return Err(format!("trailing backslash in `{line}`")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated double quote in `{line}`")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err(format!("trailing backslash in `{line}`")),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err("the command is empty".into());
    }
    Ok(words)
}

/// `to` relative to `from` (both absolute), e.g. `..` or `../service`.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to[common..] {
        out.push(part);
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// A TOML string literal.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn argv(words: &[String]) -> String {
    format!(
        "[{}]",
        words
            .iter()
            .map(|w| quoted(w))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The `[migrations]` section, or the comment that explains it.
fn migrations(t: &mut String, options: &InitOptions, workdir: &Path) -> Result<(), String> {
    match &options.migrate {
        Some(migrate) => {
            let words = split_words(migrate)?;
            let _ = writeln!(
                t,
                "# Step 1: gonogo runs the migration, then `current` must show `current_expect`.\n\
                 # With --deps external only `current` runs, unless `external = true`.\n\
                 [migrations]\n\
                 command = {}\n\
                 workdir = {}",
                argv(&words),
                quoted(&workdir.display().to_string())
            );
            match &options.current {
                Some(current) => {
                    let _ = writeln!(
                        t,
                        "current = {}\ncurrent_expect = \"(head)\"",
                        argv(&split_words(current)?)
                    );
                }
                None => t.push_str(
                    "# current = [\"alembic\", \"current\"]   # proves the schema is at head\n\
                     # current_expect = \"(head)\"\n",
                ),
            }
            t.push_str("timeout = \"120s\"\n# external = true   # also migrate external servers (--deps external)\n\n");
        }
        None => t.push_str(
            "# Step 1: without [migrations] the migration gate is NOT RUN and the verdict\n\
             # INCONCLUSIVE. Either a command:\n\
             # [migrations]\n\
             # command = [\"alembic\", \"upgrade\", \"head\"]\n\
             # current = [\"alembic\", \"current\"]\n\
             # or a directory of sqlx-style SQL files that gonogo applies itself:\n\
             # dir = \"migrations\"\n\n",
        ),
    }
    Ok(())
}

/// Steps 2 to 4, the faults and how to waive or rule out a step.
const STEPS: &str = "# Step 2: ready must answer 200 with every dependency connected. Adjust the\n\
         # JSON pointers to your ready body.\n\
         [ready]\n\
         status = 200\n\
         settle = \"10s\"\n\
         expect = [\n  \
           { pointer = \"/dependencies/database\", equals = \"connected\" },\n  \
           { pointer = \"/dependencies/redis\", equals = \"connected\" },\n\
         ]\n\n\
         # Step 3: restarted with its Redis URL at the closed port 127.0.0.1:1,\n\
         # ready must answer 503 and name Redis.\n\
         [negative]\n\
         status = 503\n\
         body_names = \"Redis\"\n\n\
         # Step 4: in strict mode, with REDIS_URL unset, DATABASE_URL unset or a\n\
         # sqlite DATABASE_URL, the service must exit non-zero without answering.\n\
         # The default cases follow the variables above; list your own with\n\
         # [[failfast.case]].\n\
         [failfast]\n\
         deadline = \"10s\"\n\n\
         # Runtime faults through gonogo's TCP proxy: outage, liveness isolation,\n\
         # timeout discipline and recovery, for Postgres and Redis.\n\
         [faults]\n\
         targets = [\"postgres\", \"redis\"]\n\n\
         # A step that cannot run (for example with --service-url) is NOT RUN and\n\
         # the verdict INCONCLUSIVE, unless a signed-off waiver covers it:\n\
         # [[waiver]]\n\
         # step = \"negative-proof\"\n\
         # justification = \"proved in CI with embedded servers\"\n\
         # approver = \"you@example.com\"\n\
         # expires = \"2030-01-01\"\n\n\
         # A step that cannot apply to this service (no strict mode, say) can be\n\
         # declared NOT APPLICABLE, with the reason every report shows:\n\
         # [[not_applicable]]\n\
         # step = \"fail-fast\"\n\
         # reason = \"the service has no strict mode; it always starts\"\n";

/// The scenario text for `options`, to be written at `out` (absolute).
pub fn render(options: &InitOptions, out: &Path) -> Result<String, String> {
    let command = split_words(&options.command)?;
    let dir = out.parent().unwrap_or(Path::new("/"));
    let workdir = relative(dir, &options.workdir);
    let name = options.name.clone().unwrap_or_else(|| {
        out.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "service".into())
    });
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# gonogo scenario for `{name}`, written by `gonogo init`.\n\
         # Check it with `gonogo validate {file}`, then prove the service with\n\
         # `gonogo run {file}` (private Postgres and Redis), `--deps external`\n\
         # (DATABASE_URL and REDIS_URL from your environment) or `--service-url URL`\n\
         # (a service that is already running). Reference: docs/own-service.md.\n",
        file = out
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let _ = writeln!(t, "name = {}\n", quoted(&name));
    let _ = writeln!(
        t,
        "[service]\n\
         # argv; a path with a `/` is relative to `workdir`, a bare name is looked\n\
         # up on PATH. gonogo fills in {{{{port}}}} with a fresh port for each start.\n\
         command = {}\n\
         # Relative to this file.\n\
         workdir = {}\n\
         ready_path = {}\n\
         live_path = {}",
        argv(&command),
        quoted(&workdir.display().to_string()),
        quoted(&options.ready_path),
        quoted(&options.live_path),
    );
    match &options.version_path {
        Some(path) => {
            let _ = writeln!(t, "version_path = {}", quoted(path));
        }
        None => {
            t.push_str("# version_path = \"/version\"   # captured for the report's metadata\n")
        }
    }
    t.push_str(
        "startup_timeout = \"30s\"\n\n\
         # The service's environment; placeholders are filled in per start.\n\
         # Rename the variables to what your service reads; use {{database_host}},\n\
         # {{database_port}}, {{database_user}}, {{database_password}} and\n\
         # {{database_name}} to build other URL forms (postgresql+asyncpg://...).\n\
         [service.env]\n\
         HOST = \"{{host}}\"\n\
         PORT = \"{{port}}\"\n\
         DATABASE_URL = \"{{database_url}}\"\n\
         REDIS_URL = \"{{redis_url}}\"\n\
         # Strict mode: the service must refuse to boot without its dependencies.\n\
         # CI_STRICT = \"1\"\n\n",
    );
    migrations(&mut t, options, &workdir)?;
    t.push_str(STEPS);
    crate::scenario::load_str(out, &t).map_err(|e| format!("check the generated scenario: {e}"))?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            split_words(r#"uvicorn server:app --port {{port}} --log-level 'debug info' "a\"b""#)
                .unwrap(),
            [
                "uvicorn",
                "server:app",
                "--port",
                "{{port}}",
                "--log-level",
                "debug info",
                "a\"b"
            ]
        );
        assert!(split_words("  ").is_err());
        assert!(split_words("a 'b").is_err());
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative(Path::new("/a/b"), Path::new("/a/b")),
            PathBuf::from(".")
        );
        assert_eq!(
            relative(Path::new("/a/b/s"), Path::new("/a/b")),
            PathBuf::from("..")
        );
        assert_eq!(
            relative(Path::new("/a/s"), Path::new("/a/b/c")),
            PathBuf::from("../b/c")
        );
    }

    #[test]
    fn the_starter_scenario_validates() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("svc.toml");
        let text = render(
            &InitOptions {
                name: None,
                command: "uvicorn server:app --port {{port}}".into(),
                workdir: dir.path().to_path_buf(),
                ready_path: "/api/ready".into(),
                live_path: "/api/live".into(),
                version_path: Some("/api/version".into()),
                migrate: Some("alembic upgrade head".into()),
                current: Some("alembic current".into()),
            },
            &out,
        )
        .unwrap();
        let scenario = crate::scenario::load_str(&out, &text).unwrap();
        assert_eq!(scenario.name, "svc");
        assert_eq!(scenario.service.ready_path, "/api/ready");
        assert!(scenario.migrations.is_some());
    }
}
