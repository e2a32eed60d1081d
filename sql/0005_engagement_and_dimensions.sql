-- Human engagement, mailbox providers, tags, configuration sets and sending IPs.

-- Why an open or click does not count as human engagement (NULL: a human, or undecidable):
-- apple-mpp, scanner-agent, scanner-burst, pre-delivery, on-delivery, unsubscribe-link.
-- Recomputed for a whole summary row whenever a batch touches it (domain::engagement).
ALTER TABLE aws_report_details ADD COLUMN automated VARCHAR(24) NULL AFTER feedback_id;

-- Beside the raw counts: opens and clicks by people, and when the first of each came.
-- mailbox_provider: google, microsoft, yahoo, apple, ... or other (domain::provider).
-- tags: mail.tags as JSON with sorted keys; configuration_set and sending_ip are its
-- ses:configuration-set and ses:outgoing-ip. Binary collation: the upsert's order-free merges
-- compare bytes, as the Rust merge does.
ALTER TABLE aws_reports
  ADD COLUMN human_open_count INT UNSIGNED NOT NULL DEFAULT 0 AFTER click_count,
  ADD COLUMN human_click_count INT UNSIGNED NOT NULL DEFAULT 0 AFTER human_open_count,
  ADD COLUMN first_human_open_at DATETIME(3) NULL AFTER human_click_count,
  ADD COLUMN first_human_click_at DATETIME(3) NULL AFTER first_human_open_at,
  ADD COLUMN mailbox_provider VARCHAR(32) COLLATE utf8mb4_bin NOT NULL DEFAULT 'other' AFTER bounce_type,
  ADD COLUMN configuration_set VARCHAR(64) COLLATE utf8mb4_bin NULL AFTER mailbox_provider,
  ADD COLUMN sending_ip VARCHAR(45) COLLATE utf8mb4_bin NULL AFTER configuration_set,
  ADD COLUMN tags TEXT COLLATE utf8mb4_bin NULL AFTER sending_ip;

-- Until the Rust step of this migration reclassifies them, every existing open and click is
-- taken as human: the same state a batch leaves before it classifies its rows. (In ranges of ids:
-- `{id_range:TABLE}` runs the statement once per range, src/store/migrations.rs.)
UPDATE aws_reports SET human_open_count = open_count, human_click_count = click_count
  WHERE human_open_count = 0 AND human_click_count = 0 AND (open_count > 0 OR click_count > 0)
    AND {id_range:aws_reports};

-- The rollups gain the human counts and three dimensions.
ALTER TABLE aws_report_daily
  ADD COLUMN human_unique_opens INT UNSIGNED NOT NULL DEFAULT 0 AFTER total_opens,
  ADD COLUMN human_unique_clicks INT UNSIGNED NOT NULL DEFAULT 0 AFTER total_clicks,
  ADD COLUMN mailbox_provider VARCHAR(32) NOT NULL DEFAULT 'other' AFTER recipient_domain,
  ADD COLUMN configuration_set VARCHAR(64) NOT NULL DEFAULT '' AFTER mailbox_provider,
  ADD COLUMN sending_ip VARCHAR(45) NOT NULL DEFAULT '' AFTER configuration_set,
  DROP PRIMARY KEY,
  ADD PRIMARY KEY (day, report_type, source_email, recipient_domain, mailbox_provider, configuration_set, sending_ip) /*T![clustered_index] NONCLUSTERED */;

-- Every day with a rollup is recomputed by the next ingest (or `ses-report rollup`), after the
-- Rust step has classified the rows.
INSERT IGNORE INTO aws_report_dirty_days (day_utc, marked_at)
  SELECT DISTINCT day, UTC_TIMESTAMP(3) FROM aws_report_daily;
