//! Timelines of a run as SVG (`run --plot`, `compare --plot`): one lane per pod, coloured by
//! phase, with marks for owner changes, requeues and deletions; one lane per scheduler (alive,
//! stalled, dead); and a strip of API calls per second per scheduler. Built from the trace
//! lines, so anything with a trace can be drawn. Plain SVG, written by hand: a few rectangles
//! and lines do not need a plotting library.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::rc::Rc;

use podwarden_core::label;
use serde_json::Value;

use crate::trace::TraceHeader;

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

impl Phase {
    fn colour(self) -> &'static str {
        match self {
            Self::Pending => "#c8c8c8",
            Self::Running => "#42a5f5",
            Self::Succeeded => "#66bb6a",
            Self::Failed => "#ef5350",
            Self::Terminating => "#ffa726",
        }
    }
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
                    _ => return,
                };
                if let Some(i) = f["scheduler"].as_u64() {
                    self.scheds.entry(i).or_default().push((t, state));
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

const WIDTH: f64 = 1400.0;
const LEFT: f64 = 150.0;
const RIGHT: f64 = 20.0;

/// The timelines one above the other, on one time axis.
#[must_use]
pub fn to_svg(timelines: &[&Timeline]) -> String {
    let end = timelines.iter().map(|t| t.end).max().unwrap_or(1).max(1);
    let x = |t: u64| LEFT + (WIDTH - LEFT - RIGHT) * t as f64 / end as f64;
    let mut body = String::new();
    let mut y = 10.0;
    for tl in timelines {
        y = draw(&mut body, tl, y, &x, end) + 30.0;
    }
    y = legend(&mut body, y);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{h}\" viewBox=\"0 0 {WIDTH} {h}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}</svg>\n",
        h = y + 10.0
    )
}

fn draw(out: &mut String, tl: &Timeline, top: f64, x: &dyn Fn(u64) -> f64, end: u64) -> f64 {
    let mut y = top + 14.0;
    let _ = writeln!(
        out,
        "<text x=\"4\" y=\"{y}\" font-size=\"14\" font-weight=\"bold\">{} — {} owner changes, {} requeues, {} pods</text>",
        escape(&tl.title),
        tl.owner_changes,
        tl.requeues,
        tl.pods.len()
    );
    y += 10.0;
    // Time axis, every minute (or every ten when long).
    let tick = if end > 1_800_000 { 600_000 } else { 60_000 };
    let mut t = 0;
    while t <= end {
        let _ = writeln!(
            out,
            "<line x1=\"{0:.1}\" y1=\"{y}\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"#eee\"/><text x=\"{0:.1}\" y=\"{y}\" fill=\"#888\" text-anchor=\"middle\">{2}m</text>",
            x(t),
            y + 6.0,
            t / 60_000
        );
        t += tick;
    }
    y += 8.0;
    // Scheduler lanes.
    for (i, changes) in &tl.scheds {
        let _ = writeln!(
            out,
            "<text x=\"4\" y=\"{:.1}\">scheduler {i}</text>",
            y + 9.0
        );
        for (k, (start, state)) in changes.iter().enumerate() {
            let stop = changes.get(k + 1).map_or(end, |c| c.0);
            let colour = match state {
                SchedState::Alive => "#81c784",
                SchedState::Stalled => "#ffb300",
                SchedState::Dead => "#e53935",
            };
            rect(out, x(*start), y, x(stop) - x(*start), 10.0, colour);
        }
        y += 14.0;
    }
    // Owner changes: the thrash, as bars per 30 s, on a scale shared by every timeline.
    let strip = 40.0;
    let _ = writeln!(
        out,
        "<text x=\"4\" y=\"{:.1}\" fill=\"#6a1b9a\">owner changes / 30 s</text>",
        y + strip / 2.0
    );
    rect(out, x(0), y + strip, x(end) - x(0), 0.5, "#6a1b9a");
    for (bucket, n) in &tl.owner_changes_by_bucket {
        let h = strip * f64::from(*n).min(OWNER_SCALE) / OWNER_SCALE;
        let (x0, x1) = (x(bucket * BUCKET_MS), x((bucket + 1) * BUCKET_MS));
        rect(
            out,
            x0,
            y + strip - h,
            (x1 - x0 - 1.0).max(1.0),
            h,
            "#6a1b9a",
        );
    }
    y += strip + 8.0;
    // API calls per second, per scheduler.
    let peak = tl
        .api
        .values()
        .flat_map(|m| m.values())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let strip = 50.0;
    let _ = writeln!(
        out,
        "<text x=\"4\" y=\"{:.1}\">API calls/s (peak {peak})</text>",
        y + strip / 2.0
    );
    let palette = [
        "#1e88e5", "#8e24aa", "#43a047", "#f4511e", "#6d4c41", "#00897b",
    ];
    for (n, (_, per_sec)) in tl.api.iter().enumerate() {
        let points: Vec<String> = per_sec
            .iter()
            .map(|(s, c)| {
                format!(
                    "{:.1},{:.1}",
                    x(s * 1000),
                    y + strip - strip * f64::from(*c) / f64::from(peak)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1\" points=\"{}\"/>",
            palette[n % palette.len()],
            points.join(" ")
        );
    }
    y += strip + 8.0;
    // Pod lanes.
    let lanes = tl.lanes();
    let lane_h = if lanes.len() > 150 { 2.0 } else { 5.0 };
    let _ = writeln!(
        out,
        "<text x=\"4\" y=\"{:.1}\">pods ({} of {})</text>",
        y + 10.0,
        lanes.len(),
        tl.pods.len()
    );
    for (_, lane) in lanes {
        for (start, stop, phase) in &lane.segments {
            rect(
                out,
                x(*start),
                y,
                (x(*stop) - x(*start)).max(0.5),
                lane_h - 1.0,
                phase.colour(),
            );
        }
        if let Some((start, phase)) = lane.open {
            rect(
                out,
                x(start),
                y,
                (x(end) - x(start)).max(0.5),
                lane_h - 1.0,
                phase.colour(),
            );
        }
        for (t, mark) in &lane.marks {
            let (colour, w) = match mark {
                Mark::OwnerChange => ("#6a1b9a", 3.0),
                Mark::Requeue => ("#000000", 3.0),
                Mark::Delete => ("#616161", 1.0),
            };
            rect(out, x(*t) - w / 2.0, y - 1.0, w, lane_h + 1.0, colour);
        }
        y += lane_h;
    }
    y
}

fn legend(out: &mut String, mut y: f64) -> f64 {
    let items = [
        ("#c8c8c8", "Pending"),
        ("#42a5f5", "Running"),
        ("#66bb6a", "Succeeded"),
        ("#ef5350", "Failed"),
        ("#ffa726", "terminating"),
        ("#6a1b9a", "owner change"),
        ("#000000", "requeue"),
        ("#616161", "delete"),
        ("#81c784", "scheduler alive"),
        ("#ffb300", "stalled"),
        ("#e53935", "dead"),
    ];
    let mut x = 4.0;
    y += 4.0;
    for (colour, label) in items {
        rect(out, x, y, 10.0, 10.0, colour);
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\">{label}</text>",
            x + 14.0,
            y + 9.0
        );
        x += 14.0 + 7.0 * label.len() as f64 + 16.0;
    }
    y + 14.0
}

fn rect(out: &mut String, x: f64, y: f64, w: f64, h: f64, fill: &str) {
    let _ = writeln!(
        out,
        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{fill}\"/>"
    );
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

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
            [(0, SchedState::Alive), (9600, SchedState::Stalled)]
        );
        let svg = to_svg(&[&tl]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("1 owner changes"), "{svg}");
        assert!(svg.contains("#6a1b9a"), "an owner-change mark is drawn");
    }
}
