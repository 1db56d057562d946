//! The documentation names what exists: every configuration option is in `docs/config.md`, and
//! every test that `docs/decisions.md` or `docs/verification.md` cites as proof is a real test.

use std::fs;
use std::path::Path;

fn read(path: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn config_md_documents_every_option() {
    let doc = read("docs/config.md");
    let toml = toml::to_string(&podwarden::Config::default()).expect("config serializes");
    let keys: Vec<&str> = toml
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim()))
        .collect();
    assert!(keys.len() >= 20, "{keys:?}");
    for key in keys {
        assert!(
            doc.contains(&format!("`{key}`")),
            "docs/config.md does not document `{key}`"
        );
    }
}

#[test]
fn decisions_md_cites_only_real_tests() {
    assert_cites_only_real_tests("docs/decisions.md", 60);
}

#[test]
fn verification_md_cites_only_real_tests() {
    assert_cites_only_real_tests("docs/verification.md", 14);
}

/// Every snake_case name in backticks in `doc_path` is a test function (or a `prefix_…` family
/// of them), unless it is a known non-test word; at least `min_cited` are cited.
fn assert_cites_only_real_tests(doc_path: &str, min_cited: usize) {
    let doc = read(doc_path);
    let mut sources = String::new();
    for dir in ["tests", "core/src", "sim/src", "sim/tests"] {
        read_sources(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
            &mut sources,
        );
    }
    let toml = toml::to_string(&podwarden::Config::default()).expect("config serializes");
    let options: Vec<&str> = toml
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim()))
        .collect();
    // Names in backticks that are not tests: labels, values, and Airflow's own functions.
    let not_tests = [
        "airflow_executor_done",
        "airflow_pod_revoked",
        "kubernetes_executor",
        "kubernetes_pod_operator",
        "observed_change",
        "written_timestamp",
        "all_others",
        "dead_only",
        "declared_dead",
        "exclude_self",
        "clock_step",
        "exactly_once_accounting",
        "no_thrash",
        "requeue_bounded",
        "stall_detected",
        "every_pod",
        "last_pod",
        "make_safe_label_value",
        "collect_pod_failure_details",
        "process_status",
        "queued_by",
        "queued_by_job_id",
        "task_queued_timeout",
        "multi_namespace_mode",
        "multi_namespace_mode_namespace_list",
        "not_driven",
        "watch_stalled",
        "launch_stalled",
        "try_number",
        // Invariant names.
        "no_retry_for_prestart_failure",
        "no_double_execution",
        "bounded_core_state",
        "no_lost_task",
        "no_leaked_pod",
    ];
    let mut cited = 0;
    for word in doc.split('`') {
        let name = word
            .rsplit("::")
            .next()
            .unwrap_or(word)
            .trim_end_matches('…');
        let snake = name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
        if !snake
            || name.starts_with('_')
            || name.matches('_').count() < 2
            || options.contains(&name)
            || not_tests.contains(&name)
        {
            continue;
        }
        // A test function, or a case of a table of cases (its name, quoted, in the table).
        if word.ends_with('…') {
            // `test_x_…`: a family of tests sharing the prefix.
            assert!(
                sources.contains(&format!("fn {name}")) || sources.contains(&format!("\"{name}")),
                "{doc_path} cites `{word}`, which matches no test"
            );
        } else {
            assert!(
                sources.contains(&format!("fn {name}("))
                    || sources.contains(&format!("\"{name}\"")),
                "{doc_path} cites `{word}`, which is no test"
            );
        }
        cited += 1;
    }
    assert!(cited >= min_cited, "{doc_path}: only {cited} tests cited");
}

/// Appends every `.rs` file under `dir`, its subdirectories included, to `sources`.
fn read_sources(dir: &Path, sources: &mut String) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            read_sources(&path, sources);
        } else if path.extension().is_some_and(|e| e == "rs") {
            sources.push_str(&fs::read_to_string(path).expect("source"));
        }
    }
}
