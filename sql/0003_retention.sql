-- The retention horizon: `ses-report prune` deleted the detail rows of events before
-- `pruned_before`. Ingest skips such events, since without their details it could not tell a
-- duplicate from a new one (re-reading a pruned window would otherwise count it twice).
CREATE TABLE IF NOT EXISTS aws_report_retention (
  id TINYINT UNSIGNED PRIMARY KEY,
  pruned_before DATETIME(3) NOT NULL,
  pruned_at DATETIME(3) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
