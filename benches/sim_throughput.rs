//! Simulator throughput: simulated events (trace lines) and core inputs handled per second, for
//! `steady-ha` (3 schedulers, 10,000 tasks in an hour) and `sigterm-storm`, on one core (a run
//! is single-threaded).
//!
//! ```text
//! cargo bench --bench sim_throughput -- --warm-up-time 1 --measurement-time 10
//! ```

use std::cell::Cell;
use std::rc::Rc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use podwarden_sim::scenario::Scenario;
use podwarden_sim::trace::{LineSink, Trace};
use podwarden_sim::World;

fn scenario(name: &str) -> Scenario {
    let path = format!("{}/sim/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    Scenario::load(&path).expect("a shipped scenario")
}

/// (core inputs, trace lines) of one run.
fn counts(s: &Scenario) -> (u64, u64) {
    let inputs = Rc::new(Cell::new(0));
    let counted = Rc::clone(&inputs);
    let sink = LineSink::new(move |line| {
        if line.contains("\"input\":") {
            counted.set(counted.get() + 1);
        }
    });
    let outcome = World::new(s.clone(), None, Trace::writing(Box::new(sink)))
        .expect("valid")
        .run();
    assert!(outcome.violation.is_none(), "{:?}", outcome.violation);
    (inputs.get(), outcome.trace_lines)
}

fn bench_sim(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim_throughput");
    group.sample_size(10);
    for name in ["steady-ha", "sigterm-storm"] {
        let s = scenario(name);
        let (inputs, lines) = counts(&s);
        println!("{name}: {inputs} core inputs, {lines} simulated events (trace lines) per run");
        // Timed with the hashing sink the CLI uses when no trace file is asked for.
        group.throughput(Throughput::Elements(inputs));
        group.bench_function(format!("{name}/core_inputs"), |b| {
            b.iter(|| {
                World::new(s.clone(), None, Trace::hashing())
                    .expect("valid")
                    .run()
            });
        });
        group.throughput(Throughput::Elements(lines));
        group.bench_function(format!("{name}/events"), |b| {
            b.iter(|| {
                World::new(s.clone(), None, Trace::hashing())
                    .expect("valid")
                    .run()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_sim);
criterion_main!(benches);
