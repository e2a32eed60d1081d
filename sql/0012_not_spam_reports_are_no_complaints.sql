-- A complaint notification whose complaintFeedbackType is `not-spam` says the mailbox provider
-- (or its user) does NOT consider the message spam: RFC 5965's Feedback-Type registry describes
-- it as correcting a message wrongly tagged as spam, and SES passes the report's Feedback-Type on
-- unchanged. From this version the rollups count it in no complaint column (nor the complaint
-- rate), as the suppression ledger already treated it (it lifts an earlier complaint and adds
-- nothing). The detail rows and the summary rows are unchanged; the days that hold such a report
-- are marked so that the next ingest (or `ses-report rollup`) recomputes them. Re-runnable.
INSERT IGNORE INTO aws_report_dirty_days (day_utc, marked_at)
  SELECT DISTINCT DATE(timestamp), UTC_TIMESTAMP(3) FROM aws_report_details
  WHERE event_type = 'Complaint'
    AND JSON_UNQUOTE(JSON_EXTRACT(other_info, '$.complaintFeedbackType')) = 'not-spam';
