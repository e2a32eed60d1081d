-- Narrow keys, step 2: detail rows are unique on (notification_key, recipient_key) and on
-- (feedback_key, recipient_key), 32 bytes each, instead of the two utf8mb4 VARCHAR pairs (up to
-- ~2.3 KB per index entry). The duplicate lookups read them by notification_key and feedback_key
-- (the index prefixes) and compare the readable columns, so a digest collision can never make a
-- new event look applied: at worst the unique key refuses the colliding event, which then fails
-- alone and is kept in aws_report_failures (README, "Narrow keys", for the odds).
ALTER TABLE aws_report_details MODIFY notification_key BINARY(16) NOT NULL, MODIFY recipient_key BINARY(16) NOT NULL;
ALTER TABLE aws_report_details ADD UNIQUE KEY uq_details_notification_key (notification_key, recipient_key);
ALTER TABLE aws_report_details ADD UNIQUE KEY uq_details_feedback_key (feedback_key, recipient_key);
ALTER TABLE aws_report_details DROP INDEX uq_details_notification_recipient;
ALTER TABLE aws_report_details DROP INDEX uq_details_feedback_recipient;
