//! The Lua scripts of `lua/`, embedded in the binary. Each script is the
//! platform prelude (`lua/platform/prelude.lua`, `lua/platform/outbox.lua`),
//! then its family's helpers (`lua/<family>/_lib.lua`, when there is one),
//! then one operation. Calls go through [`redis::Script`], which sends
//! EVALSHA and reloads the script on NOSCRIPT, so a Redis restart or
//! failover needs no special handling.
//!
//! Scripts are declared once, with [`lua_scripts!`](crate::lua_scripts):
//! the one list generates the statics and the `ALL` list of that module.
//! The platform's own scripts are below; each family declares its own in
//! `families/<name>/scripts.rs`, and `families::scripts()` joins them.

/// A script and the file it was built from (relative to `lua/`).
pub type Named = (&'static str, &'static redis::Script);

/// One module's scripts (`all`) and the helper files prepended to them.
#[derive(Clone, Copy)]
pub struct ScriptModule {
    pub all: fn() -> Vec<Named>,
    pub libs: &'static [&'static str],
}

/// Declare the scripts of one module: `lua_scripts! { lib: ["gates/_lib.lua"];
/// TAS => "gates/tas.lua", … }` makes a `static TAS: LazyLock<Script>` per
/// entry and `pub fn all() -> Vec<Named>` listing them. `lib` files are
/// prepended after the platform prelude.
#[macro_export]
macro_rules! lua_scripts {
    (lib: $libs:tt; $($name:ident => $file:literal),+ $(,)?) => {
        $( $crate::lua_script!($name, $libs, $file); )+

        /// Every script of this module with its file name (relative to `lua/`).
        pub fn all() -> Vec<$crate::platform::scripts::Named> {
            vec![$(($file, &*$name)),+]
        }

        /// Helper files prepended to this module's scripts (relative to `lua/`).
        pub const LIBS: &[&str] = &$libs;

        /// This module's scripts and helpers, for the families' registry.
        pub const MODULE: $crate::platform::scripts::ScriptModule =
            $crate::platform::scripts::ScriptModule { all, libs: LIBS };
    };
}

/// One script of [`lua_scripts!`]: the platform prelude, the `lib` files, then `file`.
#[macro_export]
macro_rules! lua_script {
    ($name:ident, [$($lib:literal),* $(,)?], $file:literal) => {
        pub static $name: ::std::sync::LazyLock<::redis::Script> =
            ::std::sync::LazyLock::new(|| {
                ::redis::Script::new(concat!(
                    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../lua/platform/prelude.lua")),
                    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../lua/platform/outbox.lua")),
                    $(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../lua/", $lib)),)*
                    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../lua/", $file))
                ))
            });
    };
}

/// The platform's own scripts: the work streams and timers.
pub mod platform {
    crate::lua_scripts! {
        lib: [];
        WORK_ACK => "platform/work_ack.lua",
        WORK_DEAD => "platform/work_dead.lua",
        WORK_DEFER => "platform/work_defer.lua",
        TIMERS_MOVE => "platform/timers_move.lua",
        CONSUMERS_PRUNE => "platform/consumers_prune.lua",
        CONSUMER_LEAVE => "platform/consumer_leave.lua",
        INDEX_PRUNE => "platform/index_prune.lua",
    }
}

pub use platform::{
    CONSUMER_LEAVE, CONSUMERS_PRUNE, INDEX_PRUNE, TIMERS_MOVE, WORK_ACK, WORK_DEAD, WORK_DEFER,
};

/// Files prepended to every script (relative to `lua/`).
pub const PRELUDE: &[&str] = &["platform/prelude.lua", "platform/outbox.lua"];

/// Load every script into the server (SCRIPT LOAD). Fails with the name of
/// the first script Redis rejects, e.g. on a syntax error.
pub async fn load_all<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    scripts: &[Named],
) -> anyhow::Result<()> {
    for (name, script) in scripts {
        let sha: String = script
            .load_async(conn)
            .await
            .map_err(|e| anyhow::anyhow!("loading {name}: {e}"))?;
        anyhow::ensure!(sha == script.get_hash(), "{name}: unexpected sha {sha}");
    }
    Ok(())
}

/// True when every script is in the server's script cache.
pub async fn all_loaded<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    scripts: &[Named],
) -> redis::RedisResult<bool> {
    let mut cmd = redis::cmd("SCRIPT");
    cmd.arg("EXISTS");
    for (_, s) in scripts {
        cmd.arg(s.get_hash());
    }
    let found: Vec<i64> = cmd.query_async(conn).await?;
    Ok(found.iter().all(|&x| x == 1))
}
