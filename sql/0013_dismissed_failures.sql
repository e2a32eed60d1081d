-- A failure that can never apply (an event type this version does not know, a record the sender
-- will never fix) can be dismissed by a person (`ses-report failures --dismiss ID... --reason
-- TEXT`): `retry` and the unresolved-failures metric leave it alone from then on, and the row,
-- its document and the reason are kept and listed (`failures --dismissed`). NULL: not dismissed.
-- Re-runnable: a column already added is no error.
ALTER TABLE aws_report_failures ADD COLUMN dismissed_at DATETIME(3) NULL;
ALTER TABLE aws_report_failures ADD COLUMN dismissed_reason VARCHAR(1000) NULL;
