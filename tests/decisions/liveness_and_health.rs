//! Peer liveness (who is alive, for adoption) and the executor's own health.

use podwarden::liveness::{JobState, LivenessRule};
use podwarden::{ApiOutcome, Config, Input};

use crate::support::*;
use crate::{next_adoption, T0};

// ---- liveness ------------------------------------------------------------------------------

#[test]
fn liveness_observed_change_keeps_a_skewed_peer_alive() {
    // Peer 7's clock runs 40 s behind ours; it heartbeats every 5 s.
    for (rule, want) in [
        (
            LivenessRule::ObservedChange,
            "kubernetes_executor=True,airflow-worker notin (5,7),airflow_executor_done!=True",
        ),
        (
            LivenessRule::WrittenTimestamp,
            "kubernetes_executor=True,airflow-worker!=5,airflow_executor_done!=True",
        ),
    ] {
        let mut h = Harness::new(Config {
            scheduler_liveness_rule: rule,
            ..Config::default()
        });
        for i in 0..3u64 {
            let out = h.heartbeats(&[
                ("5", JobState::Running, T0 + i * 5_000),
                ("7", JobState::Running, T0 + i * 5_000 - 40_000),
            ]);
            // The first snapshot releases the adoption that waited for it: answer its list.
            if i == 0 {
                h.answer(
                    first(&out, "ListPods").id,
                    ApiOutcome::Listed {
                        pods: vec![],
                        resource_version: "2".into(),
                    },
                );
            }
            h.advance(5_000);
        }
        let adoption = next_adoption(&mut h);
        assert_eq!(list_selector(&adoption).0, want, "{rule:?}");
    }
}

#[test]
fn liveness_stalled_peer_is_dead_after_the_threshold() {
    let mut h = Harness::new(Config::default());
    h.heartbeats(&[("5", JobState::Running, T0), ("7", JobState::Running, T0)]);
    // We read every 5 s; 7's heartbeat value does not change for 30 s, then 31 s.
    for t in (5_000..=30_000).step_by(5_000) {
        h.advance(5_000);
        h.heartbeats(&[
            ("5", JobState::Running, T0 + t),
            ("7", JobState::Running, T0),
        ]);
    }
    assert_eq!(h.ex.alive_peers(), Some(vec!["7".to_string()]));
    h.advance(1_000);
    h.heartbeats(&[
        ("5", JobState::Running, T0 + 31_000),
        ("7", JobState::Running, T0),
    ]);
    assert_eq!(h.ex.alive_peers(), Some(vec![]));
    h.heartbeats(&[
        ("5", JobState::Running, T0 + 31_000),
        ("7", JobState::Running, T0 + 31_000),
    ]);
    assert_eq!(h.ex.alive_peers(), Some(vec!["7".to_string()]));
    h.heartbeats(&[
        ("5", JobState::Running, T0 + 31_000),
        ("7", JobState::Failed, T0 + 32_000),
    ]);
    assert_eq!(
        h.ex.alive_peers(),
        Some(vec![]),
        "a failed job is dead whatever its heartbeat"
    );
}

// ---- own health ----------------------------------------------------------------------------

#[test]
fn health_reports_a_loop_that_is_not_driven() {
    let h = Harness::new(Config::default());
    let now = h.now;
    assert!(h.ex.health(now.plus_ms(30_000)).is_healthy());
    let health = h.ex.health(now.plus_ms(30_001));
    assert!(health.reasons.not_driven && !health.is_healthy());
    assert_eq!(health.idle_ms, 30_001);
}

#[test]
fn health_reports_a_stalled_watch_while_pods_are_tracked() {
    let mut h = Harness::new(Config {
        health_watch_stall_threshold: 60.0,
        ..Config::default()
    });
    h.launch(&key("t"));
    for _ in 0..6 {
        h.advance(10_000);
        h.heartbeats(&[("5", JobState::Running, h.now.0)]);
    }
    let health = h.ex.health(h.now.plus_ms(1));
    assert!(
        health.reasons.watch_stalled && !health.reasons.not_driven,
        "{health:?}"
    );
    h.input(
        "bookmark".into(),
        Input::Watch {
            event: podwarden::WatchEvent::Bookmark {
                namespace: None,
                resource_version: "99".into(),
            },
        },
    );
    assert!(h.ex.health(h.now).is_healthy());
}

#[test]
fn health_reports_a_launch_backlog_that_makes_no_progress() {
    let mut h = Harness::new(Config {
        task_publish_max_retries: -1,
        ..Config::default()
    });
    let cmds = h.submit(&key("t"));
    // The API server rate-limits for ten minutes.
    h.fail(
        first(&cmds, "CreatePod").id,
        429,
        "TooManyRequests",
        "",
        Some(600),
    );
    h.advance(20_000);
    h.heartbeats(&[("5", JobState::Running, h.now.0)]);
    assert!(h.ex.health(h.now).is_healthy());
    h.advance(11_000);
    h.heartbeats(&[("5", JobState::Running, h.now.0)]);
    let health = h.ex.health(h.now);
    assert!(
        health.reasons.launch_stalled && !health.reasons.not_driven,
        "{health:?}"
    );
}
