//! Service-level checks: latency SLO, graceful shutdown and the readiness
//! gauge each fail for the flaw they exist to catch.

use crate::proof::assert_no_go_at;

const REFERENCE: &str = "scenarios/reference.toml";

#[test]
fn slow_ready_fails_the_latency_slo() {
    // Ready sleeps 300 ms: p95 can only be above the 200 ms threshold.
    assert_no_go_at(Some("slow-ready"), REFERENCE, "latency-slo");
}

#[test]
fn ignoring_sigterm_fails_graceful_shutdown() {
    assert_no_go_at(Some("ignore-sigterm"), REFERENCE, "graceful-shutdown");
}

#[test]
fn a_clean_stop_with_a_failing_exit_status_fails_graceful_shutdown() {
    assert_no_go_at(Some("sigterm-exits-1"), REFERENCE, "graceful-shutdown");
}

#[test]
fn a_gauge_that_never_flips_fails_the_metrics_step() {
    assert_no_go_at(Some("gauge-stuck"), REFERENCE, "metrics-gauge");
}
