//! The Redis of a test.
//!
//! By default a fresh `redis-server` per test, on a unix socket in a temp
//! dir (`--port 0` turns TCP off). With `SWITCHYARD_TEST_REDIS=cluster` a
//! local Redis Cluster of three masters on loopback ports instead, started
//! once per test process and shared by its tests (nextest runs each test in
//! a process of its own, so there every test still gets its own cluster).
//! The cluster's nodes die with the process (`PR_SET_PDEATHSIG` on a thread
//! that lives as long as the process).
//!
//! A test about the cluster itself (failover, resharding) asks for one of
//! its own with replicas ([`RedisServer::start_with_replicas`], or
//! `TestApp::builder().with_replicas()`) and reaches its nodes through
//! [`OwnCluster`]: kill a master, wait for its replica's promotion, move a
//! slot.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Masters of the test cluster (no replicas on the shared one: failover is
/// not what the family scenarios test; [`OwnCluster`] has one per master).
const CLUSTER_MASTERS: usize = 3;

/// True when the tests run against a local Redis Cluster.
pub fn cluster_mode() -> bool {
    std::env::var("SWITCHYARD_TEST_REDIS").is_ok_and(|v| v == "cluster")
}

pub struct RedisServer {
    /// The single server's process (none on a cluster).
    child: Option<(Child, TempDir)>,
    /// The test's own cluster with replicas ([`RedisServer::start_with_replicas`]),
    /// whose nodes a test may kill or reshard.
    own: Option<OwnCluster>,
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
                own: None,
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
            own: None,
            url,
        }
    }

    /// A cluster of this test's own: [`CLUSTER_MASTERS`] masters and one
    /// replica each (`--cluster-replicas 1`), for failover and resharding
    /// tests. Only with `SWITCHYARD_TEST_REDIS=cluster`.
    pub fn start_with_replicas() -> Self {
        assert!(
            cluster_mode(),
            "a cluster needs SWITCHYARD_TEST_REDIS=cluster"
        );
        let own = OwnCluster::start();
        Self {
            child: None,
            url: own.seeds(),
            own: Some(own),
        }
    }

    /// The nodes of a cluster started by [`RedisServer::start_with_replicas`].
    pub fn cluster(&self) -> &OwnCluster {
        self.own
            .as_ref()
            .expect("only a cluster started with start_with_replicas has nodes to reach")
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
        } else if !std::thread::panicking() && self.own.is_none() {
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
            let child = spawn_node(dir, port, bus, 2000);
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

/// A node of an [`OwnCluster`]: its port and, while it runs, its process.
pub struct ClusterNode {
    pub port: u16,
    child: std::sync::Mutex<Option<Child>>,
}

impl ClusterNode {
    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The node's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap().as_ref().map(Child::id)
    }

    fn alive(&self) -> bool {
        self.child.lock().unwrap().is_some()
    }
}

/// A test's own cluster: [`CLUSTER_MASTERS`] masters with one replica
/// each, whose nodes the test can kill (`kill -9`) and whose slots it can
/// move. The nodes are killed when it is dropped (and die with the test
/// process: `PR_SET_PDEATHSIG`).
pub struct OwnCluster {
    pub nodes: Vec<ClusterNode>,
    _dir: TempDir,
}

/// What [`OwnCluster::wait_promoted`] saw.
#[derive(Debug)]
pub struct Promotion {
    /// The port of the slot's new master.
    pub new_master: u16,
    /// When every live node said `cluster_state:ok` with the new owner.
    pub at: Instant,
}

impl OwnCluster {
    fn start() -> Self {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let nodes = CLUSTER_MASTERS * 2;
        let listeners: Vec<std::net::TcpListener> = (0..nodes * 2)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        drop(listeners);
        let nodes: Vec<ClusterNode> = ports
            .chunks(2)
            .map(|pair| ClusterNode {
                port: pair[0],
                // A short node timeout: a dead master is failed over in ~2 s.
                child: std::sync::Mutex::new(Some(spawn_node(dir.path(), pair[0], pair[1], 1000))),
            })
            .collect();
        for n in &nodes {
            wait_ping(&n.url());
        }
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli must be installed (apt-get install -y redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { nodes, _dir: dir };
        let start = Instant::now();
        for n in &cluster.nodes {
            loop {
                let mut c = node_conn(&n.url());
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut c).unwrap();
                let repl: String = redis::cmd("INFO").arg("replication").query(&mut c).unwrap();
                // A replica is ready (and eligible for a failover) once synced.
                let synced = repl.contains("role:master") || repl.contains("master_link_status:up");
                if info.contains("cluster_state:ok") && synced {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "cluster not ready: {info}\n{repl}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        cluster
    }

    /// Every node's URL, comma-separated (the seeds of `--redis-url`).
    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .map(ClusterNode::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn live(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes.iter().filter(|n| n.alive())
    }

    /// The slot of `key` (`CLUSTER KEYSLOT`).
    pub fn keyslot(&self, key: &str) -> u16 {
        let node = self.live().next().unwrap();
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut node_conn(&node.url()))
            .unwrap()
    }

    /// The port of the master serving `slot`, as the live node on `via` sees it.
    fn owner_seen_by(via: u16, slot: u16) -> Option<u16> {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{via}"))
            .ok()?
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()?;
        let slots: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut c).ok()?;
        slots.into_iter().find_map(|range| {
            let redis::Value::Array(parts) = range else {
                return None;
            };
            let (lo, hi): (i64, i64) = (
                redis::from_redis_value(parts[0].clone()).ok()?,
                redis::from_redis_value(parts[1].clone()).ok()?,
            );
            if !(lo..=hi).contains(&i64::from(slot)) {
                return None;
            }
            let master: Vec<redis::Value> = redis::from_redis_value(parts[2].clone()).ok()?;
            redis::from_redis_value::<u16>(master[1].clone()).ok()
        })
    }

    /// How many keys `slot` holds on its master (`CLUSTER COUNTKEYSINSLOT`).
    pub fn keys_in_slot(&self, slot: u16) -> usize {
        let master = self.master_of(slot);
        redis::cmd("CLUSTER")
            .arg("COUNTKEYSINSLOT")
            .arg(slot)
            .query(&mut node_conn(&format!("redis://127.0.0.1:{master}")))
            .unwrap()
    }

    /// The port of the master serving `slot`.
    pub fn master_of(&self, slot: u16) -> u16 {
        self.live()
            .find_map(|n| Self::owner_seen_by(n.port, slot))
            .expect("no live node knows the slot's master")
    }

    /// The ports of the masters.
    pub fn masters(&self) -> Vec<u16> {
        self.live()
            .filter(|n| {
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut node_conn(&n.url()))
                    .unwrap();
                info.contains("role:master")
            })
            .map(|n| n.port)
            .collect()
    }

    /// `kill -9` the node on `port`.
    pub fn kill(&self, port: u16) {
        let node = self.nodes.iter().find(|n| n.port == port).unwrap();
        let mut child = node
            .child
            .lock()
            .unwrap()
            .take()
            .expect("the node is already dead");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Wait (at most `limit`) until every live node says `cluster_state:ok`
    /// and names a master other than `old` for `slot`.
    pub fn wait_promoted(&self, slot: u16, old: u16, limit: Duration) -> Promotion {
        let start = Instant::now();
        loop {
            let owners: Vec<Option<u16>> = self
                .live()
                .map(|n| {
                    let mut c = node_conn(&n.url());
                    let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut c).ok()?;
                    info.contains("cluster_state:ok")
                        .then(|| Self::owner_seen_by(n.port, slot))
                        .flatten()
                })
                .collect();
            if let Some(Some(new)) = owners.first()
                && *new != old
                && owners.iter().all(|o| *o == Some(*new))
            {
                return Promotion {
                    new_master: *new,
                    at: Instant::now(),
                };
            }
            assert!(
                start.elapsed() < limit,
                "slot {slot} not failed over within {limit:?}: {owners:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Move `slot` to the master on `to`, by hand: `CLUSTER SETSLOT`
    /// IMPORTING/MIGRATING, `MIGRATE` of its keys in batches of `batch`,
    /// then `SETSLOT … NODE` on every master — what `redis-cli --cluster
    /// reshard` does, for one chosen slot. `pause` between batches keeps
    /// the slot half-migrated (ASK redirections) for longer. Returns how
    /// many keys moved.
    pub fn move_slot(&self, slot: u16, to: u16, batch: usize, pause: Duration) -> usize {
        let from = self.master_of(slot);
        assert_ne!(from, to, "slot {slot} is already on {to}");
        let id = |port: u16| -> String {
            redis::cmd("CLUSTER")
                .arg("MYID")
                .query(&mut node_conn(&format!("redis://127.0.0.1:{port}")))
                .unwrap()
        };
        let (from_id, to_id) = (id(from), id(to));
        let mut src = node_conn(&format!("redis://127.0.0.1:{from}"));
        let mut dst = node_conn(&format!("redis://127.0.0.1:{to}"));
        let setslot = |c: &mut redis::Connection, how: &str, node: &str| {
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg(how)
                .arg(node)
                .query::<()>(c)
                .unwrap();
        };
        setslot(&mut dst, "IMPORTING", &from_id);
        setslot(&mut src, "MIGRATING", &to_id);
        let mut moved = 0;
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(batch)
                .query(&mut src)
                .unwrap();
            if keys.is_empty() {
                break;
            }
            redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(to)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("REPLACE")
                .arg("KEYS")
                .arg(&keys)
                .query::<()>(&mut src)
                .unwrap();
            moved += keys.len();
            std::thread::sleep(pause);
        }
        setslot(&mut dst, "NODE", &to_id);
        setslot(&mut src, "NODE", &to_id);
        for m in self.masters() {
            if m != from && m != to {
                setslot(
                    &mut node_conn(&format!("redis://127.0.0.1:{m}")),
                    "NODE",
                    &to_id,
                );
            }
        }
        moved
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for n in &self.nodes {
            if let Some(mut c) = n.child.lock().unwrap().take() {
                c.kill().ok();
                c.wait().ok();
            }
        }
    }
}

fn node_conn(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(2))
        .unwrap()
}

/// A cluster-enabled `redis-server` on `port` (cluster bus on `bus`), its
/// files in `dir/<port>`; killed (SIGKILL) when the thread that spawned it ends.
fn spawn_node(dir: &Path, port: u16, bus: u16, node_timeout_ms: u32) -> Child {
    let node_dir = dir.join(port.to_string());
    std::fs::create_dir_all(&node_dir).unwrap();
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string()])
        .args(["--cluster-port", &bus.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-config-file", "nodes.conf"])
        .args(["--cluster-node-timeout", &node_timeout_ms.to_string()])
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
    cmd.spawn()
        .expect("redis-server must be installed (apt-get install -y redis-server)")
}
