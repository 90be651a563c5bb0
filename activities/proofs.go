package activities

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"koerier/digipoort"
	"koerier/domain"
	"koerier/store"
)

// proofStore keeps Digipoort's signed responses ("Proof of filing" in docs/rules.md).
type proofStore interface {
	KeepSignedResponses(ctx context.Context, rs []store.SignedResponse) (store.KeepResult, error)
}

// proofs collects the signed responses of the Digipoort calls made under its
// context; the client hands them over, byte for byte, before each call returns.
type proofs struct {
	mu  sync.Mutex
	got []digipoort.SignedResponse
}

func (p *proofs) recording(ctx context.Context) context.Context {
	return digipoort.WithResponseRecorder(ctx, func(r digipoort.SignedResponse) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.got = append(p.got, r)
	})
}

func (p *proofs) take() []digipoort.SignedResponse {
	p.mu.Lock()
	defer p.mu.Unlock()
	got := p.got
	p.got = nil
	return got
}

// proofTries and proofWrite bound how long the activity insists on keeping a proof:
// a signed answer to a delivery cannot be asked for again, so a short database hiccup
// must not lose it, but a database that is down must not hold the activity either.
const (
	proofTries = 3
	proofWrite = 20 * time.Second
)

// keepProofs stores the signed responses collected in p for the message's attempt,
// right after the call and before its answer is acted on: whatever then fails (the
// answer carries a statusFoutcode, recording the delivery fails, the activity is
// cancelled), the response is kept. It is written even when ctx was cancelled the
// moment the answer came. kenmerk is the process the responses are about ("" when
// not known). Recording twice is harmless (store.KeepSignedResponses keeps each
// response once).
func (a *Activities) keepProofs(ctx context.Context, number int64, attempt int, kenmerk string, p *proofs) error {
	got := p.take()
	if len(got) == 0 {
		return nil
	}
	var k *string
	if kenmerk != "" && len(kenmerk) <= digipoort.MaxKenmerk {
		k = &kenmerk
	}
	rs := make([]store.SignedResponse, len(got))
	for i, r := range got {
		rs[i] = store.SignedResponse{MessageNumber: number, Attempt: attempt, Kenmerk: k, Operation: r.Op,
			RequestMessageID: r.RequestMessageID, ReceivedAt: r.Received, Body: r.Body}
	}
	log := a.log().WithFields(logrus.Fields{"message": number, "attempt": attempt, "responses": len(rs)})
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), proofWrite)
	defer cancel()
	var err error
	for try := 1; try <= proofTries; try++ {
		var res store.KeepResult
		if res, err = a.Store.KeepSignedResponses(ctx, rs); err == nil {
			if len(res.Gone) > 0 {
				log.Info("message cleaned up meanwhile; its signed Digipoort response is not kept")
			}
			log.WithFields(logrus.Fields{"kept": res.Kept, "duplicates": res.Duplicates}).Debug("signed Digipoort responses kept")
			return nil
		}
		if errors.Is(err, store.ErrInvalid) || try == proofTries {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(try) * 250 * time.Millisecond):
		}
	}
	return err
}

// proofLost says that a signed answer to a delivery could not be kept, with a
// structured log line and (if the database lets it) an F line: the delivery itself
// goes on, since failing it would not bring the answer back.
func (a *Activities) proofLost(ctx context.Context, number int64, attempt int, kerr error) {
	a.log().WithFields(logrus.Fields{"message": number, "attempt": attempt}).WithError(kerr).
		Error("Digipoort's signed answer to a delivery could not be kept")
	n := number
	sum := sha256.Sum256([]byte(kerr.Error()))
	if err := a.Store.WriteLog(context.WithoutCancel(ctx), store.LogEntry{MessageNumber: &n, Step: domain.StepSend, Level: domain.LevelError,
		Description: fmt.Sprintf("Digipoort's signed answer to the delivery of message %d could not be kept as proof of filing: %v", number, kerr),
		Information: "the delivery itself is recorded as usual; the signed statuses that follow are kept as they arrive " +
			"(see `starter digipoort proof " + fmt.Sprint(number) + "`); check the database",
		DedupeKey: fmt.Sprintf("proof-lost/%d/%d/%x", number, attempt, sum[:8])}); err != nil {
		a.log().WithField("message", number).WithError(err).Warn("cannot log that a signed answer was not kept")
	}
}
