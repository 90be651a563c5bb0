package domain

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestCatalog(t *testing.T) {
	c := DefaultCatalog()
	for _, typ := range []MessageType{TypeVAT, TypeICP, TypeIncomeTax, TypeCorpTax, TypePayroll, TypeKvK} {
		spec, err := c.Lookup(typ)
		if err != nil {
			t.Fatalf("%s must be known: %v", typ, err)
		}
		if spec.Channel != ChannelDigipoort {
			t.Errorf("%s must go through Digipoort", typ)
		}
	}
	confirmed := map[MessageType]string{TypeVAT: "Omzetbelasting", TypeVATFix: "OBSUP", TypeICP: "ICP", TypePayroll: "Aangifte_LH"}
	for typ, want := range confirmed {
		if spec, _ := c.Lookup(typ); spec.Berichtsoort != want {
			t.Errorf("%s berichtsoort = %q, want %q", typ, spec.Berichtsoort, want)
		}
	}
	// Names Logius did not confirm come from configuration, never from code.
	for _, typ := range []MessageType{TypeIncomeTax, TypeCorpTax, TypeKvK} {
		spec, _ := c.Lookup(typ)
		if spec.Berichtsoort != "" {
			t.Errorf("%s has hard-coded berichtsoort %q", typ, spec.Berichtsoort)
		}
		err := spec.ReadyToQueue(Profile{})
		if err == nil || !strings.Contains(err.Error(), "KOERIER_BERICHTSOORTEN="+string(typ)) {
			t.Errorf("%s without berichtsoort: %v, want an error naming the setting", typ, err)
		}
	}
	configured, err := c.WithBerichtsoorten(" ib=IB_2026 , vpb=VPB_2026,kvk=KvK_Jaarverantwoording ")
	if err != nil {
		t.Fatal(err)
	}
	if spec, _ := configured.Lookup(TypeIncomeTax); spec.Berichtsoort != "IB_2026" || spec.ReadyToQueue(Profile{}) != nil {
		t.Errorf("configured ib: %+v", spec)
	}
	if spec, _ := c.Lookup(TypeIncomeTax); spec.Berichtsoort != "" {
		t.Error("WithBerichtsoorten must not change the catalog it was called on")
	}
	for _, bad := range []string{"ib", "ib=", "zz=X", "einvoice=X", "ib=" + strings.Repeat("x", 81)} {
		if _, err := c.WithBerichtsoorten(bad); err == nil {
			t.Errorf("WithBerichtsoorten(%q) must fail", bad)
		}
	}
	if _, err := c.Lookup("btw2"); err == nil || !strings.Contains(err.Error(), "btw") {
		t.Errorf("unknown type error must list the known types: %v", err)
	}
}

// Rule 2 (docs/rules.md): only e-invoices go out by e-mail, and then through the
// environment.
func TestEInvoicesLeaveThroughTheEnvironment(t *testing.T) {
	spec, err := DefaultCatalog().Lookup(TypeEInvoice)
	if err != nil || spec.Channel != ChannelEmail {
		t.Fatalf("einvoice must be an e-mail type: %+v %v", spec, err)
	}
	if err := spec.ReadyToQueue(Profile{Environment: "acme"}); err == nil || !strings.Contains(err.Error(), "environment acme has none") ||
		!strings.Contains(err.Error(), "starter environments set acme --local-mail") {
		t.Errorf("without profile: %v", err)
	}
	if err := spec.ReadyToQueue(Profile{Environment: "acme", EmailFrom: "facturen@acme.example"}); err != nil {
		t.Errorf("with profile: %v", err)
	}
}

func TestDeclarationValidate(t *testing.T) {
	ok := Declaration{Environment: "a", Type: TypeVAT, Subject: "001000044B37", Period: "2026-10"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if ok.Key() != "a/btw/001000044B37/2026-10" {
		t.Errorf("key %q", ok.Key())
	}
	bad := map[string]Declaration{
		"empty subject":   {Environment: "a", Type: TypeVAT, Subject: " ", Period: "2026"},
		"long subject":    {Environment: "a", Type: TypeVAT, Subject: strings.Repeat("9", 36), Period: "2026"},
		"invalid utf8":    {Environment: "a", Type: TypeVAT, Subject: "\xff\xfe", Period: "2026"},
		"slash in period": {Environment: "a", Type: TypeVAT, Subject: "1", Period: "2026/10"},
		"empty env":       {Type: TypeVAT, Subject: "1", Period: "2026"},
		"empty type":      {Environment: "a", Subject: "1", Period: "2026"},
		"newline subject": {Environment: "a", Type: TypeVAT, Subject: "1\n2", Period: "2026"},
		"period too long": {Environment: "a", Type: TypeVAT, Subject: "1", Period: strings.Repeat("1", 33)},
	}
	for name, d := range bad {
		if err := d.Validate(); err == nil {
			t.Errorf("%s: must be refused", name)
		}
	}
	if err := (Declaration{Environment: "a", Type: TypeVAT, Subject: strings.Repeat("é", 35), Period: "2026"}).Validate(); err != nil {
		t.Errorf("35 characters (not bytes) is allowed: %v", err)
	}
}

func TestAttachmentValidate(t *testing.T) {
	xmlOK := []byte(`<?xml version="1.0"?><a><b>x</b></a>`)
	cases := []struct {
		name string
		a    Attachment
		want string // substring of the error; "" = valid
	}{
		{"valid xml", Attachment{"a.xbrl", "application/xml", xmlOK}, ""},
		{"valid binary", Attachment{"a.pdf", "application/pdf", []byte{0, 1, 2}}, ""},
		{"empty", Attachment{"a.xml", "text/xml", nil}, "is empty"},
		{"no name", Attachment{"", "text/xml", xmlOK}, "no file name"},
		{"long name", Attachment{strings.Repeat("a", 81), "text/xml", xmlOK}, "at most 80"},
		{"no mime", Attachment{"a.xml", "", xmlOK}, "no mime type"},
		{"oversized", Attachment{"a.pdf", "application/pdf", make([]byte, MaxAttachmentSize+1)}, "over Digipoort's limit"},
		{"truncated", Attachment{"a.xml", "text/xml", []byte(`<a><b>x</b>`)}, "not well-formed"},
		{"not xml", Attachment{"a.xml", "text/xml", []byte("PK\x03\x04 zip")}, "not well-formed"},
		{"invalid utf8", Attachment{"a.xml", "text/xml", []byte("<a>\xff</a>")}, "UTF-8"},
		{"two roots", Attachment{"a.xml", "text/xml", []byte("<a/><b/>")}, "more than one root"},
		{"text only", Attachment{"a.xml", "application/xml", []byte("hello")}, "not well-formed"},
		{"mismatched", Attachment{"a.xml", "text/xml", []byte("<a></b>")}, "not well-formed"},
		{"ubl", Attachment{"f.xml", "application/vnd.oasis.ubl+xml", []byte("<a")}, "not well-formed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.a.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want error containing %q", err, c.want)
			}
		})
	}
	exact := Attachment{"a.pdf", "application/pdf", bytes.Repeat([]byte{1}, MaxAttachmentSize)}
	if err := exact.Validate(); err != nil {
		t.Errorf("exactly 20 MiB is allowed: %v", err)
	}
}

// Rule 3.
func TestOnlyTheLatestVersionMaySend(t *testing.T) {
	cases := []struct {
		name   string
		v      Version
		latest int
		want   string
	}{
		{"latest queued", Version{1, 2, StatusQueued, false}, 2, ""},
		{"latest ready to resend", Version{1, 2, StatusReadyToResend, false}, 2, ""},
		{"older version", Version{1, 1, StatusQueued, false}, 2, "version 2 exists"},
		{"do not send", Version{1, 2, StatusQueued, true}, 2, "do-not-send"},
		{"already sent", Version{1, 1, StatusSent, false}, 1, "not due"},
		{"failed needs restore", Version{1, 1, StatusSendFailed, false}, 1, "not due"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkErr(t, MaySend(c.v, c.latest), c.want) })
	}
}

func TestRestoreRules(t *testing.T) {
	cases := []struct {
		name   string
		v      Version
		latest int
		want   string
	}{
		{"rejected latest", Version{7, 1, StatusRejected, false}, 1, ""},
		{"failed latest", Version{7, 3, StatusFailed, false}, 3, ""},
		{"send failed latest", Version{7, 1, StatusSendFailed, false}, 1, ""},
		{"old version", Version{7, 1, StatusRejected, false}, 2, "version 2 exists"},
		{"accepted", Version{7, 1, StatusAccepted, false}, 1, "only a message that failed"},
		{"in progress", Version{7, 1, StatusInProgress, false}, 1, "only a message that failed"},
		{"queued", Version{7, 1, StatusQueued, false}, 1, "only a message that failed"},
		{"superseded", Version{7, 2, StatusSendFailed, true}, 2, "do-not-send"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkErr(t, MayRestore(c.v, c.latest), c.want) })
	}
}

func TestAanleverkenmerk(t *testing.T) {
	cases := []struct {
		number  int64
		attempt int
		want    string
	}{{2026000123, 1, "KR1-2026000123"}, {2026000123, 0, "KR1-2026000123"}, {5, 2, "KR1-5-2"}, {5, 13, "KR1-5-13"}}
	for _, c := range cases {
		got := Aanleverkenmerk("KR1", c.number, c.attempt)
		if got != c.want {
			t.Errorf("Aanleverkenmerk(%d,%d) = %q want %q", c.number, c.attempt, got, c.want)
		}
		n, a, ok := ParseAanleverkenmerk("KR1", got)
		if !ok || n != c.number || a != max(c.attempt, 1) {
			t.Errorf("ParseAanleverkenmerk(%q) = %d,%d,%v", got, n, a, ok)
		}
	}
	// The longest reference Koerier can make fits Digipoort's limit.
	if got := Aanleverkenmerk("ABCDEFGHIJKL", 9223372036854775807, 9999); len(got) > MaxKenmerkLen {
		t.Errorf("%q is longer than Digipoort allows", got)
	}
	// Another system's references (a bare number, another prefix) are not Koerier's.
	for _, bad := range []string{"", "Happyflow", "2026000123", "KR2-5", "KR1-5-1", "KR1-5-", "KR1--5", "KR1-05", "KR1-5-02", "KR1-5-x", "KR1-0", "kr1-5"} {
		if _, _, ok := ParseAanleverkenmerk("KR1", bad); ok {
			t.Errorf("ParseAanleverkenmerk(%q) must fail", bad)
		}
	}
	for _, p := range []string{"", "KR-1", "ABCDEFGHIJKLM", "KR 1", "kö"} {
		if ValidateAanleverkenmerkPrefix(p) == nil {
			t.Errorf("prefix %q must be refused", p)
		}
	}
	if err := ValidateAanleverkenmerkPrefix(DefaultAanleverkenmerkPrefix); err != nil {
		t.Error(err)
	}
}

// Rule 8.
func TestCleanupEligibility(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	old := now.Add(-31 * 24 * time.Hour)
	young := now.Add(-29 * 24 * time.Hour)
	cases := []struct {
		name string
		c    CleanupCandidate
		mode CleanupMode
		want string
	}{
		{"old sent", CleanupCandidate{1, StatusSent, old, true, false}, CleanupStandard, ""},
		{"old ready to resend", CleanupCandidate{1, StatusReadyToResend, old, false, false}, CleanupStandard, ""},
		{"old receipt confirmed", CleanupCandidate{1, StatusReceiptConfirmed, old, false, false}, CleanupStandard, ""},
		{"old send failed", CleanupCandidate{1, StatusSendFailed, old, false, false}, CleanupStandard, ""},
		{"exactly 30 days", CleanupCandidate{1, StatusSent, now.Add(-MinRetention), false, false}, CleanupStandard, ""},
		{"young sent", CleanupCandidate{1, StatusSent, young, false, false}, CleanupStandard, "29 days ago"},
		{"old accepted", CleanupCandidate{1, StatusAccepted, old, true, false}, CleanupStandard, "fiscal mode skips"},
		{"old rejected", CleanupCandidate{1, StatusRejected, old, false, false}, CleanupStandard, "clean-up removes only"},
		{"old in progress", CleanupCandidate{1, StatusInProgress, old, false, false}, CleanupStandard, "clean-up removes only"},
		{"old queued", CleanupCandidate{1, StatusQueued, old, true, false}, CleanupStandard, "cannot be withdrawn"},
		{"fiscal accepted", CleanupCandidate{1, StatusAccepted, old, true, false}, CleanupFiscal, ""},
		{"fiscal keeps the age floor", CleanupCandidate{1, StatusAccepted, young, true, false}, CleanupFiscal, "29 days ago"},
		{"fiscal mode on non-fiscal", CleanupCandidate{1, StatusAccepted, old, false, false}, CleanupFiscal, "clean-up removes only"},
		{"fiscal mode never withdraws queued", CleanupCandidate{1, StatusQueued, old, true, false}, CleanupFiscal, "cannot be withdrawn"},
		{"open delivery", CleanupCandidate{1, StatusReadyToResend, old, false, true}, CleanupStandard, "outcome is not known"},
		{"open delivery in fiscal mode", CleanupCandidate{1, StatusSent, old, true, true}, CleanupFiscal, "outcome is not known"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := CleanupRefusal(c.c, now, MinRetention, c.mode)
			if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
				t.Errorf("CleanupRefusal = %q, want %q", got, c.want)
			}
		})
	}
	// A retention below the floor is raised to the floor.
	if CleanupRefusal(CleanupCandidate{1, StatusSent, young, false, false}, now, time.Hour, CleanupStandard) == "" {
		t.Error("a short retention must not lower the 30-day floor")
	}
	if CleanupRefusal(CleanupCandidate{1, StatusSent, old, false, false}, now, 60*24*time.Hour, CleanupStandard) == "" {
		t.Error("a longer retention must be honoured")
	}
	if ValidateRetention(29*24*time.Hour) == nil || ValidateRetention(MinRetention) != nil {
		t.Error("ValidateRetention floor is 30 days")
	}
	if got := CleanableStatuses(); len(got) != 4 {
		t.Errorf("CleanableStatuses = %v, want the four of rule 8", got)
	}
	if m, err := ParseCleanupMode("fiscal"); err != nil || m != CleanupFiscal {
		t.Error("parse fiscal")
	}
	if _, err := ParseCleanupMode("all"); err == nil {
		t.Error("unknown mode must be refused")
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("want nil, got %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want error containing %q", err, want)
	}
}

// Rule 11: a lost delivery is adopted only when the look-up can tell which process it
// is; otherwise an operator decides.
func TestChooseDelivery(t *testing.T) {
	at := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	mine := DeliveryCandidate{Kenmerk: "K-mine", Started: at, Aanleverkenmerk: "KR1-7"}
	bare := DeliveryCandidate{Kenmerk: "K-bare", Started: at}
	theirs := DeliveryCandidate{Kenmerk: "K-theirs", Started: at, Aanleverkenmerk: "OTHER-7"}
	for _, c := range []struct {
		name  string
		cands []DeliveryCandidate
		want  string
	}{
		{"nothing", nil, ""},
		{"the only one", []DeliveryCandidate{bare}, "K-bare"},
		{"its pickup names it", []DeliveryCandidate{bare, mine, theirs}, "K-mine"},
		{"two without a name", []DeliveryCandidate{bare, {Kenmerk: "K-2", Started: at}}, ""},
		{"the only one is another system's", []DeliveryCandidate{theirs}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, why, ok := ChooseDelivery("KR1-7", c.cands)
			if got != c.want || ok != (c.want != "") || (ok && why == "") {
				t.Errorf("ChooseDelivery = %q, %q, %v; want %q", got, why, ok, c.want)
			}
		})
	}
}
