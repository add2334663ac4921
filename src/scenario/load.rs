//! Reading and validating a scenario file, with errors that name the file,
//! line, column and field.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::file::{self, ScenarioFile};
use super::placeholders::Template;
use super::ranges;
use super::{AlertsSpec, ExternalSpec, ExternalUrl, KubernetesSpec};
use super::{
    BodyExpectation, CurrentCheck, FailFastCase, FailFastSpec, FaultsSpec, LatencySpec,
    MetricsSpec, MigrationSpec, NegativeSpec, ReadySpec, Scenario, ServiceSpec, ShutdownSpec,
    TcpDependency,
};

/// A scenario file that cannot be used, and exactly where.
#[derive(Debug, thiserror::Error)]
pub struct ScenarioError {
    pub path: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub location: Option<(usize, usize)>,
    /// Dotted field path, e.g. `service.command`.
    pub field: Option<String>,
    pub message: String,
    /// The offending source line, for a caret display.
    pub snippet: Option<String>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid scenario {}", self.path.display())?;
        if let Some((line, column)) = self.location {
            write!(f, ":{line}:{column}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)?;
        if let (Some(snippet), Some((line, column))) = (&self.snippet, self.location) {
            let gutter = line.to_string().len();
            write!(
                f,
                "\n{:gutter$} |\n{line} | {snippet}\n{:gutter$} | {:>column$}",
                "", "", "^"
            )?;
        }
        Ok(())
    }
}

/// Read and validate the scenario at `path`.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let source = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        path: path.to_path_buf(),
        location: None,
        field: None,
        message: format!("cannot read file: {e}"),
        snippet: None,
    })?;
    load_str(path, &source)
}

/// Validate scenario text that claims to come from `path` (used for
/// relative paths and messages).
pub fn load_str(path: &Path, source: &str) -> Result<Scenario, ScenarioError> {
    let mut ctx = Ctx {
        path,
        source,
        extra: Vec::new(),
    };
    let raw: ScenarioFile = toml::from_str(source).map_err(|e| {
        let message = e.message().trim().to_string();
        match e.span() {
            Some(span) => ctx.error_at(span, message),
            None => ctx.error(message),
        }
    })?;
    for dep in &raw.dependencies {
        for suffix in ["host", "port", "addr"] {
            ctx.extra.push(format!("{}_{suffix}", dep.name.get_ref()));
        }
    }
    ctx.convert(raw)
}

/// An error pointing at `span` of `source`, read from `path`.
pub(super) fn error_at(
    path: &Path,
    source: &str,
    span: Range<usize>,
    message: String,
) -> ScenarioError {
    let ctx = Ctx {
        path,
        source,
        extra: Vec::new(),
    };
    ctx.error_at(span, message)
}

struct Ctx<'a> {
    path: &'a Path,
    source: &'a str,
    /// Placeholders declared by `[[dependency]]` entries.
    extra: Vec<String>,
}

impl Ctx<'_> {
    fn error(&self, message: String) -> ScenarioError {
        ScenarioError {
            path: self.path.to_path_buf(),
            location: None,
            field: None,
            message,
            snippet: None,
        }
    }

    /// An error pointing at `span`, with the field path worked out from the
    /// surrounding table header and key.
    fn error_at(&self, span: Range<usize>, message: String) -> ScenarioError {
        let start = span.start.min(self.source.len());
        let line_start = self.source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.source[start..]
            .find('\n')
            .map_or(self.source.len(), |i| start + i);
        let line = self.source[..start].matches('\n').count() + 1;
        let column = self.source[line_start..start].chars().count() + 1;
        let text = &self.source[line_start..line_end];
        ScenarioError {
            path: self.path.to_path_buf(),
            location: Some((line, column)),
            field: self.field_at(line_start, text),
            message,
            snippet: Some(text.trim_end().to_string()),
        }
    }

    fn field_at(&self, line_start: usize, line: &str) -> Option<String> {
        let header = self.source[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            return Some(
                trimmed
                    .trim_matches(|c| c == '[' || c == ']')
                    .trim()
                    .to_string(),
            );
        }
        let key = trimmed
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_string());
        match (header, key) {
            (Some(h), Some(k)) => Some(format!("{h}.{k}")),
            (None, Some(k)) => Some(k),
            (Some(h), None) => Some(h),
            (None, None) => None,
        }
    }

    fn dir(&self) -> PathBuf {
        let parent = self.path.parent().unwrap_or(Path::new("."));
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf())
    }

    fn resolve(&self, relative: &str) -> PathBuf {
        let joined = self.dir().join(relative);
        normalize(&joined)
    }

    fn template(&self, value: &Spanned<String>) -> Result<Template, ScenarioError> {
        Template::parse_with(value.get_ref(), &self.extra)
            .map_err(|m| self.error_at(value.span(), m))
    }

    fn argv(
        &self,
        argv: &Spanned<Vec<Spanned<String>>>,
        what: &str,
    ) -> Result<Vec<Template>, ScenarioError> {
        if argv.get_ref().is_empty() || argv.get_ref()[0].get_ref().trim().is_empty() {
            return Err(self.error_at(
                argv.span(),
                format!("{what} is empty; give the program and its arguments, e.g. [\"./server\", \"--port\", \"{{{{port}}}}\"]"),
            ));
        }
        argv.get_ref().iter().map(|a| self.template(a)).collect()
    }

    fn env(
        &self,
        env: &BTreeMap<String, Spanned<String>>,
    ) -> Result<Vec<(String, Template)>, ScenarioError> {
        let mut out = Vec::new();
        for (key, value) in env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(self.error_at(
                    value.span(),
                    format!("`{key}` is not a valid environment variable name"),
                ));
            }
            out.push((key.clone(), self.template(value)?));
        }
        // Keep file order so the evidence shows variables as written.
        out.sort_by_key(|(key, _)| env.get(key).map(|v| v.span().start).unwrap_or(usize::MAX));
        Ok(out)
    }

    fn path_field(&self, value: &Spanned<String>) -> Result<String, ScenarioError> {
        let text = value.get_ref();
        if !text.starts_with('/') {
            return Err(self.error_at(
                value.span(),
                format!("`{text}` must be an absolute URL path starting with `/`"),
            ));
        }
        if let Some(problem) = ranges::url_path(text) {
            return Err(self.error_at(value.span(), problem));
        }
        Ok(text.clone())
    }

    fn expectations(
        &self,
        raw: &[file::ExpectFile],
    ) -> Result<Vec<BodyExpectation>, ScenarioError> {
        raw.iter()
            .map(|e| {
                let pointer = e.pointer.get_ref();
                if !(pointer.is_empty() || pointer.starts_with('/')) {
                    return Err(self.error_at(
                        e.pointer.span(),
                        format!(
                            "`{pointer}` is not a JSON pointer; write it like `/dependencies/redis`"
                        ),
                    ));
                }
                let equals = serde_json::to_value(&e.equals)
                    .map_err(|err| self.error_at(e.pointer.span(), err.to_string()))?;
                Ok(BodyExpectation {
                    pointer: pointer.clone(),
                    equals,
                })
            })
            .collect()
    }

    fn convert(&self, raw: ScenarioFile) -> Result<Scenario, ScenarioError> {
        let name = self.name(raw.name.as_ref())?;
        let service = self.service(&raw.service)?;
        let migrations = raw
            .migrations
            .as_ref()
            .map(|m| self.migrations(m, &service.workdir))
            .transpose()?;
        let ready = self.ready(&raw.ready)?;
        let negative = self.negative(&raw.negative)?;
        let failfast = self.failfast(&raw.failfast, &service)?;
        let dependencies = self.dependencies(&raw.dependencies)?;
        let faults = self.faults(raw.faults.as_ref(), &dependencies)?;
        let latency = self.latency(&raw.latency, &service)?;
        let shutdown = self.shutdown(&raw.shutdown)?;
        let metrics = raw
            .metrics
            .as_ref()
            .map(|m| self.metrics(m, &dependencies))
            .transpose()?;
        let (kubernetes, alerts) = self.conformance(&raw, metrics.as_ref())?;
        let environment = raw.environment.clone();
        let release = super::release::release(raw.release.as_ref());
        let error_at = |span, message| self.error_at(span, message);
        let waivers = super::release::waivers(&raw.waivers, self.source, &error_at)?;
        let not_applicable =
            super::release::not_applicable(&raw.not_applicable, &waivers, &error_at)?;
        Ok(Scenario {
            name,
            description: raw.description.clone(),
            path: self.path.to_path_buf(),
            source: self.source.to_string(),
            environment,
            service,
            migrations,
            ready,
            negative,
            failfast,
            faults,
            dependencies,
            release,
            waivers,
            not_applicable,
            external: self.external(raw.external.as_ref())?,
            migrate_external: raw
                .migrations
                .as_ref()
                .is_some_and(|m| m.get_ref().external),
            latency,
            shutdown,
            metrics,
            kubernetes,
            alerts,
            masking: self.masking(raw.masking.as_ref())?,
        })
    }

    fn shutdown(&self, raw: &file::ShutdownFile) -> Result<ShutdownSpec, ScenarioError> {
        let at = &|span, message| self.error_at(span, message);
        Ok(ShutdownSpec {
            enabled: raw.enabled.unwrap_or(true),
            timeout: ranges::duration(&raw.timeout, &ranges::SHUTDOWN_TIMEOUT, at)?,
            // 143 = ended by the SIGTERM itself (128 + 15), which many servers
            // do on purpose after a clean shutdown.
            exit_codes: ranges::exit_codes(&raw.exit_codes, at)?,
        })
    }

    /// `name`, or the file's stem.
    fn name(&self, raw: Option<&Spanned<String>>) -> Result<String, ScenarioError> {
        let Some(name) = raw else {
            return Ok(self
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into()));
        };
        let valid = !name.get_ref().is_empty()
            && name
                .get_ref()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(self.error_at(
                name.span(),
                "name must be non-empty and use only letters, digits, `-`, `_` and `.`".into(),
            ));
        }
        Ok(name.get_ref().clone())
    }

    fn service(&self, s: &file::ServiceFile) -> Result<ServiceSpec, ScenarioError> {
        let at = &|span, message| self.error_at(span, message);
        let request_timeout = ranges::duration(&s.request_timeout, &ranges::REQUEST_TIMEOUT, at)?;
        let path = |p: &Option<Spanned<String>>| p.as_ref().map(|p| self.path_field(p)).transpose();
        let service = ServiceSpec {
            command: self.argv(&s.command, "service.command")?,
            workdir: s
                .workdir
                .as_ref()
                .map_or_else(|| self.dir(), |w| self.resolve(w.get_ref())),
            env: self.env(&s.env)?,
            inherit: self.inherit(&s.inherit)?,
            ready_path: path(&s.ready_path)?.unwrap_or_else(|| "/ready".into()),
            live_path: path(&s.live_path)?.unwrap_or_else(|| "/live".into()),
            version_path: path(&s.version_path)?,
            startup_timeout: ranges::duration(&s.startup_timeout, &ranges::STARTUP_TIMEOUT, at)?,
            request_timeout,
        };
        if !service.workdir.is_dir() {
            let span = s.workdir.as_ref().map_or(s.command.span(), |w| w.span());
            return Err(self.error_at(
                span,
                format!(
                    "working directory {} does not exist",
                    service.workdir.display()
                ),
            ));
        }
        Ok(service)
    }

    fn ready(&self, raw: &file::ReadyFile) -> Result<ReadySpec, ScenarioError> {
        let at = &|span, message| self.error_at(span, message);
        Ok(ReadySpec {
            status: ranges::status(&raw.status, 200, at)?,
            expect: if raw.expect.is_empty() {
                vec![
                    BodyExpectation {
                        pointer: "/dependencies/database".into(),
                        equals: "connected".into(),
                    },
                    BodyExpectation {
                        pointer: "/dependencies/redis".into(),
                        equals: "connected".into(),
                    },
                ]
            } else {
                self.expectations(&raw.expect)?
            },
            settle: ranges::duration(&raw.settle, &ranges::READY_SETTLE, at)?,
        })
    }

    fn negative(&self, raw: &file::NegativeFile) -> Result<NegativeSpec, ScenarioError> {
        let at = &|span, message| self.error_at(span, message);
        Ok(NegativeSpec {
            status: ranges::status(&raw.status, 503, at)?,
            expect: self.expectations(&raw.expect)?,
            body_names: raw.body_names.clone().unwrap_or_else(|| "Redis".into()),
            observe: ranges::duration(&raw.observe, &ranges::NEGATIVE_OBSERVE, at)?,
        })
    }

    fn failfast(
        &self,
        raw: &file::FailFastFile,
        service: &ServiceSpec,
    ) -> Result<FailFastSpec, ScenarioError> {
        let at = &|span, message| self.error_at(span, message);
        Ok(FailFastSpec {
            deadline: ranges::duration(&raw.deadline, &ranges::FAILFAST_DEADLINE, at)?,
            explicit: raw.case.is_some(),
            cases: match &raw.case {
                Some(cases) => self.cases(cases)?,
                None => default_cases(service),
            },
        })
    }

    /// Variable names in a list, checked like `[service.env]` keys.
    fn names(&self, names: &[Spanned<String>]) -> Result<Vec<String>, ScenarioError> {
        let mut out: Vec<String> = Vec::new();
        for name in names {
            let text = name.get_ref();
            if text.is_empty() || text.contains('=') || text.contains('\0') {
                return Err(self.error_at(
                    name.span(),
                    format!("`{text}` is not a valid environment variable name"),
                ));
            }
            if !out.contains(text) {
                out.push(text.clone());
            }
        }
        Ok(out)
    }

    /// `[service] inherit`: never gonogo's own variables.
    fn inherit(&self, names: &[Spanned<String>]) -> Result<Vec<String>, ScenarioError> {
        if let Some(own) = names
            .iter()
            .find(|n| n.get_ref().to_ascii_uppercase().starts_with("GONOGO_"))
        {
            return Err(self.error_at(
                own.span(),
                format!(
                    "`{}` is gonogo's own variable; GONOGO_* variables are never passed to the service",
                    own.get_ref()
                ),
            ));
        }
        self.names(names)
    }

    fn masking(
        &self,
        raw: Option<&file::MaskingFile>,
    ) -> Result<super::MaskingSpec, ScenarioError> {
        let Some(raw) = raw else {
            return Ok(super::MaskingSpec::default());
        };
        let extra_env = self.names(&raw.extra_env)?;
        let not_secret = self.names(&raw.not_secret)?;
        if let Some(both) = raw.not_secret.iter().find(|n| {
            extra_env
                .iter()
                .any(|e| e.eq_ignore_ascii_case(n.get_ref()))
        }) {
            return Err(self.error_at(
                both.span(),
                format!(
                    "`{}` is listed in both `extra_env` and `not_secret`; keep one",
                    both.get_ref()
                ),
            ));
        }
        Ok(super::MaskingSpec {
            extra_env,
            not_secret,
        })
    }

    /// `[kubernetes]` and `[alerts]`, with their files read.
    fn conformance(
        &self,
        raw: &ScenarioFile,
        metrics: Option<&MetricsSpec>,
    ) -> Result<(Option<KubernetesSpec>, Option<AlertsSpec>), ScenarioError> {
        let resolve = |p: &str| self.resolve(p);
        let error_at = |span, message| self.error_at(span, message);
        let kubernetes = raw
            .kubernetes
            .as_ref()
            .map(|k| super::conformance::kubernetes(k, &resolve, &error_at))
            .transpose()?;
        let alerts = raw
            .alerts
            .as_ref()
            .map(|a| super::conformance::alerts(a, metrics, &resolve, &error_at))
            .transpose()?;
        Ok((kubernetes, alerts))
    }

    fn external(&self, raw: Option<&file::ExternalFile>) -> Result<ExternalSpec, ScenarioError> {
        let mut spec = ExternalSpec::default();
        let Some(raw) = raw else {
            return Ok(spec);
        };
        let pick = |env: &Option<Spanned<String>>,
                    literal: &Option<Spanned<String>>,
                    what: &str|
         -> Result<Option<ExternalUrl>, ScenarioError> {
            match (env, literal) {
                (Some(_), Some(l)) => Err(self.error_at(
                    l.span(),
                    format!("give either `{what}_env` or `{what}`, not both"),
                )),
                (Some(var), None) => {
                    let name = var.get_ref();
                    if name.is_empty() || name.contains('=') || name.contains('\0') {
                        return Err(self.error_at(
                            var.span(),
                            format!("`{name}` is not a valid environment variable name"),
                        ));
                    }
                    Ok(Some(ExternalUrl::Env(name.clone())))
                }
                (None, Some(url)) => Ok(Some(ExternalUrl::Literal(url.get_ref().clone()))),
                (None, None) => Ok(None),
            }
        };
        if let Some(url) = pick(&raw.database_url_env, &raw.database_url, "database_url")? {
            spec.database_url = url;
        }
        if let Some(url) = pick(&raw.redis_url_env, &raw.redis_url, "redis_url")? {
            spec.redis_url = url;
        }
        Ok(spec)
    }

    fn latency(
        &self,
        raw: &file::LatencyFile,
        service: &ServiceSpec,
    ) -> Result<LatencySpec, ScenarioError> {
        let at = &|span, message| self.error_at(span, message);
        Ok(LatencySpec {
            enabled: raw.enabled.unwrap_or(true),
            requests: ranges::count(&raw.requests, &ranges::LATENCY_REQUESTS, at)?,
            concurrency: ranges::count(&raw.concurrency, &ranges::LATENCY_CONCURRENCY, at)?,
            p95_ms: ranges::p95_ms(&raw.p95_ms, at)?,
            path: match &raw.path {
                Some(p) => self.path_field(p)?,
                None => service.ready_path.clone(),
            },
        })
    }

    fn metrics(
        &self,
        raw: &file::MetricsFile,
        dependencies: &[TcpDependency],
    ) -> Result<MetricsSpec, ScenarioError> {
        let gauge = raw.gauge.get_ref();
        let valid = gauge
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && gauge
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        if !valid {
            return Err(self.error_at(
                raw.gauge.span(),
                format!("`{gauge}` is not a Prometheus metric name; put labels in `labels = {{ service = \"...\" }}`"),
            ));
        }
        let fault = match &raw.fault {
            Some(f) => {
                let known = f.get_ref() == "postgres"
                    || f.get_ref() == "redis"
                    || dependencies.iter().any(|d| &d.name == f.get_ref());
                if !known {
                    return Err(self.error_at(
                        f.span(),
                        format!("unknown dependency `{}` to break", f.get_ref()),
                    ));
                }
                f.get_ref().clone()
            }
            None => "redis".into(),
        };
        Ok(MetricsSpec {
            path: self.path_field(&raw.path)?,
            gauge: gauge.clone(),
            labels: raw.labels.clone(),
            fault,
        })
    }

    fn dependencies(
        &self,
        raw: &[file::DependencyFile],
    ) -> Result<Vec<TcpDependency>, ScenarioError> {
        let mut out: Vec<TcpDependency> = Vec::new();
        for dep in raw {
            let name = dep.name.get_ref();
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Err(self.error_at(
                    dep.name.span(),
                    format!("dependency name `{name}` must be lower-case letters, digits and `_`, starting with a letter (it becomes the placeholders {{{{{name}_host}}}}, {{{{{name}_port}}}}, {{{{{name}_addr}}}})"),
                ));
            }
            if ["postgres", "redis", "database", "port", "host"].contains(&name.as_str())
                || out.iter().any(|d| &d.name == name)
            {
                return Err(self.error_at(
                    dep.name.span(),
                    format!("dependency name `{name}` is reserved or already used"),
                ));
            }
            out.push(TcpDependency {
                name: name.clone(),
                host: dep.host.clone(),
                port: ranges::port(&dep.port, &|span, m| self.error_at(span, m))?,
                names: dep.names.clone().unwrap_or_else(|| vec![name.clone()]),
            });
        }
        Ok(out)
    }

    fn faults(
        &self,
        raw: Option<&Spanned<file::FaultsFile>>,
        dependencies: &[TcpDependency],
    ) -> Result<FaultsSpec, ScenarioError> {
        let default = file::FaultsFile::default();
        let f = raw.map_or(&default, |r| r.get_ref());
        let at = &|span, message| self.error_at(span, message);
        let probe_deadline = ranges::duration(&f.probe_deadline, &ranges::PROBE_DEADLINE, at)?;
        let mut all: Vec<String> = vec!["postgres".into(), "redis".into()];
        all.extend(dependencies.iter().map(|d| d.name.clone()));
        let targets = match &f.targets {
            None => all,
            Some(list) => {
                let mut chosen = Vec::new();
                for t in list {
                    if !all.contains(t.get_ref()) {
                        return Err(self.error_at(
                            t.span(),
                            format!(
                                "unknown fault target `{}`; choose from {}",
                                t.get_ref(),
                                all.join(", ")
                            ),
                        ));
                    }
                    chosen.push(t.get_ref().clone());
                }
                chosen
            }
        };
        let mut keys: Vec<String> = vec!["postgres".into(), "redis".into()];
        keys.extend(dependencies.iter().map(|d| d.name.clone()));
        let mut expect = BTreeMap::new();
        for (key, list) in &f.expect {
            if !keys.contains(key.get_ref()) {
                return Err(self.error_at(
                    key.span(),
                    format!(
                        "unknown dependency `{}` in [faults] expect; choose from {}",
                        key.get_ref(),
                        keys.join(", ")
                    ),
                ));
            }
            expect.insert(key.get_ref().clone(), self.expectations(list)?);
        }
        Ok(FaultsSpec {
            enabled: f.enabled.unwrap_or(true),
            detection_window: ranges::duration(&f.detection_window, &ranges::DETECTION_WINDOW, at)?,
            probe_deadline,
            recovery_window: ranges::duration(&f.recovery_window, &ranges::RECOVERY_WINDOW, at)?,
            live_watch: ranges::duration(&f.live_watch, &ranges::LIVE_WATCH, at)?,
            targets,
            postgres_names: f
                .postgres_names
                .clone()
                .unwrap_or_else(|| vec!["Postgres".into(), "database".into()]),
            redis_names: f
                .redis_names
                .clone()
                .unwrap_or_else(|| vec!["Redis".into()]),
            expect,
        })
    }

    /// A migration command runs in the service's working directory unless
    /// it names its own: that is where tools like alembic look for config.
    fn migrations(
        &self,
        raw: &Spanned<file::MigrationsFile>,
        service_workdir: &Path,
    ) -> Result<MigrationSpec, ScenarioError> {
        let m = raw.get_ref();
        match (&m.dir, &m.command) {
            (Some(dir), None) => {
                for (set, what) in [
                    (m.current.is_some(), "current"),
                    (m.workdir.is_some(), "workdir"),
                    (!m.env.is_empty(), "env"),
                ] {
                    if set {
                        return Err(self.error_at(
                            dir.span(),
                            format!("`{what}` only applies to a migration `command`, not to `dir`"),
                        ));
                    }
                }
                let resolved = self.resolve(dir.get_ref());
                if !resolved.is_dir() {
                    return Err(self.error_at(
                        dir.span(),
                        format!("migrations directory {} does not exist", resolved.display()),
                    ));
                }
                Ok(MigrationSpec::SqlDir { dir: resolved })
            }
            (None, Some(command)) => {
                let current = match (&m.current, &m.current_expect) {
                    (Some(cmd), Some(expect)) => Some(CurrentCheck {
                        command: self.argv(cmd, "migrations.current")?,
                        expect: expect.clone(),
                    }),
                    (Some(cmd), None) => Some(CurrentCheck {
                        command: self.argv(cmd, "migrations.current")?,
                        expect: "(head)".into(),
                    }),
                    (None, Some(_)) => {
                        return Err(self.error_at(
                            raw.span(),
                            "`current_expect` needs a `current` command to check".into(),
                        ));
                    }
                    (None, None) => None,
                };
                Ok(MigrationSpec::Command {
                    command: self.argv(command, "migrations.command")?,
                    workdir: m.workdir.as_ref().map_or_else(
                        || service_workdir.to_path_buf(),
                        |w| self.resolve(w.get_ref()),
                    ),
                    env: self.env(&m.env)?,
                    current,
                    timeout: ranges::duration(
                        &m.timeout,
                        &ranges::MIGRATION_TIMEOUT,
                        &|span, msg| self.error_at(span, msg),
                    )?,
                })
            }
            (Some(_), Some(_)) => Err(self.error_at(
                raw.span(),
                "give either `dir` (SQL migrations gonogo applies) or `command`, not both".into(),
            )),
            (None, None) => Err(self.error_at(
                raw.span(),
                "missing `dir` or `command`: say how migrations are applied".into(),
            )),
        }
    }

    fn cases(&self, raw: &[file::CaseFile]) -> Result<Vec<FailFastCase>, ScenarioError> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for case in raw {
            if !seen.insert(case.name.clone()) {
                return Err(self.error(format!("failfast case `{}` is defined twice", case.name)));
            }
            let mut set = BTreeMap::new();
            for (key, value) in &case.set {
                set.insert(key.clone(), self.template(value)?);
            }
            out.push(FailFastCase {
                name: case.name.clone(),
                unset: case.unset.clone(),
                set,
            });
        }
        Ok(out)
    }
}

/// The variable that carries a dependency: the first that uses its URL
/// placeholder (`redis_url`), else the first that builds an address from
/// its host (`redis_host`), as in `postgresql+asyncpg://…@{{database_host}}…`.
fn var_carrying(service: &ServiceSpec, dependency: &str) -> Option<String> {
    ["url", "host"].iter().find_map(|part| {
        let placeholder = format!("{dependency}_{part}");
        service
            .env
            .iter()
            .find(|(_, t)| t.uses(&placeholder))
            .map(|(k, _)| k.clone())
    })
}

/// The seed's three strict-mode cases, aimed at whichever variables carry
/// the dependencies (see [`var_carrying`]).
fn default_cases(service: &ServiceSpec) -> Vec<FailFastCase> {
    let mut cases = Vec::new();
    if let Some(redis) = var_carrying(service, "redis") {
        cases.push(FailFastCase {
            name: format!("{redis} unset"),
            unset: vec![redis],
            set: BTreeMap::new(),
        });
    }
    if let Some(db) = var_carrying(service, "database") {
        cases.push(FailFastCase {
            name: format!("{db} unset"),
            unset: vec![db.clone()],
            set: BTreeMap::new(),
        });
        // A SQLite URL only means something in a variable that holds a URL,
        // not in one that holds a host.
        let holds_url = service
            .env
            .iter()
            .any(|(k, t)| *k == db && (t.uses("database_url") || t.source().contains("://")));
        if !holds_url {
            return cases;
        }
        cases.push(FailFastCase {
            name: format!("sqlite {db}"),
            unset: Vec::new(),
            set: BTreeMap::from([(db, Template::literal("sqlite:///tmp/gonogo-failfast.db"))]),
        });
    }
    cases
}

/// Collapse `.` and `..` without touching the filesystem.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cases(env: &str) -> Vec<String> {
        let source = format!("[service]\ncommand = [\"svc\"]\n\n[service.env]\n{env}\n");
        let scenario = load_str(Path::new("/tmp/s.toml"), &source).unwrap();
        assert!(!scenario.failfast.explicit);
        scenario
            .failfast
            .cases
            .into_iter()
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn default_cases_follow_the_url_placeholders() {
        assert_eq!(
            cases("DATABASE_URL = \"{{database_url}}\"\nREDIS_URL = \"{{redis_url}}\""),
            [
                "REDIS_URL unset",
                "DATABASE_URL unset",
                "sqlite DATABASE_URL"
            ]
        );
    }

    #[test]
    fn default_cases_follow_a_url_built_from_parts() {
        let env = "DB = \"postgresql+asyncpg://{{database_user}}:{{database_password}}@{{database_host}}:{{database_port}}/{{database_name}}\"\nCACHE = \"redis://:{{redis_password}}@{{redis_host}}:{{redis_port}}/0\"";
        assert_eq!(cases(env), ["CACHE unset", "DB unset", "sqlite DB"]);
    }

    #[test]
    fn a_host_variable_gets_no_sqlite_case() {
        let env = "PGHOST = \"{{database_host}}\"\nPGPORT = \"{{database_port}}\"";
        assert_eq!(cases(env), ["PGHOST unset"]);
    }

    #[test]
    fn no_dependency_variable_means_no_default_case() {
        assert!(cases("MODE = \"strict\"").is_empty());
    }
}
