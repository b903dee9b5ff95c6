//! placeholder
use clap::Args;
#[derive(Args)]
pub struct BenchCmd {}
pub fn run(_c: BenchCmd) -> anyhow::Result<()> {
    Ok(())
}
