-- `ingest --partition K/N`: each run records the partition it applied ('' for the whole stream),
-- so that catch-up continues per partition and a run found `running` is judged abandoned only
-- when the lock of its own partition is free.
ALTER TABLE aws_report_runs ADD COLUMN partition_label VARCHAR(16) NOT NULL DEFAULT '' AFTER source;
