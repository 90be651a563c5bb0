package activities_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"koerier/digipoort"
	"koerier/domain"
	"koerier/pipeline"
)

func TestDeliverSendsOnceAndIsIdempotent(t *testing.T) {
	h := newHarness(t)
	n := h.queue("1").Number
	h.dp.script(answer{resp: digipoort.DeliverResponse{Kenmerk: "KM-1"}})

	res, err := h.deliverCall(n)
	if err != nil || res.Outcome != pipeline.OutcomeSent || res.Kenmerk != "KM-1" || res.Attempt != 1 || res.Recovered {
		t.Fatalf("deliver: %+v %v", res, err)
	}
	if res.State == nil || res.State.Status != domain.StatusSent || res.State.Kenmerk != "KM-1" {
		t.Fatalf("state after delivery: %+v", res.State)
	}
	r := h.dp.requests[0]
	if r.Berichtsoort != "Omzetbelasting" || r.Aanleverkenmerk != domain.Aanleverkenmerk(domain.DefaultAanleverkenmerkPrefix, n, 1) || r.Rol != "Bedrijf" ||
		r.Belanghebbende != (digipoort.Identity{Nummer: "NL000000001B01", Type: "BTW"}) || len(r.Bijlagen) != 0 || r.Bestandsnaam != "aangifte.xbrl" || len(r.Inhoud) == 0 {
		t.Fatalf("request sent to Digipoort: %+v", r)
	}
	h.requireMessage(n, domain.StatusSent, false, "KM-1")
	if h.count(`SELECT count(*) FROM deliveries WHERE message_number = $1 AND kenmerk = 'KM-1' AND delivered_at IS NOT NULL`, n) != 1 {
		t.Fatal("no delivered row for attempt 1")
	}
	h.requireLog(n, domain.LevelInfo, "delivered to Digipoort", 1)

	// The worker died after the call, Temporal runs the activity again.
	again, err := h.deliverCall(n)
	if err != nil || again.Outcome != pipeline.OutcomeSent || again.Kenmerk != "KM-1" || again.Attempt != 1 {
		t.Fatalf("deliver again: %+v %v", again, err)
	}
	h.requireCalls(map[string]int{"Deliver": 1, "DeliveryCandidates": 0})
	h.requireLog(n, domain.LevelInfo, "delivered to Digipoort", 1)
}

func TestDeliverRefusedForGoodIsSendFailed(t *testing.T) {
	h := newHarness(t)
	n := h.queue("1").Number
	h.dp.script(answer{err: deliverErr(digipoort.Final, 500, "ALS100", "Digipoort refused the delivery")})

	res, err := h.deliverCall(n)
	if err != nil || res.Outcome != pipeline.OutcomeSendFailed || res.Kenmerk != "" {
		t.Fatalf("deliver: %+v %v", res, err)
	}
	if res.State == nil || res.State.Status != domain.StatusSendFailed || !res.State.NeedsAction {
		t.Fatalf("state: %+v", res.State)
	}
	m := h.requireMessage(n, domain.StatusSendFailed, true, "")
	if !containsAll(m.NeedsActionReason, "ALS100") {
		t.Fatalf("needs-action reason: %q", m.NeedsActionReason)
	}
	h.requireLog(n, domain.LevelError, "", 1)
	h.requireLog(n, domain.LevelError, "ALS100", 1)
	if h.count(`SELECT count(*) FROM deliveries WHERE message_number = $1 AND failed_at IS NOT NULL AND kenmerk IS NULL`, n) != 1 {
		t.Fatal("the delivery is not recorded as failed")
	}

	// A retried activity does not deliver again: the attempt was refused.
	again, err := h.deliverCall(n)
	if err != nil || again.Outcome != pipeline.OutcomeRefused || !containsAll(again.Reason, "refused by Digipoort before", "restore") {
		t.Fatalf("deliver again: %+v %v", again, err)
	}
	h.requireCalls(map[string]int{"Deliver": 1})
	h.requireLog(n, domain.LevelError, "", 1)
}

func TestDeliverUntrustedAnswerIsLookedUpOnRetry(t *testing.T) {
	h := newHarness(t)
	other := h.delivered("2", "KM-OTHER")
	n := h.queue("1").Number
	untrusted := deliverErr(digipoort.Final, 200, "", "the signature of the answer does not verify")
	if !digipoort.MayHaveArrived(untrusted) {
		t.Fatal("test setup: the error must be one that may have arrived")
	}
	h.dp.script(answer{err: untrusted})

	_, err := h.deliverCall(n)
	requireRetryable(t, err, "does not verify")
	h.requireMessage(n, domain.StatusQueued, false, "")
	h.requireLog(n, domain.LevelError, "could not be trusted", 1)
	if h.count(`SELECT count(*) FROM deliveries WHERE message_number = $1 AND kenmerk IS NULL AND failed_at IS NULL AND closed_at IS NULL`, n) != 1 {
		t.Fatal("the delivery must stay open (neither delivered nor failed)")
	}

	// The retry asks Digipoort, which has it.
	h.dp.set(func(f *fakeDigipoort) { f.found, f.probe = "KM-FOUND", []string{"KM-OTHER", "KM-NEW"} })
	res, err := h.deliverCall(n)
	if err != nil || res.Outcome != pipeline.OutcomeSent || res.Kenmerk != "KM-FOUND" || !res.Recovered {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if res.State == nil || res.State.Status != domain.StatusSent {
		t.Fatalf("state: %+v", res.State)
	}
	h.requireCalls(map[string]int{"Deliver": 2, "DeliveryCandidates": 1}) // one for message other, one here
	f := h.dp.finds[0]
	started := h.message(n).QueuedAt
	if f.berichtsoort != "Omzetbelasting" || f.id != (digipoort.Identity{Nummer: "NL000000001B01", Type: "BTW"}) || f.since.After(started) ||
		f.since.Before(started.Add(-time.Hour)) {
		t.Fatalf("DeliveryCandidates asked: %+v (the try started at %s)", f, started)
	}
	if !h.dp.known["KM-OTHER"] || h.dp.known["KM-NEW"] {
		t.Fatalf("known(kenmerk) must say which kenmerken are Koerier's (KM-OTHER of message %d): %v", other, h.dp.known)
	}
	h.requireMessage(n, domain.StatusSent, false, "KM-FOUND")
	h.requireLog(n, domain.LevelInfo, "found at Digipoort after an interrupted delivery", 1)
	h.requireLog(n, domain.LevelError, "", 1)
}

// Rule 11: an interrupted delivery is looked up, never delivered again on its own.
// While Digipoort may still not show it the retry asks again; once the wait is over and
// the look-up cannot decide, an operator decides (and is told what was found).
func TestDeliverUncertainAsksAnOperatorInsteadOfDeliveringAgain(t *testing.T) {
	h := newHarness(t)
	n := h.queue("1").Number
	// A try started and the worker died before it recorded an outcome.
	if _, err := h.st.BeginDelivery(ctx, n); err != nil {
		t.Fatal(err)
	}
	two := []digipoort.Candidate{{Kenmerk: "KM-A", Started: time.Now()}, {Kenmerk: "KM-B", Started: time.Now()}}
	h.dp.set(func(f *fakeDigipoort) { f.candidates = two })

	_, err := h.deliverCall(n)
	requireRetryable(t, err, "may have reached Digipoort", "cannot tell yet", "until 1h0m0s have passed")
	h.requireCalls(map[string]int{"DeliveryCandidates": 1, "Deliver": 0})
	h.requireMessage(n, domain.StatusQueued, false, "")

	// Digipoort cannot be asked: retried as well, still nothing delivered.
	h.dp.set(func(f *fakeDigipoort) { f.findErr = deliverErr(digipoort.Transient, 0, "", "network error") })
	_, err = h.deliverCall(n)
	requireRetryable(t, err, "ask Digipoort whether the interrupted delivery arrived")
	h.requireCalls(map[string]int{"DeliveryCandidates": 2, "Deliver": 0})
	h.dp.set(func(f *fakeDigipoort) { f.findErr = nil })

	// The wait is over and two processes could be it: the operator decides.
	h.exec(`UPDATE deliveries SET started_at = now() - interval '2 hours' WHERE message_number = $1`, n)
	res, err := h.deliverCall(n)
	if err != nil || res.Outcome != pipeline.OutcomeUncertain || !containsAll(res.Reason, "KM-A", "KM-B", "starter delivery adopt") {
		t.Fatalf("after the wait: %+v %v", res, err)
	}
	h.requireCalls(map[string]int{"DeliveryCandidates": 3, "Deliver": 0})
	m := h.requireMessage(n, domain.StatusQueued, true, "")
	if !strings.HasPrefix(m.NeedsActionReason, domain.DeliveryTrouble) {
		t.Fatalf("needs action: %q", m.NeedsActionReason)
	}

	// The operator adopts one: sent, no delivery, the needs-action is over.
	if _, err := run[struct{}](h, h.acts.ResolveDelivery, n, 1, pipeline.ResolveDeliverySignal{Adopt: "KM-B", By: "ops"}); err != nil {
		t.Fatal(err)
	}
	h.requireMessage(n, domain.StatusSent, false, "KM-B")
	h.requireLog(n, domain.LevelInfo, "adopted by ops", 1)
	h.requireCalls(map[string]int{"Deliver": 0})
	_, err = run[struct{}](h, h.acts.ResolveDelivery, n, 1, pipeline.ResolveDeliverySignal{DeliverAgain: true, By: "ops"})
	requireFinal(t, err, pipeline.ErrTypeRefused, "no delivery that waits for a decision")
}

// An operator who finds that the delivery did not arrive has it delivered again: an
// explicit, logged decision.
func TestDeliverAgainAfterAnOperatorsDecision(t *testing.T) {
	h := newHarness(t)
	h.acts.Config.UncertainWait = time.Second
	n := h.queue("1").Number
	if _, err := h.st.BeginDelivery(ctx, n); err != nil {
		t.Fatal(err)
	}
	h.exec(`UPDATE deliveries SET started_at = now() - interval '1 minute' WHERE message_number = $1`, n)
	res, err := h.deliverCall(n)
	if err != nil || res.Outcome != pipeline.OutcomeUncertain || !containsAll(res.Reason, "shows no process") {
		t.Fatalf("nothing found: %+v %v", res, err)
	}
	if _, err := run[struct{}](h, h.acts.ResolveDelivery, n, 1, pipeline.ResolveDeliverySignal{DeliverAgain: true, By: "ops"}); err != nil {
		t.Fatal(err)
	}
	h.requireLog(n, domain.LevelInfo, "ops decided that the delivery", 1)
	res, err = h.deliverCall(n)
	if err != nil || res.Outcome != pipeline.OutcomeSent || res.Recovered {
		t.Fatalf("delivered again: %+v %v", res, err)
	}
	h.requireCalls(map[string]int{"DeliveryCandidates": 1, "Deliver": 1})
	h.requireMessage(n, domain.StatusSent, false, "KM-"+domain.Aanleverkenmerk(domain.DefaultAanleverkenmerkPrefix, n, 1))
}

// A process that started before the try, or that is another system's (its pickup
// names another aanleverkenmerk), is not this delivery; the one that is gets adopted.
func TestDeliverUncertainAdoptsTheOnlyCandidate(t *testing.T) {
	h := newHarness(t)
	n := h.queue("1").Number
	if _, err := h.st.BeginDelivery(ctx, n); err != nil {
		t.Fatal(err)
	}
	h.dp.set(func(f *fakeDigipoort) { f.found = "KM-ONLY" })
	res, err := h.deliverCall(n)
	if err != nil || res.Outcome != pipeline.OutcomeSent || res.Kenmerk != "KM-ONLY" || !res.Recovered {
		t.Fatalf("%+v %v", res, err)
	}
	h.requireLog(n, domain.LevelInfo, "is the only process of this berichtsoort and belanghebbende", 1)
	h.requireCalls(map[string]int{"Deliver": 0})
}

func TestDeliverTransientErrorIsRetried(t *testing.T) {
	for name, e := range map[string]*digipoort.Error{
		"network":    deliverErr(digipoort.Transient, 0, "", "network error talking to Digipoort; retry later"),
		"overloaded": deliverErr(digipoort.Transient, 500, "ALS400", "technical problem at Digipoort; retry later"),
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			n := h.queue("1").Number
			h.dp.script(answer{err: e})
			_, err := h.deliverCall(n)
			requireRetryable(t, err, "retry later")
			h.requireMessage(n, domain.StatusQueued, false, "")
			// A fault of Digipoort's own (ALS400) means it did not accept the delivery: it
			// is closed and delivered afresh; no answer at all leaves it open, to be looked up.
			open := 1
			if e.Foutcode != "" {
				open = 0
			}
			if h.count(`SELECT count(*) FROM deliveries WHERE message_number = $1 AND kenmerk IS NULL AND failed_at IS NULL AND closed_at IS NULL`, n) != open {
				t.Fatalf("want %d open deliveries", open)
			}
			// Said at once, once per distinct error: the retry with the same error adds
			// no line.
			said := "is not known"
			if e.Foutcode != "" {
				said = "did not accept the delivery"
			}
			h.requireLog(n, domain.LevelError, said, 1)
			h.dp.script(answer{err: e})
			_, err = h.deliverCall(n)
			requireRetryable(t, err)
			h.requireLog(n, domain.LevelError, "", 1)
		})
	}
}

func TestDeliverStatus210IsDeliveredAndFailed(t *testing.T) {
	h := newHarness(t)
	n := h.queue("1").Number
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	h.dp.script(answer{resp: digipoort.DeliverResponse{Kenmerk: "KM-210", Aangeleverd: at},
		err: &digipoort.Error{Op: opDeliver, Kind: digipoort.Final, HTTPStatus: 200, Statuscode: "210", Msg: "Digipoort could not authenticate the sender"}})

	res, err := h.deliverCall(n)
	if err != nil || res.Outcome != pipeline.OutcomeSent || res.Kenmerk != "KM-210" || !containsAll(res.Reason, "authenticate") {
		t.Fatalf("deliver: %+v %v", res, err)
	}
	h.requireMessage(n, domain.StatusFailed, true, "KM-210")
	if h.count(`SELECT count(*) FROM status_events WHERE message_number = $1 AND code = '210'`, n) != 1 {
		t.Fatal("the 210 is not kept as a reply")
	}
}

func TestDeliverRefusesAnOlderVersion(t *testing.T) {
	h := newHarness(t)
	v1 := h.queue("1").Number
	v2 := h.queue("1").Number

	res, err := h.deliverCall(v1)
	if err != nil || res.Outcome != pipeline.OutcomeRefused || !containsAll(res.Reason, "do-not-send", "version 2") {
		t.Fatalf("deliver v1: %+v %v", res, err)
	}
	h.requireCalls(map[string]int{"Deliver": 0, "DeliveryCandidates": 0})
	if m := h.requireMessage(v1, domain.StatusQueued, false, ""); !m.DoNotSend {
		t.Fatal("v1 is not do-not-send")
	}
	if h.count(`SELECT count(*) FROM deliveries`) != 0 {
		t.Fatal("a refused delivery was recorded")
	}
	h.requireMessage(v2, domain.StatusQueued, false, "")
}

func TestLoadMessageAndRestoreRefusalsAreFinal(t *testing.T) {
	h := newHarness(t)
	_, err := run[pipeline.Message](h, h.acts.LoadMessage, int64(999999))
	requireFinal(t, err, pipeline.ErrTypeNotFound, "999999")

	n := h.queue("1").Number
	m, err := run[pipeline.Message](h, h.acts.LoadMessage, n)
	if err != nil || m.Number != n || m.Status != domain.StatusQueued || m.Environment != testEnv {
		t.Fatalf("load: %+v %v", m, err)
	}

	_, err = run[pipeline.RestoreResult](h, h.acts.Restore, n, "tester")
	requireFinal(t, err, pipeline.ErrTypeRefused, "only a message that failed")
	if got := h.requireMessage(n, domain.StatusQueued, false, ""); got.Attempt != 1 {
		t.Fatalf("attempt after a refused restore: %d", got.Attempt)
	}
}

// A message without its declaration cannot be delivered, however often it is tried:
// the error is final, and Digipoort is not called.
func TestDeliverWithoutAttachmentIsFinal(t *testing.T) {
	h := newHarness(t)
	n := h.queue("1").Number
	h.exec(`DELETE FROM attachments WHERE message_number = $1`, n)
	_, err := h.deliverCall(n)
	requireFinal(t, err, pipeline.ErrTypeInvalid, "no attachment")
	h.requireCalls(map[string]int{"Deliver": 0})
}

// A newer version waits while an older one's delivery has no known outcome: nothing
// is sent, an I line says why, and it is delivered once the older one is resolved.
func TestDeliverNewerVersionWaitsForAnOpenDelivery(t *testing.T) {
	h := newHarness(t)
	v1 := h.queue("1").Number
	h.dp.script(answer{err: deliverErr(digipoort.Transient, 0, "", "network error talking to Digipoort; retry later")})
	_, err := h.deliverCall(v1)
	requireRetryable(t, err, "retry later")
	v2 := h.queue("1").Number

	res, err := h.deliverCall(v2)
	if err != nil || res.Outcome != pipeline.OutcomeWaiting || !containsAll(res.Reason, fmt.Sprintf("message %d (", v1), "outcome is not known") {
		t.Fatalf("v2: %+v %v", res, err)
	}
	h.requireLog(v2, domain.LevelInfo, "not sent yet", 1)
	h.requireCalls(map[string]int{"Deliver": 1})

	// v1 is found at Digipoort on its retry; then v2 goes.
	h.dp.set(func(f *fakeDigipoort) { f.found = "K-v1" })
	if res, err := h.deliverCall(v1); err != nil || !res.Recovered {
		t.Fatalf("v1 retry: %+v %v", res, err)
	}
	if res, err := h.deliverCall(v2); err != nil || res.Outcome != pipeline.OutcomeSent {
		t.Fatalf("v2 after v1: %+v %v", res, err)
	}
	h.requireCalls(map[string]int{"Deliver": 2})
}
