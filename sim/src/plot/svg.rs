//! Drawing [`Timeline`]s as SVG, by hand: each timeline in its frame (title, verdict, time axis,
//! scheduler lanes, owner-change strip, API-calls strip, pod lanes), fault and violation markers
//! across the frame, and one legend.

use std::fmt::Write as _;

use super::{Mark, Phase, SchedState, Timeline, BUCKET_MS, OWNER_SCALE};

const WIDTH: f64 = 1400.0;
const LEFT: f64 = 170.0;
const RIGHT: f64 = 20.0;

/// Colours, each used for one thing only.
const DEAD_OWNER: &str = "#6a1b9a";
const LIVE_OWNER: &str = "#d81b60";
const REQUEUE: &str = "#000000";
const DELETE: &str = "#9e9e9e";
const SCHED_ALIVE: &str = "#00796b";
const SCHED_STALLED: &str = "#fdd835";
const SCHED_DEAD: &str = "#37474f";
const PARTITIONED: &str = "#8d6e63";
const FAULT: &str = "#ff6f00";
const VIOLATION: &str = "#d50000";
/// One colour per scheduler in the API-calls strip (by index).
const PALETTE: [&str; 6] = [
    "#1e88e5", "#8e24aa", "#43a047", "#f4511e", "#6d4c41", "#00897b",
];

impl Phase {
    fn colour(self) -> &'static str {
        match self {
            Self::Pending => "#c8c8c8",
            Self::Running => "#42a5f5",
            Self::Succeeded => "#a5d6a7",
            Self::Failed => "#ef5350",
            Self::Terminating => "#ffa726",
        }
    }
}

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
    let facts = tl.report.clone().unwrap_or_default();
    let pods = if tl.report.is_some() {
        facts.pods_created
    } else {
        tl.pods.len() as u64
    };
    let mut y = top + 14.0;
    let _ = writeln!(
        out,
        "<text x=\"4\" y=\"{y}\" font-size=\"14\" font-weight=\"bold\">{} — {} owner changes, {} requeues, {pods} pods created</text>",
        escape(&tl.title),
        tl.owner_changes,
        tl.requeues,
    );
    if !facts.verdict.is_empty() {
        let colour = if facts.violation_at.is_some() {
            VIOLATION
        } else {
            SCHED_ALIVE
        };
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{y}\" font-size=\"13\" font-weight=\"bold\" text-anchor=\"end\" fill=\"{colour}\">{}</text>",
            WIDTH - RIGHT,
            escape(&facts.verdict)
        );
    }
    y += 10.0;
    let frame_top = y;
    let tick = if end > 1_800_000 { 600_000 } else { 60_000 };
    let mut t = 0;
    while t <= end {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{y}\" fill=\"#888\" text-anchor=\"middle\">{}m</text>",
            x(t),
            t / 60_000
        );
        t += tick;
    }
    y += 8.0;
    // Lanes stop where this run stopped (a violation ends it), not at the shared axis's end.
    let stopped = tl.end.min(end);
    y = scheduler_lanes(out, tl, &facts, y, x, stopped);
    y = owner_strip(out, &facts, y, x);
    y = api_strip(out, tl, y, x);
    y = pod_lanes(out, tl, &facts, y, x, stopped);
    if stopped < end {
        let _ = writeln!(
            out,
            "<g><title>the run stopped at {} s</title><rect x=\"{:.1}\" y=\"{frame_top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#000000\" fill-opacity=\"0.05\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#777\">run stopped here</text></g>",
            crate::time::secs_text(stopped),
            x(stopped),
            x(end) - x(stopped),
            y - frame_top,
            x(stopped) + 6.0,
            (frame_top + y) / 2.0
        );
    }
    // Grid, faults and the violation across the whole frame.
    let mut t = 0;
    while t <= end {
        vline(out, x(t), frame_top, y, "#eee");
        t += tick;
    }
    for f in &facts.faults {
        let fx = x(f.at_ms);
        let _ = writeln!(
            out,
            "<g><title>{} s: {} ({} pods hit, {} tries cost)</title><line x1=\"{x:.1}\" y1=\"{frame_top:.1}\" x2=\"{x:.1}\" y2=\"{y:.1}\" stroke=\"{FAULT}\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{FAULT}\">⚡ {}</text></g>",
            crate::time::secs_text(f.at_ms),
            escape(&f.fault),
            f.pods_hit,
            f.tries_cost,
            fx + 2.0,
            frame_top + 8.0,
            escape(&f.fault),
            x = fx,
        );
    }
    if let Some(at) = facts.violation_at {
        let vx = x(at);
        let _ = writeln!(
            out,
            "<g><title>{}</title><line x1=\"{x:.1}\" y1=\"{frame_top:.1}\" x2=\"{x:.1}\" y2=\"{y:.1}\" stroke=\"{VIOLATION}\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{VIOLATION}\" font-weight=\"bold\">◀ {}</text></g>",
            escape(&facts.verdict),
            vx + 3.0,
            y - 6.0,
            escape(&facts.verdict),
            x = vx,
        );
    }
    let _ = writeln!(
        out,
        "<rect x=\"{:.1}\" y=\"{frame_top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#999\"/>",
        x(0),
        x(end) - x(0),
        y - frame_top
    );
    y
}

fn scheduler_lanes(
    out: &mut String,
    tl: &Timeline,
    facts: &super::ReportFacts,
    mut y: f64,
    x: &dyn Fn(u64) -> f64,
    end: u64,
) -> f64 {
    for (i, changes) in &tl.scheds {
        let _ = writeln!(
            out,
            "<text x=\"4\" y=\"{:.1}\">scheduler {i}</text>",
            y + 9.0
        );
        for (k, (start, state)) in changes.iter().enumerate() {
            let stop = changes.get(k + 1).map_or(end, |c| c.0);
            let colour = match state {
                SchedState::Alive => SCHED_ALIVE,
                SchedState::Stalled => SCHED_STALLED,
                SchedState::Dead => SCHED_DEAD,
            };
            rect(out, x(*start), y, x(stop) - x(*start), 10.0, colour);
        }
        for (from, to) in tl.partitions.get(i).into_iter().flatten() {
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"10\" fill=\"{PARTITIONED}\"><title>scheduler {i} partitioned from the API server, {} s to {} s</title></rect>",
                x(*from),
                y,
                (x((*to).min(end)) - x(*from)).max(1.0),
                crate::time::secs_text(*from),
                crate::time::secs_text(*to)
            );
        }
        for job in facts.jobs.iter().filter(|j| u64::from(j.scheduler) == *i) {
            let _ = writeln!(
                out,
                "<g><title>{job}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"2\" height=\"12\" fill=\"white\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"white\" font-size=\"9\">job {}</text></g>",
                x(job.started_ms),
                y - 1.0,
                x(job.started_ms) + 4.0,
                y + 8.5,
                job.job
            );
        }
        y += 14.0;
    }
    y
}

/// Owner changes per 30 s, from dead owners (below) and live owners (stacked above), on a
/// fixed scale shared by every timeline.
fn owner_strip(
    out: &mut String,
    facts: &super::ReportFacts,
    y: f64,
    x: &dyn Fn(u64) -> f64,
) -> f64 {
    let strip = 40.0;
    let _ = writeln!(
        out,
        "<text x=\"4\" y=\"{:.1}\">owner changes / 30 s</text><text x=\"4\" y=\"{:.1}\" font-size=\"9\"><tspan fill=\"{DEAD_OWNER}\">from dead owners</tspan> · <tspan fill=\"{LIVE_OWNER}\">from live owners</tspan></text>",
        y + strip / 2.0 - 2.0,
        y + strip / 2.0 + 10.0
    );
    // The scale: 0 and OWNER_SCALE, with a grid line at the top.
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"end\" fill=\"#555\">{OWNER_SCALE}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"end\" fill=\"#555\">0</text>",
        x(0) - 3.0,
        y + 7.0,
        x(0) - 3.0,
        y + strip
    );
    hline(out, x(0), WIDTH - RIGHT, y, "#ddd");
    let mut buckets: std::collections::BTreeMap<u64, (u32, u32)> = Default::default();
    for c in &facts.owner_changes {
        let b = buckets.entry(c.at_ms / BUCKET_MS).or_default();
        if c.owner_alive {
            b.1 += 1;
        } else {
            b.0 += 1;
        }
    }
    let h = |n: u32| strip * f64::from(n).min(OWNER_SCALE) / OWNER_SCALE;
    for (bucket, (dead, live)) in &buckets {
        let (x0, x1) = (x(bucket * BUCKET_MS), x((bucket + 1) * BUCKET_MS));
        let w = (x1 - x0 - 1.0).max(1.0);
        let (hd, hl) = (h(*dead), h(dead + live) - h(*dead));
        let _ = writeln!(
            out,
            "<g><title>{} s: {dead} from dead owners, {live} from live owners</title>",
            crate::time::secs_text(bucket * BUCKET_MS)
        );
        rect(out, x0, y + strip - hd, w, hd, DEAD_OWNER);
        rect(out, x0, y + strip - hd - hl, w, hl, LIVE_OWNER);
        out.push_str("</g>\n");
    }
    hline(out, x(0), WIDTH - RIGHT, y + strip, "#999");
    y + strip + 8.0
}

/// API calls per second per scheduler: a line per scheduler that drops to zero across idle
/// seconds (no ramp between two busy seconds far apart), with its colour named.
fn api_strip(out: &mut String, tl: &Timeline, mut y: f64, x: &dyn Fn(u64) -> f64) -> f64 {
    let peak = tl
        .api
        .values()
        .flat_map(|m| m.values())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let strip = 50.0;
    let _ = write!(
        out,
        "<text x=\"4\" y=\"{:.1}\">API calls/s (peak {peak})</text><text x=\"4\" y=\"{:.1}\" font-size=\"9\">",
        y + strip / 2.0 - 2.0,
        y + strip / 2.0 + 10.0
    );
    for i in tl.api.keys() {
        let _ = write!(
            out,
            "<tspan fill=\"{}\">■ sched {i} </tspan>",
            PALETTE[*i as usize % PALETTE.len()]
        );
    }
    out.push_str("</text>\n");
    let level = |c: u32| y + strip - strip * f64::from(c) / f64::from(peak);
    for (i, per_sec) in &tl.api {
        let mut points: Vec<String> = Vec::new();
        let mut last: Option<u64> = None;
        for (s, c) in per_sec {
            if last.is_none_or(|l| l + 1 < *s) {
                if let Some(l) = last {
                    points.push(format!("{:.1},{:.1}", x((l + 1) * 1000), level(0)));
                }
                points.push(format!("{:.1},{:.1}", x(s * 1000), level(0)));
            }
            points.push(format!("{:.1},{:.1}", x(s * 1000), level(*c)));
            last = Some(*s);
        }
        if let Some(l) = last {
            points.push(format!("{:.1},{:.1}", x((l + 1) * 1000), level(0)));
        }
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1\" points=\"{}\"><title>scheduler {i}</title></polyline>",
            PALETTE[*i as usize % PALETTE.len()],
            points.join(" ")
        );
    }
    y += strip + 8.0;
    y
}

/// The colour of an owner-change mark on `pod`'s lane at `t` (when the relabel was sent): the
/// live-owner colour when the first relabel of that pod the world applied at or after `t` took
/// it from a live owner; otherwise (a dead owner's pod, a relabel refused, no report) the
/// dead-owner colour.
fn owner_mark_colour(facts: &super::ReportFacts, pod: &str, t: u64) -> &'static str {
    let applied = facts
        .owner_changes
        .iter()
        .find(|c| c.pod == pod && c.at_ms >= t);
    match applied {
        Some(c) if c.owner_alive => LIVE_OWNER,
        _ => DEAD_OWNER,
    }
}

fn pod_lanes(
    out: &mut String,
    tl: &Timeline,
    facts: &super::ReportFacts,
    mut y: f64,
    x: &dyn Fn(u64) -> f64,
    end: u64,
) -> f64 {
    let lanes = tl.lanes();
    let lane_h = if lanes.len() > 150 { 4.0 } else { 8.0 };
    let _ = writeln!(
        out,
        "<text x=\"4\" y=\"{:.1}\">pods ({} lanes of {})</text><text x=\"4\" y=\"{:.1}\" font-size=\"9\" fill=\"#555\">hover a lane for its pod</text>",
        y + 10.0,
        lanes.len(),
        tl.pods.len(),
        y + 22.0
    );
    for (name, lane) in lanes {
        let _ = writeln!(out, "<g><title>{}</title>", escape(name));
        for (start, stop, phase) in &lane.segments {
            let w = (x(*stop) - x(*start)).max(0.5);
            rect(out, x(*start), y, w, lane_h - 1.0, phase.colour());
        }
        if let Some((start, phase)) = lane.open {
            let w = (x(end) - x(start)).max(0.5);
            rect(out, x(start), y, w, lane_h - 1.0, phase.colour());
        }
        for (t, mark) in &lane.marks {
            let (colour, w) = match mark {
                Mark::OwnerChange => (owner_mark_colour(facts, name, *t), 3.0),
                Mark::Requeue => (REQUEUE, 3.0),
                Mark::Delete => (DELETE, 1.0),
            };
            rect(out, x(*t) - w / 2.0, y - 1.0, w, lane_h + 1.0, colour);
        }
        out.push_str("</g>\n");
        y += lane_h;
    }
    y
}

fn legend(out: &mut String, mut y: f64) -> f64 {
    let items = [
        (Phase::Pending.colour(), "Pending"),
        (Phase::Running.colour(), "Running"),
        (Phase::Succeeded.colour(), "Succeeded"),
        (Phase::Failed.colour(), "Failed"),
        (Phase::Terminating.colour(), "terminating"),
        (DEAD_OWNER, "owner change (dead owner)"),
        (LIVE_OWNER, "owner change (live owner)"),
        (REQUEUE, "requeue"),
        (DELETE, "delete"),
        (SCHED_ALIVE, "scheduler alive"),
        (SCHED_STALLED, "stalled"),
        (PARTITIONED, "partitioned"),
        (SCHED_DEAD, "dead"),
        (FAULT, "fault"),
        (VIOLATION, "violation"),
    ];
    let mut x = 4.0;
    y += 4.0;
    for (colour, label) in items {
        if x + 14.0 + 6.5 * label.len() as f64 > WIDTH {
            x = 4.0;
            y += 16.0;
        }
        rect(out, x, y, 10.0, 10.0, colour);
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\">{label}</text>",
            x + 14.0,
            y + 9.0
        );
        x += 14.0 + 6.5 * label.len() as f64 + 14.0;
    }
    y + 14.0
}

fn rect(out: &mut String, x: f64, y: f64, w: f64, h: f64, fill: &str) {
    let _ = writeln!(
        out,
        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{fill}\"/>"
    );
}

fn vline(out: &mut String, x: f64, y1: f64, y2: f64, stroke: &str) {
    let _ = writeln!(
        out,
        "<line x1=\"{x:.1}\" y1=\"{y1:.1}\" x2=\"{x:.1}\" y2=\"{y2:.1}\" stroke=\"{stroke}\"/>"
    );
}

fn hline(out: &mut String, x1: f64, x2: f64, y: f64, stroke: &str) {
    let _ = writeln!(
        out,
        "<line x1=\"{x1:.1}\" y1=\"{y:.1}\" x2=\"{x2:.1}\" y2=\"{y:.1}\" stroke=\"{stroke}\"/>"
    );
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
