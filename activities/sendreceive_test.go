package activities_test

import (
	"slices"
	"testing"
	"time"

	"koerier/digipoort"
	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

// requireSignals checks that exactly the messages were signalled, each once, through
// SignalWithStartWorkflow with the declaration's id, options, summary and search
// attributes, and returns the calls by message.
func (h *harness) requireSignals(signal string, numbers ...int64) map[int64]startCall {
	h.t.Helper()
	calls := h.tc.signals()
	if len(calls) != len(numbers) {
		h.t.Fatalf("%d Temporal call(s), want %d: %+v", len(calls), len(numbers), calls)
	}
	byID := map[string]startCall{}
	for _, c := range calls {
		byID[c.workflowID] = c
	}
	out := map[int64]startCall{}
	for _, n := range numbers {
		c, ok := byID[pipeline.DeclarationID(n)]
		if !ok {
			h.t.Fatalf("message %d was not signalled; calls: %+v", n, calls)
		}
		m, err := h.st.Declaration(ctx, n)
		if err != nil {
			h.t.Fatal(err)
		}
		o := c.options
		switch {
		case c.method != "SignalWithStartWorkflow" || c.signal != signal:
			h.t.Fatalf("message %d: %s %q, want SignalWithStartWorkflow %q", n, c.method, c.signal, signal)
		case o.ID != pipeline.DeclarationID(n) || o.TaskQueue != taskQueue || o.StaticSummary != m.Summary():
			h.t.Fatalf("message %d: options %+v, want id %s, task queue %s, summary %q", n, o, pipeline.DeclarationID(n), taskQueue, m.Summary())
		case pipeline.CurrentAttributesKey(o.TypedSearchAttributes) != m.AttributesKey():
			h.t.Fatalf("message %d: search attributes %s, want %s", n, pipeline.CurrentAttributesKey(o.TypedSearchAttributes), m.AttributesKey())
		case c.workflow != pipeline.CompactDeclarationWorkflowType || len(c.args) != 1 || c.args[0] != (pipeline.DeclarationInput{Number: n}):
			h.t.Fatalf("message %d: starts %v %+v", n, c.workflow, c.args)
		}
		if env, _ := o.TypedSearchAttributes.GetKeyword(pipeline.SAEnvironment); env != testEnv {
			h.t.Fatalf("message %d: KoerierEnvironment %q", n, env)
		}
		out[n] = c
	}
	return out
}

func TestAcquireLockHeldByAnotherRunIsFinal(t *testing.T) {
	h := newHarness(t)
	l, err := run[store.Lock](h, h.acts.AcquireLock, "run-1")
	if err != nil || l.Name != store.LockSendReceive || l.Holder != "run-1" || l.ExpiresAt.Sub(l.AcquiredAt) < domain.LockDuration-time.Second {
		t.Fatalf("acquire: %+v %v", l, err)
	}
	_, err = run[store.Lock](h, h.acts.AcquireLock, "run-2")
	requireFinal(t, err, pipeline.ErrTypeLockHeld, "run-1")
	if _, err := run[store.Lock](h, h.acts.RenewLock, "run-1"); err != nil {
		t.Fatalf("the holder renews: %v", err)
	}

	for i, want := range []bool{true, false} {
		ok, err := run[bool](h, h.acts.ReleaseLock, "run-1")
		if err != nil || ok != want {
			t.Fatalf("release %d: %v %v, want %v", i+1, ok, err, want)
		}
	}
	if h.count(`SELECT count(*) FROM locks`) != 0 {
		t.Fatal("the lock is still held")
	}
	if l, err := run[store.Lock](h, h.acts.AcquireLock, "run-2"); err != nil || l.Holder != "run-2" {
		t.Fatalf("acquire after release: %+v %v", l, err)
	}
}

// Each page of a run renews the run's lock in its own request; a run that lost the lock
// (another took it after it expired) is refused by every page, final, and tells no
// workflow anything.
func TestPagesRenewTheLockAndRefuseARunThatLostIt(t *testing.T) {
	h := newHarness(t)
	n := h.queue("1").Number
	if _, err := run[store.Lock](h, h.acts.AcquireLock, "run-1"); err != nil {
		t.Fatal(err)
	}
	h.exec(`UPDATE locks SET expires_at = now() + interval '1 minute'`)
	if _, err := run[pipeline.DispatchResult](h, h.acts.DispatchSends, pipeline.DispatchRequest{Limit: 10, By: "run-1", Holder: "run-1"}); err != nil {
		t.Fatal(err)
	}
	if h.count(`SELECT count(*) FROM locks WHERE holder = 'run-1' AND expires_at > now() + interval '29 minutes'`) != 1 {
		t.Fatal("the page did not renew the lock for 30 minutes")
	}

	h.exec(`UPDATE locks SET acquired_at = now() - interval '31 minutes', expires_at = now() - interval '1 second'`)
	if _, err := run[store.Lock](h, h.acts.AcquireLock, "run-2"); err != nil {
		t.Fatal(err)
	}
	h.tc.reset()
	_, err := run[pipeline.DispatchResult](h, h.acts.DispatchSends, pipeline.DispatchRequest{Limit: 10, By: "run-1", Holder: "run-1"})
	requireFinal(t, err, pipeline.ErrTypeLockHeld, "lost its lock")
	_, err = run[pipeline.SendOutcome](h, h.acts.AwaitSendOutcomes, pipeline.AwaitRequest{Numbers: []int64{n}, Holder: "run-1"})
	requireFinal(t, err, pipeline.ErrTypeLockHeld, "run-2")
	_, err = run[pipeline.ReceiveResult](h, h.acts.ReceiveStatuses, pipeline.ReceiveRequest{Limit: 10, Holder: "run-1"})
	requireFinal(t, err, pipeline.ErrTypeLockHeld, "lost its lock")
	if got := h.tc.signals(); len(got) != 0 {
		t.Fatalf("a run without the lock told %d workflows", len(got))
	}
	if h.count(`SELECT count(*) FROM locks WHERE holder = 'run-2'`) != 1 {
		t.Fatal("the other run's lock was taken")
	}
}

func TestDispatchSendsSignalsEveryDueMessageByPage(t *testing.T) {
	h := newHarness(t)
	h.delivered("1", "KM-1") // sent: not due
	due := []int64{h.queue("2").Number, h.queue("3").Number, h.queue("4").Number}
	req := pipeline.DispatchRequest{Limit: 2, By: "run-7"}

	for _, page := range []struct {
		numbers []int64
		more    bool
	}{{due[:2], true}, {due[2:], false}, {nil, false}} {
		h.tc.reset()
		res, err := run[pipeline.DispatchResult](h, h.acts.DispatchSends, req)
		next := req.After
		if len(page.numbers) > 0 {
			next = page.numbers[len(page.numbers)-1]
		}
		if err != nil || !slices.Equal(res.Numbers, page.numbers) || res.Next != next || res.More != page.more {
			t.Fatalf("dispatch after %d: %+v %v; want %v, next %d, more %v", req.After, res, err, page.numbers, next, page.more)
		}
		for n, c := range h.requireSignals(pipeline.SignalSend, page.numbers...) {
			if c.arg != (pipeline.SendSignal{By: "run-7"}) {
				t.Fatalf("message %d: send signal %+v", n, c.arg)
			}
		}
		req.After = res.Next
	}
	h.requireCalls(map[string]int{"Deliver": 1})
}

// statusesOf builds the statuses Digipoort reports for kenmerk, a minute apart.
func statusesOf(kenmerk string, codes ...string) []digipoort.Status {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	var out []digipoort.Status
	for i, c := range codes {
		out = append(out, digipoort.Status{Kenmerk: kenmerk, Code: c, Time: at.Add(time.Duration(i) * time.Minute), Description: "status " + c,
			Belanghebbende: digipoort.Identity{Nummer: "1", Type: "Fi"}})
	}
	return out
}

// answerStatuses scripts what Statuses returns per kenmerk.
func (h *harness) answerStatuses(answers map[string]statusAnswer) {
	h.dp.set(func(f *fakeDigipoort) {
		for k, a := range answers {
			f.statuses[k] = a
		}
	})
}

func (h *harness) receive() (pipeline.ReceiveResult, error) {
	h.t.Helper()
	return run[pipeline.ReceiveResult](h, h.acts.ReceiveStatuses, pipeline.ReceiveRequest{Limit: 10})
}

func replyCodes(rs []pipeline.Reply) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return out
}

func TestReceiveStatusesAppliesRepliesAndSignalsEachMessageOnce(t *testing.T) {
	h := newHarness(t)
	a := h.delivered("1", "KM-A")
	b := h.delivered("2", "KM-B")
	h.answerStatuses(map[string]statusAnswer{
		"KM-A": {statuses: statusesOf("KM-A", "105", "100", "500")},
		"KM-B": {statuses: statusesOf("KM-B", "105", "100")},
	})

	res, err := h.receive()
	if err != nil || res != (pipeline.ReceiveResult{Next: b, Deliveries: 2, Replies: 5}) {
		t.Fatalf("receive: %+v %v", res, err)
	}
	h.requireMessage(a, domain.StatusAccepted, false, "KM-A")
	h.requireMessage(b, domain.StatusReceiptConfirmed, false, "KM-B")
	if h.count(`SELECT count(*) FROM status_events WHERE signaled`) != 5 || h.count(`SELECT count(*) FROM status_events`) != 5 {
		t.Fatal("want 5 replies stored, all signalled")
	}
	calls := h.requireSignals(pipeline.SignalReplies, a, b)
	for n, want := range map[int64]struct {
		codes  []string
		status domain.Status
	}{a: {[]string{"105", "100", "500"}, domain.StatusAccepted}, b: {[]string{"105", "100"}, domain.StatusReceiptConfirmed}} {
		sig, ok := calls[n].arg.(pipeline.RepliesSignal)
		if !ok || !slices.Equal(replyCodes(sig.Replies), want.codes) || sig.Status != want.status || sig.Attempt != 1 || sig.NeedsAction {
			t.Fatalf("message %d: replies signal %+v, want codes %v and status %s", n, calls[n].arg, want.codes, want.status)
		}
	}

	// The next run: a is final and not asked again; b's statuses are known already.
	h.tc.reset()
	res, err = h.receive()
	if err != nil || res != (pipeline.ReceiveResult{Next: b, Deliveries: 1, Duplicates: 2}) {
		t.Fatalf("receive again: %+v %v", res, err)
	}
	h.requireSignals(pipeline.SignalReplies)
	h.requireCalls(map[string]int{"Statuses": 3})
}

func TestReceiveStatusesKeepsAStatusOfAnotherKenmerkAsUnknown(t *testing.T) {
	h := newHarness(t)
	n := h.delivered("1", "KM-A")
	h.answerStatuses(map[string]statusAnswer{"KM-A": {statuses: append(statusesOf("KM-A", "105"), statusesOf("KM-X", "100")...)}})

	for round, want := range []pipeline.ReceiveResult{
		{Next: n, Deliveries: 1, Replies: 1, Unknown: 1},
		{Next: n, Deliveries: 1, Duplicates: 1}, // the unknown reply is stored once
	} {
		res, err := h.receive()
		if err != nil || res != want {
			t.Fatalf("round %d: %+v %v, want %+v", round+1, res, err, want)
		}
	}
	h.requireMessage(n, domain.StatusSent, false, "KM-A")
	var onb int64
	if err := h.st.DB().GetContext(ctx, &onb, `SELECT number FROM messages WHERE subtype = 'ONB' AND pickup_kenmerk = 'KM-X'`); err != nil {
		t.Fatalf("the unknown reply: %v", err)
	}
	h.requireMessage(onb, domain.StatusReceived, true, "")
	h.requireLog(onb, domain.LevelError, "unknown reply", 1)
}

func TestReceiveStatusesLogsAFinalRefusalAndGoesOn(t *testing.T) {
	h := newHarness(t)
	a := h.delivered("1", "KM-A")
	b := h.delivered("2", "KM-B")
	h.answerStatuses(map[string]statusAnswer{
		"KM-A": {statuses: statusesOf("KM-A", "105", "100", "500")},
		"KM-B": {err: &digipoort.Error{Op: "getStatussenProces", Kind: digipoort.Final, HTTPStatus: 500, Foutcode: "STS100",
			Msg: "Digipoort refused the status request"}},
	})

	res, err := h.receive()
	if err != nil || res != (pipeline.ReceiveResult{Next: b, Deliveries: 2, Replies: 3, Errors: 1}) {
		t.Fatalf("receive: %+v %v", res, err)
	}
	h.requireMessage(a, domain.StatusAccepted, false, "KM-A")
	h.requireMessage(b, domain.StatusSent, true, "KM-B")
	h.requireLog(b, domain.LevelError, "STS100", 1)
	h.requireSignals(pipeline.SignalReplies, a, b)
}

// Rule 10: a kenmerk Digipoort no longer knows (STS100 "kenmerk onbekend", e.g. the
// simulator restarted without its state, or Digipoort forgot an old process) used to be
// asked for on every send/receive, each adding an F line, forever. Now it is asked with
// back-off, the message is marked needs-action once with what to do and one F line, it
// stays in flight, and the other messages are asked as before.
func TestReceiveStatusesBacksOffAKenmerkDigipoortForgot(t *testing.T) {
	h := newHarness(t)
	a := h.delivered("1", "KM-A")
	b := h.delivered("2", "KM-B")
	h.answerStatuses(map[string]statusAnswer{
		"KM-A": {statuses: statusesOf("KM-A", "105")},
		"KM-B": {err: &digipoort.Error{Op: "getStatussenProces", Kind: digipoort.Final, HTTPStatus: 500, Foutcode: "STS100",
			Foutbeschrijving: "Het kenmerk KM-B is onbekend.", Msg: "Digipoort refused the status request"}},
	})
	nextAsk := func() time.Duration {
		t.Helper()
		var secs float64
		if err := h.st.DB().GetContext(ctx, &secs, `SELECT extract(epoch FROM status_ask_after - now()) FROM deliveries WHERE message_number = $1`,
			b); err != nil {
			t.Fatal(err)
		}
		return time.Duration(secs * float64(time.Second))
	}
	askNow := func() {
		h.exec(`UPDATE deliveries SET status_ask_after = now() - interval '1 second' WHERE message_number = $1`, b)
	}

	// Two runs in a row: KM-B is asked once, the message marked once, one F line.
	for run, want := range []pipeline.ReceiveResult{
		{Next: b, Deliveries: 2, Replies: 1, Errors: 1},
		{Next: a, Deliveries: 1, Duplicates: 1}, // KM-A's 105 again; KM-B not asked
	} {
		res, err := h.receive()
		if err != nil || res != want {
			t.Fatalf("run %d: %+v %v, want %+v", run+1, res, err, want)
		}
	}
	h.requireCalls(map[string]int{"Statuses/KM-A": 2, "Statuses/KM-B": 1})
	m := h.requireMessage(b, domain.StatusSent, true, "KM-B")
	if !containsAll(m.NeedsActionReason, "KM-B", "STS100") {
		t.Fatalf("needs-action reason %q does not name the kenmerk and the refusal", m.NeedsActionReason)
	}
	f := h.requireLog(b, domain.LevelError, "KM-B", 1)
	if !containsAll(f[0].Information, "starter digipoort status --kenmerk KM-B", "asks again") {
		t.Fatalf("the F line does not say what to do: %q", f[0].Information)
	}
	h.requireMessage(a, domain.StatusSent, false, "KM-A")
	h.requireLog(a, domain.LevelError, "", 0)
	sig := h.requireSignals(pipeline.SignalReplies, a, b)[b].arg.(pipeline.RepliesSignal)
	if !sig.NeedsAction || sig.Status != domain.StatusSent || sig.Attempt != 1 {
		t.Fatalf("the workflow was told %+v, want needs-action at status sent, attempt 1", sig)
	}
	if d := nextAsk(); d < 14*time.Minute || d > 16*time.Minute {
		t.Fatalf("next ask in %s, want about 15m", d)
	}

	// When the next ask comes, still refused: the wait doubles, nothing is marked or
	// logged again.
	askNow()
	h.tc.reset()
	if res, err := h.receive(); err != nil || res.Errors != 1 {
		t.Fatalf("third run: %+v %v", res, err)
	}
	h.requireCalls(map[string]int{"Statuses/KM-B": 2})
	if d := nextAsk(); d < 29*time.Minute || d > 31*time.Minute {
		t.Fatalf("next ask after the second refusal in %s, want about 30m", d)
	}
	h.requireLog(b, domain.LevelError, "KM-B", 1)
	if len(h.tc.signals()) != 0 {
		t.Fatalf("a later refusal signalled again: %+v", h.tc.signals())
	}
	// The wait stops growing at a day.
	h.exec(`UPDATE deliveries SET status_refusals = 50, status_ask_after = now() - interval '1 second' WHERE message_number = $1`, b)
	if _, err := h.receive(); err != nil {
		t.Fatal(err)
	}
	if d := nextAsk(); d < 23*time.Hour || d > 25*time.Hour {
		t.Fatalf("next ask after 51 refusals in %s, want a day", d)
	}

	// Digipoort knows the kenmerk again: its statuses are taken, the back-off forgotten.
	h.answerStatuses(map[string]statusAnswer{"KM-B": {statuses: statusesOf("KM-B", "105", "100", "500")}})
	askNow()
	if res, err := h.receive(); err != nil || res.Errors != 0 {
		t.Fatalf("once Digipoort answers: %+v %v", res, err)
	}
	// The refusal is over: its needs-action goes with it (rule 10).
	h.requireMessage(b, domain.StatusAccepted, false, "KM-B")
	if h.count(`SELECT count(*) FROM deliveries WHERE message_number = $1 AND status_refusals = 0 AND status_ask_after IS NULL`, b) != 1 {
		t.Fatal("the back-off was not cleared once Digipoort answered")
	}
}

func TestReceiveStatusesTransientErrorFailsAfterStoring(t *testing.T) {
	h := newHarness(t)
	a := h.delivered("1", "KM-A")
	b := h.delivered("2", "KM-B")
	h.answerStatuses(map[string]statusAnswer{
		"KM-A": {statuses: statusesOf("KM-A", "105", "100", "500")},
		"KM-B": {err: &digipoort.Error{Op: "getStatussenProces", Kind: digipoort.Transient, Msg: "network error talking to Digipoort; retry later"}},
	})

	_, err := h.receive()
	requireRetryable(t, err, "1 of 2 status requests failed", "KM-B")
	h.requireMessage(a, domain.StatusAccepted, false, "KM-A")
	h.requireMessage(b, domain.StatusSent, false, "KM-B")
	if h.count(`SELECT count(*) FROM status_events WHERE message_number = $1 AND signaled`, a) != 3 {
		t.Fatal("what did arrive must be stored and signalled")
	}
	h.requireSignals(pipeline.SignalReplies, a)
	h.requireLog(b, domain.LevelError, "", 0)
}

func TestReceivePickupLinksADocumentOnce(t *testing.T) {
	h := newHarness(t)
	n := h.delivered("1", "KM-A")
	h.dp.set(func(f *fakeDigipoort) {
		f.lijst = []digipoort.BerichtRef{{Kenmerk: "KM-A", Berichtsoort: "Omzetbelasting", Belanghebbende: digipoort.Identity{Nummer: "1", Type: "Fi"}}}
		f.berichten["KM-A"] = []digipoort.Bericht{{Kenmerk: "KM-A", Berichtsoort: "Omzetbelasting", Berichtkenmerk: "BK-1",
			Belanghebbende: digipoort.Identity{Nummer: "1", Type: "Fi"}, MimeType: "text/xml", Bestandsnaam: "bevestiging.xml",
			Inhoud: []byte("<bevestiging/>"), Aangeleverd: time.Now().Add(-time.Hour)}}
	})

	for round, want := range []pipeline.PickupResult{
		{Listed: 1, Fetched: 1, Linked: 1},
		{Listed: 1}, // stored already: nothing fetched
	} {
		res, err := run[pipeline.PickupResult](h, h.acts.ReceivePickup)
		if err != nil || res != want {
			t.Fatalf("round %d: %+v %v, want %+v", round+1, res, err, want)
		}
	}
	h.requireCalls(map[string]int{"BerichtenLijst": 2, "BerichtenKenmerk": 1})
	if h.count(`SELECT count(*) FROM messages WHERE reply_to = $1 AND direction = 'in' AND pickup_kenmerk = 'KM-A' AND berichtkenmerk = 'BK-1'`, n) != 1 {
		t.Fatal("want the document stored once, linked to the message")
	}
	if h.count(`SELECT count(*) FROM attachments a JOIN messages m ON m.number = a.message_number WHERE m.reply_to = $1 AND a.file_name =
		'bevestiging.xml'`, n) != 1 {
		t.Fatal("the document's content is not kept")
	}
	h.requireLog(n, domain.LevelInfo, "reply BK-1", 1)
}

// A status that names another kenmerk is kept as an incoming message under that
// kenmerk (see storeStatuses); documents Digipoort later lists for pickup under the
// same kenmerk must still be fetched.
func TestReceivePickupFetchesDocumentsOfAKenmerkWithAStrayStatus(t *testing.T) {
	h := newHarness(t)
	h.delivered("1", "KM-A")
	b := h.delivered("2", "KM-B")
	h.answerStatuses(map[string]statusAnswer{"KM-A": {statuses: slices.Concat(statusesOf("KM-A", "105"), statusesOf("KM-B", "100"),
		statusesOf("KM-X", "100"))}})
	if _, err := h.receive(); err != nil {
		t.Fatal(err)
	}
	h.dp.set(func(f *fakeDigipoort) {
		f.lijst = []digipoort.BerichtRef{{Kenmerk: "KM-B"}, {Kenmerk: "KM-X"}}
		for _, k := range []string{"KM-B", "KM-X"} {
			f.berichten[k] = []digipoort.Bericht{{Kenmerk: k, Berichtkenmerk: "BK-" + k, MimeType: "text/xml", Bestandsnaam: "bericht.xml",
				Inhoud: []byte("<bericht/>")}}
		}
	})

	res, err := run[pipeline.PickupResult](h, h.acts.ReceivePickup)
	if err != nil || res != (pipeline.PickupResult{Listed: 2, Fetched: 2, Linked: 1, Unknown: 1}) {
		t.Errorf("pickup: %+v %v, want both listed documents fetched (BerichtenKenmerk called %d time(s))", res, err, h.dp.count("BerichtenKenmerk"))
	}
	if h.count(`SELECT count(*) FROM messages WHERE reply_to = $1 AND berichtkenmerk = 'BK-KM-B'`, b) != 1 {
		t.Errorf("message %d's reply document was never fetched", b)
	}
}
