//! HTTP routes: `/live`, `/ready`, `/version` and `/metrics`, over the shared
//! [`AppState`] that holds the dependencies, the metrics and the flaw switches.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Serialize, Serializer};

use crate::config::{Config, Flaw, Flaws};
use crate::probes::{Deps, MigrationsOutcome, ProbeOutcome};

const SERVICE: &str = "reference-service";
const SLOW_READY_DELAY: Duration = Duration::from_millis(300);
/// `leak-secrets-when-idle`: how long after the first healthy answer.
const IDLE_LEAK_DELAY: Duration = Duration::from_millis(600);
/// `exits-when-idle`: how long after the first healthy answer.
const IDLE_EXIT_DELAY: Duration = Duration::from_millis(300);
/// Longer than a readinessProbe's `timeoutSeconds: 1`.
const VERY_SLOW_READY_DELAY: Duration = Duration::from_millis(1500);
/// `huge-ready-body`: 10 MB of padding in every ready answer.
const HUGE_BODY_BYTES: usize = 10 * 1000 * 1000;
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub struct AppState {
    deps: Deps,
    flaws: Flaws,
    git_sha: Option<String>,
    /// Kept only so `leak-secrets` and `reveals-redis-url` have something
    /// to leak.
    database_url: Option<String>,
    redis_url: Option<String>,
    /// `echo-credentials`: what to echo in every ready answer.
    echo: Option<crate::echo::Echo>,
    ready_gauge: AtomicBool,
    ready_requests: AtomicU64,
    memory: Mutex<ReadyMemory>,
}

/// What `/ready` remembers between requests.
#[derive(Default)]
struct ReadyMemory {
    /// `ready-caches-success`: the first 200, replayed forever.
    cached_success: Option<ReadyBody>,
    /// `ready-never-recovers`: the first 503, replayed forever.
    latched_failure: Option<ReadyBody>,
    /// The last logged verdict, so only changes are logged.
    last_logged: Option<String>,
    /// `leak-secrets-when-idle`, `exits-when-idle`: the leak or the exit
    /// is on its way.
    idle_flaw_armed: bool,
}

impl AppState {
    pub fn new(config: &Config, deps: Deps) -> AppState {
        AppState {
            deps,
            flaws: config.flaws.clone(),
            git_sha: config.git_sha.clone(),
            database_url: config.database_url.clone(),
            redis_url: config.redis_url.clone(),
            echo: config
                .flaws
                .has(Flaw::EchoCredentials)
                .then(crate::echo::Echo::from_env),
            // `gauge-stuck` reports success before anything has been checked.
            ready_gauge: AtomicBool::new(config.flaws.has(Flaw::GaugeStuck)),
            ready_requests: AtomicU64::new(0),
            memory: Mutex::new(ReadyMemory::default()),
        }
    }

    pub fn deps(&self) -> &Deps {
        &self.deps
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, ReadyMemory> {
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/live", get(live))
        .route("/ready", get(ready))
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .with_state(state)
}

#[derive(Debug, Clone, Serialize)]
struct ReadyBody {
    status: &'static str,
    /// `Postgres`, `Redis`, `Migrations` or the name of an extra TCP dependency.
    #[serde(skip_serializing_if = "Option::is_none")]
    dependency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    dependencies: Dependencies,
    checks: Checks,
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis_url: Option<String>,
    /// `huge-ready-body`: megabytes of nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    padding: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Dependencies {
    database: &'static str,
    redis: &'static str,
    migrations: &'static str,
    #[serde(flatten)]
    extras: Extras<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
struct Checks {
    db: Check,
    redis: Check,
    #[serde(flatten)]
    extras: Extras<Check>,
}

/// Per-extra-dependency entries, flattened into their parent object as
/// `<name>: value` in the order `EXTRA_TCP_DEPS` listed them (a map type would
/// sort them, and the evidence reads better in the operator's order).
#[derive(Debug, Clone)]
struct Extras<T>(Vec<(String, T)>);

impl<T> Extras<T> {
    fn of(extras: &[(&str, ProbeOutcome)], value: impl Fn(&ProbeOutcome) -> T) -> Extras<T> {
        Extras(
            extras
                .iter()
                .map(|(name, outcome)| ((*name).to_owned(), value(outcome)))
                .collect(),
        )
    }
}

impl<T: Serialize> Serialize for Extras<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, value)| (name, value)))
    }
}

#[derive(Debug, Clone, Serialize)]
struct Check {
    ok: bool,
    detail: &'static str,
}

impl Check {
    fn of(outcome: &ProbeOutcome) -> Check {
        Check {
            ok: outcome.is_ok(),
            detail: outcome.detail(),
        }
    }
}

/// The contract names one dependency: the first failure in the given order.
fn first_failure<'a>(
    results: impl IntoIterator<Item = (&'a str, Option<String>)>,
) -> Option<(String, String)> {
    results
        .into_iter()
        .find_map(|(name, error)| error.map(|e| (name.to_owned(), e)))
}

impl ReadyBody {
    /// `extras` pairs each extra TCP dependency's name with its outcome, in listed order.
    fn new(
        db: &ProbeOutcome,
        redis: &ProbeOutcome,
        migrations: &MigrationsOutcome,
        extras: &[(&str, ProbeOutcome)],
    ) -> ReadyBody {
        // Extras come last: the service's own stores and schema explain more.
        let failure = first_failure(
            [
                ("Postgres", db.error().map(str::to_owned)),
                ("Redis", redis.error().map(str::to_owned)),
                ("Migrations", migrations.error()),
            ]
            .into_iter()
            .chain(
                extras
                    .iter()
                    .map(|(name, outcome)| (*name, outcome.error().map(str::to_owned))),
            ),
        );
        ReadyBody {
            status: if failure.is_some() { "fail" } else { "ok" },
            dependency: failure.as_ref().map(|(name, _)| name.clone()),
            error: failure.map(|(_, error)| error),
            dependencies: Dependencies {
                database: db.detail(),
                redis: redis.detail(),
                migrations: migrations.label(),
                extras: Extras::of(extras, ProbeOutcome::detail),
            },
            checks: Checks {
                db: Check::of(db),
                redis: Check::of(redis),
                extras: Extras::of(extras, Check::of),
            },
            database_url: None,
            redis_url: None,
            padding: None,
        }
    }

    fn is_ok(&self) -> bool {
        self.dependency.is_none()
    }

    fn summary(&self) -> String {
        match (&self.dependency, &self.error) {
            (Some(dependency), Some(error)) => format!("fail {dependency}: {error}"),
            _ => "ok".to_owned(),
        }
    }
}

#[derive(Debug, Serialize)]
struct LiveBody {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dependency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn live(State(state): State<Arc<AppState>>) -> Response {
    let alive = LiveBody {
        status: "alive",
        dependency: None,
        error: None,
    };
    if !state.flaws.has(Flaw::LiveChecksDeps) {
        return Json(alive).into_response();
    }
    let deps = &state.deps;
    let (db, redis, extras) = tokio::join!(
        deps.probe_postgres(),
        deps.probe_redis(),
        deps.probe_extras()
    );
    let failure = first_failure(
        [("Postgres", db.error()), ("Redis", redis.error())]
            .into_iter()
            .chain(
                deps.extras()
                    .iter()
                    .zip(&extras)
                    .map(|(dep, outcome)| (dep.name.as_str(), outcome.error())),
            )
            .map(|(name, error)| (name, error.map(str::to_owned))),
    );
    match failure {
        None => Json(alive).into_response(),
        Some((dependency, error)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(LiveBody {
                status: "fail",
                dependency: Some(dependency),
                error: Some(error),
            }),
        )
            .into_response(),
    }
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    state.ready_requests.fetch_add(1, Ordering::Relaxed);
    if state.flaws.has(Flaw::SlowReady) {
        tokio::time::sleep(SLOW_READY_DELAY).await;
    }
    if state.flaws.has(Flaw::VerySlowReady) {
        tokio::time::sleep(VERY_SLOW_READY_DELAY).await;
    }
    if state.flaws.has(Flaw::EndlessReadyBody) {
        return endless_body();
    }
    let replay = {
        let memory = state.memory();
        memory
            .cached_success
            .clone()
            .or_else(|| memory.latched_failure.clone())
    };
    let body = match replay {
        Some(body) => body,
        None => evaluate(&state).await,
    };
    respond(&state, body)
}

async fn evaluate(state: &AppState) -> ReadyBody {
    let deps = &state.deps;
    let redis = async {
        if state.flaws.has(Flaw::ReadyIgnoresRedis) {
            ProbeOutcome::Connected
        } else {
            deps.probe_redis().await
        }
    };
    let (db, redis, migrations, extras) = tokio::join!(
        deps.probe_postgres(),
        redis,
        deps.check_migrations(),
        deps.probe_extras()
    );
    let extras: Vec<(&str, ProbeOutcome)> = deps
        .extras()
        .iter()
        .map(|dep| dep.name.as_str())
        .zip(extras)
        .collect();
    let mut body = ReadyBody::new(&db, &redis, &migrations, &extras);
    if state.flaws.has(Flaw::RevealsRedisUrl) {
        body.redis_url.clone_from(&state.redis_url);
    }
    if state.flaws.has(Flaw::HugeReadyBody) {
        body.padding = Some("x".repeat(HUGE_BODY_BYTES));
    }
    if state.flaws.has(Flaw::LeakSecrets) && !body.is_ok() {
        let db_url = state.database_url.clone().unwrap_or_default();
        let redis_url = state.redis_url.clone().unwrap_or_default();
        body.error = body
            .error
            .map(|e| format!("{e} (database_url={db_url}, redis_url={redis_url})"));
        body.database_url = Some(db_url);
        body.redis_url = Some(redis_url);
    }
    body
}

fn respond(state: &AppState, body: ReadyBody) -> Response {
    let ok = body.is_ok();
    {
        let mut memory = state.memory();
        if ok && state.flaws.has(Flaw::ReadyCachesSuccess) && memory.cached_success.is_none() {
            memory.cached_success = Some(body.clone());
        }
        if !ok && state.flaws.has(Flaw::ReadyNeverRecovers) && memory.latched_failure.is_none() {
            memory.latched_failure = Some(body.clone());
        }
        let summary = body.summary();
        if memory.last_logged.as_deref() != Some(summary.as_str()) {
            eprintln!("ready: {summary}");
            memory.last_logged = Some(summary);
        }
        if ok && state.flaws.has(Flaw::LeakSecretsWhenIdle) && !memory.idle_flaw_armed {
            // Flaw: a while after the first healthy answer, when nobody is
            // asking, it logs its database URL, password included.
            memory.idle_flaw_armed = true;
            let url = state.database_url.clone().unwrap_or_default();
            tokio::spawn(async move {
                tokio::time::sleep(IDLE_LEAK_DELAY).await;
                eprintln!("idle: pool keeper connected to {url}");
            });
        }
        if ok && state.flaws.has(Flaw::ExitsWhenIdle) && !memory.idle_flaw_armed {
            // Flaw: as long after the first healthy answer, it exits.
            memory.idle_flaw_armed = true;
            tokio::spawn(async {
                tokio::time::sleep(IDLE_EXIT_DELAY).await;
                eprintln!("idle: pool keeper lost its connection; exiting");
                std::process::exit(3);
            });
        }
    }
    if !state.flaws.has(Flaw::GaugeStuck) {
        state.ready_gauge.store(ok, Ordering::Relaxed);
    }
    if state.flaws.has(Flaw::HealthyBodyNamesAll) {
        return naming_all(state, ok, &body);
    }
    if !ok && state.flaws.has(Flaw::Ready503Anonymous) {
        // Flaw: the right status, but nothing says which dependency failed.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "fail" })),
        )
            .into_response();
    }
    let status = match (ok, state.flaws.has(Flaw::Ready500)) {
        (true, _) => StatusCode::OK,
        (false, false) => StatusCode::SERVICE_UNAVAILABLE,
        (false, true) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if let Some(echo) = &state.echo {
        return echoing(status, &body, echo);
    }
    (status, Json(body)).into_response()
}

/// `echo-credentials`: the ready answer with every value the service was
/// given, encoded, in its headers and in an `echo` member of its body.
fn echoing(status: StatusCode, body: &ReadyBody, echo: &crate::echo::Echo) -> Response {
    let json = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let text = match json.strip_suffix('}') {
        Some(open) => format!("{open},\"echo\":{}}}", echo.json()),
        None => json,
    };
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], text).into_response();
    for (name, value) in echo.headers() {
        response.headers_mut().append(name, value);
    }
    response
}

/// `healthy-body-names-all`: every answer lists every dependency it checks
/// by name, and a failure says nothing else: the 503 names them all, so
/// it cannot tell which one failed, and the healthy 200 names them too.
fn naming_all(state: &AppState, ok: bool, body: &ReadyBody) -> Response {
    let checked: Vec<&str> = ["Postgres", "Redis"]
        .into_iter()
        .chain(state.deps.extras().iter().map(|d| d.name.as_str()))
        .collect();
    if !ok {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "fail", "checked": checked })),
        )
            .into_response();
    }
    let mut json = serde_json::to_value(body).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(members) = json.as_object_mut() {
        members.insert("checked".to_owned(), serde_json::json!(checked));
    }
    (StatusCode::OK, Json(json)).into_response()
}

/// `endless-ready-body`: 200 and a JSON body that never ends.
fn endless_body() -> Response {
    static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
    let start = futures_util::stream::once(async {
        Ok::<_, std::convert::Infallible>(axum::body::Bytes::from_static(
            br#"{"status":"ok","padding":""#,
        ))
    });
    let rest = futures_util::stream::repeat_with(|| Ok(axum::body::Bytes::from_static(&CHUNK)));
    let body = axum::body::Body::from_stream(futures_util::StreamExt::chain(start, rest));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[derive(Debug, Serialize)]
struct VersionBody<'a> {
    name: &'static str,
    version: &'static str,
    git_sha: Option<&'a str>,
}

async fn version(State(state): State<Arc<AppState>>) -> Response {
    Json(VersionBody {
        name: SERVICE,
        version: env!("CARGO_PKG_VERSION"),
        git_sha: state.git_sha.as_deref(),
    })
    .into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let gauge = u8::from(state.ready_gauge.load(Ordering::Relaxed));
    let requests = state.ready_requests.load(Ordering::Relaxed);
    let text = format!(
        "# HELP aether_readyz_success Whether the last readiness check passed (1) or failed (0).\n\
         # TYPE aether_readyz_success gauge\n\
         aether_readyz_success{{service=\"{SERVICE}\"}} {gauge}\n\
         # HELP reference_ready_requests_total Readiness requests served.\n\
         # TYPE reference_ready_requests_total counter\n\
         reference_ready_requests_total {requests}\n"
    );
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_are_keyed_by_name_and_fail_after_migrations() {
        let up = ProbeOutcome::Connected;
        let down = |e: &str| ProbeOutcome::Unreachable(e.to_owned());
        let extras = [
            ("FeatureStore", down("connect refused")),
            ("Kafka", ProbeOutcome::Connected),
        ];
        let body = ReadyBody::new(&up, &up, &MigrationsOutcome::Head, &extras);
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["status"], "fail");
        assert_eq!(json["dependency"], "FeatureStore");
        assert_eq!(json["error"], "connect refused");
        assert_eq!(json["dependencies"]["FeatureStore"], "unreachable");
        assert_eq!(json["dependencies"]["Kafka"], "connected");
        assert_eq!(json["dependencies"]["database"], "connected");
        assert_eq!(json["checks"]["FeatureStore"]["ok"], false);
        assert_eq!(json["checks"]["Kafka"]["detail"], "connected");

        // The service's own dependencies and schema are named before any extra.
        let body = ReadyBody::new(
            &up,
            &down("PING timeout"),
            &MigrationsOutcome::Head,
            &extras,
        );
        assert_eq!(body.dependency.as_deref(), Some("Redis"));
        let body = ReadyBody::new(&up, &up, &MigrationsOutcome::Pending(1), &extras);
        assert_eq!(body.dependency.as_deref(), Some("Migrations"));

        let body = ReadyBody::new(&up, &up, &MigrationsOutcome::Head, &extras[1..]);
        assert!(body.is_ok());
        let text = serde_json::to_string(&body).unwrap();
        assert!(
            text.contains(r#""migrations":"head","Kafka":"connected"}"#),
            "{text}"
        );
    }
}
