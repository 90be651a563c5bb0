package wire

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"koerier/digipoort/internal/testfixtures"
)

var allOps = []string{OpAanleveren, OpGetStatussenProces, OpGetNieuweStatussenProces, OpGetNieuweStatussen, OpGetBerichtsoorten,
	OpGetProcessen, OpGetBerichten, OpGetNieuweBerichten, OpGetBerichtenLijst, OpGetNieuweBerichtenLijst, OpGetBerichtenKenmerk,
	OpGetNieuweBerichtenKenmerk}

// xsdSchema reads the request element declarations of Logius' XSD into Elements.
type xsdSchema struct {
	root               *etree.Element
	complexes, simples map[string]*etree.Element
	elementsByName     map[string]*etree.Element
	t                  *testing.T
}

func loadXSD(t *testing.T) *xsdSchema {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromFile(filepath.Join(testfixtures.Dir(t), "spec", "digipoort-koppelvlak-1.2.xsd")); err != nil {
		t.Fatal(err)
	}
	s := &xsdSchema{root: doc.Root(), complexes: map[string]*etree.Element{}, simples: map[string]*etree.Element{},
		elementsByName: map[string]*etree.Element{}, t: t}
	for _, c := range s.root.ChildElements() {
		name := c.SelectAttrValue("name", "")
		switch c.Tag {
		case "complexType":
			s.complexes[name] = c
		case "simpleType":
			s.simples[name] = c
		case "element":
			s.elementsByName[name] = c
		}
	}
	return s
}

func occurs(v string, def int) int {
	if v == "" {
		return def
	}
	if v == "unbounded" {
		return Unbounded
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		panic(err)
	}
	return n
}

// simple reads an xsd:simpleType's restriction.
func (s *xsdSchema) simple(st *etree.Element, e *Element) {
	r := st.SelectElement("restriction")
	if r == nil {
		s.t.Fatalf("simpleType of %s has no restriction", e.Name)
	}
	switch base := r.SelectAttrValue("base", ""); base {
	case "xsd:normalizedString":
		e.Type = TypeNormalizedString
	case "xsd:anyURI":
		e.Type = TypeAnyURI
	case "xsd:base64Binary":
		e.Type = TypeBase64Binary
	default:
		s.t.Fatalf("%s: restriction base %s not handled", e.Name, base)
	}
	if ml := r.SelectElement("maxLength"); ml != nil {
		e.MaxLength = occurs(ml.SelectAttrValue("value", ""), 0)
	}
}

func (s *xsdSchema) sequence(ct *etree.Element) []Element {
	seq := ct.SelectElement("sequence")
	if seq == nil {
		s.t.Fatalf("complexType %s has no sequence", ct.SelectAttrValue("name", "(anonymous)"))
	}
	var out []Element
	for _, el := range seq.SelectElements("element") {
		out = append(out, s.element(el))
	}
	return out
}

func (s *xsdSchema) element(el *etree.Element) Element {
	e := Element{Name: el.SelectAttrValue("name", ""), MinOccurs: occurs(el.SelectAttrValue("minOccurs", ""), 1),
		MaxOccurs: occurs(el.SelectAttrValue("maxOccurs", ""), 1)}
	switch typ := el.SelectAttrValue("type", ""); {
	case typ == "xsd:dateTime":
		e.Type = TypeDateTime
	case strings.HasPrefix(typ, "tns:"):
		name := strings.TrimPrefix(typ, "tns:")
		if ct := s.complexes[name]; ct != nil {
			e.Type = TypeComplex
			e.Children = s.sequence(ct)
		} else if st := s.simples[name]; st != nil {
			s.simple(st, &e)
		} else {
			s.t.Fatalf("%s: type %s not in the XSD", e.Name, typ)
		}
	case typ == "":
		if st := el.SelectElement("simpleType"); st != nil {
			s.simple(st, &e)
		} else if ct := el.SelectElement("complexType"); ct != nil {
			e.Type = TypeComplex
			e.Children = s.sequence(ct)
		}
	default:
		s.t.Fatalf("%s: type %s not handled", e.Name, typ)
	}
	return e
}

func describe(e Element, indent string, b *strings.Builder) {
	fmt.Fprintf(b, "%s%s [%d..%d] %s max=%d\n", indent, e.Name, e.MinOccurs, e.MaxOccurs, e.Type, e.MaxLength)
	for _, c := range e.Children {
		describe(c, indent+"  ", b)
	}
}

// TestRequestSchemaMatchesXSD proves that the structure ValidateRequest checks, derived
// from the request types, is the XSD's: for every operation the same elements in the
// same order, with the same minOccurs, maxOccurs, type and maxLength, all the way down.
func TestRequestSchemaMatchesXSD(t *testing.T) {
	x := loadXSD(t)
	for _, op := range allOps {
		decl := x.elementsByName[RequestElement(op)]
		if decl == nil {
			t.Fatalf("the XSD declares no %s", RequestElement(op))
		}
		want := x.element(decl)
		got, err := RequestSchema(op)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			var g, w strings.Builder
			describe(got, "", &g)
			describe(want, "", &w)
			t.Errorf("%s: derived from the Go types:\n%s\nin the XSD:\n%s", op, g.String(), w.String())
		}
	}
	if len(requestTypes) != len(allOps) {
		t.Errorf("%d request types for %d operations", len(requestTypes), len(allOps))
	}
}

func must(t *testing.T, v any) string {
	t.Helper()
	b, err := xml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// requestsFor returns a request of each operation with every element filled in, and
// one with only the required ones.
func requestsFor(t *testing.T) map[string][2]string {
	now := &Time{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	id := Identiteit{Nummer: "001000044B37", Type: "Fi"}
	inhoud := BerichtInhoud{MimeType: "text/xml", Bestandsnaam: "a.xbrl", Inhoud: base64.StdEncoding.EncodeToString([]byte("<a/>"))}
	const adres = "http://geenausp.nl"
	window := func(name string) (StatusWindowRequest, StatusWindowRequest) {
		return StatusWindowRequest{XMLName: Name(name), Kenmerk: "k1", AutorisatieAdres: adres, TijdstempelVanaf: now, TijdstempelTot: now},
			StatusWindowRequest{XMLName: Name(name), Kenmerk: "k1"}
	}
	sp, spMin := window("getStatussenProcesRequest")
	nsp, nspMin := window("getNieuweStatussenProcesRequest")
	out := map[string][2]string{
		OpAanleveren: {must(t, &AanleverRequest{Kenmerk: "k", Berichtsoort: "Omzetbelasting", Aanleverkenmerk: "ak", EerderAanleverkenmerk: "ek",
			IdentiteitBelanghebbende: id, RolBelanghebbende: "Bedrijf", IdentiteitOntvanger: &Identiteit{Nummer: "00000002003214394002", Type: "OIN"},
			RolOntvanger: "Ontvanger", BerichtInhoud: inhoud, BerichtBijlagen: &Bijlagen{Bijlage: []BerichtInhoud{inhoud, inhoud}}, AutorisatieAdres: adres}),
			must(t, &AanleverRequest{Berichtsoort: "Omzetbelasting", IdentiteitBelanghebbende: id, RolBelanghebbende: "Bedrijf", BerichtInhoud: inhoud})},
		OpGetStatussenProces:       {must(t, &sp), must(t, &spMin)},
		OpGetNieuweStatussenProces: {must(t, &nsp), must(t, &nspMin)},
		OpGetNieuweStatussen: {must(t, &GetNieuweStatussenRequest{Berichtsoort: "ICP", IdentiteitBelanghebbende: id, AutorisatieAdres: adres,
			TijdstempelVanaf: now, TijdstempelTot: now}), must(t, &GetNieuweStatussenRequest{Berichtsoort: "ICP", IdentiteitBelanghebbende: id})},
		OpGetBerichtsoorten: {must(t, &GetBerichtsoortenRequest{IdentiteitBelanghebbende: id, AutorisatieAdres: adres}),
			must(t, &GetBerichtsoortenRequest{IdentiteitBelanghebbende: id})},
		OpGetProcessen: {must(t, &GetProcessenRequest{Berichtsoort: "ICP", IdentiteitBelanghebbende: id, AutorisatieAdres: adres}),
			must(t, &GetProcessenRequest{Berichtsoort: "ICP", IdentiteitBelanghebbende: id})},
		OpGetBerichten: {must(t, &GetBerichtenRequest{XMLName: Name("getBerichtenRequest"), Berichtsoort: "ICP", IdentiteitBelanghebbende: id,
			AutorisatieAdres: adres, TijdstempelVanaf: now, TijdstempelTot: now}),
			must(t, &GetBerichtenRequest{XMLName: Name("getBerichtenRequest"), IdentiteitBelanghebbende: id})},
		OpGetNieuweBerichten: {must(t, &GetBerichtenRequest{XMLName: Name("getNieuweBerichtenRequest"), Berichtsoort: "ICP", IdentiteitBelanghebbende: id,
			AutorisatieAdres: adres, TijdstempelVanaf: now, TijdstempelTot: now}),
			must(t, &GetBerichtenRequest{XMLName: Name("getNieuweBerichtenRequest"), IdentiteitBelanghebbende: id})},
		OpGetBerichtenLijst: {must(t, &GetBerichtenLijstRequest{XMLName: Name("getBerichtenLijstRequest"), Berichtsoort: "ICP", AutorisatieAdres: adres,
			TijdstempelVanaf: now, TijdstempelTot: now}), must(t, &GetBerichtenLijstRequest{XMLName: Name("getBerichtenLijstRequest")})},
		OpGetNieuweBerichtenLijst: {must(t, &GetBerichtenLijstRequest{XMLName: Name("getNieuweBerichtenLijstRequest"), Berichtsoort: "ICP",
			AutorisatieAdres: adres, TijdstempelVanaf: now, TijdstempelTot: now}),
			must(t, &GetBerichtenLijstRequest{XMLName: Name("getNieuweBerichtenLijstRequest")})},
		OpGetBerichtenKenmerk: {must(t, &GetBerichtenKenmerkRequest{XMLName: Name("getBerichtenKenmerkRequest"), Kenmerk: "k1", AutorisatieAdres: adres,
			TijdstempelVanaf: now, TijdstempelTot: now}), must(t, &GetBerichtenKenmerkRequest{XMLName: Name("getBerichtenKenmerkRequest"), Kenmerk: "k1"})},
		OpGetNieuweBerichtenKenmerk: {must(t, &GetBerichtenKenmerkRequest{XMLName: Name("getNieuweBerichtenKenmerkRequest"), Kenmerk: "k1",
			AutorisatieAdres: adres, TijdstempelVanaf: now, TijdstempelTot: now}),
			must(t, &GetBerichtenKenmerkRequest{XMLName: Name("getNieuweBerichtenKenmerkRequest"), Kenmerk: "k1"})},
	}
	return out
}

type schemaCase struct {
	name, op, xml string
	want          Problem // "" = valid
}

// brokenRequests are requests that break the XSD in each way ValidateRequest checks,
// made by editing valid ones.
func brokenRequests(t *testing.T, reqs map[string][2]string) []schemaCase {
	edit := func(s, old, new string) string {
		t.Helper()
		if !strings.Contains(s, old) {
			t.Fatalf("%q not in %s", old, s)
		}
		return strings.Replace(s, old, new, 1)
	}
	full := reqs[OpAanleveren][0]
	min := reqs[OpAanleveren][1]
	lijst := reqs[OpGetBerichtenLijst][0]
	status := reqs[OpGetStatussenProces][0]
	long := func(n int) string { return strings.Repeat("x", n) }
	return []schemaCase{
		{"root without namespace", OpAanleveren, edit(min, ` xmlns="`+NS+`"`, ""), ProblemWrongOpName},
		{"child without namespace", OpAanleveren, edit(min, "<berichtsoort>", `<berichtsoort xmlns="">`), ProblemNamespace},
		{"child in another namespace", OpGetStatussenProces, edit(status, "<kenmerk>", `<kenmerk xmlns="urn:other">`), ProblemNamespace},
		{"swapped", OpAanleveren, edit(edit(full, "<kenmerk>k</kenmerk>", ""), "</berichtsoort>", "</berichtsoort><kenmerk>k</kenmerk>"), ProblemOrder},
		{"autorisatieAdres before the window", OpGetBerichtenLijst, edit(edit(lijst, "<autorisatieAdres>http://geenausp.nl</autorisatieAdres>", ""),
			"</getBerichtenLijstRequest>", "<autorisatieAdres>http://geenausp.nl</autorisatieAdres></getBerichtenLijstRequest>"), ProblemOrder},
		{"unknown element", OpAanleveren, edit(min, "</aanleverRequest>", "<prioriteit>hoog</prioriteit></aanleverRequest>"), ProblemUnknown},
		{"unknown element inside", OpAanleveren, edit(min, "</identiteitBelanghebbende>", "<naam>x</naam></identiteitBelanghebbende>"), ProblemUnknown},
		{"element of the response", OpAanleveren, edit(min, "<rolBelanghebbende>",
			"<tijdstempelAangeleverd>2026-01-01T00:00:00Z</tijdstempelAangeleverd><rolBelanghebbende>"),
			ProblemUnknown},
		{"missing berichtsoort", OpAanleveren, edit(min, "<berichtsoort>Omzetbelasting</berichtsoort>", ""), ProblemMissing},
		{"missing inhoud", OpAanleveren, edit(min, "<inhoud>PGEvPg==</inhoud>", ""), ProblemMissing},
		{"missing kenmerk", OpGetStatussenProces, edit(status, "<kenmerk>k1</kenmerk>", ""), ProblemMissing},
		{"missing nummer", OpAanleveren, edit(min, "<nummer>001000044B37</nummer>", ""), ProblemMissing},
		{"empty bijlagen", OpAanleveren, edit(min, "</berichtInhoud>", "</berichtInhoud><berichtBijlagen></berichtBijlagen>"), ProblemMissing},
		{"two kenmerken", OpGetStatussenProces, edit(status, "<kenmerk>k1</kenmerk>", "<kenmerk>k1</kenmerk><kenmerk>k2</kenmerk>"), ProblemTooMany},
		{"aanleverkenmerk of 41", OpAanleveren, edit(full, "<aanleverkenmerk>ak</aanleverkenmerk>", "<aanleverkenmerk>"+long(41)+"</aanleverkenmerk>"),
			ProblemTooLong},
		{"kenmerk of 41", OpGetStatussenProces, edit(status, "<kenmerk>k1</kenmerk>", "<kenmerk>"+long(41)+"</kenmerk>"), ProblemTooLong},
		{"berichtsoort of 81", OpAanleveren, edit(min, "Omzetbelasting", long(81)), ProblemTooLong},
		{"bestandsnaam of 81", OpAanleveren, edit(min, "a.xbrl", long(81)), ProblemTooLong},
		{"nummer of 36", OpAanleveren, edit(min, "001000044B37", long(36)), ProblemTooLong},
		{"type of 21", OpAanleveren, edit(min, "<type>Fi</type>", "<type>"+long(21)+"</type>"), ProblemTooLong},
		{"rol of 41", OpAanleveren, edit(min, "Bedrijf", long(41)), ProblemTooLong},
		{"autorisatieAdres of 256", OpGetBerichtenLijst, edit(lijst, "http://geenausp.nl", "http://"+long(249)), ProblemTooLong},
		{"not a dateTime", OpGetBerichtenLijst, edit(lijst, "2026-03-01T12:00:00.000Z</tijdstempelVanaf>", "gisteren</tijdstempelVanaf>"), ProblemInvalid},
		{"month 13", OpGetStatussenProces, edit(status, "2026-03-01T12:00:00.000Z</tijdstempelVanaf>", "2026-13-01T12:00:00Z</tijdstempelVanaf>"),
			ProblemInvalid},
		{"not base64", OpAanleveren, edit(min, "PGEvPg==", "PGEv*g=="), ProblemInvalid},
		{"attribute", OpAanleveren, edit(min, "<berichtsoort>", `<berichtsoort id="x">`), ProblemUnknown},
		{"text between elements", OpAanleveren, edit(min, "<nummer>", "los<nummer>"), ProblemText},
		{"element in a text element", OpAanleveren, edit(min, "<berichtsoort>Omzetbelasting", "<berichtsoort><b>Omzetbelasting</b>"), ProblemText},
		// Valid, though unusual.
		{"whitespace collapses to 40", OpGetStatussenProces, edit(status, "<kenmerk>k1</kenmerk>", "<kenmerk>  "+long(40)+"\n </kenmerk>"), ""},
		{"prefixed namespace", OpGetBerichtenKenmerk,
			`<d:getBerichtenKenmerkRequest xmlns:d="` + NS + `"><d:kenmerk>k</d:kenmerk></d:getBerichtenKenmerkRequest>`, ""},
		{"dateTime without zone", OpGetBerichtenLijst, edit(lijst, "2026-03-01T12:00:00.000Z</tijdstempelVanaf>", "2026-03-01T12:00:00</tijdstempelVanaf>"), ""},
		{"base64 with line breaks", OpAanleveren, edit(min, "PGEvPg==", "PGEv\nPg=="), ""},
		{"empty berichtsoort", OpAanleveren, edit(min, "<berichtsoort>Omzetbelasting</berichtsoort>", "<berichtsoort></berichtsoort>"), ""},
	}
}

// TestValidateRequestAgreesWithXMLLint runs valid and broken requests through both
// ValidateRequest and xmllint with Logius' XSD: they must agree on every one, and the
// broken ones must fail for the expected reason.
func TestValidateRequestAgreesWithXMLLint(t *testing.T) {
	xsd := filepath.Join(testfixtures.Dir(t), "spec", "digipoort-koppelvlak-1.2.xsd")
	xmllint := testfixtures.XMLLint(t)
	reqs := requestsFor(t)
	var cases []schemaCase
	for _, op := range allOps {
		cases = append(cases, schemaCase{"full " + op, op, reqs[op][0], ""}, schemaCase{"minimal " + op, op, reqs[op][1], ""})
	}
	cases = append(cases, brokenRequests(t, reqs)...)
	dir := t.TempDir()
	files := make([]string, len(cases))
	for i, c := range cases {
		files[i] = filepath.Join(dir, fmt.Sprintf("case%02d.xml", i))
		if err := os.WriteFile(files[i], []byte(c.xml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, _ := exec.Command(xmllint, append([]string{"--noout", "--schema", xsd}, files...)...).CombinedOutput()
	lint := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f, ok := strings.CutSuffix(line, " validates"); ok {
			lint[f] = true
		} else if f, ok := strings.CutSuffix(line, " fails to validate"); ok {
			lint[f] = false
		}
	}
	for i, c := range cases {
		valid, ok := lint[files[i]]
		if !ok {
			t.Fatalf("xmllint said nothing about %s (%s):\n%s", files[i], c.name, out)
		}
		err := ValidateRequest(c.op, []byte(c.xml))
		var se *SchemaError
		switch {
		case valid != (c.want == ""):
			t.Errorf("%s: xmllint says valid=%v, the case expects %q", c.name, valid, c.want)
		case c.want == "" && err != nil:
			t.Errorf("%s: valid for xmllint, refused: %v", c.name, err)
		case c.want != "" && !errors.As(err, &se):
			t.Errorf("%s: invalid for xmllint, ValidateRequest says %v", c.name, err)
		case c.want != "" && se.Problem != c.want:
			t.Errorf("%s: %v, want problem %s", c.name, err, c.want)
		}
	}
	if t.Failed() {
		t.Logf("xmllint:\n%s", out)
	}
}

// TestValidateRequestNames: the error says where, so a fault can name the element.
func TestValidateRequestNames(t *testing.T) {
	reqs := requestsFor(t)
	var se *SchemaError
	err := ValidateRequest(OpAanleveren, []byte(strings.Replace(reqs[OpAanleveren][1], "a.xbrl", strings.Repeat("b", 81), 1)))
	if !errors.As(err, &se) || se.Path != "aanleverRequest/berichtInhoud/bestandsnaam" || !strings.Contains(se.Detail, "81 characters, at most 80") {
		t.Errorf("%#v", err)
	}
	// The XSD declares every request globally, so only the operation says which one it
	// must be.
	if err := ValidateRequest(OpGetBerichtenLijst, []byte(reqs[OpGetNieuweBerichtenLijst][0])); !errors.As(err, &se) || se.Problem != ProblemWrongOpName {
		t.Errorf("the Nieuwe request for the plain operation: %v", err)
	}
	if err := ValidateRequest("getAlles", []byte(reqs[OpAanleveren][1])); err == nil {
		t.Error("an unknown operation validated")
	}
	if err := ValidateRequest(OpGetBerichtenLijst, []byte("<getBerichtenLijstRequest")); !errors.As(err, &se) || se.Problem != ProblemNotXML {
		t.Errorf("truncated: %v", err)
	}
	// A second root element and trailing text are not a request.
	if err := ValidateRequest(OpGetBerichtenLijst, []byte(reqs[OpGetBerichtenLijst][1]+"<x/>")); !errors.As(err, &se) || se.Problem != ProblemUnknown {
		t.Errorf("two roots: %v", err)
	}
}

func TestBase64Length(t *testing.T) {
	for in, want := range map[string]int{"": 0, "QQ==": 1, "QUI=": 2, "QUJD": 3, "QUJD\nREVG": 6, " Q Q = = ": 1} {
		if n, err := base64Length([]byte(in)); err != nil || n != want {
			t.Errorf("%q: %d %v, want %d", in, n, err, want)
		}
	}
	for _, bad := range []string{"Q", "QQ=", "QQ==QQ==", "Q===", "QQ-_", "QUJD="} {
		if _, err := base64Length([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// 20 MiB is the limit, counted in decoded octets.
	e := Element{Name: "inhoud", Type: TypeBase64Binary, MaxLength: 20 << 20}
	if err := checkValue(e, "x", []byte(base64.StdEncoding.EncodeToString(make([]byte, 20<<20)))); err != nil {
		t.Errorf("20 MiB: %v", err)
	}
	if err := checkValue(e, "x", []byte(base64.StdEncoding.EncodeToString(make([]byte, 20<<20+1)))); err == nil {
		t.Error("20 MiB + 1 accepted")
	}
}

// BenchmarkValidateMaximumDelivery: the check of a delivery of the maximum 20 MiB
// (go test -run '^$' -bench ValidateMaximum ./digipoort/internal/wire/).
func BenchmarkValidateMaximumDelivery(b *testing.B) {
	payload, err := xml.Marshal(&AanleverRequest{Berichtsoort: "Omzetbelasting", IdentiteitBelanghebbende: Identiteit{Nummer: "1", Type: "Fi"},
		RolBelanghebbende: "Bedrijf", BerichtInhoud: BerichtInhoud{MimeType: "text/xml", Bestandsnaam: "a.xbrl",
			Inhoud: base64.StdEncoding.EncodeToString(make([]byte, 20<<20))}, AutorisatieAdres: "http://geenausp.nl"})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if err := ValidateRequest(OpAanleveren, payload); err != nil {
			b.Fatal(err)
		}
	}
}
