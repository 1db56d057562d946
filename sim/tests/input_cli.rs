//! What a user types as input: scenario files with mistakes (each reported at its line, all of
//! them, in the file's words), shipped scenarios by name from any directory, and a recorded
//! watch replayed under the id of its own owner.

mod support;

use support::{scratch_dir, sim_in, workspace_root};

const TWO_TYPOS: &str = "name = \"typos\"
schedulers = 2
[load]
taskz = 3
[[faults]]
kind = \"crash_scheduler\"
at_s = 100
scheduler = 0
restart_after_s = 10
[[faults]]
kind = \"partition\"
at_s = 10
schedulr = 0
duration_s = 5
[[faults]]
kind = \"partiton\"
at_s = 10
scheduler = 1
duration_s = 5
[[faults]]
kind = \"sigterm_storm\"
at_s = 10
pods = -1
";

#[test]
fn every_bad_fault_is_reported_at_its_own_line_with_a_suggestion() {
    let dir = scratch_dir("typos");
    std::fs::write(dir.join("typos.toml"), TWO_TYPOS).unwrap();
    let (code, stdout, stderr) = sim_in(&dir, &["run", "typos.toml"]);
    assert_eq!((code, stdout.as_str()), (Some(2), ""), "{stderr}");
    for expected in [
        "typos.toml:13:1: invalid scenario: faults[1] (partition): unknown field `schedulr`",
        "did you mean `scheduler`?",
        "typos.toml:16:1: invalid scenario: faults[2] (partiton): unknown fault kind `partiton`",
        "did you mean `partition`?",
        "typos.toml:23:1: invalid scenario: faults[3] (sigterm_storm).pods:",
        "expected a whole number ≥ 0",
        "typos.toml:4:1: invalid scenario: unknown field `taskz`",
        "did you mean `tasks`?",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("u32"), "no Rust type names: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn faults_after_the_default_heal_time_say_what_to_change() {
    let dir = scratch_dir("heal");
    let body = "schedulers = 2\n[[faults]]\nkind = \"crash_scheduler\"\nat_s = 900\nscheduler = 0\nrestart_after_s = 10\n\n[[faults]]\nkind = \"partition\"\nat_s = 1200.5\nscheduler = 5\nduration_s = 5\n";
    std::fs::write(dir.join("heal.toml"), body).unwrap();
    let (code, _, stderr) = sim_in(&dir, &["run", "heal.toml"]);
    assert_eq!(code, Some(2), "{stderr}");
    for expected in [
        "heal.toml:4:1: invalid scenario: faults[0].at_s is 900, allowed 0 to heal_s (600)",
        "add `heal_s = 900` (or more) at the top of the file",
        "heal.toml:10:1: invalid scenario: faults[1].at_s is 1200.5, allowed 0 to heal_s (600)",
        "add `heal_s = 1201` (or more)",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("CrashScheduler"), "{stderr}");
    // With heal_s written, the hint points at it.
    std::fs::write(dir.join("heal.toml"), format!("heal_s = 300\n{body}")).unwrap();
    let (_, _, stderr) = sim_in(&dir, &["run", "heal.toml"]);
    assert!(
        stderr.contains("raise heal_s (line 1) to 900 or more"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_misspelt_policy_in_a_file_is_placed_and_corrected() {
    let dir = scratch_dir("policy");
    std::fs::write(
        dir.join("p.toml"),
        "name = \"p\"\npolicy = \"legacy-adopton\"\n",
    )
    .unwrap();
    let (code, _, stderr) = sim_in(&dir, &["run", "p.toml"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("p.toml:2:1: invalid scenario: unknown policy \"legacy-adopton\"")
            && stderr.contains("did you mean `legacy-adoption`?"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_shipped_scenario_name_works_from_any_directory_and_a_file_of_that_path_wins() {
    let dir = scratch_dir("names");
    // An unknown policy fails right after loading: the name was found.
    let (code, _, stderr) = sim_in(&dir, &["run", "steady-ha", "--policy", "yolo"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("unknown policy \"yolo\""), "{stderr}");
    let (code, _, stderr) = sim_in(&dir, &["run", "steady-h"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot read steady-h") && stderr.contains("did you mean `steady-ha`?"),
        "{stderr}"
    );
    std::fs::write(dir.join("steady-ha"), "schedulers = 0\n").unwrap();
    let (code, _, stderr) = sim_in(&dir, &["run", "steady-ha"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("steady-ha:1:1: invalid scenario: schedulers is 0"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replaying_under_the_recorded_owners_id_is_refused_with_an_explanation() {
    let root = workspace_root();
    let stream = "sim/streams/sigterm-storm.jsonl";
    let (code, _, stderr) = sim_in(
        &root,
        &["replay", "--kube-watch", stream, "--scheduler-id", "5"],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--scheduler-id \"5\" owns the pods of 19 recorded events")
            && stderr.contains("The recording's owners are \"5\" (19 events)"),
        "{stderr}"
    );
    let (code, _, stderr) = sim_in(&root, &["replay", "--kube-watch", stream]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("owns the pods"), "{stderr}");
}
