//! The Lua scripts of `lua/`, embedded in the binary. Each is the prelude
//! (`lua/prelude.lua`) followed by one operation. Calls go through
//! [`redis::Script`], which sends EVALSHA and reloads the script on NOSCRIPT,
//! so a Redis restart or failover needs no special handling.

use std::sync::LazyLock;

use redis::Script;

macro_rules! script {
    ($name:ident, $file:literal) => {
        pub static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("../../lua/prelude.lua"),
                include_str!(concat!("../../lua/", $file))
            ))
        });
    };
}

script!(GATES_TAS, "gates_tas.lua");
script!(GATES_RELEASE, "gates_release.lua");
script!(GATES_SET_STATE, "gates_set_state.lua");
script!(GATES_SERVICE_CREATE, "gates_service_create.lua");
script!(GATES_SERVICE_GET, "gates_service_get.lua");
script!(GATES_SERVICE_DELETE, "gates_service_delete.lua");
script!(GATES_SERVICE_UPDATE, "gates_service_update.lua");
script!(GATES_HOLIDAYS_SET, "gates_holidays_set.lua");
script!(WORK_ACK, "work_ack.lua");
script!(WORK_DEAD, "work_dead.lua");
script!(DELIVERY_ENQUEUE, "delivery_enqueue.lua");
script!(DELIVERY_BEGIN, "delivery_begin.lua");
script!(DELIVERY_FINISH, "delivery_finish.lua");
script!(DELIVERY_RETRY, "delivery_retry.lua");
script!(DELIVERY_CANCEL, "delivery_cancel.lua");
script!(TIMERS_MOVE, "timers_move.lua");
script!(WORK_DEFER, "work_defer.lua");
script!(DELIVERY_KILL, "delivery_kill.lua");
script!(NET, "net.lua");
script!(NET_DELETE, "net_delete.lua");
script!(NET_FAIL, "net_fail.lua");
script!(NET_PAUSE, "net_pause.lua");
script!(SM_TRANSITION, "sm_transition.lua");
script!(SM_CREATE, "sm_create.lua");
script!(SM_DELETE, "sm_delete.lua");
script!(SM_ALERT, "sm_alert.lua");

/// Every script with its file name, for loading and readiness checks.
pub fn all() -> Vec<(&'static str, &'static Script)> {
    vec![
        ("gates_tas.lua", &*GATES_TAS),
        ("gates_release.lua", &*GATES_RELEASE),
        ("gates_set_state.lua", &*GATES_SET_STATE),
        ("gates_service_create.lua", &*GATES_SERVICE_CREATE),
        ("gates_service_get.lua", &*GATES_SERVICE_GET),
        ("gates_service_delete.lua", &*GATES_SERVICE_DELETE),
        ("gates_service_update.lua", &*GATES_SERVICE_UPDATE),
        ("gates_holidays_set.lua", &*GATES_HOLIDAYS_SET),
        ("work_ack.lua", &*WORK_ACK),
        ("work_dead.lua", &*WORK_DEAD),
        ("delivery_enqueue.lua", &*DELIVERY_ENQUEUE),
        ("delivery_begin.lua", &*DELIVERY_BEGIN),
        ("delivery_finish.lua", &*DELIVERY_FINISH),
        ("delivery_retry.lua", &*DELIVERY_RETRY),
        ("delivery_cancel.lua", &*DELIVERY_CANCEL),
        ("timers_move.lua", &*TIMERS_MOVE),
        ("work_defer.lua", &*WORK_DEFER),
        ("delivery_kill.lua", &*DELIVERY_KILL),
        ("net.lua", &*NET),
        ("net_delete.lua", &*NET_DELETE),
        ("net_fail.lua", &*NET_FAIL),
        ("net_pause.lua", &*NET_PAUSE),
        ("sm_transition.lua", &*SM_TRANSITION),
        ("sm_create.lua", &*SM_CREATE),
        ("sm_delete.lua", &*SM_DELETE),
        ("sm_alert.lua", &*SM_ALERT),
    ]
}

/// Load every script into the server (SCRIPT LOAD). Fails with the name of
/// the first script Redis rejects, e.g. on a syntax error.
pub async fn load_all<C: redis::aio::ConnectionLike + Send>(conn: &mut C) -> anyhow::Result<()> {
    for (name, script) in all() {
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
) -> redis::RedisResult<bool> {
    let mut cmd = redis::cmd("SCRIPT");
    cmd.arg("EXISTS");
    for (_, s) in all() {
        cmd.arg(s.get_hash());
    }
    let found: Vec<i64> = cmd.query_async(conn).await?;
    Ok(found.iter().all(|&x| x == 1))
}
