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

// The sweep reaches every open unknown reply in turn: those whose workflow Temporal never
// confirmed first, oldest first, and a confirmed one again only after a day — not the
// newest 100 every run, which never reached the older ones and asked about the same
// running workflows each time.
func TestONBSweepReachesOlderRepliesAndConfirmsOncePerDay(t *testing.T) {
	h := newHarness(t)
	docs := make([]store.IncomingDoc, 130)
	for i := range docs {
		docs[i] = store.IncomingDoc{PickupKenmerk: fmt.Sprintf("K-sweep-%d", i), Berichtkenmerk: "b", Content: []byte("<x/>")}
	}
	in, err := h.st.StoreIncoming(ctx, docs)
	if err != nil || len(in.Unknown) != len(docs) {
		t.Fatalf("store: %+v %v", in, err)
	}
	started := func() map[string]bool {
		ids := map[string]bool{}
		for _, c := range h.tc.signals() {
			if c.method == "ExecuteWorkflow" && strings.HasPrefix(c.workflowID, strings.TrimSuffix(pipeline.UnknownReplyID(0), "0")) {
				ids[c.workflowID] = true
			}
		}
		h.tc.reset()
		return ids
	}
	h.tc.reset()
	if _, err := run[struct{}](h, h.acts.SignalPendingReplies); err != nil {
		t.Fatal(err)
	}
	first := started()
	if len(first) != 100 || !first[pipeline.UnknownReplyID(in.Unknown[0])] {
		t.Fatalf("first run: %d starts (oldest included: %v), want the oldest 100", len(first), first[pipeline.UnknownReplyID(in.Unknown[0])])
	}
	if _, err := run[struct{}](h, h.acts.SignalPendingReplies); err != nil {
		t.Fatal(err)
	}
	second := started()
	if len(second) != 30 {
		t.Fatalf("second run: %d starts, want the 30 not reached yet", len(second))
	}
	for id := range second {
		if first[id] {
			t.Fatalf("second run asked again about %s", id)
		}
	}
	if _, err := run[struct{}](h, h.acts.SignalPendingReplies); err != nil {
		t.Fatal(err)
	}
	if n := len(started()); n != 0 {
		t.Fatalf("third run: %d starts, want none (all confirmed today)", n)
	}
	h.exec(`UPDATE messages SET onb_workflow_at = now() - interval '25 hours' WHERE number = $1`, in.Unknown[7])
	if _, err := run[struct{}](h, h.acts.SignalPendingReplies); err != nil {
		t.Fatal(err)
	}
	if again := started(); len(again) != 1 || !again[pipeline.UnknownReplyID(in.Unknown[7])] {
		t.Fatalf("a reply confirmed over a day ago: %v", again)
	}
}
