//! The shared metadata DB, a real SQLite file: its schema (`schema.sql`), the served task
//! processes' writes (Airflow's task runner), and the server's reads of what the schedulers
//! wrote (for the verdict).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};

use podwarden_core::db::TaskState;
use podwarden_core::TaskKey;

use crate::world::served::TaskRecords;

/// The schema, created in the `--db` file by `serve`.
pub(crate) const SCHEMA: &str = include_str!("schema.sql");

/// How long a write waits for another process's lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Unix milliseconds now, on this machine's wall clock (the DB's time: every process shares it).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn unix_ms_sql() -> i64 {
    i64::try_from(unix_ms()).unwrap_or(i64::MAX)
}

/// Opens `path` for sharing with the other processes.
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Creates the schema in `path` (a new file, or one without task instances).
///
/// # Errors
/// A message naming the file: it cannot be opened or written, or it already holds task
/// instances (of an earlier run: give a new file).
pub(crate) fn create(path: &Path) -> Result<(), String> {
    let named = |e: rusqlite::Error| format!("--db {}: {e}", path.display());
    let conn = open(path).map_err(named)?;
    conn.execute_batch(SCHEMA).map_err(named)?;
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM task_instance", [], |r| r.get(0))
        .map_err(named)?;
    if rows > 0 {
        return Err(format!(
            "--db {}: already holds {rows} task instances of an earlier run; give a new file",
            path.display()
        ));
    }
    Ok(())
}

/// Airflow's state name of `state`, as the `state` column holds it (the core's own serde name:
/// `up_for_retry`).
pub(crate) fn state_name(state: TaskState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The state a `state` column names, if it is one of Airflow's.
pub(crate) fn parse_state(name: &str) -> Option<TaskState> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// The served task processes' connection.
pub(crate) struct RunnerDb {
    conn: Connection,
    /// The first write that failed, for the verdict (a task process that cannot write is a
    /// broken world, not a scheduler's fault).
    pub(crate) errors: u64,
}

impl RunnerDb {
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        let conn = open(path).map_err(|e| format!("--db {}: {e}", path.display()))?;
        Ok(Self { conn, errors: 0 })
    }

    fn write(&mut self, sql: &str, key: &TaskKey, extra: &[&dyn rusqlite::ToSql]) -> usize {
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(6 + extra.len());
        let now = unix_ms_sql();
        values.extend_from_slice(&[
            &key.dag_id,
            &key.task_id,
            &key.run_id,
            &key.map_index,
            &key.try_number,
            &now,
        ]);
        values.extend_from_slice(extra);
        match self.conn.execute(sql, values.as_slice()) {
            Ok(n) => n,
            Err(e) => {
                self.errors += 1;
                eprintln!("serve: metadata DB write failed: {e}");
                0
            }
        }
    }
}

const KEY_WHERE: &str =
    "dag_id = ?1 AND task_id = ?2 AND run_id = ?3 AND map_index = ?4 AND try_number = ?5";

impl TaskRecords for RunnerDb {
    fn arrived(&mut self, key: &TaskKey, max_tries: u32, namespace: Option<&str>) {
        let sql = "INSERT OR IGNORE INTO task_instance (dag_id, task_id, run_id, map_index, try_number, updated_at, max_tries, namespace, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'scheduled')";
        self.write(sql, key, &[&max_tries, &namespace]);
    }

    fn try_starts(&mut self, key: &TaskKey) -> bool {
        let sql = format!(
            "UPDATE task_instance SET state = 'running', updated_at = ?6 WHERE {KEY_WHERE} AND state = 'queued'"
        );
        self.write(&sql, key, &[]) == 1
    }

    fn try_ends(&mut self, key: &TaskKey, succeeded: bool) {
        let sql = if succeeded {
            format!("UPDATE task_instance SET state = 'success', updated_at = ?6 WHERE {KEY_WHERE} AND state = 'running'")
        } else {
            format!(
                "UPDATE task_instance SET state = CASE WHEN try_number <= max_tries THEN 'up_for_retry' ELSE 'failed' END, updated_at = ?6 WHERE {KEY_WHERE} AND state = 'running'"
            )
        };
        self.write(&sql, key, &[]);
    }
}

/// One task instance row as the server reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TiRow {
    /// The key, with the current try.
    pub(crate) key: TaskKey,
    pub(crate) state: Option<TaskState>,
    pub(crate) queued_by: Option<String>,
}

/// One scheduler job row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobRow {
    pub(crate) id: String,
    pub(crate) state: String,
    pub(crate) latest_heartbeat: i64,
}

/// One change of a task instance's state or try (the `task_instance_transition` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transition {
    pub(crate) id: i64,
    /// The key, with the try the change left.
    pub(crate) key: TaskKey,
    pub(crate) old_state: Option<TaskState>,
    pub(crate) new_state: Option<TaskState>,
    pub(crate) new_try: u32,
    pub(crate) queued_by: Option<String>,
}

/// The server's reading connection.
pub(crate) struct Reader {
    conn: Connection,
}

impl Reader {
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        let conn = open(path).map_err(|e| format!("--db {}: {e}", path.display()))?;
        Ok(Self { conn })
    }

    /// Every task instance, in key order.
    pub(crate) fn task_instances(&self) -> rusqlite::Result<Vec<TiRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT dag_id, task_id, run_id, map_index, try_number, state, queued_by_job_id FROM task_instance ORDER BY dag_id, task_id, run_id, map_index",
        )?;
        let rows = stmt.query_map(params![], |r| {
            let state: String = r.get(5)?;
            Ok(TiRow {
                key: key_at(r, 0)?,
                state: parse_state(&state),
                queued_by: r.get(6)?,
            })
        })?;
        rows.collect()
    }

    /// The transitions after `after` (an id), oldest first.
    pub(crate) fn transitions(&self, after: i64) -> rusqlite::Result<Vec<Transition>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, dag_id, task_id, run_id, map_index, old_try_number, new_try_number, old_state, new_state, queued_by_job_id FROM task_instance_transition WHERE id > ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![after], |r| {
            let (old, new): (String, String) = (r.get(7)?, r.get(8)?);
            Ok(Transition {
                id: r.get(0)?,
                key: key_at(r, 1)?,
                new_try: r.get(6)?,
                old_state: parse_state(&old),
                new_state: parse_state(&new),
                queued_by: r.get(9)?,
            })
        })?;
        rows.collect()
    }

    /// Every scheduler job.
    pub(crate) fn jobs(&self) -> rusqlite::Result<Vec<JobRow>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, state, latest_heartbeat FROM job ORDER BY id")?;
        let rows = stmt.query_map(params![], |r| {
            Ok(JobRow {
                id: r.get(0)?,
                state: r.get(1)?,
                latest_heartbeat: r.get(2)?,
            })
        })?;
        rows.collect()
    }
}

/// The task key in a row's five columns from `first`: dag, task and run ids, map index, try
/// number (the order of every query here that reads a key).
fn key_at(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<TaskKey> {
    Ok(TaskKey {
        dag_id: r.get(first)?,
        task_id: r.get(first + 1)?,
        run_id: r.get(first + 2)?,
        map_index: r.get(first + 3)?,
        try_number: r.get(first + 4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db(name: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "podwarden-metadata-{name}-{}.db",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn the_runner_starts_only_a_queued_current_try_and_records_its_end() {
        let path = temp_db("runner");
        create(&path).unwrap();
        let mut runner = RunnerDb::open(&path).unwrap();
        let reader = Reader::open(&path).unwrap();
        let key = TaskKey::new("d", "t", "r", 1);
        runner.arrived(&key, 1, None);
        // Scheduled, not queued: the process exits at once.
        assert!(!runner.try_starts(&key));
        runner
            .conn
            .execute("UPDATE task_instance SET state = 'queued'", [])
            .unwrap();
        let other_try = TaskKey::new("d", "t", "r", 2);
        assert!(!runner.try_starts(&other_try));
        assert!(runner.try_starts(&key));
        runner.try_ends(&key, false);
        let rows = reader.task_instances().unwrap();
        assert_eq!(
            rows[0].state,
            Some(TaskState::UpForRetry),
            "try 1 of max_tries 1 is retried"
        );
        // The last try fails for good.
        runner
            .conn
            .execute(
                "UPDATE task_instance SET state = 'running', try_number = 2",
                [],
            )
            .unwrap();
        runner.try_ends(&other_try, false);
        assert_eq!(
            reader.task_instances().unwrap()[0].state,
            Some(TaskState::Failed)
        );
        assert!(create(&path)
            .unwrap_err()
            .contains("already holds 1 task instances"));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn every_state_name_reads_back() {
        for s in [
            TaskState::Scheduled,
            TaskState::UpForRetry,
            TaskState::Success,
        ] {
            assert_eq!(parse_state(&state_name(s)), Some(s));
        }
        assert_eq!(parse_state("bogus"), None);
    }
}
