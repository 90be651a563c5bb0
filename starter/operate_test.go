package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"koerier/internal/temporalclient"
	"koerier/internal/testenv"
	"koerier/pipeline"
	"koerier/store"
)

// useTemporal points the commands at a fresh namespace of the package's dev server and
// returns a client of it.
func useTemporal(t *testing.T) client.Client {
	t.Helper()
	srv := testenv.TemporalServer(t)
	ns := testenv.Namespace(t, srv)
	t.Setenv("KOERIER_TEMPORAL_ADDRESS", srv.FrontendHostPort())
	t.Setenv("KOERIER_TEMPORAL_NAMESPACE", ns)
	c, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), Namespace: ns, Logger: temporalclient.Logger{L: testenv.Quiet()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	// As the worker does at start: the workflows are started with Koerier's attributes.
	if err := temporalclient.EnsureSearchAttributes(context.Background(), c, ns); err != nil {
		t.Fatal(err)
	}
	return c
}

// signals lists the signals the workflow with the given id received; nil when it has none.
func signals(t *testing.T, c client.Client, workflowID string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	it := c.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		if s := ev.GetWorkflowExecutionSignaledEventAttributes(); s != nil {
			out = append(out, s.GetSignalName())
		}
	}
	return out
}

// `send` says per number what happens and signals only what is due; `environments set`
// changes the settings and tells the running workflows; `restore` of a replaced
// do-not-send version names the version that replaced it.
func TestSendAndEnvironmentsSetSayWhatHappens(t *testing.T) {
	catalogEnv(t)
	url := useDatabase(t)
	tc := useTemporal(t)
	ctx := context.Background()
	if _, err := run(t, "environments", "add", "acme"); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	due := queueVAT(t, st, "001000044B37", "2026-10")
	old := queueVAT(t, st, "002000044B37", "2026-10")
	newer := queueVAT(t, st, "002000044B37", "2026-10")
	accepted := queueVAT(t, st, "003000044B37", "2026-10")
	plan, err := st.BeginDelivery(ctx, accepted)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RecordDelivered(ctx, accepted, plan.Attempt, "K-acc", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ApplyReplies(ctx, []store.Reply{store.ReplyFromCode("K-acc", "500", time.Now())}); err != nil {
		t.Fatal(err)
	}

	out, err := run(t, "send", fmt.Sprint(due), fmt.Sprint(old), fmt.Sprint(accepted))
	for _, want := range []string{
		fmt.Sprintf("%d: due (queued), send-now signalled", due),
		fmt.Sprintf("%d: do-not-send (version 2 of its declaration replaced it): nothing is sent", old),
		fmt.Sprintf("%d: not due (accepted): nothing to send", accepted),
	} {
		if !strings.Contains(out, want+"\n") && !strings.Contains(out, want+";") && !strings.Contains(out, want+",") {
			t.Errorf("send printed %q, want a line %q", out, want)
		}
	}
	if strings.Contains(out, " sent to ") || err == nil || !strings.Contains(err.Error(), fmt.Sprintf("2 of 3 message(s) not sent: [%d %d]", old, accepted)) {
		t.Errorf("send must fail naming what it did not send: %q %v", out, err)
	}
	if got := signals(t, tc, pipeline.DeclarationID(due)); len(got) != 1 || got[0] != pipeline.SignalSendNow {
		t.Errorf("signals of the due message: %v", got)
	}
	if got := signals(t, tc, pipeline.DeclarationID(old)); got != nil {
		t.Errorf("a do-not-send message was signalled: %v", got)
	}

	_, err = run(t, "restore", fmt.Sprint(old))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("version 2 exists (message %d, queued) and replaced it", newer)) {
		t.Errorf("restore of a replaced do-not-send version: %v", err)
	}

	out, err = run(t, "environments", "set", "acme", "--auto-send=true")
	if err != nil || !strings.Contains(out, "environment acme: auto-send true, auto-process false (changed: auto-send false → true)") ||
		!strings.Contains(out, "1 running workflow(s) told; 3 message(s) without a running workflow") {
		t.Fatalf("environments set: %q %v", out, err)
	}
	if got := signals(t, tc, pipeline.DeclarationID(due)); len(got) != 2 || got[1] != pipeline.SignalEnvironmentChanged {
		t.Errorf("signals of the running workflow: %v", got)
	}
	if e, err := st.Environment(ctx, "acme"); err != nil || !e.AutoSend || e.AutoProcess {
		t.Errorf("stored: %+v %v", e, err)
	}
	if _, err := run(t, "environments", "set", "acme"); err == nil || !strings.Contains(err.Error(), "say what to change") {
		t.Errorf("set without a setting: %v", err)
	}
}
