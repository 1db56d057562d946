//! [`Settings`]: a [`Config`] parsed once, when the executor is built. Durations are
//! milliseconds on the executor's clock, Airflow's `-1` ("no limit") and `0` ("off") sentinels
//! are enums and options, so no decision converts seconds or compares with `-1` again.
//! Airflow's names and units stay in [`Config`], at the edge (TOML, serde).

use super::{Config, ConfigError};
use crate::time::secs_to_ms;

/// How many times something may be retried (Airflow writes `-1` for no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryLimit {
    /// No limit (`-1`).
    Unlimited,
    /// At most this many (`0` and up).
    AtMost(u64),
}

impl RetryLimit {
    /// From a validated Airflow count (`-1` or more).
    fn from_airflow(value: i64) -> Self {
        u64::try_from(value).map_or(Self::Unlimited, Self::AtMost)
    }

    /// Whether one more may be made after `done`.
    pub(crate) fn allows(self, done: u32) -> bool {
        match self {
            Self::Unlimited => true,
            Self::AtMost(max) => u64::from(done) < max,
        }
    }

    /// Whether none may be made at all (`0`: the feature is off).
    pub(crate) fn is_off(self) -> bool {
        self == Self::AtMost(0)
    }
}

/// How a pod creation that failed with a transient error is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PublishRetries {
    /// *(podwarden)* For this long from the first failure, with back-off
    /// (`task_publish_retry_timeout`).
    Window {
        /// The window, in milliseconds.
        ms: u64,
    },
    /// Airflow's rule: this many times, at once (`task_publish_max_retries`, read when the
    /// window is `0`).
    Count(RetryLimit),
}

impl PublishRetries {
    /// Whether a create may be retried after `retries` retries already, the first failure
    /// `since_first_failure_ms` ago.
    pub(crate) fn allows(self, retries: u32, since_first_failure_ms: u64) -> bool {
        match self {
            Self::Window { ms } => since_first_failure_ms < ms,
            Self::Count(limit) => limit.allows(retries),
        }
    }
}

/// The parsed form of a [`Config`]: what the executor's decisions read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    /// One scheduler loop (`scheduler_idle_sleep_time`): the batch window of creations.
    pub(crate) loop_ms: u64,
    /// Pods created per loop (`worker_pods_creation_batch_size`), at least 1.
    pub(crate) creation_batch_size: u32,
    /// Creates that may be unanswered at once: 1 unless `async_pod_creation`, then
    /// `pod_creation_max_concurrency` (the batch size when that is 0).
    pub(crate) creates_in_flight: usize,
    /// `scheduler_health_check_threshold`: peers' liveness, and the longest gap between two
    /// drives of a healthy executor.
    pub(crate) health_threshold_ms: u64,
    /// Between completed-pod adoptions (`orphaned_tasks_check_interval`), at least 1 ms.
    pub(crate) adoption_interval_ms: u64,
    /// Between zombie sweeps (`kpo_zombie_pod_cleanup_interval`), at least 1 ms.
    pub(crate) zombie_interval_ms: u64,
    /// `worker_pods_pending_timeout`; `None` when off (`0`).
    pub(crate) pending_timeout_ms: Option<u64>,
    /// Between pending-timeout checks, at least 1 ms.
    pub(crate) pending_check_ms: u64,
    /// `health_watch_stall_threshold`; `None` when off (`0`).
    pub(crate) watch_stall_ms: Option<u64>,
    /// `task_publish_retry_timeout`, or `task_publish_max_retries` when that is `0`.
    pub(crate) publish_retries: PublishRetries,
    /// `pod_launch_failure_db_retry_timeout`.
    pub(crate) db_retry_timeout_ms: u64,
    /// `pod_cleanup_max_retries`.
    pub(crate) cleanup_retries: RetryLimit,
    /// `pod_launch_failure_retries`: transparent requeues per try.
    pub(crate) launch_failure_retries: RetryLimit,
    /// The `airflow_version` label's value (`+` replaced by `-`, made label-safe), once.
    pub(crate) airflow_version_label: String,
}

impl Config {
    /// Checks every option and converts it once into what the decisions read.
    ///
    /// # Errors
    /// The first [`ConfigError`] found ([`Config::validate`]).
    pub(crate) fn settings(&self) -> Result<Settings, ConfigError> {
        self.validate()?;
        let publish_window = secs_to_ms(self.task_publish_retry_timeout);
        Ok(Settings {
            loop_ms: secs_to_ms(self.scheduler_idle_sleep_time),
            creation_batch_size: self.worker_pods_creation_batch_size,
            creates_in_flight: if self.async_pod_creation {
                let max = match self.pod_creation_max_concurrency {
                    0 => self.worker_pods_creation_batch_size,
                    n => n,
                };
                usize::try_from(max).unwrap_or(usize::MAX)
            } else {
                1
            },
            health_threshold_ms: secs_to_ms(self.scheduler_health_check_threshold),
            adoption_interval_ms: secs_to_ms(self.orphaned_tasks_check_interval).max(1),
            zombie_interval_ms: secs_to_ms(self.kpo_zombie_pod_cleanup_interval).max(1),
            pending_timeout_ms: Some(secs_to_ms(self.worker_pods_pending_timeout))
                .filter(|ms| *ms > 0),
            pending_check_ms: secs_to_ms(self.worker_pods_pending_timeout_check_interval).max(1),
            watch_stall_ms: Some(secs_to_ms(self.health_watch_stall_threshold))
                .filter(|ms| *ms > 0),
            publish_retries: if publish_window > 0 {
                PublishRetries::Window { ms: publish_window }
            } else {
                PublishRetries::Count(RetryLimit::from_airflow(self.task_publish_max_retries))
            },
            db_retry_timeout_ms: secs_to_ms(self.pod_launch_failure_db_retry_timeout),
            cleanup_retries: RetryLimit::from_airflow(self.pod_cleanup_max_retries),
            launch_failure_retries: RetryLimit::from_airflow(self.pod_launch_failure_retries),
            airflow_version_label: crate::label::safe_value(
                &self.airflow_version.replace('+', "-"),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airflow_sentinels_become_enums() {
        let s = Config {
            task_publish_retry_timeout: 0.0,
            task_publish_max_retries: -1,
            pod_cleanup_max_retries: 3,
            pod_launch_failure_retries: 0,
            worker_pods_pending_timeout: 0.0,
            ..Config::default()
        }
        .settings()
        .unwrap();
        assert_eq!(
            s.publish_retries,
            PublishRetries::Count(RetryLimit::Unlimited)
        );
        assert!(s.publish_retries.allows(1_000_000, u64::MAX));
        assert_eq!(s.cleanup_retries, RetryLimit::AtMost(3));
        assert!(s.cleanup_retries.allows(2) && !s.cleanup_retries.allows(3));
        assert!(s.launch_failure_retries.is_off());
        assert_eq!(s.pending_timeout_ms, None);
    }

    #[test]
    fn durations_are_milliseconds_and_windows_bound_retries() {
        let s = Config::default().settings().unwrap();
        assert_eq!(s.health_threshold_ms, 30_000);
        assert_eq!(s.adoption_interval_ms, 300_000);
        assert_eq!(s.publish_retries, PublishRetries::Window { ms: 600_000 });
        assert!(s.publish_retries.allows(u32::MAX, 599_999));
        assert!(!s.publish_retries.allows(0, 600_000));
        assert_eq!(s.cleanup_retries, RetryLimit::Unlimited);
    }

    #[test]
    fn an_invalid_config_has_no_settings() {
        let bad = Config {
            task_publish_max_retries: -2,
            ..Config::default()
        };
        assert!(matches!(
            bad.settings(),
            Err(ConfigError::BadRetryBudget { .. })
        ));
    }
}
