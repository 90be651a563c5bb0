package wsse

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"koerier/digipoort/internal/testfixtures"
)

var fixtureAddressing = Addressing{
	To:        AnonymousAddress,
	MessageID: "urn:uuid:de1dc4f7-98ab-4a03-90a5-e9efd20b1003",
	Action:    "http://logius.nl/digipoort/wus/2.0/aanleverservice/1.2/AanleverService/aanleverenResponse",
	RelatesTo: "urn:uuid:de1dc4f7-98ab-4a03-90a5-e9efd20b1003",
}

// elementString returns the first <tag ...>...</tag> of s, as written.
func elementString(t *testing.T, s, tag string) string {
	t.Helper()
	i := strings.Index(s, "<"+tag+" ")
	j := strings.Index(s, "</"+tag+">")
	if i < 0 || j < i {
		t.Fatalf("no %s in the document", tag)
	}
	return s[i : j+len("</"+tag+">")]
}

// TestFixtureWrapping moves signed elements of the real response to places where they
// still verify by ID but the message, read by position, no longer has them. Each must
// be refused; before the placement check the moved-header cases verified and reported
// an empty RelatesTo/Action/To/MessageID.
func TestFixtureWrapping(t *testing.T) {
	data := string(testfixtures.Read(t, validFixture))
	trust := TrustCertificates([]*x509.Certificate{bstCertificate(t, []byte(data))})
	verify := func(s string) (*Message, error) {
		m, err := Parse([]byte(s))
		if err != nil {
			return nil, err
		}
		_, err = m.Verify(VerifyOptions{Trust: trust, Now: fixtureTime, Tolerance: time.Minute})
		return m, err
	}

	m, err := verify(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Addressing != fixtureAddressing {
		t.Fatalf("addressing of the real response: %+v", m.Addressing)
	}

	dests := map[string]func(s, el string) string{
		"another header": func(s, el string) string {
			return strings.Replace(s, "</soapenv:Header>", `<x:Wrapper xmlns:x="urn:x">`+el+`</x:Wrapper></soapenv:Header>`, 1)
		},
		"the Security header": func(s, el string) string { return strings.Replace(s, "</s:Security>", el+"</s:Security>", 1) },
		"the Signature": func(s, el string) string {
			return strings.Replace(s, "</KeyInfo></Signature>", "</KeyInfo>"+el+"</Signature>", 1)
		},
	}
	for _, tag := range []string{"wsa:RelatesTo", "wsa:Action", "wsa:To", "wsa:MessageID"} {
		el := elementString(t, data, tag)
		without := strings.Replace(data, el, "", 1)
		for name, move := range dests {
			t.Run(tag+" moved into "+name, func(t *testing.T) {
				_, err := verify(move(without, el))
				if !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "signature wrapping") {
					t.Fatalf("got %v, want ErrSignature for a misplaced signed header", err)
				}
			})
		}
	}

	relatesTo := elementString(t, data, "wsa:RelatesTo")
	forged := "<wsa:RelatesTo>urn:uuid:00000000-0000-0000-0000-000000000000</wsa:RelatesTo>"
	forgedSameID := strings.Replace(relatesTo, "urn:uuid:de1dc4f7", "urn:uuid:00000000", 1)
	wrapped := `<x:Wrapper xmlns:x="urn:x">` + relatesTo + `</x:Wrapper>`
	ts := elementString(t, data, "u:Timestamp")
	cases := []struct {
		name   string
		mutate func(string) string
		want   error
	}{
		{"signed RelatesTo wrapped, forged unsigned one in its place", func(s string) string {
			return strings.Replace(s, relatesTo, wrapped+forged, 1)
		}, ErrSignature},
		{"signed RelatesTo wrapped, forged one with the same Id in its place", func(s string) string {
			return strings.Replace(s, relatesTo, wrapped+forgedSameID, 1)
		}, ErrMalformed},
		{"forged RelatesTo next to the signed one", func(s string) string {
			return strings.Replace(s, relatesTo, forged+relatesTo, 1)
		}, ErrMalformed},
		{"signed RelatesTo also copied into another header", func(s string) string {
			return strings.Replace(s, "</soapenv:Header>", wrapped+"</soapenv:Header>", 1)
		}, ErrMalformed},
		{"Timestamp moved out of Security into the Header", func(s string) string {
			s = strings.Replace(s, ts, "", 1)
			moved := strings.Replace(ts, "<u:Timestamp ", `<u:Timestamp xmlns:u="`+NSWSU+`" `, 1) // declared where it was
			return strings.Replace(s, "</soapenv:Header>", moved+"</soapenv:Header>", 1)
		}, ErrSignature},
		{"Timestamp wrapped inside Security, forged one in its place", func(s string) string {
			forgedTS := strings.Replace(strings.Replace(ts, "2021-03-07T11:47", "2031-03-07T11:47", 1), `u:Id="w_25"`, `u:Id="w_99"`, 1)
			return strings.Replace(s, ts, `<x:Wrapper xmlns:x="urn:x">`+ts+`</x:Wrapper>`+forgedTS, 1)
		}, ErrSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mutated := c.mutate(data)
			if mutated == data {
				t.Fatal("mutation did not change the document")
			}
			_, err := verify(mutated)
			t.Log(err)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}

	// A comment inside a signed value is dropped by canonicalisation; the value read
	// must be the whole text, not the part before the comment.
	commented := strings.Replace(data, ">urn:uuid:de1dc4f7-98ab-4a03-90a5-e9efd20b1003</wsa:RelatesTo>",
		">urn:uuid:de1dc4f7<!-- x -->-98ab-4a03-90a5-e9efd20b1003</wsa:RelatesTo>", 1)
	if m, err := verify(commented); err != nil || m.Addressing.RelatesTo != fixtureAddressing.RelatesTo {
		t.Fatalf("comment in RelatesTo: %v, RelatesTo %q", err, m.Addressing.RelatesTo)
	}
}

// signedResponse is a fresh response in Digipoort's layout, signed with creds.
func signedResponse(t *testing.T, creds Credentials, created time.Time) []byte {
	t.Helper()
	env, err := SignedEnvelope(payloadElement(t, testPayload{Text: "kenmerk"}), Addressing{To: AnonymousAddress,
		MessageID: "urn:uuid:response", Action: "urn:action:response", RelatesTo: "urn:uuid:request"}, creds,
		SignOptions{Layout: LayoutDigipoort, Created: created, TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// resign applies edit to the envelope and then recomputes every reference's digest and
// the signature value with key, as the holder of that key would. It builds shapes a
// signer could produce (and an attacker holding some trusted key), which no edit of a
// captured response can.
func resign(t *testing.T, data []byte, key crypto.Signer, edit func(doc *etree.Document)) []byte {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		t.Fatal(err)
	}
	edit(doc)
	sig := findFirst(doc.Root(), func(el *etree.Element) bool { return is(el, NSDSig, "Signature") })
	si := childNS(sig, NSDSig, "SignedInfo")
	for _, ref := range childrenNS(si, NSDSig, "Reference") {
		uri, _ := attrPlain(ref, "URI")
		target := findFirst(doc.Root(), func(el *etree.Element) bool { return idOf(el) == uri[1:] })
		if target == nil {
			t.Fatalf("resign: nothing carries %s", uri)
		}
		alg, _ := attrPlain(childNS(ref, NSDSig, "DigestMethod"), "Algorithm")
		h, _ := digestHash(alg)
		d, err := digest(target, "", h)
		if err != nil {
			t.Fatal(err)
		}
		childNS(ref, NSDSig, "DigestValue").SetText(base64.StdEncoding.EncodeToString(d))
	}
	alg, _ := attrPlain(childNS(si, NSDSig, "SignatureMethod"), "Algorithm")
	hash, _ := signatureHash(alg)
	c, err := canonicalize(si, "")
	if err != nil {
		t.Fatal(err)
	}
	hh := hash.New()
	hh.Write(c)
	sv, err := key.Sign(rand.Reader, hh.Sum(nil), hash)
	if err != nil {
		t.Fatal(err)
	}
	childNS(sig, NSDSig, "SignatureValue").SetText(base64.StdEncoding.EncodeToString(sv))
	out, err := write(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func findFirst(el *etree.Element, match func(*etree.Element) bool) *etree.Element {
	if match(el) {
		return el
	}
	for _, c := range el.ChildElements() {
		if f := findFirst(c, match); f != nil {
			return f
		}
	}
	return nil
}

func findNS(doc *etree.Document, ns, local string) *etree.Element {
	return findFirst(doc.Root(), func(el *etree.Element) bool { return is(el, ns, local) })
}

// addReference appends a Reference to el (given a wsu:Id) to the SignedInfo; resign
// fills in its digest.
func addReference(doc *etree.Document, el *etree.Element, id string) {
	el.CreateAttr("xmlns:wsu", NSWSU)
	el.CreateAttr("wsu:Id", id)
	si := findNS(doc, NSDSig, "SignedInfo")
	ref := si.CreateElement("Reference")
	ref.CreateAttr("URI", "#"+id)
	ref.CreateElement("Transforms").CreateElement("Transform").CreateAttr("Algorithm", algExcC14N)
	ref.CreateElement("DigestMethod").CreateAttr("Algorithm", algDigestSHA1)
	ref.CreateElement("DigestValue")
}

// TestSignedWrapping: responses signed in the test by the trusted key itself, in
// shapes that put signed elements where WUS does not. The signature is valid every time,
// so only the placement and shape rules can refuse them.
func TestSignedWrapping(t *testing.T) {
	creds := testCreds(t, 0)
	trust := TrustCertificates([]*x509.Certificate{creds.Certificate})
	now := time.Now()
	env := signedResponse(t, creds, now)
	wrapIn := func(parent *etree.Element, el *etree.Element) {
		el.Parent().RemoveChild(el)
		w := parent.CreateElement("x:Wrapper")
		w.CreateAttr("xmlns:x", "urn:x")
		w.AddChild(el)
	}

	cases := []struct {
		name string
		edit func(doc *etree.Document)
		want error // nil: must verify
		msg  string
	}{
		{"unchanged", func(*etree.Document) {}, nil, ""},
		{"token also signed", func(doc *etree.Document) {
			bst := findNS(doc, NSWSSE, "BinarySecurityToken")
			si := findNS(doc, NSDSig, "SignedInfo")
			ref := si.CreateElement("Reference")
			ref.CreateAttr("URI", "#"+idOf(bst))
			ref.CreateElement("Transforms").CreateElement("Transform").CreateAttr("Algorithm", algExcC14N)
			ref.CreateElement("DigestMethod").CreateAttr("Algorithm", algDigestSHA1)
			ref.CreateElement("DigestValue")
		}, nil, ""},
		{"RelatesTo inside another header", func(doc *etree.Document) {
			wrapIn(findNS(doc, NSSoap, "Header"), findNS(doc, NSWSA, "RelatesTo"))
		}, ErrSignature, "signature wrapping"},
		{"RelatesTo inside the Security header", func(doc *etree.Document) {
			el := findNS(doc, NSWSA, "RelatesTo")
			el.Parent().RemoveChild(el)
			findNS(doc, NSWSSE, "Security").AddChild(el)
		}, ErrSignature, "signature wrapping"},
		{"RelatesTo inside the payload", func(doc *etree.Document) {
			el := findNS(doc, NSWSA, "RelatesTo")
			el.Parent().RemoveChild(el)
			findNS(doc, NSSoap, "Body").ChildElements()[0].AddChild(el)
		}, ErrSignature, "signature wrapping"},
		{"Action inside another header", func(doc *etree.Document) {
			wrapIn(findNS(doc, NSSoap, "Header"), findNS(doc, NSWSA, "Action"))
		}, ErrSignature, "signature wrapping"},
		{"Timestamp inside a wrapper in Security", func(doc *etree.Document) {
			wrapIn(findNS(doc, NSWSSE, "Security"), findNS(doc, NSWSU, "Timestamp"))
		}, ErrSignature, "signature wrapping"},
		{"a payload element signed", func(doc *etree.Document) {
			addReference(doc, findNS(doc, NSSoap, "Body").ChildElements()[0].ChildElements()[0], "w_text")
		}, ErrSignature, "signature wrapping"},
		{"a soapenv:Body inside a header signed", func(doc *etree.Document) {
			w := findNS(doc, NSSoap, "Header").CreateElement("x:Wrapper")
			w.CreateAttr("xmlns:x", "urn:x")
			addReference(doc, w.CreateElement("soapenv:Body"), "w_body2")
		}, ErrSignature, "signature wrapping"},
		{"two elements carry the RelatesTo Id", func(doc *etree.Document) {
			rt := findNS(doc, NSWSA, "RelatesTo")
			w := findNS(doc, NSSoap, "Header").CreateElement("x:Wrapper")
			w.CreateAttr("xmlns:x", "urn:x")
			w.AddChild(rt.Copy())
		}, ErrMalformed, "is used by 2 elements"},
		{"Timestamp without Expires", func(doc *etree.Document) {
			ts := findNS(doc, NSWSU, "Timestamp")
			ts.RemoveChild(childNS(ts, NSWSU, "Expires"))
		}, ErrTimestamp, "Expires"},
		{"Timestamp with two Created", func(doc *etree.Document) {
			ts := findNS(doc, NSWSU, "Timestamp")
			ts.InsertChildAt(0, childNS(ts, NSWSU, "Created").Copy())
		}, ErrTimestamp, "Created"},
		{"element inside Created", func(doc *etree.Document) {
			c := childNS(findNS(doc, NSWSU, "Timestamp"), NSWSU, "Created")
			c.CreateElement("u:x")
		}, ErrTimestamp, "only text"},
		{"RelatesTo with another relationship", func(doc *etree.Document) {
			findNS(doc, NSWSA, "RelatesTo").CreateAttr("RelationshipType", "urn:x:forwarded")
		}, ErrMalformed, "RelationshipType"},
		{"RelatesTo explicitly a reply", func(doc *etree.Document) {
			findNS(doc, NSWSA, "RelatesTo").CreateAttr("RelationshipType", relationshipReply)
		}, nil, ""},
		{"element inside RelatesTo", func(doc *etree.Document) {
			rt := findNS(doc, NSWSA, "RelatesTo")
			rt.CreateElement("wsa:x")
			rt.CreateText("-more")
		}, ErrMalformed, "only text"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := resign(t, env, creds.Key, c.edit)
			m, err := Parse(data)
			if err == nil {
				_, err = m.Verify(VerifyOptions{Trust: trust, Now: now, Tolerance: time.Minute})
			}
			t.Log(err)
			if c.want == nil {
				if err != nil {
					t.Fatalf("must verify: %v\n%s", err, data)
				}
				if m.Addressing.RelatesTo != "urn:uuid:request" || m.Addressing.Action != "urn:action:response" {
					t.Errorf("addressing %+v", m.Addressing)
				}
				return
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v mentioning %q", err, c.want, c.msg)
			}
		})
	}
}
