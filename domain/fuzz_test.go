package domain

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Every parser that reads outside input: never panics, and its answers hold together.

func FuzzWellFormedXML(f *testing.F) {
	for _, seed := range []string{
		`<a/>`, `<?xml version="1.0"?><a><b>x</b></a>`, `<a>`, ``, "\xff", `<a></b>`, `<a/><b/>`, `text`,
		`<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := WellFormedXML(b)
		if err == nil && !utf8.Valid(b) {
			t.Fatalf("invalid UTF-8 accepted: %q", b)
		}
		a := Attachment{FileName: "f.xml", MimeType: "application/xml", Content: b}
		if verr := a.Validate(); (verr == nil) != (err == nil && len(b) > 0) {
			t.Fatalf("Validate and WellFormedXML disagree on %q: %v / %v", b, verr, err)
		}
	})
}

func FuzzParseAanleverkenmerk(f *testing.F) {
	for _, seed := range []string{"KOERIER-1000001", "KOERIER-1000001-2", "KOERIER-5-1", "", "-", "KOERIER-00", "KOERIER-9223372036854775807",
		"KOERIER-1-99999999999999999999", "1000001"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		n, a, ok := ParseAanleverkenmerk(DefaultAanleverkenmerkPrefix, ref)
		if !ok {
			return
		}
		if got := Aanleverkenmerk(DefaultAanleverkenmerkPrefix, n, a); got != ref {
			t.Fatalf("ParseAanleverkenmerk(%q) = %d,%d but Aanleverkenmerk gives %q", ref, n, a, got)
		}
	})
}

func FuzzInterpretCode(f *testing.F) {
	for _, seed := range []string{"105", "500", "210", "", "999", " 311 ", "\x00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, code string) {
		info := InterpretCode(code)
		if !info.Status.Valid() || info.Status == StatusReceived {
			t.Fatalf("InterpretCode(%q) gave status %q", code, info.Status)
		}
		if info.Kind == KindUnknown && (info.Status.IsFinal() || !info.NeedsAction) {
			t.Fatalf("unknown code %q must keep the message open and ask for an operator: %+v", code, info)
		}
		if s := DeriveStatus([]string{code, "105"}); s.Rank() < StatusSent.Rank() {
			t.Fatalf("DeriveStatus went below sent: %s", s)
		}
	})
}

func FuzzDeclarationValidate(f *testing.F) {
	f.Add("acme", "btw", "001000044B37", "2026-10")
	f.Add("", "", "", "")
	f.Add("a", "ib", strings.Repeat("é", 36), "2026/1")
	f.Fuzz(func(t *testing.T, env, typ, subject, period string) {
		d := Declaration{Environment: env, Type: MessageType(typ), Subject: subject, Period: period}
		if d.Validate() != nil {
			return
		}
		if utf8.RuneCountInString(subject) > MaxSubjectLen || strings.Contains(d.Key()[len(env)+1:], "//") {
			t.Fatalf("accepted %+v", d)
		}
	})
}

func FuzzBerichtsoortenConfig(f *testing.F) {
	f.Add("ib=IB,vpb=VPB")
	f.Add("=,=,,")
	f.Fuzz(func(t *testing.T, cfg string) {
		c, err := DefaultCatalog().WithBerichtsoorten(cfg)
		if err != nil {
			return
		}
		for _, spec := range c.Types() {
			if len(spec.Berichtsoort) > MaxBerichtsoortLen {
				t.Fatalf("berichtsoort over the limit accepted: %q", spec.Berichtsoort)
			}
		}
	})
}
