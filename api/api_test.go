package api

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// The document served at /v1/openapi.json is a valid OpenAPI 3.1 document whose every
// operation answers problems in the one Problem schema. (e2e/api_test.go checks real
// responses against it.)
func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi %q: want 3.1", doc.OpenAPI)
	}
	routes := map[string][]string{
		"/healthz": {"GET"}, "/v1/openapi.json": {"GET"}, "/v1/messages": {"GET", "POST"}, "/v1/messages/{number}": {"GET"},
		"/v1/messages/{number}/documents": {"GET"}, "/v1/messages/{number}/documents/{id}": {"GET"}, "/v1/messages/{number}/process": {"POST"},
		"/v1/einvoices": {"GET"}, "/v1/einvoices/{number}": {"GET"}, "/v1/einvoices/{number}/document": {"GET"},
		"/v1/mail-profile": {"GET", "PUT", "DELETE"},
	}
	if n := doc.Paths.Len(); n != len(routes) {
		t.Errorf("the document has %d paths, the server %d", n, len(routes))
	}
	for path, methods := range routes {
		item := doc.Paths.Value(path)
		if item == nil {
			t.Errorf("%s is served but not documented", path)
			continue
		}
		for _, m := range methods {
			op := item.GetOperation(m)
			if op == nil {
				t.Errorf("%s %s is served but not documented", m, path)
				continue
			}
			for code, resp := range op.Responses.Map() {
				if code >= "400" && resp.Value.Content.Get(problemContentType) == nil {
					t.Errorf("%s %s %s is not a problem+json answer", m, path, code)
				}
			}
		}
	}
}

func TestBearer(t *testing.T) {
	cases := map[string]string{
		"Bearer kt_abc": "kt_abc", "bearer kt_abc": "kt_abc", "BEARER  kt_abc": "kt_abc",
		"": "", "Bearer": "", "Bearer ": "", "Basic a2Q6cHc=": "", "Bearer kt_a kt_b": "", "Bearerkt_abc": "",
		"Bearer " + strings.Repeat("a", 513): "",
	}
	for header, want := range cases {
		got, ok := bearer(header)
		if got != want || ok != (want != "") {
			t.Errorf("bearer(%q) = %q, %v; want %q", header, got, ok, want)
		}
	}
}

// decodedLen is exact, so that a file of exactly the limit passes and one byte more
// does not, before anything is decoded.
func TestDecodedLen(t *testing.T) {
	for n := 0; n < 10; n++ {
		s := base64.StdEncoding.EncodeToString(make([]byte, n))
		if got := decodedLen(s); got != int64(n) {
			t.Errorf("decodedLen of %d bytes = %d", n, got)
		}
	}
}

func TestMimeOf(t *testing.T) {
	cases := []struct{ name, declared, content, want string }{
		{"a.xbrl", "application/octet-stream", "<xbrl/>", "application/xml"}, // curl's type for an unknown extension
		{"a.xbrl", "", "<xbrl/>", "application/xml"},
		{"a.bin", "", " \n<x/>", "application/xml"},
		{"a.bin", "", "\x00\x01", "application/octet-stream"},
		{"a.pdf", "", "%PDF", "application/pdf"},
		{"a.xml", "text/xml; charset=utf-8", "<x/>", "text/xml"}, // parameters dropped: the store checks the type alone
		{"a.xml", "application/pdf", "<x/>", "application/pdf"},  // what the client declares stands
	}
	for _, c := range cases {
		if got := mimeOf(c.name, c.declared, []byte(c.content)); got != c.want {
			t.Errorf("mimeOf(%q, %q) = %q, want %q", c.name, c.declared, got, c.want)
		}
	}
}
