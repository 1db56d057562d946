//! Presets: a whole [`Config`] that reproduces one Airflow release's decisions, for running
//! Airflow's semantics (a seed that shows a bug of that release) beside podwarden's defaults.
//!
//! A preset is a starting point: options set after it override it (in Rust, assign fields of
//! [`Preset::config`]; in a file, `preset = "airflow-10.25"` among the options, whose other keys
//! win). Every difference between podwarden's defaults and a release is one option listed in
//! `docs/decisions.md` ("Differences from Airflow"), and each preset sets all of them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{AdoptionFallback, AdoptionScope, Config, RequeueDedupe};
use crate::liveness::LivenessRule;

/// An Airflow release whose decisions a [`Config`] can reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Preset {
    /// `apache-airflow-providers-cncf-kubernetes` 10.25 (the provider of Airflow 3.3.2): adoption
    /// of completed pods from schedulers not alive by their heartbeat only (#66400, since
    /// 10.17.1), and one transparent requeue of a try whose pod failed before its task started
    /// (#69058).
    #[serde(rename = "airflow-10.25")]
    Airflow10_25,
    /// Provider 10.15, before both fixes: completed pods of every other scheduler are adopted,
    /// alive or not (the thrash of #66396), and a pod failure before start costs a user retry.
    #[serde(rename = "airflow-10.15")]
    Airflow10_15,
}

impl Preset {
    /// Every preset, newest release first.
    pub const ALL: [Self; 2] = [Self::Airflow10_25, Self::Airflow10_15];

    /// The name a file or a command line uses (`airflow-10.25`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Airflow10_25 => "airflow-10.25",
            Self::Airflow10_15 => "airflow-10.15",
        }
    }

    /// The release's configuration: Airflow's defaults, with every podwarden difference set
    /// to the release's behaviour.
    #[must_use]
    pub fn config(self) -> Config {
        let mut config = Config::default();
        self.apply(&mut config);
        config
    }

    /// Sets every option in which podwarden's defaults differ from the release, leaving the
    /// others (namespace, batch size, intervals, …) as they are.
    pub fn apply(self, config: &mut Config) {
        // Differences of every release (`docs/decisions.md`, "Differences from Airflow").
        config.adoption_without_heartbeats = AdoptionFallback::ExcludeSelf;
        config.wait_for_unknown_owners = false;
        config.adopt_leftover_pods = false;
        config.pod_launch_failure_dedupe = RequeueDedupe::LastPod;
        config.pod_launch_failure_db_retry_timeout = 0.0;
        config.requeue_pods_deleted_while_pending = false;
        config.task_publish_retry_timeout = 0.0;
        config.requeue_failed_publishes = false;
        config.already_exists_means_created = false;
        config.delete_live_failed_pods = false;
        config.label_kept_failed_pods_done = false;
        config.retry_done_label_patch = false;
        config.fence_reports_after_stall = false;
        config.scheduler_liveness_rule = LivenessRule::WrittenTimestamp;
        config.relist_after_watch_expiry = false;
        config.report_before_pod_cleanup = false;
        config.always_valid_label_values = false;
        // What tells the releases apart.
        match self {
            Self::Airflow10_25 => {
                config.adoption_scope = AdoptionScope::DeadOnly;
                config.pod_launch_failure_retries = 1;
            }
            Self::Airflow10_15 => {
                config.adoption_scope = AdoptionScope::AllOthers;
                config.pod_launch_failure_retries = 0;
            }
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A preset name that is not one of [`Preset::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown preset `{0}`: the presets are airflow-10.25 and airflow-10.15")]
pub struct UnknownPreset(pub String);

impl FromStr for Preset {
    type Err = UnknownPreset;

    fn from_str(s: &str) -> Result<Self, UnknownPreset> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s || p.name().replace('-', "_") == s)
            .ok_or_else(|| UnknownPreset(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_differ_only_where_the_releases_do() {
        let new = Preset::Airflow10_25.config();
        let old = Preset::Airflow10_15.config();
        assert_eq!(new.adoption_scope, AdoptionScope::DeadOnly);
        assert_eq!(old.adoption_scope, AdoptionScope::AllOthers);
        assert_eq!(
            (
                new.pod_launch_failure_retries,
                old.pod_launch_failure_retries
            ),
            (1, 0)
        );
        let same = Config {
            adoption_scope: new.adoption_scope,
            pod_launch_failure_retries: new.pod_launch_failure_retries,
            ..old.clone()
        };
        assert_eq!(same, new);
        assert_ne!(new, Config::default());
        new.validate().unwrap();
        old.validate().unwrap();
    }

    #[test]
    fn names_round_trip_and_a_wrong_one_is_refused() {
        for p in Preset::ALL {
            assert_eq!(p.name().parse::<Preset>(), Ok(p));
            assert_eq!(p.to_string(), p.name());
        }
        assert_eq!("airflow_10.25".parse::<Preset>(), Ok(Preset::Airflow10_25));
        let err = "airflow".parse::<Preset>().unwrap_err();
        assert!(err.to_string().contains("airflow-10.25"), "{err}");
    }

    #[test]
    fn a_file_names_a_preset_and_its_own_keys_win() {
        let c: Config =
            toml::from_str("preset = \"airflow-10.25\"\nadoption_scope = \"declared_dead\"")
                .unwrap();
        assert_eq!(c.adoption_scope, AdoptionScope::DeclaredDead);
        assert!(!c.requeue_failed_publishes);
        let bad = toml::from_str::<Config>("preset = \"airflow\"")
            .unwrap_err()
            .to_string();
        assert!(bad.contains("unknown preset `airflow`"), "{bad}");
        let typo = toml::from_str::<Config>("preset = \"airflow-10.15\"\nadoption_scop = 1")
            .unwrap_err()
            .to_string();
        assert!(typo.contains("unknown field `adoption_scop`"), "{typo}");
        let not_text = toml::from_str::<Config>("preset = 10")
            .unwrap_err()
            .to_string();
        assert!(not_text.contains("preset must be a string"), "{not_text}");
    }
}
