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
                $crate::platform::scripts::register(concat!(
                    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../lua/platform/prelude.lua")),
                    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../lua/platform/outbox.lua")),
                    $(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../lua/", $lib)),)*
                    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../lua/", $file))
                ))
            });
    };
}

/// Every script made so far, by SHA1: the source an EVALSHA that met
/// `NOSCRIPT` is sent again with (see [`as_eval`]).
static SOURCES: std::sync::LazyLock<
    std::sync::RwLock<std::collections::HashMap<String, &'static str>>,
> = std::sync::LazyLock::new(Default::default);

/// Make the [`redis::Script`] of `code` and remember its source by SHA1
/// (for [`as_eval`]). Used by [`lua_script!`](crate::lua_script).
pub fn register(code: &'static str) -> redis::Script {
    let script = redis::Script::new(code);
    SOURCES
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(script.get_hash().to_owned(), code);
    script
}

/// `EVALSHA sha numkeys …` of a registered script as `EVAL source numkeys
/// …`; `None` for any other command.
///
/// [`redis::Script`] answers `NOSCRIPT` with one `SCRIPT LOAD` and one
/// more `EVALSHA`; a cache flushed again in between (`SCRIPT FLUSH` in a
/// loop, a failover to a replica that never saw the script) would fail the
/// call. The shared connection sends the call as `EVAL` instead, which
/// cannot meet `NOSCRIPT` and caches the script on that server.
pub fn as_eval(cmd: &redis::Cmd) -> Option<redis::Cmd> {
    // EVALSHA has no cursor argument.
    let mut args = cmd.args_iter().map(|a| match a {
        redis::Arg::Simple(b) => b,
        _ => &[][..],
    });
    if !args.next()?.eq_ignore_ascii_case(b"EVALSHA") {
        return None;
    }
    let sha = std::str::from_utf8(args.next()?).ok()?;
    let code = *SOURCES
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(sha)?;
    let mut eval = redis::cmd("EVAL");
    eval.arg(code);
    for a in args {
        eval.arg(a);
    }
    Some(eval)
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
        TRANSACTION => "platform/transaction.lua",
    }
}

pub use platform::{
    CONSUMER_LEAVE, CONSUMERS_PRUNE, INDEX_PRUNE, TIMERS_MOVE, TRANSACTION, WORK_ACK, WORK_DEAD,
    WORK_DEFER,
};

/// A `MULTI`/`EXEC` pipeline as one call of [`TRANSACTION`] (its KEYS:
/// each command's first argument; its ARGV: each command's length, name
/// and arguments), for a Redis Cluster, where redis-rs follows redirects
/// for single commands only. `None` for a pipeline that is not a
/// transaction, or whose arguments are not plain.
pub fn transaction_call(pipeline: &redis::Pipeline) -> Option<redis::Cmd> {
    if !pipeline.is_transaction() {
        return None;
    }
    let cmds = pipeline
        .cmd_iter()
        .map(|cmd| {
            cmd.args_iter()
                .map(|a| match a {
                    redis::Arg::Simple(b) => Some(b),
                    _ => None,
                })
                .collect::<Option<Vec<&[u8]>>>()
        })
        .collect::<Option<Vec<_>>>()?;
    let keys: Vec<&[u8]> = cmds
        .iter()
        .filter_map(|args| args.get(1).copied())
        .collect();
    let mut call = redis::cmd("EVALSHA");
    call.arg(TRANSACTION.get_hash()).arg(keys.len()).arg(keys);
    for args in cmds {
        call.arg(args.len()).arg(args);
    }
    Some(call)
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{TRANSACTION, as_eval, register, transaction_call};

    fn args(cmd: &redis::Cmd) -> Vec<Vec<u8>> {
        cmd.args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => b.to_vec(),
                _ => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn a_registered_evalsha_becomes_eval_with_its_source() {
        let code = "return {KEYS[1], ARGV[1]} -- as_eval test";
        let script = register(code);
        let mut evalsha = redis::cmd("EVALSHA");
        evalsha.arg(script.get_hash()).arg(1).arg("k").arg("v");
        let eval = as_eval(&evalsha).expect("registered");
        let expected: Vec<Vec<u8>> = [&b"EVAL"[..], code.as_bytes(), b"1", b"k", b"v"]
            .iter()
            .map(|a| a.to_vec())
            .collect();
        assert_eq!(args(&eval), expected);
    }

    #[test]
    fn other_commands_and_unknown_scripts_are_left_alone() {
        let mut unknown = redis::cmd("EVALSHA");
        unknown
            .arg("0000000000000000000000000000000000000000")
            .arg(0);
        assert!(as_eval(&unknown).is_none());
        assert!(as_eval(redis::cmd("GET").arg("k")).is_none());
    }

    #[test]
    fn a_transaction_becomes_one_script_call() {
        let mut pipe = redis::pipe();
        pipe.atomic().hgetall("{a}:rec").lrange("{a}:log", 0, -1);
        let call = transaction_call(&pipe).unwrap();
        let sha = TRANSACTION.get_hash().to_owned();
        let got: Vec<String> = args(&call)
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert_eq!(
            got,
            [
                "EVALSHA", &sha, "2", "{a}:rec", "{a}:log", "2", "HGETALL", "{a}:rec", "4",
                "LRANGE", "{a}:log", "0", "-1"
            ]
        );
        // A plain pipeline is not one.
        assert!(transaction_call(redis::pipe().get("k")).is_none());
    }
}
