//! Reading a scenario file, and the policy presets that turn a scenario's configuration into its
//! executors' configuration.

use podwarden_core::config::Preset;
use podwarden_core::Config;

use super::data::{Fault, Scenario, ScenarioError, POLICIES};
use super::diagnostics::{did_you_mean, plain, quoted, Locator, Problem, Section};

/// Applies a policy preset to a configuration: `default` is podwarden's; `airflow-10.25` and
/// `airflow-10.15` set every option in which podwarden differs from that Airflow release
/// ([`Preset`]); the others switch one decision back to Airflow's behaviour. The preset wins
/// over the scenario's `[config]` (it is how one world is run under several policies); a
/// `preset` key inside `[config]` is the other way round, a base its options override.
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
        other => match Preset::ALL.into_iter().find(|p| p.name() == other) {
            Some(release) => release.apply(&mut config),
            None => return Err(ScenarioError::UnknownPolicy(other.to_string())),
        },
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
    /// `path` may also be a shipped scenario's name (`steady-ha`, as `podwarden-sim list` shows
    /// it), read from the copy compiled in; a file of that path, if one exists, wins.
    ///
    /// # Errors
    /// [`ScenarioError`] naming the file and what is wrong: [`ScenarioError::InFile`] with every
    /// problem at its line and column (every bad fault, not only the first).
    pub fn load_with(path: &str, attach: impl FnOnce(&mut Self)) -> Result<Self, ScenarioError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(source) => match super::shipped::shipped(path) {
                Some(text) if !std::path::Path::new(path).exists() => text.to_string(),
                _ if source.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ScenarioError::NotFound {
                        path: path.into(),
                        source,
                    })
                }
                _ => {
                    return Err(ScenarioError::Read {
                        path: path.into(),
                        source,
                    })
                }
            },
        };
        let is_json = path.ends_with(".json");
        let parsed: Self = if is_json {
            serde_json::from_str(&text).map_err(|e| ScenarioError::Parse {
                path: path.into(),
                message: e.to_string(),
            })?
        } else {
            toml::from_str(&text).map_err(|e| explain_toml(path, &text, &e))?
        };
        let written_policy = parsed.policy.clone();
        let mut scenario = Self {
            source: Some(path.to_string()),
            ..parsed
        };
        attach(&mut scenario);
        scenario.validate().map_err(|e| {
            let locator = if is_json {
                Locator::default()
            } else {
                Locator::new(&text)
            };
            locate(path, &locator, &scenario, &written_policy, e)
        })?;
        Ok(scenario)
    }
}

/// Why a TOML file that is valid TOML is not a scenario: every bad `[[faults]]` entry at its
/// own line (serde stops at the first, and points at the first entry), else the deserializer's
/// own message with a "did you mean" for a misspelt key.
fn explain_toml(path: &str, text: &str, error: &toml::de::Error) -> ScenarioError {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        // Not TOML at all: the parser's message has the line and column.
        return ScenarioError::Parse {
            path: path.into(),
            message: error.to_string(),
        };
    };
    let locator = Locator::new(text);
    let faults = table
        .get("faults")
        .and_then(toml::Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let problems: Vec<Problem> = faults
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| {
            let e = entry.clone().try_into::<Fault>().err()?;
            Some(fault_problem(i, entry, e.message(), &locator))
        })
        .collect();
    if !problems.is_empty() {
        let mut problems = problems;
        // And what is wrong outside the faults, if anything: serde stops at one problem.
        let mut rest = table;
        rest.remove("faults");
        if let Err(e) = rest.try_into::<Scenario>() {
            let names = quoted(e.message());
            let typed = names.first().copied().unwrap_or_default();
            problems.insert(
                0,
                Problem {
                    at: locator.any_key(typed),
                    message: plain(e.message()),
                    hint: names
                        .split_first()
                        .and_then(|(typed, known)| did_you_mean(typed, known.iter().copied()))
                        .map(|near| format!("did you mean `{near}`?")),
                },
            );
        }
        return ScenarioError::InFile {
            path: path.into(),
            problems,
        };
    }
    let mut message = plain(&error.to_string());
    let names = quoted(error.message());
    if error.message().starts_with("unknown field") {
        if let Some(near) = names
            .split_first()
            .and_then(|(typed, known)| did_you_mean(typed, known.iter().copied()))
        {
            message = format!("{}\n    hint: did you mean `{near}`?", message.trim_end());
        }
    }
    ScenarioError::Parse {
        path: path.into(),
        message,
    }
}

/// What is wrong with the `index`-th fault, at its line.
fn fault_problem(index: usize, entry: &toml::Value, message: &str, locator: &Locator) -> Problem {
    let section = Section::Fault(index);
    let kind = entry.get("kind").and_then(toml::Value::as_str);
    let what = match kind {
        Some(kind) => format!("faults[{index}] ({kind})"),
        None => format!("faults[{index}]"),
    };
    let names = quoted(message);
    let header = locator.fault(index);
    let (typed, known) = names.split_first().map_or(("", &[][..]), |(t, k)| (*t, k));
    let near = did_you_mean(typed, known.iter().copied());
    if message.starts_with("unknown variant") {
        return Problem {
            at: locator.key(&section, "kind").or(header),
            message: format!("{what}: unknown fault kind `{typed}`"),
            hint: Some(match near {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("the fault kinds are {}", known.join(", ")),
            }),
        };
    }
    if message.starts_with("unknown field") {
        return Problem {
            at: locator.key(&section, typed).or(header),
            message: format!("{what}: unknown field `{typed}`"),
            hint: Some(match near {
                Some(near) => format!(
                    "did you mean `{near}`? (a {} fault has {})",
                    kind.unwrap_or("?"),
                    known.join(", ")
                ),
                None => format!(
                    "a {} fault has kind, {}",
                    kind.unwrap_or("?"),
                    known.join(", ")
                ),
            }),
        };
    }
    // A value of the wrong type: serde names the value, not its key; find the key by it.
    let key = entry.as_table().and_then(|t| {
        t.iter()
            .find(|(_, v)| !typed.is_empty() && v.to_string() == typed)
            .map(|(k, _)| k.clone())
    });
    let at = key
        .as_deref()
        .and_then(|k| locator.key(&section, k))
        .or(header);
    let what = match &key {
        Some(key) => format!("{what}.{key}"),
        None => what,
    };
    Problem {
        at,
        message: format!("{what}: {}", plain(message)),
        hint: None,
    }
}

/// Places every problem [`Scenario::validate`] found at its line, with a hint where one helps.
fn locate(
    path: &str,
    locator: &Locator,
    scenario: &Scenario,
    written_policy: &str,
    error: ScenarioError,
) -> ScenarioError {
    let errors = match error {
        ScenarioError::Several(errors) => errors,
        other => vec![other],
    };
    let problems = errors
        .into_iter()
        .map(|e| match e {
            ScenarioError::OutOfRange {
                field,
                value,
                allowed,
            } => Problem {
                at: locator.field(&field),
                hint: range_hint(&field, locator, scenario),
                message: format!("{field} is {value}, allowed {allowed}"),
            },
            ScenarioError::UnknownPolicy(name) => Problem {
                at: (name == written_policy)
                    .then(|| locator.key(&Section::Top, "policy"))
                    .flatten(),
                hint: did_you_mean(&name, POLICIES).map(|near| format!("did you mean `{near}`?")),
                message: e_text(&ScenarioError::UnknownPolicy(name)),
            },
            other => Problem {
                at: None,
                message: e_text(&other),
                hint: None,
            },
        })
        .collect();
    ScenarioError::InFile {
        path: path.into(),
        problems,
    }
}

/// An error's message without the `invalid scenario: ` every problem line starts with.
fn e_text(e: &ScenarioError) -> String {
    let text = e.to_string();
    text.strip_prefix("invalid scenario: ")
        .map_or(text.clone(), str::to_string)
}

/// What to change when a fault starts after `heal_s` (600 unless the file says otherwise).
fn range_hint(field: &str, locator: &Locator, scenario: &Scenario) -> Option<String> {
    let index: usize = field
        .strip_prefix("faults[")?
        .strip_suffix("].at_s")?
        .parse()
        .ok()?;
    let at = scenario.faults.get(index)?.at_s();
    if !(0.0..=super::limits::MAX_SPAN_S).contains(&at) {
        return None;
    }
    let needed = at.ceil();
    Some(match locator.key(&Section::Top, "heal_s") {
        Some(p) => format!(
            "no fault starts after heal_s; raise heal_s (line {}) to {needed} or more, or start the fault earlier",
            p.line
        ),
        None => format!(
            "no fault starts after heal_s, which is {} when the file does not set it; add `heal_s = {needed}` (or more) at the top of the file, before any [table], or start the fault earlier",
            Scenario::default().heal_s
        ),
    })
}
