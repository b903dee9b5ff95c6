//! The workflows scripts (`lua/workflows/`), declared once.

crate::lua_scripts! {
    lib: [];
    WF_LAUNCH => "workflows/launch.lua",
    WF_PROCEED => "workflows/proceed.lua",
    WF_CANCEL => "workflows/cancel.lua",
    WF_REPLAY => "workflows/replay.lua",
    WF_COMMIT => "workflows/commit.lua",
}
