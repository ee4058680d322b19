-- dbgauto catalog, migration 3 (failures visible): files a run saw and did not process, one row per path.
-- A path is here only while it has no result (recording a result removes its row); each run that skips it
-- again updates the row (reason, size, mtime, last_seen, run) instead of adding one.

CREATE TABLE skips (
    id          INTEGER PRIMARY KEY,
    path        TEXT    NOT NULL UNIQUE,
    reason      TEXT    NOT NULL,      -- older_than_since | not_a_dump | unreadable
    message     TEXT,                  -- the reason in words, naming what was seen
    size        INTEGER,
    mtime_ns    INTEGER,
    host        TEXT,
    first_seen  TEXT    NOT NULL,
    last_seen   TEXT    NOT NULL,
    changed     INTEGER NOT NULL,      -- generation of the last change to what the index shows (its staleness)
    run_id      INTEGER REFERENCES runs(id)   -- the last run that skipped it
);
