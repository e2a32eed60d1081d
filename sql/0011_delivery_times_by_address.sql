-- The suppression ledger lifts a soft bounce with the latest delivery among the address's
-- summary rows (MAX(delivery_at) WHERE user_email = ?). With delivery_at in the address index
-- that is read from the index alone, instead of from every summary row of the address, which on
-- a day larger than the buffer pool were random disk reads (BENCHMARKS.md, fifth session). The
-- index keeps serving every lookup by user_email (its first column). Re-runnable statement by
-- statement: ADD before DROP, so the address lookups always have an index.
ALTER TABLE aws_reports ADD INDEX idx_aws_reports_email_delivery (user_email, delivery_at);
ALTER TABLE aws_reports DROP INDEX idx_aws_reports_email;
