//! Label names the executor writes and reads, and [`safe_value`], the label-value normaliser.
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
/// value Airflow could have written on a real pod is therefore produced unchanged.
///
/// ```
/// use podwarden_core::label::safe_value;
/// assert_eq!(safe_value("my_dag_id"), "my_dag_id");
/// assert_eq!(safe_value("with space"), "withspace-37fdaf3e3");
/// assert_eq!(safe_value("___"), "948a13f1e"); // Airflow: "-948a13f1e", an invalid label
/// ```
#[must_use]
pub fn safe_value(s: &str) -> String {
    let first = s.find(|c: char| c.is_ascii_alphanumeric());
    let last = s.rfind(|c: char| c.is_ascii_alphanumeric());
    let safe: String = match (first, last) {
        (Some(a), Some(b)) => s[a..=b]
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            .collect(),
        _ => String::new(),
    };
    if safe.len() <= MAX_LABEL_VALUE_LEN && safe == s {
        return safe;
    }
    let digest = Md5::digest(s.as_bytes());
    let mut hash = String::with_capacity(HASH_LEN + 1);
    for byte in digest.iter() {
        hash.push_str(&format!("{byte:02x}"));
        if hash.len() >= HASH_LEN {
            break;
        }
    }
    hash.truncate(HASH_LEN);
    // `safe` is pure ASCII, so byte slicing is character slicing.
    let prefix = &safe[..safe.len().min(PREFIX_LEN)];
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from `airflow-executor.md` §2.7, computed with Airflow's algorithm; the two
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
