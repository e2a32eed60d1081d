-- Daily deliverability rollups: recomputed from aws_report_details (never incremented), for each
-- day an ingest touched, so duplicates and reruns can never inflate them. `day` is a calendar day
-- in the time zone the rollup was computed in (`ses-report rollup` rebuilds after a zone change).
-- Counts are of recipients (distinct summary rows), except total_opens and total_clicks, which
-- count every open and click.
CREATE TABLE IF NOT EXISTS aws_report_daily (
  day DATE NOT NULL,
  report_type INT NOT NULL,
  source_email VARCHAR(320) NOT NULL,
  recipient_domain VARCHAR(255) NOT NULL,
  sent INT UNSIGNED NOT NULL DEFAULT 0,
  delivered INT UNSIGNED NOT NULL DEFAULT 0,
  rejected INT UNSIGNED NOT NULL DEFAULT 0,
  rendering_failures INT UNSIGNED NOT NULL DEFAULT 0,
  delivery_delays INT UNSIGNED NOT NULL DEFAULT 0,
  -- permanent bounces, without those SES already suppressed (OnAccountSuppressionList)
  permanent_bounces INT UNSIGNED NOT NULL DEFAULT 0,
  suppressed_bounces INT UNSIGNED NOT NULL DEFAULT 0,
  transient_bounces INT UNSIGNED NOT NULL DEFAULT 0,
  undetermined_bounces INT UNSIGNED NOT NULL DEFAULT 0,
  complaints INT UNSIGNED NOT NULL DEFAULT 0,
  unique_opens INT UNSIGNED NOT NULL DEFAULT 0,
  total_opens INT UNSIGNED NOT NULL DEFAULT 0,
  unique_clicks INT UNSIGNED NOT NULL DEFAULT 0,
  total_clicks INT UNSIGNED NOT NULL DEFAULT 0,
  unsubscribes INT UNSIGNED NOT NULL DEFAULT 0,
  time_zone VARCHAR(64) NOT NULL,
  computed_at DATETIME(3) NOT NULL,
  -- NONCLUSTERED for TiDB (a comment elsewhere): migration 5 replaces this key, and TiDB cannot
  -- drop a clustered primary key (docs/compatibility.md).
  PRIMARY KEY (day, report_type, source_email, recipient_domain) /*T![clustered_index] NONCLUSTERED */
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
