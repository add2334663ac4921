//! Fault proxy, the instrument behind the fault steps.
//!
//! Takes the address of one dependency (Postgres, Redis, any TCP service) and
//! gives a [`FaultProxy`] guard listening on `127.0.0.1`. The service under test
//! is handed the proxy's address instead of the dependency's, so a [`Fault`]
//! switched at run time reaches the service without restarting it: an outage
//! ([`Fault::Down`]) or a hang ([`Fault::Blackhole`]): the two the fault
//! steps prove a service against.
//!
//! Every connection task watches one `watch` channel, so a switch takes effect
//! on the next scheduler tick; [`FaultProxy::apply`] also waits until it has.
//! The guard owns the listener and every connection: dropping it aborts them,
//! [`FaultProxy::shutdown`] stops them and waits until every socket is closed.
//!
//! It also counts what it accepted ([`FaultProxy::accepted`]): how many
//! connections and when the first came, so a step can say whether (and how
//! soon) the service reached the dependency at all.

use std::fmt;
use std::future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep_until};

/// Bytes read per chunk, per direction. Large enough that a protocol message
/// usually crosses in one read.
const CHUNK: usize = 64 * 1024;

/// Pause before retrying a failed `accept` (say, out of file descriptors) or a
/// failed re-bind of the proxy's port, so that neither spins.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// What the proxy does to traffic between the service and its dependency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Forward bytes both ways unchanged.
    #[default]
    None,
    /// The dependency is gone: the port refuses connections and every open
    /// connection is closed on both sides.
    Down,
    /// The network swallows everything: connections are accepted and held
    /// open, but no byte passes either way.
    Blackhole,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::None => f.write_str("none"),
            Fault::Down => f.write_str("down"),
            Fault::Blackhole => f.write_str("blackhole"),
        }
    }
}

/// How a connection is ended when the proxy ends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// Ordinary close: the peers see end of stream.
    Close,
    /// Abortive close: the peers see `ECONNRESET`.
    Reset,
}

/// What every task of the proxy watches.
#[derive(Clone, Copy, Debug)]
struct Control {
    fault: Fault,
    /// Bumped on every switch, so that [`FaultProxy::apply`] can wait for the
    /// accept loop to have seen its own switch.
    generation: u64,
    /// Bumped on every switch to `Down`. A connection compares it with the
    /// value at its admission rather than looking at the current fault, so
    /// a `Down` that is cleared again at once still cuts it.
    cuts: u64,
}

/// What the accept loop reports back after acting on a switch.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Applied {
    generation: u64,
    listening: bool,
    bind_error: Option<String>,
}

/// The connections a proxy accepted since it started, whatever became of
/// them (a connection that arrived while the port was closing counts too).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    pub connections: usize,
    /// When the first one was accepted.
    pub first_at: Option<std::time::Instant>,
}

/// Where the accept loop counts what it accepted.
#[derive(Clone, Debug, Default)]
struct AcceptedCount(Arc<Mutex<Accepted>>);

impl AcceptedCount {
    fn add(&self) {
        // The value is two plain fields, consistent after any panic.
        let mut accepted = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        accepted.connections += 1;
        accepted
            .first_at
            .get_or_insert_with(std::time::Instant::now);
    }

    fn get(&self) -> Accepted {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fault proxy: a guard that owns the listening port and every
/// proxied connection.
///
/// Dropping it aborts the listener and every connection task, which closes
/// their sockets as soon as the runtime runs the cancellations; call
/// [`FaultProxy::shutdown`] to wait until that has happened.
pub struct FaultProxy {
    name: String,
    local_addr: SocketAddr,
    upstream: SocketAddr,
    control: watch::Sender<Control>,
    applied: watch::Receiver<Applied>,
    open: watch::Sender<usize>,
    accepted: AcceptedCount,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1` on a free port and forwards every connection to
    /// `upstream`, with no fault. `name` only labels errors and debug output.
    pub async fn start(name: &str, upstream: SocketAddr) -> io::Result<FaultProxy> {
        let context = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("listen for proxy {name} to {upstream}: {e}"),
            )
        };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(context)?;
        let local_addr = listener.local_addr().map_err(context)?;
        let (control, control_rx) = watch::channel(Control {
            fault: Fault::None,
            generation: 0,
            cuts: 0,
        });
        let (applied_tx, applied) = watch::channel(Applied {
            generation: 0,
            listening: true,
            bind_error: None,
        });
        let (open, _) = watch::channel(0);
        let accepted = AcceptedCount::default();
        let (stop, stop_rx) = oneshot::channel();
        let accept = Acceptor {
            local_addr,
            upstream,
            control: control_rx,
            applied: applied_tx,
            open: open.clone(),
            accepted: accepted.clone(),
        };
        let task = tokio::spawn(accept.run(listener, stop_rx));
        Ok(FaultProxy {
            name: name.to_owned(),
            local_addr,
            upstream,
            control,
            applied,
            open,
            accepted,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The name given at start.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address to hand to the service in place of the dependency's.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The dependency's address.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Switches the fault. Returns at once; every task acts on it the next
    /// time it is scheduled, which [`FaultProxy::apply`] waits for.
    pub fn set_fault(&self, fault: Fault) {
        self.switch(fault);
    }

    /// Switches back to plain forwarding; same as `set_fault(Fault::None)`.
    pub fn clear(&self) {
        self.set_fault(Fault::None);
    }

    /// The fault in force.
    pub fn fault(&self) -> Fault {
        self.control.borrow().fault
    }

    /// Client connections the proxy holds right now, blackholed ones included.
    pub fn open_connections(&self) -> usize {
        *self.open.borrow()
    }

    /// The connections accepted since the proxy started.
    pub fn accepted(&self) -> Accepted {
        self.accepted.get()
    }

    /// Switches the fault and waits until it is in force: the port is closed
    /// (`Down`) or listening again (any other fault), and for `Down` every
    /// connection open at the switch has been closed. A chunk
    /// that was already being written may still land after this returns.
    ///
    /// Fails if the port could not be opened again after a `Down`; the proxy
    /// keeps retrying in the background.
    pub async fn apply(&self, fault: Fault) -> io::Result<()> {
        let generation = self.switch(fault);
        let stopped = || {
            io::Error::other(format!(
                "apply {fault} on proxy {}: its accept task has stopped",
                self.name
            ))
        };
        let applied = self
            .applied
            .clone()
            .wait_for(|applied| applied.generation >= generation)
            .await
            .map_err(|_| stopped())?
            .clone();
        if fault != Fault::Down && !applied.listening {
            return Err(io::Error::other(format!(
                "reopen proxy {} on {}: {}",
                self.name,
                self.local_addr,
                applied.bind_error.as_deref().unwrap_or("not listening")
            )));
        }
        if fault == Fault::Down {
            self.open
                .subscribe()
                .wait_for(|open| *open == 0)
                .await
                .map_err(|_| stopped())?;
        }
        Ok(())
    }

    /// Stops the listener and every connection, and waits until every task
    /// has finished and so every socket is closed.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            // An error means the accept task is already gone, which is the goal.
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // Whether it ended or panicked, it holds no socket any more.
            let _ = task.await;
        }
    }

    fn switch(&self, fault: Fault) -> u64 {
        let mut generation = 0;
        self.control.send_modify(|control| {
            control.generation += 1;
            control.fault = fault;
            if fault == Fault::Down {
                control.cuts += 1;
            }
            generation = control.generation;
        });
        generation
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every
        // connection task in turn. Aborting never panics and needs no runtime.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("name", &self.name)
            .field("local_addr", &self.local_addr)
            .field("upstream", &self.upstream)
            .field("fault", &self.fault())
            .field("open_connections", &self.open_connections())
            .finish()
    }
}

/// The accept loop's side of the proxy.
struct Acceptor {
    local_addr: SocketAddr,
    upstream: SocketAddr,
    control: watch::Receiver<Control>,
    applied: watch::Sender<Applied>,
    open: watch::Sender<usize>,
    accepted: AcceptedCount,
}

impl Acceptor {
    async fn run(mut self, listener: TcpListener, mut stop: oneshot::Receiver<()>) {
        let mut listener = Some(listener);
        let mut connections = JoinSet::new();
        let mut bind_error = None;
        let mut paused_until: Option<Instant> = None;
        loop {
            let control = *self.control.borrow_and_update();
            if control.fault == Fault::Down {
                // Closing the port makes new connects fail at once, as they
                // would against a stopped server; merely not accepting would
                // leave them completing in the backlog and hanging.
                listener = None;
                // A pause after a failed accept was for that listener.
                paused_until = None;
            } else if listener.is_none() && paused_until.is_none() {
                match TcpListener::bind(self.local_addr).await {
                    Ok(bound) => {
                        listener = Some(bound);
                        bind_error = None;
                    }
                    Err(e) => {
                        bind_error = Some(e.to_string());
                        paused_until = Some(Instant::now() + RETRY_PAUSE);
                    }
                }
            }
            let applied = Applied {
                generation: control.generation,
                listening: listener.is_some(),
                bind_error: bind_error.clone(),
            };
            self.applied.send_if_modified(|current| {
                let changed = *current != applied;
                *current = applied;
                changed
            });

            tokio::select! {
                biased;
                _ = &mut stop => break,
                changed = self.control.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                () = pause(paused_until) => paused_until = None,
                // Reaping finished connections keeps the set from growing.
                Some(_) = connections.join_next() => {}
                accepted = accept(listener.as_ref()), if paused_until.is_none() => match accepted {
                    Ok((client, _)) => self.admit(client, &mut connections),
                    Err(_) => paused_until = Some(Instant::now() + RETRY_PAUSE),
                },
            }
        }
        drop(listener);
        connections.shutdown().await;
    }

    fn admit(&self, client: TcpStream, connections: &mut JoinSet<()>) {
        self.accepted.add();
        // The current value, not the last one this loop acted on: a switch may
        // have landed since, and must hold for this connection too.
        let control = *self.control.borrow();
        match control.fault {
            // The port is about to close; this one slipped in before it did.
            Fault::Down => drop(client),
            Fault::None | Fault::Blackhole => {
                let open = Open::count(&self.open);
                connections.spawn(serve(
                    client,
                    self.upstream,
                    self.control.clone(),
                    control.cuts,
                    open,
                ));
            }
        }
    }
}

/// One proxied connection, counted in [`FaultProxy::open_connections`] for as
/// long as it lives, however its task ends.
struct Open(watch::Sender<usize>);

impl Open {
    fn count(open: &watch::Sender<usize>) -> Open {
        open.send_modify(|n| *n += 1);
        Open(open.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Relays one client connection until it ends or a fault cuts it.
async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    control: watch::Receiver<Control>,
    admitted_at_cut: u64,
    _open: Open,
) {
    let mut server = None;
    let mut cuts = control.clone();
    let end = tokio::select! {
        () = cut_after(&mut cuts, admitted_at_cut) => Cut::Close,
        end = relay(&mut client, &mut server, upstream, control) => end,
    };
    if end == Cut::Reset {
        abort(&client);
        if let Some(server) = &server {
            abort(server);
        }
    }
}

/// Resolves once a `Down` is switched on after the connection was
/// admitted, or when the proxy is gone.
async fn cut_after(control: &mut watch::Receiver<Control>, admitted_at_cut: u64) {
    // Either way the connection ends; an error means the proxy is gone.
    let _ = control.wait_for(|c| c.cuts > admitted_at_cut).await;
}

/// Dials the dependency once bytes may pass, then forwards both ways until
/// both have ended, and says how to end the connection.
async fn relay(
    client: &mut TcpStream,
    server: &mut Option<TcpStream>,
    upstream: SocketAddr,
    mut control: watch::Receiver<Control>,
) -> Cut {
    // A connection made during a blackhole must not reach the dependency
    // either, so the dial waits until bytes may pass.
    pass(&mut control).await;
    // The client already holds a connection, so a reset is the closest it can
    // get to the refusal the dependency gave.
    let dialed = match TcpStream::connect(upstream).await {
        Ok(dialed) => dialed,
        Err(_) => return Cut::Reset,
    };
    let server = server.insert(dialed);
    match forward(client, server, control).await {
        Ok(()) => Cut::Close,
        // Pass a reset on to the other side, as the network would.
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Cut::Reset,
        Err(_) => Cut::Close,
    }
}

async fn forward(
    client: &mut TcpStream,
    server: &mut TcpStream,
    control: watch::Receiver<Control>,
) -> io::Result<()> {
    // Small request/response messages must not wait for Nagle's algorithm.
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (mut client_rx, mut client_tx) = client.split();
    let (mut server_rx, mut server_tx) = server.split();
    tokio::try_join!(
        pump(&mut client_rx, &mut server_tx, control.clone()),
        pump(&mut server_rx, &mut client_tx, control),
    )?;
    Ok(())
}

/// Copies one direction chunk by chunk, asking the fault before each read and
/// before each write. End of stream is passed on as a half-close.
async fn pump(
    from: &mut ReadHalf<'_>,
    to: &mut WriteHalf<'_>,
    mut control: watch::Receiver<Control>,
) -> io::Result<()> {
    let mut chunk = vec![0; CHUNK];
    loop {
        // Not reading while blackholed leaves the bytes in the kernel, so the
        // sender sees a stalled peer and nothing is lost if the fault clears.
        pass(&mut control).await;
        let n = from.read(&mut chunk).await?;
        pass(&mut control).await;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&chunk[..n]).await?;
    }
}

/// Waits until a chunk may pass: at once with no fault, and for as long as
/// a blackhole lasts. `Down` also holds, because [`serve`] is about to cut
/// the connection.
async fn pass(control: &mut watch::Receiver<Control>) {
    while control.borrow_and_update().fault != Fault::None {
        if control.changed().await.is_err() {
            // The proxy is gone and its tasks are being aborted.
            future::pending::<()>().await;
        }
    }
}

/// Sleeps until `until`, or forever without one.
async fn pause(until: Option<Instant>) {
    match until {
        Some(until) => sleep_until(until).await,
        None => future::pending().await,
    }
}

/// Accepts on the listener, or waits forever while the port is closed.
async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => future::pending().await,
    }
}

/// Makes the coming close of `stream` send a RST instead of a FIN.
fn abort(stream: &TcpStream) {
    // If the option cannot be set the close is an ordinary one, which still
    // ends the connection; there is nobody better placed to report it.
    let _ = stream.set_zero_linger();
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::mpsc;
    use tokio::time::{sleep, timeout};

    use super::*;

    /// Bound on a whole test, so that a bug fails it instead of hanging.
    const TEST_BOUND: Duration = Duration::from_secs(20);
    /// How long an expected answer may take.
    const PROMPT: Duration = Duration::from_secs(2);
    /// How long a read waits to show that nothing arrives.
    const SILENCE: Duration = Duration::from_millis(300);

    async fn bounded(test: impl Future<Output = io::Result<()>>) -> io::Result<()> {
        timeout(TEST_BOUND, test)
            .await
            .expect("test ran past its time bound")
    }

    /// How the dependency saw one of its connections end.
    #[derive(Debug, PartialEq, Eq)]
    enum Ending {
        Eof,
        Reset,
        Failed(io::ErrorKind),
    }

    impl From<io::Error> for Ending {
        fn from(e: io::Error) -> Ending {
            match e.kind() {
                io::ErrorKind::ConnectionReset => Ending::Reset,
                kind => Ending::Failed(kind),
            }
        }
    }

    /// An echo server standing in for the dependency, reporting how many
    /// connections reached it and how each ended.
    struct Echo {
        addr: SocketAddr,
        accepted: Arc<AtomicUsize>,
        endings: mpsc::UnboundedReceiver<Ending>,
        _task: JoinSet<()>,
    }

    impl Echo {
        async fn start() -> io::Result<Echo> {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
            let addr = listener.local_addr()?;
            let accepted = Arc::new(AtomicUsize::new(0));
            let (report, endings) = mpsc::unbounded_channel();
            let mut task = JoinSet::new();
            let counter = accepted.clone();
            task.spawn(async move {
                let mut connections = JoinSet::new();
                while let Ok((stream, _)) = listener.accept().await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    connections.spawn(echo(stream, report.clone()));
                }
            });
            Ok(Echo {
                addr,
                accepted,
                endings,
                _task: task,
            })
        }

        fn accepted(&self) -> usize {
            self.accepted.load(Ordering::SeqCst)
        }

        async fn next_ending(&mut self) -> Ending {
            timeout(PROMPT, self.endings.recv())
                .await
                .expect("the upstream saw no connection end")
                .expect("the echo server stopped")
        }
    }

    async fn echo(mut stream: TcpStream, report: mpsc::UnboundedSender<Ending>) {
        let mut buf = vec![0; 16 * 1024];
        let ending = loop {
            match stream.read(&mut buf).await {
                Ok(0) => break Ending::Eof,
                Ok(n) => {
                    if let Err(e) = stream.write_all(&buf[..n]).await {
                        break e.into();
                    }
                }
                Err(e) => break e.into(),
            }
        };
        let _ = report.send(ending);
    }

    /// What a client heard on its connection.
    #[derive(Debug, PartialEq, Eq)]
    enum Heard {
        Data(Vec<u8>),
        Eof,
        Failed(io::ErrorKind),
        Silence,
    }

    async fn hear(stream: &mut TcpStream, wait: Duration) -> Heard {
        let mut buf = vec![0; 1024];
        match timeout(wait, stream.read(&mut buf)).await {
            Err(_) => Heard::Silence,
            Ok(Ok(0)) => Heard::Eof,
            Ok(Ok(n)) => Heard::Data(buf[..n].to_vec()),
            Ok(Err(e)) => Heard::Failed(e.kind()),
        }
    }

    async fn read_exactly(stream: &mut TcpStream, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len];
        timeout(PROMPT, stream.read_exact(&mut buf))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no reply in time"))??;
        Ok(buf)
    }

    async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> io::Result<Vec<u8>> {
        stream.write_all(message).await?;
        read_exactly(stream, message.len()).await
    }

    /// Connects through the proxy and checks one exchange passes.
    async fn flowing(proxy: &FaultProxy) -> io::Result<TcpStream> {
        let mut client = TcpStream::connect(proxy.local_addr()).await?;
        client.set_nodelay(true)?;
        assert_eq!(round_trip(&mut client, b"PING\r\n").await?, b"PING\r\n");
        Ok(client)
    }

    async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + PROMPT;
        while !done() {
            assert!(Instant::now() < deadline, "{what} within {PROMPT:?}");
            sleep(Duration::from_millis(10)).await;
        }
    }

    /// Deterministic bytes with no short period, so a dropped, repeated or
    /// reordered chunk cannot go unnoticed.
    fn noise(len: usize) -> Vec<u8> {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect()
    }

    /// Sends `len` bytes through `client` while reading the echo back, then
    /// half-closes and expects the close to come back too.
    async fn echo_bulk(client: TcpStream, len: usize) -> io::Result<()> {
        let payload = noise(len);
        let (mut rx, mut tx) = client.into_split();
        let sent = payload.clone();
        let writer = tokio::spawn(async move {
            tx.write_all(&sent).await?;
            tx.shutdown().await
        });
        let mut back = Vec::with_capacity(len);
        rx.read_to_end(&mut back).await?;
        writer.await??;
        assert_eq!(back.len(), payload.len(), "echoed length");
        assert!(back == payload, "echoed bytes differ from the bytes sent");
        Ok(())
    }

    /// This process's file descriptors that are TCP sockets of the proxy:
    /// its listener and accepted sockets (local port `port`) and its dials to
    /// the dependency (remote port `upstream`). Counting only these keeps
    /// tests running in parallel in the same process from adding noise.
    ///
    /// The kernel's socket tables are not read as one snapshot, so a socket
    /// can show twice while others come and go: sockets are counted by inode.
    fn proxy_fds(port: u16, upstream: u16) -> usize {
        let inodes: HashSet<String> = std::fs::read_dir("/proc/self/fd")
            .expect("list /proc/self/fd")
            .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
            .filter_map(|target| {
                let target = target.to_str()?;
                Some(
                    target
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .to_owned(),
                )
            })
            .collect();
        let port_of = |address: &str| {
            let (_, port) = address.rsplit_once(':')?;
            u16::from_str_radix(port, 16).ok()
        };
        ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
            .iter()
            .filter_map(|table| std::fs::read_to_string(table).ok())
            .flat_map(|table| {
                table
                    .lines()
                    .skip(1)
                    .map(|line| line.split_whitespace().map(str::to_owned).collect())
                    .collect::<Vec<Vec<String>>>()
            })
            .filter(|fields| {
                fields.len() > 9
                    && inodes.contains(&fields[9])
                    && (port_of(&fields[1]) == Some(port) || port_of(&fields[2]) == Some(upstream))
            })
            .map(|fields| fields[9].clone())
            .collect::<HashSet<_>>()
            .len()
    }

    /// A proxy holding two flowing connections and one made during a
    /// blackhole, returned with their clients.
    async fn busy_proxy(echo: &Echo) -> io::Result<(FaultProxy, Vec<TcpStream>)> {
        let proxy = FaultProxy::start("busy", echo.addr).await?;
        let mut clients = vec![flowing(&proxy).await?, flowing(&proxy).await?];
        proxy.apply(Fault::Blackhole).await?;
        let mut held = TcpStream::connect(proxy.local_addr()).await?;
        held.write_all(b"held").await?;
        clients.push(held);
        eventually("three connections are open", || {
            proxy.open_connections() == 3
        })
        .await;
        assert_eq!(
            echo.accepted(),
            2,
            "the blackholed dial reached the upstream"
        );
        // Listener, three accepted sockets, two dials to the upstream.
        let port = proxy.local_addr().port();
        eventually("the proxy's six sockets are counted", || {
            proxy_fds(port, echo.addr.port()) == 6
        })
        .await;
        Ok((proxy, clients))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forwards_bytes_unchanged_both_ways() -> io::Result<()> {
        bounded(async {
            let mut echo = Echo::start().await?;
            let proxy = FaultProxy::start("echo", echo.addr).await?;
            let client = flowing(&proxy).await?;
            assert_eq!(proxy.open_connections(), 1);
            echo_bulk(client, 384 * 1024).await?;
            assert_eq!(echo.next_ending().await, Ending::Eof);
            eventually("the finished connection is released", || {
                proxy.open_connections() == 0
            })
            .await;
            Ok(())
        })
        .await
    }

    #[tokio::test]
    async fn down_closes_open_connections_and_refuses_new_ones() -> io::Result<()> {
        bounded(async {
            let mut echo = Echo::start().await?;
            let proxy = FaultProxy::start("down", echo.addr).await?;
            let mut client = flowing(&proxy).await?;

            proxy.set_fault(Fault::Down);
            let heard = hear(&mut client, PROMPT).await;
            assert!(
                matches!(heard, Heard::Eof | Heard::Failed(_)),
                "open connection after down: {heard:?}"
            );
            assert_eq!(echo.next_ending().await, Ending::Eof);

            // Right after the switch the port may still be closing: a connect
            // either fails or is closed at once.
            match TcpStream::connect(proxy.local_addr()).await {
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
                Ok(mut late) => {
                    let heard = hear(&mut late, PROMPT).await;
                    assert!(
                        matches!(heard, Heard::Eof | Heard::Failed(_)),
                        "new connection during down: {heard:?}"
                    );
                }
            }
            proxy.apply(Fault::Down).await?;
            let refused = TcpStream::connect(proxy.local_addr()).await;
            assert_eq!(
                refused.map(drop).map_err(|e| e.kind()),
                Err(io::ErrorKind::ConnectionRefused)
            );
            assert_eq!(proxy.open_connections(), 0);
            assert_eq!(echo.accepted(), 1);
            Ok(())
        })
        .await
    }

    #[tokio::test]
    async fn it_counts_what_it_accepted_and_when_the_first_came() -> io::Result<()> {
        bounded(async {
            let echo = Echo::start().await?;
            let started = std::time::Instant::now();
            let proxy = FaultProxy::start("counted", echo.addr).await?;
            assert_eq!(proxy.accepted(), Accepted::default());
            let _first = flowing(&proxy).await?;
            let _second = flowing(&proxy).await?;
            let accepted = proxy.accepted();
            assert_eq!(accepted.connections, 2);
            assert!(accepted.first_at.is_some_and(|at| at >= started));
            // The count spans faults: the port closed and opened again.
            proxy.apply(Fault::Down).await?;
            proxy.apply(Fault::None).await?;
            let _third = TcpStream::connect(proxy.local_addr()).await?;
            eventually("the third connection counted", || {
                proxy.accepted().connections == 3
            })
            .await;
            assert_eq!(proxy.accepted().first_at, accepted.first_at);
            Ok(())
        })
        .await
    }

    #[tokio::test]
    async fn blackhole_holds_connections_without_data() -> io::Result<()> {
        bounded(async {
            let mut echo = Echo::start().await?;
            let proxy = FaultProxy::start("blackhole", echo.addr).await?;
            let mut open = flowing(&proxy).await?;

            proxy.apply(Fault::Blackhole).await?;
            open.write_all(b"open").await?;
            assert_eq!(hear(&mut open, SILENCE).await, Heard::Silence);
            let mut fresh = TcpStream::connect(proxy.local_addr()).await?;
            fresh.write_all(b"fresh").await?;
            assert_eq!(hear(&mut fresh, SILENCE).await, Heard::Silence);
            assert_eq!(proxy.open_connections(), 2);
            assert_eq!(
                echo.accepted(),
                1,
                "the blackholed dial reached the upstream"
            );
            assert!(
                echo.endings.try_recv().is_err(),
                "the upstream lost a connection"
            );

            // Held bytes were left unread, not dropped, so they flow on.
            proxy.apply(Fault::None).await?;
            assert_eq!(read_exactly(&mut open, 4).await?, b"open");
            assert_eq!(read_exactly(&mut fresh, 5).await?, b"fresh");
            assert_eq!(echo.accepted(), 2);
            Ok(())
        })
        .await
    }

    #[tokio::test]
    async fn refused_upstream_resets_the_client() -> io::Result<()> {
        bounded(async {
            let gone = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .await?
                .local_addr()?;
            let proxy = FaultProxy::start("gone", gone).await?;
            let mut client = TcpStream::connect(proxy.local_addr()).await?;
            assert_eq!(
                hear(&mut client, PROMPT).await,
                Heard::Failed(io::ErrorKind::ConnectionReset)
            );
            eventually("the failed connection is released", || {
                proxy.open_connections() == 0
            })
            .await;
            Ok(())
        })
        .await
    }

    #[tokio::test]
    async fn clearing_restores_forwarding_for_new_connections() -> io::Result<()> {
        bounded(async {
            let echo = Echo::start().await?;
            let proxy = FaultProxy::start("clear", echo.addr).await?;
            let faults = [Fault::Down, Fault::Blackhole];
            for fault in faults {
                proxy.apply(fault).await?;
                assert_eq!(proxy.fault(), fault);
                proxy.apply(Fault::None).await?;
                flowing(&proxy).await?;
            }
            // A down cleared at once still cuts what was open, and the port
            // comes back without waiting for anything.
            let mut open = flowing(&proxy).await?;
            proxy.set_fault(Fault::Down);
            proxy.clear();
            let heard = hear(&mut open, PROMPT).await;
            assert!(matches!(heard, Heard::Eof | Heard::Failed(_)), "{heard:?}");
            proxy.apply(Fault::None).await?;
            flowing(&proxy).await?;
            Ok(())
        })
        .await
    }

    #[tokio::test]
    async fn reports_the_fault_in_force() -> io::Result<()> {
        bounded(async {
            let echo = Echo::start().await?;
            let proxy = FaultProxy::start("state", echo.addr).await?;
            assert_eq!(proxy.name(), "state");
            assert_eq!(proxy.upstream(), echo.addr);
            assert!(proxy.local_addr().ip().is_loopback());
            assert_eq!(proxy.fault(), Fault::None);
            proxy.set_fault(Fault::Blackhole);
            assert_eq!(proxy.fault().to_string(), "blackhole");
            proxy.clear();
            assert_eq!(proxy.fault(), Fault::None);
            Ok(())
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_leaves_no_task_or_socket() -> io::Result<()> {
        bounded(async {
            let mut echo = Echo::start().await?;
            assert_eq!(proxy_fds(0, echo.addr.port()), 0);
            let (proxy, mut clients) = busy_proxy(&echo).await?;
            let addr = proxy.local_addr();
            let open = proxy.open.clone();

            proxy.shutdown().await;
            assert_eq!(*open.borrow(), 0);
            assert_eq!(proxy_fds(addr.port(), echo.addr.port()), 0);
            assert_no_trace(&mut echo, addr, &mut clients).await
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drop_leaves_no_task_or_socket() -> io::Result<()> {
        bounded(async {
            let mut echo = Echo::start().await?;
            let (proxy, mut clients) = busy_proxy(&echo).await?;
            let addr = proxy.local_addr();
            let open = proxy.open.clone();

            drop(proxy);
            eventually("every connection task is gone", || *open.borrow() == 0).await;
            eventually("every proxy socket is closed", || {
                proxy_fds(addr.port(), echo.addr.port()) == 0
            })
            .await;
            assert_no_trace(&mut echo, addr, &mut clients).await
        })
        .await
    }

    /// The port refuses, and both the clients and the upstream have seen
    /// their connections closed.
    async fn assert_no_trace(
        echo: &mut Echo,
        addr: SocketAddr,
        clients: &mut [TcpStream],
    ) -> io::Result<()> {
        let refused = TcpStream::connect(addr).await;
        assert_eq!(
            refused.map(drop).map_err(|e| e.kind()),
            Err(io::ErrorKind::ConnectionRefused)
        );
        for _ in 0..2 {
            assert_eq!(echo.next_ending().await, Ending::Eof);
        }
        for client in clients {
            let heard = hear(client, PROMPT).await;
            assert!(matches!(heard, Heard::Eof | Heard::Failed(_)), "{heard:?}");
        }
        Ok(())
    }
}
