package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"koerier/activities"
	"koerier/domain"
	"koerier/pipeline"
)

func TestCleanupPagesUntilDone(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Activities{})
	var seenAfter []int64
	runs := map[string]bool{}
	env.OnActivity(a.CleanupPage, mock.Anything, mock.Anything).Return(func(_ context.Context, r pipeline.CleanupRequest) (pipeline.CleanupResult, error) {
		seenAfter = append(seenAfter, r.After)
		runs[r.Run] = true
		if r.After >= 20 {
			return pipeline.CleanupResult{Removed: []int64{21}, Attachments: 1, Bytes: 10, DryRun: r.DryRun}, nil
		}
		return pipeline.CleanupResult{
			Removed:     []int64{r.After + 1, r.After + 10},
			Attachments: 2,
			Bytes:       20,
			More:        true,
			Next:        r.After + 10,
			DryRun:      r.DryRun,
		}, nil
	})
	env.ExecuteWorkflow(
		CleanupWorkflow,
		pipeline.CleanupInput{CleanupRequest: pipeline.CleanupRequest{Mode: domain.CleanupStandard, Retention: domain.MinRetention, DryRun: true}},
	)
	var out pipeline.CleanupOutcome
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	if out.Removed != 5 || out.Attachments != 5 || out.Bytes != 50 || !out.DryRun || len(seenAfter) != 3 {
		t.Errorf("outcome %+v pages %v", out, seenAfter)
	}
	// Every page names the run, so that they keep one log line between them.
	if len(runs) != 1 || runs[""] {
		t.Errorf("pages named runs %v, want one non-empty", runs)
	}
}

func TestCleanupSelectionReportsRefusals(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Activities{})
	calls := 0
	env.OnActivity(a.CleanupPage, mock.Anything, mock.Anything).Return(func(_ context.Context, r pipeline.CleanupRequest) (pipeline.CleanupResult, error) {
		calls++
		return pipeline.CleanupResult{Removed: []int64{}, Refused: []pipeline.CleanupRefused{{Number: r.Numbers[1], Reason: "message is 3 days old"}}}, nil
	})
	env.ExecuteWorkflow(CleanupWorkflow, pipeline.CleanupInput{CleanupRequest: pipeline.CleanupRequest{Numbers: []int64{1, 2}, Retention: 40 * 24 * time.Hour}})
	var out pipeline.CleanupOutcome
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	if calls != 1 || out.Removed != 0 || len(out.Refused) != 1 || out.Refused[0].Number != 2 {
		t.Errorf("outcome %+v calls %d", out, calls)
	}
}
