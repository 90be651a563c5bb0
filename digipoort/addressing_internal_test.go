package digipoort

import (
	"context"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"koerier/digipoort/devcerts"
	"koerier/digipoort/internal/wire"
	"koerier/digipoort/wsse"
)

// TestResponseAddressingRequired: a signed response must carry wsa:RelatesTo equal to
// the request's MessageID and the operation's wsa:Action, directly under the SOAP
// Header. A missing one is refused (real Digipoort always sends both), and so is one
// wrapped in another header element, where it is neither signed nor read.
func TestResponseAddressingRequired(t *testing.T) {
	p := testPaths(t)
	signing, err := devcerts.LoadIssued(p.SigningCert, p.SigningKey)
	if err != nil {
		t.Fatal(err)
	}
	signer := wsse.Credentials{Certificate: signing.Cert, Key: signing.Key}
	c := &Client{trust: wsse.TrustCertificatesAt([]*x509.Certificate{signing.Cert}), tol: time.Minute, now: time.Now}
	const req = "urn:uuid:request-1"
	op := wire.OpAanleveren
	build := func(addr wsse.Addressing) []byte {
		env, err := signedResponse(signer, op, okPayload(op, 0), addr)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	wrapped := func(env []byte) []byte {
		s := string(env)
		i := strings.Index(s, "</soapenv:Header>")
		if i < 0 {
			t.Fatalf("no soapenv:Header in %s", s)
		}
		return []byte(s[:i] + `<x:Routing xmlns:x="urn:example:routing"><wsa:RelatesTo xmlns:wsa="` + wsse.NSWSA + `">` + req +
			`</wsa:RelatesTo></x:Routing>` + s[i:])
	}
	for _, tc := range []struct {
		name string
		env  []byte
		want string // "" = accepted
	}{
		{"complete", build(wsse.Addressing{RelatesTo: req}), ""},
		{"no RelatesTo", build(wsse.Addressing{}), "no wsa:RelatesTo"},
		{"RelatesTo wrapped in another header", wrapped(build(wsse.Addressing{})), "RelatesTo"},
		{"RelatesTo of another request", build(wsse.Addressing{RelatesTo: "urn:uuid:other"}), "relates to message urn:uuid:other"},
		{"no Action", build(wsse.Addressing{RelatesTo: req, Action: "-"}), "no wsa:Action"},
		{"Action of another operation", build(wsse.Addressing{RelatesTo: req,
			Action: wire.ResponseAction(wire.Statusinformatie, wire.OpGetStatussenProces)}), "wsa:Action"},
	} {
		recorded := 0
		var out wire.AanleverResponse
		err := c.decodeResponse(op, 200, tc.env, req, &out, func() { recorded++ })
		switch {
		case tc.want == "" && (err != nil || out.Kenmerk != "kenmerk-1" || recorded != 1):
			t.Errorf("%s: %v (kenmerk %q, recorded %d)", tc.name, err, out.Kenmerk, recorded)
		case tc.want != "" && (!IsFinal(err) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: want a final error about %q, got %v", tc.name, tc.want, err)
		case tc.want != "" && recorded != 0:
			t.Errorf("%s: a response that does not answer this request was recorded as evidence", tc.name)
		}
	}

	// Over the wire: a delivery answered without RelatesTo fails, and may have arrived.
	f := startFake(t)
	f.respond = func(w http.ResponseWriter, r seenRequest) {
		env, err := f.signed(r.Op, okPayload(r.Op, 0), wsse.Addressing{})
		if err != nil {
			t.Error(err)
		}
		w.Write(env)
	}
	cl, err := New(fakeConfig(t, f))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, err = cl.Deliver(context.Background(), DeliverRequest{Berichtsoort: "Omzetbelasting", Belanghebbende: Identity{Nummer: "1", Type: "Fi"},
		Rol: "Bedrijf", MimeType: "text/xml", Bestandsnaam: "a.xbrl", Inhoud: []byte("<x/>")})
	if !IsFinal(err) || !strings.Contains(err.Error(), "no wsa:RelatesTo") || !MayHaveArrived(err) {
		t.Fatalf("delivery answered without RelatesTo: %v", err)
	}
}
