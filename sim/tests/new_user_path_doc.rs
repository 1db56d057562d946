//! `docs/new-user-path.md` runs as written: its scenario is written to a fresh directory, then
//! every `podwarden-sim` line of its command block runs there, in order (later lines read the
//! files earlier ones wrote), and exits as the doc says: 1 for a line marked `# exits 1`, 0 for
//! every other.

mod support;

use std::path::Path;

use support::{scratch_dir, sim_in};

fn doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/new-user-path.md");
    std::fs::read_to_string(path).expect("docs/new-user-path.md")
}

/// The lines of the doc's first fenced block of `language` that follows `after`.
fn block<'a>(doc: &'a str, after: &str, language: &str) -> Vec<&'a str> {
    let from = doc.find(after).expect("the section");
    let fence = format!("```{language}\n");
    let start = from + doc[from..].find(&fence).expect("the block") + fence.len();
    let len = doc[start..].find("```").expect("the block's end");
    doc[start..start + len].lines().collect()
}

#[test]
fn every_command_of_the_new_user_path_runs_as_written() {
    let doc = doc();
    let dir = scratch_dir("new-user-path");
    let scenario = block(&doc, "## 2. Your own scenario", "toml").join("\n");
    std::fs::write(dir.join("my-first.toml"), scenario).expect("write the scenario");
    let commands: Vec<&str> = block(&doc, "## 3. Run, compare", "sh")
        .into_iter()
        .filter(|l| l.starts_with("podwarden-sim "))
        .collect();
    assert!(commands.len() >= 10, "{commands:?}");
    for line in commands {
        let (command, expected) = match line.split_once("# exits ") {
            Some((command, code)) => (command, code.trim().parse::<i32>().expect("an exit code")),
            None => (line, 0),
        };
        let args: Vec<&str> = command.split_whitespace().skip(1).collect();
        let (code, out, err) = sim_in(&dir, &args);
        assert_eq!(
            code,
            Some(expected),
            "`{line}` exited {code:?}\nstdout:\n{out}\nstderr:\n{err}"
        );
    }
    // What the doc says the steps show.
    let (_, out, _) = sim_in(&dir, &["run", "my-first.toml"]);
    assert!(
        out.contains("tasks                    300 (300 succeeded"),
        "{out}"
    );
    assert!(out.contains("fault: drain_node of node 1"), "{out}");
    assert!(out.contains("from live owners       0 (thrash)"), "{out}");
    assert!(dir.join("my-first.svg").exists());
    std::fs::remove_dir_all(&dir).ok();
}
