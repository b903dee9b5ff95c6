//! Redis connections. Request handling shares a small deadpool of multiplexed
//! connections; blocking reads get dedicated connections of their own.

use std::time::Duration;

use anyhow::Context;
use deadpool_redis::{Config, Pool, PoolConfig, Runtime, Timeouts};

use crate::scripts;

pub type PoolError = deadpool_redis::PoolError;
pub type PooledConnection = deadpool_redis::Connection;

#[derive(Clone)]
pub struct RedisPool {
    pool: Pool,
    url: String,
}

impl RedisPool {
    /// A pool of at most `size` connections to `url` (`redis://…`,
    /// `rediss://…` or `unix:///path/to/socket`).
    pub fn new(url: &str, size: usize) -> anyhow::Result<Self> {
        let mut cfg = Config::from_url(url);
        cfg.pool = Some(PoolConfig {
            max_size: size.max(1),
            timeouts: Timeouts {
                wait: Some(Duration::from_secs(5)),
                create: Some(Duration::from_secs(5)),
                recycle: Some(Duration::from_secs(5)),
            },
            ..PoolConfig::default()
        });
        let pool = cfg
            .create_pool(Some(Runtime::Tokio1))
            .with_context(|| format!("invalid Redis URL {url:?}"))?;
        Ok(Self {
            pool,
            url: url.to_owned(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn get(&self) -> Result<PooledConnection, PoolError> {
        self.pool.get().await
    }

    /// A connection outside the pool, for blocking commands (XREADGROUP BLOCK)
    /// that must not hold up the shared multiplexed connections. Its response
    /// timeout must exceed the longest block.
    pub async fn dedicated(
        &self,
        response_timeout: Duration,
    ) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url.as_str())?;
        let cfg = redis::AsyncConnectionConfig::new().set_response_timeout(Some(response_timeout));
        client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
    }

    /// Ready = Redis answers and every script is in its cache (loaded now if
    /// it was not, e.g. after a restart or SCRIPT FLUSH).
    pub async fn ensure_ready(&self) -> anyhow::Result<()> {
        let mut conn = self.get().await.context("no Redis connection")?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .context("PING")?;
        if !scripts::all_loaded(&mut conn)
            .await
            .context("SCRIPT EXISTS")?
        {
            scripts::load_all(&mut conn).await?;
        }
        Ok(())
    }

    /// Wait until Redis is reachable, for at most `limit`.
    pub async fn wait_ready(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match self.ensure_ready().await {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(e.context(format!("Redis at {} not ready", self.url)));
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "Redis not ready yet");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }
}
