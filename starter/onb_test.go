package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"koerier/pipeline"
	"koerier/store"
)

// `onb list`, `onb link` and `onb resolve`: a refusal is printed before anything is
// signalled; done, the reply's workflow is signalled (and started where it had none).
func TestONBCommands(t *testing.T) {
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
	mine, theirs := queueVAT(t, st, "001000044B37", "2026-10"), queueVAT(t, st, "002000044B37", "2026-10")
	plan, err := st.BeginDelivery(ctx, mine)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RecordDelivered(ctx, mine, plan.Attempt, "K-mine", ""); err != nil {
		t.Fatal(err)
	}
	in, err := st.StoreIncoming(ctx, []store.IncomingDoc{
		{PickupKenmerk: "K-stray", Berichtkenmerk: store.StatusBerichtkenmerk("500", time.Now()), Subject: "001000044B37"},
		{PickupKenmerk: "K-noise", Berichtkenmerk: "b1", Content: []byte("<x/>")},
	})
	if err != nil || len(in.Unknown) != 2 {
		t.Fatalf("store: %+v %v", in, err)
	}
	status, noise := in.Unknown[0], in.Unknown[1]

	out, err := run(t, "onb", "list", "--json")
	var listed []store.ONB
	if err != nil || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 2 {
		t.Fatalf("onb list: %q %v", out, err)
	}

	_, err = run(t, "onb", "link", fmt.Sprint(status), fmt.Sprint(theirs))
	if err == nil || !strings.Contains(err.Error(), "is about belanghebbende") {
		t.Fatalf("link to another subject's message: %v", err)
	}
	if got := signals(t, tc, pipeline.UnknownReplyID(status)); got != nil {
		t.Fatalf("a refused link signalled: %v", got)
	}
	// A status of another Digipoort process is refused, with what to do instead.
	_, err = run(t, "onb", "link", fmt.Sprint(status), fmt.Sprint(mine))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("starter delivery adopt %d K-stray", mine)) {
		t.Fatalf("link another process's status: %v", err)
	}
	out, err = run(t, "onb", "link", fmt.Sprint(noise), fmt.Sprint(mine), "--memo", "late answer")
	if err != nil || !strings.Contains(out, fmt.Sprintf("unknown reply %d linked to message %d as its reply document", noise, mine)) {
		t.Fatalf("link: %q %v", out, err)
	}
	if got := signals(t, tc, pipeline.UnknownReplyID(noise)); len(got) != 1 || got[0] != pipeline.SignalLinkONB {
		t.Fatalf("signals after link: %v", got)
	}
	// The advised retry (the workflow was not told, say) succeeds and tells it again.
	out, err = run(t, "onb", "link", fmt.Sprint(noise), fmt.Sprint(mine))
	if err != nil || !strings.Contains(out, fmt.Sprintf("unknown reply %d was linked to message %d already", noise, mine)) {
		t.Fatalf("link again: %q %v", out, err)
	}
	if got := signals(t, tc, pipeline.UnknownReplyID(noise)); len(got) != 2 || got[1] != pipeline.SignalLinkONB {
		t.Fatalf("signals after the retry: %v", got)
	}

	if _, err := run(t, "onb", "resolve", fmt.Sprint(status)); err == nil || !strings.Contains(err.Error(), `"memo" not set`) {
		t.Fatalf("resolve without memo: %v", err)
	}
	out, err = run(t, "onb", "resolve", fmt.Sprint(status), "--memo", "another system's process")
	if err != nil || !strings.Contains(out, fmt.Sprintf("unknown reply %d resolved", status)) {
		t.Fatalf("resolve: %q %v", out, err)
	}
	if got := signals(t, tc, pipeline.UnknownReplyID(status)); len(got) != 1 || got[0] != pipeline.SignalResolveONB {
		t.Fatalf("signals after resolve: %v", got)
	}
	if out, err := run(t, "onb", "list"); err != nil || strings.Contains(out, "K-") {
		t.Fatalf("nothing open: %q %v", out, err)
	}
}
