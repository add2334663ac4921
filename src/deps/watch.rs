//! What the dependencies saw: the server side of a step, for the evidence
//! of a step that failed or did not run ("no response within 5 s" says
//! little; Redis knows it refused the service's unauthenticated commands).
//! Takes the servers gonogo owns: the embedded Postgres server's log (its
//! stderr, captured from the start: authentication failures, "too many
//! clients", errors with their statements) and Redis, asked over RESP
//! (`INFO errorstats` before and after, `ACL LOG`, `INFO clients`). Gives
//! raw text per source for one time window, which the runner masks.
//!
//! Every question has a deadline ([`ASK_DEADLINE`]); a failed question is
//! said as such, never guessed around.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::RedisEndpoint;
use super::resp::{RespConnection, RespValue};
use crate::process::OutputCapture;

/// The limit for each conversation with Redis.
pub const ASK_DEADLINE: Duration = Duration::from_secs(2);
/// Most `ACL LOG` entries asked for.
const ACL_ENTRIES: &str = "20";

/// The servers whose view gonogo can give; empty for servers it does not
/// own (external, target mode).
#[derive(Default)]
pub struct DependencyWatch {
    postgres_log: Option<OutputCapture>,
    redis: Option<RedisEndpoint>,
}

/// Where a window starts.
pub struct Mark {
    at: Instant,
    /// The number of the last Postgres log line before the window.
    postgres_line: u64,
    /// Error replies Redis had given so far, by error prefix.
    redis_errors: Result<BTreeMap<String, u64>, String>,
}

/// One source's view of a window, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `Postgres`, `Redis`.
    pub dependency: &'static str,
    /// `server log`, `error replies`, `ACL LOG`, `INFO clients`.
    pub source: &'static str,
    pub text: String,
}

impl DependencyWatch {
    pub fn new(postgres_log: Option<OutputCapture>, redis: Option<RedisEndpoint>) -> Self {
        DependencyWatch {
            postgres_log,
            redis,
        }
    }

    /// Whether there is anything to watch.
    pub fn is_empty(&self) -> bool {
        self.postgres_log.is_none() && self.redis.is_none()
    }

    /// Start a window now.
    pub async fn mark(&self) -> Mark {
        let postgres_line = self
            .postgres_log
            .as_ref()
            .and_then(|log| log.snapshot().lines().last().map(|l| l.number))
            .unwrap_or(0);
        let redis_errors = match &self.redis {
            Some(redis) => ask(redis, |conn| Box::pin(error_counts(conn))).await,
            None => Ok(BTreeMap::new()),
        };
        Mark {
            at: Instant::now(),
            postgres_line,
            redis_errors,
        }
    }

    /// What each server saw since `mark`.
    pub async fn since(&self, mark: &Mark) -> Vec<Seen> {
        let mut seen = Vec::new();
        if let Some(log) = &self.postgres_log {
            let lines: Vec<String> = log
                .snapshot()
                .lines()
                .filter(|l| l.number > mark.postgres_line)
                .map(|l| l.text.clone())
                .collect();
            seen.push(Seen {
                dependency: "Postgres",
                source: "server log",
                text: if lines.is_empty() {
                    "(the server logged nothing during this step)".into()
                } else {
                    lines.join("\n")
                },
            });
        }
        if let Some(redis) = &self.redis {
            let window = mark.at.elapsed();
            let asked = ask(redis, |conn| {
                Box::pin(async move {
                    let errors = error_counts(conn).await?;
                    let acl = acl_log(conn, window).await?;
                    let clients = info(conn, "clients").await?;
                    Ok((errors, acl, clients))
                })
            })
            .await;
            match asked {
                Ok((errors, acl, clients)) => {
                    seen.push(Seen {
                        dependency: "Redis",
                        source: "error replies",
                        text: error_delta(&mark.redis_errors, &errors),
                    });
                    seen.push(Seen {
                        dependency: "Redis",
                        source: "ACL LOG",
                        text: if acl.is_empty() {
                            "(no failed AUTH and no NOPERM during this step)".into()
                        } else {
                            acl.join("\n")
                        },
                    });
                    seen.push(Seen {
                        dependency: "Redis",
                        source: "INFO clients",
                        text: clients,
                    });
                }
                Err(why) => seen.push(Seen {
                    dependency: "Redis",
                    source: "error replies",
                    text: format!("gonogo could not ask Redis: {why}"),
                }),
            }
        }
        seen
    }
}

type Asked<'c, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, String>> + Send + 'c>>;

/// Connect, authenticate and run `talk`, all within [`ASK_DEADLINE`].
async fn ask<T>(
    redis: &RedisEndpoint,
    talk: impl for<'c> FnOnce(&'c mut RespConnection) -> Asked<'c, T>,
) -> Result<T, String> {
    let conversation = async {
        let mut conn = RespConnection::connect_to(&redis.host, redis.port)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        if let Some(auth) = redis.auth_command() {
            match conn
                .command(&auth)
                .await
                .map_err(|e| format!("AUTH: {e}"))?
            {
                RespValue::Simple(_) => {}
                other => return Err(format!("AUTH answered {other:?}")),
            }
        }
        talk(&mut conn).await
    };
    tokio::time::timeout(ASK_DEADLINE, conversation)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", ASK_DEADLINE.as_secs())))
}

/// One `INFO` section's text.
async fn info(conn: &mut RespConnection, section: &str) -> Result<String, String> {
    match conn
        .command(&[b"INFO", section.as_bytes()])
        .await
        .map_err(|e| format!("INFO {section}: {e}"))?
    {
        RespValue::Bulk(Some(text)) => Ok(String::from_utf8_lossy(&text)
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")),
        other => Err(format!("INFO {section} answered {other:?}")),
    }
}

/// `INFO errorstats` as counts by error prefix (`NOAUTH`, `WRONGPASS`).
async fn error_counts(conn: &mut RespConnection) -> Result<BTreeMap<String, u64>, String> {
    Ok(parse_errorstats(&info(conn, "errorstats").await?))
}

/// `errorstat_NOAUTH:count=3` lines.
fn parse_errorstats(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("errorstat_")?.split_once(':')?;
            let count = rest.strip_prefix("count=")?.trim().parse().ok()?;
            Some((name.to_string(), count))
        })
        .collect()
}

/// What each error prefix means, for a reader who does not know Redis.
fn meaning(prefix: &str) -> &'static str {
    match prefix {
        "NOAUTH" => "commands refused because the client had not authenticated",
        "WRONGPASS" => "AUTH with a wrong password or user",
        "NOPERM" => "commands or keys the user may not use",
        "OOM" => "writes refused: memory is full",
        "LOADING" => "commands refused while the dataset loads",
        "MISCONF" => "writes refused: persistence failed",
        _ => "error replies",
    }
}

/// The error replies Redis gave during the window.
fn error_delta(
    before: &Result<BTreeMap<String, u64>, String>,
    after: &BTreeMap<String, u64>,
) -> String {
    let before = match before {
        Ok(before) => before,
        Err(why) => return format!("gonogo could not ask Redis when the step began: {why}"),
    };
    let lines: Vec<String> = after
        .iter()
        .filter_map(|(prefix, count)| {
            let new = count.saturating_sub(before.get(prefix).copied().unwrap_or(0));
            (new > 0).then(|| format!("{prefix}: {new} ({})", meaning(prefix)))
        })
        .collect();
    if lines.is_empty() {
        "(Redis gave no error replies during this step)".into()
    } else {
        format!(
            "Redis answered with errors during this step:\n{}",
            lines.join("\n")
        )
    }
}

/// `ACL LOG` entries updated within the last `window`, one line each.
async fn acl_log(conn: &mut RespConnection, window: Duration) -> Result<Vec<String>, String> {
    let reply = conn
        .command(&[b"ACL", b"LOG", ACL_ENTRIES.as_bytes()])
        .await
        .map_err(|e| format!("ACL LOG: {e}"))?;
    let RespValue::Array(Some(entries)) = reply else {
        return Err(format!("ACL LOG answered {reply:?}"));
    };
    Ok(entries
        .iter()
        .filter_map(|entry| acl_entry(entry, window))
        .collect())
}

/// One entry, when it was last updated within `window`.
fn acl_entry(entry: &RespValue, window: Duration) -> Option<String> {
    let RespValue::Array(Some(fields)) = entry else {
        return None;
    };
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for pair in fields.chunks(2) {
        let [key, value] = pair else { continue };
        let text = |v: &RespValue| match v {
            RespValue::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            RespValue::Simple(s) => s.clone(),
            RespValue::Integer(i) => i.to_string(),
            _ => String::new(),
        };
        map.insert(text(key), text(value));
    }
    let age: f64 = map.get("age-seconds")?.parse().ok()?;
    if age > window.as_secs_f64() + 0.5 {
        return None;
    }
    let get = |k: &str| map.get(k).map_or("?", String::as_str);
    // Of the client's description, what identifies it.
    let client: Vec<&str> = get("client-info")
        .split_whitespace()
        .filter(|f| {
            ["addr=", "name=", "user=", "cmd="]
                .iter()
                .any(|p| f.starts_with(p))
        })
        .collect();
    Some(format!(
        "{} × {} refused ({}): {} by user {} from {}",
        get("count"),
        get("reason"),
        get("context"),
        get("object"),
        get("username"),
        client.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_are_counted_from_the_mark() {
        let before = parse_errorstats("errorstat_NOAUTH:count=2\nerrorstat_ERR:count=1");
        let after = parse_errorstats(
            "errorstat_NOAUTH:count=7\nerrorstat_ERR:count=1\nerrorstat_WRONGPASS:count=1",
        );
        assert_eq!(
            error_delta(&Ok(before), &after),
            "Redis answered with errors during this step:\n\
             NOAUTH: 5 (commands refused because the client had not authenticated)\n\
             WRONGPASS: 1 (AUTH with a wrong password or user)"
        );
        assert!(error_delta(&Ok(after.clone()), &after).contains("no error replies"));
    }
}
