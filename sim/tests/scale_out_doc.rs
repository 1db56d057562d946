//! The commands `docs/scale-out.md` runs are ones this command line has: the Job's shard
//! command (read from the manifest in the doc, with a small seed range in place of the
//! million) writes a JSON report per shard, and the doc's merge command adds them up.
//! The manifest itself is checked against Kubernetes' `Job` type in the core crate's
//! `core/tests/scale_out_manifest.rs` (feature `k8s-openapi`).

mod support;

use std::path::{Path, PathBuf};

use support::sim_in;

fn doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/scale-out.md");
    std::fs::read_to_string(path).expect("docs/scale-out.md")
}

/// The words of the shard command in the manifest's `args` block (`- >-` folds its lines into
/// one), up to the output redirection.
fn shard_command(doc: &str) -> Vec<String> {
    let start = doc.find("- >-").expect("the manifest's args block");
    let block: Vec<&str> = doc[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("              "))
        .map(str::trim)
        .collect();
    let folded = block.join(" ");
    let command = folded
        .split('>')
        .next()
        .expect("a command before the redirection");
    command
        .split_whitespace()
        .map(|w| w.trim_matches('"').to_string())
        .collect()
}

fn run(args: &[String], dir: &Path) -> (Option<i32>, String, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sim_in(dir, &args)
}

#[test]
fn the_docs_shard_and_merge_commands_run_as_written() {
    let doc = doc();
    let words = shard_command(&doc);
    assert_eq!(words.first().map(String::as_str), Some("podwarden-sim"));
    for flag in ["--swarm", "--seeds", "--shard", "--jobs", "--format"] {
        assert!(words.iter().any(|w| w == flag), "{flag} in {words:?}");
    }
    let dir: PathBuf =
        std::env::temp_dir().join(format!("podwarden-scale-out-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("results")).expect("temp dir");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/steady-ha.toml");

    // Two shards of two seeds in place of 1,000 shards of a million: the same flags, small values.
    for index in 0..2 {
        let args: Vec<String> = words[1..]
            .iter()
            .map(|w| match w.as_str() {
                "/scenarios/steady-ha.toml" => scenario.display().to_string(),
                "0..1000000" => "0..2".to_string(),
                "${JOB_COMPLETION_INDEX}/1000" => format!("{index}/2"),
                other => other.to_string(),
            })
            .collect();
        assert!(
            !args.iter().any(|a| a.contains('$') || a == "0..1000000"),
            "every placeholder of the doc's command is replaced: {args:?}"
        );
        let (code, stdout, stderr) = run(&args, &dir);
        assert!(
            matches!(code, Some(0 | 1)),
            "the doc's shard command runs (exit {code:?}): {stderr}"
        );
        serde_json::from_str::<serde_json::Value>(&stdout).expect("the shard writes JSON");
        std::fs::write(dir.join(format!("results/shard-{index}.json")), stdout).expect("written");
    }

    // The merge commands of section 3, with the shell's glob expanded.
    let merges: Vec<&str> = doc
        .lines()
        .filter(|l| l.starts_with("podwarden-sim sweep --merge"))
        .collect();
    assert_eq!(merges.len(), 2, "{merges:?}");
    for line in merges {
        let command = line
            .split('#')
            .next()
            .expect("a command")
            .split('>')
            .next()
            .expect("args");
        let args: Vec<String> = command
            .split_whitespace()
            .skip(1)
            .flat_map(|w| match w {
                "results/shard-*.json" => {
                    vec![
                        "results/shard-0.json".to_string(),
                        "results/shard-1.json".to_string(),
                    ]
                }
                other => vec![other.to_string()],
            })
            .collect();
        let (code, stdout, stderr) = run(&args, &dir);
        assert!(
            matches!(code, Some(0 | 1)),
            "`{line}` runs (exit {code:?}): {stderr}"
        );
        assert!(
            stdout.contains("seeds") || stdout.contains("\"seeds\""),
            "{stdout}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
