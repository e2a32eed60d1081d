-- The feedback unique key holds an entry for every detail row, but only bounces and complaints
-- have a feedback id. Its other entries were (NULL, recipient_key): scattered over the whole
-- index by recipient, so every insert read and wrote a random page of it, and on a day larger
-- than the buffer pool that meant disk reads (BENCHMARKS.md, fifth session). The key now pairs
-- feedback_key with feedback_recipient_key, which is recipient_key on rows with a feedback id and
-- NULL on the others: their entries, (NULL, NULL, id), follow each other in id order at one end of
-- the index, and NULLs never conflict in a unique key, so uniqueness is as before for the rows
-- that have a feedback id. Each statement can be re-run (a migration cut short starts again).
ALTER TABLE aws_report_details ADD COLUMN feedback_recipient_key BINARY(16) NULL AFTER feedback_key;
UPDATE aws_report_details SET feedback_recipient_key = recipient_key
  WHERE feedback_key IS NOT NULL AND feedback_recipient_key IS NULL AND {id_range:aws_report_details};
ALTER TABLE aws_report_details ADD UNIQUE KEY uq_details_feedback_recipient_key (feedback_key, feedback_recipient_key);
ALTER TABLE aws_report_details DROP INDEX uq_details_feedback_key;
