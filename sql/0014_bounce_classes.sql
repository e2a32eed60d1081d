-- Why mail did not arrive: each bounced or delayed recipient's class, read from the receiving
-- server's reply (src/domain/bounce.rs; docs/suppressions.md, "Bounce classes"):
-- invalid-address, mailbox-full, mailbox-disabled, reputation, policy, content, rate-limit,
-- technical, unclassified. NULL on every other row. DeliveryDelay rows also keep SES's delayType.
-- The Rust step of this migration classifies the rows already stored (in id ranges), then takes
-- the suppression ledger's bounce entries again under the rules that read the class: only a dead
-- address suppresses for good; a full or disabled mailbox, or a reply that says nothing, by the
-- soft rules; a bounce about the sender or the network never; each bounce entry keeps the class
-- of its latest evidence. Re-runnable.
ALTER TABLE aws_report_details
  ADD COLUMN bounce_class VARCHAR(16) NULL AFTER automated,
  ADD COLUMN delay_type VARCHAR(40) NULL AFTER bounce_class;
ALTER TABLE aws_report_suppressions
  ADD COLUMN bounce_class VARCHAR(16) NULL AFTER lifted_at;
