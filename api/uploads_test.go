package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"koerier/store"
)

// uploadStore authenticates every token as one environment and refuses every queue
// request: enough to reach and pass the upload budget. Other methods are not called.
type uploadStore struct{ Store }

func (uploadStore) Authenticate(context.Context, string) (store.Environment, error) {
	return store.Environment{ID: 1, Name: "acme"}, nil
}

func (uploadStore) Queue(context.Context, store.QueueRequest) (store.Queued, error) {
	return store.Queued{}, fmt.Errorf("%w: test store queues nothing", store.ErrInvalid)
}

// While uploads hold the instance's memory budget, another is answered 503 with
// Retry-After before its body is read; once they end, uploads are taken in again.
func TestUploadsBeyondTheMemoryBudgetAreTurnedAway(t *testing.T) {
	s := &Server{Store: uploadStore{}, Limits: Limits{MaxFile: 1 << 20, MaxRequest: 2 << 20, MaxInFlight: 3 << 20}}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	post := func(body io.Reader, length int64, contentType string) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages", body)
		if err != nil {
			return nil, err
		}
		req.ContentLength = length
		req.Header.Set("Authorization", "Bearer kt_test")
		req.Header.Set("Content-Type", contentType)
		return http.DefaultClient.Do(req)
	}
	// A JSON upload as large as a JSON request may be, sending its body slowly, takes
	// the whole budget (JSON costs jsonMemoryFactor times its size).
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		resp, err := post(pr, s.jsonLimit(), "application/json")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	if _, err := pw.Write([]byte(`{"type":`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // its handler is reading the body now
	resp, err := post(strings.NewReader("--b--\r\n"), 7, "multipart/form-data; boundary=b")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("an upload while the budget is taken: %d %v", resp.StatusCode, resp.Header)
	}
	_ = pw.CloseWithError(io.ErrUnexpectedEOF)
	<-done // the client's error (its body failed) is of no interest
	time.Sleep(100 * time.Millisecond)
	resp, err = post(strings.NewReader("--b--\r\n"), 7, "multipart/form-data; boundary=b")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		t.Fatalf("the budget was not given back: %d", resp.StatusCode)
	}
}
