package wsse

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"koerier/digipoort/devcerts"
	"koerier/digipoort/internal/testfixtures"
)

const (
	validFixture    = "fixtures/valid-deliver-response.xml"
	tamperedFixture = "fixtures/tampered-deliver-response.xml"
)

// fixtureTime lies inside the validity of the fixture's timestamp.
var fixtureTime = time.Date(2021, 3, 7, 11, 40, 0, 0, time.UTC)

// bstCertificate extracts the certificate of the fixture's BinarySecurityToken: the
// trusted certificate for the fixture tests.
func bstCertificate(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	bst := childNS(m.security, NSWSSE, "BinarySecurityToken")
	if bst == nil {
		t.Fatal("no BinarySecurityToken in fixture")
	}
	der, err := base64.StdEncoding.DecodeString(bst.Text())
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func verifyBytes(data []byte, opts VerifyOptions) (*Verification, error) {
	m, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return m.Verify(opts)
}

func TestValidFixtureVerifies(t *testing.T) {
	data := testfixtures.Read(t, validFixture)
	cert := bstCertificate(t, data)
	v, err := verifyBytes(data, VerifyOptions{Trust: TrustCertificates([]*x509.Certificate{cert}), Now: fixtureTime, Tolerance: 0})
	if err != nil {
		t.Fatalf("the real Digipoort response does not verify: %v", err)
	}
	want := []string{"w_25", "w_21", "w_22", "w_23", "w_24", "w_20"}
	if fmt.Sprint(v.SignedIDs) != fmt.Sprint(want) {
		t.Errorf("signed IDs %v, want all 6 references %v", v.SignedIDs, want)
	}
	if v.Signer.Subject.CommonName != "cs-bedrijven.procesinfrastructuur.nl" {
		t.Errorf("signer %q", v.Signer.Subject.CommonName)
	}
	if !v.Created.Equal(time.Date(2021, 3, 7, 11, 37, 39, 708e6, time.UTC)) || v.Expires.Sub(v.Created) != 10*time.Minute {
		t.Errorf("timestamp %s / %s", v.Created, v.Expires)
	}
}

func TestFixtureTimestampTolerance(t *testing.T) {
	data := testfixtures.Read(t, validFixture)
	trust := TrustCertificates([]*x509.Certificate{bstCertificate(t, data)})
	// Strict: the 2021 timestamp expired long ago.
	if _, err := verifyBytes(data, VerifyOptions{Trust: trust, Tolerance: 5 * time.Minute}); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("expired timestamp accepted under a strict tolerance: %v", err)
	}
	// Just after Expires, beyond a 1 minute tolerance.
	late := time.Date(2021, 3, 7, 11, 49, 0, 0, time.UTC)
	if _, err := verifyBytes(data, VerifyOptions{Trust: trust, Now: late, Tolerance: time.Minute}); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("expired by 81s with 60s tolerance: %v", err)
	}
	if _, err := verifyBytes(data, VerifyOptions{Trust: trust, Now: late, Tolerance: 2 * time.Minute}); err != nil {
		t.Fatalf("expired by 81s with 120s tolerance: %v", err)
	}
	// Created in the future.
	early := time.Date(2021, 3, 7, 11, 30, 0, 0, time.UTC)
	if _, err := verifyBytes(data, VerifyOptions{Trust: trust, Now: early, Tolerance: time.Minute}); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("timestamp from the future accepted: %v", err)
	}
	// Relaxed and disabled.
	if _, err := verifyBytes(data, VerifyOptions{Trust: trust, Tolerance: 20 * 365 * 24 * time.Hour}); err != nil {
		t.Fatalf("relaxed tolerance: %v", err)
	}
	if _, err := verifyBytes(data, VerifyOptions{Trust: trust, Tolerance: -1}); err != nil {
		t.Fatalf("disabled time check: %v", err)
	}
}

func TestTamperedFixtureFails(t *testing.T) {
	valid := testfixtures.Read(t, validFixture)
	data := testfixtures.Read(t, tamperedFixture)
	trust := TrustCertificates([]*x509.Certificate{bstCertificate(t, valid)})
	_, err := verifyBytes(data, VerifyOptions{Trust: trust, Tolerance: -1})
	if !errors.Is(err, ErrSignature) {
		t.Fatalf("tampered response: got %v, want ErrSignature", err)
	}
	if !strings.Contains(err.Error(), "#w_20") {
		t.Errorf("error should name the changed Body reference: %v", err)
	}
}

func TestFixtureTrust(t *testing.T) {
	data := testfixtures.Read(t, validFixture)
	other := testCreds(t, 0).Certificate
	if _, err := verifyBytes(data, VerifyOptions{Trust: TrustCertificates([]*x509.Certificate{other}), Tolerance: -1}); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("signer not in the trusted set: %v", err)
	}
	if _, err := verifyBytes(data, VerifyOptions{Tolerance: -1}); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("no trust configured: %v", err)
	}
}

// TestFixtureMutations changes the real response in ways an attacker or a broken
// proxy might; every one must be refused.
func TestFixtureMutations(t *testing.T) {
	data := string(testfixtures.Read(t, validFixture))
	trust := TrustCertificates([]*x509.Certificate{bstCertificate(t, []byte(data))})
	otherCert := base64.StdEncoding.EncodeToString(testCreds(t, 0).Certificate.Raw)
	bodyStart := strings.Index(data, "<soapenv:Body")
	bodyEnd := strings.Index(data, "</soapenv:Body>") + len("</soapenv:Body>")
	body := data[bodyStart:bodyEnd]
	bst := between(data, `X509v3" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"`+
		` xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">`, "</wsse:BinarySecurityToken>")

	cases := []struct {
		name   string
		mutate func(string) string
		want   error
	}{
		{"signature value changed", func(s string) string { return strings.Replace(s, "<SignatureValue>lFFj", "<SignatureValue>lFFk", 1) }, ErrSignature},
		{"digest value changed", func(s string) string { return strings.Replace(s, "jfuW2SlRFQ", "jfuW2SlRFR", 1) }, ErrSignature},
		{"timestamp changed", func(s string) string { return strings.Replace(s, "11:47:39.708Z", "11:57:39.708Z", 1) }, ErrSignature},
		{"action changed", func(s string) string {
			return strings.Replace(s, "AanleverService/aanleverenResponse<", "AanleverService/aanleverenResponsX<", 1)
		}, ErrSignature},
		{"relatesTo changed", func(s string) string {
			i := strings.LastIndex(s, "urn:uuid:de1dc4f7")
			return s[:i] + "urn:uuid:00000000" + s[i+len("urn:uuid:de1dc4f7"):]
		}, ErrSignature},
		{"kenmerk changed", func(s string) string { return strings.Replace(s, "<kenmerk>700627b6", "<kenmerk>700627b7", 1) }, ErrSignature},
		{"whitespace added in Body", func(s string) string { return strings.Replace(s, "</aanleverResponse>", " </aanleverResponse>", 1) }, ErrSignature},
		{"another certificate in the token", func(s string) string { return strings.Replace(s, bst, otherCert, 1) }, ErrSignature},
		{"timestamp removed", func(s string) string {
			return s[:strings.Index(s, "<u:Timestamp")] + s[strings.Index(s, "</u:Timestamp>")+len("</u:Timestamp>"):]
		}, ErrSignature},
		{"unsigned ReplyTo header added", func(s string) string {
			return strings.Replace(s, "</soapenv:Header>", "<wsa:ReplyTo><wsa:Address>http://evil.example</wsa:Address></wsa:ReplyTo></soapenv:Header>", 1)
		}, ErrSignature},
		{"wrapping: signed Body moved intact into a header, new Body", func(s string) string {
			moved := `<x:Wrapper xmlns:x="urn:x">` + body + `</x:Wrapper>`
			forged := strings.Replace(body, "700627b6-383e-4d8d-809f-b066845b36e0", "11111111-1111-1111-1111-111111111111", 1)
			forged = strings.Replace(forged, `wsu:Id="w_20"`, `wsu:Id="w_99"`, 1)
			s = strings.Replace(s, body, forged, 1)
			return strings.Replace(s, "</soapenv:Header>", moved+"</soapenv:Header>", 1)
		}, ErrSignature},
		{"wrapping: duplicate ID", func(s string) string {
			moved := `<x:Wrapper xmlns:x="urn:x">` + body + `</x:Wrapper>`
			forged := strings.Replace(body, "700627b6-383e-4d8d-809f-b066845b36e0", "11111111-1111-1111-1111-111111111111", 1)
			s = strings.Replace(s, body, forged, 1)
			return strings.Replace(s, "</soapenv:Header>", moved+"</soapenv:Header>", 1)
		}, ErrMalformed},
		{"duplicate attribute", func(s string) string { return strings.Replace(s, `wsu:Id="w_20"`, `wsu:Id="w_20" wsu:Id="w_21"`, 1) }, ErrMalformed},
		{"DTD", func(s string) string { return `<!DOCTYPE x [<!ENTITY a "b">]>` + s }, ErrMalformed},
		{"reference to nothing", func(s string) string { return strings.Replace(s, `URI="#w_24"`, `URI="#w_77"`, 1) }, ErrSignature},
		{"external reference", func(s string) string { return strings.Replace(s, `URI="#w_24"`, `URI="http://x/#w_24"`, 1) }, ErrMalformed},
		{"Security header removed", func(s string) string {
			return s[:strings.Index(s, "<s:Security")] + s[strings.Index(s, "</s:Security>")+len("</s:Security>"):]
		}, ErrUnsigned},
		{"second Body", func(s string) string { return strings.Replace(s, "</soapenv:Envelope>", body+"</soapenv:Envelope>", 1) }, ErrMalformed},
		{"undeclared prefix", func(s string) string {
			return strings.Replace(s, "</aanleverResponse>", "<q:x/></aanleverResponse>", 1)
		}, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mutated := c.mutate(data)
			if mutated == data {
				t.Fatal("mutation did not change the document")
			}
			_, err := verifyBytes([]byte(mutated), VerifyOptions{Trust: trust, Now: fixtureTime, Tolerance: time.Minute})
			t.Log(err)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return "\x00missing"
	}
	s = s[i+len(start):]
	return s[:strings.Index(s, end)]
}

func TestFaultFixtures(t *testing.T) {
	for _, c := range []struct{ file, detail, code string }{
		{"fixtures/fault-deliver-response.xml", "aanleverFault", "ALS100"},
		{"fixtures/fault-newstatus-response.xml", "statusinformatieFault", "STS100"},
	} {
		m, err := Parse(testfixtures.Read(t, c.file))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		f := m.Fault
		if f == nil || f.Foutcode != c.code || f.Detail != c.detail || f.CodeLocal() != "Client" || f.String != "Algemene fout" ||
			f.Actor != "Verantwoordingsplichtige" || !strings.Contains(f.Foutbeschrijving, "koppelvlakspecificaties") {
			t.Errorf("%s: fault %+v", c.file, f)
		}
		if _, err := m.Verify(VerifyOptions{Trust: func(*x509.Certificate) error { return nil }}); !errors.Is(err, ErrUnsigned) {
			t.Errorf("%s: faults are unsigned, Verify must say so: %v", c.file, err)
		}
	}
}

func TestFaultEnvelopeShape(t *testing.T) {
	fixture := testfixtures.Read(t, "fixtures/fault-deliver-response.xml")
	want, _ := Parse(fixture)
	out, err := FaultEnvelope(Addressing{To: AnonymousAddress, MessageID: "urn:uuid:1", RelatesTo: "urn:uuid:2",
		Action: want.Addressing.Action}, *want.Fault, "http://logius.nl/digipoort/koppelvlakservices/1.2/")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if *got.Fault != *want.Fault {
		t.Errorf("fault round trip:\n got %+v\nwant %+v", got.Fault, want.Fault)
	}
	wantFault := `<fault:aanleverFault xmlns:fault="http://logius.nl/digipoort/koppelvlakservices/1.2/"><fault:foutcode>ALS100</fault:foutcode>`
	if !bytes.HasPrefix(out, []byte(`<?xml version="1.0" encoding="UTF-8"?>`)) || !bytes.Contains(out, []byte(wantFault)) {
		t.Errorf("fault envelope does not have the fixture's shape:\n%s", out)
	}
}

var (
	credsOnce sync.Once
	creds     [2]Credentials
	credsErr  error
)

func testCreds(t *testing.T, i int) Credentials {
	t.Helper()
	credsOnce.Do(func() {
		for j := range creds {
			c, err := devcerts.SelfSigned(devcerts.ClientTemplate(fmt.Sprintf("wsse test %d", j)))
			if err != nil {
				credsErr = err
				return
			}
			creds[j] = Credentials{Certificate: c.Cert, Key: c.Key}
		}
	})
	if credsErr != nil {
		t.Fatal(credsErr)
	}
	return creds[i]
}

type testPayload struct {
	XMLName xml.Name `xml:"http://logius.nl/digipoort/koppelvlakservices/1.2/ testRequest"`
	Text    string   `xml:"text"`
	Attr    string   `xml:"a,attr"`
	Items   []string `xml:"item"`
}

func payloadElement(t *testing.T, p testPayload) *etree.Element {
	t.Helper()
	b, err := xml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		t.Fatal(err)
	}
	return doc.Root()
}

func TestSignVerifyRoundTrip(t *testing.T) {
	c := testCreds(t, 0)
	trust := TrustCertificates([]*x509.Certificate{c.Certificate})
	in := testPayload{Text: "a & b < c > d \r\n\ttab \"q\" 'a' ë €", Attr: "line\nbreak\t& \"q\"", Items: []string{"1", "2"}}
	for _, layout := range []Layout{LayoutClient, LayoutDigipoort} {
		for _, alg := range []Algorithm{RSASHA1, RSASHA256} {
			t.Run(fmt.Sprintf("layout%d/%s", layout, alg), func(t *testing.T) {
				now := time.Now()
				env, err := SignedEnvelope(payloadElement(t, in), Addressing{To: "https://x/wus/2.0/aanleverservice/1.2",
					Action: "urn:action", MessageID: "urn:uuid:1", RelatesTo: "urn:uuid:0", ReplyTo: AnonymousAddress},
					c, SignOptions{Algorithm: alg, Layout: layout, Created: now})
				if err != nil {
					t.Fatal(err)
				}
				m, err := Parse(env)
				if err != nil {
					t.Fatal(err)
				}
				v, err := m.Verify(VerifyOptions{Trust: trust, Now: now, Tolerance: time.Second})
				if err != nil {
					t.Fatalf("own signature does not verify: %v\n%s", err, env)
				}
				if len(v.SignedIDs) != 7 { // Body, Timestamp, Action, MessageID, To, RelatesTo, ReplyTo
					t.Errorf("signed %d elements: %v", len(v.SignedIDs), v.SignedIDs)
				}
				if m.Addressing != (Addressing{To: "https://x/wus/2.0/aanleverservice/1.2", Action: "urn:action",
					MessageID: "urn:uuid:1", RelatesTo: "urn:uuid:0", ReplyTo: AnonymousAddress}) {
					t.Errorf("addressing %+v", m.Addressing)
				}
				x, err := m.PayloadXML()
				if err != nil {
					t.Fatal(err)
				}
				var out testPayload
				if err := xml.Unmarshal(x, &out); err != nil {
					t.Fatal(err)
				}
				out.XMLName = in.XMLName
				if fmt.Sprintf("%q", out) != fmt.Sprintf("%q", in) {
					t.Errorf("payload round trip:\n got %q\nwant %q", out, in)
				}
				wantSig := map[Algorithm]string{RSASHA1: algRSASHA1, RSASHA256: algRSASHA256}[alg]
				if !bytes.Contains(env, []byte(wantSig)) {
					t.Errorf("signature method %s not used", wantSig)
				}
				// A signature by another key with this certificate in the token fails.
				other := Credentials{Certificate: c.Certificate, Key: testCreds(t, 1).Key}
				env2, _ := SignedEnvelope(payloadElement(t, in), Addressing{Action: "a", MessageID: "m", To: "t"}, other,
					SignOptions{Algorithm: alg, Layout: layout, Created: now})
				if _, err := verifyBytes(env2, VerifyOptions{Trust: trust, Now: now}); !errors.Is(err, ErrSignature) {
					t.Errorf("signature by a key that does not match the token's certificate: %v", err)
				}
			})
		}
	}
}

// TestDigipoortLayoutMatchesFixture checks that the simulator's layout has the shape
// of Digipoort's own responses.
func TestDigipoortLayoutMatchesFixture(t *testing.T) {
	fixture := string(testfixtures.Read(t, validFixture))
	c := testCreds(t, 0)
	env, err := SignedEnvelope(payloadElement(t, testPayload{Text: "x"}), Addressing{To: AnonymousAddress,
		MessageID: "urn:uuid:1", Action: "urn:a", RelatesTo: "urn:uuid:0"}, c, SignOptions{Layout: LayoutDigipoort})
	if err != nil {
		t.Fatal(err)
	}
	for _, fragment := range []string{
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsa="http://www.w3.org/2005/08/addressing">` +
			`<soapenv:Header><s:Security soapenv:mustUnderstand="1" xmlns:d="http://www.w3.org/2000/09/xmldsig#"` +
			` xmlns:s="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"` +
			` xmlns:u="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"` +
			` xmlns:x="http://www.w3.org/2001/10/xml-exc-c14n#"><u:Timestamp u:Id="w_`,
		"<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\">\n<SignedInfo>\n" +
			"  <CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\n" +
			"  <SignatureMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#rsa-sha1\"/>\n  <Reference URI=\"#w_",
		"\">\n    <Transforms>\n      <Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\n    </Transforms>\n" +
			"    <DigestMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#sha1\"/>\n    <DigestValue>",
		"</DigestValue>\n  </Reference>\n</SignedInfo>\n    <SignatureValue>",
		`<KeyInfo><wsse:SecurityTokenReference` +
			` xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns="">` +
			`<wsse:Reference URI="#SecurityToken-`,
		`" ValueType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"/>` +
			`</wsse:SecurityTokenReference></KeyInfo></Signature></s:Security><wsa:To wsu:Id="w_`,
		`" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">` +
			`http://www.w3.org/2005/08/addressing/anonymous</wsa:To><wsa:MessageID wsu:Id="w_`,
	} {
		if !strings.Contains(fixture, fragment) {
			t.Fatalf("test fragment not in the fixture: %s", fragment)
		}
		if !strings.Contains(string(env), fragment) {
			t.Errorf("simulator layout lacks fixture fragment %s\n%s", fragment, env)
		}
	}
}

// TestLargeBody: more than 1000 elements under Body (goxmldsig's NSDetatch limit).
func TestLargeBody(t *testing.T) {
	c := testCreds(t, 0)
	items := make([]string, 3000)
	for i := range items {
		items[i] = fmt.Sprint(i)
	}
	now := time.Now()
	env, err := SignedEnvelope(payloadElement(t, testPayload{Items: items}), Addressing{Action: "a", MessageID: "m", To: "t"}, c,
		SignOptions{Created: now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifyBytes(env, VerifyOptions{Trust: TrustCertificates([]*x509.Certificate{c.Certificate}), Now: now}); err != nil {
		t.Fatal(err)
	}
}

func TestTrustCertificatesChain(t *testing.T) {
	dir := t.TempDir()
	p, _, err := devcerts.Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := devcerts.LoadIssued(p.CA, p.CAKey)
	signing, _ := devcerts.LoadIssued(p.SigningCert, p.SigningKey)
	if err := TrustCertificates([]*x509.Certificate{ca.Cert})(signing.Cert); err != nil {
		t.Errorf("certificate issued by a trusted CA: %v", err)
	}
	if err := TrustCertificates([]*x509.Certificate{signing.Cert})(signing.Cert); err != nil {
		t.Errorf("pinned certificate: %v", err)
	}
	self := testCreds(t, 0).Certificate
	if err := TrustCertificates([]*x509.Certificate{ca.Cert, signing.Cert})(self); err == nil {
		t.Error("a self-signed certificate outside the trusted set was accepted")
	}
	// A trusted leaf that is no CA does not make what it "issues" trusted.
	if err := TrustCertificates([]*x509.Certificate{self})(signing.Cert); err == nil {
		t.Error("trusting a non-CA leaf trusted another certificate")
	}
}
