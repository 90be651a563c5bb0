// Package activities holds everything Koerier's workflows do to the outside world:
// Digipoort calls, store operations, the send/receive lock and reporting.
//
// Every activity is idempotent — the worker can die between doing the work and
// Temporal recording it — and says which errors are final: those are returned as
// non-retryable application errors with one of pipeline's ErrType* types, so retry
// policies stop at once; everything else is retried.
package activities

import (
	"context"
	"crypto/x509"
	"errors"
	"time"

	"github.com/sirupsen/logrus"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"koerier/digipoort"
	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

// Digipoort is the part of the Digipoort client the activities use.
type Digipoort interface {
	Deliver(ctx context.Context, r digipoort.DeliverRequest) (digipoort.DeliverResponse, error)
	Statuses(ctx context.Context, kenmerk string, from, to time.Time) ([]digipoort.Status, error)
	BerichtenLijst(ctx context.Context, from, to time.Time) ([]digipoort.BerichtRef, error)
	BerichtenKenmerk(ctx context.Context, kenmerk string, from, to time.Time) ([]digipoort.Bericht, error)
	DeliveryCandidates(ctx context.Context, berichtsoort string, id digipoort.Identity, since time.Time,
		known func(kenmerk string) (bool, error)) ([]digipoort.Candidate, error)
}

// Store is the part of the Postgres store the activities use (*store.Store), grouped
// by the activities that need it.
type Store interface {
	declarationStore
	sendReceiveStore
	proofStore
	webhookStore
	onbStore
	mailStore
	bankStore
	Cleanup(ctx context.Context, req pipeline.CleanupRequest) (pipeline.CleanupResult, error)
}

// webhookStore is the event outbox the report stage posts from (activities/webhooks.go).
type webhookStore interface {
	PendingWebhookEvents(ctx context.Context, number int64) ([]store.WebhookEvent, store.WebhookEndpoint, error)
	WebhookAttempt(ctx context.Context, eventID string, err string) error
	MarkWebhookSent(ctx context.Context, eventID string) error
	MarkWebhookFailed(ctx context.Context, eventID, reason string) error
	DisableWebhook(ctx context.Context, ep store.WebhookEndpoint, reason string) error
	StaleWebhookMessages(ctx context.Context, before time.Time, limit int) ([]int64, error)
	ExpireWebhookEvents(ctx context.Context, before time.Time, why string) (int, error)
	WebhookCountsOf(ctx context.Context, number int64) (store.WebhookCounts, error)
}

type declarationStore interface {
	Declaration(ctx context.Context, number int64) (pipeline.Message, error)
	BeginDelivery(ctx context.Context, number int64) (store.DeliveryPlan, error)
	KnownKenmerken(ctx context.Context, kenmerken []string) (map[string]bool, error)
	Attachments(ctx context.Context, number int64) ([]store.Attachment, error)
	RecordDelivered(ctx context.Context, number int64, attempt int, kenmerk, adopted string) error
	DropUnaccepted(ctx context.Context, number int64, attempt int, startedAt time.Time) error
	ResolveDelivery(ctx context.Context, number int64, attempt int, adopt string, deliverAgain bool, who string) error
	RecordSendFailed(ctx context.Context, number int64, attempt int, reason string) error
	RecordDeliveryError(ctx context.Context, number int64, attempt int, reason string) error
	ApplyReplies(ctx context.Context, replies []store.Reply) (store.ApplyResult, error)
	Process(ctx context.Context, number int64) (pipeline.ProcessResult, error)
	Report(ctx context.Context, number int64) (domain.Status, error)
	MarkNeedsAction(ctx context.Context, number int64, reason, dedupe string) error
	Restore(ctx context.Context, number int64, who string) (pipeline.RestoreResult, error)
	AssignEnvironment(ctx context.Context, number int64, env string, resolve bool, who string) error
	WriteLog(ctx context.Context, e store.LogEntry) error
}

type sendReceiveStore interface {
	AcquireLock(ctx context.Context, name, holder string, d time.Duration) (store.Lock, error)
	ReleaseLock(ctx context.Context, name, holder string) (bool, error)
	Declarations(ctx context.Context, numbers []int64) (map[int64]pipeline.Message, error)
	DueMessages(ctx context.Context, after int64, limit int) ([]store.DueMessage, error)
	SendOutcomes(ctx context.Context, numbers []int64, since time.Time) (pipeline.SendOutcome, error)
	InFlightDeliveries(ctx context.Context, after int64, limit int) ([]store.InFlight, error)
	RecordStatusRefusal(ctx context.Context, number int64, attempt int, kenmerk, reason, information string) (store.StatusRefusal, error)
	ClearStatusRefusals(ctx context.Context, numbers []int64) error
	UnsignaledReplies(ctx context.Context, numbers []int64, limit int) ([]store.PendingSignal, error)
	MarkSignaled(ctx context.Context, eventIDs []int64) error
	PickupCounts(ctx context.Context, kenmerken []string) (map[string]int, error)
	StoreIncoming(ctx context.Context, docs []store.IncomingDoc) (store.IncomingResult, error)
}

// Config tunes the activities; internal/config fills it from the environment and is
// the one place its defaults live.
type Config struct {
	// Starter starts and signals declaration workflows (its Client is set by
	// Activities' constructor in internal/service).
	Starter pipeline.Starter
	// Rol is rolBelanghebbende on every delivery: Bedrijf, or Intermediair for a
	// bookkeeper filing for clients.
	Rol string
	// UncertainWait is how long a delivery whose outcome is unknown is looked up at
	// Digipoort before it is delivered again.
	UncertainWait time.Duration
	// Parallel bounds concurrent Digipoort calls and signals within one activity; 0
	// means no bound.
	Parallel int
	// Certificates reports the configured Digipoort certificates and the expiry
	// warnings due (digipoort.Client.Certificates); nil on a worker without a client.
	Certificates func() digipoort.CertificateReport
	// MailRootCAs are the authorities mail servers are trusted by (nil: the system's).
	MailRootCAs *x509.CertPool
}

// Activities is registered with the worker; its exported methods are the activities.
type Activities struct {
	Store     Store
	Digipoort Digipoort
	Config    Config
	Log       logrus.FieldLogger
	// Metrics counts what deliveries decide, for the worker's /metrics
	// (internal/metrics); nil counts nothing.
	Metrics Metrics
}

// Metrics is what the activities count (*metrics.Metrics is it).
type Metrics interface {
	// Delivery counts a try of a delivery by its outcome (pipeline.Outcome*), or
	// "error" when it returned an error.
	Delivery(channel domain.Channel, outcome string)
	// UncertainLookedUp counts a look-up of a delivery whose outcome was not known.
	UncertainLookedUp(channel domain.Channel)
	// UncertainAdopted counts such a delivery found and adopted instead of sent again.
	UncertainAdopted(channel domain.Channel)
}

type noMetrics struct{}

func (noMetrics) Delivery(domain.Channel, string)  {}
func (noMetrics) UncertainLookedUp(domain.Channel) {}
func (noMetrics) UncertainAdopted(domain.Channel)  {}

func (a *Activities) metrics() Metrics {
	if a.Metrics != nil {
		return a.Metrics
	}
	return noMetrics{}
}

// countDelivery counts a try of a delivery that got as far as its plan. A try that
// finds the attempt delivered already decides nothing new (the try that delivered it
// was counted) and is left out.
func (a *Activities) countDelivery(plan store.DeliveryPlan, res pipeline.DeliverResult, err error) {
	switch {
	case plan.Kenmerk != "":
	case err != nil:
		a.metrics().Delivery(plan.Channel, "error")
	default:
		a.metrics().Delivery(plan.Channel, res.Outcome)
		if res.Recovered {
			a.metrics().UncertainAdopted(plan.Channel)
		}
	}
}

func (a *Activities) log() logrus.FieldLogger {
	if a.Log != nil {
		return a.Log
	}
	return logrus.StandardLogger()
}

// final turns a store refusal or missing row into a non-retryable error, and leaves
// everything else (connection trouble, deadlocks) to be retried.
func final(err error) error {
	if err == nil {
		return nil
	}
	typ := ""
	var held *store.LockHeldError
	switch {
	case errors.Is(err, store.ErrRefused):
		typ = pipeline.ErrTypeRefused
	case errors.Is(err, store.ErrNotFound):
		typ = pipeline.ErrTypeNotFound
	case errors.Is(err, store.ErrInvalid):
		typ = pipeline.ErrTypeInvalid
	case errors.As(err, &held):
		typ = pipeline.ErrTypeLockHeld
	case digipoort.IsFinal(err):
		typ = pipeline.ErrTypeDigipoortFinal
	default:
		return err
	}
	return temporal.NewNonRetryableApplicationError(err.Error(), typ, err)
}

// keepAlive heartbeats every few seconds until stop is called, so that Temporal
// notices within its heartbeat timeout when the worker running a long call dies,
// instead of waiting for the whole start-to-close timeout.
func keepAlive(ctx context.Context) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}
