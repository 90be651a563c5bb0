// Package migrations holds Koerier's schema migrations: SQL files, which package schema
// embeds and applies in the order of their numbers, and this file, migration 00004.
//
// Migration 00004 is written in Go because it needs what only the store has: the catalog
// of message types with this installation's settings, and the code with which store.Queue
// puts a subject and a period in their stored form and keys a declaration by them ("One
// form for subject and period", rule 18 in docs/rules.md). Rows queued before that form
// keep the subject, period and declaration key they were queued with, so the same
// declaration queued again would be a second version 1 beside them. The migration brings
// them to the stored form; where two spellings turn out to be one declaration it numbers
// their versions in the order they were queued, marks older unsent versions do-not-send
// (rule 3) and asks an operator to check; what cannot be put in the form is left as it
// is. Messages queued with further files, which were dropped then, are delivered with
// them only while their type takes them (rule 17): otherwise they are held for an
// operator, and the open ones are flagged at once. Its code is store.normaliseStored (store/normalise.go); store.Migrate
// passes it to schema.Migrate, which refuses to migrate without it.
//
// Schema00004 is its schema part, run first in the same transaction. Every statement is
// guarded, so that running it again changes nothing.
package migrations

// Schema00004 is the schema part of migration 00004.
const Schema00004 = `
-- Rule 4: a status fetched again is stored once, but Digipoort reports the 420 that ends
-- its retries (foutcode AFS600) with the time of an earlier 420, or updates that 420
-- with it: a status with another foutcode is another status, and must be applied.
CREATE UNIQUE INDEX IF NOT EXISTS status_events_once_per_foutcode ON status_events (kenmerk, code, occurred_at, error_code);
DROP INDEX IF EXISTS status_events_once;

-- Rule 11: the subject a delivery named the belanghebbende with, where that is not the
-- message's stored subject any more (a delivery made before subjects had one form).
-- The look-up of a delivery whose outcome is not known asks Digipoort for what was sent.
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS sent_subject text CHECK (char_length(sent_subject) <= 35);

-- Rule 17: set on a message queued with further files before Koerier sent them (it
-- dropped them then). Such a message goes with its files only while its type takes
-- them; otherwise it is held for an operator. A message queued since was checked
-- against the settings when it was queued, and goes as queued.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS further_files_unconfirmed boolean NOT NULL DEFAULT false;
`
