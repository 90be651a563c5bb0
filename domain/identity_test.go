package domain

import (
	"strings"
	"testing"
)

// See "One form for subject and period" in docs/rules.md: two spellings of one subject are one
// subject.
func TestNormalizeSubjectMakesSpellingsOne(t *testing.T) {
	vat, _ := DefaultCatalog().Lookup(TypeVAT)
	for _, spelling := range []string{
		"001000044B37",
		"NL001000044B37",
		"nl001000044b37",
		"  NL001000044B37 ",
		"NL 0010.00.044.B.37",
		"ＮＬ００１００００４４Ｂ３７",       // full-width
		"NL001000044\u200bB37", // zero-width space
		"\ufeffNL001000044B37", // byte order mark
		"\u00a0NL001000044B37", // no-break space
		"NL001000044B37\u2060", // word joiner
	} {
		got, err := vat.NormalizeSubject(spelling)
		if err != nil || got != "001000044B37" {
			t.Errorf("NormalizeSubject(%q) = %q, %v; want 001000044B37", spelling, got, err)
		}
	}
	for _, c := range []struct {
		typ      MessageType
		in, want string
	}{
		{TypeIncomeTax, " 111 222 333 ", "111222333"},
		{TypeCorpTax, "８１２３４５６７８", "812345678"},
		{TypePayroll, "123456789l01", "123456789L01"},
		{TypeKvK, "1234 5678", "12345678"},
	} {
		spec, _ := DefaultCatalog().Lookup(c.typ)
		if got, err := spec.NormalizeSubject(c.in); err != nil || got != c.want {
			t.Errorf("%s NormalizeSubject(%q) = %q, %v; want %q", c.typ, c.in, got, err, c.want)
		}
	}
}

// See "Identity of the belanghebbende" in docs/rules.md: a subject that does not fit the
// type's number is refused, saying what is expected.
func TestNormalizeSubjectRefusesWhatDoesNotFit(t *testing.T) {
	cases := []struct {
		typ  MessageType
		in   string
		want []string
	}{
		{TypeVAT, "1", []string{`"1"`, "identity type BTW", "NL, 9 digits, B, 2 digits"}},
		{TypeVAT, "DE123456789", []string{"Dutch VAT number"}},
		{TypeVAT, "NL001000044B3", []string{"Dutch VAT number"}},
		{TypeICP, "123456789", []string{"icp messages", "VAT number"}},
		{TypeIncomeTax, "123456789", []string{"elfproef", "identity type Fi", "BSN"}},
		{TypeIncomeTax, "12345678", []string{"9 digits", "leading 0"}},
		{TypeCorpTax, "12345678A", []string{"RSIN", "9 digits"}},
		{TypePayroll, "123456789B01", []string{"loonheffingennummer", "identity type LHnr"}},
		{TypeKvK, "123456789", []string{"KvK number: 8 digits"}},
		{TypeVAT, "001000044B37\a", []string{"control character U+0007 at position 13"}},
		{TypeVAT, "0010\t00044B37", []string{"control character U+0009"}},
		{TypeVAT, "001000044B37\u202e", []string{"control character U+202E"}},
		{TypeVAT, "\xff", []string{"UTF-8"}},
	}
	for _, c := range cases {
		spec, _ := DefaultCatalog().Lookup(c.typ)
		_, err := spec.NormalizeSubject(c.in)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s NormalizeSubject(%q) = %v, want an error containing %q", c.typ, c.in, err, w)
			}
		}
	}
	// RSINs are not checked against the elfproef (it is not certain to hold).
	vpb, _ := DefaultCatalog().Lookup(TypeCorpTax)
	if _, err := vpb.NormalizeSubject("123456789"); err != nil {
		t.Errorf("an RSIN that fails the elfproef must not be refused: %v", err)
	}
}

func TestNormalizePeriod(t *testing.T) {
	for in, want := range map[string]string{"2026-q3": "2026-Q3", " ２０２６-10\u200b ": "2026-10", "2026": "2026"} {
		if got, err := NormalizePeriod(in); err != nil || got != want {
			t.Errorf("NormalizePeriod(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := NormalizePeriod("2026\n10"); err == nil || !strings.Contains(err.Error(), "control character U+000A") {
		t.Errorf("a line break must be refused: %v", err)
	}
}

func TestElfproef(t *testing.T) {
	for _, ok := range []string{"111222333", "123456782", "001000044"} {
		if !Elfproef(ok) {
			t.Errorf("%s passes the elfproef", ok)
		}
	}
	for _, bad := range []string{"123456789", "111222334", "12345678", "1234567890", "12345678a"} {
		if Elfproef(bad) {
			t.Errorf("%s fails the elfproef", bad)
		}
	}
}

// See "Identity of the belanghebbende" in docs/rules.md: the identity number follows from the
// identity type stored with the message; a reply about the number finds the stored subject.
func TestIdentityNumber(t *testing.T) {
	cases := []struct{ idType, subject, want string }{
		{IdentityBTW, "001000044B37", "NL001000044B37"},
		{IdentityFi, "001000044B37", "001000044B37"},
		{IdentityFi, "111222333", "111222333"},
		{IdentityLHnr, "123456789L01", "123456789L01"},
		{IdentityKvK, "12345678", "12345678"},
		{IdentityBTW, "legacy-1", "legacy-1"}, // stored before subjects were checked: sent as stored
	}
	for _, c := range cases {
		if got := IdentityNumber(c.idType, c.subject); got != c.want {
			t.Errorf("IdentityNumber(%s, %s) = %s, want %s", c.idType, c.subject, got, c.want)
		}
		if got := SubjectOfNumber(c.want); got != c.subject {
			t.Errorf("SubjectOfNumber(%s) = %s, want %s", c.want, got, c.subject)
		}
	}
	spec, _ := DefaultCatalog().Lookup(TypeVAT)
	if n, typ, err := spec.Identity("nl 001000044 b37"); err != nil || n != "NL001000044B37" || typ != IdentityBTW {
		t.Errorf("Identity = %s %s %v", n, typ, err)
	}
}

// See "Identity of the belanghebbende" in docs/rules.md: the identity type is a per-type
// setting with defaults, validated against what the type's subject is.
func TestIdentityTypeSettings(t *testing.T) {
	c := DefaultCatalog()
	want := map[MessageType]string{TypeVAT: IdentityBTW, TypeVATFix: IdentityBTW, TypeICP: IdentityBTW, TypeIncomeTax: IdentityFi,
		TypeCorpTax: IdentityFi, TypePayroll: IdentityLHnr, TypeKvK: IdentityKvK}
	for typ, idType := range want {
		if spec, _ := c.Lookup(typ); spec.IdentityType != idType {
			t.Errorf("default identity type of %s = %q, want %q", typ, spec.IdentityType, idType)
		}
	}
	fi, err := c.WithIdentityTypes(" btw=Fi , icp=fi")
	if err != nil {
		t.Fatal(err)
	}
	for typ, idType := range map[MessageType]string{TypeVAT: IdentityFi, TypeICP: IdentityFi, TypeVATFix: IdentityBTW} {
		if spec, _ := fi.Lookup(typ); spec.IdentityType != idType {
			t.Errorf("configured identity type of %s = %q, want %q", typ, spec.IdentityType, idType)
		}
	}
	if spec, _ := fi.Lookup(TypeVAT); spec.HowNumber() == "" || !strings.Contains(spec.HowNumber(), "conformance") {
		t.Errorf("Fi for VAT must say how the number is made: %q", spec.HowNumber())
	}
	if spec, _ := c.Lookup(TypeVAT); spec.IdentityType != IdentityBTW {
		t.Error("WithIdentityTypes must not change the catalog it was called on")
	}
	for bad, msg := range map[string]string{
		"ib=BTW":      "use Fi",
		"btw=LHnr":    "use BTW or Fi",
		"btw=OIN":     "cannot name",
		"btw":         "want type=identity type",
		"zz=Fi":       "unknown message type",
		"einvoice=Fi": "not sent through Digipoort",
	} {
		if _, err := c.WithIdentityTypes(bad); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("WithIdentityTypes(%q) = %v, want an error containing %q", bad, err, msg)
		}
	}
}
