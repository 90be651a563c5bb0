package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"koerier/digipoort"
	"koerier/store"
)

// BacklogSource is where the backlog gauges come from (*store.Store).
type BacklogSource interface {
	MetricCounts(ctx context.Context) (store.MetricCounts, error)
}

// DefaultStoreTimeout bounds the backlog query of one scrape: well inside Prometheus'
// default scrape timeout (10 s), so that a slow database costs the backlog gauges of
// that scrape and not the whole scrape.
const DefaultStoreTimeout = 3 * time.Second

// WatchStore adds the backlog gauges, read from src at every scrape with the timeout,
// and koerier_store_up, which says whether that worked. Every worker of an
// installation reports the same backlog (it is the database's): aggregate with max,
// not sum.
func (m *Metrics) WatchStore(src BacklogSource, timeout time.Duration, log logrus.FieldLogger) {
	if timeout <= 0 {
		timeout = DefaultStoreTimeout
	}
	m.Registry.MustRegister(&backlog{src: src, timeout: timeout, log: log})
}

var (
	descUp = prometheus.NewDesc("koerier_store_up",
		"1 when the backlog gauges were read from Postgres at this scrape, 0 when the query failed or timed out (the gauges are then left out).", nil, nil)
	descDue = prometheus.NewDesc("koerier_messages_due",
		"Outgoing messages waiting to be sent: queued or restored, not marked do-not-send.", nil, nil)
	descInFlight = prometheus.NewDesc("koerier_messages_in_flight",
		"Messages at Digipoort without a final status yet (sent, receipt confirmed, in progress).", nil, nil)
	descNeedsAction = prometheus.NewDesc("koerier_messages_needs_action",
		"Messages an operator must look at (their reason says what to do); open unknown replies included.", nil, nil)
	descOpenONB = prometheus.NewDesc("koerier_onb_open",
		"Unknown replies (ONB) not yet linked to a message or resolved.", nil, nil)
	descWebhooksPending = prometheus.NewDesc("koerier_webhook_events_pending",
		"Webhook events still to be posted to environments' endpoints.", nil, nil)
	descWebhooksFailed = prometheus.NewDesc("koerier_webhook_events_failed",
		"Webhook events given up on (the receiver kept refusing for the retry period, or its endpoint was disabled), still stored.", nil, nil)
	descCertDays = prometheus.NewDesc("koerier_certificate_days_left",
		"Whole days until a configured Digipoort certificate expires (negative once expired), by role, subject and serial.",
		[]string{"role", "subject", "serial"}, nil)
)

// backlog reads the gauges at scrape time: a figure kept in the worker would be only
// that worker's view, and stale the moment another worker or the API changes a row.
type backlog struct {
	src     BacklogSource
	timeout time.Duration
	log     logrus.FieldLogger
}

func (b *backlog) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descDue, descInFlight, descNeedsAction, descOpenONB, descWebhooksPending, descWebhooksFailed} {
		ch <- d
	}
}

func (b *backlog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	c, err := b.src.MetricCounts(ctx)
	if err != nil {
		if b.log != nil {
			b.log.WithError(err).Warn("metrics: the backlog gauges are left out of this scrape")
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	for d, v := range map[*prometheus.Desc]int64{descDue: c.Due, descInFlight: c.InFlight, descNeedsAction: c.NeedsAction, descOpenONB: c.OpenONB,
		descWebhooksPending: c.WebhooksPending, descWebhooksFailed: c.WebhooksFailed} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
}

// WatchCertificates adds koerier_certificate_days_left, read from report at every
// scrape (digipoort.Client.Certificates), so that it counts down without the daily
// certificate check having run in this process.
func (m *Metrics) WatchCertificates(report func() digipoort.CertificateReport) {
	m.Registry.MustRegister(certificates(report))
}

type certificates func() digipoort.CertificateReport

func (c certificates) Describe(ch chan<- *prometheus.Desc) { ch <- descCertDays }

func (c certificates) Collect(ch chan<- prometheus.Metric) {
	seen := map[[3]string]bool{}
	for _, cert := range c().Certificates {
		labels := [3]string{string(cert.Role), cert.Subject, cert.Serial}
		if seen[labels] { // the same certificate configured twice is one series
			continue
		}
		seen[labels] = true
		ch <- prometheus.MustNewConstMetric(descCertDays, prometheus.GaugeValue, float64(cert.DaysLeft), labels[:]...)
	}
}
