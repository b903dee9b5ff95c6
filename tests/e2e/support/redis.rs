//! The Redis of a test.
//!
//! By default a fresh `redis-server` per test, on a unix socket in a temp
//! dir (`--port 0` turns TCP off). With `SWITCHYARD_TEST_REDIS=cluster` a
//! local Redis Cluster of three masters on loopback ports instead, started
//! once per test process and shared by its tests (nextest runs each test in
//! a process of its own, so there every test still gets its own cluster).
//! The cluster's nodes die with the process (`PR_SET_PDEATHSIG` on a thread
//! that lives as long as the process).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Masters of the test cluster (no replicas: failover is not what the
/// family scenarios test).
const CLUSTER_MASTERS: usize = 3;

/// True when the tests run against a local Redis Cluster.
pub fn cluster_mode() -> bool {
    std::env::var("SWITCHYARD_TEST_REDIS").is_ok_and(|v| v == "cluster")
}

pub struct RedisServer {
    /// The single server's process (none on the shared cluster).
    child: Option<(Child, TempDir)>,
    /// One URL, or the cluster's comma-separated seed URLs.
    pub url: String,
}

impl RedisServer {
    /// A fresh server, or the process's cluster with
    /// `SWITCHYARD_TEST_REDIS=cluster`.
    pub fn start() -> Self {
        if cluster_mode() {
            return Self {
                child: None,
                url: TestCluster::get().url.clone(),
            };
        }
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("redis.sock");
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--unixsocket",
            ])
            .arg(&socket)
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server must be installed (apt-get install -y redis-server)");
        let url = format!("unix://{}", socket.display());
        wait_ping(&url);
        Self {
            child: Some((child, dir)),
            url,
        }
    }

    /// A plain blocking connection: to the server, or to the whole cluster
    /// (commands routed by key, DBSIZE and KEYS over every master).
    pub fn conn(&self) -> TestConn {
        if self.child.is_some() {
            TestConn::Single(
                redis::Client::open(self.url.as_str())
                    .unwrap()
                    .get_connection()
                    .unwrap(),
            )
        } else {
            TestConn::Cluster(Box::new(
                redis::cluster::ClusterClient::new(self.url.split(',').collect::<Vec<_>>())
                    .unwrap()
                    .get_connection()
                    .unwrap(),
            ))
        }
    }

    /// How many calls each node refused with `CROSSSLOT` (keys of one
    /// call in several slots), by node URL.
    pub fn crossslot_errors(&self) -> Vec<(String, u64)> {
        self.url
            .split(',')
            .map(|url| {
                let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
                let info: String = redis::cmd("INFO")
                    .arg("errorstats")
                    .query(&mut conn)
                    .unwrap();
                // errorstat_CROSSSLOT:count=3
                let n = info
                    .lines()
                    .find_map(|l| l.strip_prefix("errorstat_CROSSSLOT:count="))
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0);
                (url.to_owned(), n)
            })
            .collect()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some((child, _)) = &mut self.child {
            child.kill().ok();
            child.wait().ok();
        } else if !std::thread::panicking() {
            // Every test on the cluster ends with this check: a call whose
            // keys span slots would work on one server and fail here.
            let errors = self.crossslot_errors();
            assert!(
                errors.iter().all(|(_, n)| *n == 0),
                "CROSSSLOT errors on the cluster: {errors:?}"
            );
        }
    }
}

/// A test's blocking connection, to one server or to a cluster.
pub enum TestConn {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl redis::ConnectionLike for TestConn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<redis::Value> {
        match self {
            TestConn::Single(c) => c.req_packed_command(cmd),
            TestConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<redis::Value>> {
        match self {
            TestConn::Single(c) => c.req_packed_commands(cmd, offset, count),
            TestConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        match self {
            TestConn::Single(c) => c.req_command(cmd),
            TestConn::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            TestConn::Single(c) => c.get_db(),
            TestConn::Cluster(c) => c.get_db(),
        }
    }

    /// The cluster connection says no, but sends a pipeline (or a
    /// MULTI/EXEC) whole to the owner of its first command's key, which is
    /// what the tests' one-shard pipelines need.
    fn supports_pipelining(&self) -> bool {
        true
    }

    fn check_connection(&mut self) -> bool {
        match self {
            TestConn::Single(c) => c.check_connection(),
            TestConn::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            TestConn::Single(c) => c.is_open(),
            TestConn::Cluster(c) => c.is_open(),
        }
    }
}

fn wait_ping(url: &str) {
    let start = Instant::now();
    loop {
        if let Ok(c) = redis::Client::open(url)
            && let Ok(mut conn) = c.get_connection()
            && redis::cmd("PING").query::<String>(&mut conn).is_ok()
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "redis-server at {url} did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The process's local cluster: [`CLUSTER_MASTERS`] masters on free
/// loopback ports, slots split by `redis-cli --cluster create`.
struct TestCluster {
    url: String,
}

impl TestCluster {
    fn get() -> &'static TestCluster {
        static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
        CLUSTER.get_or_init(|| {
            // The nodes get SIGTERM when the thread that spawned them ends:
            // spawn them from a thread that never ends.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                // Under target/tmp: the nodes write nodes.conf as long as they
                // run, so the directory outlives the process.
                let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
                tx.send(Self::start(dir.path())).unwrap();
                loop {
                    std::thread::park();
                }
            });
            rx.recv().unwrap()
        })
    }

    fn start(dir: &Path) -> TestCluster {
        // A node port and a cluster bus port per master, all free now.
        let listeners: Vec<std::net::TcpListener> = (0..CLUSTER_MASTERS * 2)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        drop(listeners);
        let mut nodes = Vec::new();
        for pair in ports.chunks(2) {
            let (port, bus) = (pair[0], pair[1]);
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).unwrap();
            let mut cmd = Command::new("redis-server");
            cmd.args(["--port", &port.to_string()])
                .args(["--cluster-port", &bus.to_string()])
                .args(["--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "2000"])
                .args(["--cluster-require-full-coverage", "no"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
            // SAFETY: only async-signal-safe calls between fork and exec.
            #[allow(unsafe_code)]
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = cmd
                .spawn()
                .expect("redis-server must be installed (apt-get install -y redis-server)");
            // Owned by the never-ending thread's stack frame: leaked on purpose.
            std::mem::forget(child);
            let url = format!("redis://127.0.0.1:{port}");
            wait_ping(&url);
            nodes.push(format!("127.0.0.1:{port}"));
        }
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli must be installed (apt-get install -y redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let urls: Vec<String> = nodes.iter().map(|n| format!("redis://{n}")).collect();
        let start = Instant::now();
        for url in &urls {
            loop {
                let mut conn = redis::Client::open(url.as_str())
                    .unwrap()
                    .get_connection()
                    .unwrap();
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut conn).unwrap();
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "cluster not ok: {info}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        TestCluster {
            url: urls.join(","),
        }
    }
}
