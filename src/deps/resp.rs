//! A minimal hand-written RESP2 client, the only Redis protocol code in
//! gonogo: enough to prove an embedded Redis is up and enforces its password
//! (`AUTH`, `PING`) and to ask any Redis its version (`INFO server`), without
//! a Redis crate.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Bulk strings and arrays longer than this are refused.
const MAX_LEN: usize = 64 * 1024 * 1024;

/// A RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RespValue {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`
    Error(String),
    /// `:1`
    Integer(i64),
    /// `$3\r\nfoo`; `None` for the null bulk string.
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n...`; `None` for the null array.
    Array(Option<Vec<RespValue>>),
}

/// One command as RESP2 puts it on the wire: an array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg);
        request.extend_from_slice(b"\r\n");
    }
    request
}

/// One connection to a Redis server.
#[derive(Debug)]
pub struct RespConnection {
    stream: BufReader<TcpStream>,
}

impl RespConnection {
    /// Connects to `127.0.0.1:port`.
    pub async fn connect(port: u16) -> io::Result<RespConnection> {
        RespConnection::connect_to("127.0.0.1", port).await
    }

    /// Connects to `host:port`.
    pub async fn connect_to(host: &str, port: u16) -> io::Result<RespConnection> {
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(RespConnection {
            stream: BufReader::new(stream),
        })
    }

    /// Sends one command and reads its reply. Error replies are values, not
    /// `Err`: `Err` means the connection or the protocol failed.
    pub async fn command(&mut self, args: &[&[u8]]) -> io::Result<RespValue> {
        self.stream.get_mut().write_all(&encode(args)).await?;
        self.read_value().await
    }

    async fn read_value(&mut self) -> io::Result<RespValue> {
        let line = self.read_line().await?;
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Ok(RespValue::Simple(rest.to_owned())),
            "-" => Ok(RespValue::Error(rest.to_owned())),
            ":" => Ok(RespValue::Integer(parse_int(rest)?)),
            "$" => {
                let Some(len) = parse_len(rest)? else {
                    return Ok(RespValue::Bulk(None));
                };
                let mut data = vec![0; len + 2];
                self.stream.read_exact(&mut data).await?;
                data.truncate(len);
                Ok(RespValue::Bulk(Some(data)))
            }
            "*" => {
                let Some(len) = parse_len(rest)? else {
                    return Ok(RespValue::Array(None));
                };
                let mut items = Vec::with_capacity(len.min(1024));
                for _ in 0..len {
                    items.push(Box::pin(self.read_value()).await?);
                }
                Ok(RespValue::Array(Some(items)))
            }
            _ => Err(protocol_error(format!("unknown reply type in {line:?}"))),
        }
    }

    /// Reads one CRLF-terminated line, without the CRLF; never empty.
    async fn read_line(&mut self) -> io::Result<String> {
        let mut bytes = Vec::new();
        (&mut self.stream)
            .take(MAX_LEN as u64)
            .read_until(b'\n', &mut bytes)
            .await?;
        if bytes.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if !bytes.ends_with(b"\r\n") || bytes.len() < 3 {
            return Err(protocol_error("malformed reply line".to_owned()));
        }
        bytes.truncate(bytes.len() - 2);
        String::from_utf8(bytes).map_err(|_| protocol_error("reply line is not UTF-8".to_owned()))
    }
}

fn parse_int(text: &str) -> io::Result<i64> {
    text.parse()
        .map_err(|_| protocol_error(format!("bad integer {text:?}")))
}

/// A length prefix; `None` for `-1` (null).
fn parse_len(text: &str) -> io::Result<Option<usize>> {
    match parse_int(text)? {
        -1 => Ok(None),
        len => usize::try_from(len)
            .ok()
            .filter(|&len| len <= MAX_LEN)
            .map(Some)
            .ok_or_else(|| protocol_error(format!("bad length {len}"))),
    }
}

fn protocol_error(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
