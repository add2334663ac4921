//! Serving: logs the boot checks, binds the listener, and shuts down gracefully
//! (with a bounded drain) on SIGTERM or SIGINT.

use std::future::IntoFuture;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::config::{Config, Flaw};
use crate::probes::{Deps, ProbeOutcome, within};
use crate::redact::mask_url;
use crate::routes::{AppState, router};

/// How long in-flight requests may finish after a shutdown signal. Orchestrators
/// expect a prompt exit, and a hung probe must not hold the process hostage.
const DRAIN_DEADLINE: Duration = Duration::from_millis(300);

/// The `slow-start` flaw's wait before listening: longer than a 2 s
/// startup budget.
const SLOW_START_DELAY: Duration = Duration::from_secs(3);

pub async fn serve(config: Config) -> ExitCode {
    // Handlers go in before anything slow, so an early SIGTERM is still graceful.
    let signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("error: failed to install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = shutdown_requested(signals, config.flaws.has(Flaw::IgnoreSigterm));
    tokio::pin!(shutdown);

    log_config(&config);
    let deps = Deps::new(&config);
    if let Err(code) = check_redis_fallback(&config, &deps).await {
        return code;
    }
    let slow_start = config.flaws.has(Flaw::SlowStart);
    tokio::select! {
        () = async {
            if slow_start {
                eprintln!("flaw slow-start: waiting {} s before listening", SLOW_START_DELAY.as_secs());
                tokio::time::sleep(SLOW_START_DELAY).await;
            }
            boot_checks(&deps).await;
        } => {}
        () = &mut shutdown => {
            deps.close().await;
            eprintln!("shutdown: complete");
            return ExitCode::SUCCESS;
        }
    }

    let listener = match TcpListener::bind((config.host.as_str(), config.port)).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: failed to bind {}:{}: {e}", config.host, config.port);
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => eprintln!("listening on http://{addr}"),
        Err(_) => eprintln!("listening on http://{}:{}", config.host, config.port),
    }

    if config.flaws.has(Flaw::NeverAnswers) {
        return never_answer(listener, &mut shutdown, deps).await;
    }

    let state = Arc::new(AppState::new(&config, deps));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router(Arc::clone(&state))).with_graceful_shutdown(async {
        let _ = stop_rx.await;
    });
    let mut server = tokio::spawn(server.into_future());

    let code = tokio::select! {
        result = &mut server => {
            let reason = match result {
                Ok(Ok(())) => "server stopped".to_owned(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            eprintln!("error: server stopped unexpectedly: {reason}");
            ExitCode::FAILURE
        }
        () = &mut shutdown => {
            let _ = stop_tx.send(());
            if tokio::time::timeout(DRAIN_DEADLINE, &mut server).await.is_err() {
                eprintln!("shutdown: in-flight requests cut off after {}ms", DRAIN_DEADLINE.as_millis());
                server.abort();
            }
            ExitCode::SUCCESS
        }
    };
    state.deps().close().await;
    eprintln!("shutdown: complete");
    // Flaw: a clean stop that still reports failure, which an orchestrator
    // counts as a crash.
    if config.flaws.has(Flaw::SigtermExits1) && code == ExitCode::SUCCESS {
        return ExitCode::FAILURE;
    }
    code
}

/// Flaw `strict-redis-fallback`: the stand-in Redis is checked at boot,
/// so the service exits after a failed connection rather than after a
/// configuration check: it passes fail-fast only where nothing listens.
async fn check_redis_fallback(config: &Config, deps: &Deps) -> Result<(), ExitCode> {
    let (Some(_), Some(url)) = (&config.strict, &config.redis_fallback) else {
        return Ok(());
    };
    eprintln!("boot: REDIS_URL unset; falling back to {}", mask_url(url));
    match deps.probe_redis().await {
        ProbeOutcome::Connected => {
            eprintln!("boot: redis PING ok (fallback)");
            Ok(())
        }
        outcome => {
            let error = outcome.error().unwrap_or_default().to_owned();
            eprintln!(
                "error: could not connect to Redis at {}: {}",
                mask_url(url),
                error.strip_prefix("PING failed: ").unwrap_or(&error)
            );
            deps.close().await;
            Err(ExitCode::FAILURE)
        }
    }
}

/// Flaw `never-answers`: accept every connection and hold it open, reading
/// and writing nothing, until a shutdown signal (a hung event loop, a
/// deadlocked worker pool).
async fn never_answer(
    listener: TcpListener,
    shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    deps: Deps,
) -> ExitCode {
    eprintln!("flaw never-answers: accepting connections, answering none");
    let mut held = Vec::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((socket, _)) = accepted {
                    held.push(socket);
                }
            }
            () = shutdown.as_mut() => break,
        }
    }
    drop(held);
    deps.close().await;
    eprintln!("shutdown: complete");
    ExitCode::SUCCESS
}

fn log_config(config: &Config) {
    let show = |url: &Option<String>| match url {
        None => "<not set>".to_owned(),
        Some(url) if config.flaws.has(Flaw::LeakSecrets) => url.clone(),
        Some(url) => mask_url(url),
    };
    let flaws = if config.flaws.is_empty() {
        "none".to_owned()
    } else {
        config.flaws.names().join(",")
    };
    eprintln!(
        "boot: reference-service {} env={} strict={} probe_timeout_ms={} flaws={flaws}",
        env!("CARGO_PKG_VERSION"),
        config.env.as_deref().unwrap_or("<not set>"),
        config.strict.as_deref().unwrap_or("off"),
        config.probe_timeout.as_millis(),
    );
    if let Some(requested) = config.probe_timeout_clamped_from {
        eprintln!(
            "boot: PROBE_TIMEOUT_MS={requested} clamped to {}",
            config.probe_timeout.as_millis()
        );
    }
    eprintln!("boot: DATABASE_URL={}", show(&config.database_url));
    eprintln!("boot: REDIS_URL={}", show(&config.redis_url));
    // Flaw: the Redis URL, password and all, on the way to connecting.
    if config.flaws.has(Flaw::RevealsRedisUrl)
        && let Some(url) = &config.redis_url
    {
        eprintln!("boot: connecting to Redis at {url}");
    }
    if config.flaws.has(Flaw::EchoCredentials) {
        for line in crate::echo::Echo::from_env().log_lines() {
            eprintln!("{line}");
        }
    }
    // Only host:port, which carries no secret, so it is shown as configured.
    if !config.extra_tcp_deps.is_empty() {
        let listed: Vec<String> = config
            .extra_tcp_deps
            .iter()
            .map(|dep| format!("{}={}", dep.name, dep.addr))
            .collect();
        eprintln!("boot: EXTRA_TCP_DEPS={}", listed.join(","));
    }
}

/// One attempt at each dependency, for the evidence log. Bounded even when a
/// flaw removes the probe deadlines: boot must always reach the listener.
async fn boot_checks(deps: &Deps) {
    let deadline = Some(deps.deadline());
    let (db, redis, extras) = tokio::join!(
        within(deadline, deps.probe_postgres()),
        within(deadline, deps.probe_redis()),
        within(deadline, deps.probe_extras())
    );
    match db {
        Some(ProbeOutcome::Connected) => eprintln!("boot: database connected"),
        Some(ProbeOutcome::NotConfigured(e)) => eprintln!("boot: database not configured: {e}"),
        Some(ProbeOutcome::Unreachable(e)) => eprintln!("boot: database unreachable: {e}"),
        Some(ProbeOutcome::ReadOnly(e)) => eprintln!("boot: database read-only: {e}"),
        None => eprintln!("boot: database unreachable: timeout"),
    }
    match redis {
        Some(ProbeOutcome::Connected) => eprintln!("boot: redis PING ok"),
        Some(ProbeOutcome::NotConfigured(e)) => eprintln!("boot: redis not configured: {e}"),
        Some(ProbeOutcome::Unreachable(e) | ProbeOutcome::ReadOnly(e)) => {
            let detail = e.strip_prefix("PING failed: ").unwrap_or(&e);
            eprintln!("boot: redis PING failed: {detail}");
        }
        None => eprintln!("boot: redis PING failed: PING timeout"),
    }
    let ms = deps.deadline().as_millis();
    for (index, dep) in deps.extras().iter().enumerate() {
        // The extra probes carry the same deadline, so the outer one should never
        // fire; if it does, every extra is reported, not silently skipped.
        match extras.as_ref().and_then(|outcomes| outcomes.get(index)) {
            Some(ProbeOutcome::Connected) => eprintln!("boot: {} reachable", dep.name),
            Some(outcome) => eprintln!(
                "boot: {} unreachable: {}",
                dep.name,
                outcome.error().unwrap_or_default()
            ),
            None => eprintln!("boot: {} unreachable: no answer within {ms} ms", dep.name),
        }
    }
}

struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT; never, under `ignore-sigterm`,
/// whose handlers swallow the signals so that only SIGKILL stops the process.
async fn shutdown_requested(mut signals: Signals, ignore: bool) {
    loop {
        let name = signals.next().await;
        if ignore {
            eprintln!("signal: {name} ignored");
            continue;
        }
        eprintln!("shutdown: {name} received");
        return;
    }
}
