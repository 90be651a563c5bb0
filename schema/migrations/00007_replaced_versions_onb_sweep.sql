-- +goose Up
-- Two operator-console guards (issue 12). Forward-only; every statement is guarded so
-- that re-running the file by hand changes nothing.

-- Rule 3, "a version that was replaced stays replaced": set on an older do-not-send
-- version when clean-up removes a newer version of its declaration that reached the
-- authority (domain.FiledStatuses). Restore then refuses to make the older one due: with
-- the newer row gone, nothing else would show that sending it files old content over
-- the return on file.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS newer_version_filed boolean NOT NULL DEFAULT false;
-- Rows from before this column: do-not-send is only ever set when a newer version is
-- queued, so a do-not-send version whose newer versions are all gone had them removed
-- by clean-up, and whether one was filed is no longer known. Treated as filed (the safe
-- side: the operator queues the content again as a new version if it must go).
UPDATE messages o SET newer_version_filed = true
WHERE o.do_not_send AND NOT o.newer_version_filed AND o.declaration_key IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM messages n WHERE n.declaration_key = o.declaration_key AND n.version > o.version);

-- The unknown-reply sweep (rule 5): when Temporal last confirmed the reply's workflow
-- (started now, or found running). The sweep takes open replies never confirmed first,
-- oldest first, then those not confirmed for a day (a workflow terminated by hand is
-- started again), instead of the newest 100 every run — which never reached the older
-- ones and asked Temporal about the same running workflows each time.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS onb_workflow_at timestamptz;
CREATE INDEX IF NOT EXISTS messages_onb_sweep ON messages (onb_workflow_at NULLS FIRST, number) WHERE subtype = 'ONB' AND needs_action;
