package activities_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"go.temporal.io/sdk/client"

	"koerier/pipeline"
	"koerier/store"
)

// refusingStarts is a Temporal that refuses to start unknown replies' workflows and
// does everything else as the fake does.
type refusingStarts struct {
	*fakeClient
	refused atomic.Int64
}

func (c *refusingStarts) ExecuteWorkflow(ctx context.Context, options client.StartWorkflowOptions, workflow interface{},
	args ...interface{}) (client.WorkflowRun, error) {
	if strings.HasPrefix(options.ID, strings.TrimSuffix(pipeline.UnknownReplyID(0), "0")) {
		c.refused.Add(1)
		return nil, errors.New("namespace is unavailable")
	}
	return c.fakeClient.ExecuteWorkflow(ctx, options, workflow, args...)
}

// The end-of-run sweep runs every part though one fails: with Temporal refusing the
// unknown replies' starts, the stale webhook events are still asked for, the error says
// so, and the ONB sweep gives up after one round of starts rather than trying each of
// the open replies.
func TestSweepRunsEverySweepAndBoundsFailingONBStarts(t *testing.T) {
	h := newHarness(t)
	r := newReceiver(t)
	h.register(r, r.srv.URL)
	stale := h.processed(vatNumber("1"), "K1")
	h.exec(`UPDATE webhook_events SET created_at = now() - interval '2 hours' WHERE message_number = $1`, stale)
	docs := make([]store.IncomingDoc, 30)
	for i := range docs {
		docs[i] = store.IncomingDoc{PickupKenmerk: fmt.Sprintf("K-noise-%d", i), Berichtkenmerk: "b", Content: []byte("<x/>")}
	}
	if in, err := h.st.StoreIncoming(ctx, docs); err != nil || len(in.Unknown) != len(docs) {
		t.Fatalf("store: %+v %v", in, err)
	}
	h.tc.reset()
	refusing := &refusingStarts{fakeClient: h.tc}
	h.acts.Config.Starter.Client = refusing

	_, err := run[struct{}](h, h.acts.SignalPendingReplies)
	if err == nil || !strings.Contains(err.Error(), "namespace is unavailable") || !strings.Contains(err.Error(), "26 more open unknown replies") {
		t.Fatalf("want the failed starts reported, got %v", err)
	}
	var asked []string
	for _, c := range h.tc.signals() {
		if c.signal == pipeline.SignalDeliverWebhooks {
			asked = append(asked, c.workflowID)
		}
	}
	if len(asked) != 1 || asked[0] != pipeline.DeclarationID(stale) {
		t.Errorf("the webhook sweep must run though the ONB sweep failed: asked %v", asked)
	}
	if n := refusing.refused.Load(); n != int64(h.acts.Config.Parallel) {
		t.Errorf("%d starts tried, want one round of %d", n, h.acts.Config.Parallel)
	}
}
