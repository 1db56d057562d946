//! The proptest generators of steps.

use proptest::prelude::*;

use super::transition::{CreateAnswer, DbAnswer, EventKind, Op};
use super::{PEERS, TASKS};

/// One step: submissions, create answers, pod events, DB answers, heartbeat snapshots and time,
/// weighted.
pub fn arb_op() -> impl Strategy<Value = Op> {
    let create = prop_oneof![
        4 => Just(CreateAnswer::Ok),
        1 => Just(CreateAnswer::AlreadyExists),
        2 => Just(CreateAnswer::Timeout),
        2 => Just(CreateAnswer::ServerError),
        1 => Just(CreateAnswer::Invalid),
    ];
    let event = prop_oneof![
        Just(EventKind::Running),
        Just(EventKind::Succeed),
        Just(EventKind::FailError),
        Just(EventKind::FailPrestart),
        Just(EventKind::Replay),
        Just(EventKind::Delete),
        Just(EventKind::LeftWatch),
    ];
    let db = prop_oneof![
        3 => Just(DbAnswer::Queued),
        1 => Just(DbAnswer::Running),
        1 => Just(DbAnswer::NoRow),
        1 => Just(DbAnswer::Unavailable),
    ];
    prop_oneof![
        2 => (0..TASKS).prop_map(Op::Submit),
        3 => (0..4usize, create).prop_map(|(i, a)| Op::AnswerCreate(i, a)),
        5 => (0..4usize, event).prop_map(|(i, k)| Op::Event(i, k)),
        2 => (0..4usize, db).prop_map(|(i, a)| Op::AnswerDb(i, a)),
        1 => proptest::option::weighted(
            0.8,
            proptest::collection::vec((any::<bool>(), 0..3u64), PEERS.len())
        )
        .prop_map(Op::Heartbeats),
        1 => (0..40_000u64).prop_map(Op::Advance),
    ]
}

/// A run: 1 to 59 steps.
pub fn op_sequences() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(arb_op(), 1..60)
}
