//! [`WorldBuilder`]: a world built in Rust, for tests and property tests of your own policies.

use podwarden_core::Config;

use crate::scenario::{Fault, Scenario, ScenarioError};
use crate::trace::Trace;
use crate::world::World;

/// Builds a [`World`] step by step, starting from [`Scenario::default`].
///
/// ```
/// use podwarden_sim::scenario::Fault;
/// use podwarden_sim::WorldBuilder;
///
/// let outcome = WorldBuilder::new()
///     .schedulers(3)
///     .tasks(200)
///     .minutes(10.0)
///     .fault(Fault::CrashScheduler { at_s: 120.0, scheduler: 0, restart_after_s: 30.0 })
///     .seed(42)
///     .build()
///     .unwrap()
///     .run();
/// assert!(outcome.violation.is_none(), "{:?}", outcome.violation);
/// // The crashed scheduler's completed pods were taken over and cleaned up.
/// assert!(outcome.summary.owner_patches() > 0);
/// ```
#[derive(Debug, Clone)]
pub struct WorldBuilder {
    scenario: Scenario,
    seed: Option<u64>,
}

impl Default for WorldBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl WorldBuilder {
    /// A builder for the default scenario (1 scheduler, 100 tasks over 10 minutes).
    #[must_use]
    pub fn new() -> Self {
        Self {
            scenario: Scenario {
                name: "built".into(),
                ..Scenario::default()
            },
            seed: None,
        }
    }

    /// Starts from an existing scenario (e.g. one loaded with [`Scenario::load`]).
    #[must_use]
    pub fn from_scenario(scenario: Scenario) -> Self {
        Self {
            scenario,
            seed: None,
        }
    }

    /// Names the world (used in reports).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.scenario.name = name.into();
        self
    }

    /// Number of schedulers.
    #[must_use]
    pub fn schedulers(mut self, n: u32) -> Self {
        self.scenario.schedulers = n;
        self
    }

    /// Number of tasks arriving over the load duration.
    #[must_use]
    pub fn tasks(mut self, n: u32) -> Self {
        self.scenario.load.tasks = n;
        self
    }

    /// Load duration and heal time, in minutes.
    #[must_use]
    pub fn minutes(mut self, minutes: f64) -> Self {
        self.scenario.duration_s = minutes * 60.0;
        self.scenario.heal_s = minutes * 60.0;
        self
    }

    /// Adds a scheduled fault.
    #[must_use]
    pub fn fault(mut self, fault: Fault) -> Self {
        self.scenario.faults.push(fault);
        self
    }

    /// The policy preset (see [`crate::scenario::POLICIES`]).
    #[must_use]
    pub fn policy(mut self, preset: impl Into<String>) -> Self {
        self.scenario.policy = preset.into();
        self
    }

    /// The executors' configuration (before the preset is applied).
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.scenario.config = config;
        self
    }

    /// Changes anything else in the scenario.
    #[must_use]
    pub fn with(mut self, change: impl FnOnce(&mut Scenario)) -> Self {
        change(&mut self.scenario);
        self
    }

    /// The seed (default: the scenario's).
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The scenario built so far.
    #[must_use]
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Builds the world, hashing its trace without writing it.
    ///
    /// # Errors
    /// [`ScenarioError`] if the scenario is invalid.
    pub fn build(self) -> Result<World, ScenarioError> {
        World::new(self.scenario, self.seed, Trace::hashing())
    }

    /// Builds the world with a trace sink of your choice.
    ///
    /// # Errors
    /// [`ScenarioError`] if the scenario is invalid.
    pub fn build_with_trace(self, trace: Trace) -> Result<World, ScenarioError> {
        World::new(self.scenario, self.seed, trace)
    }
}
