package store_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

func signed(number int64, attempt int, kenmerk, op, body string) store.SignedResponse {
	r := store.SignedResponse{MessageNumber: number, Attempt: attempt, Operation: op, RequestMessageID: "urn:uuid:" + op,
		ReceivedAt: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC), Body: []byte(body)}
	if kenmerk != "" {
		r.Kenmerk = &kenmerk
	}
	return r
}

// A response is kept once however often it is recorded (a retried activity), two
// different responses are both kept, and both come back byte for byte with the
// SHA-256 of exactly those bytes.
func TestKeepSignedResponsesOnceEachAndExact(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	n := f.queue("acme", domain.TypeVAT, "1", "2026-01").Number
	// Bytes a re-serialisation would change: the attribute order, whitespace, CR LF.
	deliver := "<soapenv:Envelope b=\"2\"  a=\"1\">\r\n <kenmerk>K1</kenmerk>\t</soapenv:Envelope>"
	status := "<soapenv:Envelope><getStatussenProcesResponse/></soapenv:Envelope>\n"

	res, err := f.KeepSignedResponses(ctx, []store.SignedResponse{signed(n, 1, "", "aanleveren", deliver)})
	if err != nil || res.Kept != 1 || res.Duplicates != 0 || len(res.Gone) != 0 {
		t.Fatalf("first keep: %+v %v", res, err)
	}
	// The retry records the same response again, together with a new one; and the
	// same bytes twice in one call are one response too.
	res, err = f.KeepSignedResponses(ctx, []store.SignedResponse{
		signed(n, 1, "", "aanleveren", deliver),
		signed(n, 1, "K1", "getStatussenProces", status),
		signed(n, 1, "K1", "getStatussenProces", status),
	})
	if err != nil || res.Kept != 1 || res.Duplicates != 2 {
		t.Fatalf("second keep: %+v %v; want 1 kept, 2 duplicates", res, err)
	}
	got, err := f.SignedResponses(ctx, n)
	if err != nil || len(got) != 2 {
		t.Fatalf("signed responses of %d: %d, %v; want 2", n, len(got), err)
	}
	for i, want := range []string{deliver, status} {
		r := got[i]
		sum := sha256.Sum256([]byte(want))
		if !bytes.Equal(r.Body, []byte(want)) || !bytes.Equal(r.SHA256, sum[:]) || r.MessageNumber != n || r.Attempt != 1 {
			t.Fatalf("response %d: body %q sha %x message %d attempt %d; want %q, %x", i, r.Body, r.SHA256, r.MessageNumber, r.Attempt, want, sum)
		}
	}
	if got[0].Kenmerk != nil || got[1].Kenmerk == nil || *got[1].Kenmerk != "K1" || got[1].Operation != "getStatussenProces" {
		t.Fatalf("kenmerk/operation: %+v %+v", got[0], got[1])
	}

	// The same bytes for another message are that message's proof too.
	other := f.queue("acme", domain.TypeVAT, "2", "2026-01").Number
	if res, err := f.KeepSignedResponses(ctx, []store.SignedResponse{signed(other, 1, "", "aanleveren", deliver)}); err != nil || res.Kept != 1 {
		t.Fatalf("other message: %+v %v", res, err)
	}
}

// A message cleaned up while its response was on the way keeps nothing and is no
// error; a response without what identifies it is refused.
func TestKeepSignedResponsesGoneAndInvalid(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	n := f.queue("acme", domain.TypeVAT, "1", "2026-01").Number
	res, err := f.KeepSignedResponses(ctx, []store.SignedResponse{signed(n, 1, "", "aanleveren", "a"), signed(n+100, 1, "", "aanleveren", "b")})
	if err != nil || res.Kept != 1 || len(res.Gone) != 1 || res.Gone[0] != n+100 {
		t.Fatalf("keep with a missing message: %+v %v", res, err)
	}
	for _, bad := range []store.SignedResponse{
		signed(n, 0, "", "aanleveren", "x"),
		signed(n, 1, "", "", "x"),
		signed(n, 1, "", "aanleveren", ""),
		{MessageNumber: n, Attempt: 1, Operation: "aanleveren", Body: []byte("x")},
	} {
		if _, err := f.KeepSignedResponses(ctx, []store.SignedResponse{bad}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("keep %+v: %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := f.SignedResponses(ctx, n+100); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("responses of a message that does not exist: %v", err)
	}
	if got, err := f.SignedResponses(ctx, f.queue("acme", domain.TypeVAT, "3", "2026-01").Number); err != nil || len(got) != 0 {
		t.Fatalf("responses of a message without any: %v %v", got, err)
	}
}

// Rule 8: clean-up removes a message with its proofs, like its attachments; the
// proofs of the messages it keeps stay.
func TestCleanupTakesTheProofsWithTheMessage(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	old := f.queue("acme", domain.TypeVAT, "1", "2026-01").Number
	kept := f.queue("acme", domain.TypeVAT, "2", "2026-01").Number
	for _, n := range []int64{old, kept} {
		if _, err := f.KeepSignedResponses(ctx, []store.SignedResponse{signed(n, 1, "", "aanleveren", "proof")}); err != nil {
			t.Fatal(err)
		}
	}
	f.age(old, 40, domain.StatusSent)
	if res, err := f.Cleanup(ctx, pipeline.CleanupRequest{Numbers: []int64{old}, Who: "test"}); err != nil || len(res.Removed) != 1 {
		t.Fatalf("clean-up: %+v %v", res, err)
	}
	if f.count(`SELECT count(*) FROM signed_responses WHERE message_number = $1`, old) != 0 {
		t.Fatal("the proofs of a removed message stayed behind")
	}
	if _, err := f.SignedResponses(ctx, old); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "cleaned up") {
		t.Fatalf("proofs of a removed message: %v", err)
	}
	if got, err := f.SignedResponses(ctx, kept); err != nil || len(got) != 1 {
		t.Fatalf("proofs of the message clean-up kept: %d %v", len(got), err)
	}
}

// A message's proofs are found through an index (whatever the table's size), and a
// retried keep decides "seen before" on the unique index.
func TestSignedResponsesUseTheirIndex(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	n := f.queue("acme", domain.TypeVAT, "1", "2026-01").Number
	explain := f.explainer()
	plan := explain(`SELECT id FROM signed_responses WHERE message_number = $1 ORDER BY received_at, id`, n)
	if !strings.Contains(plan, "signed_responses_once") {
		t.Errorf("reading a message's proofs does not use an index:\n%s", plan)
	}
	plan = explain(`INSERT INTO signed_responses (message_number, attempt, operation, received_at, body) VALUES ($1, 1, 'aanleveren', now(), 'x')
		ON CONFLICT (message_number, sha256) DO NOTHING`, n)
	if !strings.Contains(plan, "Conflict Arbiter Indexes: signed_responses_once") {
		t.Errorf("keeping a proof does not decide duplicates on the unique index:\n%s", plan)
	}
	plan = explain(`DELETE FROM signed_responses WHERE message_number = $1`, n)
	if !strings.Contains(plan, "signed_responses_once") {
		t.Errorf("clean-up's cascade finds a message's proofs without an index:\n%s", plan)
	}
}
