//! `shrink`: a failing run reduced to a small world that breaks the same invariant.

use std::io;
use std::path::PathBuf;

use super::args::ShrinkArgs;
use super::exit::{EXIT_OK, EXIT_UNREADABLE};
use super::lab::Lab;
use super::output::{print_out, write_failed};
use crate::reproduce::shell_word;
use crate::scenario::Scenario;
use crate::sweep;
use crate::{runner, shrink};

/// The world to shrink: a trace's header, or a scenario file (with the swarm draw and policy).
pub(super) fn shrink_input(lab: &Lab, args: &ShrinkArgs) -> Result<(Scenario, u64), String> {
    let path = args.input.display().to_string();
    // A shipped scenario's name (no such file) is read from the copy compiled in.
    let shipped = !args.input.exists() && crate::scenario::shipped::shipped(&path).is_some();
    let file = match std::fs::File::open(&args.input) {
        Ok(file) => Some(file),
        Err(_) if shipped => None,
        Err(e) => return Err(format!("cannot read {}: {e}", args.input.display())),
    };
    if let Some(Ok((scenario, seed))) =
        file.map(|file| crate::replay::read_header(io::BufReader::new(file)))
    {
        if args.swarm || args.policy.is_some() || args.seed.is_some() {
            return Err("a trace names its world and seed: --seed, --swarm and --policy apply to a scenario file only".into());
        }
        let mut scenario = scenario;
        lab.attach(&mut scenario, None);
        return Ok((scenario, seed));
    }
    let mut scenario = Scenario::load_with(&path, |s| lab.attach(s, args.policy.as_deref()))
        .map_err(|e| e.to_string())?;
    let seed = args.seed.unwrap_or(scenario.seed);
    if args.swarm {
        scenario = sweep::swarm(&scenario, seed).0;
    }
    Ok((scenario, seed))
}

pub(super) fn run_shrink(lab: &Lab, args: &ShrinkArgs) -> u8 {
    let (scenario, seed) = match shrink_input(lab, args) {
        Ok(input) => input,
        Err(message) => {
            eprintln!("{} shrink: {message}", lab.program);
            return EXIT_UNREADABLE;
        }
    };
    let from = format!("{} seed {} ({})", scenario.name, seed, scenario.policy);
    let prefix = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("shrunk-{}-{seed}", scenario.name)));
    // The files are written after the (long) shrink: check where they go first.
    if let Some(dir) = prefix.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            eprintln!(
                "{} shrink: cannot write {}: {} is not a directory",
                lab.program,
                prefix.with_extension("toml").display(),
                dir.display()
            );
            return EXIT_UNREADABLE;
        }
    }
    let spec = shrink::ShrinkSpec {
        max_runs: args.max_runs,
        seeds_per_candidate: args.seeds_per_candidate,
    };
    let before = shrink::size_line(&scenario);
    let result = shrink::shrink(scenario, Some(seed), &spec, |step| {
        eprintln!("kept: {step}")
    });
    let mut shrunk = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{} shrink: {e}", lab.program);
            return EXIT_UNREADABLE;
        }
    };
    shrunk.scenario.name = prefix
        .file_name()
        .map_or_else(|| "shrunk".into(), |n| n.to_string_lossy().into_owned());
    shrunk.scenario.description = format!(
        "Shrunk by {} shrink from {from}: {} still fires",
        lab.program, shrunk.violation.invariant
    );
    let toml_path = prefix.with_extension("toml");
    let trace_path = prefix.with_extension("trace.jsonl");
    let written = shrink::to_minimal_toml(&shrunk.scenario)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            std::fs::write(&toml_path, text)
                .map_err(|e| format!("cannot write {}: {e}", toml_path.display()))
        })
        .and_then(|()| {
            runner::run(
                shrunk.scenario.clone(),
                Some(shrunk.seed),
                None,
                Some(&trace_path),
            )
            .map_err(|e| e.to_string())
        });
    if let Err(message) = written {
        eprintln!("{} shrink: {message}", lab.program);
        return EXIT_UNREADABLE;
    }
    let text = format!(
        "invariant   {invariant}\n\
         original    {from}: {before}\n\
         shrunk      seed {seed}: {size}\n\
         runs        {runs} ({kept} reductions kept)\n\
         detail      {detail}\n\
         scenario    {toml}\n\
         trace       {trace}\n\
         reproduce   {program} run {toml_word} --seed {seed} --policy {policy} && {program} replay {trace_word}\n",
        invariant = shrunk.violation.invariant,
        seed = shrunk.seed,
        size = shrink::size_line(&shrunk.scenario),
        runs = shrunk.runs,
        kept = shrunk.steps.len(),
        detail = shrunk.violation.detail,
        toml = toml_path.display(),
        trace = trace_path.display(),
        program = shell_word(&lab.program),
        toml_word = shell_word(&toml_path.display().to_string()),
        trace_word = shell_word(&trace_path.display().to_string()),
        policy = shell_word(&shrunk.scenario.policy),
    );
    if let Err(e) = print_out(&text) {
        return write_failed(&e);
    }
    EXIT_OK
}
