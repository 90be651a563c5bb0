package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"

	"koerier/internal/testenv"
	"koerier/pipeline"
)

// recordHistory writes a finished workflow's history to workflows/testdata when
// KOERIER_RECORD_HISTORIES is set, for the replay tests that guard determinism:
//
//	KOERIER_RECORD_HISTORIES=1 go test ./e2e -run 'TestVATReturnReachesAccepted|TestRejected|TestWebhooksArrive'
func recordHistory(t *testing.T, s *testenv.Stack, workflowID, name string) {
	t.Helper()
	if os.Getenv("KOERIER_RECORD_HISTORIES") == "" {
		return
	}
	ctx := context.Background()
	iter := s.Temporal.GetWorkflowHistory(ctx, workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, e)
	}
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	// A compact declaration's history is kept beside the ones of DeclarationWorkflow:
	// workflows of both types run in production, and both must replay.
	if len(h.Events) > 0 {
		if a := h.Events[0].GetWorkflowExecutionStartedEventAttributes(); a != nil && a.GetWorkflowType().GetName() == pipeline.CompactDeclarationWorkflowType {
			name = "compact-" + name
		}
	}
	path := filepath.Join("..", "workflows", "testdata", name+".json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d events of %s in %s", len(h.Events), workflowID, path)
}

// firstSendReceive is the id of the oldest finished send/receive run: the one that
// sent, so its history has every phase.
func firstSendReceive(t *testing.T, s *testenv.Stack) string {
	t.Helper()
	resp, err := s.Temporal.ListWorkflow(context.Background(), listRequest(s, `WorkflowType="SendReceiveWorkflow" AND ExecutionStatus="Completed"`))
	if err != nil || len(resp.Executions) == 0 {
		t.Fatalf("no finished send/receive: %v", err)
	}
	return resp.Executions[len(resp.Executions)-1].Execution.WorkflowId
}
