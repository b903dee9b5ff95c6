//! The nets scripts (`lua/nets/`), declared once.

crate::lua_scripts! {
    lib: ["nets/_lib.lua"];
    NET => "nets/fire.lua",
    NET_DELETE => "nets/delete.lua",
    NET_FAIL => "nets/fail.lua",
    NET_PAUSE => "nets/pause.lua",
}
