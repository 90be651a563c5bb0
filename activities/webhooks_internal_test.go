package activities

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"koerier/store"
)

// The test vector of Standard Webhooks' reference libraries: our signing agrees with
// the specification, not only with itself.
func TestSignWebhookStandardVector(t *testing.T) {
	got, err := signWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if err != nil || got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("signature %q, %v", got, err)
	}
	for _, bad := range []string{"", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!"} {
		var secretErr *webhookSecretError
		if _, err := signWebhook(bad, "evt_1_1", 1, nil); !errors.As(err, &secretErr) {
			t.Errorf("secret %q: %v, want a secret error", bad, err)
		}
	}
}

// Only http and https URLs with a host are posted to.
func TestCheckWebhookURL(t *testing.T) {
	for _, u := range []string{"file:///etc/passwd", "gopher://x", "http://", "/relative", "ftp://host/x"} {
		if checkWebhookURL(u) == nil {
			t.Errorf("%q accepted", u)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8080/hooks", "https://example.nl/x?y=1"} {
		if err := checkWebhookURL(u); err != nil {
			t.Errorf("%q: %v", u, err)
		}
	}
}

// A receiver that does not answer in time is a failed attempt that says so (the client's
// timeout is shortened here; it is pipeline.WebhookTimeout).
func TestPostWebhookTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	saved := webhookClient.Timeout
	webhookClient.Timeout = 200 * time.Millisecond
	defer func() { webhookClient.Timeout = saved }()
	ev := store.WebhookEvent{ID: "evt_1_1", Payload: []byte(`{}`)}
	status, err := postWebhook(context.Background(), srv.URL, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ev, time.Now())
	if err == nil || status != 0 {
		t.Fatalf("status %d, %v; want a timeout", status, err)
	}
	if got := describePost(status, err); !strings.Contains(got, "no answer within") {
		t.Errorf("described as %q", got)
	}
}
