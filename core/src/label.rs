//! Label names the executor writes and reads, the reserved lists a pod template may not use
//! ([`RESERVED_LABELS`], [`RESERVED_ANNOTATIONS`]), [`safe_value`], the label-value normaliser,
//! and Kubernetes' rules for label keys and values.
//!
//! Label values must match `(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?` and be at most 63
//! characters. Identity that does not fit (long run ids, non-ASCII dag ids) goes into
//! annotations; labels carry only a normalised form used for selection.

use md5::{Digest, Md5};

/// Owner label: the scheduler job id that watches and manages the pod.
pub const AIRFLOW_WORKER: &str = "airflow-worker";
/// Set to `True` on every executor worker pod; adoption selects on it.
pub const KUBERNETES_EXECUTOR: &str = "kubernetes_executor";
/// Set to `True` on pods launched by the KubernetesPodOperator (zombie sweep candidates).
pub const KUBERNETES_POD_OPERATOR: &str = "kubernetes_pod_operator";
/// Set to `True` when the executor is finished with a pod but keeps it (`delete_worker_pods=False`).
pub const EXECUTOR_DONE: &str = "airflow_executor_done";
/// Set to `True` on revoke; the watch ignores such pods.
pub const POD_REVOKED: &str = "airflow_pod_revoked";
/// Label and annotation carrying the dag id.
pub const DAG_ID: &str = "dag_id";
/// Label and annotation carrying the task id.
pub const TASK_ID: &str = "task_id";
/// Label and annotation carrying the run id.
pub const RUN_ID: &str = "run_id";
/// Label and annotation carrying the try number.
pub const TRY_NUMBER: &str = "try_number";
/// Label and annotation carrying the map index (only written when `>= 0`).
pub const MAP_INDEX: &str = "map_index";
/// Label carrying the Airflow version the pod was built for.
pub const AIRFLOW_VERSION: &str = "airflow_version";
/// The value Airflow writes for boolean labels.
pub const TRUE: &str = "True";

/// Every label the executor writes on a pod or reads from one, so a pod template may not set
/// it ([`crate::PodTemplate::validate`] refuses it at `Submit`). The one list of this fact: a
/// label the core starts writing or selecting on belongs here.
///
/// | label | written | read |
/// |---|---|---|
/// | [`AIRFLOW_WORKER`] | at launch; adoption relabels | own watch and relist, orphan and completed-pod adoption, revoke of an untracked try |
/// | [`KUBERNETES_EXECUTOR`] | at launch | orphan and completed-pod adoption |
/// | [`AIRFLOW_VERSION`] | at launch | |
/// | [`DAG_ID`], [`TASK_ID`], [`RUN_ID`], [`TRY_NUMBER`], [`MAP_INDEX`] | at launch ([`crate::TaskKey::to_labels`]) | zombie sweep, revoke of an untracked try |
/// | [`EXECUTOR_DONE`] | on a finished pod that is kept | own watch and relist, adoption (`!=True`) |
/// | [`POD_REVOKED`] | on revoke | watch classification (row 1: the pod is ignored) |
/// | [`KUBERNETES_POD_OPERATOR`] | | zombie sweep (a worker pod carrying it would be swept) |
pub const RESERVED_LABELS: &[&str] = &[
    AIRFLOW_WORKER,
    KUBERNETES_EXECUTOR,
    AIRFLOW_VERSION,
    DAG_ID,
    TASK_ID,
    RUN_ID,
    TRY_NUMBER,
    MAP_INDEX,
    EXECUTOR_DONE,
    POD_REVOKED,
    KUBERNETES_POD_OPERATOR,
];

/// Annotation written on every created pod: how many transparent requeues the try had used when
/// this pod was launched.
pub const LAUNCH_ATTEMPT_ANNOTATION: &str = "podwarden/launch-attempt";

/// Every annotation the executor writes on a pod or reads from one, so a pod template may not
/// set it ([`crate::PodTemplate::validate`] refuses it at `Submit`).
///
/// | annotation | written | read |
/// |---|---|---|
/// | [`DAG_ID`], [`TASK_ID`], [`RUN_ID`], [`TRY_NUMBER`], [`MAP_INDEX`] | at launch ([`crate::TaskKey::to_annotations`]) | every watch event and list ([`crate::TaskKey::from_annotations`], the try a pod runs) |
/// | [`LAUNCH_ATTEMPT_ANNOTATION`] | at launch | orphan adoption (the requeue budget and the newest pod of a try) |
pub const RESERVED_ANNOTATIONS: &[&str] = &[
    DAG_ID,
    TASK_ID,
    RUN_ID,
    TRY_NUMBER,
    MAP_INDEX,
    LAUNCH_ATTEMPT_ANNOTATION,
];

/// Maximum length of the name part of a label or annotation key (after the optional `prefix/`).
const MAX_KEY_NAME_LEN: usize = 63;
/// Maximum length of a label or annotation key's prefix (a DNS-1123 subdomain).
const MAX_KEY_PREFIX_LEN: usize = 253;

/// Maximum length of a Kubernetes label value.
pub const MAX_LABEL_VALUE_LEN: usize = 63;
const HASH_LEN: usize = 9;
const PREFIX_LEN: usize = MAX_LABEL_VALUE_LEN - HASH_LEN - 1;

/// Normalises any string into a valid Kubernetes label value, following Airflow's
/// `make_safe_label_value` so that selectors built here match labels Airflow wrote.
///
/// The rule: drop leading and trailing characters that are not ASCII alphanumeric, drop every
/// character outside `[A-Za-z0-9_.-]`; if anything was dropped or the result is longer than 63,
/// keep its first 53 characters and append `-` plus the first 9 hex digits of the MD5 of the
/// *original* string, so distinct inputs stay distinct.
///
/// **Where we differ on purpose:** when nothing survives (`"___"`, `"影師嗎"`) Airflow returns
/// `-<hash>`, which starts with `-` and is rejected by the API server; we return `<hash>`. Every
/// value Airflow could have written on a real pod is therefore produced unchanged. Airflow's
/// value is [`safe_value_as`] with [`SanitisedToNothing::DashHash`]
/// (`Config::always_valid_label_values = false`).
///
/// ```
/// use podwarden_core::label::safe_value;
/// assert_eq!(safe_value("my_dag_id"), "my_dag_id");
/// assert_eq!(safe_value("with space"), "withspace-37fdaf3e3");
/// assert_eq!(safe_value("___"), "948a13f1e"); // Airflow: "-948a13f1e", an invalid label
/// ```
#[must_use]
pub fn safe_value(s: &str) -> String {
    safe_value_as(s, SanitisedToNothing::HashAlone)
}

/// What [`safe_value_as`] writes for a value of which nothing survives sanitising.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanitisedToNothing {
    /// The hash alone, a valid label value (podwarden).
    HashAlone,
    /// `-<hash>`, as Airflow's `make_safe_label_value` writes it: a value the API server refuses
    /// (`always_valid_label_values = false`).
    DashHash,
}

/// [`safe_value`], with Airflow's invalid `-<hash>` for a value of which nothing survives when
/// `nothing` says so; every other value is the same either way.
///
/// ```
/// use podwarden_core::label::{safe_value_as, SanitisedToNothing};
/// assert_eq!(safe_value_as("___", SanitisedToNothing::DashHash), "-948a13f1e");
/// assert_eq!(safe_value_as("my_dag", SanitisedToNothing::DashHash), "my_dag");
/// ```
#[must_use]
pub fn safe_value_as(s: &str, nothing: SanitisedToNothing) -> String {
    // Most ids are valid label values already: one pass over the bytes, one copy.
    if is_valid_value(s) {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let first = bytes.iter().position(u8::is_ascii_alphanumeric);
    let last = bytes.iter().rposition(u8::is_ascii_alphanumeric);
    // Only ASCII is kept, so filtering bytes is filtering characters: every byte of a multi-byte
    // character is 0x80 or above.
    let safe: Vec<u8> = match (first, last) {
        (Some(a), Some(b)) => bytes[a..=b]
            .iter()
            .copied()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
            .collect(),
        _ => Vec::new(),
    };
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Md5::digest(bytes);
    let prefix = &safe[..safe.len().min(PREFIX_LEN)];
    let mut out = String::with_capacity(prefix.len() + 1 + HASH_LEN);
    // `safe` is pure ASCII.
    out.extend(prefix.iter().map(|&c| char::from(c)));
    let dash = !prefix.is_empty() || nothing == SanitisedToNothing::DashHash;
    if dash {
        out.push('-');
    }
    for byte in digest.iter().take(HASH_LEN.div_ceil(2)) {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out.truncate(prefix.len() + usize::from(dash) + HASH_LEN);
    out
}

/// The last few ids that [`safe_value_as`] had to sanitise, with their safe values: the tries of
/// one DAG run are launched together, and its run id (`scheduled__2026-11-23T00:00:00+00:00`:
/// `:` and `+` are not allowed in a label value) would otherwise get its MD5 computed at every
/// launch. A memo of a pure function, so the values are the same with it or without it; a few
/// entries, replaced in turn (no order but arrival, no seed).
#[derive(Debug, Clone, Default)]
pub(crate) struct SafeValueMemo {
    /// `(id, how an empty result is written, its safe value)`.
    entries: Vec<(String, SanitisedToNothing, String)>,
    /// The entry the next miss replaces once the memo is full.
    next: usize,
}

impl SafeValueMemo {
    /// Ids remembered at once.
    const CAPACITY: usize = 8;

    /// [`safe_value_as`]`(id, nothing)`, from the memo when `id` was sanitised recently.
    pub(crate) fn safe_value_as(&mut self, id: &str, nothing: SanitisedToNothing) -> String {
        if is_valid_value(id) {
            return id.to_string();
        }
        if let Some((_, _, safe)) = self
            .entries
            .iter()
            .find(|(seen, how, _)| *how == nothing && seen == id)
        {
            return safe.clone();
        }
        let safe = safe_value_as(id, nothing);
        let entry = (id.to_string(), nothing, safe.clone());
        if self.entries.len() < Self::CAPACITY {
            self.entries.push(entry);
        } else if let Some(slot) = self.entries.get_mut(self.next) {
            *slot = entry;
            self.next = (self.next + 1) % Self::CAPACITY;
        }
        safe
    }
}

/// Whether `value` is a valid Kubernetes label value.
#[must_use]
pub fn is_valid_value(value: &str) -> bool {
    if value.len() > MAX_LABEL_VALUE_LEN {
        return false;
    }
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (None, None) => true,
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Whether `key` is a valid Kubernetes label key (a *qualified name*): an optional prefix and
/// `/`, then a name.
///
/// The name is 1 to 63 characters matching `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`. The
/// prefix is a DNS-1123 subdomain: at most 253 characters, lowercase alphanumerics, `-` and `.`,
/// each dot-separated part starting and ending with an alphanumeric. At most one `/`.
///
/// ```
/// use podwarden_core::label::is_valid_key;
/// assert!(is_valid_key("team"));
/// assert!(is_valid_key("example.com/team"));
/// assert!(!is_valid_key("Example.com/team")); // the prefix is lowercase
/// assert!(!is_valid_key("a/b/c"));
/// ```
#[must_use]
pub fn is_valid_key(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    prefix.is_none_or(is_dns1123_subdomain) && is_valid_key_name(name)
}

/// Whether `key` is a valid Kubernetes annotation key. The API server checks annotation keys
/// with the label-key rule ([`is_valid_key`]) after lowercasing them, so uppercase letters are
/// allowed in the prefix too (`Example.com/Owner`). ASCII lowercasing only: a non-ASCII key is
/// refused.
#[must_use]
pub fn is_valid_annotation_key(key: &str) -> bool {
    is_valid_key(&key.to_ascii_lowercase())
}

/// The name part of a key: 1–63 characters, alphanumeric at both ends, `-`, `_`, `.` inside.
fn is_valid_key_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(f), Some(l)) => {
            bytes.len() <= MAX_KEY_NAME_LEN
                && f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// A DNS-1123 subdomain: non-empty, at most 253 characters, dot-separated parts of lowercase
/// alphanumerics and `-`, each starting and ending with an alphanumeric.
fn is_dns1123_subdomain(s: &str) -> bool {
    let part_ok = |part: &str| {
        let bytes = part.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(f), Some(l)) => {
                is_lower_alnum(*f)
                    && is_lower_alnum(*l)
                    && bytes.iter().all(|c| is_lower_alnum(*c) || *c == b'-')
            }
            _ => false,
        }
    };
    !s.is_empty() && s.len() <= MAX_KEY_PREFIX_LEN && s.split('.').all(part_ok)
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_memo_gives_what_safe_value_as_gives_and_stays_small() {
        let mut memo = SafeValueMemo::default();
        let ids: Vec<String> = (0..20)
            .map(|i| format!("scheduled__2026-11-{i:02}T00:00:00+00:00"))
            .chain(["my_dag".to_string(), "___".to_string(), String::new()])
            .collect();
        for round in 0..3 {
            for id in &ids {
                for nothing in [SanitisedToNothing::HashAlone, SanitisedToNothing::DashHash] {
                    assert_eq!(
                        memo.safe_value_as(id, nothing),
                        safe_value_as(id, nothing),
                        "{id:?} {nothing:?} round {round}"
                    );
                    assert!(memo.entries.len() <= SafeValueMemo::CAPACITY);
                }
            }
        }
        // The same id under both ways of writing an empty result are two entries.
        let mut memo = SafeValueMemo::default();
        assert_eq!(
            memo.safe_value_as("___", SanitisedToNothing::HashAlone),
            "948a13f1e"
        );
        assert_eq!(
            memo.safe_value_as("___", SanitisedToNothing::DashHash),
            "-948a13f1e"
        );
        assert_eq!(memo.entries.len(), 2);
        // Valid ids are not remembered: they cost one copy either way.
        memo.safe_value_as("my_dag", SanitisedToNothing::HashAlone);
        assert_eq!(memo.entries.len(), 2);
    }

    use super::*;

    /// Vectors computed with Airflow's algorithm; the two
    /// invalid Airflow outputs are where we differ on purpose.
    #[test]
    fn matches_airflow_make_safe_label_value() {
        let long = format!("my_dag_id_{}", "a".repeat(64));
        let cases: Vec<(String, String)> = vec![
            ("my_dag_id".into(), "my_dag_id".into()),
            (long, format!("my_dag_id_{}-0ce114c45", "a".repeat(43))),
            ("5".into(), "5".into()),
            ("my.dag.id".into(), "my.dag.id".into()),
            ("-leading".into(), "leading-509408fb8".into()),
            ("trailing-".into(), "trailing-fe557a2cb".into()),
            ("with space".into(), "withspace-37fdaf3e3".into()),
            ("a!b".into(), "ab-da9a1e3d7".into()),
            ("my_dág_id".into(), "my_dg_id-7c334bc92".into()),
            ("x".repeat(63), "x".repeat(63)),
            ("x".repeat(64), format!("{}-c1bb4f81d", "x".repeat(53))),
            (
                "scheduled__2024-01-01T00:00:00+00:00".into(),
                "scheduled__2024-01-01T0000000000-654f198ec".into(),
            ),
            ("影師嗎".into(), "a168bce6d".into()),
            ("___".into(), "948a13f1e".into()),
            (String::new(), String::new()),
        ];
        for (input, want) in cases {
            let got = safe_value(&input);
            assert_eq!(got, want, "safe_value({input:?})");
            assert!(is_valid_value(&got), "{got:?} is not a valid label value");
        }
    }

    #[test]
    fn validator_rejects_what_kubernetes_rejects() {
        assert!(is_valid_value(""));
        assert!(is_valid_value("a-b_c.d"));
        assert!(!is_valid_value("-a"));
        assert!(!is_valid_value("a-"));
        assert!(!is_valid_value("a b"));
        assert!(!is_valid_value(&"x".repeat(64)));
    }

    #[test]
    fn key_validator_accepts_what_kubernetes_accepts() {
        let name63 = "n".repeat(63);
        let label253 = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61)
        );
        assert_eq!(label253.len(), 253);
        for ok in [
            "a",
            "Z",
            "9",
            "team",
            "Team_Name.v-2",
            "app.kubernetes.io/name",
            "example.com/a",
            "a-b.c-d/e",
            "0.1/x",
            name63.as_str(),
            &format!("example.com/{name63}"),
            &format!("{label253}/x"),
        ] {
            assert!(is_valid_key(ok), "{ok:?} should be accepted");
            assert!(is_valid_annotation_key(ok), "{ok:?} should be accepted");
        }
    }

    #[test]
    fn key_validator_rejects_what_kubernetes_rejects() {
        let label254 = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(62)
        );
        assert_eq!(label254.len(), 254);
        for bad in [
            // Empty key, empty name, empty prefix.
            String::new(),
            "example.com/".into(),
            "/name".into(),
            // A 64-character name, alone or after a prefix.
            "n".repeat(64),
            format!("example.com/{}", "n".repeat(64)),
            // Prefix too long, uppercase prefix, bad characters in the prefix.
            format!("{label254}/x"),
            "Example.com/x".into(),
            "exa_mple.com/x".into(),
            // More than one slash.
            "a/b/c".into(),
            // Leading or trailing dots and dashes, in the name and in the prefix's parts.
            ".a".into(),
            "a.".into(),
            "-a".into(),
            "a-".into(),
            "_a".into(),
            "a_".into(),
            ".example.com/x".into(),
            "example.com./x".into(),
            "example..com/x".into(),
            "-example.com/x".into(),
            "example-.com/x".into(),
            "example.com/-x".into(),
            "example.com/x.".into(),
            // Characters outside the alphabet.
            "a b".into(),
            "a:b".into(),
            "dág".into(),
        ] {
            assert!(!is_valid_key(&bad), "{bad:?} should be rejected");
            if bad != "Example.com/x" {
                assert!(!is_valid_annotation_key(&bad), "{bad:?} should be rejected");
            }
        }
        // Annotation keys are checked after lowercasing, label keys as written.
        assert!(is_valid_annotation_key("Example.com/Owner"));
        assert!(!is_valid_key("Example.com/Owner"));
    }

    #[test]
    fn reserved_names_are_distinct_valid_keys() {
        for list in [RESERVED_LABELS, RESERVED_ANNOTATIONS] {
            let distinct: std::collections::BTreeSet<&str> = list.iter().copied().collect();
            assert_eq!(distinct.len(), list.len(), "{list:?}");
            assert!(list.iter().all(|k| is_valid_key(k)), "{list:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn safe_value_is_always_valid_and_stable(s in "\\PC{0,120}") {
            let v = safe_value(&s);
            proptest::prop_assert!(is_valid_value(&v), "{:?} -> {:?}", s, v);
            proptest::prop_assert_eq!(safe_value(&s), v.clone());
            if is_valid_value(&s) {
                proptest::prop_assert_eq!(v, s);
            }
        }
    }
}
