//! The transactions scripts (`lua/transactions/`), declared once.

crate::lua_scripts! {
    lib: ["transactions/_lib.lua"];
    TX_CREATE => "transactions/create.lua",
    TX_STAGE => "transactions/stage.lua",
    TX_ABORT => "transactions/abort.lua",
    TX_COMMIT => "transactions/commit.lua",
    TX_STEP => "transactions/step.lua",
    TX_KICK => "transactions/kick.lua",
    TX_FAIL => "transactions/fail.lua",
}
