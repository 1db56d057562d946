//! Labels and pod names: Airflow's `test_make_safe_label_value` and `test_create_pod_id`.

use podwarden::command::ApiCall;
use podwarden::label::{is_valid_value, safe_value};
use podwarden::launch::pod_name;
use podwarden::{CommandKind, PodRef, TaskKey};

use crate::common::*;
use crate::support::*;

/// DNS-1123 subdomain, Airflow's `test_create_pod_id` regex
/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`, at most 253 characters.
fn is_dns1123_subdomain(s: &str) -> bool {
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|seg| {
            let b = seg.as_bytes();
            match (b.first(), b.last()) {
                (Some(f), Some(l)) => {
                    alnum(f) && alnum(l) && b.iter().all(|c| alnum(c) || *c == b'-')
                }
                _ => false,
            }
        })
}

/// Dag/task ids of the kind Airflow's naming tests throw at the helpers: unicode, punctuation,
/// empty, 1400 characters, then 100 pseudo-random ones (fixed seed).
fn tricky_ids() -> Vec<(String, String)> {
    let mut ids: Vec<(String, String)> = [
        ("my_dag_id", "my_task_id"),
        ("MyDag", "MyTask"),
        ("my.dag.id", "my.task.id"),
        ("-leading", "trailing-"),
        ("with space", "tab\there"),
        ("a!b", "c@d#e$f%"),
        ("my_dág_id", "tâsk_ïd"),
        ("影師嗎", "タスク"),
        ("🙂", "🚀🚀"),
        ("___", "---"),
        ("..", "--.."),
        ("", "task"),
        ("dag", ""),
        ("5", "6"),
        ("scheduled__2024-01-01T00:00:00+00:00", "x"),
        ("UPPER_CASE_DAG", "lower.case-task"),
    ]
    .iter()
    .map(|(d, t)| ((*d).to_string(), (*t).to_string()))
    .collect();
    ids.push(("a".repeat(1400), "b".repeat(1400)));
    ids.push(("影".repeat(1400), "-".repeat(1400)));
    ids.push((format!("my_dag_id_{}", "a".repeat(64)), "t".repeat(64)));
    const POOL: &[char] = &[
        'a', 'z', 'A', 'Z', '0', '9', '_', '-', '.', ' ', '!', '/', ':', '+', '\t', 'é', 'ß', '影',
        '師', '😀', 'Ω',
    ];
    let mut state: u64 = 0x5eed_1234_abcd_0001;
    let mut next = move |bound: usize| -> usize {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(state >> 33).expect("31 bits fit") % bound
    };
    for _ in 0..100 {
        let mut word = |max_len: usize| -> String {
            (0..next(max_len)).map(|_| POOL[next(POOL.len())]).collect()
        };
        let dag = word(120);
        let task = word(120);
        ids.push((dag, task));
    }
    ids
}

/// Follows Airflow's `test_make_safe_label_value` (§10 case 1).
/// Label values are Airflow's for the test vectors, always ≤ 63 characters and valid (Airflow's
/// own validity check is vacuous; this one is not), and are what the executor writes on the pod.
/// Differs on purpose: where nothing survives the clean-up (`"___"`, `"影師嗎"`) Airflow returns
/// `-<hash>`, an invalid label; podwarden returns `<hash>`.
#[test]
fn test_make_safe_label_value() {
    assert_eq!(safe_value("my_dag_id"), "my_dag_id");
    let long = format!("my_dag_id_{}", "a".repeat(64));
    let expected = format!("my_dag_id_{}-0ce114c45", "a".repeat(43));
    assert_eq!(safe_value(&long), expected);
    assert_eq!(safe_value("___"), "948a13f1e", "Airflow: -948a13f1e");
    for (dag, task) in tricky_ids() {
        for s in [&dag, &task] {
            let v = safe_value(s);
            assert!(v.chars().count() <= 63, "{s:?} -> {v:?}");
            assert!(
                is_valid_value(&v),
                "{s:?} -> {v:?} is not a valid label value"
            );
        }
    }

    // The executor writes the safe form as the label and the raw id as the annotation.
    let mut h = Harness::new(ported_config());
    let k = TaskKey::new(long.clone(), "task", "run_id", 1);
    let cmds = h.submit(&k);
    only_create(&cmds);
    let CommandKind::Api(ApiCall::CreatePod { manifest }) = &cmds[0].kind else {
        unreachable!()
    };
    assert_eq!(manifest.labels["dag_id"], expected);
    assert_eq!(manifest.labels["task_id"], "task");
    assert_eq!(manifest.annotations["dag_id"], long);
    assert!(
        manifest.labels.values().all(|v| is_valid_value(v)),
        "{:?}",
        manifest.labels
    );
}

/// Follows Airflow's `test_create_pod_id` (§10 case 2).
/// Every pod name is a lowercase DNS-1123 subdomain of at most 253 (in fact 63) characters that
/// starts with the slug of `dag_id-task_id`, and it is the name the executor creates. Differs on
/// purpose: the suffix is a hash of the scheduler id, the key and the executor's launch counter,
/// not 8 random characters, so the same inputs give the same name and every launch a new one.
#[test]
fn test_create_pod_id() {
    for (dag, task) in tricky_ids() {
        let k = TaskKey::new(dag, task, "run_id", 1);
        let name = pod_name(SCHEDULER, &k, 0);
        assert!(is_dns1123_subdomain(&name), "{k:?} -> {name:?}");
        assert_eq!(name, name.to_lowercase());
        assert!(name.len() <= 63, "{name}");
        assert_eq!(name, pod_name(SCHEDULER, &k, 0), "deterministic");
        assert_ne!(
            name,
            pod_name(SCHEDULER, &k, 1),
            "a new launch gets a new name"
        );
    }
    let readable = pod_name(SCHEDULER, &TaskKey::new("MyDag", "My_Task", "run_id", 1), 0);
    assert!(readable.starts_with("mydag-my-task-"), "{readable}");
    assert_eq!(readable.len(), "mydag-my-task-".len() + 8, "{readable}");

    let k = TaskKey::new("影師嗎 my dag", "a".repeat(1400), "run_id", 1);
    let first = created(&Harness::new(ported_config()).submit(&k));
    assert_eq!(first, [PodRef::new("default", pod_name(SCHEDULER, &k, 0))]);
    assert!(is_dns1123_subdomain(&first[0].name), "{}", first[0].name);
    let again = created(&Harness::new(ported_config()).submit(&k));
    assert_eq!(again, first, "deterministic: same inputs, same pod name");
    let other = created(&Harness::with_id(ported_config(), "6").submit(&k));
    assert_eq!(other.len(), 1);
    assert_ne!(
        other[0].name, first[0].name,
        "another scheduler's pod for the same try has another name"
    );
}
