-- A complaint notification whose complaintFeedbackType is `not-spam` says the mailbox provider
-- (or its user) does NOT consider the message spam: RFC 5965's Feedback-Type registry describes
-- it as correcting a message wrongly tagged as spam, and SES passes the report's Feedback-Type on
-- unchanged. From this version the rollups count it in no complaint column (nor the complaint
-- rate), as the suppression ledger already treated it (it lifts an earlier complaint and adds
-- nothing). The detail rows and the summary rows are unchanged; the days that hold such a report
-- are marked so that the next ingest (or `ses-report rollup`) recomputes them. Re-runnable. A row
-- whose other_info is no valid JSON (another program's) reads as NULL, where MySQL would fail.
INSERT IGNORE INTO aws_report_dirty_days (day_utc, marked_at)
  SELECT DISTINCT DATE(timestamp), UTC_TIMESTAMP(3) FROM aws_report_details
  WHERE event_type = 'Complaint'
    AND JSON_UNQUOTE(JSON_EXTRACT(IF(JSON_VALID(other_info), other_info, NULL), '$.complaintFeedbackType')) = 'not-spam'
    AND {id_range:aws_report_details};
