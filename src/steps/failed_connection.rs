//! Whether a service's last output lines say it exited after a failed
//! connection (to a database, a cache, any host) rather than after a
//! configuration check. Fail-fast reads it: such an exit passes only where
//! the fallback address it tried refuses, so the pass depends on the
//! machine.
//!
//! The table is small and plain on purpose: each entry is a phrase (matched
//! case-insensitively) that drivers and runtimes print when a connection
//! fails, and what it means. A configuration check ("REDIS_URL is
//! required") uses none of them.

/// How many of the last output lines are read: the reason for an exit is
/// printed last, and an earlier line may be a retry that later worked.
const LAST_LINES: usize = 20;

/// Longest line quoted back, in characters.
const QUOTE_CHARS: usize = 160;

/// Phrases that mean a connection failed, with what each is.
pub const TABLE: &[(&str, &str)] = &[
    ("connection refused", "the port refused the connection"),
    ("econnrefused", "the port refused the connection (Node.js)"),
    ("could not connect", "a client could not connect"),
    ("couldn't connect", "a client could not connect"),
    ("cannot connect", "a client could not connect"),
    ("can't connect", "a client could not connect"),
    ("unable to connect", "a client could not connect"),
    ("failed to connect", "a client could not connect"),
    ("error connecting", "a client could not connect (redis-py)"),
    ("name or service not known", "the host name did not resolve"),
    (
        "temporary failure in name resolution",
        "the host name did not resolve",
    ),
    (
        "nodename nor servname",
        "the host name did not resolve (BSD, macOS)",
    ),
    ("no such host", "the host name did not resolve (Go)"),
    ("enotfound", "the host name did not resolve (Node.js)"),
    ("timeout connecting", "the connection timed out"),
    ("timed out connecting", "the connection timed out"),
    ("connect timeout", "the connection timed out"),
    ("connection timed out", "the connection timed out"),
    ("etimedout", "the connection timed out (Node.js)"),
    ("no route to host", "the network did not reach the host"),
    (
        "network is unreachable",
        "the network did not reach the host",
    ),
    ("connection reset", "the peer reset the connection"),
    (
        "connectionerror",
        "a client raised a connection error (redis-py)",
    ),
    (
        "operationalerror",
        "the database driver could not connect (psycopg, SQLAlchemy)",
    ),
];

/// What the output says about a failed connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedConnection {
    /// The last line naming it, trimmed (and cut to [`QUOTE_CHARS`]).
    pub line: String,
    /// What the phrase means, from [`TABLE`].
    pub meaning: &'static str,
}

/// The last of the last [`LAST_LINES`] lines of `output` that names a
/// failed connection, if any.
pub fn find(output: &str) -> Option<FailedConnection> {
    let lines: Vec<&str> = output.lines().collect();
    let start = lines.len().saturating_sub(LAST_LINES);
    lines[start..].iter().rev().find_map(|line| {
        let lower = line.to_lowercase();
        TABLE
            .iter()
            .find(|(phrase, _)| lower.contains(phrase))
            .map(|(_, meaning)| FailedConnection {
                line: quote(line.trim()),
                meaning,
            })
    })
}

fn quote(line: &str) -> String {
    if line.chars().count() <= QUOTE_CHARS {
        return line.to_string();
    }
    let cut: String = line.chars().take(QUOTE_CHARS).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_recognised() {
        for line in [
            "redis.exceptions.ConnectionError: Error 111 connecting to localhost:6379. Connection refused.",
            "psycopg2.OperationalError: could not connect to server: Connection refused",
            "Error: connect ECONNREFUSED 127.0.0.1:6379",
            "socket.gaierror: [Errno -2] Name or service not known",
            "error: could not connect to Redis at redis://127.0.0.1:6379: Connection refused (os error 111)",
            "dial tcp: lookup db: no such host",
            "Timeout connecting to server",
        ] {
            let output = format!("boot: starting\n{line}\n");
            let found = find(&output).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(found.line, line.trim());
        }
    }

    #[test]
    fn configuration_checks_are_not_connection_failures() {
        for output in [
            "error: strict mode (ENV=staging): REDIS_URL is not set\n",
            "error: strict mode (CI_STRICT=1): DATABASE_URL uses a sqlite scheme; Postgres is required\n",
            "boot: database connected (before the configuration check)\nerror: strict mode (ENV=staging): REDIS_URL is not set\n",
            "RuntimeError: REDIS_URL is required in strict mode\n",
            "",
        ] {
            assert_eq!(find(output), None, "{output}");
        }
    }

    #[test]
    fn only_the_last_lines_count_and_the_last_match_is_quoted() {
        let mut output = String::from("retrying: Connection refused\n");
        for i in 0..LAST_LINES {
            output.push_str(&format!("line {i}\n"));
        }
        assert_eq!(find(&output), None);
        let output = "could not connect (attempt 1)\ncould not connect (attempt 2)\n";
        assert_eq!(find(output).unwrap().line, "could not connect (attempt 2)");
        let long = format!("Connection refused {}", "x".repeat(400));
        assert!(find(&long).unwrap().line.ends_with('…'));
    }
}
