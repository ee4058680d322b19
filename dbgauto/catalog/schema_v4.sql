-- dbgauto catalog, migration 4 (driver lists across boots): every boot loads the drivers at new bases (KASLR),
-- so a fleet's dumps almost never share a whole driver list. A list is now stored once per distinct list
-- *without* its bases (driver_sets, as before: digest of the base-less canonical JSON), and each result keeps
-- its own bases (result_facts.driver_bases: the compressed JSON array of each driver's "base", in list order).
-- Rows written before keep driver_bases NULL: their driver_sets entry holds the bases itself.

ALTER TABLE result_facts ADD COLUMN driver_bases BLOB;

DROP VIEW latest;
CREATE VIEW latest AS
SELECT d.id AS dump_id, d.path, d.size AS dump_size, d.mtime_ns AS dump_mtime_ns, d.hash AS dump_hash,
       d.dump_type, d.is_64bit, d.machine, d.build AS dump_build, d.bugcheck_code AS dump_bugcheck_code,
       d.source_deleted, d.host AS dump_host,
       r.id AS result_id, r.run_id, r.status, r.error_code, r.error_message, r.size, r.mtime_ns, r.hash,
       r.small_path, r.small_size, r.report_paths, r.facts, f.facts_z, f.driver_set_id, f.driver_bases, r.engine,
       r.debugger_version, r.convert_seconds, r.facts_seconds, r.report_seconds, r.total_seconds, r.warnings,
       r.verified, r.verify_note, r.finished, r.host, r.crash_time, r.bugcheck_name, r.parameters, r.culprit,
       r.culprit_timestamp, r.bucket, r.machine_name, r.process, r.warnings_count, r.transient,
       coalesce(r.bugcheck_code, d.bugcheck_code) AS bugcheck_code, coalesce(r.build, d.build) AS build
FROM dumps AS d
JOIN results AS r ON r.id = d.latest_result_id
LEFT JOIN result_facts AS f ON f.result_id = r.id;
