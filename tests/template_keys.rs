//! A pod template may not use the executor's own labels and annotations, and its keys must be
//! valid Kubernetes keys (`docs/decisions.md`, Launch). `Submit` refuses such a template with a
//! typed error and tracks nothing; a template handed over with an orphan is dropped instead.
//!
//! The reserved names are iterated from `label::RESERVED_LABELS` and `RESERVED_ANNOTATIONS`, so a
//! name added there is covered here without a change; and
//! `every_label_and_annotation_the_executor_uses_is_reserved` drives an executor through every
//! path that writes or selects on a label and checks that it used exactly the reserved names.
mod support;

use podwarden::command::{ApiCall, Notice};
use std::collections::{BTreeMap, BTreeSet};

use podwarden::adoption::OrphanTask;
use podwarden::db::TaskState;
use podwarden::label::{self, RESERVED_ANNOTATIONS, RESERVED_LABELS};
use podwarden::{
    ApiOutcome, Command, CommandKind, Config, EventType, Input, InputError, PodPhase, PodTemplate,
    TaskKey, TemplateField,
};
use proptest::prelude::*;
use support::*;

/// Submits `key` with `template`; on success, waits for its `CreatePod` (the next loop if this
/// one's batch is used) and returns every command up to it.
fn submit(
    h: &mut Harness,
    key: &TaskKey,
    template: PodTemplate,
) -> Result<Vec<Command>, InputError> {
    let cmds = h.try_input(
        format!("submit {key}"),
        Input::Submit {
            key: key.clone(),
            template,
        },
    )?;
    Ok(h.until_created(cmds, key))
}

/// The `CreatePod` commands in `cmds` for `key`'s try.
fn creates_for<'a>(cmds: &'a [Command], key: &TaskKey) -> Vec<&'a Command> {
    cmds.iter()
        .filter(|c| match &c.kind {
            CommandKind::Api(ApiCall::CreatePod { manifest }) => {
                TaskKey::from_annotations(&manifest.annotations).as_ref() == Ok(key)
            }
            _ => false,
        })
        .collect()
}

/// Submits `key` with a template that must be refused with `want`: the executor emits nothing,
/// now or at the next launch loops, does not track the try, and then accepts the same try with
/// a clean template (so the refused one left no trace, not even a duplicate).
fn assert_refused(h: &mut Harness, key: &TaskKey, template: PodTemplate, want: &InputError) {
    let before = h.commands.len();
    let tasks = h.ex.state_size().tasks;
    let got = h.try_input(
        format!("submit {key}"),
        Input::Submit {
            key: key.clone(),
            template,
        },
    );
    assert_eq!(got.as_ref().err(), Some(want), "{key}");
    assert_eq!(h.commands.len(), before, "a refused submit emits nothing");
    assert!(!h.ex.is_tracking(key));
    assert_eq!(h.ex.state_size().tasks, tasks);
    h.advance(10_000);
    assert!(
        creates_for(&h.commands[before..], key).is_empty(),
        "no pod for a refused try"
    );
    let out = submit(h, key, PodTemplate::default()).expect("the clean template is accepted");
    assert_eq!(creates_for(&out, key).len(), 1);
    // The API server answers it: the next try's create waits for that answer.
    h.ack_all(&out);
}

fn with_label(key: &str, value: &str) -> PodTemplate {
    PodTemplate {
        labels: labels(&[(key, value)]),
        ..PodTemplate::default()
    }
}

fn with_annotation(key: &str, value: &str) -> PodTemplate {
    PodTemplate {
        annotations: labels(&[(key, value)]),
        ..PodTemplate::default()
    }
}

#[test]
fn submit_refuses_every_reserved_label() {
    let mut h = Harness::new(Config::default());
    for (i, &name) in RESERVED_LABELS.iter().enumerate() {
        // `True` is what makes `airflow_executor_done`, `airflow_pod_revoked` and
        // `kubernetes_pod_operator` harmful; any value is refused.
        for value in [label::TRUE, "x"] {
            let k = key(&format!("label_{i}_{value}"));
            let want = InputError::ReservedTemplateKey {
                kind: TemplateField::Label,
                key: name.to_string(),
            };
            assert_refused(&mut h, &k, with_label(name, value), &want);
        }
    }
}

#[test]
fn submit_refuses_every_reserved_annotation() {
    let mut h = Harness::new(Config::default());
    for (i, &name) in RESERVED_ANNOTATIONS.iter().enumerate() {
        let k = key(&format!("annotation_{i}"));
        let want = InputError::ReservedTemplateKey {
            kind: TemplateField::Annotation,
            key: name.to_string(),
        };
        assert_refused(&mut h, &k, with_annotation(name, "1"), &want);
    }
}

#[test]
fn submit_refuses_invalid_template_keys_and_label_values() {
    let mut h = Harness::new(Config::default());
    let long_name = "n".repeat(64);
    let long_prefix = format!("{}/x", "p".repeat(254));
    let invalid_keys = [
        "",
        "a/b/c",
        "/name",
        "example.com/",
        long_name.as_str(),
        long_prefix.as_str(),
        "-team",
        "team.",
        "with space",
    ];
    for (i, bad) in invalid_keys.iter().enumerate() {
        let k = key(&format!("bad_label_key_{i}"));
        let want = InputError::InvalidTemplateKey {
            kind: TemplateField::Label,
            key: (*bad).to_string(),
        };
        assert_refused(&mut h, &k, with_label(bad, "v"), &want);
        let k = key(&format!("bad_annotation_key_{i}"));
        let want = InputError::InvalidTemplateKey {
            kind: TemplateField::Annotation,
            key: (*bad).to_string(),
        };
        assert_refused(&mut h, &k, with_annotation(bad, "v"), &want);
    }
    // An uppercase prefix: a bad label key, a good annotation key (Kubernetes lowercases those).
    let k = key("uppercase_prefix");
    let want = InputError::InvalidTemplateKey {
        kind: TemplateField::Label,
        key: "Example.com/team".into(),
    };
    assert_refused(&mut h, &k, with_label("Example.com/team", "v"), &want);
    let out = submit(
        &mut h,
        &key("uppercase_annotation"),
        with_annotation("Example.com/team", "v"),
    )
    .expect("accepted");
    assert_eq!(creates_for(&out, &key("uppercase_annotation")).len(), 1);
    h.ack_all(&out);
    // Bad label values keep their own error.
    for (i, bad) in ["-data", "a b", "v".repeat(64).as_str()].iter().enumerate() {
        let k = key(&format!("bad_value_{i}"));
        let want = InputError::InvalidTemplateLabel {
            key: "team".into(),
            value: (*bad).to_string(),
        };
        assert_refused(&mut h, &k, with_label("team", bad), &want);
    }
}

/// A handed-over template that `Submit` would refuse is dropped, not used: the try is adopted
/// all the same, and its pod's failure before the task started fails it as for a try handed
/// over without a template (no DB question, no requeue, no pod made from the template). The
/// same hand-over with a clean template requeues.
#[test]
fn an_orphan_handed_over_with_a_refused_template_is_adopted_without_it() {
    let cfg = Config {
        pod_launch_failure_retries: 1,
        ..Config::default()
    };
    for (template, requeued) in [
        (with_label(label::AIRFLOW_WORKER, "1"), false),
        (with_annotation("a/b/c", "x"), false),
        (with_label("team", "data"), true),
    ] {
        let mut h = Harness::new(cfg.clone());
        let k = key("orphan");
        let out = h.input(
            "adopt orphans".into(),
            Input::AdoptOrphans {
                tis: vec![OrphanTask {
                    key: k.clone(),
                    queued_by: Some("1".into()),
                    template: Some(template.clone()),
                }],
            },
        );
        let list = out
            .iter()
            .find(|c| matches!(&c.kind, CommandKind::Api(ApiCall::ListPods { field_selector: Some(f), .. }) if f.to_string() == "status.phase!=Succeeded"))
            .expect("orphan list")
            .id;
        let mut pod = worker_pod("pod-orphan", &k, PodPhase::Running);
        pod.labels.insert(label::AIRFLOW_WORKER.into(), "1".into());
        let out = h.answer(
            list,
            ApiOutcome::Listed {
                pods: vec![pod.clone()],
                resource_version: "5".into(),
            },
        );
        h.answer(first(&out, "PatchLabels").id, ApiOutcome::Ok);
        assert!(h.ex.is_tracking(&k), "adopted whatever its template");

        pod.labels
            .insert(label::AIRFLOW_WORKER.into(), SCHEDULER.into());
        let out = h.event(EventType::Modified, &prestart_failed(pod));
        if requeued {
            let out = h.answer_state_of(&out, Some(TaskState::Queued));
            let out = h.advance(10_000).into_iter().chain(out).collect::<Vec<_>>();
            let create = created_pod(&out).expect("a new pod from the template");
            assert_eq!(create.labels["team"], "data");
        } else {
            assert!(!kinds(&out).contains(&"QueryTaskStates"), "{template:?}");
            assert_eq!(reports(&out).len(), 1, "{template:?}");
            assert!(!h.ex.is_tracking(&k));
            h.advance(10_000);
            assert!(creates_for(&h.commands, &k).is_empty(), "{template:?}");
        }
    }
}

/// Drives one executor through every path that writes a label or annotation or selects on one
/// (start-up relist and watch, launch of a mapped try, a kept finished pod, revoke of a tracked
/// and of an untracked try, orphan and completed-pod adoption, the zombie sweep) and collects
/// the keys it used: exactly the reserved lists, so a name the core starts using must be
/// reserved, and a reserved name no path uses is noticed.
#[test]
fn every_label_and_annotation_the_executor_uses_is_reserved() {
    let mut h = Harness::new(Config {
        delete_worker_pods: false,
        kpo_zombie_pod_cleanup_enabled: true,
        ..Config::default()
    });
    let template = PodTemplate {
        labels: labels(&[("team", "data")]),
        annotations: labels(&[("example.com/owner", "etl")]),
        ..PodTemplate::default()
    };
    // Launch a mapped try, and keep its finished pod (labelled done).
    let mapped = key("mapped").with_map_index(2);
    let cmds = submit(&mut h, &mapped, template.clone()).expect("accepted");
    let pod = created_pod(&cmds).expect("CreatePod");
    h.ack_all(&cmds);
    let out = h.event(
        EventType::Modified,
        &with_phase(pod, PodPhase::Succeeded, "11"),
    );
    h.ack_all(&out);
    // Revoke a tracked try (labelled revoked) and an untracked one (listed by identity).
    let revoked = key("revoked");
    h.launch(&revoked);
    let out = h.input("revoke".into(), Input::Revoke { key: revoked });
    h.ack_all(&out);
    h.input(
        "revoke untracked".into(),
        Input::Revoke {
            key: key("gone").with_map_index(0),
        },
    );
    // Orphan adoption (list by owner, relabel) and completed-pod adoption.
    let out = h.adopt_orphans(&[(key("orphan"), Some("1"))]);
    let list = out
        .iter()
        .find(|c| matches!(&c.kind, CommandKind::Api(ApiCall::ListPods { field_selector: Some(f), .. }) if f.to_string() == "status.phase!=Succeeded"))
        .expect("orphan list")
        .id;
    let mut orphan = worker_pod("pod-orphan", &key("orphan"), PodPhase::Running);
    orphan
        .labels
        .insert(label::AIRFLOW_WORKER.into(), "1".into());
    h.answer(
        list,
        ApiOutcome::Listed {
            pods: vec![orphan],
            resource_version: "5".into(),
        },
    );
    h.heartbeats(&[(SCHEDULER, podwarden::liveness::JobState::Running, h.now.0)]);
    // The zombie sweep.
    h.advance(300_000);

    let mut used_labels = BTreeSet::new();
    let mut used_annotations = BTreeSet::new();
    for c in h.startup.iter().chain(&h.commands) {
        match &c.kind {
            CommandKind::Api(ApiCall::CreatePod { manifest }) => {
                let own = |m: &BTreeMap<String, String>, t: &BTreeMap<String, String>| {
                    m.keys()
                        .filter(|k| !t.contains_key(*k))
                        .cloned()
                        .collect::<Vec<_>>()
                };
                used_labels.extend(own(&manifest.labels, &template.labels));
                used_annotations.extend(own(&manifest.annotations, &template.annotations));
            }
            CommandKind::Api(ApiCall::PatchLabels { labels, .. }) => {
                used_labels.extend(labels.keys().cloned())
            }
            CommandKind::Api(ApiCall::ListPods { label_selector, .. })
            | CommandKind::Notice(Notice::WatchPods { label_selector, .. }) => {
                used_labels.extend(label_selector.requirements().iter().map(|r| r.key.clone()))
            }
            _ => {}
        }
    }
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|n| (*n).to_string())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(used_labels, set(RESERVED_LABELS));
    assert_eq!(used_annotations, set(RESERVED_ANNOTATIONS));
}

// ---- property ------------------------------------------------------------------------------

/// A DNS-1123 subdomain (lowercase; short parts, the 253-character bound is a unit test's).
const PREFIX: &str = "[a-z0-9]([-a-z0-9]{0,6}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,6}[a-z0-9])?){0,3}";
/// The same, with uppercase letters (valid in an annotation key's prefix).
const ANY_CASE_PREFIX: &str =
    "[a-zA-Z0-9]([-a-zA-Z0-9]{0,6}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,6}[a-zA-Z0-9])?){0,3}";
/// A key's name part: 1 to 63 characters.
const NAME: &str = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?";

/// Valid keys, some of them near-misses of reserved names (another case, a prefix).
fn arb_key(
    reserved: &'static [&'static str],
    uppercase_prefix: bool,
) -> impl Strategy<Value = String> {
    let prefix = if uppercase_prefix {
        ANY_CASE_PREFIX
    } else {
        PREFIX
    };
    let plain = prop_oneof![
        NAME.prop_map(String::from),
        (prefix, NAME).prop_map(|(p, n)| format!("{p}/{n}")),
        proptest::sample::select(reserved.to_vec()).prop_map(|r| r.to_uppercase()),
        proptest::sample::select(reserved.to_vec())
            .prop_map(|r| format!("example.com/{}", r.rsplit('/').next().unwrap_or(r))),
    ];
    plain.prop_filter("not reserved", move |k| !reserved.contains(&k.as_str()))
}

fn arb_label_value() -> impl Strategy<Value = String> {
    "([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?"
}

fn arb_template() -> impl Strategy<Value = PodTemplate> {
    (
        proptest::collection::btree_map(arb_key(RESERVED_LABELS, false), arb_label_value(), 0..6),
        proptest::collection::btree_map(arb_key(RESERVED_ANNOTATIONS, true), "\\PC{0,40}", 0..6),
    )
        .prop_map(|(labels, annotations)| PodTemplate {
            labels,
            annotations,
            ..PodTemplate::default()
        })
}

/// Arbitrary keys, reserved names and near-misses, valid or not.
fn arb_any_key() -> impl Strategy<Value = String> {
    prop_oneof![
        arb_key(RESERVED_LABELS, true),
        proptest::sample::select([RESERVED_LABELS, RESERVED_ANNOTATIONS].concat())
            .prop_map(String::from),
        "[-a-zA-Z0-9_./ ]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any template whose keys are valid and unreserved and whose label values are valid is
    /// accepted by `Submit`, and reaches the pod unchanged next to the executor's own labels.
    #[test]
    fn a_template_of_valid_unreserved_keys_is_accepted(template in arb_template()) {
        for k in template.labels.keys() {
            prop_assert!(label::is_valid_key(k), "{k:?}");
        }
        let mut h = Harness::new(Config::default());
        let k = key("t");
        let cmds = submit(&mut h, &k, template.clone())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let CommandKind::Api(ApiCall::CreatePod { manifest }) = &creates_for(&cmds, &k)[0].kind else {
            unreachable!()
        };
        for (name, value) in &template.labels {
            prop_assert_eq!(manifest.labels.get(name), Some(value));
        }
        for (name, value) in &template.annotations {
            prop_assert_eq!(manifest.annotations.get(name), Some(value));
        }
        prop_assert_eq!(manifest.labels.len(), template.labels.len() + key("t").to_labels().len() + 3);
    }

    /// `validate` accepts a template exactly when every key is valid and unreserved and every
    /// label value valid.
    #[test]
    fn validate_accepts_exactly_valid_unreserved_keys(
        labels in proptest::collection::btree_map(arb_any_key(), prop_oneof![arb_label_value(), "\\PC{0,4}"], 0..4),
        annotations in proptest::collection::btree_map(arb_any_key(), "\\PC{0,4}", 0..4),
    ) {
        let ok = labels.iter().all(|(k, v)| {
            label::is_valid_key(k) && !RESERVED_LABELS.contains(&k.as_str()) && label::is_valid_value(v)
        }) && annotations.keys().all(|k| {
            label::is_valid_annotation_key(k) && !RESERVED_ANNOTATIONS.contains(&k.as_str())
        });
        let template = PodTemplate { labels, annotations, ..PodTemplate::default() };
        prop_assert_eq!(template.validate().is_ok(), ok, "{:?}", template.validate());
    }
}
