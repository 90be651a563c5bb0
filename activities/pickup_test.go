package activities_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"koerier/digipoort"
	"koerier/digipoort/simulator"
	"koerier/pipeline"
)

// pickupDigipoort is the scripted Digipoort whose pickup of some kenmerken fails, and
// which records how many pickups ran at once.
type pickupDigipoort struct {
	*fakeDigipoort
	delay time.Duration

	mu      sync.Mutex
	fail    map[string]error
	active  int
	maxSeen int
}

func (p *pickupDigipoort) BerichtenKenmerk(ctx context.Context, kenmerk string, from, to time.Time) ([]digipoort.Bericht, error) {
	p.mu.Lock()
	p.active++
	p.maxSeen = max(p.maxSeen, p.active)
	err := p.fail[kenmerk]
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.active--
		p.mu.Unlock()
	}()
	time.Sleep(p.delay)
	berichten, _ := p.fakeDigipoort.BerichtenKenmerk(ctx, kenmerk, from, to) // counts the call
	if err != nil {
		return nil, err
	}
	return berichten, nil
}

func (p *pickupDigipoort) setFail(kenmerk string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail[kenmerk] = err
}

// withPickups lists kenmerken for pickup, each with one document, and makes the
// harness use a pickupDigipoort.
func (h *harness) withPickups(kenmerken ...string) *pickupDigipoort {
	h.t.Helper()
	h.dp.set(func(f *fakeDigipoort) {
		for _, k := range kenmerken {
			f.lijst = append(f.lijst, digipoort.BerichtRef{Kenmerk: k, Berichtsoort: "Omzetbelasting"})
			f.berichten[k] = []digipoort.Bericht{{Kenmerk: k, Berichtsoort: "Omzetbelasting", Berichtkenmerk: "BK-" + k, MimeType: "text/xml",
				Bestandsnaam: "bericht.xml", Inhoud: []byte("<bericht/>"), Aangeleverd: time.Now().Add(-time.Hour)}}
		}
	})
	p := &pickupDigipoort{fakeDigipoort: h.dp, fail: map[string]error{}}
	h.acts.Digipoort = p
	return p
}

// failingFirst is 102 kenmerken, more than one chunk of 100 (what the activity used
// to fetch before storing and stopping at an error): KM-0 sorts first, KM-Z last.
func failingFirst() []string {
	kenmerken := []string{"KM-0"}
	for i := range 100 {
		kenmerken = append(kenmerken, fmt.Sprintf("KM-A%03d", i))
	}
	return append(kenmerken, "KM-Z")
}

func tooLarge(kenmerk string) error {
	return &digipoort.Error{Op: "getBerichtenKenmerk", Kind: digipoort.Final, HTTPStatus: 200,
		Msg: fmt.Sprintf("response of 83886080 bytes or more, larger than the 67108864 bytes allowed (kenmerk %s)", kenmerk)}
}

// A kenmerk whose pickup Digipoort refuses for good (here: an answer over the response
// bound) used to fail the activity at its chunk, every run, so that the kenmerken after
// that chunk (more than 100 on) were never picked up. Now the others are fetched, the
// refused one gets one F line across runs, and the activity succeeds.
func TestReceivePickupGoesOnPastAKenmerkRefusedForGood(t *testing.T) {
	h := newHarness(t)
	n := h.delivered("1", "KM-Z")
	p := h.withPickups(failingFirst()...)
	p.setFail("KM-0", tooLarge("KM-0"))

	for round, want := range []pipeline.PickupResult{
		{Listed: 102, Fetched: 101, Linked: 1, Unknown: 100, Errors: 1},
		{Listed: 102, Errors: 1}, // the rest is stored: only KM-0 is asked again
	} {
		res, err := run[pipeline.PickupResult](h, h.acts.ReceivePickup)
		if err != nil || res != want {
			t.Fatalf("round %d: %+v %v, want %+v and no error", round+1, res, err, want)
		}
	}
	h.requireCalls(map[string]int{"BerichtenLijst": 2, "BerichtenKenmerk": 102 + 1})
	if h.count(`SELECT count(*) FROM messages WHERE reply_to = $1 AND direction = 'in' AND berichtkenmerk = 'BK-KM-Z'`, n) != 1 {
		t.Fatal("the reply to KM-Z, after the refused kenmerk, was not picked up")
	}
	if got := h.count(`SELECT count(*) FROM communication_log WHERE level = 'F' AND description LIKE '%kenmerk KM-0:%67108864 bytes allowed%'`); got != 1 {
		t.Fatalf("%d F line(s) about KM-0 after two runs, want 1", got)
	}
	if got := h.count(`SELECT count(*) FROM communication_log WHERE level = 'F' AND description LIKE '%kenmerk KM-A%allowed%'`); got != 0 {
		t.Fatalf("%d F line(s) about kenmerken that were picked up", got)
	}

	// Once the answer can be read (the bound raised), the next run fetches it.
	p.setFail("KM-0", nil)
	res, err := run[pipeline.PickupResult](h, h.acts.ReceivePickup)
	if err != nil || res != (pipeline.PickupResult{Listed: 102, Fetched: 1, Unknown: 1}) {
		t.Fatalf("after the refusal ended: %+v %v", res, err)
	}
}

// A transient failure still fails the activity, for Temporal to retry, but only after
// every other kenmerk was fetched and stored (it used to stop at the failing chunk, so a
// kenmerk that kept failing starved every later one); the retry fetches only what is
// missing.
func TestReceivePickupTransientFailureStoresTheOthers(t *testing.T) {
	h := newHarness(t)
	n := h.delivered("1", "KM-Z")
	p := h.withPickups(failingFirst()...)
	p.setFail("KM-0", &digipoort.Error{Op: "getBerichtenKenmerk", Kind: digipoort.Transient, Msg: "network error talking to Digipoort; retry later"})

	_, err := run[pipeline.PickupResult](h, h.acts.ReceivePickup)
	if h.count(`SELECT count(*) FROM messages WHERE reply_to = $1 AND berichtkenmerk = 'BK-KM-Z'`, n) != 1 {
		t.Fatalf("the reply to KM-Z, after the failing kenmerk, was not stored (%v)", err)
	}
	requireRetryable(t, err, "1 of 102 kenmerken could not be picked up", "KM-0")
	if got := h.count(`SELECT count(*) FROM communication_log WHERE description LIKE '%kenmerk KM-0:%'`); got != 0 {
		t.Fatalf("a transient failure wrote %d log line(s); the workflow reports it", got)
	}
	p.setFail("KM-0", nil)
	res, err := run[pipeline.PickupResult](h, h.acts.ReceivePickup)
	if err != nil || res != (pipeline.PickupResult{Listed: 102, Fetched: 1, Unknown: 1}) {
		t.Fatalf("retry: %+v %v", res, err)
	}
	h.requireCalls(map[string]int{"BerichtenKenmerk": 102 + 1})
}

// Pickup answers are bounded per worker, not by Config.Parallel: each may cost hundreds
// of MiB while it is checked and until its documents are stored.
func TestReceivePickupHoldsAtMostTwoAnswersAtOnce(t *testing.T) {
	h := newHarness(t)
	h.acts.Config.Parallel = 8
	var kenmerken []string
	for i := range 8 {
		kenmerken = append(kenmerken, fmt.Sprintf("KM-%d", i))
	}
	p := h.withPickups(kenmerken...)
	p.delay = 30 * time.Millisecond

	res, err := run[pipeline.PickupResult](h, h.acts.ReceivePickup)
	if err != nil || res.Fetched != 8 {
		t.Fatalf("pickup: %+v %v", res, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.maxSeen > 2 {
		t.Fatalf("%d pickups ran at once, want at most 2", p.maxSeen)
	}
}

// Rule 7 pins the look-back at 30 days (domain.ReceiveLookBack): Digipoort keeps a
// message for pickup that long, and a shorter window would leave replies behind for
// good. Against the simulator, which lists by the messages' times: a reply 29 days old is
// fetched, one 31 days old is not asked for.
func TestReceivePickupLooksBackThirtyDays(t *testing.T) {
	h := newHarness(t)
	h.useSimulator()
	id := digipoort.Identity{Nummer: "001000044B37", Type: "Fi"}
	now := time.Now()
	recent, _, err := h.sim.AddPickup(simulator.Pickup{Berichtsoort: "Omzetbelasting", Identiteit: id, Tijdstempel: now.Add(-29 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	old, _, err := h.sim.AddPickup(simulator.Pickup{Berichtsoort: "Omzetbelasting", Identiteit: id, Tijdstempel: now.Add(-31 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}

	res, err := run[pipeline.PickupResult](h, h.acts.ReceivePickup)
	if err != nil || res != (pipeline.PickupResult{Listed: 1, Fetched: 1, Unknown: 1}) {
		t.Fatalf("pickup: %+v %v, want the 29-day-old message listed and fetched, the 31-day-old one not", res, err)
	}
	if got := h.sim.Calls("getBerichtenKenmerk"); got != 1 {
		t.Fatalf("getBerichtenKenmerk called %d time(s), want once (for %s only, not for %s)", got, recent, old)
	}
	for k, want := range map[string]int{recent: 1, old: 0} {
		if got := h.count(`SELECT count(*) FROM messages WHERE direction = 'in' AND pickup_kenmerk = $1`, k); got != want {
			t.Fatalf("%d stored message(s) of kenmerk %s, want %d", got, k, want)
		}
	}
}
