//! Step 3, negative proof: the service restarts with its Redis URL pointing
//! at a closed loopback port (the seed's `127.0.0.1:1`). Ready must answer
//! 503 and the body must name Redis, and keep doing so.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ready::{expect_response, startup_text};
use super::{StepContext, StepOutcome, StepRecorder};
use crate::service::{RunningService, ServiceLaunch, Startup};

pub const ID: &str = "negative-proof";
pub const TITLE: &str = "Negative proof (Redis broken, ready 503)";

/// The seed's closed port.
pub const CLOSED_PORT: u16 = 1;

pub async fn negative(ctx: &mut StepContext<'_>, number: u32) -> anyhow::Result<StepOutcome> {
    let mut step = StepRecorder::new(ctx.masker, number, ID, TITLE);
    let spec = &ctx.scenario.service;
    let mut broken = ctx.bindings_with_port(&ctx.bindings)?;
    let password = broken.get("redis_password").cloned().unwrap_or_default();
    let closed = format!("127.0.0.1:{CLOSED_PORT}");
    let closed_now = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(&closed),
    )
    .await
    .is_ok_and(|c| c.is_err());
    step.check(
        format!("{closed} refuses connections (so Redis is really unreachable)"),
        if closed_now {
            "connection refused"
        } else {
            "something accepted a connection"
        },
        closed_now,
    );
    let url = if password.is_empty() {
        format!("redis://{closed}/0")
    } else {
        format!("redis://:{password}@{closed}/0")
    };
    broken.insert("redis_url".into(), url);
    broken.insert("redis_host".into(), "127.0.0.1".into());
    broken.insert("redis_port".into(), CLOSED_PORT.to_string());
    let launch = ServiceLaunch::build(spec, &broken, &ctx.extra_env, &[], &BTreeMap::new())?;
    ctx.detail(&format!(
        "restart service with Redis at {closed} on port {}",
        launch.port
    ));
    let mut service = RunningService::spawn(&launch)?;
    let startup = service
        .wait_answering(&ctx.probe, &spec.live_path, spec.startup_timeout)
        .await;
    step.process(
        "restart service with REDIS pointed at a closed port",
        &launch.display(),
        None,
        &startup_text(&startup),
        startup.took(),
    );
    let up = step.check(
        "service starts and answers HTTP with Redis unreachable",
        startup_text(&startup),
        matches!(startup, Startup::Answering(_)),
    );
    if up {
        let negative = &ctx.scenario.negative;
        let first = service
            .get(&ctx.probe, &spec.ready_path, spec.request_timeout)
            .await;
        step.request(&format!("GET {}", spec.ready_path), &first);
        expect_response(&mut step, &first, negative.status, &negative.expect);
        let names = first
            .body
            .to_lowercase()
            .contains(&negative.body_names.to_lowercase());
        step.check(
            format!("body names {}", negative.body_names),
            if names {
                format!("body mentions {}", negative.body_names)
            } else {
                format!("body does not mention {}", negative.body_names)
            },
            names,
        );
        // A service that says 503 once and 200 a moment later is still
        // routing traffic to a broken instance.
        let observe = negative.observe;
        tokio::time::sleep(observe).await;
        let again = service
            .get(&ctx.probe, &spec.ready_path, spec.request_timeout)
            .await;
        step.request(
            &format!(
                "GET {} again after {} s",
                spec.ready_path,
                observe.as_secs_f64()
            ),
            &again,
        );
        step.check(
            format!(
                "still HTTP {} {} s later",
                negative.status,
                observe.as_secs_f64()
            ),
            again.summary(),
            again.status == Some(negative.status),
        );
    }
    step.log(&service.log_text().await);
    let _ = service.stop().await;
    Ok(step.finish())
}
