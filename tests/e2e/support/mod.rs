//! The test harness: a real `redis-server` per test ([`redis`]), the real
//! app ([`app`]), a real callback receiver ([`receiver`]) and typed client
//! helpers per family ([`api`]), and a DevTools-protocol client of headless
//! Chromium ([`browser`]) for the console's browser test.

pub mod api;
pub mod app;
pub mod browser;
pub mod participants;
pub mod process;
pub mod receiver;
pub mod redis;

pub use app::{TEST_SECRET, TestApp, eventually, spawn_app, worker_opts};
pub use process::{Rng, WorkerProcess};
pub use receiver::Receiver;
pub use redis::RedisServer;
