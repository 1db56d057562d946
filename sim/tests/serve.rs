//! `podwarden-sim serve` over real HTTP: the pods API's answers and errors, watches (from "0",
//! from a version, expired by the fault plan), the task runner's writes to the shared SQLite DB,
//! the verdict's `no_thrash` from the DB's heartbeats, and the options it refuses.
#![cfg(feature = "serve")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use podwarden_sim::scenario::Scenario;
use podwarden_sim::serve::{serve, ServeError, ServeOptions, Stopper, Verdict};
use serde_json::{json, Value};

const RUN_ID: &str = "scheduled__2026-11-23T00:00:00+00:00";

fn scenario(extra: &str) -> Scenario {
    toml::from_str(&format!(
        "name = \"served\"\nschedulers = 1\nduration_s = 60\nheal_s = 60\n{extra}\n[load]\ntasks = 2\nruntime_min_s = 2\nruntime_max_s = 2\nfailure_rate = 0.0\n[cluster]\nnodes = 1\nnode_capacity = 10\nimage_pull_ms = 200\n"
    ))
    .expect("test scenario")
}

fn temp_db(name: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("podwarden-serve-{name}-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

fn options(db: PathBuf, speed: f64) -> ServeOptions {
    ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        allow_remote: false,
        db,
        seed: Some(0),
        until_idle: false,
        speed,
        dead_after_secs: Some(30.0),
    }
}

/// A served cluster on a thread of its own.
struct Served {
    addr: SocketAddr,
    stopper: Stopper,
    done: std::thread::JoinHandle<Result<Verdict, ServeError>>,
}

impl Served {
    fn start(scenario: Scenario, options: ServeOptions) -> Self {
        let (tx, rx) = mpsc::channel();
        let done = std::thread::spawn(move || {
            serve(scenario, &options, |addr, stopper| {
                tx.send((addr, stopper)).unwrap();
            })
        });
        let (addr, stopper) = rx.recv_timeout(Duration::from_secs(30)).expect("serving");
        Self {
            addr,
            stopper,
            done,
        }
    }

    fn stop(self) -> Verdict {
        self.stopper.stop();
        self.done.join().unwrap().unwrap()
    }

    fn call(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        let code = text[9..12].parse().unwrap();
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (code, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    fn json(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let ct = if method == "PATCH" {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        self.call(method, path, ct, body.to_string().as_bytes())
    }

    /// Opens a watch and returns its lines as they come.
    fn watch(&self, path: &str) -> mpsc::Receiver<Value> {
        let mut s = TcpStream::connect(self.addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(s).lines() {
                let Ok(line) = line else { return };
                // Chunk sizes and the headers are not JSON.
                if let Ok(v) = serde_json::from_str::<Value>(line.trim()) {
                    if v.is_object() && tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }
}

fn worker_pod(name: &str, task: &str, owner: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"airflow-worker": owner, "kubernetes_executor": "True"},
            "annotations": {"dag_id": "dag_00", "task_id": task, "run_id": RUN_ID, "try_number": "1", "map_index": "-1"},
        },
        "spec": {"containers": [{"name": "base", "image": "airflow:3.3.2"}], "restartPolicy": "Never"},
    })
}

fn next_of(rx: &mpsc::Receiver<Value>, what: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(v) if what(&v) => return v,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no such watch line within 20 s");
}

#[test]
fn the_pods_api_answers_as_kubernetes_does() {
    let served = Served::start(scenario(""), options(temp_db("api"), 1.0));
    let ns = "/api/v1/namespaces/default/pods";
    assert_eq!(served.json("GET", "/version", &Value::Null).1["major"], "1");
    assert_eq!(
        served.json("GET", "/api", &Value::Null).1["versions"][0],
        "v1"
    );
    assert_eq!(
        served.json("GET", "/api/v1", &Value::Null).1["resources"][0]["name"],
        "pods"
    );

    let (code, created) = served.json("POST", ns, &worker_pod("p1", "task_00000", "7"));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["status"]["phase"], "Pending");
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, again) = served.json("POST", ns, &worker_pod("p1", "task_00000", "7"));
    assert_eq!(
        (code, again["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );
    assert_eq!(
        served
            .json(
                "POST",
                "/api/v1/namespaces/other/pods",
                &worker_pod("p1", "task_00000", "7")
            )
            .0,
        409
    );
    assert_eq!(
        served
            .json("POST", ns, &json!({"metadata": {"name": "x"}}))
            .0,
        422,
        "no task annotations"
    );
    assert_eq!(
        served.call("POST", ns, "application/json", b"{not json").0,
        400
    );
    let huge = vec![b' '; podwarden_sim_body_limit() + 10];
    assert_eq!(served.call("POST", ns, "application/json", &huge).0, 413);

    let (code, list) = served.json(
        "GET",
        &format!("{ns}?labelSelector=airflow-worker%3D7"),
        &Value::Null,
    );
    assert_eq!(
        (code, list["items"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (_, none) = served.json(
        "GET",
        &format!("{ns}?labelSelector=airflow-worker%3D8"),
        &Value::Null,
    );
    assert_eq!(none["items"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        served
            .json("GET", &format!("{ns}?labelSelector=%3D%3D"), &Value::Null)
            .0,
        400
    );
    assert_eq!(
        served
            .json(
                "GET",
                "/api/v1/pods?fieldSelector=spec.nodeName%3Dx",
                &Value::Null
            )
            .0,
        400
    );

    // Label patches, with the resource version as a precondition.
    let stale = json!({"metadata": {"labels": {"airflow-worker": "8"}, "resourceVersion": "0"}});
    assert_eq!(served.json("PATCH", &format!("{ns}/p1"), &stale).0, 409);
    let fresh = json!({"metadata": {"labels": {"airflow-worker": "8"}, "resourceVersion": rv}});
    let (code, patched) = served.json("PATCH", &format!("{ns}/p1"), &fresh);
    assert_eq!(
        (
            code,
            patched["metadata"]["labels"]["airflow-worker"].as_str()
        ),
        (200, Some("8"))
    );
    assert_eq!(
        served
            .json("PATCH", &format!("{ns}/p1"), &json!({"spec": {}}))
            .0,
        422
    );
    assert_eq!(
        served
            .call(
                "PATCH",
                &format!("{ns}/p1"),
                "application/json-patch+json",
                b"[]"
            )
            .0,
        415
    );
    assert_eq!(served.json("PATCH", &format!("{ns}/nope"), &fresh).0, 404);

    // Deletes: a precondition that does not hold, then a real one; evictions.
    let wrong_uid = json!({"preconditions": {"uid": "other"}});
    assert_eq!(
        served.json("DELETE", &format!("{ns}/p1"), &wrong_uid).0,
        409
    );
    let (code, deleting) = served.json(
        "DELETE",
        &format!("{ns}/p1"),
        &json!({"gracePeriodSeconds": 30}),
    );
    assert_eq!(code, 200);
    assert!(
        deleting["metadata"]["deletionTimestamp"].is_string(),
        "{deleting}"
    );
    assert_eq!(
        served
            .json(
                "DELETE",
                &format!("{ns}/p1?gracePeriodSeconds=-1"),
                &Value::Null
            )
            .0,
        422
    );
    assert_eq!(
        served
            .json("POST", ns, &worker_pod("p2", "task_00001", "7"))
            .0,
        201
    );
    assert_eq!(
        served
            .json("POST", &format!("{ns}/p2/eviction"), &json!({}))
            .0,
        201
    );
    assert_eq!(
        served
            .json("POST", &format!("{ns}/gone/eviction"), &json!({}))
            .0,
        404
    );
    assert_eq!(
        served
            .json("GET", "/api/v1/namespaces/default/secrets", &Value::Null)
            .0,
        404
    );
    assert_eq!(served.json("PUT", &format!("{ns}/p2"), &json!({})).0, 405);
    served.stop();
}

/// The body limit, as the server documents it (`docs/serve.md`).
fn podwarden_sim_body_limit() -> usize {
    1 << 20
}

#[test]
fn watches_stream_changes_and_end_with_410_when_the_fault_plan_expires_them() {
    let expiry = "[[faults]]\nkind = \"watch_expiry\"\nat_s = 4\nscheduler = 0\n";
    let served = Served::start(scenario(expiry), options(temp_db("watch"), 1.0));
    let ns = "/api/v1/namespaces/default/pods";
    assert_eq!(
        served
            .json("POST", ns, &worker_pod("w1", "task_00000", "1"))
            .0,
        201
    );
    // From "any version": the pod as it is, then its changes.
    let all = served.watch(&format!("{ns}?watch=1&allowWatchBookmarks=true"));
    let added = next_of(&all, |v| v["type"] == "ADDED");
    assert_eq!(added["object"]["metadata"]["name"], "w1");
    let modified = next_of(&all, |v| v["type"] == "MODIFIED");
    let rv: u64 = modified["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // From a version: only what came after it.
    let since = served.watch(&format!("{ns}?watch=true&resourceVersion={}", rv - 1));
    let first = next_of(&since, |_| true);
    assert_eq!(first["type"], "MODIFIED");
    assert_eq!(
        first["object"]["metadata"]["resourceVersion"].as_str(),
        Some(rv.to_string().as_str())
    );
    // A selector the pod does not match sees nothing of it; the fault plan ends every watch.
    let other = served.watch(&format!("{ns}?watch=1&labelSelector=airflow-worker%3D2"));
    let gone = next_of(&other, |_| true);
    assert_eq!(
        (gone["type"].as_str(), gone["object"]["code"].as_u64()),
        (Some("ERROR"), Some(410))
    );
    assert_eq!(
        next_of(&all, |v| v["type"] == "ERROR")["object"]["reason"],
        "Expired"
    );
    let verdict = served.stop();
    assert_eq!(verdict.tally.watches_expired, 3);
}

#[test]
fn the_task_process_writes_its_try_to_the_shared_db() {
    let db = temp_db("runner");
    let served = Served::start(scenario(""), options(db.clone(), 1.0));
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    // The scenario's first task arrives at once, scheduled; a scheduler queues it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = conn
            .execute("UPDATE task_instance SET state = 'queued', queued_by_job_id = '1' WHERE task_id = 'task_00000' AND state = 'scheduled'", [])
            .unwrap();
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "task_00000 never arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ns = "/api/v1/namespaces/default/pods";
    let watch = served.watch(&format!("{ns}?watch=1"));
    assert_eq!(
        served
            .json("POST", ns, &worker_pod("t1", "task_00000", "1"))
            .0,
        201
    );
    next_of(&watch, |v| v["object"]["status"]["phase"] == "Running");
    let state = |conn: &rusqlite::Connection| -> String {
        conn.query_row(
            "SELECT state FROM task_instance WHERE task_id = 'task_00000'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let done = next_of(&watch, |v| v["object"]["status"]["phase"] == "Succeeded");
    assert_eq!(
        done["object"]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        0
    );
    assert_eq!(state(&conn), "success");
    let transitions: Vec<String> = conn
        .prepare("SELECT old_state || '>' || new_state FROM task_instance_transition WHERE task_id = 'task_00000' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        transitions,
        ["scheduled>queued", "queued>running", "running>success"]
    );
    // A second pod of the same try, queued no more, exits at once without touching the row.
    assert_eq!(
        served
            .json("POST", ns, &worker_pod("t2", "task_00000", "1"))
            .0,
        201
    );
    next_of(&watch, |v| {
        v["object"]["metadata"]["name"] == "t2" && v["object"]["status"]["phase"] == "Succeeded"
    });
    assert_eq!(state(&conn), "success");
    let verdict = served.stop();
    assert!(verdict.held(), "{}", verdict.render());
    assert_eq!(verdict.tally.creates, 2);
}

#[test]
fn relabelling_a_pod_of_a_live_scheduler_is_thrash_and_of_a_dead_one_is_not() {
    let db = temp_db("thrash");
    let served = Served::start(scenario(""), options(db.clone(), 1.0));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    conn.execute("INSERT INTO job (id, state, latest_heartbeat) VALUES ('live', 'running', ?1), ('dead', 'running', ?2)", [now, now - 60_000]).unwrap();
    let ns = "/api/v1/namespaces/default/pods";
    assert_eq!(
        served
            .json("POST", ns, &worker_pod("a", "task_00000", "dead"))
            .0,
        201
    );
    assert_eq!(
        served
            .json("POST", ns, &worker_pod("b", "task_00001", "live"))
            .0,
        201
    );
    let take = json!({"metadata": {"labels": {"airflow-worker": "other"}}});
    assert_eq!(served.json("PATCH", &format!("{ns}/a"), &take).0, 200);
    let verdict = served.stop();
    assert!(
        !verdict.findings.contains_key("no_thrash"),
        "{}",
        verdict.render()
    );

    let db = temp_db("thrash2");
    let served = Served::start(scenario(""), options(db.clone(), 1.0));
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "INSERT INTO job (id, state, latest_heartbeat) VALUES ('live', 'running', ?1)",
        [now],
    )
    .unwrap();
    assert_eq!(
        served
            .json("POST", ns, &worker_pod("b", "task_00001", "live"))
            .0,
        201
    );
    assert_eq!(served.json("PATCH", &format!("{ns}/b"), &take).0, 200);
    let verdict = served.stop();
    assert!(
        verdict.findings["no_thrash"].contains("a scheduler relabelled pod b from live job live"),
        "{}",
        verdict.render()
    );
    assert!(verdict.render().contains("VIOLATED  no_thrash"));
}

#[test]
fn options_a_test_server_must_not_take_are_refused() {
    let refuse = |change: fn(&mut ServeOptions)| {
        let mut o = options(temp_db("refused"), 1.0);
        change(&mut o);
        serve(scenario(""), &o, |_, _| panic!("must not serve"))
            .unwrap_err()
            .to_string()
    };
    assert!(refuse(|o| o.listen = "0.0.0.0:0".parse().unwrap()).contains("--allow-remote"));
    assert!(refuse(|o| o.speed = 0.0).contains("--speed"));
    assert!(refuse(|o| o.speed = f64::NAN).contains("--speed"));
    assert!(refuse(|o| o.dead_after_secs = Some(-1.0)).contains("--dead-after"));
    assert!(refuse(|o| o.db = PathBuf::from("/nonexistent-dir/x.db")).contains("--db"));
}
