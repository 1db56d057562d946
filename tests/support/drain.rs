//! The one loop over `Executor::poll_command` the tests use. On its own (no other test support)
//! so that `byte_driver.rs`, which the `cargo fuzz` target also compiles, can use it too.
#![allow(dead_code, unreachable_pub)]

use podwarden::{Command, Executor};

/// Every command `ex` has ready, in the order it emits them.
pub fn drain_commands(ex: &mut Executor) -> Vec<Command> {
    std::iter::from_fn(|| ex.poll_command()).collect()
}
