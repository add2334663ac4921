//! Harness errors: what went wrong when gonogo itself could not do its job.
//!
//! A service that fails a check is not an error (see `verdict`). These are
//! the cases where no verdict could be reached, each mapped to one exit code.

use crate::exit_codes;
use crate::scenario::ScenarioError;

/// Why gonogo could not reach a verdict.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario file is missing, malformed or inconsistent.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
    /// Infrastructure or I/O failure inside the harness.
    #[error(transparent)]
    Harness(#[from] anyhow::Error),
    /// The run was interrupted by a signal; children were stopped.
    #[error("interrupted by {0}; every child process was stopped")]
    Interrupted(&'static str),
}

impl Error {
    /// The documented exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Scenario(_) | Error::Usage(_) => exit_codes::USAGE,
            Error::Harness(_) => exit_codes::HARNESS,
            Error::Interrupted(_) => exit_codes::INTERRUPTED,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
