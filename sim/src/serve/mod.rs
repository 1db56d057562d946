//! `podwarden-sim serve`: a scenario's cluster (nodes, kubelets, API server, faults) run in real
//! time and served over HTTP as the Kubernetes core/v1 pods API, to schedulers outside it that
//! share a metadata DB (a SQLite file) with the served task processes. When it stops, it judges
//! every invariant it can from the cluster's and the DB's history. `docs/serve.md` has what is
//! served and what is not, the DB schema and the verdict.
//!
//! Three parts: the cluster's thread (`cluster`) owns the world and answers one call at a
//! time; the HTTP side (`http`) turns requests into calls; `metadata` is the DB.

mod cluster;
mod http;
pub(crate) mod metadata;
mod pod_json;
mod verdict;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

pub use self::verdict::{Tally, Verdict, JUDGED, NOT_JUDGED};
use crate::scenario::Scenario;
use crate::world::World;

/// The fastest a served world may run, in simulated seconds per real second.
pub const MAX_SPEED: f64 = 1_000.0;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The address to listen on; only a loopback one unless `allow_remote`.
    pub listen: SocketAddr,
    /// Listen on a non-loopback address (there is no authentication).
    pub allow_remote: bool,
    /// The metadata DB file, created (or a file without task instances).
    pub db: PathBuf,
    /// The seed (`None`: the scenario's).
    pub seed: Option<u64>,
    /// End once every task instance is finished and every pod gone (or at the scenario's end).
    pub until_idle: bool,
    /// Simulated seconds per real second (1: real time).
    pub speed: f64,
    /// A scheduler whose heartbeat is older than this many seconds is dead, for `no_thrash`
    /// (`None`: the scenario's `scheduler_health_check_threshold`).
    pub dead_after_secs: Option<f64>,
}

/// Why serving could not start or went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// `--listen` names an address other machines can reach, without `--allow-remote`.
    #[error("--listen {0}: not a loopback address; the server has no authentication (add --allow-remote to listen there anyway)")]
    NotLoopback(SocketAddr),
    /// `--speed` out of range.
    #[error("--speed {0}: must be a number above 0 and at most {MAX_SPEED}")]
    Speed(f64),
    /// `--dead-after` out of range.
    #[error("--dead-after {0}: must be a number of seconds above 0 and at most a day")]
    DeadAfter(f64),
    /// The metadata DB could not be created or opened.
    #[error("{0}")]
    Db(String),
    /// The scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    /// The address could not be bound, or the runtime could not start.
    #[error("--listen {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// The cluster's thread ended abnormally.
    #[error("the served cluster stopped abnormally")]
    ClusterPanicked,
}

/// Stops a served cluster from another thread (it then judges and [`serve`] returns).
#[derive(Debug, Clone)]
pub struct Stopper(mpsc::Sender<cluster::Call>);

impl Stopper {
    /// Asks the cluster to stop, as a signal does.
    pub fn stop(&self) {
        let _ = self.0.send(cluster::Call::Stop);
    }
}

/// Serves `scenario` until a signal (SIGINT, SIGTERM), a [`Stopper`] or, with `until_idle`,
/// idleness; calls `ready` with the bound address and a stopper once clients may connect.
/// Returns the verdict.
///
/// # Errors
/// [`ServeError`]: bad options, the DB, the scenario, the address.
pub fn serve(
    scenario: Scenario,
    options: &ServeOptions,
    ready: impl FnOnce(SocketAddr, Stopper),
) -> Result<Verdict, ServeError> {
    if !options.listen.ip().is_loopback() && !options.allow_remote {
        return Err(ServeError::NotLoopback(options.listen));
    }
    if !(options.speed.is_finite() && options.speed > 0.0 && options.speed <= MAX_SPEED) {
        return Err(ServeError::Speed(options.speed));
    }
    let dead_after_secs = match options.dead_after_secs {
        Some(s) if !(s.is_finite() && s > 0.0 && s <= 86_400.0) => {
            return Err(ServeError::DeadAfter(s))
        }
        Some(s) => s,
        None => scenario
            .executor_config()
            .map(|c| c.scheduler_health_check_threshold)
            .unwrap_or(30.0),
    };
    let pace = cluster::Pace {
        speed: options.speed,
        until_idle: options.until_idle,
        dead_after_ms: (dead_after_secs * 1000.0) as u64,
    };
    metadata::create(&options.db).map_err(ServeError::Db)?;
    let runner = metadata::RunnerDb::open(&options.db).map_err(ServeError::Db)?;
    let reader = metadata::Reader::open(&options.db).map_err(ServeError::Db)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| ServeError::Listen {
            addr: options.listen,
            source,
        })?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(options.listen))
        .map_err(|source| ServeError::Listen {
            addr: options.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: options.listen,
        source,
    })?;
    // The world is built on its own thread (it stays there: it is not `Send`).
    let (calls, receiver) = mpsc::channel();
    let (built, built_rx) = mpsc::channel();
    let seed = options.seed;
    let cluster = std::thread::spawn(move || {
        let world = match World::serving(scenario, seed, Box::new(runner)) {
            Ok(w) => w,
            Err(e) => {
                let _ = built.send(Err(e));
                return None;
            }
        };
        let _ = built.send(Ok(()));
        let (world, tally) = cluster::Cluster::new(world, reader, pace).run(&receiver);
        Some(Verdict::of(&world, tally))
    });
    match built_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => return Err(ServeError::ClusterPanicked),
    }
    ready(addr, Stopper(calls.clone()));
    let front = http::Front {
        calls: calls.clone(),
        addr,
    };
    runtime.block_on(async move {
        let accept = async {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of descriptors, say: wait rather than spin.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let front = front.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| front.clone().handle(req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        };
        let mut done = tokio::task::spawn_blocking(move || cluster.join());
        tokio::select! {
            () = accept => unreachable_accept(),
            () = stop_signal() => {
                let _ = calls.send(cluster::Call::Stop);
                finish((&mut done).await)
            }
            joined = &mut done => finish(joined),
        }
    })
}

/// The accept loop never ends by itself.
fn unreachable_accept() -> Result<Verdict, ServeError> {
    Err(ServeError::ClusterPanicked)
}

type Joined = Result<std::thread::Result<Option<Verdict>>, tokio::task::JoinError>;

fn finish(joined: Joined) -> Result<Verdict, ServeError> {
    match joined {
        Ok(Ok(Some(verdict))) => Ok(verdict),
        _ => Err(ServeError::ClusterPanicked),
    }
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
