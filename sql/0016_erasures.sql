-- Erasure on request (docs/privacy.md). `ses-report forget` pseudonymizes an address's rows in
-- place (nothing counted changes) and records the request here, with no plaintext: the keyed
-- hash of the address (HMAC-SHA-256 under SES_REPORT_ERASURE_KEY, hex), a check value of the key
-- (so that a run with another key fails instead of letting the address back in), and the rows
-- changed per table. Every ingest reads the hashes and keeps the events of erased addresses out.
CREATE TABLE IF NOT EXISTS aws_report_erasures (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  address_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  key_check CHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  erased_at DATETIME(3) NOT NULL,
  summaries INT UNSIGNED NOT NULL DEFAULT 0,
  details INT UNSIGNED NOT NULL DEFAULT 0,
  suppressions INT UNSIGNED NOT NULL DEFAULT 0,
  failures INT UNSIGNED NOT NULL DEFAULT 0,
  runs INT UNSIGNED NOT NULL DEFAULT 0,
  KEY idx_erasures_hash (address_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
-- An erased address's ledger entries keep their kinds under its pseudonym, found by this hash:
-- the sending app checks an address by computing the same HMAC (docs/privacy.md).
ALTER TABLE aws_report_suppressions
  ADD COLUMN erased_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL AFTER bounce_class,
  ADD KEY idx_suppressions_erased (erased_hash);
