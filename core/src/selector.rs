//! Typed Kubernetes label selectors.
//!
//! One type serves the core (building the selectors it sends) and the simulator's API server
//! (evaluating them), so the two cannot disagree about what a selector means. Formatting keeps
//! the order the requirements were added in, which is how Airflow writes its selectors and what
//! its tests compare byte for byte.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::pod::PodPhase;

/// What a requirement demands of one label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key=value`: the label is present with this value.
    Equals(String),
    /// `key!=value`: the label is absent or has another value.
    NotEquals(String),
    /// `key in (a,b)`: the label is present with one of these values.
    In(Vec<String>),
    /// `key notin (a,b)`: the label is absent or has none of these values.
    NotIn(Vec<String>),
    /// `key`: the label is present.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
}

/// One comma-separated term of a selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// What the label's value must satisfy.
    pub op: Operator,
}

impl Requirement {
    /// Whether `labels` satisfy this requirement, with Kubernetes' semantics for absent keys.
    #[must_use]
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match &self.op {
            Operator::Equals(v) => value == Some(v),
            Operator::NotEquals(v) => value != Some(v),
            Operator::In(vs) => value.is_some_and(|x| vs.contains(x)),
            Operator::NotIn(vs) => value.is_none_or(|x| !vs.contains(x)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.key;
        match &self.op {
            Operator::Equals(v) => write!(f, "{k}={v}"),
            Operator::NotEquals(v) => write!(f, "{k}!={v}"),
            Operator::In(vs) => write!(f, "{k} in ({})", vs.join(",")),
            Operator::NotIn(vs) => write!(f, "{k} notin ({})", vs.join(",")),
            Operator::Exists => write!(f, "{k}"),
            Operator::DoesNotExist => write!(f, "!{k}"),
        }
    }
}

/// A conjunction of requirements; the empty selector matches everything.
///
/// ```
/// use std::collections::BTreeMap;
/// use podwarden_core::selector::LabelSelector;
///
/// let sel = LabelSelector::new()
///     .eq("kubernetes_executor", "True")
///     .not_in("airflow-worker", ["5", "7", "9"])
///     .ne("airflow_executor_done", "True");
/// assert_eq!(
///     sel.to_string(),
///     "kubernetes_executor=True,airflow-worker notin (5,7,9),airflow_executor_done!=True"
/// );
/// let labels: BTreeMap<String, String> =
///     [("kubernetes_executor".into(), "True".into()), ("airflow-worker".into(), "3".into())].into();
/// assert!(sel.matches(&labels)); // `!=` also matches a pod without the key
/// assert_eq!(sel.to_string().parse::<LabelSelector>().unwrap(), sel);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// The empty selector (matches every pod).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a requirement.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, op: Operator) -> Self {
        self.requirements.push(Requirement {
            key: key.into(),
            op,
        });
        self
    }

    /// Appends `key=value`.
    #[must_use]
    pub fn eq(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.with(key, Operator::Equals(value.into()))
    }

    /// Appends `key!=value`.
    #[must_use]
    pub fn ne(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.with(key, Operator::NotEquals(value.into()))
    }

    /// Appends `key in (values…)`, values in the order given.
    #[must_use]
    pub fn in_set<I, S>(self, key: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.with(
            key,
            Operator::In(values.into_iter().map(Into::into).collect()),
        )
    }

    /// Appends `key notin (values…)`, values in the order given.
    #[must_use]
    pub fn not_in<I, S>(self, key: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.with(
            key,
            Operator::NotIn(values.into_iter().map(Into::into).collect()),
        )
    }

    /// Appends `key` (the label exists).
    #[must_use]
    pub fn exists(self, key: impl Into<String>) -> Self {
        self.with(key, Operator::Exists)
    }

    /// Appends `!key` (the label does not exist).
    #[must_use]
    pub fn not_exists(self, key: impl Into<String>) -> Self {
        self.with(key, Operator::DoesNotExist)
    }

    /// The requirements, in the order they were added.
    #[must_use]
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether every requirement holds for `labels`.
    #[must_use]
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Why a selector string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectorError {
    /// A term between commas was empty (`a=b,,c`).
    #[error("empty requirement at position {0}")]
    EmptyRequirement(usize),
    /// A key was empty or contained characters a label key cannot have.
    #[error("invalid label key {0:?}")]
    InvalidKey(String),
    /// `in`/`notin` without a parenthesised value list, or unbalanced parentheses.
    #[error("malformed set in requirement {0:?}")]
    MalformedSet(String),
}

impl std::str::FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut sel = Self::new();
        if s.trim().is_empty() {
            return Ok(sel);
        }
        for (pos, term) in split_top_level(s)?.into_iter().enumerate() {
            let term = term.trim();
            if term.is_empty() {
                return Err(SelectorError::EmptyRequirement(pos));
            }
            sel.requirements.push(parse_requirement(term)?);
        }
        Ok(sel)
    }
}

impl TryFrom<String> for LabelSelector {
    type Error = SelectorError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<LabelSelector> for String {
    fn from(s: LabelSelector) -> Self {
        s.to_string()
    }
}

fn split_top_level(s: &str) -> Result<Vec<&str>, SelectorError> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(SelectorError::MalformedSet(s.to_string()));
                }
            }
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SelectorError::MalformedSet(s.to_string()));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/'))
}

fn key(k: &str) -> Result<String, SelectorError> {
    let k = k.trim();
    if valid_key(k) {
        Ok(k.to_string())
    } else {
        Err(SelectorError::InvalidKey(k.to_string()))
    }
}

fn parse_set(term: &str, rest: &str) -> Result<Vec<String>, SelectorError> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| SelectorError::MalformedSet(term.to_string()))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn parse_requirement(term: &str) -> Result<Requirement, SelectorError> {
    if let Some(k) = term.strip_prefix('!') {
        return Ok(Requirement {
            key: key(k)?,
            op: Operator::DoesNotExist,
        });
    }
    if let Some((k, v)) = term.split_once("!=") {
        return Ok(Requirement {
            key: key(k)?,
            op: Operator::NotEquals(v.trim().to_string()),
        });
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(Requirement {
            key: key(k)?,
            op: Operator::Equals(v.trim().to_string()),
        });
    }
    if let Some((k, rest)) = term.split_once(" notin ") {
        return Ok(Requirement {
            key: key(k)?,
            op: Operator::NotIn(parse_set(term, rest)?),
        });
    }
    if let Some((k, rest)) = term.split_once(" in ") {
        return Ok(Requirement {
            key: key(k)?,
            op: Operator::In(parse_set(term, rest)?),
        });
    }
    Ok(Requirement {
        key: key(term)?,
        op: Operator::Exists,
    })
}

/// A field selector of a pod list. The executor selects by one field, the pod's phase, so this
/// is the whole language it needs; written and read as Kubernetes spells it
/// (`status.phase!=Succeeded`), and matched here, so a simulated API server or a test selects
/// exactly as the executor asked.
///
/// ```
/// use podwarden_core::selector::FieldSelector;
/// use podwarden_core::PodPhase;
/// let sel: FieldSelector = "status.phase!=Succeeded".parse().unwrap();
/// assert_eq!(sel, FieldSelector::PhaseIsNot(PodPhase::Succeeded));
/// assert!(sel.matches(Some(PodPhase::Failed)) && !sel.matches(Some(PodPhase::Succeeded)));
/// assert!("spec.nodeName=a".parse::<FieldSelector>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum FieldSelector {
    /// `status.phase=<phase>`.
    PhaseIs(PodPhase),
    /// `status.phase!=<phase>`; a pod with no phase yet matches (its phase is empty).
    PhaseIsNot(PodPhase),
}

impl FieldSelector {
    /// Whether a pod in `phase` (`None`: not reported yet) is selected.
    #[must_use]
    pub fn matches(self, phase: Option<PodPhase>) -> bool {
        match self {
            Self::PhaseIs(p) => phase == Some(p),
            Self::PhaseIsNot(p) => phase != Some(p),
        }
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PhaseIs(p) => write!(f, "status.phase={}", p.as_str()),
            Self::PhaseIsNot(p) => write!(f, "status.phase!={}", p.as_str()),
        }
    }
}

/// A field selector this crate does not use (any field but `status.phase`, or a phase
/// Kubernetes does not name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported field selector {0:?}: only status.phase=<phase> and status.phase!=<phase>")]
pub struct FieldSelectorError(pub String);

impl std::str::FromStr for FieldSelector {
    type Err = FieldSelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let phase = |v: &str| {
            let p = PodPhase::from_k8s(v.trim());
            (p.as_str() == v.trim()).then_some(p)
        };
        let t = s.trim();
        let parsed = if let Some(v) = t.strip_prefix("status.phase!=") {
            phase(v).map(Self::PhaseIsNot)
        } else if let Some(v) = t
            .strip_prefix("status.phase==")
            .or_else(|| t.strip_prefix("status.phase="))
        {
            phase(v).map(Self::PhaseIs)
        } else {
            None
        };
        parsed.ok_or_else(|| FieldSelectorError(s.to_string()))
    }
}

impl From<FieldSelector> for String {
    fn from(f: FieldSelector) -> Self {
        f.to_string()
    }
}

impl TryFrom<String> for FieldSelector {
    type Error = FieldSelectorError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn formats_like_airflow() {
        let s = LabelSelector::new()
            .eq("airflow-worker", "123")
            .ne("airflow_executor_done", "True");
        assert_eq!(
            s.to_string(),
            "airflow-worker=123,airflow_executor_done!=True"
        );
        let s = LabelSelector::new()
            .exists("dag_id")
            .not_exists("x")
            .in_set("a", ["1", "2"]);
        assert_eq!(s.to_string(), "dag_id,!x,a in (1,2)");
        assert_eq!(LabelSelector::new().to_string(), "");
    }

    #[test]
    fn kubernetes_semantics_for_absent_keys() {
        let none = labels(&[]);
        assert!(LabelSelector::new().ne("k", "v").matches(&none));
        assert!(LabelSelector::new().not_in("k", ["v"]).matches(&none));
        assert!(!LabelSelector::new().eq("k", "v").matches(&none));
        assert!(!LabelSelector::new().in_set("k", ["v"]).matches(&none));
        assert!(!LabelSelector::new().exists("k").matches(&none));
        assert!(LabelSelector::new().not_exists("k").matches(&none));
        let kv = labels(&[("k", "v")]);
        assert!(!LabelSelector::new().ne("k", "v").matches(&kv));
        assert!(!LabelSelector::new().not_in("k", ["v", "w"]).matches(&kv));
        assert!(LabelSelector::new().in_set("k", ["w", "v"]).matches(&kv));
        assert!(LabelSelector::new().matches(&kv));
    }

    #[test]
    fn parses_what_it_formats_and_rejects_garbage() {
        for s in [
            "kubernetes_executor=True,airflow-worker notin (10,5,7,9),airflow_executor_done!=True",
            "a in (x,y),!b,c",
            "kubernetes_executor=True,airflow-worker!=modified,airflow_executor_done!=True",
        ] {
            let parsed: LabelSelector = s.parse().unwrap();
            assert_eq!(parsed.to_string(), s);
        }
        assert_eq!("a==b".parse::<LabelSelector>().unwrap().to_string(), "a=b");
        assert_eq!(
            "a=b,,c".parse::<LabelSelector>(),
            Err(SelectorError::EmptyRequirement(1))
        );
        assert!(matches!(
            "a in 1,2".parse::<LabelSelector>(),
            Err(SelectorError::MalformedSet(_))
        ));
        assert!(matches!(
            "a in (1".parse::<LabelSelector>(),
            Err(SelectorError::MalformedSet(_))
        ));
        assert!(matches!(
            "a b=c".parse::<LabelSelector>(),
            Err(SelectorError::InvalidKey(_))
        ));
    }

    #[test]
    fn serde_uses_the_string_form() {
        let s = LabelSelector::new().eq("a", "b").not_in("c", ["d"]);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"a=b,c notin (d)\"");
        assert_eq!(serde_json::from_str::<LabelSelector>(&json).unwrap(), s);
        assert!(serde_json::from_str::<LabelSelector>("\"a in (\"").is_err());
    }
}
