//! Switchyard's shared library: everything the `api`, `worker` and
//! `scheduler` processes have in common.
//!
//! **The rule:** [`platform`] code never names a family; a family reaches
//! another only through platform hooks (the outbox's owner hooks and
//! [`platform::outbox::Outbox`]).
//!
//! * [`platform`] — config, connection, keys and shards, scripts and the reply
//!   convention, work streams and timers, the outbox, ids, paging, time,
//!   telemetry.
//! * [`families`] — one folder per family (options, keys, scripts, store,
//!   model) and the registry that lists them (`families/mod.rs`).
//! * [`config`] — the one config of each role: platform option groups plus
//!   [`families::FamiliesOpts`].

pub mod config;
pub mod families;
pub mod platform;

pub use families::{FamiliesOpts, WorkKind};
pub use platform::keys::Keys;
pub use platform::redis::Redis;
pub use platform::work::WORK_GROUP;
pub use platform::{paging, telemetry, time};

/// Every script: the platform's and every family's.
pub fn scripts() -> Vec<platform::scripts::Named> {
    [platform::scripts::platform::all(), families::scripts()].concat()
}

/// Connect to the deployment's Redis (every script loaded) and its key layout.
pub async fn connect(redis: &platform::config::RedisOpts) -> anyhow::Result<(Redis, Keys)> {
    redis.connect(scripts()).await
}

/// Install the process-wide TLS crypto provider (ring) for HTTP clients.
/// Idempotent; call before building any `reqwest::Client`.
pub fn init_tls() {
    drop(rustls::crypto::ring::default_provider().install_default());
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn lua_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("lua dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                lua_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "lua") {
                out.push(path);
            }
        }
    }

    fn all_lua() -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lua");
        let mut files = Vec::new();
        lua_files(&root, &mut files);
        files
            .into_iter()
            .map(|p| {
                let name = p
                    .strip_prefix(&root)
                    .expect("under lua/")
                    .to_string_lossy()
                    .into_owned();
                (name, std::fs::read_to_string(&p).expect("readable"))
            })
            .collect()
    }

    #[test]
    fn every_lua_file_is_a_registered_script_or_helper() {
        let mut known: Vec<&str> = super::scripts().iter().map(|(n, _)| *n).collect();
        known.extend(super::platform::scripts::PRELUDE);
        known.extend(super::families::script_libs());
        for (name, _) in all_lua() {
            assert!(
                known.contains(&name.as_str()),
                "lua/{name} is not registered (lua_scripts! in its family's scripts.rs)"
            );
        }
    }

    #[test]
    fn every_script_has_a_header_with_keys_argv_and_returns() {
        for (name, text) in all_lua() {
            if name.ends_with("_lib.lua") || name.starts_with("platform/prelude") {
                continue;
            }
            if name == "platform/outbox.lua" {
                continue;
            }
            for field in ["KEYS:", "ARGV:", "Returns:"] {
                assert!(text.contains(field), "lua/{name}: header lacks {field}");
            }
        }
    }

    #[test]
    fn every_work_kind_written_by_lua_is_a_known_kind() {
        let mut found = 0;
        for (name, text) in all_lua() {
            // `'kind', '<kind>'` in an XADD, or the kind argument of the
            // outbox's `owner_notice(stream, '<kind>', …)` and
            // `work_add(stream, '<kind>', …)`.
            let xadds = text.split("'kind', ").skip(1);
            let calls = ["owner_notice(", "work_add("].into_iter().flat_map(|f| {
                text.split(f)
                    .skip(1)
                    .filter_map(|call| call.split_once(", ").map(|(_, rest)| rest))
            });
            for part in xadds.chain(calls) {
                let Some(kind) = part.strip_prefix('\'').and_then(|r| r.split('\'').next()) else {
                    continue;
                };
                found += 1;
                assert!(
                    kind.parse::<super::WorkKind>().is_ok(),
                    "lua/{name} writes unknown work kind {kind:?}"
                );
            }
        }
        assert!(found >= 7, "expected kinds written by Lua, found {found}");
    }
}
