//! Network namespaces of instances: made by fnbridge, entered by fnbridge.
//!
//! fnbridge creates each instance's namespace itself (before the instance starts) rather than
//! letting bwrap do it, because fnbridge has to reach into it: to connect to a custom runtime
//! listening on its configured port (9000 in every instance, each in its own namespace), and to
//! listen on the API's address inside it. A socket belongs to the namespace its creator was in
//! when it was created, and stays there wherever it is used from; so the calling thread enters
//! the namespace (`setns`), creates the socket and goes back, with nothing in between. No
//! helper process, no port mapping, no path on disk.
//!
//! The outside world, where allowed, is one `slirp4netns` per instance (Debian's package): a
//! user-mode TCP/IP stack attached to the namespace's tap device, with its own sandbox and
//! seccomp filter, its host-loopback address disabled so that the function cannot reach the
//! host's loopback services (fnbridge's own API it reaches through the proxy below). It dies
//! with the instance (`--exit-fd`) or with the server (PR_SET_PDEATHSIG).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// One instance's network namespace.
#[derive(Debug)]
pub(crate) struct NetNs {
    fd: OwnedFd,
    host: Arc<OwnedFd>,
}

impl NetNs {
    /// A new namespace with its loopback interface up. `host` is the server's own namespace,
    /// to return to.
    pub(crate) fn create(host: &Arc<OwnedFd>) -> io::Result<NetNs> {
        let fd = within_new(host)?;
        let ns = NetNs {
            fd,
            host: Arc::clone(host),
        };
        ns.enter(loopback_up)?;
        Ok(ns)
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The namespace's inode: what `/proc/<pid>/ns/net` of its processes resolves to.
    pub(crate) fn inode(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/proc/self/fd/{}", self.fd())).map_or(0, |m| m.ino())
    }

    /// Runs `f` with the calling thread inside this namespace, then moves it back.
    fn enter<T>(&self, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        setns(self.fd.as_raw_fd())?;
        let result = f();
        back_home(&self.host);
        result
    }

    /// Connects to `127.0.0.1:port` inside the namespace.
    pub(crate) async fn connect(&self, port: u16) -> io::Result<TcpStream> {
        let socket = self.enter(|| {
            // SAFETY: socket() returns a new fd or -1.
            let fd = unsafe {
                libc::socket(
                    libc::AF_INET,
                    libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                    0,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: the fd was just created and is owned by nobody else.
            Ok(unsafe { std::net::TcpStream::from_raw_fd(fd) })
        })?;
        let socket = TcpSocket::from_std_stream(socket);
        socket
            .connect(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)))
            .await
    }

    /// A UDP socket bound to `addr` inside the namespace.
    pub(crate) fn udp(&self, addr: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
        let socket = self.enter(|| std::net::UdpSocket::bind(addr))?;
        socket.set_nonblocking(true)?;
        tokio::net::UdpSocket::from_std(socket)
    }

    /// A listener on `addr` inside the namespace.
    pub(crate) fn listen(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        let listener = self.enter(|| std::net::TcpListener::bind(addr))?;
        listener.set_nonblocking(true)?;
        TcpListener::from_std(listener)
    }
}

/// Forwards connections made inside an instance to fnbridge's API; stops when dropped.
#[derive(Debug)]
pub(crate) struct ApiProxy(JoinHandle<()>);

/// Connections one instance may have open to the API at once.
const MAX_PROXIED: usize = 64;

impl ApiProxy {
    pub(crate) fn start(listener: TcpListener, api: SocketAddr) -> ApiProxy {
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_PROXIED));
        ApiProxy(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                    return;
                };
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut inside, _)) = accepted else { continue };
                        conns.spawn(async move {
                            let _permit = permit;
                            if let Ok(mut outside) = TcpStream::connect(api).await {
                                let _ = tokio::io::copy_bidirectional(&mut inside, &mut outside).await;
                            }
                        });
                    }
                    // Reaps finished connections so the set does not grow.
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        }))
    }
}

impl Drop for ApiProxy {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running slirp4netns, killed when dropped (and when the server dies).
#[derive(Debug)]
pub(crate) struct Slirp {
    child: Child,
    /// Its `--exit-fd`: when we close it, it exits on its own.
    _exit: OwnedFd,
    ready: Option<tokio::net::unix::pipe::Receiver>,
}

impl Slirp {
    /// Attaches a user-mode network stack to `ns`, giving it `10.0.2.100/24`, a default route
    /// and DNS at `10.0.2.3`.
    pub(crate) fn start(program: &Path, ns: &NetNs) -> io::Result<Slirp> {
        let (exit_r, exit_w) = std::io::pipe()?;
        let (ready_r, ready_w) = std::io::pipe()?;
        let exit_r: OwnedFd = exit_r.into();
        let ready_w: OwnedFd = ready_w.into();
        let mut cmd = Command::new(program);
        // Fixed numbers in the child; set up by the pre_exec below.
        cmd.args([
            "--configure",
            "--mtu=65520",
            "--disable-host-loopback",
            "--enable-sandbox",
            "--enable-seccomp",
            "--exit-fd=3",
            "--ready-fd=4",
            "--netns-type=path",
            "/proc/self/fd/5",
            "tap0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
        let fds = [exit_r.as_raw_fd(), ready_w.as_raw_fd(), ns.fd()];
        // SAFETY: the closure only makes async-signal-safe calls (dup2, fcntl, prctl).
        unsafe {
            cmd.pre_exec(move || {
                // Moved out of the way first: a source may sit on a target number.
                let mut high = [0; 3];
                for (i, &fd) in fds.iter().enumerate() {
                    high[i] = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
                    if high[i] < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                for (i, &fd) in high.iter().enumerate() {
                    if libc::dup2(fd, 3 + i as i32) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        drop(cmd);
        drop(exit_r);
        drop(ready_w);
        let ready = tokio::net::unix::pipe::Receiver::from_owned_fd(ready_r.into())?;
        Ok(Slirp {
            child,
            _exit: exit_w.into(),
            ready: Some(ready),
        })
    }

    /// Waits until the namespace's network is configured (slirp4netns writes `1` to its ready
    /// fd), or fails if it exited first.
    pub(crate) async fn ready(&mut self) -> io::Result<()> {
        let Some(mut ready) = self.ready.take() else {
            return Ok(());
        };
        let mut byte = [0u8; 1];
        let n = tokio::io::AsyncReadExt::read(&mut ready, &mut byte).await?;
        if n == 0 {
            let status = self.child.try_wait()?;
            return Err(io::Error::other(format!(
                "slirp4netns exited before the network was up ({status:?})"
            )));
        }
        Ok(())
    }
}

/// Creates a namespace with the calling thread and moves the thread back: the namespace lives
/// on through the returned fd.
fn within_new(host: &OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: unshare takes flags only; it affects the calling thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = std::fs::File::open("/proc/thread-self/ns/net").map(OwnedFd::from);
    back_home(host);
    fd
}

/// The server's namespace, to come back to; opened once.
pub(crate) fn host_netns() -> io::Result<OwnedFd> {
    std::fs::File::open("/proc/thread-self/ns/net").map(OwnedFd::from)
}

fn setns(fd: RawFd) -> io::Result<()> {
    // SAFETY: setns takes an fd we own and a flag; it affects the calling thread only.
    if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Moves the calling thread back into the server's namespace. A thread that cannot go back
/// would open every later socket of the server inside a function's sandbox; there is no safe
/// way to go on, so the process stops. (It cannot happen short of a kernel fault: we hold the
/// fd, and as root may always enter our own namespace.)
fn back_home(host: &OwnedFd) {
    if let Err(e) = setns(host.as_raw_fd()) {
        eprintln!("fnbridge: cannot return a thread to the host network namespace: {e}");
        std::process::abort();
    }
}

/// `ip link set lo up`, with the ioctl the `ip` tool uses for it.
fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket and ioctl calls on a zeroed ifreq with a NUL-terminated name.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(io::Error::last_os_error());
        }
        let sock = OwnedFd::from_raw_fd(sock);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
