package workflows

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"koerier/pipeline"
)

// Histories recorded from real runs (see e2e/history_test.go) must replay against
// today's workflow code: a change that is not deterministic for running workflows
// fails here before it reaches them. A deliberate change re-records them with
//
//	KOERIER_RECORD_HISTORIES=1 go test ./e2e -run 'TestVATReturnReachesAccepted|TestRejected|TestWebhooksArrive'
//
// and, where workflows in production run the old code, uses workflow.GetVersion.
// base-declaration-environment-changed.json is not from e2e and is never re-recorded: a
// DeclarationWorkflow run by the code of 3c2ec5e that got the environment-changed signal.
// Nor is send-receive.json: a SendReceiveWorkflow from before its pages renewed the lock
// (RenewLock after each page); send-receive-pages-renew.json is its successor.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) < 6 {
		t.Fatalf("recorded histories missing (%v, %d files)", err, len(files))
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(DeclarationWorkflow, workflow.RegisterOptions{Name: pipeline.DeclarationWorkflowType})
	r.RegisterWorkflowWithOptions(CompactDeclarationWorkflow, workflow.RegisterOptions{Name: pipeline.CompactDeclarationWorkflowType})
	r.RegisterWorkflowWithOptions(SendReceiveWorkflow, workflow.RegisterOptions{Name: pipeline.SendReceiveWorkflowType})
	r.RegisterWorkflowWithOptions(CleanupWorkflow, workflow.RegisterOptions{Name: pipeline.CleanupWorkflowType})
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}
