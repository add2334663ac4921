//! The probe for extra TCP dependencies (`EXTRA_TCP_DEPS`): connect, write
//! `PING\r\n`, and require at least one byte back. It knows no protocol on
//! purpose, so any dependency gonogo's fault proxy can break at the TCP level
//! can be probed; a password-less Redis (`+PONG`) is the usual stand-in.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

use crate::config::ExtraTcpDep;
use crate::probes::ProbeOutcome;

const PING: &[u8] = b"PING\r\n";

/// Probes every dependency concurrently; the outcomes are in `deps` order.
/// Each probe carries its own deadline, so the whole call is bounded by it too.
pub async fn probe_all(deps: &[ExtraTcpDep], deadline: Duration) -> Vec<ProbeOutcome> {
    let mut tasks = JoinSet::new();
    for (index, dep) in deps.iter().enumerate() {
        let addr = dep.addr.clone();
        tasks.spawn(async move { (index, probe(&addr, deadline).await) });
    }
    let mut outcomes = vec![None; deps.len()];
    while let Some(joined) = tasks.join_next().await {
        // A task only fails to join if its probe panicked (a bug): its slot stays
        // `None` and still reads as a failure below, never as a missing key.
        if let Ok((index, outcome)) = joined {
            outcomes[index] = Some(outcome);
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| ProbeOutcome::Unreachable("probe crashed".to_owned())))
        .collect()
}

/// One probe of `addr` (`host:port`), all of it (resolve, connect, write,
/// read) under `deadline`.
pub async fn probe(addr: &str, deadline: Duration) -> ProbeOutcome {
    let give_up = Instant::now() + deadline;
    let ms = deadline.as_millis();
    let mut stream = match timeout_at(give_up, TcpStream::connect(addr)).await {
        Err(_) => return ProbeOutcome::Unreachable(format!("connect timeout after {ms} ms")),
        Ok(Err(e)) => return ProbeOutcome::Unreachable(failure("connect", &e)),
        Ok(Ok(stream)) => stream,
    };
    let exchange = async {
        stream
            .write_all(PING)
            .await
            .map_err(|e| failure("write", &e))?;
        // One byte is the whole requirement; the buffer just avoids leaving a
        // short answer unread, which would turn our close into a reset.
        let mut answer = [0u8; 64];
        match stream.read(&mut answer).await {
            Ok(0) => Err("connection closed without an answer".to_owned()),
            Ok(_) => Ok(()),
            Err(e) => Err(failure("read", &e)),
        }
    };
    match timeout_at(give_up, exchange).await {
        Err(_) => ProbeOutcome::Unreachable(format!("no answer within {ms} ms")),
        Ok(Err(e)) => ProbeOutcome::Unreachable(e),
        Ok(Ok(())) => ProbeOutcome::Connected,
    }
}

/// Short, stable wording for the faults gonogo injects; anything else keeps
/// the OS text so the evidence still says what happened.
fn failure(step: &str, error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => format!("{step} refused"),
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => "connection reset".to_owned(),
        _ => format!("{step} failed: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    const DEADLINE: Duration = Duration::from_millis(300);

    async fn bound() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        (listener, addr)
    }

    #[tokio::test]
    async fn an_answer_means_connected() {
        let (listener, addr) = bound().await;
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 16];
            let _ = socket.read(&mut buf).await;
            socket.write_all(b"+PONG\r\n").await.unwrap();
        });
        assert_eq!(probe(&addr, DEADLINE).await, ProbeOutcome::Connected);
    }

    #[tokio::test]
    async fn a_blackhole_fails_within_the_deadline() {
        let (listener, addr) = bound().await;
        let holder = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(socket);
        });
        let started = std::time::Instant::now();
        assert_eq!(
            probe(&addr, DEADLINE).await,
            ProbeOutcome::Unreachable("no answer within 300 ms".to_owned())
        );
        assert!(started.elapsed() < DEADLINE + Duration::from_millis(200));
        holder.abort();
    }

    #[tokio::test]
    async fn a_silent_close_and_a_refusal_fail() {
        let (listener, addr) = bound().await;
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            drop(socket);
        });
        let closed = probe(&addr, DEADLINE).await;
        assert!(!closed.is_ok(), "{closed:?}");

        let (listener, addr) = bound().await;
        drop(listener);
        assert_eq!(
            probe(&addr, DEADLINE).await,
            ProbeOutcome::Unreachable("connect refused".to_owned())
        );
    }

    #[tokio::test]
    async fn all_outcomes_keep_the_listed_order() {
        let (answering, good) = bound().await;
        tokio::spawn(async move {
            let (mut socket, _) = answering.accept().await.unwrap();
            socket.write_all(b"+").await.unwrap();
        });
        let (refusing, bad) = bound().await;
        drop(refusing);
        let deps = [
            ExtraTcpDep {
                name: "Bad".into(),
                addr: bad,
            },
            ExtraTcpDep {
                name: "Good".into(),
                addr: good,
            },
        ];
        let outcomes = probe_all(&deps, DEADLINE).await;
        assert!(!outcomes[0].is_ok());
        assert!(outcomes[1].is_ok());
    }
}
