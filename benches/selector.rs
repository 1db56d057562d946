//! The label selector the simulator's API server evaluates on every list and watch: formatting
//! and parsing Airflow's completed-pod selector (`airflow-worker notin (…)` over 10 schedulers),
//! and matching it against 100,000 pods.
//!
//! ```text
//! cargo bench --bench selector -- --warm-up-time 1 --measurement-time 3
//! ```

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use podwarden::selector::LabelSelector;

fn selector() -> LabelSelector {
    LabelSelector::new()
        .eq("kubernetes_executor", "True")
        .not_in("airflow-worker", (0..10).map(|i| format!("{}", 1000 + i)))
        .ne("airflow_executor_done", "True")
}

/// 100,000 worker pods' labels, owned by 20 schedulers, a tenth of them marked done.
fn pods() -> Vec<BTreeMap<String, String>> {
    (0..100_000)
        .map(|i| {
            let mut l = BTreeMap::new();
            l.insert("kubernetes_executor".to_string(), "True".to_string());
            l.insert("airflow-worker".to_string(), format!("{}", 1000 + i % 20));
            l.insert(
                "dag_id".to_string(),
                format!("customer_{:04}_daily", i % 997),
            );
            l.insert("task_id".to_string(), format!("extract_{i:07}"));
            l.insert("try_number".to_string(), "1".to_string());
            if i % 10 == 0 {
                l.insert("airflow_executor_done".to_string(), "True".to_string());
            }
            l
        })
        .collect()
}

fn bench_selector(c: &mut Criterion) {
    let mut group = c.benchmark_group("selector");
    let sel = selector();
    let text = sel.to_string();
    group.bench_function("format", |b| b.iter(|| sel.to_string()));
    group.bench_function("parse", |b| {
        b.iter(|| text.parse::<LabelSelector>().expect("valid"));
    });
    let pods = pods();
    // A guard that the bench measures real work: half the pods match (10 of 20 owners, not done).
    let matching = pods.iter().filter(|l| sel.matches(l)).count();
    assert_eq!(matching, 45_000);
    group.throughput(Throughput::Elements(pods.len() as u64));
    group.bench_function("match_100k_pods", |b| {
        b.iter(|| pods.iter().filter(|l| sel.matches(l)).count());
    });
    group.finish();
}

criterion_group!(benches, bench_selector);
criterion_main!(benches);
