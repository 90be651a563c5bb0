// Package metrics is what Koerier's processes serve on /metrics for Prometheus: the Go
// runtime's and the process's figures, the Temporal SDK's own metrics (through
// TemporalHandler), and Koerier's (deliveries by channel and outcome, uncertain
// deliveries, Digipoort calls, the backlog read from Postgres, certificate expiry).
// Every metric is described in the README's "Metrics" section.
//
// Each process builds its own registry rather than using the library's global one, so
// that two workers in one test process do not collide and nothing a library registers
// by side effect is served unasked.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
	"go.temporal.io/sdk/client"

	"koerier/domain"
	"koerier/pipeline"
)

// Outcome of a try of a delivery that returned an error (retried, or failed for good
// by Temporal): the pipeline's outcomes name only the tries that decided something.
const OutcomeError = "error"

// Metrics is one process's registry with Koerier's metrics on it.
type Metrics struct {
	// Registry is what Handler serves; tests gather from it directly.
	Registry *prometheus.Registry

	temporal         *TemporalHandler
	deliveries       *prometheus.CounterVec
	uncertainLookups *prometheus.CounterVec
	uncertainAdopted *prometheus.CounterVec
	digipoortSeconds *prometheus.HistogramVec
	digipoortErrors  *prometheus.CounterVec
}

// New makes a registry with the Go and process collectors, the Temporal SDK's metrics
// (pass Temporal() to the client) and Koerier's counters. The backlog gauges and the
// certificate gauges are added by WatchStore and WatchCertificates, on the worker.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		temporal: NewTemporalHandler(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "koerier_deliveries_total",
			Help: "Tries of a delivery by channel and what they decided (sent, send_failed, refused, waiting, uncertain) or error (retried)."},
			[]string{"channel", "outcome"}),
		uncertainLookups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "koerier_uncertain_lookups_total",
			Help: "Look-ups of a delivery whose outcome was not known (the worker died mid-call, the answer was lost), by channel; every try counts."},
			[]string{"channel"}),
		uncertainAdopted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "koerier_uncertain_adopted_total",
			Help: "Deliveries whose outcome was not known that the look-up found at the authority (or in the Sent folder) and adopted instead of sending again, by channel."},
			[]string{"channel"}),
		digipoortSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "koerier_digipoort_call_duration_seconds",
			Help:    "Duration of SOAP calls to Digipoort by operation (aanleveren, getStatussenProces, getBerichtenKenmerk, ...), failed calls included.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 120}},
			[]string{"operation"}),
		digipoortErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "koerier_digipoort_call_errors_total",
			Help: "SOAP calls to Digipoort that failed (transport trouble, a fault, an answer that did not verify), by operation."},
			[]string{"operation"}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.temporal,
		m.deliveries, m.uncertainLookups, m.uncertainAdopted, m.digipoortSeconds, m.digipoortErrors,
	)
	// Series that exist from the start: a rate over a counter that appears only with
	// its first increment misses that increment, and an alert on "no sends" needs a 0.
	for _, ch := range []domain.Channel{domain.ChannelDigipoort, domain.ChannelEmail, domain.ChannelBank} {
		for _, o := range []string{pipeline.OutcomeSent, pipeline.OutcomeSendFailed, pipeline.OutcomeRefused, pipeline.OutcomeWaiting,
			pipeline.OutcomeUncertain, OutcomeError} {
			m.deliveries.WithLabelValues(string(ch), o)
		}
		m.uncertainLookups.WithLabelValues(string(ch))
		m.uncertainAdopted.WithLabelValues(string(ch))
	}
	return m
}

// Temporal is the handler to pass as client.Options.MetricsHandler.
func (m *Metrics) Temporal() client.MetricsHandler { return m.temporal }

// Delivery counts one try of a delivery: its outcome (pipeline.Outcome*), or
// OutcomeError when it returned an error.
func (m *Metrics) Delivery(channel domain.Channel, outcome string) {
	m.deliveries.WithLabelValues(string(channel), outcome).Inc()
}

// UncertainLookedUp counts one look-up of a delivery whose outcome was not known.
func (m *Metrics) UncertainLookedUp(channel domain.Channel) {
	m.uncertainLookups.WithLabelValues(string(channel)).Inc()
}

// UncertainAdopted counts a delivery whose outcome was not known and that the look-up
// found and adopted.
func (m *Metrics) UncertainAdopted(channel domain.Channel) {
	m.uncertainAdopted.WithLabelValues(string(channel)).Inc()
}

// ObserveDigipoort records one SOAP call; it is digipoort.Config.Observe's signature.
func (m *Metrics) ObserveDigipoort(operation string, took time.Duration, err error) {
	m.digipoortSeconds.WithLabelValues(operation).Observe(took.Seconds())
	if err != nil {
		m.digipoortErrors.WithLabelValues(operation).Inc()
	}
}

// Handler serves the registry in Prometheus' text format (or what the scraper asks
// for). A collector that fails (Postgres away) is logged and left out; the rest is
// still served, so that the process's own figures stay visible in an outage.
func (m *Metrics) Handler(log logrus.FieldLogger) http.Handler { return Handler(m.Registry, log) }

// Handler serves reg; see Metrics.Handler.
func Handler(reg *prometheus.Registry, log logrus.FieldLogger) http.Handler {
	opts := promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, Registry: reg, MaxRequestsInFlight: 4,
		Timeout: 30 * time.Second}
	if log != nil {
		opts.ErrorLog = errorLog{log}
	}
	return promhttp.HandlerFor(reg, opts)
}

type errorLog struct{ l logrus.FieldLogger }

func (e errorLog) Println(v ...any) { e.l.Warn(fmt.Sprint(v...)) }

// Listen opens addr for Serve, so that a port already taken stops the process at
// start with what to do, not later in a goroutine.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve metrics on %s: %w; set KOERIER_METRICS_ADDR to a free host:port, or to off to serve none", addr, err)
	}
	return ln, nil
}

// Serve serves h on ln at /metrics until ctx ends, then shuts down. It returns nil
// after a shutdown; any other end is an error.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve metrics on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("stop serving metrics: %w", err)
	}
	return nil
}
