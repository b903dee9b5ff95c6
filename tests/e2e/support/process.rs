//! Real `switchyard` processes for crash tests, and a deterministic RNG for
//! randomised tests.

use std::process::{Child, Command, Stdio};

use super::TestApp;

/// A `switchyard worker` process, SIGKILLed and reaped when dropped.
pub struct WorkerProcess(Child);

impl WorkerProcess {
    /// Start a worker on the app's Redis with the test timings (1 s
    /// visibility, 800 ms attempt timeout, the `fast` retry policy) plus
    /// `extra` flags.
    pub fn spawn(app: &TestApp, name: &str, extra: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["worker", "--redis-url", &app.server.url])
            .args(["--worker-name", name, "--log-level", "warn"])
            .args(["--worker-visibility", "1s", "--delivery-timeout", "800ms"])
            .args(["--retry-policy", "fast=schedule:50ms,50ms,50ms"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the switchyard binary starts");
        Self(child)
    }

    /// SIGKILL, mid-flight, and wait for it to be gone.
    pub fn kill(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Small deterministic PRNG (xorshift), so a failing seed reproduces.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform-ish in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
