-- The suppression ledger: per (address, kind of evidence), everything the evidence says, merged
-- order-free by every ingest in the same transaction as the detail rows it comes from, and never
-- shrunk by `prune` (rebuildable from the detail rows while they are kept). Kinds:
-- permanent-bounce, transient-bounce-5xx, soft-bounce, complaint, unsubscribed, not-spam,
-- ses-suppressed-bounce, ses-suppressed-complaint (domain rules: src/reports/suppressions.rs).
-- (The user account is the summary rows' user_id for the address: `ses-report suppressions`
-- shows it.) The sending app can join it on `email`:
--   SELECT email FROM aws_report_suppressions
--   WHERE kind IN ('permanent-bounce', 'transient-bounce-5xx', 'complaint', 'unsubscribed', 'soft-bounce')
--     AND lifted_at IS NULL AND (expires_at IS NULL OR expires_at > UTC_TIMESTAMP())
CREATE TABLE IF NOT EXISTS aws_report_suppressions (
  email VARCHAR(320) COLLATE utf8mb4_bin NOT NULL,
  kind VARCHAR(32) NOT NULL,
  first_at DATETIME(3) NOT NULL,
  last_at DATETIME(3) NOT NULL,
  evidence_count INT UNSIGNED NOT NULL,
  last_diagnostic VARCHAR(1000) NULL,
  last_diagnostic_at DATETIME(3) NULL,
  -- the latest instants (newest first, at most 16), JSON: what --soft-limit counts
  recent TEXT NOT NULL,
  -- soft-bounce: last_at + 30 days (Postal's removal delay); NULL for the kinds that do not lapse
  expires_at DATETIME(3) NULL,
  -- soft-bounce: the latest delivery after last_at; complaint: a later not-spam report
  lifted_at DATETIME(3) NULL,
  updated_at DATETIME(3) NOT NULL,
  PRIMARY KEY (email, kind),
  KEY idx_suppressions_kind_last (kind, last_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
