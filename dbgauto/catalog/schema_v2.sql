-- dbgauto catalog, migration 2 (fleet scale): summary columns per result, driver lists stored once,
-- facts compressed, the newest result of a dump pointed at directly, buckets, run metadata.
-- Old rows are converted in place by dbgauto.catalog.db (the Python half of this migration).

CREATE TABLE driver_sets (
    id       INTEGER PRIMARY KEY,
    digest   TEXT NOT NULL UNIQUE,   -- sha256 of the canonical JSON of the list
    drivers  BLOB NOT NULL           -- zlib(JSON list of driver facts)
);

ALTER TABLE dumps ADD COLUMN host TEXT;
ALTER TABLE dumps ADD COLUMN latest_result_id INTEGER;

ALTER TABLE results ADD COLUMN host TEXT;
ALTER TABLE results ADD COLUMN crash_time TEXT;
ALTER TABLE results ADD COLUMN bugcheck_code INTEGER;
ALTER TABLE results ADD COLUMN bugcheck_name TEXT;
ALTER TABLE results ADD COLUMN parameters TEXT;          -- the four values, comma-separated hex
ALTER TABLE results ADD COLUMN culprit TEXT;
ALTER TABLE results ADD COLUMN culprit_timestamp INTEGER;
ALTER TABLE results ADD COLUMN bucket TEXT;
ALTER TABLE results ADD COLUMN build INTEGER;
ALTER TABLE results ADD COLUMN machine_name TEXT;
ALTER TABLE results ADD COLUMN process TEXT;
ALTER TABLE results ADD COLUMN warnings_count INTEGER;
ALTER TABLE results ADD COLUMN transient INTEGER NOT NULL DEFAULT 0;   -- 1: retried by the next run

-- The facts, apart from the summary rows so those stay small and dense (the index and the buckets scan them).
CREATE TABLE result_facts (
    result_id      INTEGER PRIMARY KEY REFERENCES results(id),
    facts_z        BLOB NOT NULL,                        -- zlib(facts JSON without the driver list)
    driver_set_id  INTEGER REFERENCES driver_sets(id)
);

CREATE TABLE buckets (
    bucket              TEXT PRIMARY KEY,
    bugcheck_code       INTEGER,
    bugcheck_name       TEXT,
    culprit             TEXT,
    first_seen          TEXT,      -- earliest crash time
    last_seen           TEXT,      -- latest crash time
    count               INTEGER NOT NULL,
    hosts               INTEGER NOT NULL,
    builds              TEXT,      -- distinct OS builds, comma-separated
    culprit_timestamps  TEXT,      -- distinct culprit driver timestamps (hex), comma-separated
    first_run           INTEGER,   -- the run that recorded its first dump
    last_run            INTEGER
);

CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT
);

-- covering: the buckets refresh reads only this index (and dumps_by_latest) for the buckets it updates
CREATE INDEX results_by_bucket ON results(bucket, status, id, crash_time, host, build, culprit_timestamp, run_id,
                                          bugcheck_code, bugcheck_name, culprit);
CREATE INDEX results_by_host ON results(host);
CREATE INDEX results_by_finished ON results(finished);
CREATE INDEX dumps_by_latest ON dumps(latest_result_id);

DROP VIEW latest;
CREATE VIEW latest AS
SELECT d.id AS dump_id, d.path, d.size AS dump_size, d.mtime_ns AS dump_mtime_ns, d.hash AS dump_hash,
       d.dump_type, d.is_64bit, d.machine, d.build AS dump_build, d.bugcheck_code AS dump_bugcheck_code,
       d.source_deleted, d.host AS dump_host,
       r.id AS result_id, r.run_id, r.status, r.error_code, r.error_message, r.size, r.mtime_ns, r.hash,
       r.small_path, r.small_size, r.report_paths, r.facts, f.facts_z, f.driver_set_id, r.engine,
       r.debugger_version, r.convert_seconds, r.facts_seconds, r.report_seconds, r.total_seconds, r.warnings,
       r.verified, r.verify_note, r.finished, r.host, r.crash_time, r.bugcheck_name, r.parameters, r.culprit,
       r.culprit_timestamp, r.bucket, r.machine_name, r.process, r.warnings_count, r.transient,
       coalesce(r.bugcheck_code, d.bugcheck_code) AS bugcheck_code, coalesce(r.build, d.build) AS build
FROM dumps AS d
JOIN results AS r ON r.id = d.latest_result_id
LEFT JOIN result_facts AS f ON f.result_id = r.id;
