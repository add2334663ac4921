//! gonogo from a service's repository. The GitHub Action (action.yml) runs
//! step by step as GitHub runs a composite action, with the scripts of
//! scripts/ci/: it installs gonogo with `cargo install` outside gonogo's
//! checkout, proves a copy of examples/fastapi-backend that is its own git
//! repository, and gates on the verdict (GO passes, NO-GO fails with the
//! evidence still there to upload). The Action, the GitLab component and
//! the scripts agree on inputs and outputs. `gonogo doctor --install`
//! names the packages for what is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::support::{leftovers, marker, repo, run_with_limit, stderr, stdout};

/// One step of the Action (a build on a cold cache included).
const STEP_LIMIT: Duration = Duration::from_secs(900);

/// Every YAML document in `path`, as JSON values.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    parse_yaml(&text).unwrap_or_else(|e| panic!("{} parses: {e}", path.display()))
}

fn parse_yaml(text: &str) -> Result<Vec<Value>, saphyr::ScanError> {
    use saphyr::LoadableYamlNode as _;
    Ok(saphyr::YamlOwned::load_from_str(text)?
        .iter()
        .map(to_json)
        .collect())
}

fn to_json(node: &saphyr::YamlOwned) -> Value {
    use saphyr::{ScalarOwned, YamlOwned};
    match node {
        YamlOwned::Value(ScalarOwned::Null) => Value::Null,
        YamlOwned::Value(ScalarOwned::Boolean(b)) => Value::Bool(*b),
        YamlOwned::Value(ScalarOwned::Integer(i)) => Value::from(*i),
        YamlOwned::Value(ScalarOwned::FloatingPoint(f)) => Value::from(f.0),
        YamlOwned::Value(ScalarOwned::String(s)) | YamlOwned::Representation(s, _, _) => {
            Value::String(s.clone())
        }
        YamlOwned::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        YamlOwned::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match to_json(k) {
                    Value::String(key) => (key, to_json(v)),
                    other => (other.to_string(), to_json(v)),
                })
                .collect(),
        ),
        YamlOwned::Tagged(_, inner) => to_json(inner),
        other => panic!("YAML the test does not handle: {other:?}"),
    }
}

fn action() -> Value {
    let mut docs = yaml_documents(&repo().join("action.yml"));
    assert_eq!(docs.len(), 1);
    docs.remove(0)
}

fn keys(value: &Value) -> Vec<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("a mapping: {value}"))
        .keys()
        .cloned()
        .collect()
}

fn script(name: &str) -> PathBuf {
    repo().join("scripts/ci").join(name)
}

/// What one run of the Action left: its outputs, every step's outputs, the
/// job summary, the log, the upload's path and the first failed step.
struct ActionRun {
    outputs: BTreeMap<String, String>,
    summary: String,
    log: String,
    uploaded: Option<PathBuf>,
    failed: Option<(String, Option<i32>)>,
}

/// Runs the Action as GitHub runs a composite action: each step in order,
/// `${{ }}` filled from the inputs (or their defaults) and the earlier
/// steps' outputs, each `run` with bash in its working directory with its
/// own GITHUB_OUTPUT and GITHUB_STEP_SUMMARY; after a failure only steps
/// whose `if` says `always()` run. `uses:` steps are not run: the cache
/// misses, and the upload's `path` is recorded. An expression or action it
/// does not know fails the test, so action.yml cannot drift from it.
fn run_action(
    inputs: &[(&str, &str)],
    workspace: &Path,
    runner: &Path,
    env: &[(&str, String)],
) -> ActionRun {
    let action = action();
    let mut ctx = Context {
        inputs: BTreeMap::new(),
        steps: BTreeMap::new(),
    };
    for (name, spec) in action["inputs"].as_object().unwrap() {
        let default = spec["default"].as_str().unwrap_or("").to_string();
        ctx.inputs.insert(name.clone(), default);
    }
    for (name, value) in inputs {
        assert!(
            ctx.inputs.contains_key(*name),
            "action.yml has no input {name}"
        );
        ctx.inputs.insert((*name).to_string(), (*value).to_string());
    }
    let mut run = ActionRun {
        outputs: BTreeMap::new(),
        summary: String::new(),
        log: String::new(),
        uploaded: None,
        failed: None,
    };
    for (index, step) in action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let name = step["name"].as_str().unwrap_or("?").to_string();
        let condition = step["if"].as_str().unwrap_or("");
        let always = condition.contains("always()");
        if (run.failed.is_some() && !always) || !ctx.condition(condition) {
            continue;
        }
        let id = step["id"]
            .as_str()
            .map_or(format!("#{index}"), String::from);
        if let Some(uses) = step["uses"].as_str() {
            let outputs = ctx.uses(uses, step, &mut run);
            ctx.steps.insert(id, outputs);
            continue;
        }
        let (outputs, code) = ctx.run_step(step, workspace, runner, env, &mut run);
        ctx.steps.insert(id, outputs);
        if code != Some(0) && run.failed.is_none() {
            run.failed = Some((name, code));
        }
    }
    for (name, spec) in action["outputs"].as_object().unwrap() {
        let value = ctx.expand(spec["value"].as_str().unwrap());
        run.outputs.insert(name.clone(), value);
    }
    run
}

struct Context {
    inputs: BTreeMap<String, String>,
    steps: BTreeMap<String, BTreeMap<String, String>>,
}

impl Context {
    /// The value of `inputs.NAME` or `steps.ID.outputs.NAME`.
    fn resolve(&self, expression: &str) -> String {
        let parts: Vec<&str> = expression.trim().split('.').collect();
        match parts.as_slice() {
            ["inputs", name] => self
                .inputs
                .get(*name)
                .unwrap_or_else(|| panic!("no input {name}"))
                .clone(),
            ["steps", id, "outputs", name] => self
                .steps
                .get(*id)
                .and_then(|o| o.get(*name))
                .cloned()
                .unwrap_or_default(),
            _ => panic!("expression the test does not know: {expression}"),
        }
    }

    fn expand(&self, text: &str) -> String {
        let pattern = regex::Regex::new(r"\$\{\{\s*(.*?)\s*\}\}").unwrap();
        pattern
            .replace_all(text, |c: &regex::Captures| self.resolve(&c[1]))
            .into_owned()
    }

    /// `always()`, `A != 'B'`, `A == 'B'`, joined by `&&`.
    fn condition(&self, text: &str) -> bool {
        if text.trim().is_empty() {
            return true;
        }
        text.split("&&").all(|term| {
            let term = term.trim();
            if term == "always()" {
                return true;
            }
            let (left, right, equal) = match (term.split_once("!="), term.split_once("==")) {
                (Some((l, r)), _) => (l, r, false),
                (None, Some((l, r))) => (l, r, true),
                _ => panic!("condition the test does not know: {term}"),
            };
            let right = right.trim().trim_matches('\'');
            (self.resolve(left) == right) == equal
        })
    }

    fn uses(&self, uses: &str, step: &Value, run: &mut ActionRun) -> BTreeMap<String, String> {
        let with = |key: &str| self.expand(step["with"][key].as_str().unwrap_or(""));
        let action = uses.split('@').next().unwrap();
        match action {
            "actions/cache/restore" => {
                assert!(!with("path").is_empty() && !with("key").is_empty());
                BTreeMap::from([("cache-hit".to_string(), "false".to_string())])
            }
            "actions/cache/save" => BTreeMap::new(),
            "actions/upload-artifact" => {
                run.uploaded = Some(PathBuf::from(with("path")));
                BTreeMap::new()
            }
            _ => panic!("action the test does not know: {uses}"),
        }
    }

    fn run_step(
        &self,
        step: &Value,
        workspace: &Path,
        runner: &Path,
        env: &[(&str, String)],
        run: &mut ActionRun,
    ) -> (BTreeMap<String, String>, Option<i32>) {
        let files = tempfile::tempdir_in(runner).unwrap();
        let output_file = files.path().join("output");
        let summary_file = files.path().join("summary");
        std::fs::write(&output_file, "").unwrap();
        let dir = match step["working-directory"].as_str() {
            Some(d) => workspace.join(self.expand(d)),
            None => workspace.to_path_buf(),
        };
        let mut command = Command::new("bash");
        clean_env(&mut command);
        command
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
            .arg(self.expand(step["run"].as_str().unwrap()))
            .current_dir(dir)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_ACTION_PATH", repo())
            .env("GITHUB_WORKSPACE", workspace)
            .env("GITHUB_OUTPUT", &output_file)
            .env("GITHUB_STEP_SUMMARY", &summary_file)
            .env("GITHUB_PATH", runner.join("github-path"))
            .env("RUNNER_TEMP", runner);
        for (key, value) in env {
            command.env(key, value);
        }
        if let Some(vars) = step["env"].as_object() {
            for (key, value) in vars {
                command.env(key, self.expand(value.as_str().unwrap()));
            }
        }
        let output = run_with_limit(command, STEP_LIMIT);
        run.log.push_str(&format!(
            "== {}\n{}{}",
            step["name"].as_str().unwrap_or("?"),
            stdout(&output),
            stderr(&output)
        ));
        run.summary
            .push_str(&std::fs::read_to_string(&summary_file).unwrap_or_default());
        (parse_outputs(&output_file), output.status.code())
    }
}

/// Keeps gonogo's own build variables (they name its checkout) away from
/// the steps, as in a service's CI job.
fn clean_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" {
            command.env_remove(&*key);
        }
    }
    command.env_remove("GITHUB_STEP_SUMMARY");
}

/// `KEY=VALUE` lines of a GITHUB_OUTPUT file (the only form the scripts write).
fn parse_outputs(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let (k, v) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=VALUE: {line}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A copy of examples/fastapi-backend as a service's own git repository,
/// with its scenario at the root as `gonogo.toml`
/// (scenarios/fastapi-backend.toml with `workdir = "."` and a latency SLO
/// a loaded machine meets). The virtualenv is
/// linked, not copied: a venv cannot move. Gives the commit's SHA.
fn service_repository(dir: &Path) -> String {
    copy_tree(&repo().join("examples/fastapi-backend"), dir);
    std::os::unix::fs::symlink(
        repo().join("examples/fastapi-backend/.venv"),
        dir.join(".venv"),
    )
    .unwrap();
    let scenario = std::fs::read_to_string(repo().join("scenarios/fastapi-backend.toml")).unwrap();
    let moved = scenario.replace(
        "workdir = \"../examples/fastapi-backend\"",
        "workdir = \".\"",
    );
    assert_ne!(moved, scenario, "the scenario's workdir line changed");
    // The deploy files sit beside gonogo.toml in the service's repository.
    let moved = moved.replace("\"../examples/fastapi-backend/deploy/", "\"deploy/");
    assert!(
        !moved.contains("\"../"),
        "a path still leaves the repository"
    );
    assert!(
        !moved.contains("[latency]"),
        "the scenario now sets [latency]"
    );
    // What is under test is the gate, not this machine's speed: the tests
    // run proofs side by side, so a loaded runner must not turn GO into
    // NO-GO through the latency SLO.
    let moved = format!("{moved}\n[latency]\nrequests = 50\np95_ms = 2000\n");
    std::fs::write(dir.join("gonogo.toml"), moved).unwrap();
    std::fs::write(dir.join(".gitignore"), ".venv\n__pycache__/\n").unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=ci", "-c", "user.email=ci@example.com"])
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run git");
        assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
        stdout(&out).trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "service"]);
    git(&["rev-parse", "HEAD"])
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        if name == ".venv" || name == "__pycache__" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// The environment of a service's CI job running the Action: gonogo
/// installed (debug, reusing this checkout's build directory so it is not
/// built from scratch) into `install`, outside the checkout.
fn job_env(install: &Path, marker: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GONOGO_INSTALL_ROOT", install.display().to_string()),
        ("GONOGO_INSTALL_DEBUG", "1".into()),
        (
            "CARGO_TARGET_DIR",
            repo().join("target").display().to_string(),
        ),
        ("GONOGO_TEST_MARKER", marker.to_string()),
        ("NO_COLOR", "1".into()),
    ]
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_action_installs_gonogo_and_gates_a_service_repository() {
    if !repo()
        .join("examples/fastapi-backend/.venv/bin/uvicorn")
        .is_file()
    {
        println!(
            "SKIPPED the_action_installs_gonogo_and_gates_a_service_repository: \
             examples/fastapi-backend/.venv is missing; run examples/fastapi-backend/setup"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (workspace, runner, install) = (
        tmp.path().join("service"),
        tmp.path().join("runner"),
        tmp.path().join("install"),
    );
    std::fs::create_dir_all(&runner).unwrap();
    let sha = service_repository(&workspace);
    let marker = marker("ci-action");
    let env = job_env(&install, &marker);

    let go = run_action(
        &[
            ("scenario", "gonogo.toml"),
            ("args", "--quiet --operator 'CI bot'"),
        ],
        &workspace,
        &runner,
        &env,
    );
    assert!(leftovers(&marker).is_empty(), "processes left behind");
    let log = &go.log;
    assert!(go.failed.is_none(), "{:?}\n{log}", go.failed);
    assert!(log.contains("gonogo 0."), "the installed binary ran: {log}");
    assert!(install.join("bin/gonogo").is_file());
    assert_go_outputs(&go, &sha);

    // NO-GO: the service started without strict mode boots without its
    // dependencies, so fail-fast fails. The job fails at the run step, and
    // the evidence is where the upload step reads it.
    let no_go = run_action(
        &[
            ("scenario", "gonogo.toml"),
            ("args", "--quiet --env ENV=dev --env CI_STRICT=0"),
            ("artifact-name", "evidence-no-go"),
        ],
        &workspace,
        &runner,
        &env,
    );
    assert!(leftovers(&marker).is_empty(), "processes left behind");
    assert_no_go_outputs(&no_go);
}

fn assert_go_outputs(go: &ActionRun, sha: &str) {
    let log = &go.log;
    let out = &go.outputs;
    assert_eq!(out["verdict"], "GO", "{log}");
    assert_eq!(out["exit-code"], "0", "{log}");
    let dir = PathBuf::from(&out["evidence-dir"]);
    let uploaded = go.uploaded.clone().expect("the upload step ran");
    assert_eq!(dir.parent(), Some(uploaded.as_path()), "{log}");
    assert!(
        !dir.starts_with(repo()),
        "evidence inside gonogo's checkout: {log}"
    );
    let report = std::fs::read_to_string(&out["report"]).unwrap();
    assert!(report.contains("**Verdict: GO**"), "{report}");
    assert!(report.contains("; operator CI bot"), "{report}");
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    assert_eq!(
        out["manifest-sha256"],
        gonogo::digest::sha256_hex(&manifest)
    );
    for file in ["evidence.json", "junit.xml", "readiness-scorecard.json"] {
        assert!(dir.join(file).is_file(), "{file} missing: {log}");
    }
    let manifest = read_json(&dir.join("manifest.json"));
    assert_eq!(manifest["service_git_sha"], sha, "the service's own commit");
    assert_eq!(manifest["scenario"]["path"], "gonogo.toml");
    // The linked virtualenv lives in the checkout (Python tracebacks name
    // it); nothing else may.
    let checkout = repo().display().to_string();
    let venv = format!("{checkout}/examples/fastapi-backend/.venv/");
    for (name, text) in crate::support::all_files(&dir) {
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.replace(&venv, "").contains(&checkout))
            .collect();
        assert!(
            lines.is_empty(),
            "{name} names gonogo's checkout: {lines:#?}"
        );
    }
    let summary = &go.summary;
    assert!(
        summary.contains("### ✅ gonogo: GO — fastapi-backend"),
        "{summary}"
    );
    assert!(summary.contains(&out["manifest-sha256"]), "{summary}");
    assert!(
        summary.contains("Evidence: the artifact `gonogo-evidence` holds"),
        "{summary}"
    );
}

fn assert_no_go_outputs(no_go: &ActionRun) {
    let log = &no_go.log;
    let out = &no_go.outputs;
    assert_eq!(
        no_go.failed,
        Some(("Run the proof".to_string(), Some(1))),
        "{log}"
    );
    assert_eq!(out["verdict"], "NO-GO", "{log}");
    assert_eq!(out["exit-code"], "1", "{log}");
    assert!(log.contains("::error title=gonogo: NO-GO::exit 1"), "{log}");
    let dir = PathBuf::from(&out["evidence-dir"]);
    assert_eq!(dir.parent(), no_go.uploaded.as_deref(), "{log}");
    assert!(dir.join("junit.xml").is_file(), "{log}");
    let evidence = read_json(&dir.join("evidence.json"));
    let failed: Vec<&str> = evidence["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "FAIL")
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["fail-fast"], "{log}");
    let summary = &no_go.summary;
    assert!(
        summary.contains("### ❌ gonogo: NO-GO — fastapi-backend"),
        "{summary}"
    );
    assert!(
        summary.contains("artifact `evidence-no-go`") && summary.contains("gate exited 1"),
        "{summary}"
    );
}

/// `scripts/ci/action-run` on its own, with the workspace's gonogo.
fn action_run(dir: &Path, vars: &[(&str, &str)]) -> (Output, BTreeMap<String, String>) {
    let output_file = dir.join("github-output");
    std::fs::write(&output_file, "").unwrap();
    let mut command = Command::new(script("action-run"));
    command
        .current_dir(dir)
        .env("GONOGO_BIN", env!("CARGO_BIN_EXE_gonogo"))
        .env("GITHUB_OUTPUT", &output_file)
        .env("RUNNER_TEMP", dir.join("runner"))
        .env("GONOGO_EVIDENCE_ROOT", dir.join("evidence"))
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_ACTIONS");
    std::fs::create_dir_all(dir.join("runner")).unwrap();
    for (key, value) in vars {
        command.env(key, value);
    }
    let output = run_with_limit(command, Duration::from_secs(60));
    (output, parse_outputs(&output_file))
}

fn runner_files(dir: &Path) -> Vec<String> {
    crate::support::all_files(&dir.join("runner"))
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

#[test]
fn action_run_passes_the_signing_key_as_a_private_file_and_removes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let pem = "-----BEGIN PRIVATE KEY-----\nTESTKEYMATERIAL0123456789\n-----END PRIVATE KEY-----";
    let subject = "registry.example/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let (output, outputs) = action_run(
        tmp.path(),
        &[
            ("INPUT_SCENARIO", "missing.toml"),
            ("INPUT_SIGN_KEY", pem),
            ("INPUT_SUBJECT", subject),
        ],
    );
    let transcript = format!("{}{}", stdout(&output), stderr(&output));
    // Nothing ran (no such scenario), whether or not this gonogo knows the
    // signing flags yet: exit 2, no verdict.
    assert_eq!(output.status.code(), Some(2), "{transcript}");
    assert_eq!(outputs["verdict"], "ERROR");
    assert_eq!(outputs["exit-code"], "2");
    assert_eq!(outputs["report"], "");
    let key_file = regex::Regex::new(r"--sign-key (\S+/gonogo-run\.\w+/sign-key\.pem) ")
        .unwrap()
        .captures(&transcript)
        .unwrap_or_else(|| panic!("no --sign-key FILE: {transcript}"))[1]
        .to_string();
    assert!(key_file.starts_with(&tmp.path().join("runner").display().to_string()));
    assert!(
        transcript.contains(&format!("--subject {subject}")),
        "{transcript}"
    );
    assert!(!transcript.contains("TESTKEYMATERIAL"), "{transcript}");
    let written = std::fs::read_to_string(tmp.path().join("github-output")).unwrap();
    assert!(!written.contains("TESTKEYMATERIAL"));
    assert!(
        runner_files(tmp.path()).is_empty(),
        "{:?}",
        runner_files(tmp.path())
    );

    // A key file (a GitLab file variable) is passed as it is.
    let key_path = tmp.path().join("key.pem");
    std::fs::write(&key_path, pem).unwrap();
    let (output, _) = action_run(
        tmp.path(),
        &[
            ("INPUT_SCENARIO", "missing.toml"),
            ("INPUT_SIGN_KEY", key_path.to_str().unwrap()),
        ],
    );
    assert!(
        stdout(&output).contains(&format!("--sign-key {} ", key_path.display())),
        "{}",
        stdout(&output)
    );

    // Anything else is refused without being echoed.
    let (output, outputs) = action_run(
        tmp.path(),
        &[
            ("INPUT_SCENARIO", "missing.toml"),
            ("INPUT_SIGN_KEY", "TESTKEYMATERIAL-not-a-pem"),
        ],
    );
    let transcript = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(2), "{transcript}");
    assert!(transcript.contains("neither a PEM key"), "{transcript}");
    assert!(!transcript.contains("TESTKEYMATERIAL"), "{transcript}");
    assert_eq!(outputs["verdict"], "ERROR");
}

#[test]
fn action_run_refuses_bad_inputs_with_exit_2_and_no_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    for (vars, message) in [
        (vec![("INPUT_SCENARIO", "")], "the scenario input is empty"),
        (
            vec![
                ("INPUT_SCENARIO", "s.toml"),
                ("INPUT_ARGS", "--operator 'unclosed"),
            ],
            "the args input does not split into words",
        ),
        (
            vec![
                ("INPUT_SCENARIO", "s.toml"),
                ("INPUT_ARGS", "--quiet --out elsewhere"),
            ],
            "must not set --out",
        ),
    ] {
        let (output, outputs) = action_run(tmp.path(), &vars);
        let transcript = format!("{}{}", stdout(&output), stderr(&output));
        assert_eq!(output.status.code(), Some(2), "{vars:?}: {transcript}");
        assert!(transcript.contains(message), "{vars:?}: {transcript}");
        assert_eq!(outputs["verdict"], "ERROR", "{vars:?}");
        assert_eq!(outputs["exit-code"], "2", "{vars:?}");
    }
    // gonogo's own usage error (no such scenario) is passed through, and a
    // quoted argument stays one word.
    let (output, outputs) = action_run(
        tmp.path(),
        &[
            ("INPUT_SCENARIO", "missing.toml"),
            ("INPUT_ARGS", "--operator 'CI bot'"),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stdout(&output).contains(r"--operator CI\ bot"),
        "{}",
        stdout(&output)
    );
    assert_eq!(outputs["evidence-dir"], "");
    // Nothing in args is expanded or run.
    let (output, _) = action_run(
        tmp.path(),
        &[
            ("INPUT_SCENARIO", "missing.toml"),
            (
                "INPUT_ARGS",
                "--operator \"$(touch pwned)\" `touch pwned2` ${HOME}",
            ),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(!tmp.path().join("pwned").exists() && !tmp.path().join("pwned2").exists());
    assert!(
        stdout(&output).contains(r"\$\{HOME\}"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn the_action_the_component_and_the_scripts_agree() {
    let action = action();
    let inputs = keys(&action["inputs"]);
    let outputs = keys(&action["outputs"]);
    let run_script = std::fs::read_to_string(script("action-run")).unwrap();
    let steps = action["runs"]["steps"].as_array().unwrap();
    // Every shell step is one script of scripts/ci/, and each exists.
    let one_script =
        regex::Regex::new(r#"^"\$GITHUB_ACTION_PATH/(scripts/ci/[a-z-]+)"( [a-z]+)?$"#).unwrap();
    for step in steps.iter().filter(|s| s.get("run").is_some()) {
        let line = step["run"].as_str().unwrap();
        let path = one_script
            .captures(line)
            .unwrap_or_else(|| panic!("not one script: {line}"))[1]
            .to_string();
        assert!(repo().join(&path).is_file(), "{path}");
        assert_eq!(step["shell"], "bash");
    }
    // The run step hands every input but the upload's to action-run, as
    // INPUT_<NAME>, which the script reads.
    let run = steps.iter().find(|s| s["id"] == "run").expect("a run step");
    let env = run["env"].as_object().unwrap();
    for input in &inputs {
        if input == "artifact-name" || input == "retention-days" {
            continue;
        }
        if input == "working-directory" {
            assert_eq!(run["working-directory"], "${{ inputs.working-directory }}");
            continue;
        }
        let var = format!("INPUT_{}", input.to_uppercase().replace('-', "_"));
        assert_eq!(env[&var], format!("${{{{ inputs.{input} }}}}"), "{var}");
        assert!(
            run_script.contains(&format!("${{{var}")),
            "action-run reads {var}"
        );
    }
    // Every output is the run step's output of the same name, which the
    // script emits.
    for output in &outputs {
        assert_eq!(
            action["outputs"][output]["value"],
            format!("${{{{ steps.run.outputs.{output} }}}}")
        );
        assert!(
            run_script.contains(&format!("emit {output} ")),
            "action-run emits {output}"
        );
    }
    for required in ["verdict", "exit-code", "report", "manifest-sha256"] {
        assert!(outputs.iter().any(|o| o == required), "output {required}");
    }
    assert_component_matches(&inputs, &run_script);
}

/// The GitLab component takes the Action's inputs (less the GitHub
/// artifact settings) into the same variables, keeps the evidence and the
/// JUnit report whatever the verdict, and hands the outputs on as dotenv.
fn assert_component_matches(action_inputs: &[String], run_script: &str) {
    let docs = yaml_documents(&repo().join("templates/gonogo/template.yml"));
    assert_eq!(docs.len(), 2, "spec, then the job");
    let inputs = keys(&docs[0]["spec"]["inputs"]);
    let job = &docs[1]["$[[ inputs.job-name ]]"];
    let vars = job["variables"].as_object().expect("job variables");
    for input in action_inputs {
        if input == "artifact-name" || input == "retention-days" {
            continue;
        }
        assert!(inputs.contains(input), "the component has no input {input}");
        let var = format!("INPUT_{}", input.to_uppercase().replace('-', "_"));
        assert_eq!(vars[&var], format!("$[[ inputs.{input} ]]"), "{var}");
    }
    for var in vars.keys().filter(|k| k.starts_with("INPUT_")) {
        let read = run_script.contains(&format!("${{{var}"))
            || job["script"].to_string().contains(&format!("${var}"));
        assert!(read, "{var} is read by nobody");
    }
    for input in &inputs {
        let used = docs[1]
            .to_string()
            .contains(&format!("$[[ inputs.{input} ]]"));
        assert!(used, "component input {input} is not used");
    }
    let artifacts = &job["artifacts"];
    assert_eq!(artifacts["when"], "always");
    assert_eq!(artifacts["paths"][0], "gonogo-evidence/");
    assert_eq!(artifacts["reports"]["junit"], "gonogo-evidence/*/junit.xml");
    assert_eq!(artifacts["reports"]["dotenv"], "gonogo.env");
    assert_eq!(
        vars["GONOGO_EVIDENCE_ROOT"],
        "$CI_PROJECT_DIR/gonogo-evidence"
    );
    assert_eq!(vars["GONOGO_DOTENV"], "$CI_PROJECT_DIR/gonogo.env");
    let script = job["script"].to_string();
    for step in [
        "action-install\\\" build",
        "action-install\\\" deps",
        "action-run",
    ] {
        assert!(script.contains(step), "the job runs {step}: {script}");
    }
}

#[test]
fn doctor_install_prints_the_apt_command_for_what_is_missing() {
    // A PATH with apt-get and nothing else: redis-server and promtool are
    // missing (Postgres may still be found under /usr/lib/postgresql).
    let bin = tempfile::tempdir().unwrap();
    let apt = Command::new("sh")
        .args(["-c", "command -v apt-get"])
        .output()
        .map(|o| stdout(&o).trim().to_string())
        .unwrap_or_default();
    if apt.is_empty() {
        println!("SKIPPED doctor_install_prints_the_apt_command_for_what_is_missing: no apt-get");
        return;
    }
    std::os::unix::fs::symlink(&apt, bin.path().join("apt-get")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_gonogo"))
        .args(["doctor", "--install"])
        .env("PATH", bin.path())
        .output()
        .unwrap();
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(3), "{text}{}", stderr(&output));
    assert!(
        text.contains("missing  redis-server  no `redis-server`"),
        "{text}"
    );
    assert!(
        text.contains("missing  promtool      no `promtool`"),
        "{text}"
    );
    assert!(
        text.contains("package manager: apt-get (Debian, Ubuntu)"),
        "{text}"
    );
    for line in [
        r"(?m)^  (sudo )?env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq (postgresql )?redis-server$",
        r"(?m)^  (sudo )?env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus$",
    ] {
        assert!(
            regex::Regex::new(line).unwrap().is_match(&text),
            "{line}: {text}"
        );
    }
    assert!(text.contains("gonogo doctor --install --yes"), "{text}");

    let output = Command::new(env!("CARGO_BIN_EXE_gonogo"))
        .args(["doctor", "--yes"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "--yes needs --install");
}

/// Every use of the Action or the component that the docs and examples
/// show, as (where, inputs given, Action or not).
fn documented_uses() -> Vec<(String, Vec<String>, bool)> {
    let mut documents = Vec::new();
    for file in [
        "examples/ci/github-actions.yml",
        "examples/ci/.gitlab-ci.yml",
    ] {
        for doc in yaml_documents(&repo().join(file)) {
            documents.push((file.to_string(), doc));
        }
    }
    let block = regex::Regex::new(r"(?s)```yaml\n(.*?)```").unwrap();
    for file in ["README.md", "docs/ci.md"] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        for (n, found) in block.captures_iter(&text).enumerate() {
            let docs =
                parse_yaml(&found[1]).unwrap_or_else(|e| panic!("{file}, yaml block {n}: {e}"));
            for doc in docs {
                documents.push((format!("{file} yaml block {n}"), doc));
            }
        }
    }
    let mut uses = Vec::new();
    for (source, doc) in &documents {
        collect_uses(source, doc, &mut uses);
    }
    uses
}

fn collect_uses(source: &str, value: &Value, uses: &mut Vec<(String, Vec<String>, bool)>) {
    match value {
        Value::Object(map) => {
            let action = map
                .get("uses")
                .and_then(Value::as_str)
                .is_some_and(|u| u.starts_with("OWNER/gonogo@"));
            let component = map
                .get("component")
                .and_then(Value::as_str)
                .is_some_and(|c| c.contains("/OWNER/gonogo/gonogo@"));
            if action || component {
                let given = map.get(if action { "with" } else { "inputs" });
                uses.push((
                    source.to_string(),
                    given.map(keys).unwrap_or_default(),
                    action,
                ));
            }
            map.values().for_each(|v| collect_uses(source, v, uses));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_uses(source, v, uses)),
        _ => {}
    }
}

#[test]
fn the_documented_workflows_use_inputs_that_exist() {
    let action_inputs = keys(&action()["inputs"]);
    let component =
        &yaml_documents(&repo().join("templates/gonogo/template.yml"))[0]["spec"]["inputs"];
    let component_inputs = keys(component);
    let uses = documented_uses();
    for (source, given, action) in &uses {
        let known = if *action {
            &action_inputs
        } else {
            &component_inputs
        };
        assert!(
            given.iter().any(|i| i == "scenario"),
            "{source}: no scenario"
        );
        for input in given {
            assert!(known.contains(input), "{source}: no input {input}");
        }
    }
    let count = |file: &str, action: bool| {
        uses.iter()
            .filter(|(s, _, a)| s.starts_with(file) && *a == action)
            .count()
    };
    // The README's two workflows, the examples, and docs/ci.md's four.
    assert_eq!(
        (count("README.md", true), count("README.md", false)),
        (1, 1)
    );
    assert_eq!(count("examples/ci/github-actions.yml", true), 1);
    assert_eq!(count("examples/ci/.gitlab-ci.yml", false), 1);
    assert_eq!(
        (count("docs/ci.md", true), count("docs/ci.md", false)),
        (3, 1)
    );
}
