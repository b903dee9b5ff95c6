//! The private `redis-server` of dev mode (and of the benchmark): a child on
//! a unix socket inside the data directory, with AOF on, that receives
//! SIGTERM when this process dies for any reason — SIGKILL included — via
//! the Linux parent-death signal.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub struct RedisChild {
    child: Child,
    socket: PathBuf,
}

impl RedisChild {
    pub fn start(server: &Path, data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let dir = data_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", data_dir.display()))?;
        let socket = dir.join("redis.sock");
        if socket.exists() {
            if UnixStream::connect(&socket).is_ok() {
                bail!(
                    "a redis-server is already listening on {}; is another `switchyard dev` using this data dir?",
                    socket.display()
                );
            }
            std::fs::remove_file(&socket).ok();
        }
        let parent = std::process::id();
        let mut cmd = Command::new(server);
        cmd.arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--unixsocketperm")
            .arg("700")
            .arg("--dir")
            .arg(&dir)
            .arg("--appendonly")
            .arg("yes")
            .arg("--save")
            .arg("")
            .arg("--daemonize")
            .arg("no")
            .arg("--pidfile")
            .arg(dir.join("redis.pid"))
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // SAFETY: the closure runs in the forked child before exec and only
        // calls async-signal-safe functions (prctl, getppid, _exit).
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() != parent as libc::pid_t {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| {
            format!(
                "starting {} (install it with `apt-get install -y redis-server`, or pass --redis-url)",
                server.display()
            )
        })?;
        let mut me = Self { child, socket };
        me.wait_ready(Duration::from_secs(15))?;
        Ok(me)
    }

    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("redis-server exited early ({status}); see its log in the data dir");
            }
            if let Ok(mut s) = UnixStream::connect(&self.socket) {
                s.set_read_timeout(Some(Duration::from_secs(1))).ok();
                let mut buf = [0u8; 64];
                if s.write_all(b"PING\r\n").is_ok()
                    && let Ok(n) = s.read(&mut buf)
                    && buf[..n].starts_with(b"+PONG")
                {
                    return Ok(());
                }
            }
            if start.elapsed() > limit {
                bail!(
                    "redis-server did not answer on {} within {limit:?}",
                    self.socket.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stop the server (SIGTERM: it finishes writing the AOF) and wait for it.
    pub fn stop(mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
