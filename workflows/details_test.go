package workflows

import (
	"strings"
	"testing"
	"time"

	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/testsuite"

	"koerier/domain"
	"koerier/pipeline"
)

// The communication log in the Web UI (issue 12, item 9): the message's newest F lines
// and its properties come with its `state` query, and the workflow's current details
// (what the Web UI shows above the history) carry the newest F line.
func TestDeclarationShowsItsLatestFLine(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	w.msg.Action = "Digipoort refused message 1000001: ALS100 the certificate is not known"
	w.msg.LastStatusChange = at
	w.msg.Files = []pipeline.File{{ID: 7, Message: 1000001, Name: "aangifte.xbrl", MimeType: "application/xml", Size: 10, Role: "declaration"}}
	w.msg.Errors = []pipeline.ErrorLine{
		{Time: at.Add(time.Minute), Step: domain.StepSend, Description: "Digipoort refused message 1000001: ALS100 the certificate is not known"},
		{Time: at, Step: domain.StepSend, Description: "an older F line"},
	}
	w.setup(env)
	var st pipeline.State
	var details string
	env.RegisterDelayedCallback(func() {
		st = queryState(t, env)
		v, err := env.QueryWorkflow("__temporal_workflow_metadata")
		if err != nil {
			t.Fatalf("metadata query: %v", err)
		}
		var md sdkpb.WorkflowMetadata
		if err := v.Get(&md); err != nil {
			t.Fatal(err)
		}
		details = md.GetCurrentDetails()
		env.CancelWorkflow()
	}, time.Minute)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if want := "latest F line (2026-11-02 09:01:00Z, send): Digipoort refused message 1000001: ALS100"; !strings.Contains(details, want) {
		t.Errorf("current details lack %q:\n%s", want, details)
	}
	if strings.Contains(details, "an older F line") {
		t.Errorf("only the newest F line belongs in the details:\n%s", details)
	}
	if len(st.Errors) != 2 || st.Errors[0].Description != w.msg.Errors[0].Description || st.Action != w.msg.Action ||
		len(st.Attachments) != 1 || st.Attachments[0].Name != "aangifte.xbrl" || !st.LastStatusChange.Equal(at) {
		t.Errorf("state lacks the message's properties: %+v", st)
	}
}
