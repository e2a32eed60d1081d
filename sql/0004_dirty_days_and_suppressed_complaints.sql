-- Days whose detail rows changed and whose rollup has not been recomputed since. A batch marks
-- the UTC dates of the events it applies in the same transaction as its rows; the rollup clears
-- the marks it recomputed in the same transaction as the rollup rows. So whatever dies when
-- (a failed run, kill -9, a lost connection during the rollup), a changed day keeps its mark
-- until its rollup is committed, and the next ingest recomputes it. UTC dates, so that a mark
-- means the same whatever zone the rollups are computed in (a UTC date overlaps at most two
-- calendar days of any zone, and both are recomputed).
CREATE TABLE IF NOT EXISTS aws_report_dirty_days (
  day_utc DATE NOT NULL PRIMARY KEY,
  marked_at DATETIME(3) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Complaints SES had already suppressed (complaintSubType OnAccountSuppressionList) are counted
-- apart, as OnAccountSuppressionList bounces are: AWS leaves both out of its reputation rates.
ALTER TABLE aws_report_daily ADD COLUMN suppressed_complaints INT UNSIGNED NOT NULL DEFAULT 0 AFTER complaints;

-- Rollups computed before this version counted those complaints in `complaints`: mark every day
-- that has a rollup, so the next ingest recomputes it (days before the prune horizon are kept as
-- they are, since their details are gone).
INSERT IGNORE INTO aws_report_dirty_days (day_utc, marked_at)
  SELECT DISTINCT day, UTC_TIMESTAMP(3) FROM aws_report_daily;
