-- dbgauto catalog, schema version 1 (dbgauto.catalog.db applies it and later migrations, keyed on
-- PRAGMA user_version). Only the coordinating batch process writes; readers use WAL snapshots.
-- Paths of sources are absolute; paths of outputs are relative to the catalog's folder, so the whole
-- output folder can be moved or shared.

CREATE TABLE dumps (
    id                  INTEGER PRIMARY KEY,
    path                TEXT    NOT NULL UNIQUE,
    size                INTEGER NOT NULL,
    mtime_ns            INTEGER NOT NULL,
    hash                TEXT,               -- "sha256-1m:<hex>": sha256 of the first MiB, then the size
    is_64bit            INTEGER,
    dump_type           INTEGER,
    machine             INTEGER,
    build               INTEGER,
    bugcheck_code       INTEGER,
    bugcheck_parameters TEXT,               -- JSON list of four integers
    system_time         TEXT,               -- ISO 8601 UTC, from the header
    first_seen          TEXT    NOT NULL,
    last_seen           TEXT    NOT NULL,
    source_deleted      TEXT                -- when --delete-source-after-verify removed the source
);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    started     TEXT    NOT NULL,
    ended       TEXT,
    status      TEXT    NOT NULL DEFAULT 'running',   -- running | completed | interrupted
    options     TEXT    NOT NULL,                     -- JSON: what the run was asked to do
    host        TEXT,
    pid         INTEGER,
    version     TEXT,
    found       INTEGER NOT NULL DEFAULT 0,
    skipped     INTEGER NOT NULL DEFAULT 0,
    succeeded   INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE results (
    id                INTEGER PRIMARY KEY,
    run_id            INTEGER NOT NULL REFERENCES runs(id),
    dump_id           INTEGER NOT NULL REFERENCES dumps(id),
    status            TEXT    NOT NULL CHECK (status IN ('ok', 'failed')),
    error_code        TEXT,               -- DbgautoError.code (or a batch code: task_timeout, worker_died, ...)
    error_message     TEXT,
    size              INTEGER,            -- the source as it was processed
    mtime_ns          INTEGER,
    hash              TEXT,
    small_path        TEXT,
    small_size        INTEGER,
    report_paths      TEXT,               -- JSON {format: path}
    facts             TEXT,               -- JSON CrashFacts.to_dict()
    engine            TEXT,
    debugger_version  TEXT,
    convert_seconds   REAL,
    facts_seconds     REAL,
    report_seconds    REAL,
    total_seconds     REAL,
    warnings          TEXT,               -- JSON list of strings
    verified          INTEGER,            -- 1/0 when --delete-source-after-verify compared facts, else NULL
    verify_note       TEXT,
    finished          TEXT    NOT NULL
);

CREATE INDEX results_by_dump ON results(dump_id, id);
CREATE INDEX results_by_run ON results(run_id);

-- The newest result of every dump: what `catalog list` and the index report show.
CREATE VIEW latest AS
SELECT d.id AS dump_id, d.path, d.size AS dump_size, d.mtime_ns AS dump_mtime_ns, d.hash AS dump_hash,
       d.dump_type, d.is_64bit, d.machine, d.build, d.bugcheck_code, d.source_deleted,
       r.id AS result_id, r.run_id, r.status, r.error_code, r.error_message, r.size, r.mtime_ns, r.hash,
       r.small_path, r.small_size, r.report_paths, r.facts, r.engine, r.debugger_version, r.convert_seconds,
       r.facts_seconds, r.report_seconds, r.total_seconds, r.warnings, r.verified, r.verify_note, r.finished
FROM dumps AS d
JOIN results AS r ON r.id = (SELECT max(id) FROM results WHERE dump_id = d.id);
