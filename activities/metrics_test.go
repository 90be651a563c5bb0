package activities_test

import (
	"maps"
	"sync"
	"testing"

	"koerier/digipoort"
	"koerier/domain"
	"koerier/pipeline"
)

// countingMetrics records what the activities count.
type countingMetrics struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countingMetrics) add(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[key]++
}

func (c *countingMetrics) Delivery(ch domain.Channel, outcome string) {
	c.add(string(ch) + "/" + outcome)
}
func (c *countingMetrics) UncertainLookedUp(ch domain.Channel) { c.add(string(ch) + "/looked-up") }
func (c *countingMetrics) UncertainAdopted(ch domain.Channel)  { c.add(string(ch) + "/adopted") }

// Every try of a delivery is counted by what it decided, once: the try whose answer
// could not be trusted as an error, the retry that looks it up and adopts it as sent
// (looked up, adopted), a refusal as send_failed; a try that finds the attempt
// delivered already adds nothing.
func TestDeliverCountsWhatEachTryDecided(t *testing.T) {
	h := newHarness(t)
	m := &countingMetrics{n: map[string]int{}}
	h.acts.Metrics = m
	n := h.queue("1").Number
	h.dp.script(answer{err: deliverErr(digipoort.Final, 200, "", "the signature of the answer does not verify")})
	if _, err := h.deliverCall(n); err == nil {
		t.Fatal("an untrusted answer must be retried")
	}
	h.dp.set(func(f *fakeDigipoort) { f.found = "KM-FOUND" })
	if res, err := h.deliverCall(n); err != nil || !res.Recovered {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if res, err := h.deliverCall(n); err != nil || res.Outcome != pipeline.OutcomeSent {
		t.Fatalf("again: %+v %v", res, err)
	}
	refused := h.queue("2").Number
	h.dp.script(answer{err: deliverErr(digipoort.Final, 500, "ALS100", "Digipoort refused the delivery")})
	if res, err := h.deliverCall(refused); err != nil || res.Outcome != pipeline.OutcomeSendFailed {
		t.Fatalf("refused: %+v %v", res, err)
	}
	want := map[string]int{"digipoort/error": 1, "digipoort/looked-up": 1, "digipoort/sent": 1, "digipoort/adopted": 1, "digipoort/send_failed": 1}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !maps.Equal(m.n, want) {
		t.Fatalf("counted %v, want %v", m.n, want)
	}
}
