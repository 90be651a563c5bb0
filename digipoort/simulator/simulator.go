package simulator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"koerier/digipoort"
	"koerier/digipoort/devcerts"
	"koerier/digipoort/internal/wire"
	"koerier/digipoort/wsse"
)

// BelastingdienstOIN is the Belastingdienst's OIN, the identiteitOntvanger of a
// captured aanleverResponse of Logius' conformance environment.
const BelastingdienstOIN = "00000002003214394002"

// EnvDir names the directory of the development PKI when Options.Dir is empty.
const EnvDir = "KOERIER_SIM_DIR"

// DefaultDir is $KOERIER_SIM_DIR, or .koerier/simulator under the working directory.
func DefaultDir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	return filepath.Join(".koerier", "simulator")
}

// Options configure the simulator. The zero value is usable.
type Options struct {
	// Addr is the HTTPS (mutual TLS) listen address of the WUS services; default
	// 127.0.0.1:0 (a random port).
	Addr string
	// ControlAddr is the plain-HTTP listen address of the control API; default
	// 127.0.0.1:0. Keep it on loopback: it is not authenticated.
	ControlAddr string
	// Dir holds the development PKI (created on first start, reused after); default
	// DefaultDir().
	Dir string
	// StepInterval is the time between two statuses of a process; default 1s.
	StepInterval time.Duration
	// Instant makes every status of a process available at once (default mode only).
	Instant bool
	// Mode is the mode to start in (see Mode; SetMode or PUT /sim/mode switch it at
	// run time). The zero value is the default mode.
	Mode Mode
	// OverloadAttempts is how many requests the Overbelast* scenarios refuse;
	// default 2.
	OverloadAttempts int
	// OverloadWindow is how long the Zwaarbelast* scenarios refuse requests after
	// the first one; default 3 × StepInterval.
	OverloadWindow time.Duration
	// Seed seeds the randomness of fault injection; equal seeds, equal choices.
	Seed uint64
	// RequestTolerance is the clock skew accepted on request timestamps; default 5m.
	RequestTolerance time.Duration
	// ResponseAlgorithm signs responses; default RSA-SHA1 (what Digipoort uses).
	ResponseAlgorithm wsse.Algorithm
	// ClientCAs are the CAs a client certificate must chain to for the TLS handshake
	// to succeed, as Digipoort accepts only PKIoverheid certificates; nil: the
	// development CA of Dir (which issues client.pem). A certificate that does not
	// chain to them never reaches the services.
	ClientCAs *x509.CertPool
	// KnownClients are client certificates the simulator knows in addition to the
	// development client.pem and the PEM files in <Dir>/known-clients/ (they must
	// chain to ClientCAs, or TLS refuses them first). A delivery made with any other
	// certificate that chains to ClientCAs is accepted but ends in status 210.
	KnownClients []*x509.Certificate
	// Ontvanger is the identiteitOntvanger the aanleverResponse names when the request
	// names none; default the Belastingdienst's OIN (BelastingdienstOIN), like the
	// captured response.
	Ontvanger wire.Identiteit
	// Berichtsoorten is what getBerichtsoorten returns (plus every berichtsoort
	// delivered); default Aangifte_LH, ICP, OBSUP, Omzetbelasting.
	Berichtsoorten []string
	// Logger receives a line per request (never message content); nil discards.
	Logger logrus.FieldLogger
	// Persist keeps the processes in Dir (StateFile) across restarts, as Digipoort
	// keeps its processes: a simulator started again on the same Dir answers for every
	// kenmerk it gave out before (see persist.go for what is kept). Off by default: tests
	// share one Dir for its certificates between simulators that must not share state.
	Persist bool
	// OnRequest, when set, is called with the operation and the Body payload of every
	// request whose signature verified, before the simulator checks the payload: for
	// tests that hold what a client put on the wire against the schema themselves.
	OnRequest func(op string, payload []byte)
}

// Sim is a running simulator.
type Sim struct {
	opts     Options
	paths    devcerts.Paths
	signer   wsse.Credentials
	known    map[string]bool // SHA-256 fingerprints of known client certificates
	log      logrus.FieldLogger
	srv      *http.Server
	ctl      *http.Server
	url      string
	ctlURL   string
	closing  chan struct{}
	closeErr error
	closeOne sync.Once
	wg       sync.WaitGroup
	// saveCh has a change to keep (nil: Options.Persist is off); saveMu orders writes.
	saveCh chan struct{}
	saveMu sync.Mutex

	mu        sync.Mutex
	mode      Mode // kept by Reset
	rng       *rand.Rand
	calls     map[string]int
	stats     map[string]*DeliveryStats // by aanleverkenmerk
	byKey     map[string]*process       // idempotency: berichtsoort|type|nummer|aanleverkenmerk
	byKenmerk map[string]*process
	order     []*process
	pickups   []*pickup
	overrides map[string]Scenario // lower(aanleverkenmerk) -> scenario
	faults    map[string]*FaultConfig
	overload  map[string]*overloadState
	fetched   map[string]bool             // "nieuwe" bookkeeping: fp|kind|id
	injected  map[string][]InjectedStatus // lower(aanleverkenmerk) -> extra statuses
}

type process struct {
	kenmerk     string
	req         wire.AanleverRequest
	resp        wire.AanleverResponse
	scenario    Scenario
	steps       []step
	start       time.Time
	step        time.Duration
	certFP      string
	aangeleverd time.Time
	// realistic: delivered in realistic mode; offsets then holds the (scaled) time of
	// each status after start, and step is a scaled minute.
	realistic bool
	offsets   []time.Duration
	// repeat: started by a delivery the default mode would have de-duplicated.
	repeat bool
	// messageID is the wsa:MessageID of the aanleveren request (the berichtkenmerk the
	// authority's Responsemessage refers to); bdMessageID the authority's own id.
	messageID, bdMessageID string
	// inhoud and bijlagen describe what the delivery carried; the content itself is
	// not kept (req holds neither).
	inhoud   Content
	bijlagen []Content
}

// Content describes one document a delivery carried (berichtInhoud or one bijlage of
// berichtBijlagen) by its decoded content: enough for a test to see that it arrived
// byte for byte, without the simulator holding up to 20 MiB per delivery.
type Content struct {
	MimeType     string `json:"mime_type"`
	Bestandsnaam string `json:"bestandsnaam"`
	Size         int64  `json:"size"`   // bytes after base64 decoding
	SHA256       string `json:"sha256"` // hex, of the decoded bytes
}

// statusTime is the time of status i; i past the flow is an injected status, a step
// after the one before. Times are kept to the millisecond, the precision Digipoort's
// xsd:dateTime values carry, so that a window built from reported times selects
// exactly those statuses.
func (p *process) statusTime(i int) time.Time {
	if p.offsets == nil {
		return p.start.Add(time.Duration(i) * p.step).Truncate(time.Millisecond)
	}
	if i < len(p.offsets) {
		return p.start.Add(p.offsets[i]).Truncate(time.Millisecond)
	}
	last := len(p.offsets) - 1
	return p.start.Add(p.offsets[last] + time.Duration(i-last)*p.step).Truncate(time.Millisecond)
}
func (p *process) endTime() time.Time { return p.statusTime(len(p.steps) - 1) }

type pickup struct {
	wire.BerichtResultaat
	tijd   time.Time
	certFP string // "" = every known client may pick it up
}

type overloadState struct {
	count int
	first time.Time
}

// DeliveryStats counts what happened to one aanleverkenmerk.
type DeliveryStats struct {
	Aanleverkenmerk string `json:"aanleverkenmerk"`
	// Attempts counts every aanleveren request with this aanleverkenmerk that
	// passed the signature check, faulted ones included.
	Attempts int `json:"attempts"`
	// Accepted counts deliveries that started a new process: exactly-once means 1, in
	// either mode (in realistic mode a repeat is a second process, so Accepted == 1
	// is "no duplicate at Digipoort").
	Accepted int `json:"accepted"`
	// Duplicates counts re-deliveries answered with the original kenmerk (default
	// mode only; the simulator hides them from the client, not from this count).
	Duplicates int `json:"duplicates"`
	// Repeated counts deliveries that started another process although one with the
	// same aanleverkenmerk, berichtsoort and identity existed (realistic mode, where
	// Digipoort does not recognise a repeat): each is a duplicate at Digipoort.
	Repeated int `json:"repeated"`
	// Received = Accepted + Duplicates: deliveries that got a kenmerk.
	Received int `json:"received"`
	// Kenmerken lists the kenmerk of every process started, in order; Processes
	// describes each of them.
	Kenmerken []string      `json:"kenmerken"`
	Processes []ProcessInfo `json:"processes"`
	Scenario  Scenario      `json:"scenario,omitempty"`
}

// ProcessInfo describes one process (one kenmerk) of an aanleverkenmerk, as it
// stands when asked.
type ProcessInfo struct {
	Kenmerk        string    `json:"kenmerk"`
	Berichtsoort   string    `json:"berichtsoort"`
	Belanghebbende string    `json:"belanghebbende"` // type:nummer, e.g. Fi:001000044B37
	Aangeleverd    time.Time `json:"aangeleverd"`
	Scenario       Scenario  `json:"scenario"`
	// Realistic: delivered in realistic mode (timings and pickup of that mode).
	Realistic bool `json:"realistic"`
	// Repeat: a repeated delivery that Digipoort did not recognise started this
	// process (see DeliveryStats.Repeated).
	Repeat bool `json:"repeat"`
	// Status is the latest status whose time has come; Ended says the flow is over
	// (at FlowEnds, when its reply is ready for pickup).
	Status   string    `json:"status"`
	Ended    bool      `json:"ended"`
	FlowEnds time.Time `json:"flow_ends"`
	// Inhoud is the berichtInhoud the delivery carried and Bijlagen its
	// berichtBijlagen, in the order sent (empty: none).
	Inhoud   Content   `json:"inhoud"`
	Bijlagen []Content `json:"bijlagen"`
}

func (p *process) info(now time.Time) ProcessInfo {
	in := ProcessInfo{
		Kenmerk: p.kenmerk, Berichtsoort: p.req.Berichtsoort,
		Belanghebbende: p.req.IdentiteitBelanghebbende.Type + ":" + p.req.IdentiteitBelanghebbende.Nummer,
		Aangeleverd:    p.aangeleverd, Scenario: p.scenario, Realistic: p.realistic, Repeat: p.repeat, FlowEnds: p.endTime(),
		Inhoud: p.inhoud, Bijlagen: append([]Content{}, p.bijlagen...),
	}
	for i, st := range p.steps {
		if !p.statusTime(i).After(now) {
			in.Status = st.Code
		}
	}
	in.Ended = !in.FlowEnds.After(now)
	return in
}

// Start runs a simulator until ctx ends or Close is called. It creates the
// development PKI in opts.Dir on first use.
func Start(ctx context.Context, opts Options) (*Sim, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.ControlAddr == "" {
		opts.ControlAddr = "127.0.0.1:0"
	}
	if opts.Dir == "" {
		opts.Dir = DefaultDir()
	}
	if abs, err := filepath.Abs(opts.Dir); err == nil {
		opts.Dir = abs
	}
	if opts.StepInterval <= 0 {
		opts.StepInterval = time.Second
	}
	if opts.Instant {
		opts.StepInterval = 0
	}
	mode, err := opts.Mode.normalize()
	if err != nil {
		return nil, fmt.Errorf("simulator: mode: %w", err)
	}
	opts.Mode = mode
	if opts.OverloadAttempts <= 0 {
		opts.OverloadAttempts = 2
	}
	if opts.OverloadWindow <= 0 {
		opts.OverloadWindow = 3 * opts.StepInterval
		if opts.OverloadWindow < 50*time.Millisecond {
			opts.OverloadWindow = 50 * time.Millisecond
		}
	}
	if opts.RequestTolerance <= 0 {
		opts.RequestTolerance = 5 * time.Minute
	}
	if opts.ResponseAlgorithm == "" {
		opts.ResponseAlgorithm = wsse.RSASHA1
	}
	if opts.Ontvanger == (wire.Identiteit{}) {
		opts.Ontvanger = wire.Identiteit{Nummer: BelastingdienstOIN, Type: "OIN"}
	}
	if len(opts.Berichtsoorten) == 0 {
		opts.Berichtsoorten = []string{"Aangifte_LH", "ICP", "OBSUP", "Omzetbelasting"}
	}
	s := &Sim{opts: opts, closing: make(chan struct{}), known: map[string]bool{}, mode: mode}
	s.log = opts.Logger
	if s.log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		s.log = l
	}
	s.resetLocked()

	paths, created, err := devcerts.Ensure(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("simulator: development certificates in %s: %w", opts.Dir, err)
	}
	s.paths = paths
	if created {
		s.log.WithField("dir", opts.Dir).Info("created development CA and certificates")
	}
	if opts.Persist {
		if err := s.load(); err != nil {
			return nil, fmt.Errorf("simulator: %w", err)
		}
		s.saveCh = make(chan struct{}, 1)
	}
	signer, err := devcerts.LoadIssued(paths.SigningCert, paths.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("simulator: signing certificate: %w", err)
	}
	s.signer = wsse.Credentials{Certificate: signer.Cert, Key: signer.Key}
	if err := s.loadKnownClients(); err != nil {
		return nil, err
	}
	serverCert, err := tls.LoadX509KeyPair(paths.ServerCert, paths.ServerKey)
	if err != nil {
		return nil, fmt.Errorf("simulator: server certificate: %w", err)
	}
	if opts.ClientCAs == nil {
		if opts.ClientCAs, err = digipoort.LoadCertPool(paths.CA); err != nil {
			return nil, fmt.Errorf("simulator: client CA %s: %w", paths.CA, err)
		}
		s.opts.ClientCAs = opts.ClientCAs
	}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("simulator: listen on %s: %w", opts.Addr, err)
	}
	cln, err := net.Listen("tcp", opts.ControlAddr)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("simulator: control API: listen on %s: %w", opts.ControlAddr, err)
	}
	s.url = "https://" + ln.Addr().String()
	s.ctlURL = "http://" + cln.Addr().String()

	mux := http.NewServeMux()
	for _, svc := range []wire.Service{wire.Aanlever, wire.Statusinformatie, wire.Ophaal} {
		mux.HandleFunc(svc.Path, s.serveSOAP(svc))
	}
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 30 * time.Second,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{serverCert},
			// Like Digipoort, TLS takes only a client certificate from a trusted CA
			// (PKIoverheid there, ClientCAs here); whether Digipoort knows that
			// certificate is decided later (unknown: the delivery ends in status 210).
			ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs:  opts.ClientCAs,
		},
		ErrorLog: log.New(logWriter{s.log}, "", 0),
	}
	s.ctl = &http.Server{Handler: s.controlHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(logWriter{s.log}, "", 0)}
	s.wg.Add(2)
	if s.saveCh != nil {
		s.wg.Add(1)
		go s.saver()
	}
	go func() { defer s.wg.Done(); _ = s.srv.ServeTLS(ln, "", "") }()
	go func() { defer s.wg.Done(); _ = s.ctl.Serve(cln) }()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.closing:
		}
	}()
	s.log.WithFields(logrus.Fields{"url": s.url, "control": s.ctlURL, "dir": opts.Dir}).Info("Digipoort simulator started")
	return s, nil
}

func (s *Sim) loadKnownClients() error {
	client, err := devcerts.LoadIssued(s.paths.ClientCert, s.paths.ClientKey)
	if err != nil {
		return fmt.Errorf("simulator: client certificate: %w", err)
	}
	s.known[client.Fingerprint()] = true
	for _, c := range s.opts.KnownClients {
		s.known[devcerts.Fingerprint(c)] = true
	}
	files, _ := filepath.Glob(filepath.Join(s.paths.Dir, "known-clients", "*.pem"))
	for _, f := range files {
		certs, err := digipoort.LoadCertificates(f)
		if err != nil {
			return fmt.Errorf("simulator: known client %s: %w", f, err)
		}
		for _, c := range certs {
			s.known[devcerts.Fingerprint(c)] = true
		}
	}
	return nil
}

// Close stops the simulator; requests hanging because of an injected timeout are
// broken off.
func (s *Sim) Close() error {
	s.closeOne.Do(func() {
		close(s.closing)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err1 := s.srv.Shutdown(ctx)
		err2 := s.ctl.Shutdown(ctx)
		if err1 != nil {
			s.srv.Close()
		}
		if err2 != nil {
			s.ctl.Close()
		}
		s.wg.Wait()
		var err3 error
		if s.saveCh != nil {
			err3 = s.save() // what the saver had not written yet
		}
		s.closeErr = errors.Join(err1, err2, err3)
		s.log.Info("Digipoort simulator stopped")
	})
	return s.closeErr
}

// Done is closed when the simulator stops.
func (s *Sim) Done() <-chan struct{} { return s.closing }

// URL is the base URL of the WUS services (KOERIER_DIGIPOORT_URL).
func (s *Sim) URL() string { return s.url }

// ControlURL is the base URL of the control API (endpoints under /sim/).
func (s *Sim) ControlURL() string { return s.ctlURL }

// Paths are the files of the development PKI.
func (s *Sim) Paths() devcerts.Paths { return s.paths }

// Options returns the effective options.
func (s *Sim) Options() Options { return s.opts }

// ClientConfig is a digipoort.Config for a client the simulator knows (the PEM
// client certificate), trusting the simulator's server CA and signing certificate.
func (s *Sim) ClientConfig() (digipoort.Config, error) {
	cert, err := digipoort.LoadClientCertificatePEM(s.paths.ClientCert, s.paths.ClientKey)
	if err != nil {
		return digipoort.Config{}, err
	}
	pool, err := digipoort.LoadCertPool(s.paths.CA)
	if err != nil {
		return digipoort.Config{}, err
	}
	signing, err := digipoort.LoadCertificates(s.paths.SigningCert)
	if err != nil {
		return digipoort.Config{}, err
	}
	return digipoort.Config{URL: s.url, ClientCertificate: cert, ServerCAs: pool, SigningCertificates: signing}, nil
}

// Env returns the environment a client needs to talk to this simulator
// (digipoort.ConfigFromEnv), as NAME=value lines, PEM client certificate.
func (s *Sim) Env() []string {
	return []string{
		digipoort.EnvURL + "=" + s.url,
		digipoort.EnvClientCert + "=" + s.paths.ClientCert,
		digipoort.EnvClientKey + "=" + s.paths.ClientKey,
		digipoort.EnvCA + "=" + s.paths.CA,
		digipoort.EnvSigningCert + "=" + s.paths.SigningCert,
	}
}

// EnvPFX is Env with the PFX client certificate instead of the PEM files.
func (s *Sim) EnvPFX() []string {
	return []string{
		digipoort.EnvURL + "=" + s.url,
		digipoort.EnvClientPFX + "=" + s.paths.ClientPFX,
		digipoort.EnvClientPFXPassword + "=" + s.paths.ClientPFXPassword,
		digipoort.EnvCA + "=" + s.paths.CA,
		digipoort.EnvSigningCert + "=" + s.paths.SigningCert,
	}
}

// Deliveries returns the counts for one aanleverkenmerk (zero counts if unseen).
func (s *Sim) Deliveries(aanleverkenmerk string) DeliveryStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.stats[aanleverkenmerk]; st != nil {
		return s.statsCopyLocked(st, time.Now())
	}
	return DeliveryStats{Aanleverkenmerk: aanleverkenmerk, Kenmerken: []string{}, Processes: []ProcessInfo{}}
}

func (s *Sim) statsCopyLocked(st *DeliveryStats, now time.Time) DeliveryStats {
	c := *st
	c.Kenmerken = append([]string(nil), st.Kenmerken...)
	c.Processes = make([]ProcessInfo, 0, len(st.Kenmerken))
	for _, k := range st.Kenmerken {
		if p := s.byKenmerk[k]; p != nil {
			c.Processes = append(c.Processes, p.info(now))
		}
	}
	return c
}

// AllDeliveries returns the counts of every aanleverkenmerk seen.
func (s *Sim) AllDeliveries() map[string]DeliveryStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]DeliveryStats, len(s.stats))
	now := time.Now()
	for k, st := range s.stats {
		out[k] = s.statsCopyLocked(st, now)
	}
	return out
}

// Calls returns how many SOAP requests an operation received (faulted ones
// included).
func (s *Sim) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// AllCalls returns the request count of every operation called.
func (s *Sim) AllCalls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// SetScenario chooses the scenario of an aanleverkenmerk in advance (matched
// case-insensitively, exactly); it beats the name rules.
func (s *Sim) SetScenario(aanleverkenmerk string, sc Scenario) error {
	if _, err := ParseScenario(string(sc)); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.overrides[strings.ToLower(aanleverkenmerk)] = sc
	return nil
}

// ClearScenario removes a scenario set with SetScenario.
func (s *Sim) ClearScenario(aanleverkenmerk string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.overrides, strings.ToLower(aanleverkenmerk))
}

func (s *Sim) scenarioLocked(aanleverkenmerk string) Scenario {
	if sc, ok := s.overrides[strings.ToLower(aanleverkenmerk)]; ok {
		return sc
	}
	return ScenarioFor(aanleverkenmerk)
}

// Pickup is a message put ready for pickup through the control API: typically one
// that answers no delivery (an unknown kenmerk), to test unknown replies (ONB).
type Pickup struct {
	Kenmerk         string             `json:"kenmerk,omitempty"` // default: a new UUID
	Berichtsoort    string             `json:"berichtsoort"`
	Aanleverkenmerk string             `json:"aanleverkenmerk,omitempty"`
	Identiteit      digipoort.Identity `json:"identiteit"`
	Rol             string             `json:"rol,omitempty"`       // default Bedrijf
	MimeType        string             `json:"mime_type,omitempty"` // default text/xml
	Bestandsnaam    string             `json:"bestandsnaam,omitempty"`
	Inhoud          []byte             `json:"inhoud,omitempty"` // base64 in JSON
	// Tijdstempel is the message time (default now); it drives the vanaf/tot
	// windows and when the message becomes visible.
	Tijdstempel time.Time `json:"tijdstempel,omitzero"`
}

// AddPickup puts a message ready for pickup for every known client and returns its
// kenmerk and berichtkenmerk.
func (s *Sim) AddPickup(p Pickup) (kenmerk, berichtkenmerk string, err error) {
	if p.Berichtsoort == "" || p.Identiteit.Nummer == "" || p.Identiteit.Type == "" {
		return "", "", errors.New("a pickup message needs berichtsoort and identiteit (nummer, type)")
	}
	if p.Kenmerk == "" {
		p.Kenmerk = newUUID()
	}
	if p.Rol == "" {
		p.Rol = "Bedrijf"
	}
	if p.MimeType == "" {
		p.MimeType = "text/xml"
	}
	if p.Tijdstempel.IsZero() {
		p.Tijdstempel = time.Now()
	}
	p.Tijdstempel = p.Tijdstempel.Truncate(time.Millisecond)
	if p.Bestandsnaam == "" {
		p.Bestandsnaam = p.Berichtsoort + ".xml"
	}
	if len(p.Inhoud) == 0 {
		p.Inhoud = []byte(`<?xml version="1.0" encoding="UTF-8"?><simulatorBericht kenmerk="` + xmlAttr(p.Kenmerk) + `"/>`)
	}
	pk := &pickup{tijd: p.Tijdstempel, BerichtResultaat: wire.BerichtResultaat{
		Kenmerk: p.Kenmerk, Berichtsoort: p.Berichtsoort, Berichtkenmerk: newUUID(), Aanleverkenmerk: p.Aanleverkenmerk,
		TijdstempelAangeleverd:   wire.Time{Time: p.Tijdstempel},
		IdentiteitBelanghebbende: wire.Identiteit{Nummer: p.Identiteit.Nummer, Type: p.Identiteit.Type},
		RolBelanghebbende:        p.Rol,
		BerichtInhoud:            wire.BerichtInhoud{MimeType: p.MimeType, Bestandsnaam: p.Bestandsnaam, Inhoud: b64(p.Inhoud)},
	}}
	s.mu.Lock()
	s.pickups = append(s.pickups, pk)
	s.mu.Unlock()
	s.changed()
	return pk.Kenmerk, pk.Berichtkenmerk, nil
}

// Reset forgets every delivery, pickup message, count, scenario and fault (also the
// kept ones, with Options.Persist); it keeps the mode (see SetMode).
func (s *Sim) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
	s.changed()
}

func (s *Sim) resetLocked() {
	seed := s.opts.Seed
	if seed == 0 {
		seed = 1
	}
	s.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s.calls = map[string]int{}
	s.stats = map[string]*DeliveryStats{}
	s.byKey = map[string]*process{}
	s.byKenmerk = map[string]*process{}
	s.order = nil
	s.pickups = nil
	s.overrides = map[string]Scenario{}
	s.faults = map[string]*FaultConfig{}
	s.overload = map[string]*overloadState{}
	s.fetched = map[string]bool{}
	s.injected = map[string][]InjectedStatus{}
}

// logWriter sends net/http's server log (TLS handshake errors and the like) to the
// simulator's logger at debug level.
type logWriter struct{ l logrus.FieldLogger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Debug(strings.TrimSpace(string(p)))
	return len(p), nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// InjectedStatus is an extra status the simulator reports for a delivery after its
// flow, for tests of what a client does with statuses it does not expect: a code
// Logius never published, or a status that names another kenmerk than the one asked
// for.
type InjectedStatus struct {
	Code        string `json:"code"`
	Description string `json:"description,omitempty"`
	// ForKenmerk makes the status name this kenmerk instead of the delivery's own.
	ForKenmerk string `json:"for_kenmerk,omitempty"`
}

// InjectStatus adds a status to the statuses of the delivery with this
// aanleverkenmerk (made before or after the call), one step after its flow's last.
func (s *Sim) InjectStatus(aanleverkenmerk string, st InjectedStatus) error {
	if st.Code == "" {
		return errors.New("an injected status needs a code")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := strings.ToLower(aanleverkenmerk)
	s.injected[k] = append(s.injected[k], st)
	s.changed()
	return nil
}
