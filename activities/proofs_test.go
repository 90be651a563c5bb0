package activities_test

import (
	"context"
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"

	"koerier/digipoort"
	"koerier/digipoort/simulator"
	"koerier/digipoort/wsse"
	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

// useSimulator points the harness's activities at a real client talking to the
// simulator over mutual TLS, and returns the certificates the simulator signs with.
// The client hands every verified response to the recorder the activities install,
// which a scripted Digipoort cannot do.
func (h *harness) useSimulator() []*x509.Certificate {
	h.t.Helper()
	sctx, cancel := context.WithCancel(context.Background())
	sim, err := simulator.Start(sctx, simulator.Options{Dir: h.t.TempDir(), StepInterval: 5 * time.Millisecond})
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { cancel(); sim.Close() })
	h.sim = sim
	cfg, err := sim.ClientConfig()
	if err != nil {
		h.t.Fatal(err)
	}
	cfg.HTTPTimeout = 10 * time.Second
	c, err := digipoort.New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(c.Close)
	h.acts.Digipoort = c
	return cfg.SigningCertificates
}

func (h *harness) proofs(n int64) []store.SignedResponse {
	h.t.Helper()
	rs, err := h.st.SignedResponses(ctx, n)
	if err != nil {
		h.t.Fatal(err)
	}
	return rs
}

// requireEvidence checks that a kept response verifies offline exactly as stored and
// returns what it proves.
func requireEvidence(t *testing.T, r store.SignedResponse, trusted []*x509.Certificate) digipoort.Evidence {
	t.Helper()
	if _, err := wsse.VerifyStored(r.Body, trusted); err != nil {
		t.Fatalf("kept response %d (%s) does not verify as stored: %v", r.ID, r.Operation, err)
	}
	ev, err := digipoort.ReadEvidence(r.Body, trusted)
	if err != nil || ev.Operation != r.Operation || r.Kenmerk == nil || ev.Kenmerk != *r.Kenmerk {
		t.Fatalf("kept response %d: operation %s kenmerk %v; evidence %+v, %v", r.ID, r.Operation, r.Kenmerk, ev, err)
	}
	return ev
}

// The signed answer to a delivery is kept before anything is done with it: when
// recording the delivery then fails (the activity fails and is retried), the answer
// is kept all the same, once, and verifies as stored. Each status answer of
// send/receive is kept too, for the message's attempt and kenmerk.
func TestSignedAnswersAreKeptEvenWhenTheActivityThenFails(t *testing.T) {
	h := newHarness(t)
	trusted := h.useSimulator()
	n := h.queue("001000044B37").Number
	h.exec(`CREATE FUNCTION refuse_kenmerk() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.kenmerk IS NOT NULL THEN RAISE EXCEPTION 'the database fails just after Digipoort answered'; END IF; RETURN NEW; END $$`)
	h.exec(`CREATE TRIGGER refuse_kenmerk BEFORE UPDATE ON deliveries FOR EACH ROW EXECUTE FUNCTION refuse_kenmerk()`)

	_, err := h.deliverCall(n)
	requireRetryable(t, err, "just after Digipoort answered")
	rs := h.proofs(n)
	if len(rs) != 1 || rs[0].Operation != "aanleveren" || rs[0].Attempt != 1 || rs[0].Kenmerk == nil {
		t.Fatalf("after the failed activity: %+v; want the answer to the delivery, kept", rs)
	}
	ev := requireEvidence(t, rs[0], trusted)
	m := h.message(n)
	if ev.Aanleverkenmerk != *m.Aanleverkenmerk || ev.Aangeleverd.IsZero() || !strings.HasPrefix(rs[0].RequestMessageID, "urn:uuid:") {
		t.Fatalf("evidence %+v of message %d (aanleverkenmerk %s)", ev, n, *m.Aanleverkenmerk)
	}
	kenmerk := *rs[0].Kenmerk

	// The retry looks the interrupted delivery up and adopts it; nothing is delivered
	// again, so there is still the one answer.
	h.exec(`DROP TRIGGER refuse_kenmerk ON deliveries`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		res, err := h.deliverCall(n)
		if err == nil {
			if res.Outcome != pipeline.OutcomeSent || res.Kenmerk != kenmerk {
				t.Fatalf("retry: %+v, want the delivery the kept answer names (%s)", res, kenmerk)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the retry did not adopt the delivery: %v", err)
		}
	}
	if rs := h.proofs(n); len(rs) != 1 {
		t.Fatalf("%d answers kept after the retry, want 1", len(rs))
	}

	// send/receive until the flow ends: every status answer is kept, and the last one
	// proves every status the message has.
	for deadline := time.Now().Add(10 * time.Second); h.message(n).Status != domain.StatusAccepted; time.Sleep(20 * time.Millisecond) {
		if _, err := run[pipeline.ReceiveResult](h, h.acts.ReceiveStatuses, pipeline.ReceiveRequest{Limit: 10}); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %d did not reach accepted: %s", n, h.message(n).Status)
		}
	}
	rs = h.proofs(n)
	if len(rs) < 2 {
		t.Fatalf("%d responses kept, want the delivery's and at least one status answer", len(rs))
	}
	var last digipoort.Evidence
	for _, r := range rs[1:] {
		if r.Operation != "getStatussenProces" || r.Attempt != 1 || *r.Kenmerk != kenmerk {
			t.Fatalf("status answer %+v", r)
		}
		last = requireEvidence(t, r, trusted)
	}
	var stored []string
	if err := h.st.DB().SelectContext(ctx, &stored, `SELECT code FROM status_events WHERE message_number = $1 ORDER BY occurred_at, id`, n); err != nil {
		t.Fatal(err)
	}
	var proved []string
	for _, s := range last.Statuses {
		proved = append(proved, s.Code)
	}
	if !slices.Equal(proved, stored) {
		t.Fatalf("the last signed status answer proves %v; the message has %v", proved, stored)
	}
}

// When the answer cannot be kept, the delivery is recorded all the same (failing it
// would not bring the answer back) and an F line says so. Statuses whose answer cannot
// be kept are not stored (a final one would end the polling, and nothing would prove
// it): the page fails, and the retry stores them with the answer, signed afresh.
func TestAnswersThatCannotBeKept(t *testing.T) {
	h := newHarness(t)
	trusted := h.useSimulator()
	n := h.queue("001000044B37").Number
	h.exec(`CREATE FUNCTION refuse_proof() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'signed_responses is broken'; END $$`)
	h.exec(`CREATE TRIGGER refuse_proof BEFORE INSERT ON signed_responses FOR EACH ROW EXECUTE FUNCTION refuse_proof()`)

	res, err := h.deliverCall(n)
	if err != nil || res.Outcome != pipeline.OutcomeSent {
		t.Fatalf("deliver: %+v %v", res, err)
	}
	h.requireLog(n, domain.LevelError, "could not be kept as proof of filing", 1)

	_, err = run[pipeline.ReceiveResult](h, h.acts.ReceiveStatuses, pipeline.ReceiveRequest{Limit: 10})
	requireRetryable(t, err, "could not be kept as proof of filing", "signed_responses is broken")
	if got := h.count(`SELECT count(*) FROM status_events WHERE message_number = $1`, n); got != 0 {
		t.Fatalf("%d statuses stored without the answer that proves them", got)
	}
	h.requireMessage(n, domain.StatusSent, false, *h.message(n).Kenmerk)

	h.exec(`DROP TRIGGER refuse_proof ON signed_responses`)
	for deadline := time.Now().Add(10 * time.Second); h.message(n).Status != domain.StatusAccepted; time.Sleep(20 * time.Millisecond) {
		if _, err := run[pipeline.ReceiveResult](h, h.acts.ReceiveStatuses, pipeline.ReceiveRequest{Limit: 10}); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %d did not reach accepted: %s", n, h.message(n).Status)
		}
	}
	rs := h.proofs(n)
	if len(rs) == 0 || rs[0].Operation != "getStatussenProces" {
		t.Fatalf("after the retry: %+v; want the status answers", rs)
	}
	if ev := requireEvidence(t, rs[len(rs)-1], trusted); len(ev.Statuses) == 0 || ev.Statuses[len(ev.Statuses)-1].Code != "500" {
		t.Fatalf("the last answer kept proves %+v, want the 500 that made the message accepted", ev.Statuses)
	}
}
