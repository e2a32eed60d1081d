-- ses-report ingest tables. Every time is UTC, DATETIME(3). Applied by `ses-report migrate`;
-- each statement must be safe to re-run, because MySQL commits DDL one statement at a time.

-- Identifiers and addresses compare byte for byte (utf8mb4_bin): ses-report stores addresses
-- already trimmed and lower-cased, and an accent-insensitive collation would merge distinct mailboxes.

-- One row per (email, recipient): the summary the reports read. Each *_at column holds the
-- earliest time of that event type for this recipient; counters count distinct notifications.
CREATE TABLE IF NOT EXISTS aws_reports (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  report_type INT NOT NULL DEFAULT 0,
  user_id BIGINT UNSIGNED NULL,
  -- how user_id was found: 2 user_id header, 1 auth_users by email, 0 not resolved.
  -- A stronger source wins whatever order events arrive in.
  user_source TINYINT UNSIGNED NOT NULL DEFAULT 0,
  user_email VARCHAR(320) COLLATE utf8mb4_bin NOT NULL,
  message_id VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
  source_email VARCHAR(320) NULL,
  subject VARCHAR(998) NULL,
  send_at DATETIME(3) NULL,
  delivery_at DATETIME(3) NULL,
  bounce_at DATETIME(3) NULL,
  complaint_at DATETIME(3) NULL,
  reject_at DATETIME(3) NULL,
  open_at DATETIME(3) NULL,
  click_at DATETIME(3) NULL,
  rendering_failure_at DATETIME(3) NULL,
  delivery_delay_at DATETIME(3) NULL,
  subscription_at DATETIME(3) NULL,
  open_count INT UNSIGNED NOT NULL DEFAULT 0,
  click_count INT UNSIGNED NOT NULL DEFAULT 0,
  bounce_type VARCHAR(16) NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  UNIQUE KEY uq_aws_reports_message_recipient (message_id, user_email),
  KEY idx_aws_reports_user (user_id),
  KEY idx_aws_reports_email (user_email),
  KEY idx_aws_reports_send_at (send_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per (notification, recipient): the evidence behind each summary row.
CREATE TABLE IF NOT EXISTS aws_report_details (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  notification_message_id VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
  report_id BIGINT UNSIGNED NOT NULL,
  event_type VARCHAR(32) NOT NULL,
  message_id VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
  timestamp DATETIME(3) NOT NULL,
  `from` VARCHAR(320) NULL,
  `to` VARCHAR(320) COLLATE utf8mb4_bin NOT NULL,
  subject VARCHAR(998) NULL,
  other_info LONGTEXT NULL,
  feedback_id VARCHAR(255) COLLATE utf8mb4_bin NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY uq_details_notification_recipient (notification_message_id, `to`),
  UNIQUE KEY uq_details_feedback_recipient (feedback_id, `to`),
  KEY idx_details_report (report_id),
  -- suppression lists and rollups read bounces, complaints and unsubscribes by type and time.
  -- (No index on created_at: prune walks the primary key, which grows with it.)
  KEY idx_details_type_time (event_type, timestamp)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Records that could not be applied, kept whole so nothing is lost; retried by later runs.
CREATE TABLE IF NOT EXISTS aws_report_failures (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  notification_id VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
  source VARCHAR(255) NOT NULL,
  error TEXT NOT NULL,
  document LONGTEXT NOT NULL,
  attempts INT UNSIGNED NOT NULL DEFAULT 1,
  first_failed_at DATETIME(3) NOT NULL,
  last_failed_at DATETIME(3) NOT NULL,
  resolved_at DATETIME(3) NULL,
  UNIQUE KEY uq_failures_notification (notification_id),
  KEY idx_failures_unresolved (resolved_at, last_failed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per ingest; the catch-up window starts from the last completed one.
CREATE TABLE IF NOT EXISTS aws_report_runs (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  started_at DATETIME(3) NOT NULL,
  finished_at DATETIME(3) NULL,
  window_from DATETIME(3) NOT NULL,
  window_to DATETIME(3) NOT NULL,
  source VARCHAR(512) NOT NULL,
  status VARCHAR(16) NOT NULL,
  scanned INT UNSIGNED NOT NULL DEFAULT 0,
  applied INT UNSIGNED NOT NULL DEFAULT 0,
  duplicates INT UNSIGNED NOT NULL DEFAULT 0,
  skipped INT UNSIGNED NOT NULL DEFAULT 0,
  failed INT UNSIGNED NOT NULL DEFAULT 0,
  users_resolved INT UNSIGNED NOT NULL DEFAULT 0,
  message TEXT NULL,
  KEY idx_runs_status_window (status, window_to)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
