package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/semaphore"

	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

// Store is what the API asks of Postgres; *store.Store is it. Every read takes the
// environment's id, so the store, not the handler, keeps environments apart.
type Store interface {
	Authenticate(ctx context.Context, secret string) (store.Environment, error)
	Queue(ctx context.Context, req store.QueueRequest) (store.Queued, error)
	APIMessage(ctx context.Context, envID, number int64) (store.APIMessage, error)
	APIMessages(ctx context.Context, envID int64, f store.APIFilter) ([]store.APIMessage, int64, error)
	APIDocuments(ctx context.Context, envID, number int64) ([]store.APIDocument, error)
	APIDocument(ctx context.Context, envID, number, id int64) (store.APIDocument, []byte, error)
	Declarations(ctx context.Context, numbers []int64) (map[int64]pipeline.Message, error)
	// Message is read only for a message APIMessage showed to be the environment's.
	Message(ctx context.Context, number int64) (store.Message, error)
	IncomingInvoices(ctx context.Context, envID int64, after int64, limit int) ([]store.InvoiceView, error)
	// Attachments is read only for a message IncomingInvoices showed to be the environment's.
	Attachments(ctx context.Context, number int64) ([]store.Attachment, error)
	MailProfile(ctx context.Context, envID int64) (store.MailProfile, error)
	SetMailProfile(ctx context.Context, env string, p store.MailProfile, who string) error
	ClearMailProfile(ctx context.Context, env, who string) error
}

// Workflows starts and signals declaration workflows; pipeline.Starter is it.
type Workflows interface {
	Start(ctx context.Context, m pipeline.Message) error
	Signal(ctx context.Context, m pipeline.Message, signal string, arg any) error
}

// Defaults of the limits.
const (
	// DefaultMaxFile is Digipoort's limit on one file; a bigger one could never be filed.
	DefaultMaxFile = domain.MaxAttachmentSize
	// DefaultMaxRequest bounds one queue request, files and fields together: room for a
	// declaration at Digipoort's limit with attachments, while bounding what one request
	// can make an instance hold in memory (store.Queue takes the files as bytes).
	DefaultMaxRequest = 64 << 20
	// maxField bounds a multipart text field; the longest, memo, is 4000 characters.
	maxField = 64 << 10
	// maxFiles bounds the files of one message: a declaration with its attachments is a
	// handful, and thousands of tiny parts within the byte cap would cost far more memory
	// and validation than their bytes.
	maxFiles = 100
	// DefaultMaxInFlight bounds the memory all queue requests of one instance may hold
	// at once (see Server.uploads): several maximal uploads from one tenant must not
	// take the instance down for every other.
	DefaultMaxInFlight = 512 << 20
	// jsonMemoryFactor is what a JSON queue request costs in memory per byte sent: the
	// body, its decoded strings and the decoded files are all held at once.
	jsonMemoryFactor = 4
	// temporalTimeout bounds a call to Temporal within a request: a Temporal that is
	// away must not hold the client's connection (queueing does not need it).
	temporalTimeout = 10 * time.Second
)

// Limits bound what one request may send.
type Limits struct {
	// MaxFile is the largest file (decoded); 0 means DefaultMaxFile.
	MaxFile int64
	// MaxRequest is the largest multipart queue request; 0 means DefaultMaxRequest. A
	// JSON request may be a third larger, which is what base64 adds.
	MaxRequest int64
	// MaxInFlight is the memory all queue requests of this instance may hold at once;
	// 0 means DefaultMaxInFlight. A request that would go over it is answered 503 with
	// Retry-After before its body is read.
	MaxInFlight int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxFile <= 0 {
		l.MaxFile = DefaultMaxFile
	}
	if l.MaxRequest <= 0 {
		l.MaxRequest = DefaultMaxRequest
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = DefaultMaxInFlight
	}
	return l
}

// Server is the API's HTTP handler. It keeps no state between requests.
type Server struct {
	Store     Store
	Workflows Workflows
	// Catalog is the installation's message types, for checking the type filter.
	Catalog domain.Catalog
	Limits  Limits
	Log     logrus.FieldLogger
	// Health reports whether the instance can serve (Postgres answers); nil means yes.
	Health func(ctx context.Context) error
	// MailSchedule brings an environment's e-mail send/receive schedule in line after
	// its profile was set (mailbox: the profile reads a mailbox) or removed; nil means
	// there is none to keep (koerier-api wires service.ApplyMailSchedule).
	MailSchedule func(ctx context.Context, env string, mailbox bool) error
	// Metrics, when set, is served on GET /metrics without a token (Prometheus scrapes
	// it; koerier-api wires internal/metrics). It says nothing of any environment's
	// messages, but keep it off the public internet all the same (see the README).
	Metrics http.Handler

	// uploads is the memory budget of the queue requests in flight (Limits.MaxInFlight).
	uploads *semaphore.Weighted
}

// Handler routes requests. Routes are registered per path and dispatched per method
// here, so that a wrong method gets a problem+json 405 with Allow, like every other error.
func (s *Server) Handler() http.Handler {
	s.Limits = s.Limits.withDefaults()
	s.uploads = semaphore.NewWeighted(max(s.Limits.MaxInFlight, s.jsonLimit()*jsonMemoryFactor))
	if s.Log == nil {
		s.Log = logrus.StandardLogger()
	}
	mux := http.NewServeMux()
	mux.Handle("/healthz", methods{http.MethodGet: s.healthz})
	if s.Metrics != nil {
		mux.Handle("/metrics", methods{http.MethodGet: s.Metrics.ServeHTTP})
	}
	mux.Handle("/v1/openapi.json", methods{http.MethodGet: serveOpenAPI})
	mux.Handle("/v1/messages", methods{http.MethodGet: s.auth(s.listMessages), http.MethodPost: s.auth(s.queue)})
	mux.Handle("/v1/messages/{number}", methods{http.MethodGet: s.auth(s.getMessage)})
	mux.Handle("/v1/messages/{number}/documents", methods{http.MethodGet: s.auth(s.listDocuments)})
	mux.Handle("/v1/messages/{number}/documents/{id}", methods{http.MethodGet: s.auth(s.getDocument)})
	mux.Handle("/v1/messages/{number}/process", methods{http.MethodPost: s.auth(s.process)})
	mux.Handle("/v1/einvoices", methods{http.MethodGet: s.auth(s.listInvoices)})
	mux.Handle("/v1/einvoices/{number}", methods{http.MethodGet: s.auth(s.getInvoice)})
	mux.Handle("/v1/einvoices/{number}/document", methods{http.MethodGet: s.auth(s.getInvoiceDocument)})
	mux.Handle("/v1/mail-profile", methods{http.MethodGet: s.auth(s.getMailProfile), http.MethodPut: s.auth(s.putMailProfile),
		http.MethodDelete: s.auth(s.deleteMailProfile)})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusNotFound, ProblemNotFound, "Not found",
			"there is no such resource: the API's paths are in GET /v1/openapi.json")
	})
	return s.frame(mux)
}

// methods dispatches on the method; HEAD is answered as GET without the body.
type methods map[string]http.HandlerFunc

func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if h, ok := m[method]; ok {
		h(w, r)
		return
	}
	allowed := make([]string, 0, len(m))
	for k := range m {
		allowed = append(allowed, k)
	}
	sort.Strings(allowed)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeProblem(w, r, http.StatusMethodNotAllowed, ProblemMethod, "Method not allowed",
		fmt.Sprintf("%s is not allowed here: use %s", r.Method, strings.Join(allowed, " or ")))
}

// requestInfo is what the request log says about a request, filled in as it is handled.
type requestInfo struct {
	environment string
	problem     string
}

type infoKey struct{}

func requestInfoOf(r *http.Request) *requestInfo {
	info, _ := r.Context().Value(infoKey{}).(*requestInfo)
	return info
}

// statusWriter remembers the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (read deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// frame gives every request an id (a load balancer's X-Request-Id is kept), a log line
// with structured fields (never the token or a file's content), and a problem+json 500
// instead of a dropped connection when a handler panics.
func (s *Server) frame(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(headerRequestID)
		if !requestIDPattern.MatchString(id) {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		info := &requestInfo{}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		sw := &statusWriter{ResponseWriter: w}
		h := sw.Header()
		h.Set(headerRequestID, id)
		h.Set("X-Content-Type-Options", "nosniff")
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler { // net/http panics with the sentinel itself to abort a response
					panic(v)
				}
				s.Log.WithFields(logrus.Fields{"request_id": id, "panic": fmt.Sprint(v), "stack": string(debug.Stack())}).Error("api handler panicked")
				if sw.status == 0 {
					writeProblem(sw, r, http.StatusInternalServerError, ProblemInternal, "Internal error",
						"the service failed on this request; retry later, and give an operator the request_id if it persists")
				}
			}
			fields := logrus.Fields{
				"request_id":  id,
				"method":      r.Method,
				"route":       r.Pattern,
				"path":        r.URL.Path,
				"status":      sw.status,
				"duration_ms": time.Since(start).Milliseconds(),
				"bytes_out":   sw.bytes,
			}
			if info.environment != "" {
				fields["environment"] = info.environment
			}
			if info.problem != "" {
				fields["problem"] = strings.TrimPrefix(info.problem, problemBase)
			}
			entry := s.Log.WithFields(fields)
			if sw.status >= 500 {
				entry.Warn("api request failed")
			} else {
				entry.Info("api request")
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

type envKey struct{}

// environmentOf is the authenticated environment of a request that passed auth.
func environmentOf(r *http.Request) store.Environment {
	e, _ := r.Context().Value(envKey{}).(store.Environment)
	return e
}

// auth lets a request through with the environment its bearer token belongs to. Every
// way a token can be wrong (missing, malformed, unknown, revoked, its environment
// removed) gets the same 401, so a caller learns nothing about other tokens.
func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="koerier"`)
			writeProblem(w, r, http.StatusUnauthorized, ProblemUnauthorized, "Unauthorized",
				"send the environment's token as `Authorization: Bearer <token>`; an operator issues one with `starter environments token NAME`")
			return
		}
		env, err := s.Store.Authenticate(r.Context(), token)
		if errors.Is(err, store.ErrUnauthenticated) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="koerier", error="invalid_token"`)
			writeProblem(w, r, http.StatusUnauthorized, ProblemUnauthorized, "Unauthorized",
				"the token is not valid (unknown, revoked, or its environment was removed): ask an operator for a new one "+
					"(`starter environments token NAME`)")
			return
		}
		if err != nil {
			s.unavailable(w, r, "authenticate", err)
			return
		}
		if info := requestInfoOf(r); info != nil {
			info.environment = env.Name
		}
		w.Header().Set("Cache-Control", "no-store")
		next(w, r.WithContext(context.WithValue(r.Context(), envKey{}, env)))
	}
}

// bearer takes the token out of an Authorization header (RFC 6750: the scheme is
// case-insensitive, the token one run of token68 characters).
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || len(token) > 512 || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}

// unavailable answers a failure of Postgres or Temporal: the request may be retried.
func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.Log.WithFields(logrus.Fields{"request_id": w.Header().Get(headerRequestID), "step": what}).WithError(err).Error("api: backend call failed")
	w.Header().Set("Retry-After", "5")
	writeProblem(w, r, http.StatusServiceUnavailable, ProblemUnavailable, "Service unavailable",
		"the service could not reach its database or workflow engine for this request: retry in a few seconds (a queue request "+
			"with its Idempotency-Key is never queued twice); give an operator the request_id if it persists")
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.Health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := s.Health(ctx); err != nil {
			s.unavailable(w, r, "health", err)
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
