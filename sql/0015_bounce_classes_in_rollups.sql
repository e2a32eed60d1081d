-- The daily rollups count each bounce class (src/domain/bounce.rs; docs/suppressions.md, "Bounce
-- classes"): the recipients of the day with a bounce of that class, not counting the bounces SES
-- suppressed itself (they have no receiving server's reply and stay in suppressed_bounces).
-- `stats` reads them for bounces_by_class and the block rate. The days that hold a bounce are
-- marked so that the next ingest (or `ses-report rollup`) recomputes them; a day already pruned
-- keeps its rollup, whose class columns stay 0 (docs/tables.md says so). Re-runnable.
ALTER TABLE aws_report_daily
  ADD COLUMN bounces_invalid_address INT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN bounces_mailbox_full INT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN bounces_mailbox_disabled INT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN bounces_reputation INT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN bounces_policy INT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN bounces_content INT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN bounces_rate_limit INT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN bounces_technical INT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN bounces_unclassified INT UNSIGNED NOT NULL DEFAULT 0;
INSERT IGNORE INTO aws_report_dirty_days (day_utc, marked_at)
  SELECT DISTINCT DATE(timestamp), UTC_TIMESTAMP(3) FROM aws_report_details
  WHERE event_type = 'Bounce' AND {id_range:aws_report_details};
