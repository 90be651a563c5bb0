package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	neturl "net/url"
	"time"

	"github.com/jmoiron/sqlx"

	"koerier/domain"
)

// WebhookEndpoint is where an environment is told of its messages' status changes
// (rule 13 in docs/rules.md). An environment has at most one.
type WebhookEndpoint struct {
	ID             int64      `db:"id"              json:"id"`
	EnvironmentID  int64      `db:"environment_id"  json:"-"`
	URL            string     `db:"url"             json:"url"`
	Secret         string     `db:"secret"          json:"-"`
	CreatedAt      time.Time  `db:"created_at"      json:"created_at"`
	DisabledAt     *time.Time `db:"disabled_at"     json:"disabled_at,omitempty"`
	DisabledReason string     `db:"disabled_reason" json:"disabled_reason,omitempty"`
}

// WebhookEvent is one status change to be posted to an endpoint: the outbox row.
type WebhookEvent struct {
	// ID is "evt_" + message number + "_" + the event's sequence number within the
	// message: the same on every retry, so a receiver that sees it twice drops it.
	ID            string          `db:"id"             json:"id"`
	MessageNumber int64           `db:"message_number" json:"message"`
	EndpointID    int64           `db:"endpoint_id"    json:"-"`
	Payload       json.RawMessage `db:"payload"        json:"payload"`
	State         string          `db:"state"          json:"state"`
	// Attempts counts posts: every failed one, and the one that was taken.
	Attempts  int        `db:"attempts"       json:"attempts"`
	LastError string     `db:"last_error"     json:"last_error,omitempty"`
	CreatedAt time.Time  `db:"created_at"     json:"created_at"`
	SentAt    *time.Time `db:"sent_at"        json:"sent_at,omitempty"`
}

// Webhook event states.
const (
	WebhookPending = "pending"
	WebhookSent    = "sent"
	WebhookFailed  = "failed"
)

// WebhookEventType is the only event type so far (Standard Webhooks' "type").
const WebhookEventType = "message.status_changed"

// WebhookPayload is the body posted for an event, in the Standard Webhooks shape
// {type, timestamp, data}. It is stored as posted, so every retry sends the same bytes.
type WebhookPayload struct {
	Type      string      `json:"type"`
	Timestamp time.Time   `json:"timestamp"`
	Data      WebhookData `json:"data"`
}

// WebhookData is what changed: the status the environment sees now and before.
type WebhookData struct {
	Number         int64         `json:"number"`
	Environment    string        `json:"environment"`
	Type           string        `json:"type"`
	Status         domain.Status `json:"status"`
	PreviousStatus domain.Status `json:"previous_status"`
	Version        int           `json:"version"`
	// Time is when the status changed (what the environment sees as its last change).
	Time time.Time `json:"time"`
	// NeedsAction is set when the message needs an operator as it stands — also where its
	// status reads well: a payment order the bank accepted with some transfers rejected
	// (PART) is accepted and needs action (GET /v1/messages/{n} says which).
	NeedsAction bool `json:"needs_action,omitempty"`
}

// WebhookCounts says how a message's events stand.
type WebhookCounts struct {
	Sent    int `db:"sent"    json:"sent"`
	Pending int `db:"pending" json:"pending"`
	Failed  int `db:"failed"  json:"failed"`
}

const (
	webhookSecretPrefix = "whsec_"
	maxWebhookURLLen    = 2000
	maxWebhookErrorLen  = 1000
)

// SetWebhook registers the environment's endpoint with a new secret, replacing (and
// re-enabling) the one it had: events still pending go to the new URL, signed with the
// new secret.
func (s *Store) SetWebhook(ctx context.Context, env, url string) (WebhookEndpoint, error) {
	if err := validateWebhookURL(url); err != nil {
		return WebhookEndpoint{}, err
	}
	// Standard Webhooks' secret: "whsec_" and base64 of 24 random bytes (192 bits).
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return WebhookEndpoint{}, fmt.Errorf("set the webhook of %s: no randomness: %w", env, err)
	}
	secret := webhookSecretPrefix + base64.StdEncoding.EncodeToString(raw)
	var w WebhookEndpoint
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		e, err := activeEnvironment(ctx, tx, env)
		if err != nil {
			return err
		}
		if err := tx.GetContext(ctx, &w, `
			INSERT INTO webhook_endpoints (environment_id, url, secret) VALUES ($1, $2, $3)
			ON CONFLICT (environment_id) DO UPDATE SET url = EXCLUDED.url, secret = EXCLUDED.secret, created_at = now(),
				disabled_at = NULL, disabled_reason = ''
			RETURNING id, environment_id, url, secret, created_at, disabled_at, disabled_reason`, e.ID, url, secret); err != nil {
			return err
		}
		return writeLog(ctx, tx, LogEntry{EnvironmentID: &e.ID, Step: domain.StepEnvironment, Level: domain.LevelInfo,
			Description: fmt.Sprintf("webhook endpoint of environment %s set to %s (new secret)", e.Name, RedactWebhookURL(url))})
	})
	if err != nil {
		return WebhookEndpoint{}, fmt.Errorf("set the webhook of %s: %w", env, err)
	}
	return w, nil
}

// validateWebhookURL accepts an absolute http or https URL with a host and without
// user information, which would end up in logs and error messages.
func validateWebhookURL(raw string) error {
	u, err := neturl.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%w: webhook URL %q: %v", ErrInvalid, raw, err)
	case len(raw) > maxWebhookURLLen:
		return fmt.Errorf("%w: webhook URL is %d characters long; at most %d", ErrInvalid, len(raw), maxWebhookURLLen)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%w: webhook URL %q: use an http:// or https:// URL", ErrInvalid, raw)
	case u.Hostname() == "":
		return fmt.Errorf("%w: webhook URL %q names no host", ErrInvalid, raw)
	case u.User != nil:
		return fmt.Errorf("%w: webhook URL must not carry a user or password (the signature authenticates Koerier)", ErrInvalid)
	case u.Fragment != "":
		return fmt.Errorf("%w: webhook URL %q: a #fragment is never sent; leave it out", ErrInvalid, raw)
	}
	return nil
}

// RedactWebhookURL is what logs and error messages show of a webhook URL: scheme and
// host only; the path and query often carry a key of the receiver's own.
func RedactWebhookURL(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil || u.Host == "" {
		return "(an unusable URL)"
	}
	return u.Scheme + "://" + u.Host
}

// WebhookOf returns the environment's endpoint, disabled or not.
func (s *Store) WebhookOf(ctx context.Context, env string) (WebhookEndpoint, error) {
	var w WebhookEndpoint
	err := s.db.GetContext(ctx, &w, `SELECT w.id, w.environment_id, w.url, w.secret, w.created_at, w.disabled_at, w.disabled_reason
		FROM webhook_endpoints w JOIN environments e ON e.id = w.environment_id WHERE e.name = $1`, env)
	if isNoRows(err) {
		return WebhookEndpoint{}, fmt.Errorf("%w: environment %s has no webhook endpoint (`starter environments webhook %s --url URL`)",
			ErrNotFound, env, env)
	}
	if err != nil {
		return WebhookEndpoint{}, fmt.Errorf("read the webhook of %s: %w", env, err)
	}
	return w, nil
}

// writeWebhookEvent puts the change of what message m's environment sees, from
// previous to the row's env_status as the caller's transaction just set it, into the
// outbox. The caller holds the message's row lock, so sequence numbers do not race.
// Nothing is written unless the environment is active and has an enabled endpoint.
func writeWebhookEvent(ctx context.Context, tx *sqlx.Tx, m Message, previous domain.Status) error {
	if m.EnvironmentID == nil {
		return nil
	}
	var now struct {
		Status      domain.Status `db:"env_status"`
		Changed     time.Time     `db:"env_status_changed"`
		NeedsAction bool          `db:"needs_action"`
	}
	if err := tx.GetContext(ctx, &now, `SELECT env_status, env_status_changed, needs_action FROM messages WHERE number = $1`, m.Number); err != nil {
		return err
	}
	if now.Status == previous {
		return nil
	}
	body, err := json.Marshal(WebhookPayload{Type: WebhookEventType, Timestamp: time.Now().UTC().Truncate(time.Second), Data: WebhookData{
		Number: m.Number, Environment: deref(m.Environment), Type: m.Type, Status: now.Status, PreviousStatus: previous,
		Version: deref(m.Version), Time: now.Changed.UTC(), NeedsAction: now.NeedsAction,
	}})
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `
		WITH nx AS (SELECT COALESCE(max(seq), 0) + 1 AS seq FROM webhook_events WHERE message_number = $2)
		INSERT INTO webhook_events (id, message_number, seq, endpoint_id, payload)
		SELECT 'evt_' || $2::bigint || '_' || nx.seq, $2, nx.seq, w.id, $3::json
		FROM webhook_endpoints w JOIN environments e ON e.id = w.environment_id, nx
		WHERE w.environment_id = $1 AND w.disabled_at IS NULL AND e.active`, *m.EnvironmentID, m.Number, string(body))
	return err
}

// PendingWebhookEvents returns the message's events still to be posted, oldest first,
// with the endpoint to post them to. Events whose endpoint was disabled, or whose
// environment was removed (or is no longer the message's), can never be delivered:
// they are marked failed with an F line and not returned.
func (s *Store) PendingWebhookEvents(ctx context.Context, number int64) ([]WebhookEvent, WebhookEndpoint, error) {
	events := []WebhookEvent{}
	var endpoint WebhookEndpoint
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var rows []struct {
			WebhookEvent
			Deliverable bool   `db:"deliverable"`
			Why         string `db:"why"`
		}
		if err := tx.SelectContext(ctx, &rows, `
			SELECT ev.id, ev.message_number, ev.endpoint_id, ev.payload, ev.state, ev.attempts, ev.last_error, ev.created_at, ev.sent_at,
				(w.disabled_at IS NULL AND e.active AND m.environment_id = w.environment_id) AS deliverable,
				CASE WHEN w.disabled_at IS NOT NULL THEN 'the endpoint was disabled: ' || w.disabled_reason
				     WHEN NOT e.active THEN 'environment ' || e.name || ' was removed'
				     ELSE 'the message was moved to another environment' END AS why
			FROM webhook_events ev
			JOIN webhook_endpoints w ON w.id = ev.endpoint_id
			JOIN environments e ON e.id = w.environment_id
			JOIN messages m ON m.number = ev.message_number
			WHERE ev.message_number = $1 AND ev.state = 'pending'
			ORDER BY ev.seq
			FOR UPDATE OF ev`, number); err != nil {
			return err
		}
		var logs []LogEntry
		for _, r := range rows {
			if !r.Deliverable {
				if _, err := tx.ExecContext(ctx, `UPDATE webhook_events SET state = 'failed', last_error = $2 WHERE id = $1`, r.ID,
					truncateRunes(r.Why, maxWebhookErrorLen)); err != nil {
					return err
				}
				logs = append(logs, webhookFailedLine(number, r.ID, r.Why))
				continue
			}
			if len(events) > 0 && r.EndpointID != events[0].EndpointID {
				continue // cannot happen with one endpoint per environment; never post to two at once
			}
			events = append(events, r.WebhookEvent)
		}
		if len(events) > 0 {
			if err := tx.GetContext(ctx, &endpoint, `SELECT id, environment_id, url, secret, created_at, disabled_at, disabled_reason
				FROM webhook_endpoints WHERE id = $1`, events[0].EndpointID); err != nil {
				return err
			}
		}
		return writeLogs(ctx, tx, logs)
	})
	if err != nil {
		return nil, WebhookEndpoint{}, fmt.Errorf("read the pending webhook events of message %d: %w", number, err)
	}
	return events, endpoint, nil
}

func webhookFailedLine(number int64, eventID, why string) LogEntry {
	return LogEntry{MessageNumber: &number, Step: domain.StepReport, Level: domain.LevelError, DedupeKey: "webhook-failed/" + eventID,
		Description: fmt.Sprintf("webhook event %s of message %d not delivered: %s", eventID, number, why),
		Information: fmt.Sprintf("the environment missed this status change: it reads the message's status with GET /v1/messages/%d; "+
			"check its receiver and register it again if needed (`starter environments webhook NAME --url URL`)", number)}
}

// WebhookAttempt records one failed post of an event (the sender retries it).
func (s *Store) WebhookAttempt(ctx context.Context, eventID string, errText string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE webhook_events SET attempts = attempts + 1, last_error = $2 WHERE id = $1 AND state = 'pending'`,
		eventID, truncateRunes(errText, maxWebhookErrorLen))
	if err != nil {
		return fmt.Errorf("record an attempt of webhook event %s: %w", eventID, err)
	}
	return s.eventTouched(ctx, res, eventID)
}

// MarkWebhookSent records that the receiver took the event; marking it again changes
// nothing. An event failed meanwhile (its endpoint disabled) that still arrived counts
// as sent: the receiver has it.
func (s *Store) MarkWebhookSent(ctx context.Context, eventID string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE webhook_events SET state = 'sent', sent_at = now(), attempts = attempts + 1
		WHERE id = $1 AND state <> 'sent'`, eventID)
	if err != nil {
		return fmt.Errorf("mark webhook event %s sent: %w", eventID, err)
	}
	return s.eventTouched(ctx, res, eventID)
}

// eventTouched turns "no row changed" into ErrNotFound when the event does not exist,
// and into nothing when it was already past the change.
func (s *Store) eventTouched(ctx context.Context, res interface{ RowsAffected() (int64, error) }, eventID string) error {
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	var exists bool
	if err := s.db.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM webhook_events WHERE id = $1)`, eventID); err != nil {
		return fmt.Errorf("read webhook event %s: %w", eventID, err)
	}
	if !exists {
		return fmt.Errorf("%w: webhook event %s does not exist (its message was cleaned up?)", ErrNotFound, eventID)
	}
	return nil
}

// MarkWebhookFailed gives up on a pending event (its retries are exhausted) and writes
// an F line on its message. An event that is no longer pending is left as it is.
func (s *Store) MarkWebhookFailed(ctx context.Context, eventID, reason string) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var number int64
		err := tx.GetContext(ctx, &number, `UPDATE webhook_events SET state = 'failed', last_error = $2 WHERE id = $1 AND state = 'pending'
			RETURNING message_number`, eventID, truncateRunes(reason, maxWebhookErrorLen))
		if isNoRows(err) {
			var exists bool
			if err := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM webhook_events WHERE id = $1)`, eventID); err != nil || exists {
				return err
			}
			return fmt.Errorf("%w: webhook event %s does not exist", ErrNotFound, eventID)
		}
		if err != nil {
			return err
		}
		return writeLog(ctx, tx, webhookFailedLine(number, eventID, "gave up: "+reason))
	})
	if err != nil {
		return fmt.Errorf("mark webhook event %s failed: %w", eventID, err)
	}
	return nil
}

// DisableWebhook disables an endpoint (its receiver answered 410 Gone): its pending
// events are failed, with an F line for the environment and one per event. Disabling
// it again changes nothing more.
func (s *Store) DisableWebhook(ctx context.Context, ep WebhookEndpoint, reason string) error {
	endpointID := ep.ID
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		// The registration posted to must still be the endpoint's: an operator who
		// registered a new URL (a new secret) meanwhile must not see it disabled by a
		// 410 from the old one.
		var secret string
		switch err := tx.GetContext(ctx, &secret, `SELECT secret FROM webhook_endpoints WHERE id = $1 FOR UPDATE`, endpointID); {
		case isNoRows(err):
			return fmt.Errorf("%w: webhook endpoint %d does not exist", ErrNotFound, endpointID)
		case err != nil:
			return err
		case secret != ep.Secret:
			return fmt.Errorf("%w: webhook endpoint %d was registered anew since it was posted to; the new registration stays enabled",
				ErrConflict, endpointID)
		}
		var w struct {
			EnvironmentID int64     `db:"environment_id"`
			Environment   string    `db:"name"`
			URL           string    `db:"url"`
			DisabledAt    time.Time `db:"disabled_at"`
			Fresh         bool      `db:"fresh"`
		}
		err := tx.GetContext(ctx, &w, `
			WITH old AS (SELECT id, disabled_at IS NULL AS fresh FROM webhook_endpoints WHERE id = $1 FOR UPDATE)
			UPDATE webhook_endpoints w SET disabled_at = COALESCE(w.disabled_at, now()),
				disabled_reason = CASE WHEN old.fresh THEN $2 ELSE w.disabled_reason END
			FROM old, environments e
			WHERE w.id = old.id AND e.id = w.environment_id
			RETURNING w.environment_id, e.name, w.url, w.disabled_at, old.fresh`, endpointID, truncateRunes(reason, maxWebhookErrorLen))
		if isNoRows(err) {
			return fmt.Errorf("%w: webhook endpoint %d does not exist", ErrNotFound, endpointID)
		}
		if err != nil {
			return err
		}
		var failed []struct {
			ID     string `db:"id"`
			Number int64  `db:"message_number"`
		}
		why := "the endpoint was disabled: " + reason
		if err := tx.SelectContext(ctx, &failed, `UPDATE webhook_events SET state = 'failed', last_error = $2
			WHERE endpoint_id = $1 AND state = 'pending' RETURNING id, message_number`, endpointID, truncateRunes(why, maxWebhookErrorLen)); err != nil {
			return err
		}
		var logs []LogEntry
		if w.Fresh {
			logs = append(logs, LogEntry{EnvironmentID: &w.EnvironmentID, Step: domain.StepEnvironment, Level: domain.LevelError,
				DedupeKey: fmt.Sprintf("webhook-disabled/%d/%d", endpointID, w.DisabledAt.UnixNano()),
				Description: fmt.Sprintf("webhook endpoint %s of environment %s disabled: %s; %d pending event(s) failed",
					RedactWebhookURL(w.URL), w.Environment, reason, len(failed)),
				Information: fmt.Sprintf("no status changes are pushed to %s until it registers an endpoint again "+
					"(`starter environments webhook %s --url URL`, a new secret)", w.Environment, w.Environment)})
		}
		for _, f := range failed {
			logs = append(logs, webhookFailedLine(f.Number, f.ID, why))
		}
		return writeLogs(ctx, tx, logs)
	})
	if err != nil {
		return fmt.Errorf("disable webhook endpoint %d: %w", endpointID, err)
	}
	return nil
}

// webhookCountColumns count webhook_events rows by state into WebhookCounts.
const webhookCountColumns = `count(*) FILTER (WHERE state = 'sent') AS sent,
	count(*) FILTER (WHERE state = 'pending') AS pending, count(*) FILTER (WHERE state = 'failed') AS failed`

// WebhookCountsOf counts a message's events by state.
func (s *Store) WebhookCountsOf(ctx context.Context, number int64) (WebhookCounts, error) {
	var c WebhookCounts
	if err := s.db.GetContext(ctx, &c, `SELECT `+webhookCountColumns+` FROM webhook_events WHERE message_number = $1`, number); err != nil {
		return WebhookCounts{}, fmt.Errorf("count the webhook events of message %d: %w", number, err)
	}
	return c, nil
}
