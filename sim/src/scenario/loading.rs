//! Reading a scenario file, and the policy presets that turn a scenario's configuration into its
//! executors' configuration.

use podwarden_core::Config;

use super::data::{Scenario, ScenarioError};

/// Applies a policy preset to a configuration: `default` is podwarden's; the others switch one
/// (or, for `airflow`, every) decision back to Airflow's behaviour.
///
/// # Errors
/// [`ScenarioError::UnknownPolicy`].
pub fn apply_policy(name: &str, mut config: Config) -> Result<Config, ScenarioError> {
    use podwarden_core::adoption::AdoptionScope;
    use podwarden_core::liveness::LivenessRule;
    use podwarden_core::requeue::RequeueDedupe;
    match name {
        "default" => {}
        "legacy-adoption" => config.adoption_scope = AdoptionScope::AllOthers,
        "legacy-dedupe" => {
            config.pod_launch_failure_dedupe = RequeueDedupe::LastPod;
            config.label_kept_failed_pods_done = false;
        }
        "no-requeue" => config.pod_launch_failure_retries = 0,
        "timestamp-liveness" => config.scheduler_liveness_rule = LivenessRule::WrittenTimestamp,
        "airflow" => {
            config.adoption_scope = AdoptionScope::AllOthers;
            config.adoption_without_heartbeats =
                podwarden_core::adoption::AdoptionFallback::ExcludeSelf;
            config.pod_launch_failure_dedupe = RequeueDedupe::LastPod;
            config.pod_launch_failure_db_retry_timeout = 0.0;
            config.task_publish_retry_timeout = 0.0;
            config.adopt_leftover_pods = false;
            config.delete_live_failed_pods = false;
            config.fence_reports_after_stall = false;
            config.label_kept_failed_pods_done = false;
            config.scheduler_liveness_rule = LivenessRule::WrittenTimestamp;
        }
        other => return Err(ScenarioError::UnknownPolicy(other.to_string())),
    }
    Ok(config)
}

impl Scenario {
    /// The configuration its executors run with: `config` under the policy's preset (a custom
    /// policy's preset, when `policy` names the one in `extensions`).
    ///
    /// # Errors
    /// [`ScenarioError::UnknownPolicy`].
    pub fn executor_config(&self) -> Result<Config, ScenarioError> {
        let (preset, _) = self.extensions.resolve(&self.policy);
        apply_policy(preset, self.config.clone())
    }

    /// Reads a scenario file (TOML, or JSON if the name ends in `.json`).
    ///
    /// # Errors
    /// [`ScenarioError`] naming the file and what is wrong.
    pub fn load(path: &str) -> Result<Self, ScenarioError> {
        Self::load_with(path, |_| {})
    }

    /// Reads a scenario file like [`Scenario::load`], letting `attach` change it before it is
    /// validated: to add code of your own to its [`Scenario::extensions`] (a file can name a
    /// policy of yours, which only your code makes valid) or override its policy.
    ///
    /// # Errors
    /// [`ScenarioError`] naming the file and what is wrong.
    pub fn load_with(path: &str, attach: impl FnOnce(&mut Self)) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.into(),
            source,
        })?;
        let parsed: Self = if path.ends_with(".json") {
            serde_json::from_str(&text).map_err(|e| ScenarioError::Parse {
                path: path.into(),
                message: e.to_string(),
            })?
        } else {
            toml::from_str(&text).map_err(|e| ScenarioError::Parse {
                path: path.into(),
                message: e.to_string(),
            })?
        };
        let mut scenario = Self {
            source: Some(path.to_string()),
            ..parsed
        };
        attach(&mut scenario);
        scenario.validate()?;
        Ok(scenario)
    }
}
