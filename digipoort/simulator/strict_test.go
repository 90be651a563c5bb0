package simulator

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"

	"koerier/digipoort/devcerts"
	"koerier/digipoort/internal/wire"
	"koerier/digipoort/wsse"
)

// rawClient speaks to the simulator without the digipoort client: it signs whatever
// payload it is given, so that tests can send what a correct client never would.
type rawClient struct {
	t    *testing.T
	s    *Sim
	cert *devcerts.Issued
	http *http.Client
}

func newRawClient(t *testing.T, s *Sim, cert *devcerts.Issued) *rawClient {
	t.Helper()
	if cert == nil {
		var err error
		if cert, err = devcerts.LoadIssued(s.Paths().ClientCert, s.Paths().ClientKey); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := devcerts.LoadIssued(s.Paths().CA, s.Paths().CAKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{cert.TLS()}, RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	t.Cleanup(c.CloseIdleConnections)
	return &rawClient{t: t, s: s, cert: cert, http: c}
}

// envelope signs payload as a request of op, like a correct client would.
func (c *rawClient) envelope(op, payload string) []byte {
	c.t.Helper()
	svc, ok := wire.ServiceOf(op)
	if !ok {
		c.t.Fatalf("unknown operation %s", op)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromString(payload); err != nil {
		c.t.Fatalf("payload: %v", err)
	}
	env, err := wsse.SignedEnvelope(doc.Root(), wsse.Addressing{
		To: c.s.URL() + svc.Path, Action: wire.RequestAction(svc, op), MessageID: "urn:uuid:" + uuid.NewString(), ReplyTo: wsse.AnonymousAddress,
	}, wsse.Credentials{Certificate: c.cert.Cert, Key: c.cert.Key}, wsse.SignOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	return env
}

// post sends an envelope for op and parses the answer.
func (c *rawClient) post(op string, env []byte) (int, *wsse.Message) {
	c.t.Helper()
	svc, _ := wire.ServiceOf(op)
	req, _ := http.NewRequest(http.MethodPost, c.s.URL()+svc.Path, bytes.NewReader(env))
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `"`+wire.RequestAction(svc, op)+`"`)
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	m, err := wsse.Parse(body)
	if err != nil {
		c.t.Fatalf("%s: unparseable answer %d: %v\n%s", op, res.StatusCode, err, body)
	}
	return res.StatusCode, m
}

func (c *rawClient) call(op, payload string) (int, *wsse.Message) {
	c.t.Helper()
	return c.post(op, c.envelope(op, payload))
}

const adresXML = "<autorisatieAdres>http://geenausp.nl</autorisatieAdres>"

// validPayloads are well-formed requests of every operation, as the XSD wants them.
func validPayloads() map[string]string {
	id := "<identiteitBelanghebbende><nummer>001000044B37</nummer><type>Fi</type></identiteitBelanghebbende>"
	req := func(op, inner string) string {
		return "<" + wire.RequestElement(op) + ` xmlns="` + wire.NS + `">` + inner + "</" + wire.RequestElement(op) + ">"
	}
	inhoud := base64.StdEncoding.EncodeToString([]byte("<a/>"))
	out := map[string]string{
		wire.OpAanleveren: req(wire.OpAanleveren, "<berichtsoort>Omzetbelasting</berichtsoort><aanleverkenmerk>strict-1</aanleverkenmerk>"+id+
			"<rolBelanghebbende>Bedrijf</rolBelanghebbende><berichtInhoud><mimeType>text/xml</mimeType><bestandsnaam>a.xml</bestandsnaam>"+
			"<inhoud>"+inhoud+"</inhoud></berichtInhoud>"+adresXML),
		wire.OpGetNieuweStatussen: req(wire.OpGetNieuweStatussen, "<berichtsoort>Omzetbelasting</berichtsoort>"+id+adresXML),
		wire.OpGetBerichtsoorten:  req(wire.OpGetBerichtsoorten, id+adresXML),
		wire.OpGetProcessen:       req(wire.OpGetProcessen, "<berichtsoort>Omzetbelasting</berichtsoort>"+id+adresXML),
	}
	for _, op := range []string{wire.OpGetStatussenProces, wire.OpGetNieuweStatussenProces, wire.OpGetBerichtenKenmerk, wire.OpGetNieuweBerichtenKenmerk} {
		out[op] = req(op, "<kenmerk>00000000-0000-0000-0000-000000000000</kenmerk>"+adresXML)
	}
	for _, op := range []string{wire.OpGetBerichten, wire.OpGetNieuweBerichten} {
		out[op] = req(op, id+adresXML)
	}
	for _, op := range []string{wire.OpGetBerichtenLijst, wire.OpGetNieuweBerichtenLijst} {
		out[op] = req(op, adresXML)
	}
	return out
}

func wantFault(t *testing.T, name string, status int, m *wsse.Message, foutcode, faultcode string, says ...string) {
	t.Helper()
	if status != http.StatusInternalServerError || m.Fault == nil {
		t.Errorf("%s: HTTP %d, fault %+v; want a %s fault", name, status, m.Fault, foutcode)
		return
	}
	if m.Fault.Foutcode != foutcode || m.Fault.CodeLocal() != faultcode || !strings.HasPrefix(m.Fault.Foutbeschrijving, specText) {
		t.Errorf("%s: fault %s %s %q; want %s %s with the koppelvlakspecificaties text", name, m.Fault.CodeLocal(), m.Fault.Foutcode,
			m.Fault.Foutbeschrijving, faultcode, foutcode)
	}
	for _, s := range says {
		if !strings.Contains(m.Fault.Foutbeschrijving, s) {
			t.Errorf("%s: %q does not name %q", name, m.Fault.Foutbeschrijving, s)
		}
	}
}

// TestEveryOperationWantsAutorisatieAdres: each of the twelve operations answers a
// request with autorisatieAdres, and refuses the same request without it with its
// service's x100 fault naming the element.
func TestEveryOperationWantsAutorisatieAdres(t *testing.T) {
	s := start(t, modePKI, Options{Instant: true})
	c := newRawClient(t, s, nil)
	for op, payload := range validPayloads() {
		svc, _ := wire.ServiceOf(op)
		status, m := c.call(op, payload)
		if op == wire.OpGetStatussenProces || op == wire.OpGetNieuweStatussenProces {
			// The kenmerk is unknown: refused for that, not for the request's shape.
			if m.Fault == nil || !strings.Contains(m.Fault.Foutbeschrijving, "onbekend") {
				t.Errorf("%s with autorisatieAdres: %d %+v", op, status, m.Fault)
			}
		} else if status != 200 || m.Fault != nil {
			t.Errorf("%s with autorisatieAdres: %d %+v", op, status, m.Fault)
		}
		status, m = c.call(op, strings.Replace(payload, adresXML, "", 1))
		wantFault(t, op+" without autorisatieAdres", status, m, svc.FaultCode+"100", "Client", "autorisatieAdres ontbreekt")
		status, m = c.call(op, strings.Replace(payload, adresXML, "<autorisatieAdres> </autorisatieAdres>", 1))
		wantFault(t, op+" with an empty autorisatieAdres", status, m, svc.FaultCode+"100", "Client", "autorisatieAdres ontbreekt")
	}
	if st := s.Deliveries("strict-1"); st.Attempts != 1 || st.Accepted != 1 {
		t.Errorf("only the delivery with autorisatieAdres may count: %+v", st)
	}
}

// TestRequestsThatBreakTheXSDAreRefused: what the XSD does not allow gets the x100
// fault naming the element, and a refused delivery starts nothing.
func TestRequestsThatBreakTheXSDAreRefused(t *testing.T) {
	s := start(t, modePKI, Options{Instant: true})
	c := newRawClient(t, s, nil)
	valid := validPayloads()
	deliver := valid[wire.OpAanleveren]
	edit := func(op, old, new string) string {
		t.Helper()
		if !strings.Contains(valid[op], old) {
			t.Fatalf("%q not in %s", old, valid[op])
		}
		return strings.Replace(valid[op], old, new, 1)
	}
	for _, tc := range []struct {
		name, op, payload string
		says              []string
	}{
		{"payload without namespace", wire.OpAanleveren, strings.Replace(deliver, ` xmlns="`+wire.NS+`"`, "", 1), []string{"koppelvlak 1.2"}},
		{"child without namespace", wire.OpAanleveren, edit(wire.OpAanleveren, "<berichtsoort>", `<berichtsoort xmlns="">`),
			[]string{"aanleverRequest/berichtsoort", "namespace"}},
		{"aanleverkenmerk after the belanghebbende", wire.OpAanleveren,
			edit(wire.OpAanleveren, "<rolBelanghebbende>", "<aanleverkenmerk>x</aanleverkenmerk><rolBelanghebbende>"),
			[]string{"aanleverRequest/aanleverkenmerk", "verkeerde plaats"}},
		{"unknown element", wire.OpGetBerichtenLijst, edit(wire.OpGetBerichtenLijst, adresXML, adresXML+"<maximum>10</maximum>"),
			[]string{"getBerichtenLijstRequest/maximum", "niet toegestaan"}},
		{"missing rol", wire.OpAanleveren, edit(wire.OpAanleveren, "<rolBelanghebbende>Bedrijf</rolBelanghebbende>", ""),
			[]string{"aanleverRequest/rolBelanghebbende ontbreekt"}},
		{"missing kenmerk", wire.OpGetStatussenProces, edit(wire.OpGetStatussenProces, "<kenmerk>00000000-0000-0000-0000-000000000000</kenmerk>", ""),
			[]string{"getStatussenProcesRequest/kenmerk ontbreekt"}},
		{"aanleverkenmerk of 41", wire.OpAanleveren, edit(wire.OpAanleveren, "strict-1", strings.Repeat("k", 41)),
			[]string{"aanleverRequest/aanleverkenmerk is te lang", "41 characters, at most 40"}},
		{"bestandsnaam of 81", wire.OpAanleveren, edit(wire.OpAanleveren, "a.xml", strings.Repeat("b", 81)),
			[]string{"berichtInhoud/bestandsnaam is te lang"}},
		{"kenmerk of 41", wire.OpGetBerichtenKenmerk, edit(wire.OpGetBerichtenKenmerk, "00000000-0000-0000-0000-000000000000", strings.Repeat("0", 41)),
			[]string{"getBerichtenKenmerkRequest/kenmerk is te lang"}},
		{"inhoud not base64", wire.OpAanleveren, edit(wire.OpAanleveren, "<inhoud>", "<inhoud>@"), []string{"berichtInhoud/inhoud heeft een ongeldige waarde"}},
		{"two berichtsoorten", wire.OpGetProcessen, edit(wire.OpGetProcessen, "<berichtsoort>Omzetbelasting</berichtsoort>",
			"<berichtsoort>Omzetbelasting</berichtsoort><berichtsoort>ICP</berichtsoort>"), []string{"komt te vaak voor"}},
		{"empty berichtsoort", wire.OpAanleveren, edit(wire.OpAanleveren, "<berichtsoort>Omzetbelasting</berichtsoort>", "<berichtsoort/>"),
			[]string{"berichtsoort is leeg"}},
		{"empty inhoud", wire.OpAanleveren, edit(wire.OpAanleveren, "<inhoud>"+base64.StdEncoding.EncodeToString([]byte("<a/>"))+"</inhoud>", "<inhoud/>"),
			[]string{"inhoud is leeg"}},
		{"empty bijlage", wire.OpAanleveren, edit(wire.OpAanleveren, "</berichtInhoud>", "</berichtInhoud><berichtBijlagen><bijlage><mimeType>text/plain"+
			"</mimeType><bestandsnaam>b.txt</bestandsnaam><inhoud/></bijlage></berichtBijlagen>"), []string{"berichtBijlagen/bijlage[1]/inhoud is leeg"}},
		{"the shape of another request", wire.OpGetBerichtenLijst, strings.ReplaceAll(valid[wire.OpGetProcessen], "getProcessenRequest",
			"getBerichtenLijstRequest"), []string{"getBerichtenLijstRequest/identiteitBelanghebbende", "niet toegestaan"}},
	} {
		svc, _ := wire.ServiceOf(tc.op)
		status, m := c.call(tc.op, tc.payload)
		wantFault(t, tc.name, status, m, svc.FaultCode+"100", "Client", tc.says...)
	}
	if st := s.Deliveries("strict-1"); st.Attempts != 0 || st.Accepted != 0 {
		t.Errorf("a refused delivery counted: %+v", st)
	}
	// The same requests, unbroken, pass.
	if status, m := c.call(wire.OpAanleveren, deliver); status != 200 || m.Fault != nil {
		t.Fatalf("the valid delivery: %d %+v", status, m.Fault)
	}
}

// TestCustomSOAPHeadersAreRefused: the WSDL allows only WS-Addressing and WS-Security
// headers; any other header is refused (MustUnderstand when it must be understood),
// the standard ones still pass.
func TestCustomSOAPHeadersAreRefused(t *testing.T) {
	s := start(t, modePKI, Options{Instant: true})
	c := newRawClient(t, s, nil)
	payload := validPayloads()[wire.OpGetBerichtsoorten]
	withHeader := func(h string) []byte {
		env := c.envelope(wire.OpGetBerichtsoorten, payload)
		if !bytes.Contains(env, []byte("</soapenv:Header>")) {
			t.Fatalf("no Header in %s", env)
		}
		return bytes.Replace(env, []byte("</soapenv:Header>"), []byte(h+"</soapenv:Header>"), 1)
	}
	status, m := c.post(wire.OpGetBerichtsoorten, withHeader(`<k:Tenant xmlns:k="urn:koerier">acme</k:Tenant>`))
	wantFault(t, "custom header", status, m, "STS100", "Client", "{urn:koerier}Tenant", "niet toegestaan")
	status, m = c.post(wire.OpGetBerichtsoorten, withHeader(`<k:Tenant xmlns:k="urn:koerier" soapenv:mustUnderstand="1">acme</k:Tenant>`))
	wantFault(t, "custom header that must be understood", status, m, "STS100", "MustUnderstand", "{urn:koerier}Tenant")
	status, m = c.post(wire.OpGetBerichtsoorten, withHeader(`<wsa:Foo xmlns:wsa="`+wsse.NSWSA+`">x</wsa:Foo>`))
	wantFault(t, "unknown addressing header", status, m, "STS100", "Client", "Foo")
	// The headers a correct client sends (WS-Addressing, WS-Security) pass.
	if status, m := c.call(wire.OpGetBerichtsoorten, payload); status != 200 || m.Fault != nil {
		t.Errorf("standard headers only: %d %+v", status, m.Fault)
	}
}

// TestNieuweBerichtenOnlyOncePerCertificate: the three Nieuwe pickup operations work
// (they used to fault on their own element name) and return only what the asking
// certificate did not fetch before; another certificate still gets it.
func TestNieuweBerichtenOnlyOncePerCertificate(t *testing.T) {
	paths, _, err := devcerts.Ensure(modePKI)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := devcerts.LoadIssued(paths.CA, paths.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	second, err := ca.Issue(devcerts.ClientTemplate("second known client"))
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, modePKI, Options{Instant: true, KnownClients: []*x509.Certificate{second.Cert}})
	first := newRawClient(t, s, nil)
	other := newRawClient(t, s, second)
	kenmerk, _, err := s.AddPickup(Pickup{Berichtsoort: "ICP", Identiteit: modeID})
	if err != nil {
		t.Fatal(err)
	}
	valid := validPayloads()
	kenmerkReq := func(op string) string {
		return strings.Replace(valid[op], "00000000-0000-0000-0000-000000000000", kenmerk, 1)
	}
	count := func(c *rawClient, op, payload string) int {
		t.Helper()
		status, m := c.call(op, payload)
		if status != 200 || m.Fault != nil {
			t.Fatalf("%s: %d %+v", op, status, m.Fault)
		}
		x, err := m.PayloadXML()
		if err != nil {
			t.Fatal(err)
		}
		var resp struct {
			Return struct {
				Inner []struct {
					Kenmerk string `xml:"kenmerk"`
				} `xml:",any"`
			} `xml:",any"`
		}
		if err := xml.Unmarshal(x, &resp); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range resp.Return.Inner {
			if r.Kenmerk == kenmerk {
				n++
			}
		}
		return n
	}
	for _, op := range []string{wire.OpGetNieuweBerichtenLijst, wire.OpGetNieuweBerichtenKenmerk, wire.OpGetNieuweBerichten} {
		payload := valid[op]
		if op == wire.OpGetNieuweBerichtenKenmerk {
			payload = kenmerkReq(op)
		}
		if n := count(first, op, payload); n != 1 {
			t.Errorf("%s the first time: %d results for %s, want 1", op, n, kenmerk)
		}
		if n := count(first, op, payload); n != 0 {
			t.Errorf("%s again, same certificate: %d results, want 0", op, n)
		}
		if n := count(other, op, payload); n != 1 {
			t.Errorf("%s from another certificate: %d results, want 1", op, n)
		}
		// The plain operations keep returning it.
		plain := strings.Replace(op, "Nieuwe", "", 1)
		plainPayload := strings.ReplaceAll(payload, wire.RequestElement(op), wire.RequestElement(plain))
		if n := count(first, plain, plainPayload); n != 1 {
			t.Errorf("%s after %s: %d results, want 1", plain, op, n)
		}
		s.Reset()
		if kenmerk, _, err = s.AddPickup(Pickup{Berichtsoort: "ICP", Identiteit: modeID}); err != nil {
			t.Fatal(err)
		}
		valid = validPayloads()
	}
}
