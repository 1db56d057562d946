//! Airflow's multi-namespace mode (`multi_namespace_mode`, `multi_namespace_mode_namespace_list`):
//! one watch per listed namespace, each with its own resource version, relist and 410; or one
//! watch across every namespace; pods created where their template says; every list sent once
//! per watched namespace (`docs/decisions.md`, "Namespaces").
mod support;

use podwarden::command::{ApiCall, Notice};
use podwarden::db::DbOutcome;
use podwarden::liveness::JobState;
use podwarden::{
    ApiOutcome, Command, CommandKind, Config, EventType, Input, InputError, PodPhase, PodTemplate,
    PodView, TaskKey, Timestamp, WatchEvent,
};
use support::*;

fn listed(names: &[&str]) -> Config {
    Config {
        multi_namespace_mode: true,
        multi_namespace_mode_namespace_list: names.iter().map(|s| (*s).to_string()).collect(),
        ..Config::default()
    }
}

/// `(namespace, resource version)` of every watch (re)started in `cmds`.
fn watch_starts(cmds: &[Command]) -> Vec<(Option<String>, String)> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Notice(Notice::WatchPods {
                namespace,
                resource_version,
                ..
            }) => Some((namespace.clone(), resource_version.clone())),
            _ => None,
        })
        .collect()
}

fn ns(s: &str) -> Option<String> {
    Some(s.to_string())
}

fn submit_in(
    h: &mut Harness,
    key: &TaskKey,
    namespace: Option<&str>,
) -> Result<Vec<Command>, InputError> {
    h.try_input(
        format!("submit {key}"),
        Input::Submit {
            key: key.clone(),
            template: PodTemplate {
                namespace: namespace.map(str::to_string),
                ..PodTemplate::default()
            },
        },
    )
}

/// Submits `key` with a template in `namespace`, acknowledges its create, returns its pod.
fn launch_in(h: &mut Harness, key: &TaskKey, namespace: &str) -> PodView {
    let cmds = submit_in(h, key, Some(namespace)).expect("a watched namespace");
    let cmds = h.until_created(cmds, key);
    let pod = created_pod(&cmds).expect("a CreatePod");
    h.ack_all(&cmds);
    pod
}

#[test]
fn a_namespace_list_starts_one_watch_per_namespace_each_from_its_own_list() {
    let mut ex = podwarden::Executor::new(listed(&["default", "etl"]), "5", Timestamp(0)).unwrap();
    let start = drain_commands(&mut ex);
    let sent: Vec<_> = lists(&start)
        .into_iter()
        .map(|l| (l.namespace, l.label_selector, l.field_selector))
        .collect();
    let selector = "airflow-worker=5,airflow_executor_done!=True".to_string();
    assert_eq!(
        sent,
        [
            (ns("default"), selector.clone(), None),
            (ns("etl"), selector, None)
        ]
    );
    // Each list's answer starts its own watch at its own resource version.
    let ids: Vec<_> = start.iter().map(|c| c.id).collect();
    for (id, rv) in ids.iter().zip(["17", "42"]) {
        ex.handle_input(
            Timestamp(1),
            Input::ApiResult {
                id: *id,
                outcome: ApiOutcome::Listed {
                    pods: vec![],
                    resource_version: rv.into(),
                },
            },
        )
        .unwrap();
    }
    let out = drain_commands(&mut ex);
    assert_eq!(
        watch_starts(&out),
        [(ns("default"), "17".into()), (ns("etl"), "42".into())]
    );
    let rvs: Vec<(Option<&str>, &str)> = ex.resource_versions().collect();
    assert_eq!(rvs, [(Some("default"), "17"), (Some("etl"), "42")]);
}

#[test]
fn every_namespace_is_one_watch_and_one_list_without_a_namespace() {
    let mut ex = podwarden::Executor::new(listed(&[]), "5", Timestamp(0)).unwrap();
    let start = drain_commands(&mut ex);
    let sent = lists(&start);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].namespace, None, "list_pod_for_all_namespaces");
    ex.handle_input(
        Timestamp(1),
        Input::ApiResult {
            id: start[0].id,
            outcome: ApiOutcome::Listed {
                pods: vec![],
                resource_version: "9".into(),
            },
        },
    )
    .unwrap();
    assert_eq!(watch_starts(&drain_commands(&mut ex)), [(None, "9".into())]);
}

#[test]
fn events_advance_only_their_own_namespaces_resource_version() {
    let mut h = Harness::new(listed(&["default", "etl"]));
    let k = key("t");
    let mut pod = launch_in(&mut h, &k, "etl");
    pod.resource_version = "77".into();
    h.event(EventType::Added, &pod);
    let rvs: Vec<(Option<&str>, &str)> = h.ex.resource_versions().collect();
    assert_eq!(rvs, [(Some("default"), "1"), (Some("etl"), "77")]);
    // A bookmark names its watch; without a name there is no telling which, and none moves.
    let bookmark = |rv: &str, namespace: Option<&str>| Input::Watch {
        event: WatchEvent::Bookmark {
            resource_version: rv.into(),
            namespace: namespace.map(str::to_string),
        },
    };
    h.input("bookmark default".into(), bookmark("80", Some("default")));
    h.input("bookmark unnamed".into(), bookmark("99", None));
    let rvs: Vec<(Option<&str>, &str)> = h.ex.resource_versions().collect();
    assert_eq!(rvs, [(Some("default"), "80"), (Some("etl"), "77")]);
}

#[test]
fn a_410_relists_only_its_namespace_and_reconciles_only_its_pods() {
    let mut h = Harness::new(listed(&["default", "etl"]));
    let (a, b) = (key("in-default"), key("in-etl"));
    let pod_a = launch_in(&mut h, &a, "default");
    let pod_b = launch_in(&mut h, &b, "etl");
    h.event(
        EventType::Added,
        &with_phase(pod_a, PodPhase::Running, "20"),
    );
    h.event(
        EventType::Added,
        &with_phase(pod_b, PodPhase::Running, "21"),
    );
    let out = h.input(
        "410 on etl".into(),
        Input::WatchExpired {
            namespace: ns("etl"),
        },
    );
    let sent = lists(&out);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].namespace,
        ns("etl"),
        "only the expired watch relists"
    );
    // The etl list is empty: the etl pod vanished; the default pod is not in the etl list's
    // scope and stays tracked.
    let out = h.answer(
        first(&out, "ListPods").id,
        ApiOutcome::Listed {
            pods: vec![],
            resource_version: "50".into(),
        },
    );
    assert_eq!(watch_starts(&out), [(ns("etl"), "50".into())]);
    // The etl pod's deletion is being decided (the DB is asked whether its task started);
    // nothing is asked about the default pod.
    let asked: Vec<&TaskKey> = out
        .iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Db(podwarden::command::DbQuery::QueryTaskStates { keys }) => Some(keys),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(asked, [&b]);
    assert!(
        h.ex.is_tracking(&a),
        "another namespace's pod is not judged by this list"
    );
    let rvs: Vec<(Option<&str>, &str)> = h.ex.resource_versions().collect();
    assert_eq!(rvs, [(Some("default"), "20"), (Some("etl"), "50")]);
    // An expiry naming a namespace no watch covers is taken as every watch: none is left dead.
    let out = h.input(
        "410 on ml".into(),
        Input::WatchExpired {
            namespace: ns("ml"),
        },
    );
    let scopes: Vec<_> = lists(&out).into_iter().map(|l| l.namespace).collect();
    assert_eq!(scopes, [ns("default"), ns("etl")]);
    for l in lists(&out) {
        h.answer(
            l.id,
            ApiOutcome::Listed {
                pods: vec![],
                resource_version: "60".into(),
            },
        );
    }
    // An expiry that names no watch relists every one.
    let out = h.input(
        "every watch lost".into(),
        Input::WatchExpired { namespace: None },
    );
    let scopes: Vec<_> = lists(&out).into_iter().map(|l| l.namespace).collect();
    assert_eq!(scopes, [ns("default"), ns("etl")]);
}

#[test]
fn a_failed_relist_of_one_namespace_is_retried_without_the_others() {
    let mut h = Harness::new(listed(&["default", "etl"]));
    let out = h.input(
        "410 on etl".into(),
        Input::WatchExpired {
            namespace: ns("etl"),
        },
    );
    let out = h.answer(
        first(&out, "ListPods").id,
        ApiOutcome::Failed {
            failure: podwarden::ApiFailure::Timeout,
        },
    );
    assert!(lists(&out).is_empty());
    let out = h.advance(2_000);
    let scopes: Vec<_> = lists(&out).into_iter().map(|l| l.namespace).collect();
    assert_eq!(
        scopes,
        [ns("etl")],
        "the back-off retries the failed namespace only"
    );
}

#[test]
fn a_pod_is_created_in_its_templates_namespace_and_an_unwatched_one_is_refused() {
    let mut h = Harness::new(listed(&["default", "etl"]));
    let pod = launch_in(&mut h, &key("etl-task"), "etl");
    assert_eq!(pod.namespace, "etl");
    let pod = h.launch(&key("no-namespace"));
    assert_eq!(pod.namespace, "default", "the configured namespace");
    assert_eq!(
        submit_in(&mut h, &key("ml-task"), Some("ml")).unwrap_err(),
        InputError::UnwatchedTemplateNamespace("ml".into())
    );
    assert!(!h.ex.is_tracking(&key("ml-task")));
    assert_eq!(
        submit_in(&mut h, &key("bad"), Some("Bad_NS")).unwrap_err(),
        InputError::InvalidTemplateNamespace("Bad_NS".into())
    );
    // Single-namespace mode watches only `namespace`: a template elsewhere is refused too
    // (Airflow would create the pod and never see it again).
    let mut single = Harness::new(Config::default());
    assert_eq!(
        submit_in(&mut single, &key("etl-task"), Some("etl")).unwrap_err(),
        InputError::UnwatchedTemplateNamespace("etl".into())
    );
    // Every namespace is watched: any valid one is accepted.
    let mut all = Harness::new(listed(&[]));
    let pod = launch_in(&mut all, &key("anywhere"), "reporting");
    assert_eq!(pod.namespace, "reporting");
}

#[test]
fn adoption_lists_go_to_every_listed_namespace() {
    let cfg = Config {
        wait_for_unknown_owners: false,
        ..listed(&["default", "etl"])
    };
    let mut h = Harness::new(cfg);
    let out = h.heartbeats(&[
        ("5", JobState::Running, 1_000_000),
        ("7", JobState::Running, 1_000_000),
    ]);
    let scopes: Vec<_> = lists(&out)
        .into_iter()
        .filter(|l| l.field_selector.as_deref() == Some("status.phase=Succeeded"))
        .map(|l| l.namespace)
        .collect();
    assert_eq!(scopes, [ns("default"), ns("etl")], "completed pods");
    h.ack_all(&out);
    // An orphan hand-over lists each dead owner's pods in each namespace.
    let out = h.adopt_orphans(&[(key("a"), Some("3")), (key("b"), Some("4"))]);
    let orphan_lists: Vec<_> = lists(&out)
        .into_iter()
        .filter(|l| {
            l.field_selector.as_deref() == Some("status.phase!=Succeeded")
                && !l.label_selector.contains("notin")
        })
        .map(|l| (l.namespace, l.label_selector))
        .collect();
    let sel = |owner: &str| {
        format!("kubernetes_executor=True,airflow-worker={owner},airflow_executor_done!=True")
    };
    assert_eq!(
        orphan_lists,
        [
            (ns("default"), sel("3")),
            (ns("etl"), sel("3")),
            (ns("default"), sel("4")),
            (ns("etl"), sel("4")),
        ]
    );
    // The hand-over resolves only once every list is answered.
    let ids: Vec<_> = lists(&out)
        .into_iter()
        .filter(|l| {
            l.label_selector.contains("airflow-worker=") && !l.label_selector.contains("notin")
        })
        .map(|l| l.id)
        .collect();
    let empty = || ApiOutcome::Listed {
        pods: vec![],
        resource_version: "5".into(),
    };
    for id in &ids[..3] {
        let out = h.answer(*id, empty());
        assert!(!kinds(&out).contains(&"OrphansResolved"));
    }
    let out = h.answer(ids[3], empty());
    assert!(kinds(&out).contains(&"OrphansResolved"));
}

#[test]
fn the_zombie_sweep_gathers_every_namespace_before_its_one_db_question() {
    let cfg = Config {
        kpo_zombie_pod_cleanup_enabled: true,
        kpo_zombie_pod_cleanup_max_deletes_per_loop: 1,
        ..listed(&["default", "etl"])
    };
    let mut h = Harness::new(cfg);
    let out = h.advance(300_000);
    let zombie_lists: Vec<_> = out
        .iter()
        .filter(|c| {
            matches!(&c.kind, CommandKind::Api(ApiCall::ListPods { label_selector, .. }) if label_selector.to_string() == "kubernetes_pod_operator=True")
        })
        .collect();
    assert_eq!(zombie_lists.len(), 2);
    let kpo = |namespace: &str, name: &str, created_s: u64| {
        let mut pod = PodView::new(namespace, name);
        pod.labels = TaskKey::new("dag", name, "run", 1).to_labels();
        pod.labels
            .insert("kubernetes_pod_operator".into(), "True".into());
        pod.phase = Some(PodPhase::Running);
        pod.creation_timestamp = Some(Timestamp(created_s * 1000));
        pod
    };
    let first_answer = h.answer(
        zombie_lists[0].id,
        ApiOutcome::Listed {
            pods: vec![kpo("default", "newer", 50)],
            resource_version: "3".into(),
        },
    );
    assert!(
        kinds(&first_answer).is_empty(),
        "no DB question before every namespace is listed"
    );
    let out = h.answer(
        zombie_lists[1].id,
        ApiOutcome::Listed {
            pods: vec![kpo("etl", "older", 10)],
            resource_version: "3".into(),
        },
    );
    assert_eq!(kinds(&out), ["QueryUnfinishedTasks"]);
    let out = h.answer_db(out[0].id, DbOutcome::UnfinishedTasks { tasks: vec![] });
    let deleted: Vec<String> = out
        .iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Api(ApiCall::DeletePod { pod, .. }) => Some(pod.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        deleted,
        ["etl/older"],
        "the cap of 1 covers both namespaces, oldest first"
    );
}

#[test]
fn airflows_comma_separated_namespace_list_is_read() {
    let cfg: Config = toml::from_str(
        r#"
        multi_namespace_mode = true
        multi_namespace_mode_namespace_list = "default, etl,ml"
        "#,
    )
    .unwrap();
    assert_eq!(
        cfg.multi_namespace_mode_namespace_list,
        ["default", "etl", "ml"]
    );
    assert_eq!(cfg.validate(), Ok(()));
    let bad: Config = toml::from_str(r#"multi_namespace_mode_namespace_list = "default""#).unwrap();
    assert_eq!(
        bad.validate().unwrap_err().to_string(),
        "multi_namespace_mode_namespace_list is set but multi_namespace_mode is false: set \
         multi_namespace_mode = true, or remove the list"
    );
}
