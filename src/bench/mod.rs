//! `switchyard bench …`: each family's hot path through HTTP (or the worker),
//! and the same Lua script driven by `redis-benchmark`, in one run on one
//! Redis, with the ratio. Machines are shared and noisy: compare the ratio,
//! not the absolute figures, between runs.
//!
//! # Layout
//! * `common` — the private Redis and runtime (`with_redis`), the in-process
//!   API, the `redis-benchmark` driver, the options every bench repeats, and
//!   the small number helpers.
//! * one file per family: `gates`, `deliveries`, `nets`, `machines`, `workflows`.
//! * `cluster` — gates and deliveries on one server vs a local Redis Cluster.

use clap::{Args, Subcommand};

mod cluster;
mod common;
mod deliveries;
mod gates;
mod machines;
mod nets;
mod transactions;
mod workflows;

#[derive(Args)]
pub struct BenchCmd {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Gate test-and-set + release through HTTP vs. the Lua script under redis-benchmark.
    Gates(gates::GatesBench),
    /// Deliveries/s to a fast local receiver with 1 and 2 worker processes, and BullMQ on the same Redis.
    Deliveries(deliveries::DeliveriesBench),
    /// Petri net firing: action-less chains over a split, a notify chain, and the firing script under redis-benchmark.
    Nets(nets::NetsBench),
    /// State-machine transitions through HTTP (single and batch) and the transition script under redis-benchmark.
    Machines(machines::MachinesBench),
    /// Workflows/s and steps/s of a participant sequence through HTTP, Redis commands per step, and the commit script under redis-benchmark.
    Workflows(workflows::WorkflowsBench),
    /// Items/s accepted through HTTP and through the pipeline to Done, Redis memory per item, and the consolidate script under redis-benchmark.
    Transactions(transactions::TransactionsBench),
    /// Gates and deliveries on one redis-server vs a local 3-master Redis Cluster: the ratio, per-node CPU and calls, and the ceilings on separate machines.
    Cluster(cluster::ClusterBench),
}

pub fn run(c: BenchCmd) -> anyhow::Result<()> {
    match c.what {
        What::Gates(g) => gates::run(g),
        What::Deliveries(d) => deliveries::run(d),
        What::Nets(n) => nets::run(n),
        What::Machines(m) => machines::run(m),
        What::Workflows(w) => workflows::run(w),
        What::Transactions(t) => transactions::run(t),
        What::Cluster(c) => cluster::run(c),
    }
}
