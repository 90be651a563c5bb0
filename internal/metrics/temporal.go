package metrics

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// TemporalHandler hands the Temporal SDK's metrics to Prometheus.
//
// The SDK's own bridge (go.temporal.io/sdk/contrib/tally with tally's Prometheus
// reporter) is not served by the module proxy this project builds from, and would
// bring two more libraries; the interface the SDK needs is four methods, so this
// implements them over client_golang directly, with the names the tally reporter
// gives: counters end in _total, timers are histograms in seconds ending in _seconds,
// gauges keep their name. Tags become labels.
//
// A metric's tags are fixed per call site but the SDK does not promise one tag set
// per name (a request metric may carry an extra tag on failure), and a Prometheus
// vector has one set of label names. So a vector is made per name and sorted label
// names, when first used, and the handler is an unchecked collector (it describes
// nothing up front): the registry then accepts one name with several label sets,
// which the exposition format allows.
type TemporalHandler struct {
	tags map[string]string
	vecs *vecs
}

type vecs struct {
	mu    sync.Mutex
	byKey map[string]prometheus.Collector
	// kind of each name: a name the SDK used as a counter and then as a gauge would
	// make the scrape fail, so the second use is dropped.
	kind map[string]string
}

var _ client.MetricsHandler = (*TemporalHandler)(nil)

// NewTemporalHandler returns a handler without tags; register it with a registry to
// serve what the SDK records.
func NewTemporalHandler() *TemporalHandler {
	return &TemporalHandler{tags: map[string]string{}, vecs: &vecs{byKey: map[string]prometheus.Collector{}, kind: map[string]string{}}}
}

// WithTags returns a handler whose metrics carry tags besides the handler's own (a
// key in both takes the new value).
func (h *TemporalHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(h.tags)
	for k, v := range tags {
		merged[sanitise(k)] = v
	}
	return &TemporalHandler{tags: merged, vecs: h.vecs}
}

// Counter obtains a counter for name.
func (h *TemporalHandler) Counter(name string) client.MetricsCounter {
	c, ok := h.vec("counter", sanitise(name)+"_total", func(n string, labels []string) prometheus.Collector {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: n, Help: "Temporal SDK counter " + name + "."}, labels)
	})
	if !ok {
		return nopMetric{}
	}
	counter := c.(*prometheus.CounterVec).With(h.tags)
	return counterFunc(func(d int64) {
		if d > 0 { // a Prometheus counter only goes up
			counter.Add(float64(d))
		}
	})
}

// Gauge obtains a gauge for name.
func (h *TemporalHandler) Gauge(name string) client.MetricsGauge {
	g, ok := h.vec("gauge", sanitise(name), func(n string, labels []string) prometheus.Collector {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: n, Help: "Temporal SDK gauge " + name + "."}, labels)
	})
	if !ok {
		return nopMetric{}
	}
	gauge := g.(*prometheus.GaugeVec).With(h.tags)
	return gaugeFunc(gauge.Set)
}

// Timer obtains a timer for name: a histogram in seconds.
func (h *TemporalHandler) Timer(name string) client.MetricsTimer {
	t, ok := h.vec("timer", sanitise(name)+"_seconds", func(n string, labels []string) prometheus.Collector {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: n, Help: "Temporal SDK timer " + name + ", in seconds.",
			// From a local activity's milliseconds to a long poll's minute.
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}}, labels)
	})
	if !ok {
		return nopMetric{}
	}
	obs := t.(*prometheus.HistogramVec).With(h.tags)
	return timerFunc(func(d time.Duration) { obs.Observe(d.Seconds()) })
}

// vec returns the vector of name with the handler's label names, making it on first use.
func (h *TemporalHandler) vec(kind, name string, newVec func(string, []string) prometheus.Collector) (prometheus.Collector, bool) {
	labels := slices.Sorted(maps.Keys(h.tags))
	key := name + "{" + strings.Join(labels, ",") + "}"
	h.vecs.mu.Lock()
	defer h.vecs.mu.Unlock()
	if k, ok := h.vecs.kind[name]; ok && k != kind {
		return nil, false
	}
	v, ok := h.vecs.byKey[key]
	if !ok {
		v = newVec(name, labels)
		h.vecs.byKey[key] = v
		h.vecs.kind[name] = kind
	}
	return v, true
}

// Describe describes nothing: the vectors come into being as the SDK uses them (see
// the type's comment).
func (h *TemporalHandler) Describe(chan<- *prometheus.Desc) {}

// Collect collects every vector made so far.
func (h *TemporalHandler) Collect(ch chan<- prometheus.Metric) {
	h.vecs.mu.Lock()
	all := slices.Collect(maps.Values(h.vecs.byKey))
	h.vecs.mu.Unlock()
	for _, v := range all {
		v.Collect(ch)
	}
}

// sanitise makes name a valid Prometheus metric or label name: letters, digits and
// underscores, not starting with a digit.
func sanitise(name string) string {
	var b strings.Builder
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_', r >= '0' && r <= '9' && i > 0:
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type nopMetric struct{}

func (nopMetric) Inc(int64)            {}
func (nopMetric) Update(float64)       {}
func (nopMetric) Record(time.Duration) {}
