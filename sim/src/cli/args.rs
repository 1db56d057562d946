//! The command line's arguments, as clap parses them: one struct per command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Tools around the podwarden executor core.
#[derive(Debug, Parser)]
#[command(name = "podwarden-sim", version, about, long_about = None)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

/// One subcommand each.
#[derive(Debug, Subcommand)]
pub(super) enum Command {
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
    /// Serve a scenario's cluster over HTTP as the Kubernetes pods API, in real time, to
    /// schedulers of your own that share a SQLite metadata DB with it; prints the verdict when
    /// stopped (SIGINT, SIGTERM, or --until-idle). docs/serve.md has the rest.
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
}

#[cfg(feature = "serve")]
#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// The scenario file, e.g. sim/scenarios/serve-e2e.toml. Its cluster, load and faults are
    /// served; its schedulers are not started (yours connect instead).
    #[arg(value_name = "SCENARIO")]
    pub(super) scenario: String,
    /// Address to listen on (loopback only unless --allow-remote; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8001")]
    pub(super) listen: std::net::SocketAddr,
    /// Listen on a non-loopback address although the server has no authentication.
    #[arg(long)]
    pub(super) allow_remote: bool,
    /// The metadata DB, a SQLite file created here (or one without task instances).
    #[arg(long, value_name = "FILE", default_value = "podwarden-serve.db")]
    pub(super) db: PathBuf,
    /// Seed (default: the scenario's).
    #[arg(long)]
    pub(super) seed: Option<u64>,
    /// Stop once every task instance is finished and every pod gone (or at the scenario's end).
    #[arg(long)]
    pub(super) until_idle: bool,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    pub(super) speed: f64,
    /// Seconds without a heartbeat after which a scheduler is dead, for no_thrash (default: the
    /// scenario's scheduler_health_check_threshold).
    #[arg(long, value_name = "SECONDS")]
    pub(super) dead_after: Option<f64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// The scenario file (TOML or JSON), e.g. sim/scenarios/sigterm-storm.toml.
    #[arg(value_name = "SCENARIO")]
    pub(super) scenario: String,
    /// Seed (default: the scenario's).
    #[arg(long)]
    pub(super) seed: Option<u64>,
    /// Policy preset (default: the scenario's): default, airflow-10.25, airflow-10.15,
    /// legacy-adoption, legacy-dedupe, no-requeue, timestamp-liveness.
    #[arg(long)]
    pub(super) policy: Option<String>,
    /// Write the JSON Lines trace here.
    #[arg(long, value_name = "FILE")]
    pub(super) trace: Option<PathBuf>,
    /// Draw every knob of the world from the seed, exactly as `sweep --swarm` does for that seed,
    /// so a swarm failure can be rerun with a trace.
    #[arg(long)]
    pub(super) swarm: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub(super) format: Format,
    /// Also draw the run as an SVG timeline here. The run is the same as without it (it stops
    /// at the first violation, with the same summary and trace): the picture shows what it did.
    #[arg(long, value_name = "FILE.svg")]
    pub(super) plot: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(super) struct SweepArgs {
    /// The scenario file (not needed with --merge).
    #[arg(value_name = "SCENARIO", required_unless_present = "merge")]
    pub(super) scenario: Option<String>,
    /// Seed range, `A..B` (B excluded).
    #[arg(long, default_value = "0..100")]
    pub(super) seeds: String,
    /// Worker threads (default: every core; at least 1, at most 4 per core: more is capped,
    /// with a note).
    #[arg(long)]
    pub(super) jobs: Option<usize>,
    /// Run only shard i of n (`i/n`), for spreading a sweep over machines.
    #[arg(long)]
    pub(super) shard: Option<String>,
    /// Draw every knob of the world from the seed (swarm testing).
    #[arg(long)]
    pub(super) swarm: bool,
    /// Policy preset (default: the scenario's).
    #[arg(long)]
    pub(super) policy: Option<String>,
    /// Output format (json is what --merge reads).
    #[arg(long, value_enum, default_value = "text")]
    pub(super) format: Format,
    /// Merge these JSON sweep results instead of running. They must be shards of one sweep
    /// (same scenario, policy, swarm flag, seed range and shard count), each given once.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub(super) merge: Vec<PathBuf>,
    /// With --merge: merge even if some shards are missing (they are named on stderr) instead
    /// of failing.
    #[arg(long, requires = "merge")]
    pub(super) allow_partial: bool,
}

#[derive(Debug, Args)]
pub(super) struct ReplayArgs {
    /// A trace written by `run --trace FILE`.
    #[arg(value_name = "TRACE", required_unless_present = "kube_watch")]
    pub(super) trace: Option<PathBuf>,
    /// Instead: a pod watch stream recorded from a real cluster (`kubectl get pods -w -o json
    /// --output-watch-events`, or the API's JSON Lines), fed through one executor; prints its
    /// decisions per event as JSON Lines, then a summary line.
    #[arg(long, value_name = "FILE", conflicts_with = "trace")]
    pub(super) kube_watch: Option<PathBuf>,
    /// With --kube-watch: the replaying executor's scheduler id (it takes the recorded pods over
    /// from their owners, so it must differ from theirs).
    #[arg(long, default_value = "podwarden-replay", requires = "kube_watch")]
    pub(super) scheduler_id: String,
    /// With --kube-watch: what the DB answers about a try. `infer`: RUNNING if the stream showed
    /// its main container started, else QUEUED.
    #[arg(long, value_enum, default_value = "infer", requires = "kube_watch")]
    pub(super) db_state: DbState,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum DbState {
    Infer,
    Queued,
    Running,
    None,
}

#[derive(Debug, Args)]
pub(super) struct ShrinkArgs {
    /// A trace written by `run --trace FILE` (its header names the world and seed), or a
    /// scenario file.
    #[arg(value_name = "TRACE_OR_SCENARIO")]
    pub(super) input: PathBuf,
    /// Seed, for a scenario file (default: the scenario's).
    #[arg(long)]
    pub(super) seed: Option<u64>,
    /// For a scenario file: draw the world from the seed as `sweep --swarm` does.
    #[arg(long)]
    pub(super) swarm: bool,
    /// For a scenario file: the policy preset (default: the scenario's).
    #[arg(long)]
    pub(super) policy: Option<String>,
    /// Write PREFIX.toml and PREFIX.trace.jsonl (default: shrunk-NAME-SEED).
    #[arg(long, value_name = "PREFIX")]
    pub(super) out: Option<PathBuf>,
    /// Most world runs to spend.
    #[arg(long, default_value_t = 6000)]
    pub(super) max_runs: usize,
    /// Seeds tried per candidate world (the current one and the next ones).
    #[arg(long, default_value_t = 16)]
    pub(super) seeds_per_candidate: u64,
}

#[derive(Debug, Args)]
pub(super) struct CheckArgs {
    /// The scenario file.
    #[arg(value_name = "SCENARIO")]
    pub(super) scenario: String,
    /// Seed (default: the scenario's).
    #[arg(long)]
    pub(super) seed: Option<u64>,
    /// Policy preset (default: the scenario's).
    #[arg(long)]
    pub(super) policy: Option<String>,
}

#[derive(Debug, Args)]
pub(super) struct CompareArgs {
    /// The scenario file.
    #[arg(value_name = "SCENARIO")]
    pub(super) scenario: String,
    /// Two policy presets, in order.
    #[arg(long, num_args = 1, required = true)]
    pub(super) policy: Vec<String>,
    /// Seed (default: the scenario's).
    #[arg(long)]
    pub(super) seed: Option<u64>,
    /// Also draw both runs as SVG timelines, one above the other, on one time axis.
    #[arg(long, value_name = "FILE.svg")]
    pub(super) plot: Option<PathBuf>,
    /// Output format: `json` is `{scenario, seed, runs: [A, B]}`, each run as `run --format
    /// json` prints it.
    #[arg(long, value_enum, default_value = "text")]
    pub(super) format: Format,
}

#[derive(Debug, Args)]
pub(super) struct ClassifyArgs {
    /// The input file, or `-` for standard input.
    #[arg(value_name = "FILE")]
    pub(super) file: PathBuf,
}
