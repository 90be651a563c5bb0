// Package config reads Koerier's settings from the environment, with defaults that
// run on a developer's machine, and errors that name the variable to fix. It is the
// one place that reads the service's environment and where its defaults live (the
// Digipoort client reads its own KOERIER_DIGIPOORT_* in digipoort.ConfigFromEnv); the
// README's configuration table lists the same variables.
package config

import (
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"koerier/domain"
	"koerier/internal/secrets"
	"koerier/pipeline"
	"koerier/store"
)

// Defaults that are not a workflow input's (those live in pipeline, beside the input).
const (
	DefaultDatabaseURL     = "postgres://postgres@127.0.0.1:5432/koerier?sslmode=disable"
	DefaultTemporalAddress = "127.0.0.1:7233"
	// DefaultRol: a company filing its own returns; a bookkeeper filing for clients
	// sets Intermediair.
	DefaultRol = "Bedrijf"
	// DefaultUncertainWait is how long an interrupted delivery is looked up at
	// Digipoort before it is delivered again.
	DefaultUncertainWait = 10 * time.Minute
	// DefaultParallel bounds concurrent Digipoort calls per activity: enough to hide
	// round trips, few enough not to look like an attack to Logius.
	DefaultParallel = 16
	// MaxSendWait bounds KOERIER_SEND_WAIT: the wait is one page of a send/receive run,
	// which renews the 30-minute lock only when a page starts.
	MaxSendWait = 20 * time.Minute
	// DefaultControlActivities bounds the activities a worker runs at once for the runs
	// on the control queue (send/receive pages, every environment's mailbox and bank
	// runs, clean-up, the certificate check). Slots of their own, so that thousands of
	// queued deliveries never hold up a send/receive page.
	DefaultControlActivities = 64
	// DefaultWorkerActivities bounds the declaration activities a worker runs at once.
	DefaultWorkerActivities = 256
	// DefaultStickyCacheSize bounds the workflows a worker keeps in memory: the SDK's
	// default of 10,000 grew the worker to 690 MiB at 10,000 open declarations; an
	// evicted workflow is replayed from its history on its next task (see the README's
	// benchmark for the trade-off).
	DefaultStickyCacheSize = 1000
)

// Local is where `make run` keeps its state and serves the simulator's control API,
// for the commands that drive a local Koerier (the benchmark).
type Local struct {
	StateDir      string
	SimControlURL string
	// APIURL is where `make run` serves the API (its env.sh exports it).
	APIURL string
}

// LocalFromEnv reads KOERIER_STATE_DIR, KOERIER_SIM_CONTROL_URL and KOERIER_API_URL,
// with the defaults `make run` uses.
func LocalFromEnv() Local {
	l := Local{StateDir: os.Getenv("KOERIER_STATE_DIR"), SimControlURL: os.Getenv("KOERIER_SIM_CONTROL_URL"), APIURL: os.Getenv("KOERIER_API_URL")}
	if l.StateDir == "" {
		l.StateDir = ".koerier"
	}
	if l.SimControlURL == "" {
		l.SimControlURL = "http://127.0.0.1:8444"
	}
	if l.APIURL == "" {
		l.APIURL = "http://127.0.0.1:8080"
	}
	return l
}

// Config is what the worker and the command line need.
type Config struct {
	DatabaseURL     string
	TemporalAddress string
	Namespace       string
	TaskQueue       string
	Catalog         domain.Catalog
	// Rol is rolBelanghebbende on deliveries: Bedrijf or Intermediair.
	Rol string
	// AanleverkenmerkPrefix names this installation in every aanleverkenmerk.
	AanleverkenmerkPrefix string
	// NoReplyTimeout: a sent message without a final reply after this needs action.
	NoReplyTimeout time.Duration
	// DeliveryDeadline: a due message that kept failing to be delivered this long
	// needs action.
	DeliveryDeadline time.Duration
	// UncertainWait: how long an interrupted delivery is looked up at Digipoort before
	// it is delivered again.
	UncertainWait time.Duration
	// SendWait: how long one send/receive page waits for its deliveries.
	SendWait time.Duration
	// SendReceiveEvery is the schedule of send/receive.
	SendReceiveEvery time.Duration
	// CleanupRetention is the scheduled clean-up's age floor (at least 30 days); 0,
	// when KOERIER_CLEANUP_RETENTION is not set, means no scheduled clean-up: removal
	// is irreversible, so it runs on a schedule only when someone chose a retention.
	CleanupRetention time.Duration
	// WebhookRetryInitial: the first wait after a webhook post the receiver did not
	// take, doubling up to an hour, for four days (tests make it short).
	WebhookRetryInitial time.Duration
	// Parallel bounds concurrent Digipoort calls within one activity.
	Parallel int
	// PageSize is how many messages one send/receive activity handles.
	PageSize int
	// WorkerActivities bounds the declaration activities one worker runs at once (and
	// with them the concurrent deliveries to Digipoort).
	WorkerActivities int
	// ControlActivities bounds the activities of the runs on the control queue.
	ControlActivities int
	// DBMaxConns bounds the worker's Postgres connection pool.
	DBMaxConns int
	// StickyCacheSize bounds the workflows the worker keeps in memory between tasks.
	StickyCacheSize int
	// LogLevel is the worker's logrus level.
	LogLevel logrus.Level
	// Secrets seals the passwords of environments' e-mail profiles (KOERIER_SECRET_KEY,
	// base64 of 32 random bytes); nil when not set, and then no password can be stored
	// or read.
	Secrets *secrets.Box
	// MailRootCAs are the certificate authorities mail servers are trusted by: the
	// system's, plus KOERIER_MAIL_CA_FILE (the local dev server's CA under `make run`).
	MailRootCAs *x509.CertPool
	// BounceWindow: how long a sent e-invoice waits for a bounce (rule 12).
	BounceWindow time.Duration
	// MailEvery is the schedule of each environment's e-mail send/receive.
	MailEvery time.Duration
	// BankEvery is the schedule of each environment's bank send/receive.
	BankEvery time.Duration
	// MetricsAddr is where the worker serves /metrics (KOERIER_METRICS_ADDR); empty
	// when set to "off".
	MetricsAddr string
}

// DefaultMetricsAddr is where the worker serves /metrics: this machine only, which is
// what `make run` scrapes; a deployment that scrapes from elsewhere sets
// KOERIER_METRICS_ADDR (the endpoint has no authentication: keep it off the internet).
const DefaultMetricsAddr = "127.0.0.1:9464"

// FromEnv reads the configuration.
func FromEnv() (Config, error) { return FromLookup(os.LookupEnv) }

// FromLookup reads the configuration through lookup (tests pass a map).
func FromLookup(lookup func(string) (string, bool)) (Config, error) {
	get := func(k, def string) string {
		if v, ok := lookup(k); ok && v != "" {
			return v
		}
		return def
	}
	c := Config{
		DatabaseURL:           get("KOERIER_DATABASE_URL", DefaultDatabaseURL),
		TemporalAddress:       get("KOERIER_TEMPORAL_ADDRESS", DefaultTemporalAddress),
		Namespace:             get("KOERIER_TEMPORAL_NAMESPACE", "default"),
		TaskQueue:             get("KOERIER_TASK_QUEUE", pipeline.DefaultTaskQueue),
		Rol:                   get("KOERIER_ROL", DefaultRol),
		AanleverkenmerkPrefix: get("KOERIER_AANLEVERKENMERK_PREFIX", domain.DefaultAanleverkenmerkPrefix),
	}
	if err := domain.ValidateAanleverkenmerkPrefix(c.AanleverkenmerkPrefix); err != nil {
		return Config{}, fmt.Errorf("KOERIER_AANLEVERKENMERK_PREFIX: %w", err)
	}
	var err error
	if c.LogLevel, err = logrus.ParseLevel(get("KOERIER_LOG_LEVEL", "info")); err != nil {
		return Config{}, fmt.Errorf("KOERIER_LOG_LEVEL=%q: use panic, fatal, error, warning, info, debug or trace", get("KOERIER_LOG_LEVEL", ""))
	}
	if c.Catalog, err = domain.DefaultCatalog().WithBerichtsoorten(get("KOERIER_BERICHTSOORTEN", "")); err != nil {
		return Config{}, fmt.Errorf("KOERIER_BERICHTSOORTEN: %w", err)
	}
	// What a message is sent with is fixed at queue time (store.Queue keeps the identity
	// type with the message); these settings change only what is queued after them.
	if c.Catalog, err = c.Catalog.WithIdentityTypes(get("KOERIER_IDENTITY_TYPES", "")); err != nil {
		return Config{}, fmt.Errorf("KOERIER_IDENTITY_TYPES: %w", err)
	}
	if c.Catalog, err = c.Catalog.WithAttachments(get("KOERIER_BIJLAGEN", "")); err != nil {
		return Config{}, fmt.Errorf("KOERIER_BIJLAGEN: %w", err)
	}
	if c.Rol != "Bedrijf" && c.Rol != "Intermediair" {
		return Config{}, fmt.Errorf("KOERIER_ROL=%q: use Bedrijf or Intermediair", c.Rol)
	}
	durations := []struct {
		key string
		def time.Duration
		min time.Duration
		dst *time.Duration
	}{
		{"KOERIER_NO_REPLY_TIMEOUT", pipeline.DefaultNoReplyTimeout, time.Second, &c.NoReplyTimeout},
		{"KOERIER_DELIVERY_DEADLINE", pipeline.DefaultDeliveryDeadline, time.Minute, &c.DeliveryDeadline},
		{"KOERIER_UNCERTAIN_DELIVERY_WAIT", DefaultUncertainWait, time.Second, &c.UncertainWait},
		{"KOERIER_SEND_WAIT", pipeline.DefaultSendWait, time.Second, &c.SendWait},
		{"KOERIER_SEND_RECEIVE_EVERY", 15 * time.Minute, time.Second, &c.SendReceiveEvery},
		{"KOERIER_CLEANUP_RETENTION", 0, domain.MinRetention, &c.CleanupRetention},
		{"KOERIER_WEBHOOK_RETRY_INITIAL", pipeline.DefaultWebhookRetryInitial, 100 * time.Millisecond, &c.WebhookRetryInitial},
		{"KOERIER_MAIL_BOUNCE_WINDOW", pipeline.DefaultBounceWindow, time.Second, &c.BounceWindow},
		{"KOERIER_MAIL_EVERY", DefaultMailEvery, time.Second, &c.MailEvery},
		{"KOERIER_BANK_EVERY", DefaultBankEvery, time.Second, &c.BankEvery},
	}
	for _, d := range durations {
		v := get(d.key, "")
		if v == "" {
			*d.dst = d.def
			continue
		}
		parsed, err := ParseDuration(v)
		if err != nil || parsed < d.min {
			return Config{}, fmt.Errorf("%s=%q: want a duration of at least %s such as 15m, 96h or 30d", d.key, v, d.min)
		}
		*d.dst = parsed
	}
	// A page renews the send/receive lock when it starts, and the wait for deliveries
	// is one page: a wait as long as the lock would let another run take it meanwhile.
	if c.SendWait > MaxSendWait {
		return Config{}, fmt.Errorf("KOERIER_SEND_WAIT=%s: at most %s, well inside the %s send/receive lock (rule 6); "+
			"deliveries still running then are counted as still sending and go on by themselves", c.SendWait, MaxSendWait, domain.LockDuration)
	}
	if c.Secrets, err = secretsFrom(get("KOERIER_SECRET_KEY", "")); err != nil {
		return Config{}, err
	}
	if c.MailRootCAs, err = mailRootCAs(get("KOERIER_MAIL_CA_FILE", "")); err != nil {
		return Config{}, err
	}
	if c.MetricsAddr, err = metricsAddr(get("KOERIER_METRICS_ADDR", DefaultMetricsAddr)); err != nil {
		return Config{}, err
	}
	ints := []struct {
		key string
		def int
		dst *int
	}{
		{"KOERIER_PARALLEL", DefaultParallel, &c.Parallel},
		{"KOERIER_PAGE_SIZE", pipeline.DefaultPageSize, &c.PageSize},
		{"KOERIER_WORKER_ACTIVITIES", DefaultWorkerActivities, &c.WorkerActivities},
		{"KOERIER_CONTROL_ACTIVITIES", DefaultControlActivities, &c.ControlActivities},
		{"KOERIER_DB_MAX_CONNS", store.DefaultMaxConns, &c.DBMaxConns},
		{"KOERIER_STICKY_CACHE_SIZE", DefaultStickyCacheSize, &c.StickyCacheSize},
	}
	for _, i := range ints {
		v := get(i.key, "")
		if v == "" {
			*i.dst = i.def
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return Config{}, fmt.Errorf("%s=%q: want a whole number from 1 to 10000", i.key, v)
		}
		*i.dst = n
	}
	return c, nil
}

// ParseDuration accepts Go durations and whole days ("30d").
func ParseDuration(v string) (time.Duration, error) {
	if n := len(v); n > 1 && v[n-1] == 'd' {
		days, err := strconv.Atoi(v[:n-1])
		if err != nil {
			return 0, err
		}
		if days < 0 || days > 100000 {
			return 0, fmt.Errorf("%d days is out of range", days)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

// DefaultBankEvery is how often each environment's bank is asked for status reports:
// banks write them within minutes of processing a file.
const DefaultBankEvery = 5 * time.Minute

// DefaultMailEvery is how often each environment's mailbox is read: often enough that
// a bounce is seen the same hour, rarely enough not to bother a mail provider.
const DefaultMailEvery = 5 * time.Minute

// secretsFrom reads KOERIER_SECRET_KEY; unset means no sealed passwords.
func secretsFrom(v string) (*secrets.Box, error) {
	if v == "" {
		return nil, nil
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil {
		return nil, fmt.Errorf("KOERIER_SECRET_KEY is not base64: make one with `openssl rand -base64 32` (and keep it: the stored passwords " +
			"can only be read with it)")
	}
	box, err := secrets.New(key)
	if err != nil {
		return nil, fmt.Errorf("KOERIER_SECRET_KEY: %w", err)
	}
	return box, nil
}

// mailRootCAs is the system's pool plus the certificates in file (PEM).
func mailRootCAs(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if file == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("KOERIER_MAIL_CA_FILE: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("KOERIER_MAIL_CA_FILE=%s holds no PEM certificate", file)
	}
	return pool, nil
}

// metricsAddr checks KOERIER_METRICS_ADDR: a host:port to listen on, or "off".
func metricsAddr(v string) (string, error) {
	if strings.EqualFold(v, "off") {
		return "", nil
	}
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		return "", fmt.Errorf("KOERIER_METRICS_ADDR=%q: want host:port to serve /metrics on, such as %s, or off", v, DefaultMetricsAddr)
	}
	return v, nil
}
