//! HTTP probes: one request in, one [`HttpExchange`] out, always within a
//! deadline.
//!
//! gonogo's own client must never wait forever on a service that hangs, so
//! every request carries a timeout and a timeout is recorded as data; nor
//! hold whatever a service sends, so a body is read as a stream and kept up
//! to [`MAX_BODY_BYTES`] (a never-ending body ends there, or at the deadline).

use std::time::{Duration, Instant};

/// Most bytes of a response body gonogo reads; the rest is not read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What happened when gonogo sent one request.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpExchange {
    pub url: String,
    /// `None` when no response arrived (refused, reset, timed out).
    pub status: Option<u16>,
    pub version: String,
    pub headers: Vec<(String, String)>,
    /// The body, lossily decoded, at most [`MAX_BODY_BYTES`] of it.
    pub body: String,
    /// The body went on past [`MAX_BODY_BYTES`]; only that much was read.
    pub body_truncated: bool,
    pub elapsed: Duration,
    pub timeout: Duration,
    /// Why there was no response, in words.
    pub error: Option<String>,
    pub timed_out: bool,
}

impl HttpExchange {
    /// The equivalent curl command, for humans reproducing the step.
    pub fn curl(&self) -> String {
        format!(
            "curl -sS -i --max-time {} {}",
            trim_secs(self.timeout),
            self.url
        )
    }

    /// Status line, headers and body, like `curl -i` prints them.
    pub fn transcript(&self) -> String {
        match self.status {
            Some(status) => {
                let mut out = format!("{} {} {}\n", self.version, status, reason_phrase(status));
                for (name, value) in &self.headers {
                    out.push_str(&format!("{name}: {value}\n"));
                }
                out.push('\n');
                out.push_str(&self.body);
                if self.body_truncated {
                    out.push_str(&crate::mask::cut_note(&format!(
                        "body longer than {} MiB; the rest was not read",
                        MAX_BODY_BYTES / (1024 * 1024)
                    )));
                }
                out
            }
            None => format!("curl: {}", self.error.as_deref().unwrap_or("no response")),
        }
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// A short description for progress lines and observations.
    pub fn summary(&self) -> String {
        match self.status {
            Some(status) => format!("HTTP {status} in {} ms", self.elapsed.as_millis()),
            None => format!(
                "no response after {} ms ({})",
                self.elapsed.as_millis(),
                self.error.as_deref().unwrap_or("unknown error")
            ),
        }
    }
}

fn trim_secs(d: Duration) -> String {
    let s = format!("{:.3}", d.as_secs_f64());
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn reason_phrase(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// A client for probing the service under test.
#[derive(Debug, Clone)]
pub struct Probe {
    client: reqwest::Client,
}

impl Default for Probe {
    fn default() -> Self {
        Probe::new()
    }
}

impl Probe {
    pub fn new() -> Probe {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(0)
            .build()
            .expect("an HTTP client with no TLS or proxy settings always builds");
        Probe { client }
    }

    /// `GET url`, giving up after `timeout` (the whole exchange, body
    /// included).
    pub async fn get(&self, url: &str, timeout: Duration) -> HttpExchange {
        let started = Instant::now();
        let mut exchange = HttpExchange {
            url: url.to_string(),
            status: None,
            version: "HTTP/1.1".into(),
            headers: Vec::new(),
            body: String::new(),
            body_truncated: false,
            elapsed: Duration::ZERO,
            timeout,
            error: None,
            timed_out: false,
        };
        match tokio::time::timeout(timeout, self.exchange(url)).await {
            Ok(Ok(response)) => {
                exchange.status = Some(response.status);
                exchange.version = response.version;
                exchange.headers = response.headers;
                exchange.body = String::from_utf8_lossy(&response.body).into_owned();
                exchange.body_truncated = response.truncated;
            }
            Ok(Err(e)) => exchange.error = Some(describe(&e)),
            Err(_) => {
                exchange.timed_out = true;
                exchange.error = Some(format!(
                    "timed out after {} ms: no answer within the probe deadline",
                    timeout.as_millis()
                ));
            }
        }
        exchange.elapsed = started.elapsed();
        exchange
    }

    /// Send the request and read the body as a stream, stopping at
    /// [`MAX_BODY_BYTES`] (the connection is then dropped).
    async fn exchange(&self, url: &str) -> Result<Response, reqwest::Error> {
        let mut response = self.client.get(url).send().await?;
        let status = response.status().as_u16();
        let version = format!("{:?}", response.version());
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body: Vec<u8> = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await? {
            let room = MAX_BODY_BYTES - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
            if body.len() == MAX_BODY_BYTES {
                // Exactly at the cap: only a further byte says whether the
                // body went on.
                truncated = response.chunk().await?.is_some_and(|c| !c.is_empty());
                break;
            }
        }
        Ok(Response {
            status,
            version,
            headers,
            body,
            truncated,
        })
    }
}

/// A response as read, body capped.
struct Response {
    status: u16,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    truncated: bool,
}

/// reqwest's Display hides the cause; walk the chain for the useful part.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_connect() {
        "connection failed".to_string()
    } else if error.is_timeout() {
        "timed out".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(error);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(last) = last {
        text.push_str(": ");
        text.push_str(&last);
    }
    text
}
