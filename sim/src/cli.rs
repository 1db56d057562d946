//! The command line (`podwarden-sim`), as a library: [`Lab`] runs it, and a program of your own
//! can register policies and invariants of its own on it and get the whole command line for
//! them (`run`, `compare`, `sweep`, `shrink`, `replay`, `check-determinism`), with reproduce
//! commands that name that program.
//!
//! ```no_run
//! use std::sync::Arc;
//! use podwarden_core::policy::{FailureContext, Policies, RequeuePolicy};
//! use podwarden_sim::cli::Lab;
//! use podwarden_sim::extensions::CustomPolicy;
//!
//! #[derive(Debug)]
//! struct NoRequeueAfterOom;
//! impl RequeuePolicy for NoRequeueAfterOom {
//!     fn may_requeue(&self, f: &FailureContext<'_>) -> bool {
//!         f.details.container_reason() != Some("OOMKilled")
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     // my-lab compare sim/scenarios/node-drain.toml --policy default --policy no-oom-requeue
//!     Lab::new("my-lab")
//!         .policy(CustomPolicy::new(
//!             "no-oom-requeue",
//!             Policies::new().requeue(Arc::new(NoRequeueAfterOom)),
//!         ))
//!         .main()
//! }
//! ```
//!
//! ```text
//! podwarden-sim run SCENARIO [--seed N] [--policy P] [--trace FILE] [--swarm] [--plot FILE.svg]
//! podwarden-sim compare SCENARIO --policy A --policy B [--seed N] [--plot FILE.svg]
//! podwarden-sim sweep SCENARIO [--seeds A..B] [--jobs N] [--swarm] [--policy P] [--shard i/n]
//! podwarden-sim sweep --merge FILE… [--allow-partial]
//! podwarden-sim replay TRACE | --kube-watch FILE
//! podwarden-sim check-determinism SCENARIO [--seed N]
//! podwarden-sim shrink TRACE | SCENARIO [--seed N] [--swarm] [--policy P] [--out PREFIX]
//! podwarden-sim list
//! podwarden-sim classify FILE     # FILE may be `-` for stdin
//! ```
//!
//! Every command's `--help` has the rest; `docs/simulator.md` the details.
//!
//! Exit codes: 0 when all went well; 1 when an invariant was violated or a run livelocked
//! (`run`, `compare`, `sweep`, `replay`) or some events could not be read (`classify`, the good
//! ones are still printed); 2 when an input cannot be read or is out of range, an output (a
//! file, standard output) cannot be written, or the command line is wrong. A closed pipe on
//! standard output ends a command quietly with its own verdict.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::extensions::{CustomPolicy, Extensions, InvariantFactory};
use crate::scenario::Scenario;
use crate::sweep::{self, Shard, SweepReport, SweepSpec};
use crate::{classify, runner, shrink};
use clap::{Args, Parser, Subcommand, ValueEnum};
use clap::{CommandFactory, FromArgMatches};

/// Exit code: everything read and processed.
const EXIT_OK: u8 = 0;
/// Exit code: some lines (or list items) could not be read; the others were processed.
const EXIT_BAD_LINES: u8 = 1;
/// Exit code: the input cannot be read at all (clap uses 2 for usage errors too).
const EXIT_UNREADABLE: u8 = 2;

/// Tools around the podwarden executor core.
#[derive(Debug, Parser)]
#[command(name = "podwarden-sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One subcommand each.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario and check every invariant; prints a summary.
    Run(RunArgs),
    /// Run one scenario with two policies on the same seed and print them side by side.
    Compare(CompareArgs),
    /// List the shipped scenarios.
    List,
    /// Run many seeds of a scenario on every core; `--merge` combines shards' JSON results.
    Sweep(SweepArgs),
    /// Re-run the world a trace's header describes and compare every line; reports the first
    /// divergence exactly.
    Replay(ReplayArgs),
    /// Run a seed twice in this process and twice in fresh processes; all four trace hashes
    /// must be equal.
    CheckDeterminism(CheckArgs),
    /// Reduce a failing run (a trace, or a scenario and seed) to a small world that breaks the
    /// same invariant; writes it as PREFIX.toml plus PREFIX.trace.jsonl.
    Shrink(ShrinkArgs),
    /// Classify every event of a pod watch stream with Airflow's watch table (rows 1–11).
    ///
    /// FILE is JSON Lines (`{"type":…,"object":…}` per line), a single Pod or watch event
    /// (possibly pretty-printed), a List/PodList, or pretty-printed watch events one after the
    /// other (`kubectl get pods -w -o json --output-watch-events`). Prints one JSON object per
    /// event on stdout; unreadable lines are reported on stderr as `line N: …`.
    Classify(ClassifyArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The scenario file (TOML or JSON), e.g. sim/scenarios/sigterm-storm.toml.
    #[arg(value_name = "SCENARIO")]
    scenario: String,
    /// Seed (default: the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Policy preset (default: the scenario's): default, airflow, legacy-adoption,
    /// legacy-dedupe, no-requeue, timestamp-liveness.
    #[arg(long)]
    policy: Option<String>,
    /// Write the JSON Lines trace here.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Draw every knob of the world from the seed, exactly as `sweep --swarm` does for that seed,
    /// so a swarm failure can be rerun with a trace.
    #[arg(long)]
    swarm: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Also draw the run as an SVG timeline here (the run then goes past a violation, so the
    /// picture covers it all; the verdict is still the first violation).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct SweepArgs {
    /// The scenario file (not needed with --merge).
    #[arg(value_name = "SCENARIO", required_unless_present = "merge")]
    scenario: Option<String>,
    /// Seed range, `A..B` (B excluded).
    #[arg(long, default_value = "0..100")]
    seeds: String,
    /// Worker threads (default: every core; at least 1, at most 4 per core: more is capped,
    /// with a note).
    #[arg(long)]
    jobs: Option<usize>,
    /// Run only shard i of n (`i/n`), for spreading a sweep over machines.
    #[arg(long)]
    shard: Option<String>,
    /// Draw every knob of the world from the seed (swarm testing).
    #[arg(long)]
    swarm: bool,
    /// Policy preset (default: the scenario's).
    #[arg(long)]
    policy: Option<String>,
    /// Output format (json is what --merge reads).
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Merge these JSON sweep results instead of running. They must be shards of one sweep
    /// (same scenario, policy, swarm flag, seed range and shard count), each given once.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    merge: Vec<PathBuf>,
    /// With --merge: merge even if some shards are missing (they are named on stderr) instead
    /// of failing.
    #[arg(long, requires = "merge")]
    allow_partial: bool,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// A trace written by `run --trace FILE`.
    #[arg(value_name = "TRACE", required_unless_present = "kube_watch")]
    trace: Option<PathBuf>,
    /// Instead: a pod watch stream recorded from a real cluster (`kubectl get pods -w -o json
    /// --output-watch-events`, or the API's JSON Lines), fed through one executor; prints its
    /// decisions per event as JSON Lines, then a summary line.
    #[arg(long, value_name = "FILE", conflicts_with = "trace")]
    kube_watch: Option<PathBuf>,
    /// With --kube-watch: the replaying executor's scheduler id (it takes the recorded pods over
    /// from their owners, so it must differ from theirs).
    #[arg(long, default_value = "podwarden-replay", requires = "kube_watch")]
    scheduler_id: String,
    /// With --kube-watch: what the DB answers about a try. `infer`: RUNNING if the stream showed
    /// its main container started, else QUEUED.
    #[arg(long, value_enum, default_value = "infer", requires = "kube_watch")]
    db_state: DbState,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DbState {
    Infer,
    Queued,
    Running,
    None,
}

#[derive(Debug, Args)]
struct ShrinkArgs {
    /// A trace written by `run --trace FILE` (its header names the world and seed), or a
    /// scenario file.
    #[arg(value_name = "TRACE_OR_SCENARIO")]
    input: PathBuf,
    /// Seed, for a scenario file (default: the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// For a scenario file: draw the world from the seed as `sweep --swarm` does.
    #[arg(long)]
    swarm: bool,
    /// For a scenario file: the policy preset (default: the scenario's).
    #[arg(long)]
    policy: Option<String>,
    /// Write PREFIX.toml and PREFIX.trace.jsonl (default: shrunk-NAME-SEED).
    #[arg(long, value_name = "PREFIX")]
    out: Option<PathBuf>,
    /// Most world runs to spend.
    #[arg(long, default_value_t = 6000)]
    max_runs: usize,
    /// Seeds tried per candidate world (the current one and the next ones).
    #[arg(long, default_value_t = 16)]
    seeds_per_candidate: u64,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The scenario file.
    #[arg(value_name = "SCENARIO")]
    scenario: String,
    /// Seed (default: the scenario's).
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// The scenario file.
    #[arg(value_name = "SCENARIO")]
    scenario: String,
    /// Two policy presets, in order.
    #[arg(long, num_args = 1, required = true)]
    policy: Vec<String>,
    /// Seed (default: the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Also draw both runs as SVG timelines, one above the other, on one time axis.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ClassifyArgs {
    /// The input file, or `-` for standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// The command line, with your policies and invariants registered on it.
#[derive(Debug, Clone)]
pub struct Lab {
    program: String,
    policies: std::collections::BTreeMap<String, CustomPolicy>,
    invariants: Option<InvariantFactory>,
}

impl Lab {
    /// The command line as `program` (its name in help text and reproduce commands), knowing
    /// the presets only.
    #[must_use]
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            policies: std::collections::BTreeMap::new(),
            invariants: None,
        }
    }

    /// Registers a policy of your own: `--policy NAME` (and `policy = "NAME"` in a scenario
    /// file or trace header) selects it. A later policy of the same name replaces it.
    #[must_use]
    pub fn policy(mut self, policy: CustomPolicy) -> Self {
        self.policies.insert(policy.name().to_string(), policy);
        self
    }

    /// Registers invariants of your own, checked in every world with the built-in ones.
    #[must_use]
    pub fn invariants(mut self, factory: InvariantFactory) -> Self {
        self.invariants = Some(factory);
        self
    }

    /// Runs the command line on this process's arguments.
    #[must_use]
    pub fn main(&self) -> ExitCode {
        ExitCode::from(self.run(std::env::args_os()))
    }

    /// Runs the command line on `args` (the first is the program's name, as in `argv`) and
    /// returns the exit code; output goes to this process's stdout and stderr.
    pub fn run<I, T>(&self, args: I) -> u8
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let cmd = Cli::command().name(self.program.clone());
        let parsed = cmd
            .try_get_matches_from(args)
            .and_then(|m| Cli::from_arg_matches(&m));
        let cli = match parsed {
            Ok(cli) => cli,
            Err(e) => {
                // Help and version go to stdout with 0; usage errors to stderr with 2.
                let _ = e.print();
                return u8::try_from(e.exit_code()).unwrap_or(EXIT_UNREADABLE);
            }
        };
        match cli.command {
            Command::Classify(args) => run_classify(self, &args),
            Command::Run(args) => run_scenario(self, &args),
            Command::Compare(args) => run_compare(self, &args),
            Command::List => run_list(self),
            Command::Sweep(args) => run_sweep(self, &args),
            Command::Replay(args) => run_replay(self, &args),
            Command::CheckDeterminism(args) => run_check(self, &args),
            Command::Shrink(args) => run_shrink(self, &args),
        }
    }

    /// Selects `policy` (when given) and attaches this lab's code to `scenario`.
    fn attach(&self, scenario: &mut Scenario, policy: Option<&str>) {
        if let Some(p) = policy {
            p.clone_into(&mut scenario.policy);
        }
        let mut ext = Extensions::new().with_program(self.program.clone());
        if let Some(mine) = self.policies.get(&scenario.policy) {
            ext = ext.with_policy(mine.clone());
        }
        if let Some(f) = &self.invariants {
            ext = ext.with_invariants(f.clone());
        }
        scenario.extensions = ext;
    }

    /// Loads a scenario file, selects `policy` and attaches this lab's code.
    fn load(&self, path: &str, policy: Option<&str>) -> Result<Scenario, u8> {
        Scenario::load_with(path, |s| self.attach(s, policy)).map_err(|e| {
            eprintln!("{}: {e}", self.program);
            EXIT_UNREADABLE
        })
    }
}

/// Reads FILE (or stdin for `-`) as UTF-8 text.
fn read_input(file: &PathBuf) -> Result<String, String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        Ok(text)
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
    }
}

fn run_classify(lab: &Lab, args: &ClassifyArgs) -> u8 {
    let input = match read_input(&args.file) {
        Ok(text) => text,
        Err(message) => {
            eprintln!("{} classify: {message}", lab.program);
            return EXIT_UNREADABLE;
        }
    };
    let results = classify::classify_input(&input, &classify::default_fatal_reasons());
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut bad = 0usize;
    for result in &results {
        match result {
            Ok(event) => {
                if let Err(e) = writeln!(out, "{}", event.to_json_line()) {
                    return write_failed(&e);
                }
            }
            Err(error) => {
                // Keep stdout and stderr in input order when both go to the same terminal.
                if let Err(e) = out.flush() {
                    return write_failed(&e);
                }
                eprintln!("{error}");
                bad += 1;
            }
        }
    }
    if let Err(e) = out.flush() {
        return write_failed(&e);
    }
    if bad > 0 {
        eprintln!(
            "{} classify: {bad} of {} events could not be read",
            lab.program,
            results.len()
        );
        EXIT_BAD_LINES
    } else {
        EXIT_OK
    }
}

/// Writes `text` to standard output and flushes it, so that an error (a full disk) is seen
/// here and not lost when the process exits.
fn print_out(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Creates an output file before the work that fills it, so that a path that cannot be
/// written fails at once rather than after a long run.
fn create_output(path: &std::path::Path) -> Result<std::fs::File, String> {
    std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes `text` to a file made by [`create_output`].
fn fill_output(mut file: std::fs::File, path: &std::path::Path, text: &str) -> Result<(), String> {
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A closed pipe (`… | head`) is a normal end; anything else is reported.
fn write_failed(e: &io::Error) -> u8 {
    write_failed_with(e, EXIT_OK)
}

/// A closed pipe (`… | head`) keeps the command's own verdict (`code`); any other write error
/// is reported.
fn write_failed_with(e: &io::Error, code: u8) -> u8 {
    if e.kind() == io::ErrorKind::BrokenPipe {
        code
    } else {
        eprintln!("podwarden-sim: cannot write to standard output: {e}");
        EXIT_UNREADABLE
    }
}

/// Exit code: an invariant was violated.
const EXIT_VIOLATION: u8 = 1;

fn run_scenario(lab: &Lab, args: &RunArgs) -> u8 {
    // As `sweep` does: the policy first, then the seed's draw over it.
    let mut scenario = match lab.load(&args.scenario, args.policy.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if args.swarm {
        let seed = args.seed.unwrap_or(scenario.seed);
        let (drawn, knobs) = sweep::swarm(&scenario, seed);
        eprintln!("swarm: {knobs}");
        scenario = drawn;
    }
    let plot = match args.plot.as_deref().map(create_output).transpose() {
        Ok(file) => file,
        Err(e) => {
            eprintln!("{} run: {e}", lab.program);
            return EXIT_UNREADABLE;
        }
    };
    let result = match (&args.plot, plot) {
        (Some(svg), Some(file)) => {
            runner::run_plotted(scenario, args.seed, None, args.trace.as_deref())
                .map_err(|e| e.to_string())
                .and_then(|(report, timeline)| {
                    fill_output(file, svg, &crate::plot::to_svg(&[&timeline]))?;
                    Ok(report)
                })
        }
        _ => {
            runner::run(scenario, args.seed, None, args.trace.as_deref()).map_err(|e| e.to_string())
        }
    };
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{} run: {e}", lab.program);
            return EXIT_UNREADABLE;
        }
    };
    let text = match args.format {
        Format::Text => runner::to_text(&report),
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => json + "\n",
            Err(e) => {
                eprintln!("{} run: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        },
    };
    let verdict = if report.outcome.violation.is_some() {
        EXIT_VIOLATION
    } else {
        EXIT_OK
    };
    if let Err(e) = print_out(&text) {
        return write_failed_with(&e, verdict);
    }
    verdict
}

fn run_compare(lab: &Lab, args: &CompareArgs) -> u8 {
    if args.policy.len() != 2 {
        eprintln!(
            "{} compare: give exactly two --policy options, got {}",
            lab.program,
            args.policy.len()
        );
        return EXIT_UNREADABLE;
    }
    let scenario = match lab.load(&args.scenario, None) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let plot = match args.plot.as_deref().map(create_output).transpose() {
        Ok(file) => file,
        Err(e) => {
            eprintln!("{} compare: {e}", lab.program);
            return EXIT_UNREADABLE;
        }
    };
    let mut reports = Vec::new();
    let mut timelines = Vec::new();
    for policy in &args.policy {
        let mut scenario = scenario.clone();
        lab.attach(&mut scenario, Some(policy));
        let result = if args.plot.is_some() {
            runner::run_plotted(scenario, args.seed, None, None).map(|(r, t)| {
                timelines.push(t);
                r
            })
        } else {
            runner::run(scenario, args.seed, None, None)
        };
        match result {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("{} compare: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        }
    }
    if let (Some(svg), Some(file)) = (&args.plot, plot) {
        let all: Vec<&crate::plot::Timeline> = timelines.iter().collect();
        if let Err(e) = fill_output(file, svg, &crate::plot::to_svg(&all)) {
            eprintln!("{} compare: {e}", lab.program);
            return EXIT_UNREADABLE;
        }
    }
    let verdict = if reports.iter().any(|r| r.outcome.violation.is_some()) {
        EXIT_VIOLATION
    } else {
        EXIT_OK
    };
    if let Err(e) = print_out(&runner::side_by_side(&reports[0], &reports[1])) {
        return write_failed_with(&e, verdict);
    }
    verdict
}

fn run_list(lab: &Lab) -> u8 {
    match runner::list(&runner::scenarios_dir()) {
        Ok(list) => {
            let mut text: String = list
                .iter()
                .map(|(name, description, _)| format!("{name:<20} {description}\n"))
                .collect();
            text += &format!(
                "\npolicy presets: {}\n",
                crate::scenario::POLICIES.join(", ")
            );
            for (name, mine) in &lab.policies {
                text += &format!("policy of yours: {name} (on {})\n", mine.preset());
            }
            match print_out(&text) {
                Ok(()) => EXIT_OK,
                Err(e) => write_failed(&e),
            }
        }
        Err(e) => {
            eprintln!("{} list: {e}", lab.program);
            EXIT_UNREADABLE
        }
    }
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("--seeds must be A..B, got {s:?}"))?;
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|_| format!("bad first seed {a:?}"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|_| format!("bad end seed {b:?}"))?;
    if b <= a {
        return Err(format!("--seeds {s}: the end must be above the start"));
    }
    Ok((a, b))
}

/// Worker threads for `--jobs`: every core by default; 0 is refused; more than 4 per core is
/// capped to that (each thread is a whole world, so more only costs memory), with a note.
fn sweep_jobs(asked: Option<usize>) -> Result<(usize, Option<String>), String> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let most = cores.saturating_mul(MAX_JOBS_PER_CORE);
    match asked {
        None => Ok((cores, None)),
        Some(0) => Err("--jobs 0: give at least 1 worker thread".into()),
        Some(n) if n > most => Ok((
            most,
            Some(format!(
                "--jobs {n} capped to {most} ({MAX_JOBS_PER_CORE} per core, {cores} cores)"
            )),
        )),
        Some(n) => Ok((n, None)),
    }
}

/// `--jobs` above this many threads per core is capped.
const MAX_JOBS_PER_CORE: usize = 4;

fn run_sweep(lab: &Lab, args: &SweepArgs) -> u8 {
    let report = if args.merge.is_empty() {
        let Some(path) = args.scenario.as_deref() else {
            eprintln!("{} sweep: a scenario is needed", lab.program);
            return EXIT_UNREADABLE;
        };
        let scenario = match lab.load(path, args.policy.as_deref()) {
            Ok(s) => s,
            Err(code) => return code,
        };
        let parsed = parse_range(&args.seeds).and_then(|r| {
            let shard = args.shard.as_deref().map(str::parse::<Shard>).transpose()?;
            Ok((r, shard))
        });
        let ((first, end), shard) = match parsed {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{} sweep: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        };
        let jobs = match sweep_jobs(args.jobs) {
            Ok((jobs, note)) => {
                if let Some(note) = note {
                    eprintln!("{} sweep: {note}", lab.program);
                }
                jobs
            }
            Err(e) => {
                eprintln!("{} sweep: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        };
        let spec = SweepSpec {
            first,
            end,
            jobs,
            shard,
            swarm: args.swarm,
            policy: None,
            progress: io::IsTerminal::is_terminal(&io::stderr()),
        };
        if spec.seed_count() > sweep::MAX_SEEDS_PER_PROCESS {
            eprintln!(
                "{} sweep: --seeds {}{} is {} seeds for this process, more than {}: split the \
                 range over machines with --shard i/n",
                lab.program,
                args.seeds,
                args.shard
                    .as_deref()
                    .map_or_else(String::new, |s| format!(" --shard {s}")),
                spec.seed_count(),
                sweep::MAX_SEEDS_PER_PROCESS
            );
            return EXIT_UNREADABLE;
        }
        match sweep::sweep(scenario, &spec) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{} sweep: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        }
    } else {
        let mut reports = Vec::new();
        for file in &args.merge {
            let parsed = std::fs::read_to_string(file)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<SweepReport>(&t).map_err(|e| e.to_string()));
            match parsed {
                Ok(r) => reports.push((file.display().to_string(), r)),
                Err(e) => {
                    eprintln!("{} sweep --merge: {}: {e}", lab.program, file.display());
                    return EXIT_UNREADABLE;
                }
            }
        }
        match sweep::merge_reports(reports, args.allow_partial) {
            Ok(merged) => {
                if let Some(warning) = merged.warning {
                    eprintln!("{} sweep --merge: warning: {warning}", lab.program);
                }
                merged.report
            }
            Err(e) => {
                eprintln!("{} sweep --merge: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        }
    };
    let text = match args.format {
        Format::Text => report.to_text(),
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(j) => j + "\n",
            Err(e) => {
                eprintln!("{} sweep: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        },
    };
    let verdict = if report.failures.is_empty() {
        EXIT_OK
    } else {
        EXIT_VIOLATION
    };
    if let Err(e) = print_out(&text) {
        return write_failed_with(&e, verdict);
    }
    verdict
}

fn run_kube_replay(lab: &Lab, args: &ReplayArgs, path: &PathBuf) -> u8 {
    use crate::kube_replay::{self, DbAssumption, KubeReplaySpec};
    let input = match read_input(path) {
        Ok(text) => text,
        Err(message) => {
            eprintln!("{} replay: {message}", lab.program);
            return EXIT_UNREADABLE;
        }
    };
    let spec = KubeReplaySpec {
        scheduler_id: args.scheduler_id.clone(),
        db: match args.db_state {
            DbState::Infer => DbAssumption::Infer,
            DbState::Queued => DbAssumption::Queued,
            DbState::Running => DbAssumption::Running,
            DbState::None => DbAssumption::NoRow,
        },
        ..KubeReplaySpec::default()
    };
    if let Err(e) = podwarden_core::Config::validate_scheduler_id(&spec.scheduler_id) {
        eprintln!("{} replay: --scheduler-id: {e}", lab.program);
        return EXIT_UNREADABLE;
    }
    let (events, summary) = kube_replay::replay_kube_watch(&input, &spec);
    let mut text = String::new();
    for e in &events {
        match e {
            Ok(decisions) => {
                text += &serde_json::to_string(decisions).unwrap_or_default();
                text.push('\n');
            }
            Err(bad) => eprintln!("line {}: {}", bad.line, bad.error),
        }
    }
    text += &serde_json::to_string(&serde_json::json!({ "summary": &summary })).unwrap_or_default();
    text.push('\n');
    eprintln!(
        "{} events, {} malformed lines skipped, {} tries tracked: {} deletes, {} done labels, \
         {} requeues, {} creates, {} reports",
        summary.events,
        summary.malformed,
        summary.tries_tracked,
        summary.deleted.len(),
        summary.labelled_done.len(),
        summary.requeued.len(),
        summary.created.len(),
        summary.reported.len()
    );
    let verdict = if summary.malformed > 0 {
        EXIT_BAD_LINES
    } else {
        EXIT_OK
    };
    if let Err(e) = print_out(&text) {
        return write_failed_with(&e, verdict);
    }
    verdict
}

fn run_replay(lab: &Lab, args: &ReplayArgs) -> u8 {
    let trace = match (&args.kube_watch, &args.trace) {
        (Some(path), _) => return run_kube_replay(lab, args, path),
        (None, Some(trace)) => trace,
        (None, None) => {
            eprintln!("{} replay: give a TRACE or --kube-watch FILE", lab.program);
            return EXIT_UNREADABLE;
        }
    };
    let file = match std::fs::File::open(trace) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "{} replay: cannot read {}: {e}",
                lab.program,
                trace.display()
            );
            return EXIT_UNREADABLE;
        }
    };
    let (text, verdict) =
        match crate::replay::replay(io::BufReader::new(file), |s| lab.attach(s, None)) {
            Ok(report) => match &report.divergence {
                None => (
                    format!(
                        "replay matches: {} lines, trace hash {}\n",
                        report.lines, report.hash
                    ),
                    EXIT_OK,
                ),
                Some(d) => (
                    format!(
                        "replay diverges at line {} (after {} matching lines)\n  expected: {}\n  actual:   {}\n",
                        d.line,
                        report.lines,
                        d.expected.as_deref().unwrap_or("(end of trace)"),
                        d.actual.as_deref().unwrap_or("(end of run)")
                    ),
                    EXIT_VIOLATION,
                ),
            },
            Err(e) => {
                eprintln!("{} replay: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        };
    if let Err(e) = print_out(&text) {
        return write_failed_with(&e, verdict);
    }
    verdict
}

fn run_check(lab: &Lab, args: &CheckArgs) -> u8 {
    let scenario = match lab.load(&args.scenario, None) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut hashes = Vec::new();
    for _ in 0..2 {
        match runner::run(scenario.clone(), args.seed, None, None) {
            Ok(r) => hashes.push(("in process", r.outcome.trace_hash)),
            Err(e) => {
                eprintln!("{} check-determinism: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        }
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "{} check-determinism: cannot find this program: {e}",
                lab.program
            );
            return EXIT_UNREADABLE;
        }
    };
    for _ in 0..2 {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["run", &args.scenario, "--format", "json"]);
        if let Some(seed) = args.seed {
            cmd.args(["--seed", &seed.to_string()]);
        }
        let hash = cmd
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .and_then(|v| v["outcome"]["trace_hash"].as_str().map(str::to_string));
        match hash {
            Some(h) => hashes.push(("separate process", h)),
            None => {
                eprintln!(
                    "{} check-determinism: a child run produced no report",
                    lab.program
                );
                return EXIT_UNREADABLE;
            }
        }
    }
    let mut text: String = hashes
        .iter()
        .map(|(where_, h)| format!("{where_:<18} {h}\n"))
        .collect();
    let verdict = if hashes.iter().all(|(_, h)| *h == hashes[0].1) {
        text += "deterministic\n";
        EXIT_OK
    } else {
        text += "NOT deterministic\n";
        EXIT_VIOLATION
    };
    if let Err(e) = print_out(&text) {
        return write_failed_with(&e, verdict);
    }
    verdict
}

/// The world to shrink: a trace's header, or a scenario file (with the swarm draw and policy).
fn shrink_input(lab: &Lab, args: &ShrinkArgs) -> Result<(Scenario, u64), String> {
    let file = std::fs::File::open(&args.input)
        .map_err(|e| format!("cannot read {}: {e}", args.input.display()))?;
    if let Ok((scenario, seed)) = crate::replay::read_header(io::BufReader::new(file)) {
        if args.swarm || args.policy.is_some() || args.seed.is_some() {
            return Err("a trace names its world and seed: --seed, --swarm and --policy apply to a scenario file only".into());
        }
        let mut scenario = scenario;
        lab.attach(&mut scenario, None);
        return Ok((scenario, seed));
    }
    let path = args.input.display().to_string();
    let mut scenario = Scenario::load_with(&path, |s| lab.attach(s, args.policy.as_deref()))
        .map_err(|e| e.to_string())?;
    let seed = args.seed.unwrap_or(scenario.seed);
    if args.swarm {
        scenario = sweep::swarm(&scenario, seed).0;
    }
    Ok((scenario, seed))
}

fn run_shrink(lab: &Lab, args: &ShrinkArgs) -> u8 {
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
         reproduce   {program} run {toml} && {program} replay {trace}\n",
        invariant = shrunk.violation.invariant,
        seed = shrunk.seed,
        size = shrink::size_line(&shrunk.scenario),
        runs = shrunk.runs,
        kept = shrunk.steps.len(),
        detail = shrunk.violation.detail,
        toml = toml_path.display(),
        trace = trace_path.display(),
        program = lab.program,
    );
    if let Err(e) = print_out(&text) {
        return write_failed(&e);
    }
    EXIT_OK
}
