//! [`Lab`]: the command line with your policies and invariants registered on it, and what
//! every command asks of it (loading a scenario with that code attached).

use crate::extensions::{CustomPolicy, Extensions, InvariantFactory};
use crate::scenario::{Scenario, ScenarioError, POLICIES};

use super::exit::EXIT_UNREADABLE;

/// The command line, with your policies and invariants registered on it.
#[derive(Debug, Clone)]
pub struct Lab {
    pub(super) program: String,
    pub(super) policies: std::collections::BTreeMap<String, CustomPolicy>,
    invariants: Option<InvariantFactory>,
}

impl Lab {
    /// The command line as `program` (its name in help text and reproduce commands), knowing
    /// the presets only.
    #[must_use]
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            policies: std::collections::BTreeMap::new(),
            invariants: None,
        }
    }

    /// Registers a policy of your own: `--policy NAME` (and `policy = "NAME"` in a scenario
    /// file or trace header) selects it. A later policy of the same name replaces it.
    #[must_use]
    pub fn policy(mut self, policy: CustomPolicy) -> Self {
        self.policies.insert(policy.name().to_string(), policy);
        self
    }

    /// Registers invariants of your own, checked in every world with the built-in ones.
    #[must_use]
    pub fn invariants(mut self, factory: InvariantFactory) -> Self {
        self.invariants = Some(factory);
        self
    }

    /// Selects `policy` (when given) and attaches this lab's code to `scenario`.
    pub(super) fn attach(&self, scenario: &mut Scenario, policy: Option<&str>) {
        if let Some(p) = policy {
            p.clone_into(&mut scenario.policy);
        }
        if let Some(known) = self.respelled(&scenario.policy) {
            eprintln!(
                "{}: note: policy `{}` is written `{known}` (names you type on the command line are kebab-case; TOML keys and values are snake_case)",
                self.program, scenario.policy
            );
            scenario.policy = known;
        }
        let mut ext = Extensions::new().with_program(self.program.clone());
        if let Some(mine) = self.policies.get(&scenario.policy) {
            ext = ext.with_policy(mine.clone());
        }
        if let Some(f) = &self.invariants {
            ext = ext.with_invariants(f.clone());
        }
        scenario.extensions = ext;
    }

    /// The known policy `name` means when it is written with the other separator
    /// (`legacy_adoption` for `legacy-adoption`); `None` for a known or an unknown name.
    fn respelled(&self, name: &str) -> Option<String> {
        let known = |n: &str| POLICIES.contains(&n) || self.policies.contains_key(n);
        if known(name) {
            return None;
        }
        [name.replace('_', "-"), name.replace('-', "_")]
            .into_iter()
            .find(|n| known(n))
    }

    /// Loads a scenario file, selects `policy` and attaches this lab's code.
    pub(super) fn load(&self, path: &str, policy: Option<&str>) -> Result<Scenario, u8> {
        Scenario::load_with(path, |s| self.attach(s, policy)).map_err(|e| {
            eprintln!("{}: {}", self.program, self.describe(&e));
            EXIT_UNREADABLE
        })
    }

    /// The policies `--policy` takes here: the presets, then this program's own.
    pub(super) fn known_policies(&self) -> String {
        let mut known = format!("presets: {}", POLICIES.join(", "));
        if !self.policies.is_empty() {
            let mine: Vec<&str> = self.policies.keys().map(String::as_str).collect();
            known += &format!("; {}'s own: {}", self.program, mine.join(", "));
        }
        known
    }

    /// An error as this program says it: an unknown policy lists the policies it knows.
    pub(super) fn describe(&self, e: &ScenarioError) -> String {
        match e {
            ScenarioError::UnknownPolicy(name) if !self.policies.is_empty() => {
                format!("unknown policy {name:?} ({})", self.known_policies())
            }
            other => other.to_string(),
        }
    }
}
