//! Timelines of a run as SVG (`run --plot`, `compare --plot`): one lane per pod, coloured by
//! phase, with marks for owner changes, requeues and deletions and its name on hover; one lane
//! per scheduler (alive, stalled, partitioned, dead; restarts marked); fault and violation
//! markers; owner changes per 30 s from dead and from live owners; API calls per second per
//! scheduler. Built from the trace lines as the run goes, then completed with the run's report
//! ([`Timeline::with_report`]: its verdict, pod count, owner liveness, jobs and faults), so the
//! picture says what the summary says. Plain SVG, written by hand (`svg.rs`): rectangles,
//! lines and `<title>` tooltips are all it needs, and a plotting crate would not give hover
//! names or per-lane tooltips without the same code around it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::rc::Rc;

use podwarden_core::label;
use serde_json::Value;

use crate::failures::FaultEffect;
use crate::roster::Job;
use crate::run_report::RunReport;
use crate::summary::OwnerChange;
use crate::trace::TraceHeader;

mod svg;

/// Most pod lanes drawn; beyond it, pods with marks come first, then the others evenly.
const MAX_POD_LANES: usize = 300;
/// Owner changes per bucket that fill the strip's height (more are clipped).
const OWNER_SCALE: f64 = 5.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Terminating,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    OwnerChange,
    Requeue,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SchedState {
    Alive,
    Stalled,
    Dead,
}

/// What the run's report adds to its trace: the verdict, the counts the summary prints, and the
/// facts only the world knows (whether an owner was alive, when a job stopped).
#[derive(Debug, Clone, Default)]
struct ReportFacts {
    /// `all 9 held` or `VIOLATED name at N s`.
    verdict: String,
    violation_at: Option<u64>,
    pods_created: u64,
    owner_changes: Vec<OwnerChange>,
    faults: Vec<FaultEffect>,
    jobs: Vec<Job>,
}

#[derive(Debug, Clone, Default)]
struct PodLane {
    /// Closed segments: start, end, phase.
    segments: Vec<(u64, u64, Phase)>,
    open: Option<(u64, Phase)>,
    marks: Vec<(u64, Mark)>,
    first_seen: u64,
}

impl PodLane {
    fn phase(&mut self, t: u64, phase: Option<Phase>) {
        if let Some((start, p)) = self.open.take() {
            if t > start {
                self.segments.push((start, t, p));
            }
        }
        self.open = phase.map(|p| (t, p));
    }
}

/// A run's timeline, built line by line from its trace.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    title: String,
    end: u64,
    pods: BTreeMap<String, PodLane>,
    scheds: BTreeMap<u64, Vec<(u64, SchedState)>>,
    /// API calls per scheduler per second.
    api: BTreeMap<u64, BTreeMap<u64, u32>>,
    owner_changes: u64,
    /// Owner relabels per 30-second bucket.
    owner_changes_by_bucket: BTreeMap<u64, u32>,
    requeues: u64,
    /// Partitions per scheduler: start, end.
    partitions: BTreeMap<u64, Vec<(u64, u64)>>,
    report: Option<ReportFacts>,
}

/// Width of the owner-change histogram's buckets.
const BUCKET_MS: u64 = 30_000;

impl Timeline {
    /// Feeds one trace line (the header, a world event, a scheduler's input or command).
    pub fn line(&mut self, line: &str) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return;
        };
        if v.get("podwarden_trace").is_some() {
            if let Ok(header) = serde_json::from_value::<TraceHeader>(v) {
                let s = &header.scenario;
                self.title = format!("{} — policy {}, seed {}", s.name, s.policy, header.seed);
                for i in 0..u64::from(s.schedulers) {
                    self.scheds.insert(i, vec![(0, SchedState::Alive)]);
                }
            }
            return;
        }
        let t = v["t"].as_u64().unwrap_or(0);
        let sched = v["sched"].as_u64();
        // The axis ends with the last pod change (a step, a create, a relabel, a delete), not
        // with the settle time, where only periodic lists happen.
        let pod_change = match v["ev"].as_str() {
            Some("pod") => true,
            Some("api_request") => matches!(
                v["command"]["command"].as_str(),
                Some("create_pod" | "patch_labels" | "delete_pod")
            ),
            _ => false,
        };
        if pod_change {
            self.end = self.end.max(t);
        }
        match v["ev"].as_str() {
            Some("api_request") => self.api_request(t, sched.unwrap_or(0), &v["command"]),
            Some("pod") => self.pod_step(t, &v),
            Some("fault") => {
                let f = &v["fault"];
                let state = match f["kind"].as_str() {
                    Some("crash_scheduler") => SchedState::Dead,
                    Some("stall_scheduler") => SchedState::Stalled,
                    Some("partition") => {
                        let lasts = crate::time::secs(f["duration_s"].as_f64().unwrap_or(0.0));
                        if let Some(i) = f["scheduler"].as_u64() {
                            let p = self.partitions.entry(i).or_default();
                            p.push((t, t.saturating_add(lasts.max(1))));
                        }
                        return;
                    }
                    _ => return,
                };
                if let Some(i) = f["scheduler"].as_u64() {
                    self.scheds.entry(i).or_default().push((t, state));
                }
            }
            Some("stall_ends") => {
                if let Some(i) = sched {
                    let lane = self.scheds.entry(i).or_default();
                    if lane.last().is_some_and(|c| c.1 == SchedState::Stalled) {
                        lane.push((t, SchedState::Alive));
                    }
                }
            }
            Some("restart") => {
                if let Some(i) = sched {
                    self.scheds
                        .entry(i)
                        .or_default()
                        .push((t, SchedState::Alive));
                }
            }
            None if v["command"]["command"] == "requeue" => {
                if let Some(pod) = v["command"]["failed_pod"]["name"].as_str() {
                    self.requeues += 1;
                    self.mark(pod, t, Mark::Requeue);
                }
            }
            _ => {}
        }
    }

    fn api_request(&mut self, t: u64, sched: u64, cmd: &Value) {
        *self
            .api
            .entry(sched)
            .or_default()
            .entry(t / 1000)
            .or_default() += 1;
        match cmd["command"].as_str() {
            Some("create_pod") => {
                if let Some(name) = cmd["manifest"]["pod"]["name"].as_str() {
                    let lane = self.pods.entry(name.to_string()).or_default();
                    lane.first_seen = t;
                    lane.phase(t, Some(Phase::Pending));
                }
            }
            Some("patch_labels") if cmd["labels"].get(label::AIRFLOW_WORKER).is_some() => {
                if let Some(name) = cmd["pod"]["name"].as_str() {
                    self.owner_changes += 1;
                    *self
                        .owner_changes_by_bucket
                        .entry(t / BUCKET_MS)
                        .or_default() += 1;
                    self.mark(name, t, Mark::OwnerChange);
                }
            }
            Some("delete_pod") => {
                if let Some(name) = cmd["pod"]["name"].as_str() {
                    self.mark(name, t, Mark::Delete);
                }
            }
            _ => {}
        }
    }

    fn pod_step(&mut self, t: u64, v: &Value) {
        let Some(name) = v["name"].as_str() else {
            return;
        };
        let step = &v["step"];
        let phase = match step.as_str() {
            Some("task_starts") => Some(Phase::Running),
            Some("terminate" | "taint_evict" | "pod_gc") => Some(Phase::Terminating),
            Some("remove") => None,
            Some(_) => return,
            None => match step["task_ends"]["code"].as_i64() {
                Some(0) => Some(Phase::Succeeded),
                Some(_) => Some(Phase::Failed),
                None => return,
            },
        };
        let lane = self
            .pods
            .entry(name.to_string())
            .or_insert_with(|| PodLane {
                first_seen: t,
                ..PodLane::default()
            });
        lane.phase(t, phase);
    }

    fn mark(&mut self, pod: &str, t: u64, mark: Mark) {
        let lane = self.pods.entry(pod.to_string()).or_insert_with(|| PodLane {
            first_seen: t,
            ..PodLane::default()
        });
        lane.marks.push((t, mark));
    }

    /// Completes the timeline with its run's report: the verdict and violation time, the pod
    /// count the summary prints, whether each owner change took a dead or a live owner's pod,
    /// when each job stopped (a scheduler killed externally or restarted by the probe leaves no
    /// trace line of its own), and the faults with what they did.
    #[must_use]
    pub fn with_report(mut self, report: &RunReport) -> Self {
        let summary = &report.outcome.summary;
        let verdict = match &report.outcome.violation {
            None => format!(
                "invariants all {} held",
                crate::invariants::INVARIANTS.len() + report.outcome.custom_invariants.len()
            ),
            Some(v) => format!(
                "VIOLATED {} at {} s",
                v.invariant,
                crate::time::secs_text(v.at_ms)
            ),
        };
        let jobs: Vec<Job> = summary.schedulers.jobs().into_iter().cloned().collect();
        for job in &jobs {
            if let Some(stopped) = job.stopped_ms {
                let lane = self.scheds.entry(u64::from(job.scheduler)).or_default();
                lane.push((stopped, SchedState::Dead));
                lane.sort_by_key(|c| c.0);
                lane.dedup();
            }
        }
        if let Some(v) = &report.outcome.violation {
            self.end = self.end.max(v.at_ms);
        }
        self.report = Some(ReportFacts {
            verdict,
            violation_at: report.outcome.violation.as_ref().map(|v| v.at_ms),
            pods_created: summary.pods_created,
            owner_changes: summary.owner_changes.log.clone(),
            faults: summary.fault_effects.clone(),
            jobs,
        });
        self
    }

    /// Owner relabels seen (the thrash signal).
    #[must_use]
    pub fn owner_changes(&self) -> u64 {
        self.owner_changes
    }

    /// Pod lanes.
    #[must_use]
    pub fn pods(&self) -> usize {
        self.pods.len()
    }

    /// The lanes to draw, in order of first appearance.
    fn lanes(&self) -> Vec<(&String, &PodLane)> {
        let mut all: Vec<(&String, &PodLane)> = self.pods.iter().collect();
        all.sort_by_key(|(name, l)| (l.first_seen, name.as_str()));
        if all.len() <= MAX_POD_LANES {
            return all;
        }
        let (marked, plain): (Vec<_>, Vec<_>) = all.into_iter().partition(|(_, l)| {
            l.marks
                .iter()
                .any(|(_, m)| matches!(m, Mark::OwnerChange | Mark::Requeue))
        });
        let room = MAX_POD_LANES.saturating_sub(marked.len().min(MAX_POD_LANES));
        let step = plain.len().div_ceil(room.max(1)).max(1);
        let mut chosen: Vec<_> = marked.into_iter().take(MAX_POD_LANES).collect();
        chosen.extend(plain.into_iter().step_by(step).take(room));
        chosen.sort_by_key(|(name, l)| (l.first_seen, name.as_str()));
        chosen
    }
}

/// A sink for [`crate::trace::Trace::writing`] that builds a [`Timeline`] as the run goes, and
/// the timeline it fills.
#[must_use]
pub fn timeline_sink() -> (impl Write, Rc<RefCell<Timeline>>) {
    let timeline = Rc::new(RefCell::new(Timeline::default()));
    let filled = Rc::clone(&timeline);
    let sink = crate::trace::LineSink::new(move |line| filled.borrow_mut().line(line));
    (sink, timeline)
}

/// Copies everything written to two writers (a trace file and a timeline).
pub(crate) struct Tee(pub(crate) Box<dyn Write>, pub(crate) Box<dyn Write>);

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

pub use svg::to_svg;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_becomes_lanes_marks_and_an_svg() {
        let mut tl = Timeline::default();
        for line in [
            r#"{"podwarden_trace":1,"seed":3,"scenario":{"name":"s","policy":"legacy-adoption","schedulers":2}}"#,
            r#"{"t":1000,"ev":"api_request","sched":0,"inc":1,"command":{"id":1,"command":"create_pod","manifest":{"pod":{"namespace":"d","name":"p1"}}}}"#,
            r#"{"t":3000,"ev":"pod","name":"p1","gen":0,"step":"task_starts"}"#,
            r#"{"t":9000,"ev":"pod","name":"p1","gen":0,"step":{"task_ends":{"code":0}}}"#,
            r#"{"t":9500,"ev":"api_request","sched":1,"inc":1,"command":{"id":7,"command":"patch_labels","pod":{"namespace":"d","name":"p1"},"labels":{"airflow-worker":"2"}}}"#,
            r#"{"t":9600,"ev":"fault","fault":{"kind":"stall_scheduler","at_s":9.6,"scheduler":1}}"#,
            r#"{"t":9700,"sched":0,"command":{"id":9,"command":"requeue","failed_pod":{"namespace":"d","name":"p1"}}}"#,
            r#"{"t":9800,"ev":"stall_ends","sched":1,"inc":1}"#,
            r#"{"t":9900,"ev":"fault","fault":{"kind":"partition","at_s":9.9,"scheduler":0,"duration_s":2.0}}"#,
            r#"{"t":40000,"ev":"api_request","sched":0,"inc":1,"command":{"id":2,"command":"list_pods"}}"#,
        ] {
            tl.line(line);
        }
        assert_eq!((tl.owner_changes(), tl.requeues, tl.pods()), (1, 1, 1));
        let lane = &tl.pods["p1"];
        assert_eq!(
            lane.segments,
            [(1000, 3000, Phase::Pending), (3000, 9000, Phase::Running)]
        );
        assert_eq!(lane.open, Some((9000, Phase::Succeeded)));
        assert_eq!(
            tl.scheds[&1],
            [
                (0, SchedState::Alive),
                (9600, SchedState::Stalled),
                (9800, SchedState::Alive)
            ]
        );
        assert_eq!(tl.partitions[&0], [(9900, 11_900)]);
        let svg = to_svg(&[&tl]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("1 owner changes"), "{svg}");
        assert!(svg.contains("#6a1b9a"), "an owner-change mark is drawn");
        assert!(
            svg.contains("<title>p1</title>"),
            "a pod lane names its pod on hover"
        );
        assert!(svg.contains("scheduler 0 partitioned from the API server, 9.9 s to 11.9 s"));
        // Scheduler 0 called at 1 s and 40 s: its line drops to zero after 1 s and rises
        // again at 40 s, rather than ramping across the idle seconds.
        let line = svg
            .lines()
            .find(|l| l.contains("<polyline") && l.contains("<title>scheduler 0</title>"))
            .expect("scheduler 0's API line");
        let points = line.split("points=\"").nth(1).unwrap_or_default();
        let ys: Vec<&str> = points
            .split('"')
            .next()
            .unwrap_or_default()
            .split(' ')
            .map(|p| p.split(',').nth(1).unwrap_or_default())
            .collect();
        assert_eq!(ys.len(), 6, "zero, 1, zero, zero, 1, zero: {points}");
        assert!(ys[0] == ys[2] && ys[2] == ys[3] && ys[3] == ys[5] && ys[1] != ys[0]);
    }
}
