package activities

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"koerier/pipeline"
	"koerier/store"
)

// Standard Webhooks (https://www.standardwebhooks.com): the headers every post carries.
const (
	headerWebhookID        = "webhook-id"
	headerWebhookTimestamp = "webhook-timestamp"
	headerWebhookSignature = "webhook-signature"
	webhookSecretPrefix    = "whsec_"
)

// webhookClient posts events. It follows no redirect: the signature covers the body,
// not where it ends up, and a receiver that moved registers its new URL. It gives up
// on a receiver after WebhookTimeout, so that one slow receiver holds no worker slot.
var webhookClient = &http.Client{
	Timeout:       pipeline.WebhookTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// DeliverWebhooks is the report stage's push (rule 13 in docs/rules.md): it posts
// message number's pending webhook events, oldest first, to its environment's
// endpoint, signed the Standard Webhooks way with the endpoint's secret, each with its
// stable id so that a receiver drops one it has seen.
//
// 2xx: the event is sent. 410 Gone: the receiver wants no more; the endpoint is
// disabled (its pending events failed, an F line) and that is final. Anything else — a
// 5xx, another 4xx, a redirect, a refused connection, a timeout — counts one attempt
// on the event and is returned for Temporal to retry with back-off; the later events
// wait, so that a receiver sees them in order.
func (a *Activities) DeliverWebhooks(ctx context.Context, number int64) (pipeline.WebhookResult, error) {
	defer keepAlive(ctx)()
	var res pipeline.WebhookResult
	events, ep, err := a.Store.PendingWebhookEvents(ctx, number)
	if err != nil || len(events) == 0 {
		return res, final(err)
	}
	log := a.log().WithFields(logrus.Fields{"message": number, "endpoint": store.RedactWebhookURL(ep.URL)})
	if err := checkWebhookURL(ep.URL); err != nil {
		// store.SetWebhook refuses such a URL; one that got past it can never work.
		if derr := a.Store.DisableWebhook(ctx, ep, err.Error()+": register a new endpoint with `starter environments webhook`"); derr != nil {
			return res, reregistered(derr)
		}
		log.WithError(err).Warn("webhook endpoint disabled: its URL cannot be posted to")
		res.Disabled = true
		return res, nil
	}
	for _, ev := range events {
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, ev.ID)
		}
		status, perr := postWebhook(ctx, ep.URL, ep.Secret, ev, time.Now())
		var secretErr *webhookSecretError
		switch {
		case errors.As(perr, &secretErr):
			return res, temporal.NewNonRetryableApplicationError(perr.Error(), pipeline.ErrTypeInvalid, perr)
		case perr == nil && status >= 200 && status < 300:
			if err := a.Store.MarkWebhookSent(ctx, ev.ID); err != nil {
				return res, final(err)
			}
			res.Sent++
		case perr == nil && status == http.StatusGone:
			reason := fmt.Sprintf("the webhook receiver %s answered 410 Gone to event %s of message %d, so the endpoint is disabled and its "+
				"pending events are not sent; to receive webhooks again register an endpoint with `starter environments webhook %s --url URL`",
				store.RedactWebhookURL(ep.URL), ev.ID, number, environmentOf(ev.Payload))
			if err := a.Store.DisableWebhook(ctx, ep, reason); err != nil {
				return res, reregistered(err)
			}
			log.WithField("event", ev.ID).Warn("webhook receiver answered 410 Gone: endpoint disabled")
			res.Disabled = true
			return res, nil
		default:
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			what := describePost(status, perr)
			if err := a.Store.WebhookAttempt(ctx, ev.ID, what); err != nil {
				return res, final(err)
			}
			log.WithFields(logrus.Fields{"event": ev.ID, "attempt": ev.Attempts + 1, "outcome": what}).Warn("webhook not taken; it is retried")
			return res, fmt.Errorf("webhook event %s of message %d to %s not taken: %s; retried with back-off for up to %s "+
				"until the receiver answers 2xx (410 disables the endpoint)", ev.ID, number, store.RedactWebhookURL(ep.URL), what, pipeline.WebhookRetryFor)
		}
	}
	return res, nil
}

// FailWebhooks gives up on message number's events still pending once the report
// stage's retries ran out: each is marked failed with an F line that says why.
func (a *Activities) FailWebhooks(ctx context.Context, number int64, reason string) (int, error) {
	events, _, err := a.Store.PendingWebhookEvents(ctx, number)
	if err != nil {
		return 0, final(err)
	}
	for _, ev := range events {
		if err := a.Store.MarkWebhookFailed(ctx, ev.ID, reason); err != nil {
			return 0, final(err)
		}
	}
	if len(events) > 0 {
		a.log().WithFields(logrus.Fields{"message": number, "events": len(events)}).Warn("webhook events failed: retries ran out")
	}
	return len(events), nil
}

// postWebhook posts one event and returns the receiver's HTTP status.
func postWebhook(ctx context.Context, endpoint, secret string, ev store.WebhookEvent, now time.Time) (int, error) {
	// The timestamp is the attempt's: receivers refuse old ones against replay.
	ts := now.Unix()
	sig, err := signWebhook(secret, ev.ID, ts, ev.Payload)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(ev.Payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Koerier-Webhooks/1")
	req.Header.Set(headerWebhookID, ev.ID)
	req.Header.Set(headerWebhookTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(headerWebhookSignature, sig)
	resp, err := webhookClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// Read a little of the answer, so the connection can be reused; what it says
	// changes nothing.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

type webhookSecretError struct{ err error }

func (e *webhookSecretError) Error() string {
	return "the webhook endpoint's secret is not whsec_ followed by base64 (" + e.err.Error() + "): set the webhook again, which issues a new secret"
}

// signWebhook is Standard Webhooks' v1 signature: HMAC-SHA256 over "id.timestamp.body",
// keyed with the base64-decoded bytes after "whsec_", in standard base64.
func signWebhook(secret, id string, ts int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, webhookSecretPrefix))
	if err != nil || len(key) == 0 || !strings.HasPrefix(secret, webhookSecretPrefix) {
		if err == nil {
			err = errors.New("no key")
		}
		return "", &webhookSecretError{err: err}
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// checkWebhookURL refuses anything but an absolute http or https URL: the client
// would otherwise read files or speak other protocols.
func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("the webhook URL does not parse")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("the webhook URL has scheme %q and host %q; only http and https URLs with a host are posted to", u.Scheme, u.Host)
	}
	return nil
}

// describePost says what became of a post that was not taken, without the URL (Go's
// url.Error repeats it whole).
func describePost(status int, err error) string {
	if err == nil {
		if status >= 300 && status < 400 {
			return fmt.Sprintf("answered %d %s (redirects are not followed: register the final URL)", status, http.StatusText(status))
		}
		return fmt.Sprintf("answered %d %s", status, http.StatusText(status))
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout") {
		return fmt.Sprintf("no answer within %s", pipeline.WebhookTimeout)
	}
	return err.Error()
}

// environmentOf reads the environment's name from an event's body, for the advice.
func environmentOf(payload []byte) string {
	var body struct {
		Data struct {
			Environment string `json:"environment"`
		} `json:"data"`
	}
	if json.Unmarshal(payload, &body) != nil || body.Data.Environment == "" {
		return "NAME"
	}
	return body.Data.Environment
}

// reregistered lets Temporal retry a delivery whose endpoint was registered anew while
// it posted (the retry posts to the new one); other store errors are as final says.
func reregistered(err error) error {
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("webhook: %w", err)
	}
	return final(err)
}
