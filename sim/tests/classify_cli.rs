//! `podwarden-sim classify`, run as a process: the shipped SIGTERM-storm stream (snapshot), bad
//! lines, unreadable files and stdin.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::{text, BIN};

fn stream(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("streams")
        .join(name)
}

fn classify(file: &Path) -> Output {
    Command::new(BIN)
        .arg("classify")
        .arg(file)
        .output()
        .expect("podwarden-sim runs")
}

/// A file in the system temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("podwarden-sim-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("temp file written");
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One compact watch line of the shipped stream, by 1-based line number.
fn shipped_line(n: usize) -> String {
    std::fs::read_to_string(stream("sigterm-storm.jsonl"))
        .expect("shipped stream")
        .lines()
        .nth(n - 1)
        .expect("line")
        .to_string()
}

#[test]
fn sigterm_storm_stream_classifies_as_expected() {
    let out = classify(&stream("sigterm-storm.jsonl"));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let stdout = text(&out.stdout);
    // The rows, independent of the snapshot: a reviewer reads these first.
    let rows: Vec<String> = stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("each output line is JSON");
            match v.get("row") {
                Some(row) => format!("{} {}", v["event"].as_str().unwrap_or("?"), row),
                None => v["event"].as_str().unwrap_or("?").to_string(),
            }
        })
        .collect();
    assert_eq!(
        rows,
        [
            "MODIFIED 10", // load_orders Running
            "MODIFIED 6",  // transform_orders ContainerCreating
            "ADDED 6",     // extract_orders created
            "MODIFIED 6",  // extract_orders scheduled, ContainerCreating
            "ADDED 6",     // fit_model created
            "MODIFIED 5",  // fit_model ErrImagePull: fatal
            "MODIFIED 6",  // score_model[3] ImagePullBackOff: not fatal
            "MODIFIED 6",  // export_model ErrImagePull "pull QPS exceeded": not fatal
            "MODIFIED 10", // extract_orders Running
            "MODIFIED 6",  // transform_orders DisruptionTarget (drain)
            "MODIFIED 6",  // transform_orders deletionTimestamp
            "MODIFIED 7",  // transform_orders Failed, ContainerStatusUnknown 137, never started
            "DELETED 7",   // transform_orders gone, still Failed
            "MODIFIED 7",  // load_orders task failed, exit 1
            "MODIFIED 10", // build_report deleted while Running
            "DELETED 2",   // notify_owner relabelled away
            "BOOKMARK",
            "MODIFIED 7", // build_report Failed 143 after running
            "DELETED 7",  // build_report gone
            "MODIFIED 8", // extract_orders Succeeded
            "ERROR",      // 410 Expired
        ]
    );
    insta::assert_snapshot!("sigterm_storm", stdout);
}

#[test]
fn a_bad_line_is_reported_and_the_others_still_classified() {
    let input = format!(
        "{}\n{{\"type\":\"MODIFIED\",\"object\":{{\"kind\":\"Pod\"\n{}\n",
        shipped_line(1),
        shipped_line(20)
    );
    let file = TempFile::new("bad-line.jsonl", &input);
    let out = classify(&file.0);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with(r#"{"line":1,"event":"MODIFIED","#),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(r#"{"line":3,"event":"MODIFIED","#),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(r#""rule":"phase_succeeded","row":8,"outcome":"succeeded""#),
        "{}",
        lines[1]
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("line 2: invalid JSON"), "{stderr}");
    assert!(
        !stderr.contains("line 1:") && !stderr.contains("line 3:"),
        "{stderr}"
    );
}

#[test]
fn a_wrong_shape_is_a_bad_line_too() {
    let input = format!("{}\n{{\"type\":\"SYNC\",\"object\":{{}}}}\n\n{{\"type\":\"ADDED\",\"object\":{{\"kind\":\"Node\",\"metadata\":{{\"name\":\"n1\"}}}}}}\n", shipped_line(1));
    let file = TempFile::new("wrong-shape.jsonl", &input);
    let out = classify(&file.0);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).lines().count(), 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#"line 2: unknown watch event type "SYNC""#),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"line 4: expected kind Pod, found "Node""#),
        "{stderr}"
    );
}

#[test]
fn an_unreadable_file_exits_2_naming_the_file() {
    let missing = std::env::temp_dir().join("podwarden-sim-no-such-file.jsonl");
    let out = classify(&missing);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot read") && stderr.contains("podwarden-sim-no-such-file.jsonl"),
        "{stderr}"
    );
}

#[test]
fn stdin_and_pretty_printed_pods_are_accepted() {
    let event: serde_json::Value = serde_json::from_str(&shipped_line(12)).expect("JSON");
    let pretty_pod = serde_json::to_string_pretty(&event["object"]).expect("pretty");
    let mut child = Command::new(BIN)
        .args(["classify", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("podwarden-sim runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(pretty_pod.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("exit");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let v: serde_json::Value =
        serde_json::from_str(text(&out.stdout).trim()).expect("one JSON line");
    assert_eq!(v["line"], 1);
    assert_eq!(v["event"], "MODIFIED");
    assert_eq!(v["row"], 7);
    assert_eq!(v["failure_details"]["main_container_never_started"], true);
    assert_eq!(
        v["failure_details"]["disruption_reason"],
        "EvictionByEvictionAPI"
    );
}

#[test]
fn a_pod_list_is_classified_item_by_item() {
    let items: Vec<serde_json::Value> = [3, 14, 20]
        .iter()
        .map(|&n| {
            serde_json::from_str::<serde_json::Value>(&shipped_line(n)).expect("JSON")["object"]
                .clone()
        })
        .collect();
    let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "metadata": { "resourceVersion": "" }, "items": items });
    let file = TempFile::new(
        "list.json",
        &serde_json::to_string_pretty(&list).expect("pretty"),
    );
    let out = classify(&file.0);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let parsed: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let summary: Vec<(u64, u64, &str)> = parsed
        .iter()
        .map(|v| {
            (
                v["item"].as_u64().unwrap_or(0),
                v["row"].as_u64().unwrap_or(0),
                v["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [(1, 6, "ignore"), (2, 7, "failed"), (3, 8, "succeeded")]
    );
    assert!(parsed
        .iter()
        .all(|v| v["line"] == 1 && v["event"] == "MODIFIED"));
}

#[test]
fn without_a_subcommand_usage_is_printed_and_the_exit_code_is_2() {
    let out = Command::new(BIN).output().expect("podwarden-sim runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("classify"),
        "{}",
        text(&out.stderr)
    );
}
