//! The deliveries scripts (`lua/deliveries/`), declared once.

crate::lua_scripts! {
    lib: [];
    DELIVERY_ENQUEUE => "deliveries/enqueue.lua",
    DELIVERY_BEGIN => "deliveries/begin.lua",
    DELIVERY_FINISH => "deliveries/finish.lua",
    DELIVERY_RETRY => "deliveries/retry.lua",
    DELIVERY_CANCEL => "deliveries/cancel.lua",
    DELIVERY_KILL => "deliveries/kill.lua",
}
