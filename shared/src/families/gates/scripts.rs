//! The gates scripts (`lua/gates/`), declared once.

crate::lua_scripts! {
    lib: ["gates/_lib.lua"];
    GATES_TAS => "gates/tas.lua",
    GATES_RELEASE => "gates/release.lua",
    GATES_SET_STATE => "gates/set_state.lua",
    GATES_SERVICE_CREATE => "gates/service_create.lua",
    GATES_SERVICE_GET => "gates/service_get.lua",
    GATES_SERVICE_DELETE => "gates/service_delete.lua",
    GATES_SERVICE_UPDATE => "gates/service_update.lua",
    GATES_HOLIDAYS_SET => "gates/holidays_set.lua",
}
