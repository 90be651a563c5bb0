package digipoort

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"koerier/digipoort/devcerts"
	"koerier/digipoort/internal/wire"
	"koerier/digipoort/wsse"
)

// fakeDigipoort is a mutual-TLS server with the development PKI's server certificate
// that verifies each request's WS-Security signature and answers with a response
// signed by the development signing key, like Digipoort. Unlike the simulator it
// serves any path, so tests can check where requests go, and lets a test shape the
// answer (see respond).
type fakeDigipoort struct {
	srv    *httptest.Server
	signer wsse.Credentials
	// respond, when set, answers instead of the default signed response.
	respond func(w http.ResponseWriter, req seenRequest)

	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	Path       string
	Op         string
	Addressing wsse.Addressing
	TLSClient  *x509.Certificate // the certificate of the TLS handshake
	Signer     *x509.Certificate // the certificate in the request's BinarySecurityToken
}

func startFake(t testing.TB, opts ...func(*tls.Config)) *fakeDigipoort {
	t.Helper()
	p := testPaths(t)
	server, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	signing, err := devcerts.LoadIssued(p.SigningCert, p.SigningKey)
	if err != nil {
		t.Fatal(err)
	}
	cas, err := LoadCertPool(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDigipoort{signer: wsse.Credentials{Certificate: signing.Cert, Key: signing.Key}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: cas,
		MinVersion: tls.VersionTLS12}
	for _, o := range opts {
		o(f.srv.TLS)
	}
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes that tests make fail on purpose
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the server's base URL (https://127.0.0.1:port).
func (f *fakeDigipoort) URL() string { return f.srv.URL }

func (f *fakeDigipoort) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

func (f *fakeDigipoort) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m, err := wsse.Parse(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// The time check is off: tests move the client's clock.
	v, err := m.Verify(wsse.VerifyOptions{Trust: func(*x509.Certificate) error { return nil }, Tolerance: -1})
	if err != nil {
		http.Error(w, "request signature: "+err.Error(), http.StatusBadRequest)
		return
	}
	op := m.Addressing.Action[strings.LastIndexByte(m.Addressing.Action, '/')+1:]
	req := seenRequest{Path: r.URL.Path, Op: strings.TrimSuffix(op, "Request"), Addressing: m.Addressing, Signer: v.Signer}
	if len(r.TLS.PeerCertificates) > 0 {
		req.TLSClient = r.TLS.PeerCertificates[0]
	}
	f.mu.Lock()
	f.seen = append(f.seen, req)
	f.mu.Unlock()
	if f.respond != nil {
		f.respond(w, req)
		return
	}
	env, err := f.signed(req.Op, okPayload(req.Op, 0), wsse.Addressing{RelatesTo: req.Addressing.MessageID})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(env)
}

// signed builds a response signed like Digipoort's. addr.Action defaults to the
// operation's response action; To and MessageID are filled in.
func (f *fakeDigipoort) signed(op string, payload any, addr wsse.Addressing) ([]byte, error) {
	return signedResponse(f.signer, op, payload, addr)
}

func signedResponse(signer wsse.Credentials, op string, payload any, addr wsse.Addressing) ([]byte, error) {
	svc, _ := wire.ServiceOf(op)
	if addr.Action == "" {
		addr.Action = wire.ResponseAction(svc, op)
	}
	if addr.Action == "-" {
		addr.Action = ""
	}
	addr.To = wsse.AnonymousAddress
	addr.MessageID = "urn:uuid:response-1"
	el, err := marshalElement(payload)
	if err != nil {
		return nil, err
	}
	return wsse.SignedEnvelope(el, addr, signer, wsse.SignOptions{Layout: wsse.LayoutDigipoort, TTL: 10 * time.Minute})
}

// okPayload is a plausible answer to op; pickups carry one message of contentBytes
// bytes (at least a few).
func okPayload(op string, contentBytes int) any {
	now := wire.Time{Time: time.Now()}
	id := wire.Identiteit{Nummer: "001000044B37", Type: "Fi"}
	switch op {
	case wire.OpAanleveren:
		return &wire.AanleverResponse{Kenmerk: "kenmerk-1", Berichtsoort: "Omzetbelasting", TijdstempelAangeleverd: now,
			IdentiteitBelanghebbende: id, RolBelanghebbende: "Bedrijf"}
	case wire.OpGetStatussenProces, wire.OpGetNieuweStatussenProces:
		r := &wire.StatusResponse{XMLName: wire.Name(op + "Response")}
		r.Return.XMLName = wire.Name(op + "Return")
		r.Return.Resultaat = []wire.StatusResultaat{{Kenmerk: "kenmerk-1", IdentiteitBelanghebbende: id, Statuscode: "100",
			TijdstempelStatus: now, Statusomschrijving: "Aanleveren gelukt"}}
		return r
	case wire.OpGetBerichtsoorten:
		r := &wire.GetBerichtsoortenResponse{}
		r.Return.Berichtsoort = []string{"Omzetbelasting"}
		return r
	case wire.OpGetProcessen:
		return &wire.GetProcessenResponse{}
	case wire.OpGetBerichtenLijst:
		return &wire.GetBerichtenLijstResponse{}
	default:
		return pickupPayload(op, 1, contentBytes)
	}
}

// pickupPayload is a pickup answer with n messages of contentBytes bytes each.
func pickupPayload(op string, n, contentBytes int) *wire.BerichtenResponse {
	r := &wire.BerichtenResponse{XMLName: wire.Name(op + "Response")}
	r.Return.XMLName = wire.Name(op + "Return")
	content := bytes.Repeat([]byte("<rubriek>1234567</rubriek>\n"), contentBytes/27+1)[:max(contentBytes, 1)]
	b64 := base64.StdEncoding.EncodeToString(content)
	for i := range n {
		r.Return.Resultaat = append(r.Return.Resultaat, wire.BerichtResultaat{
			Kenmerk: "kenmerk-1", Berichtsoort: "Omzetbelasting", Berichtkenmerk: "bericht-" + string(rune('a'+i)),
			TijdstempelAangeleverd: wire.Time{Time: time.Now()}, IdentiteitBelanghebbende: wire.Identiteit{Nummer: "001000044B37", Type: "Fi"},
			RolBelanghebbende: "Bedrijf", BerichtInhoud: wire.BerichtInhoud{MimeType: "text/xml", Bestandsnaam: "reply.xml", Inhoud: b64},
		})
	}
	return r
}

// fakeConfig is a configuration for a client of f with the development PKI.
func fakeConfig(t testing.TB, f *fakeDigipoort) Config {
	t.Helper()
	cfg := testConfig(t)
	cfg.URL = f.URL()
	cfg.HTTPTimeout = 30 * time.Second
	return cfg
}
