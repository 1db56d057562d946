//! The Indexed Job in `docs/scale-out.md` is one Kubernetes accepts the fields of: read from the
//! doc's yaml block, it deserialises as k8s-openapi's `Job`, and serialised again it is the same
//! document (a field `Job` does not know, or a value of the wrong type, would be dropped or
//! refused). The commands it runs are checked in `sim/tests/scale_out_doc.rs`.
//!
//! It lives in the core crate, beside the `k8s-openapi` conversions, so that CI's
//! `cargo test -p podwarden-core --features k8s-openapi` runs it without building the simulator
//! again with the feature.
#![cfg(feature = "k8s-openapi")]

use k8s_openapi::api::batch::v1::Job;

fn manifest() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/scale-out.md");
    let doc = std::fs::read_to_string(path).expect("docs/scale-out.md");
    let start = doc.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let len = doc[start..].find("```").expect("the block ends");
    doc[start..start + len].to_string()
}

#[test]
fn the_scale_out_job_is_a_kubernetes_job_and_loses_no_field() {
    let yaml = manifest();
    let as_written: serde_json::Value = serde_yaml::from_str(&yaml).expect("the block is YAML");
    let job: Job = serde_yaml::from_str(&yaml).expect("the block is a batch/v1 Job");
    let spec = job.spec.as_ref().expect("a Job spec");
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!(spec.completions, Some(1000));
    assert_eq!(spec.parallelism, Some(100));
    let pod = spec.template.spec.as_ref().expect("a pod template");
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let args = pod.containers[0].args.as_ref().expect("the shard command");
    assert!(
        args[0].contains("--shard \"${JOB_COMPLETION_INDEX}/1000\""),
        "{args:?}"
    );
    // Every field survives the round trip through Kubernetes' type: none is unknown to it.
    let round_trip = serde_json::to_value(&job).expect("a Job serialises");
    assert_eq!(round_trip, as_written);
}
