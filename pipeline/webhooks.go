package pipeline

import "time"

// Webhooks: the report stage of a declaration posts the events store.Process wrote
// (one per change of the environment's status) to the environment's endpoint, in the
// Standard Webhooks format, until the receiver takes them or the retries run out.
const (
	// DefaultWebhookRetryInitial is the first wait after a post the receiver did not
	// take; each next wait doubles up to WebhookRetryMax.
	DefaultWebhookRetryInitial = 10 * time.Second
	// WebhookRetryMax bounds the wait between two tries: a receiver that comes back is
	// told within the hour.
	WebhookRetryMax = time.Hour
	// WebhookRetryFor is how long the events of one delivery are tried before they are
	// marked failed with an F line: more than the three days a receiver may be down
	// over a long weekend.
	WebhookRetryFor = 4 * 24 * time.Hour
	// WebhookTimeout bounds one post: a receiver that takes longer is retried.
	WebhookTimeout = 10 * time.Second
)

// WebhookResult says what one delivery of a message's pending events did.
type WebhookResult struct {
	// Sent counts the events the receiver took (answered 2xx).
	Sent int `json:"sent"`
	// Disabled: the receiver answered 410 Gone; its endpoint is disabled and the
	// events still pending for it are failed (an F line says so).
	Disabled bool `json:"disabled"`
}
