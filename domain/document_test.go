package domain

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var pngHeader = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")

const miniXBRL = `<?xml version="1.0"?><xbrli:xbrl xmlns:xbrli="http://www.xbrl.org/2003/instance"><n>1</n></xbrli:xbrl>`

// See "One form for subject and period" in docs/rules.md: the first file is the document the
// type expects; the error says what was found.
func TestCheckDocument(t *testing.T) {
	cases := []struct {
		name string
		kind DocumentKind
		a    Attachment
		want string // "" = accepted
	}{
		{"xbrl", DocumentXBRL, Attachment{"a.xbrl", "application/xml", []byte(miniXBRL)}, ""},
		{"other prefix, same namespace", DocumentXBRL,
			Attachment{"a.xbrl", "text/xml", []byte(`<x:xbrl xmlns:x="http://www.xbrl.org/2003/instance"/>`)}, ""},
		{"comment first", DocumentXBRL, Attachment{"a.xbrl", "text/xml", []byte("<!-- c -->\n" + miniXBRL)}, ""},
		{"png declared as xml", DocumentXBRL, Attachment{"a.xbrl", "application/xml", pngHeader}, "looks like image/png"},
		{"png", DocumentXBRL, Attachment{"scan.png", "image/png", pngHeader}, "declared as image/png"},
		{"pdf", DocumentXBRL, Attachment{"a.xml", "application/xml", []byte("%PDF-1.7\n")}, "looks like application/pdf"},
		{"wrong root", DocumentXBRL, Attachment{"a.xml", "application/xml", []byte(`<Loonaangifte xmlns="urn:x"/>`)},
			"its root element is <Loonaangifte> in namespace urn:x"},
		{"xbrl without namespace", DocumentXBRL, Attachment{"a.xml", "application/xml", []byte(`<xbrl/>`)}, "<xbrl> in no namespace"},
		{"other namespace", DocumentXBRL, Attachment{"a.xml", "application/xml", []byte(`<xbrli:xbrl xmlns:xbrli="http://www.xbrl.org/2001/instance"/>`)},
			"namespace http://www.xbrl.org/2001/instance"},
		{"not well-formed", DocumentXBRL, Attachment{"a.xml", "application/xml", []byte(`<xbrli:xbrl`)}, "not well-formed"},
		{"text", DocumentXBRL, Attachment{"a.xml", "application/xml", []byte("aangifte")}, "no root element"},
		{"payroll xml", DocumentXML, Attachment{"lh.xml", "application/xml", []byte(`<Loonaangifte xmlns="urn:x"/>`)}, ""},
		{"payroll png", DocumentXML, Attachment{"lh.xml", "application/xml", pngHeader}, "looks like image/png"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckDocument(c.kind, TypeVAT, c.a)
			if c.want == "" {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			if !strings.Contains(err.Error(), c.a.FileName) {
				t.Errorf("the error must name the file: %v", err)
			}
		})
	}
}

// The real VAT return from Logius' material, and the demo return, are what a btw
// message expects.
func TestRealVATReturnsAreXBRL(t *testing.T) {
	demo, err := os.ReadFile(filepath.Join("..", "internal", "demo", "omzetbelasting-demo.xbrl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckDocument(DocumentXBRL, TypeVAT, Attachment{"demo.xbrl", "application/xml", demo}); err != nil {
		t.Errorf("demo return: %v", err)
	}
	shared := filepath.Join("..", "..", "shared")
	if _, err := os.Stat(shared); os.IsNotExist(err) {
		t.Skipf("%s is absent: Logius' sample return is not available here", shared)
	}
	real, err := os.ReadFile(filepath.Join(shared, "digipoort", "fixtures", "omzetbelasting-2021.xbrl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckDocument(DocumentXBRL, TypeVAT, Attachment{"omzetbelasting-2021.xbrl", "text/xml", real}); err != nil {
		t.Errorf("Logius' sample return: %v", err)
	}
}

// See "Further files" in docs/rules.md: further files only for types whose process takes them;
// never dropped.
func TestCheckFiles(t *testing.T) {
	decl := Attachment{"a.xbrl", "application/xml", []byte(miniXBRL)}
	pdf := Attachment{"toelichting.pdf", "application/pdf", []byte("%PDF-1.7")}
	c := DefaultCatalog()
	for _, spec := range c.Types() {
		if spec.Attachments {
			t.Errorf("%s takes attachments by default; none is known to", spec.Type)
		}
	}
	vat, _ := c.Lookup(TypeVAT)
	if err := vat.CheckFiles([]Attachment{decl}); err != nil {
		t.Errorf("one declaration: %v", err)
	}
	err := vat.CheckFiles([]Attachment{decl, pdf})
	if err == nil || !strings.Contains(err.Error(), "toelichting.pdf") || !strings.Contains(err.Error(), "KOERIER_BIJLAGEN=btw=yes") {
		t.Errorf("an extra file for btw: %v", err)
	}
	if err := vat.CheckFiles(nil); err == nil || !strings.Contains(err.Error(), "at least one file") {
		t.Errorf("no file: %v", err)
	}
	if err := vat.CheckFiles([]Attachment{pdf, decl}); err == nil || !strings.Contains(err.Error(), "declared as application/pdf") {
		t.Errorf("declaration second: %v", err)
	}
	with, err := c.WithAttachments("vpb=yes, btw=true")
	if err != nil {
		t.Fatal(err)
	}
	if spec, _ := with.Lookup(TypeVAT); !spec.Attachments || spec.CheckFiles([]Attachment{decl, pdf}) != nil {
		t.Errorf("btw=true must take attachments: %+v", spec)
	}
	if spec, _ := with.Lookup(TypeICP); spec.Attachments {
		t.Error("only the types named take attachments")
	}
	for _, bad := range []string{"vpb=maybe", "vpb", "einvoice=yes", "zz=yes"} {
		if _, err := c.WithAttachments(bad); err == nil {
			t.Errorf("WithAttachments(%q) must fail", bad)
		}
	}
}
