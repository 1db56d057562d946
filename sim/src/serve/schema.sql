-- The metadata DB of `podwarden-sim serve`: the part of Airflow's schema its hosts and the
-- served task processes share. `serve` creates it in the `--db` file; hosts open that file.
-- Times are Unix milliseconds on the writer's wall clock.
PRAGMA journal_mode = WAL;

-- One row per task instance (Airflow's `task_instance`, one row per key, the current try).
CREATE TABLE IF NOT EXISTS task_instance (
    dag_id           TEXT    NOT NULL,
    task_id          TEXT    NOT NULL,
    run_id           TEXT    NOT NULL,
    map_index        INTEGER NOT NULL,
    -- The current try, from 1.
    try_number       INTEGER NOT NULL,
    -- Airflow's max_tries (the task's retries): a failed try is retried while
    -- try_number <= max_tries.
    max_tries        INTEGER NOT NULL,
    -- Airflow's state names: scheduled, queued, running, success, failed, up_for_retry.
    state            TEXT    NOT NULL,
    -- The scheduler job that queued (or adopted) the current try.
    queued_by_job_id TEXT,
    -- The namespace the task's pod template names (NULL: the executor's `namespace`).
    namespace        TEXT,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (dag_id, task_id, run_id, map_index)
);
CREATE INDEX IF NOT EXISTS task_instance_state ON task_instance (state);

-- One row per scheduler process (Airflow's `job`, job_type SchedulerJob).
CREATE TABLE IF NOT EXISTS job (
    -- The scheduler id: its executor's `airflow-worker` label value.
    id               TEXT    PRIMARY KEY,
    job_type         TEXT    NOT NULL DEFAULT 'SchedulerJob',
    -- running, failed (judged dead by a peer), success (stopped cleanly).
    state            TEXT    NOT NULL,
    latest_heartbeat INTEGER NOT NULL
);

-- Every change of a task instance's state or try, written by the trigger below (the verdict
-- reads it: which tries were charged to the user, and whether their task had started).
CREATE TABLE IF NOT EXISTS task_instance_transition (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    dag_id           TEXT    NOT NULL,
    task_id          TEXT    NOT NULL,
    run_id           TEXT    NOT NULL,
    map_index        INTEGER NOT NULL,
    -- The try the change left, and the one it went to.
    old_try_number   INTEGER NOT NULL,
    new_try_number   INTEGER NOT NULL,
    old_state        TEXT    NOT NULL,
    new_state        TEXT    NOT NULL,
    -- Who holds the new try.
    queued_by_job_id TEXT,
    at               INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS task_instance_transition_log
AFTER UPDATE OF state, try_number ON task_instance
WHEN OLD.state IS NOT NEW.state OR OLD.try_number IS NOT NEW.try_number
BEGIN
    INSERT INTO task_instance_transition (dag_id, task_id, run_id, map_index, old_try_number,
        new_try_number, old_state, new_state, queued_by_job_id, at)
    VALUES (NEW.dag_id, NEW.task_id, NEW.run_id, NEW.map_index, OLD.try_number,
        NEW.try_number, OLD.state, NEW.state, NEW.queued_by_job_id, NEW.updated_at);
END;
