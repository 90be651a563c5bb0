package digipoort

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"koerier/digipoort/devcerts"
	"koerier/digipoort/internal/testfixtures"
	"koerier/digipoort/internal/wire"
	"koerier/digipoort/wsse"
)

// fixtureClient is a client whose only trusted signer is the certificate in the
// fixture's BinarySecurityToken.
func fixtureClient(t testing.TB, tolerance time.Duration) *Client {
	t.Helper()
	data := testfixtures.Read(t, "fixtures/valid-deliver-response.xml")
	b64 := between(string(data), `wss-wssecurity-secext-1.0.xsd">`, "</wsse:BinarySecurityToken>")
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Client{trust: wsse.TrustCertificatesAt([]*x509.Certificate{cert}), tol: tolerance, now: time.Now}
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	if j := strings.Index(s, end); j >= 0 {
		return s[:j]
	}
	return ""
}

const relaxed = 20 * 365 * 24 * time.Hour

// timeCheckOff is the internal tolerance that skips the timestamp time check
// (Config.InsecureSkipTimestampCheckForTests).
const timeCheckOff time.Duration = -1

// fixtureMessageID is the request MessageID the captured response relates to.
const fixtureMessageID = "urn:uuid:de1dc4f7-98ab-4a03-90a5-e9efd20b1003"

// useTransport makes every identity of c send through rt.
func useTransport(c *Client, rt http.RoundTripper) {
	for _, id := range c.ids {
		id.http.Transport = rt
	}
}

func TestFixtureDeliverResponse(t *testing.T) {
	c := fixtureClient(t, relaxed)
	data := testfixtures.Read(t, "fixtures/valid-deliver-response.xml")
	var resp wire.AanleverResponse
	if err := c.decodeResponse(wire.OpAanleveren, 200, data, fixtureMessageID, &resp, nil); err != nil {
		t.Fatalf("valid fixture: %v", err)
	}
	got, err := deliverResponse(DeliverRequest{Aanleverkenmerk: "Happyflow"}, resp)
	if err != nil {
		t.Fatal(err)
	}
	want := DeliverResponse{
		Kenmerk: "700627b6-383e-4d8d-809f-b066845b36e0", Berichtsoort: "Omzetbelasting", Aanleverkenmerk: "Happyflow",
		Aangeleverd:    time.Date(2021, 3, 7, 11, 37, 39, 702e6, time.UTC),
		Belanghebbende: Identity{Nummer: "001000044B37", Type: "Fi"}, Rol: "Bedrijf",
		Ontvanger: &Identity{Nummer: "00000002003214394002", Type: "OIN"}, AutorisatieAdres: "http://geenausp.nl",
	}
	if fmt.Sprintf("%+v %+v", got, *got.Ontvanger) != fmt.Sprintf("%+v %+v", want, *want.Ontvanger) || !got.Aangeleverd.Equal(want.Aangeleverd) {
		t.Errorf("parsed\n got %+v\nwant %+v", got, want)
	}
	// The response answers another request: refused.
	err = c.decodeResponse(wire.OpAanleveren, 200, data, "urn:uuid:other", &resp, nil)
	if !IsFinal(err) || !strings.Contains(err.Error(), "relates to") {
		t.Errorf("response for another request: %v", err)
	}
	// Expected as the answer to another operation: refused.
	var st wire.StatusResponse
	if err := c.decodeResponse(wire.OpGetStatussenProces, 200, data, fixtureMessageID, &st, nil); !IsFinal(err) {
		t.Errorf("aanleverResponse accepted as getStatussenProces answer: %v", err)
	}
}

func TestFixtureTamperedAndExpired(t *testing.T) {
	var resp wire.AanleverResponse
	tampered := testfixtures.Read(t, "fixtures/tampered-deliver-response.xml")
	err := fixtureClient(t, relaxed).decodeResponse(wire.OpAanleveren, 200, tampered, "", &resp, nil)
	var e *Error
	if !errors.As(err, &e) || e.Kind != Final || !errors.Is(err, wsse.ErrSignature) {
		t.Fatalf("tampered response: %v", err)
	}
	valid := testfixtures.Read(t, "fixtures/valid-deliver-response.xml")
	err = fixtureClient(t, 5*time.Minute).decodeResponse(wire.OpAanleveren, 200, valid, "", &resp, nil)
	if !IsFinal(err) || !errors.Is(err, wsse.ErrTimestamp) {
		t.Fatalf("2021 timestamp under a strict tolerance: %v", err)
	}
	if err := fixtureClient(t, timeCheckOff).decodeResponse(wire.OpAanleveren, 200, valid, fixtureMessageID, &resp, nil); err != nil {
		t.Fatalf("timestamp check disabled: %v", err)
	}
	// Unsigned success response: strip the Security header.
	s := string(valid)
	unsigned := s[:strings.Index(s, "<s:Security")] + s[strings.Index(s, "</s:Security>")+len("</s:Security>"):]
	err = fixtureClient(t, relaxed).decodeResponse(wire.OpAanleveren, 200, []byte(unsigned), "", &resp, nil)
	if !IsFinal(err) || !errors.Is(err, wsse.ErrUnsigned) {
		t.Fatalf("unsigned success response: %v", err)
	}
}

func TestFixtureFaults(t *testing.T) {
	c := fixtureClient(t, relaxed)
	for _, tc := range []struct{ file, op, code string }{
		{"fixtures/fault-deliver-response.xml", wire.OpAanleveren, "ALS100"},
		{"fixtures/fault-newstatus-response.xml", wire.OpGetNieuweStatussenProces, "STS100"},
	} {
		var out wire.StatusResponse
		err := c.decodeResponse(tc.op, 500, testfixtures.Read(t, tc.file), "", &out, nil)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %T %v", tc.file, err, err)
		}
		if e.Foutcode != tc.code || e.Kind != Final || !IsFinal(err) || e.HTTPStatus != 500 ||
			!strings.Contains(e.Foutbeschrijving, "koppelvlakspecificaties") || e.Op != tc.op {
			t.Errorf("%s: %+v", tc.file, e)
		}
		if !strings.Contains(err.Error(), tc.code) {
			t.Errorf("message lacks the foutcode: %v", err)
		}
	}
}

func TestClassifyFoutcode(t *testing.T) {
	for _, c := range []struct {
		code, text string
		want       Kind
	}{
		{"ALS100", "", Final}, {"ALS110", "", Final}, {"ALS170", "", Final}, {"STS100", "", Final},
		{"ALS400", "technische fout", Transient}, {"STS400", "", Transient}, {"OPS400", "", Transient},
		{"ALS100", "Digipoort is overbelast", Transient}, {"XYZ999", "", Final}, {"ALS200", "zwaarbelast", Transient},
	} {
		if got, msg := ClassifyFoutcode(c.code, c.text); got != c.want || msg == "" {
			t.Errorf("%s %q: %s %q", c.code, c.text, got, msg)
		}
	}
	if e := faultError("aanleveren", 500, "Server", "internal error", "", ""); e.Kind != Transient {
		t.Errorf("server fault without detail: %v", e)
	}
	if e := faultError("aanleveren", 500, "Client", "bad", "", ""); e.Kind != Final {
		t.Errorf("client fault without detail: %v", e)
	}
}

func TestDecodeResponseHTTPErrors(t *testing.T) {
	c := fixtureClient(t, relaxed)
	var out wire.AanleverResponse
	for _, tc := range []struct {
		status int
		body   string
		want   Kind
	}{
		{502, "<html>Bad Gateway</html>", Transient},
		{503, "", Transient},
		{500, "not xml", Transient},
		{429, "", Transient},
		{404, "Not Found", Final},
		{200, "<html/>", Final},
		{200, "", Final},
	} {
		err := c.decodeResponse(wire.OpAanleveren, tc.status, []byte(tc.body), "", &out, nil)
		var e *Error
		if !errors.As(err, &e) || e.Kind != tc.want || e.HTTPStatus != tc.status {
			t.Errorf("HTTP %d %q: %v", tc.status, tc.body, err)
		}
	}
}

// testPKI is a throw-away client certificate, CA and signer for internal tests.
var (
	pkiOnce sync.Once
	pki     devcerts.Paths
	pkiErr  error
)

func testPaths(t testing.TB) devcerts.Paths {
	t.Helper()
	pkiOnce.Do(func() {
		dir, err := os.MkdirTemp("", "koerier-digipoort-test-")
		if err != nil {
			pkiErr = err
			return
		}
		pki, _, pkiErr = devcerts.Ensure(dir)
	})
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pki
}

// SharedPKIDir gives the external tests of this directory the same development PKI.
func SharedPKIDir(t testing.TB) string { return testPaths(t).Dir }

func TestMain(m *testing.M) {
	code := m.Run()
	if pki.Dir != "" {
		os.RemoveAll(pki.Dir)
	}
	os.Exit(code)
}

func testConfig(t testing.TB) Config {
	p := testPaths(t)
	cfg, err := ConfigFromLookup(lookup(map[string]string{
		EnvURL: "https://127.0.0.1:1", EnvClientCert: p.ClientCert, EnvClientKey: p.ClientKey,
		EnvCA: p.CA, EnvSigningCert: p.SigningCert,
	}))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// recorder captures the HTTP requests a client sends and answers each with a fault.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	path, contentType, soapAction string
	body                          []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{req.URL.Path, req.Header.Get("Content-Type"), req.Header.Get("SOAPAction"), b})
	r.mu.Unlock()
	fault, _ := wsse.FaultEnvelope(wsse.Addressing{}, wsse.Fault{Code: "soapenv:Client", String: "Algemene fout",
		Detail: "aanleverFault", Foutcode: "ALS100", Foutbeschrijving: "recorded"}, wire.NS)
	return &http.Response{StatusCode: 500, Body: io.NopCloser(bytes.NewReader(fault)), Header: http.Header{}}, nil
}

// TestRequestsValidateAgainstXSD sends every request type through a client whose
// transport records the bytes, checks envelope, headers and signature, and validates
// each Body payload with xmllint against Logius' koppelvlak XSD.
func TestRequestsValidateAgainstXSD(t *testing.T) {
	xsd := filepath.Join(testfixtures.Dir(t), "spec", "digipoort-koppelvlak-1.2.xsd")
	xmllint := testfixtures.XMLLint(t)
	cfg := testConfig(t)
	cfg.AutorisatieAdres = "http://geenausp.nl"
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	useTransport(c, rec)
	ctx := context.Background()
	xbrl := testfixtures.Read(t, "fixtures/omzetbelasting-2021.xbrl")
	id := Identity{Nummer: "001000044B37", Type: "Fi"}
	from, to := time.Now().AddDate(0, 0, -30), time.Now()
	calls := []struct {
		op string
		do func() error
	}{
		{"aanleveren", func() error {
			_, err := c.Deliver(ctx, DeliverRequest{Berichtsoort: "Omzetbelasting", Aanleverkenmerk: "2026000123", Belanghebbende: id,
				Rol: "Bedrijf", MimeType: "text/xml", Bestandsnaam: "Omzetbelasting.xbrl", Inhoud: xbrl})
			return err
		}},
		{"aanleveren", func() error {
			_, err := c.Deliver(ctx, DeliverRequest{Berichtsoort: "Omzetbelasting", Belanghebbende: id, Rol: "Intermediair",
				Ontvanger: &Identity{Nummer: "00000002003214394002", Type: "OIN"}, MimeType: "application/xml",
				Bestandsnaam: "x.xbrl", Inhoud: []byte("<x/>")})
			return err
		}},
		{"aanleveren", func() error {
			// Attachments go in berichtBijlagen, between berichtInhoud and autorisatieAdres.
			_, err := c.Deliver(ctx, DeliverRequest{Berichtsoort: "Omzetbelasting", Aanleverkenmerk: "2026000124", Belanghebbende: id,
				Rol: "Bedrijf", MimeType: "text/xml", Bestandsnaam: "Omzetbelasting.xbrl", Inhoud: xbrl, Bijlagen: []Bijlage{
					{MimeType: "application/pdf", Bestandsnaam: "toelichting.pdf", Inhoud: []byte("%PDF-1.4\n\x00\xff\xfe")},
					{MimeType: "text/plain", Bestandsnaam: "notities.txt", Inhoud: []byte("tweede bijlage")}}})
			return err
		}},
		{"getStatussenProces", func() error { _, err := c.Statuses(ctx, "700627b6-383e-4d8d-809f-b066845b36e0", from, to); return err }},
		{"getStatussenProces", func() error {
			_, err := c.Statuses(ctx, "700627b6-383e-4d8d-809f-b066845b36e0", time.Time{}, time.Time{})
			return err
		}},
		{"getNieuweStatussenProces", func() error { _, err := c.NewStatuses(ctx, "700627b6-383e-4d8d-809f-b066845b36e0"); return err }},
		{"getBerichtsoorten", func() error { _, err := c.Berichtsoorten(ctx, id); return err }},
		{"getProcessen", func() error { _, err := c.Processen(ctx, "Omzetbelasting", id); return err }},
		{"getBerichtenLijst", func() error { _, err := c.BerichtenLijst(ctx, from, to); return err }},
		{"getBerichtenKenmerk", func() error {
			_, err := c.BerichtenKenmerk(ctx, "700627b6-383e-4d8d-809f-b066845b36e0", from, to)
			return err
		}},
		{"getBerichten", func() error { _, err := c.Berichten(ctx, id, "Omzetbelasting", from, to); return err }},
		{"getBerichten", func() error { _, err := c.Berichten(ctx, id, "", time.Time{}, time.Time{}); return err }},
	}
	for _, call := range calls {
		if err := call.do(); !IsFinal(err) || !strings.Contains(err.Error(), "ALS100") {
			t.Fatalf("%s: expected the recorded fault, got %v", call.op, err)
		}
	}
	if len(rec.reqs) != len(calls) {
		t.Fatalf("recorded %d requests for %d calls", len(rec.reqs), len(calls))
	}
	dir := t.TempDir()
	var files []string
	trust := wsse.TrustCertificates([]*x509.Certificate{cfg.ClientCertificate.Leaf})
	for i, r := range rec.reqs {
		op := calls[i].op
		svc, _ := wire.ServiceOf(op)
		if r.path != svc.Path || r.contentType != "text/xml; charset=utf-8" || r.soapAction != `"`+wire.RequestAction(svc, op)+`"` {
			t.Errorf("%s: path %q content-type %q SOAPAction %q", op, r.path, r.contentType, r.soapAction)
		}
		m, err := wsse.Parse(r.body)
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		v, err := m.Verify(wsse.VerifyOptions{Trust: trust, Tolerance: time.Minute})
		if err != nil {
			t.Fatalf("%s: request signature: %v", op, err)
		}
		if len(v.SignedIDs) != 6 { // Body, Timestamp, Action, MessageID, To, ReplyTo
			t.Errorf("%s: signed %v", op, v.SignedIDs)
		}
		a := m.Addressing
		if a.To != "https://127.0.0.1:1"+svc.Path || a.Action != wire.RequestAction(svc, op) || !strings.HasPrefix(a.MessageID, "urn:uuid:") ||
			a.ReplyTo != wsse.AnonymousAddress {
			t.Errorf("%s: addressing %+v", op, a)
		}
		x, err := m.PayloadXML()
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(x, []byte("<bijlage>")); (i == 2) != (n == 2) || (i == 2) != bytes.Contains(x, []byte("<berichtBijlagen>")) {
			t.Errorf("%s %d: %d bijlagen in the payload (want 2 in the third request only)", op, i, n)
		}
		f := filepath.Join(dir, fmt.Sprintf("%02d-%s.xml", i, op))
		if err := os.WriteFile(f, x, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	out, err := exec.Command(xmllint, append([]string{"--noout", "--schema", xsd}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("requests do not validate against %s:\n%s", xsd, out)
	}
	for _, f := range files {
		if !bytes.Contains(out, []byte(f+" validates")) {
			t.Errorf("xmllint did not report %s as valid:\n%s", f, out)
		}
	}
	// And the check can fail: an element out of XSD order does not validate.
	bad := filepath.Join(dir, "bad.xml")
	os.WriteFile(bad, []byte(`<getProcessenRequest xmlns="`+wire.NS+`">`+
		`<identiteitBelanghebbende><nummer>1</nummer><type>Fi</type></identiteitBelanghebbende>`+
		`<berichtsoort>x</berichtsoort></getProcessenRequest>`), 0o600)
	if out, err := exec.Command(xmllint, "--noout", "--schema", xsd, bad).CombinedOutput(); err == nil {
		t.Fatalf("xmllint accepted an invalid request:\n%s", out)
	}
}

func TestFieldLimits(t *testing.T) {
	c, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	useTransport(c, rec)
	ctx := context.Background()
	ok := DeliverRequest{Berichtsoort: "Omzetbelasting", Aanleverkenmerk: "2026000123", Belanghebbende: Identity{Nummer: "001000044B37", Type: "Fi"},
		Rol: "Bedrijf", MimeType: "text/xml", Bestandsnaam: "a.xbrl", Inhoud: []byte("x")}
	n := func(k int) string { return strings.Repeat("é", k) } // characters, not bytes
	cases := map[string]func(r *DeliverRequest){
		"aanleverkenmerk": func(r *DeliverRequest) { r.Aanleverkenmerk = n(41) },
		"berichtsoort":    func(r *DeliverRequest) { r.Berichtsoort = n(81) },
		"bestandsnaam":    func(r *DeliverRequest) { r.Bestandsnaam = n(81) },
		"nummer":          func(r *DeliverRequest) { r.Belanghebbende.Nummer = n(36) },
		"type":            func(r *DeliverRequest) { r.Belanghebbende.Type = n(21) },
		"rolBelanghebbende": func(r *DeliverRequest) {
			r.Rol = n(41)
		},
		"identiteitOntvanger": func(r *DeliverRequest) { r.Ontvanger = &Identity{Nummer: n(36), Type: "OIN"} },
		"inhoud":              func(r *DeliverRequest) { r.Inhoud = make([]byte, MaxInhoud+1) },
		"berichtsoort is empty": func(r *DeliverRequest) {
			r.Berichtsoort = ""
		},
		"cannot be sent in XML": func(r *DeliverRequest) { r.Bestandsnaam = "a\x00b" },
	}
	for want, mutate := range cases {
		r := ok
		mutate(&r)
		_, err := c.Deliver(ctx, r)
		var e *Error
		if !errors.As(err, &e) || e.Kind != Final || !strings.Contains(e.Msg, want) || !strings.Contains(e.Msg, "field limits") {
			t.Errorf("%s: %v", want, err)
		}
	}
	// At the limits exactly: accepted (and sent).
	r := ok
	r.Aanleverkenmerk, r.Berichtsoort, r.Bestandsnaam, r.Rol = n(40), n(80), n(80), n(40)
	r.Belanghebbende = Identity{Nummer: n(35), Type: n(20)}
	if _, err := c.Deliver(ctx, r); err == nil || strings.Contains(err.Error(), "field limits") {
		t.Errorf("values at the limits: %v", err)
	}
	if _, err := c.Statuses(ctx, n(41), time.Time{}, time.Time{}); !IsFinal(err) || !strings.Contains(err.Error(), "kenmerk is 41") {
		t.Errorf("kenmerk 41: %v", err)
	}
	if len(rec.reqs) != 1 {
		t.Errorf("%d requests were sent; only the one within the limits should have been", len(rec.reqs))
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	p := testPaths(t)
	_, err := ConfigFromLookup(lookup(map[string]string{}))
	if err == nil {
		t.Fatal("empty environment accepted")
	}
	for _, v := range []string{EnvURL, EnvClientCert, EnvClientPFX, EnvCA, EnvSigningCert} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error does not name %s: %v", v, err)
		}
	}
	base := map[string]string{EnvURL: "https://x.example", EnvClientCert: p.ClientCert, EnvClientKey: p.ClientKey, EnvCA: p.CA, EnvSigningCert: p.SigningCert}
	for _, tc := range []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{EnvURL: "http://x.example"}, EnvURL},
		{map[string]string{EnvURL: "https://x.example/wus/2.0/aanleverservice/1.2"}, "base URL"},
		{map[string]string{EnvClientKey: ""}, EnvClientKey},
		{map[string]string{EnvClientKey: p.CA}, EnvClientKey},
		{map[string]string{EnvClientPFX: p.ClientPFX}, "not both"},
		{map[string]string{EnvClientCert: "", EnvClientKey: "", EnvClientPFX: p.ClientPFX, EnvClientPFXPassword: "wrong"}, "wrong password"},
		{map[string]string{EnvCA: filepath.Join(p.Dir, "missing.pem")}, EnvCA},
		{map[string]string{EnvSigningCert: p.ClientKey}, EnvSigningCert},
		{map[string]string{EnvTimestampTolerance: "soon"}, EnvTimestampTolerance},
		{map[string]string{EnvSignature: "md5"}, EnvSignature},
		{map[string]string{EnvTimeout: "-1s"}, EnvTimeout},
		{map[string]string{EnvMaxResponseMiB: "129"}, "between 1 and 128"},
		{map[string]string{EnvMaxResponseMiB: "0"}, EnvMaxResponseMiB},
	} {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range tc.set {
			m[k] = v
		}
		_, err := ConfigFromLookup(lookup(m))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v (want mention of %s)", tc.set, err, tc.want)
		}
	}
	m := map[string]string{EnvURL: "https://x.example", EnvClientPFX: p.ClientPFX, EnvClientPFXPassword: p.ClientPFXPassword,
		EnvCA: p.CA, EnvSigningCert: p.SigningCert, EnvTimestampTolerance: "90s", EnvSignature: "rsa-sha256", EnvTimeout: "30s",
		EnvMaxResponseMiB: "128"}
	cfg, err := ConfigFromLookup(lookup(m))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TimestampTolerance != 90*time.Second || cfg.SignatureAlgorithm != SignatureRSASHA256 || cfg.HTTPTimeout != 30*time.Second ||
		cfg.MaxResponseBytes != MaxResponseMiBAllowed<<20 ||
		cfg.ClientCertificate.Leaf == nil || len(cfg.SigningCertificates) != 1 {
		t.Errorf("config %+v", cfg)
	}
	if _, err := New(cfg); err != nil {
		t.Errorf("New: %v", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted an empty config")
	}
}

// FuzzParseResponse feeds arbitrary bytes to the response path (parse, fault
// detection, signature verification, payload decoding): it must never panic and
// always return nil or an *Error with a kind.
func FuzzParseResponse(f *testing.F) {
	for _, name := range []string{"valid-deliver-response.xml", "tampered-deliver-response.xml",
		"fault-deliver-response.xml", "fault-newstatus-response.xml"} {
		if data, err := os.ReadFile(filepath.Join("..", "..", "shared", "digipoort", "fixtures", name)); err == nil {
			f.Add(data, uint8(0))
		}
	}
	// In memory: fuzz worker processes end without TestMain's clean-up.
	signer, err := devcerts.SelfSigned(devcerts.SigningTemplate())
	if err != nil {
		f.Fatal(err)
	}
	creds := wsse.Credentials{Certificate: signer.Cert, Key: signer.Key}
	for i, payload := range []any{
		&wire.AanleverResponse{Kenmerk: "k", Berichtsoort: "Omzetbelasting", TijdstempelAangeleverd: wire.Time{Time: time.Now()}},
		&wire.StatusResponse{XMLName: wire.Name("getStatussenProcesResponse")},
		&wire.BerichtenResponse{XMLName: wire.Name("getBerichtenKenmerkResponse")},
	} {
		env, err := signedForTest(payload, i, creds)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(env, uint8(i))
	}
	f.Add([]byte("<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body/></soapenv:Envelope>"), uint8(1))
	f.Add([]byte("\x00<<>"), uint8(2))

	trusted := []*x509.Certificate{signer.Cert}
	if data, err := os.ReadFile(filepath.Join("..", "..", "shared", "digipoort", "fixtures", "valid-deliver-response.xml")); err == nil {
		if der, err := base64.StdEncoding.DecodeString(between(string(data), `wss-wssecurity-secext-1.0.xsd">`, "</wsse:BinarySecurityToken>")); err == nil {
			if c, err := x509.ParseCertificate(der); err == nil {
				trusted = append(trusted, c)
			}
		}
	}
	c := &Client{trust: wsse.TrustCertificatesAt(trusted), tol: timeCheckOff, now: time.Now}
	ops := []string{wire.OpAanleveren, wire.OpGetStatussenProces, wire.OpGetBerichtenKenmerk}
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		op := ops[int(sel)%len(ops)]
		var out any
		switch op {
		case wire.OpAanleveren:
			out = &wire.AanleverResponse{}
		case wire.OpGetStatussenProces:
			out = &wire.StatusResponse{}
		default:
			out = &berichtenResponse{} // as Client.berichten decodes it: contents from the tree
		}
		status := 200
		if sel&0x80 != 0 {
			status = 500
		}
		err := c.decodeResponse(op, status, data, "urn:uuid:0", out, nil)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || (e.Kind != Final && e.Kind != Transient) || e.Error() == "" {
				t.Fatalf("untyped error %T %v", err, err)
			}
		}
	})
}

func signedForTest(payload any, i int, creds wsse.Credentials) ([]byte, error) {
	x, err := marshalElement(payload)
	if err != nil {
		return nil, err
	}
	ops := []string{wire.OpAanleveren, wire.OpGetStatussenProces, wire.OpGetBerichtenKenmerk}
	svc, _ := wire.ServiceOf(ops[i])
	return wsse.SignedEnvelope(x, wsse.Addressing{To: wsse.AnonymousAddress, MessageID: "urn:uuid:1", Action: wire.ResponseAction(svc, ops[i]),
		RelatesTo: "urn:uuid:0"}, creds, wsse.SignOptions{Layout: wsse.LayoutDigipoort})
}
