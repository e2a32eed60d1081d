-- Narrow keys, step 1: fixed-width digests of the identifiers detail rows are unique on.
-- notification_key = the first 16 bytes of SHA-256 of notification_message_id, recipient_key of
-- `to`, feedback_key of feedback_id (NULL without one): in SQL, UNHEX(LEFT(SHA2(x, 256), 32)).
-- The readable columns stay. Version 8's Rust step fills existing rows a range at a time
-- (resumable: it fills only rows still NULL); version 9 then makes the digests the unique keys.
ALTER TABLE aws_report_details ADD COLUMN notification_key BINARY(16) NULL AFTER notification_message_id;
ALTER TABLE aws_report_details ADD COLUMN recipient_key BINARY(16) NULL AFTER `to`;
ALTER TABLE aws_report_details ADD COLUMN feedback_key BINARY(16) NULL AFTER feedback_id;
