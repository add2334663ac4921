//! Who answers on a port: before a step accepts an answer from a service
//! instance gonogo started, this proves the listening socket belongs to the
//! instance's process tree. Takes a port and the instance's pid; gives an
//! [`Ownership`].
//!
//! Linux only, from `/proc`: the inodes of the `LISTEN` sockets that a
//! connection to `127.0.0.1:PORT` can reach (bound to `127.0.0.1`,
//! `0.0.0.0`, `::` or `::ffff:127.0.0.1`) come from `/proc/net/tcp` and
//! `/proc/net/tcp6`; their owners from the `socket:[INODE]` links under
//! `/proc/<pid>/fd`. A process run by another user hides its fds from a
//! non-root gonogo: then the owner is "a process gonogo did not start".

use std::collections::BTreeSet;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::process::tree;

/// The TCP state `LISTEN` in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// Whose socket listens on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// Every listening socket on the port belongs to the process tree.
    Owned,
    /// A socket on the port belongs to someone else.
    Foreign {
        port: u16,
        /// The owner, when `/proc` shows it.
        pid: Option<u32>,
        cmdline: Option<String>,
    },
    /// No listening socket on the port could be found, so nothing proves
    /// who answered (the listener closed, or lives in another network
    /// namespace).
    NoListener { port: u16 },
}

impl fmt::Display for Ownership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ownership::Owned => f.write_str("the service's own process tree listens"),
            Ownership::Foreign {
                port,
                pid: Some(pid),
                cmdline,
            } => write!(
                f,
                "another process (pid {pid}, `{}`) answers on port {port}",
                cmdline.as_deref().unwrap_or("?")
            ),
            Ownership::Foreign {
                port, pid: None, ..
            } => write!(
                f,
                "a process gonogo did not start answers on port {port} (its owner is not visible to this user)"
            ),
            Ownership::NoListener { port } => write!(
                f,
                "something answered on port {port}, but no listening socket there belongs to the service"
            ),
        }
    }
}

/// Whether `addr:port` (as `/proc/net/tcp*` prints it) receives connections
/// to `127.0.0.1:port`.
fn reaches_loopback(addr: &str, v6: bool) -> bool {
    let words: Option<Vec<u32>> = (0..addr.len() / 8)
        .map(|i| u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect();
    // The kernel prints each 32-bit word of the address in host order.
    let bytes: Vec<u8> = match words {
        Some(words) => words.iter().flat_map(|w| w.to_ne_bytes()).collect(),
        None => return false,
    };
    if !v6 {
        let Ok(octets) = <[u8; 4]>::try_from(bytes.as_slice()) else {
            return false;
        };
        let ip = Ipv4Addr::from(octets);
        return ip == Ipv4Addr::LOCALHOST || ip == Ipv4Addr::UNSPECIFIED;
    }
    let Ok(octets) = <[u8; 16]>::try_from(bytes.as_slice()) else {
        return false;
    };
    let ip = Ipv6Addr::from(octets);
    ip == Ipv6Addr::UNSPECIFIED
        || ip
            .to_ipv4_mapped()
            .is_some_and(|v4| v4 == Ipv4Addr::LOCALHOST || v4 == Ipv4Addr::UNSPECIFIED)
}

/// The inodes of `LISTEN` sockets on `port` in one `/proc/net/tcp*` table.
pub fn parse_listeners(table: &str, port: u16, v6: bool) -> Vec<u64> {
    let mut out = Vec::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
        let (Some(local), Some(state), Some(inode)) = (fields.get(1), fields.get(3), fields.get(9))
        else {
            continue;
        };
        let Some((addr, hex_port)) = local.split_once(':') else {
            continue;
        };
        let matches = *state == LISTEN
            && u16::from_str_radix(hex_port, 16) == Ok(port)
            && reaches_loopback(addr, v6);
        if let (true, Ok(inode)) = (matches, inode.parse::<u64>())
            && inode != 0
        {
            out.push(inode);
        }
    }
    out
}

/// The inodes of every `LISTEN` socket a connection to `127.0.0.1:port`
/// can reach.
pub fn listeners(port: u16) -> Vec<u64> {
    let mut out = Vec::new();
    for (path, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        if let Ok(table) = std::fs::read_to_string(path) {
            out.extend(parse_listeners(&table, port, v6));
        }
    }
    out
}

/// The socket inodes among `pid`'s open files.
fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return BTreeSet::new();
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let text = target.to_str()?;
            text.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// Whether every listening socket on `port` belongs to `root` or one of
/// its descendants; otherwise who else holds one.
pub fn check(port: u16, root: u32) -> Ownership {
    let inodes = listeners(port);
    if inodes.is_empty() {
        return Ownership::NoListener { port };
    }
    let mut held = BTreeSet::new();
    for pid in std::iter::once(root).chain(tree::descendants(root).iter().map(|p| p.pid)) {
        held.extend(socket_inodes(pid));
    }
    let Some(stranger) = inodes.iter().find(|inode| !held.contains(inode)) else {
        return Ownership::Owned;
    };
    let owner = tree::all()
        .iter()
        .map(|p| p.pid)
        .find(|pid| socket_inodes(*pid).contains(stranger));
    Ownership::Foreign {
        port,
        pid: owner,
        cmdline: owner.and_then(tree::cmdline),
    }
}

#[cfg(test)]
mod tests {
    use super::{Ownership, check, listeners, parse_listeners};

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0000000000000000 100 0 0 10 0
   2: 0200007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0000000000000000 100 0 0 10 0
   3: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 444 1 0000000000000000 100 0 0 10 0
   4: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 666 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 888 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn finds_the_listeners_that_loopback_reaches() {
        // Port 8080 = 0x1F90. 127.0.0.2, an established connection, another
        // port and ::1 are not reached by a connection to 127.0.0.1:8080.
        assert_eq!(parse_listeners(TCP, 8080, false), [111, 222]);
        assert_eq!(parse_listeners(TCP6, 8080, true), [666, 888]);
        assert_eq!(parse_listeners(TCP, 8081, false), [555]);
        assert!(parse_listeners("garbage\n1 2 3", 8080, false).is_empty());
    }

    #[test]
    fn a_listener_is_owned_by_its_process_and_foreign_to_another_tree() {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert_eq!(listeners(port).len(), 1);
        assert_eq!(check(port, std::process::id()), Ownership::Owned);
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let verdict = check(port, child.id());
        child.kill().expect("kill");
        child.wait().expect("reap");
        let Ownership::Foreign { pid, cmdline, .. } = &verdict else {
            panic!("{verdict:?}");
        };
        assert_eq!(*pid, Some(std::process::id()));
        assert!(cmdline.is_some());
        let text = verdict.to_string();
        assert!(
            text.starts_with(&format!("another process (pid {}, `", std::process::id())),
            "{text}"
        );
        assert!(text.ends_with(&format!("answers on port {port}")), "{text}");
        drop(listener);
        assert_eq!(
            check(port, std::process::id()),
            Ownership::NoListener { port }
        );
    }
}
