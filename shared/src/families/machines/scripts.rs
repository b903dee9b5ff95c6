//! The machines scripts (`lua/machines/`), declared once.

crate::lua_scripts! {
    lib: [];
    SM_TRANSITION => "machines/transition.lua",
    SM_CREATE => "machines/create.lua",
    SM_DELETE => "machines/delete.lua",
    SM_ALERT => "machines/alert.lua",
}
