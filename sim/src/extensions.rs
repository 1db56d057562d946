//! Code of your own that a world runs with: a named policy (a preset plus rules of your own,
//! [`CustomPolicy`]), invariants ([`InvariantFactory`]), and the program that knows them.
//!
//! A [`Scenario`](crate::scenario::Scenario) carries them in its `extensions`, so every world
//! made from it (by a run, a sweep, a swarm draw, a shrink candidate) runs your policy and
//! checks your invariants without more plumbing. Scenario files and trace headers hold data
//! only: they name your policy (`policy = "no-oom-requeue"`), and a program that reads one back
//! attaches your code again ([`crate::cli::Lab`] does).

use std::sync::Arc;

use podwarden_core::policy::Policies;

use crate::custom::Invariant;

/// A policy of your own under a name: one of the presets (`podwarden-sim list` shows them)
/// plus [`Policies`], the rules you add on top.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomPolicy {
    name: String,
    preset: String,
    rules: Policies,
}

impl CustomPolicy {
    /// `rules` on top of podwarden's `default` preset, called `name` wherever a policy is named
    /// (`--policy`, reports, reproduce commands).
    #[must_use]
    pub fn new(name: impl Into<String>, rules: Policies) -> Self {
        Self {
            name: name.into(),
            preset: "default".into(),
            rules,
        }
    }

    /// Puts the rules on another preset (e.g. `airflow`); checked when a world is built.
    #[must_use]
    pub fn on_preset(mut self, preset: impl Into<String>) -> Self {
        self.preset = preset.into();
        self
    }

    /// Its name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The preset under the rules.
    #[must_use]
    pub fn preset(&self) -> &str {
        &self.preset
    }

    /// The rules.
    #[must_use]
    pub fn rules(&self) -> &Policies {
        &self.rules
    }
}

/// Makes a fresh set of your invariants for each world (an invariant keeps state, and every
/// world of a sweep runs on its own thread).
#[derive(Clone)]
pub struct InvariantFactory(Arc<dyn Fn() -> Vec<Box<dyn Invariant>> + Send + Sync>);

impl InvariantFactory {
    /// A factory calling `make` once per world.
    pub fn new(make: impl Fn() -> Vec<Box<dyn Invariant>> + Send + Sync + 'static) -> Self {
        Self(Arc::new(make))
    }

    /// A fresh set.
    #[must_use]
    pub fn make(&self) -> Vec<Box<dyn Invariant>> {
        (self.0)()
    }
}

impl std::fmt::Debug for InvariantFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InvariantFactory")
    }
}

/// Equality is identity: the same factory.
impl PartialEq for InvariantFactory {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// What of yours a scenario's worlds run with; empty by default. Never serialized.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Extensions {
    policy: Option<CustomPolicy>,
    invariants: Option<InvariantFactory>,
    program: Option<String>,
    drawn_by_swarm: bool,
    shrink_candidate: bool,
}

impl Extensions {
    /// Nothing of yours.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a policy of your own; it is used when the scenario's `policy` names it.
    #[must_use]
    pub fn with_policy(mut self, policy: CustomPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Adds invariants of your own, checked in every world with the built-in ones.
    #[must_use]
    pub fn with_invariants(mut self, factory: InvariantFactory) -> Self {
        self.invariants = Some(factory);
        self
    }

    /// Names the program that registers this code, for reproduce commands (default
    /// `podwarden-sim`, which knows none of it).
    #[must_use]
    pub fn with_program(mut self, program: impl Into<String>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// Marks the world as the swarm's draw over the file in its scenario's `source` (set by
    /// [`crate::sweep::swarm`]), so its reproduce command says `--swarm`.
    #[must_use]
    pub fn drawn_by_swarm_of_source(mut self) -> Self {
        self.drawn_by_swarm = true;
        self
    }

    /// Forgets that mark: for a world changed after the draw (a shrink candidate).
    pub(crate) fn not_drawn(mut self) -> Self {
        self.drawn_by_swarm = false;
        self
    }

    /// Marks a world `shrink` tries: its violations name no file and save none (shrink writes
    /// the world it keeps itself).
    pub(crate) fn shrink_candidate(mut self) -> Self {
        self.shrink_candidate = true;
        self
    }

    /// Whether this is a world `shrink` tries (see [`Self::shrink_candidate`]).
    pub(crate) fn is_shrink_candidate(&self) -> bool {
        self.shrink_candidate
    }

    /// Whether the world is the swarm's draw over its scenario's file.
    #[must_use]
    pub fn drawn_by_swarm(&self) -> bool {
        self.drawn_by_swarm
    }

    /// The custom policy, if any.
    #[must_use]
    pub fn policy(&self) -> Option<&CustomPolicy> {
        self.policy.as_ref()
    }

    /// The invariant factory, if any.
    #[must_use]
    pub fn invariants(&self) -> Option<&InvariantFactory> {
        self.invariants.as_ref()
    }

    /// The program reproduce commands name.
    #[must_use]
    pub fn program(&self) -> &str {
        self.program.as_deref().unwrap_or("podwarden-sim")
    }

    /// The preset and rules a policy name stands for: the custom policy's when it is the one
    /// named, else the name itself (a preset) and no rules.
    pub(crate) fn resolve<'a>(&'a self, name: &'a str) -> (&'a str, Option<&'a Policies>) {
        match &self.policy {
            Some(p) if p.name == name => (&p.preset, Some(&p.rules)),
            _ => (name, None),
        }
    }
}
