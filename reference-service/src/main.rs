//! reference-service: a small web service that implements gonogo's readiness
//! contract correctly, plus opt-in flaws (`REFERENCE_FLAW`) that let gonogo
//! prove each of its checks can fail. This file parses argv, loads the
//! configuration and turns every outcome into an exit code.
//!
//! Exit codes:
//! - 0: served and shut down cleanly, or the subcommand succeeded.
//! - 1: configuration rejected (strict fail-fast, malformed variable), the
//!   listener could not bind, or a migration failed.
//! - 2: usage error or unknown `REFERENCE_FLAW` name.

mod config;
mod echo;
mod migrate_command;
mod migrations;
mod probes;
mod redact;
mod routes;
mod serve;
mod tcp_probe;

use std::path::PathBuf;
use std::process::ExitCode;

use config::{Config, ConfigError};
use migrate_command::MigrateAction;

const USAGE: &str = "usage: reference-service [migrate [--current] [--source DIR]]";

/// What argv asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Serve,
    Migrate {
        action: MigrateAction,
        source: Option<PathBuf>,
    },
    Help,
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let Some((first, rest)) = args.split_first() else {
        return Ok(Command::Serve);
    };
    match first.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "migrate" => {
            let mut action = MigrateAction::Apply;
            let mut source = None;
            let mut rest = rest.iter();
            while let Some(arg) = rest.next() {
                match arg.as_str() {
                    "--current" => action = MigrateAction::Current,
                    "--source" => {
                        let dir = rest.next().ok_or("--source needs a directory")?;
                        source = Some(PathBuf::from(dir));
                    }
                    other => return Err(format!("unexpected argument {other:?}")),
                }
            }
            Ok(Command::Migrate { action, source })
        }
        other => Err(format!("unknown command {other:?}")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse_args(&args) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(command) => command,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    // Fail fast before any socket is bound or any connection attempted.
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            if matches!(e, ConfigError::Strict { .. }) && early_flaw("strict-connects-first") {
                connect_first().await;
            }
            if matches!(e, ConfigError::Strict { .. }) && early_flaw("strict-serves-before-failing")
            {
                late_failure().await;
            }
            eprintln!("error: {e}");
            return match e {
                ConfigError::UnknownFlaw(_) => ExitCode::from(2),
                ConfigError::Strict { .. } | ConfigError::Invalid { .. } => ExitCode::FAILURE,
            };
        }
    };

    match command {
        Command::Serve => serve::serve(config).await,
        Command::Migrate { action, source } => {
            migrate_command::run(&config, action, source.as_deref()).await
        }
        Command::Help => ExitCode::SUCCESS,
    }
}

/// Whether `REFERENCE_FLAW` names this flaw of the ones that act before
/// the configuration exists (`strict-serves-before-failing`: the check runs
/// after the listener opens; `strict-connects-first`: after a database
/// connection). Read straight from the environment because the
/// configuration that would carry it is exactly what failed.
fn early_flaw(name: &str) -> bool {
    std::env::var("REFERENCE_FLAW")
        .unwrap_or_default()
        .split(',')
        .any(|f| f.trim() == name)
}

/// Flaw `strict-connects-first`: open (and close) a Postgres connection
/// from `DATABASE_URL` before the configuration check refuses to start, as
/// a service whose database setup runs at import time does. Bounded: 2 s.
async fn connect_first() {
    use sqlx::Connection;
    let Some(url) = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| config::DatabaseScheme::of(u) == config::DatabaseScheme::Postgres)
    else {
        return;
    };
    let url = config::postgres_url_for_sqlx(&url);
    let connect = sqlx::PgConnection::connect(&url);
    match tokio::time::timeout(std::time::Duration::from_secs(2), connect).await {
        Ok(Ok(connection)) => {
            eprintln!("boot: database connected (before the configuration check)");
            let _ = connection.close().await;
        }
        Ok(Err(_)) => eprintln!("boot: database unreachable (before the configuration check)"),
        Err(_) => eprintln!("boot: database connect timed out (before the configuration check)"),
    }
}

/// Answer every request with 200 for half a second, then return.
async fn late_failure() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let Ok(listener) = tokio::net::TcpListener::bind(format!("{host}:{port}")).await else {
        return;
    };
    eprintln!("listening on http://{host}:{port} (before the configuration check)");
    let serve = async {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), serve).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_commands() {
        assert_eq!(parse_args(&[]), Ok(Command::Serve));
        assert_eq!(
            parse_args(&args(&["migrate", "--current"])),
            Ok(Command::Migrate {
                action: MigrateAction::Current,
                source: None
            })
        );
        assert_eq!(
            parse_args(&args(&["migrate", "--source", "migrations-broken"])),
            Ok(Command::Migrate {
                action: MigrateAction::Apply,
                source: Some(PathBuf::from("migrations-broken"))
            })
        );
        assert!(parse_args(&args(&["serve"])).is_err());
        assert!(parse_args(&args(&["migrate", "--source"])).is_err());
    }
}
