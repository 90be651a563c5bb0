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
	for _, seed := range []string{"105", "500", "210", "", "999", " 311 ", "\x00", "420"} {
		f.Add(seed, "")
	}
	f.Add("420", "AFS600")
	f.Add("410", "AFS400")
	f.Fuzz(func(t *testing.T, code, foutcode string) {
		info := InterpretStatus(code, foutcode)
		if !info.Status.Valid() || info.Status == StatusReceived {
			t.Fatalf("InterpretStatus(%q, %q) gave status %q", code, foutcode, info.Status)
		}
		if info.Kind == KindUnknown && (info.Status.IsFinal() || !info.NeedsAction) {
			t.Fatalf("unknown code %q must keep the message open and ask for an operator: %+v", code, info)
		}
		if info.Error() && info.Advice == "" {
			t.Fatalf("error %q/%q without advice", code, foutcode)
		}
		if s := DeriveStatus([]StatusCode{{Code: code, Foutcode: foutcode}, {Code: "105"}}); s.Rank() < StatusSent.Rank() {
			t.Fatalf("DeriveStatus went below sent: %s", s)
		}
	})
}

func FuzzNormalizeSubject(f *testing.F) {
	for _, seed := range []string{"NL001000044B37", "ｎｌ００１０００", "111222333", "1\u200b2", "\x00", "123456789L01", "\xff", " "} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, spec := range DefaultCatalog().Types() {
			s, err := spec.NormalizeSubject(raw)
			if err != nil {
				continue
			}
			if again, err := spec.NormalizeSubject(s); err != nil || again != s {
				t.Fatalf("%s: %q normalised to %q, which normalises to %q (%v)", spec.Type, raw, s, again, err)
			}
			if spec.Subject != SubjectText && SubjectOfNumber(IdentityNumber(spec.IdentityType, s)) != s {
				t.Fatalf("%s: the number of %q does not lead back to it", spec.Type, s)
			}
			for _, r := range s {
				if zeroWidth(r) || r < 0x20 || r == 0x7f {
					t.Fatalf("%s: %q kept control or zero-width character %U", spec.Type, raw, r)
				}
			}
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
