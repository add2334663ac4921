//! Exit codes: the one place that defines what `gonogo`'s exit status means.
//!
//! A failed check is a verdict, not an error: it exits [`NO_GO`]. An `Err`
//! means gonogo itself could not do its job and exits [`USAGE`] or
//! [`HARNESS`]. The README's table mirrors this file.

/// Every required step passed (or was waived): the release may go.
pub const GO: i32 = 0;
/// At least one required step failed: the release must not go.
pub const NO_GO: i32 = 1;
/// Bad command line or bad scenario file. Nothing was run, no evidence written.
pub const USAGE: i32 = 2;
/// gonogo could not do its job: a dependency would not start, evidence could
/// not be written, or a secret was found in the evidence.
pub const HARNESS: i32 = 3;
/// Nothing failed, but some required steps could not run (for example the
/// scenario has no `[migrations]`), so there is no GO either.
pub const INCONCLUSIVE: i32 = 4;
/// `verify` found an evidence bundle that does not match its manifest.
pub const TAMPERED: i32 = 5;
/// gonogo itself panicked (a bug); every child was stopped first, no
/// evidence was written. Rust's own code for a panic.
pub const PANIC: i32 = 101;
/// Interrupted by SIGINT/SIGTERM/SIGHUP; every child was stopped first.
pub const INTERRUPTED: i32 = 130;
