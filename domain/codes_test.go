package domain

import (
	"strings"
	"testing"
)

// Every code in shared/digipoort/NOTES.md, with what Koerier must make of it.
func TestEveryDigipoortCode(t *testing.T) {
	cases := []struct {
		code        string
		status      Status
		kind        CodeKind
		needsAction bool
	}{
		{"105", StatusSent, KindIntermediate, false},
		{"100", StatusReceiptConfirmed, KindIntermediate, false},
		{"110", StatusInProgress, KindIntermediate, false},
		{"200", StatusInProgress, KindIntermediate, false},
		{"210", StatusFailed, KindFinalError, true},
		{"220", StatusFailed, KindFinalError, true},
		{"230", StatusInProgress, KindWarning, false},
		{"301", StatusInProgress, KindIntermediate, false},
		{"311", StatusRejected, KindFinalError, true},
		{"321", StatusInProgress, KindWarning, false},
		{"405", StatusInProgress, KindIntermediate, false},
		{"400", StatusInProgress, KindIntermediate, false},
		{"410", StatusFailed, KindFinalError, true},
		{"420", StatusInProgress, KindWarning, false},
		{"500", StatusAccepted, KindFinalSuccess, false},
		{"510", StatusRejected, KindFinalError, true},
		{"710", StatusFailed, KindFinalError, true},
		{"720", StatusInProgress, KindWarning, false},
	}
	if len(cases) != len(KnownCodes()) {
		t.Fatalf("%d codes tested, %d known: every code needs a row", len(cases), len(KnownCodes()))
	}
	for _, c := range cases {
		t.Run(c.code, func(t *testing.T) {
			got := InterpretCode(c.code)
			if got.Code != c.code || got.Status != c.status || got.Kind != c.kind || got.NeedsAction != c.needsAction {
				t.Errorf("InterpretCode(%s) = %+v, want status %s kind %s needsAction %v", c.code, got, c.status, c.kind, c.needsAction)
			}
			if got.Meaning == "" {
				t.Error("no meaning")
			}
			if got.Error() && got.Advice == "" {
				t.Error("an error code must tell the operator what to do")
			}
			if got.Status.IsFinal() != (c.kind == KindFinalError || c.kind == KindFinalSuccess) {
				t.Errorf("final kind and final status disagree for %s", c.code)
			}
		})
	}
}

func TestCode210TellsToCheckTheCertificate(t *testing.T) {
	advice := InterpretCode("210").Advice
	if !strings.Contains(advice, "certificate") || !strings.Contains(advice, "Digipoort knows it") {
		t.Errorf("210 advice %q must say to check the certificate and whether Digipoort knows it", advice)
	}
}

func TestUnknownCodesDoNotPanicOrEndTheProcess(t *testing.T) {
	for _, code := range []string{"", "999", "abc", "１０５", strings.Repeat("9", 1000), "<script>"} {
		info := InterpretCode(code)
		if info.Kind != KindUnknown || info.Status != StatusInProgress || !info.NeedsAction || info.Advice == "" {
			t.Errorf("InterpretCode(%q) = %+v: an unknown code must keep the message in progress and ask for an operator", code, info)
		}
		if info.Status.IsFinal() {
			t.Errorf("unknown code %q must not end the process", code)
		}
	}
	if InterpretCode(" 500 ").Status != StatusAccepted {
		t.Error("surrounding space must not make a known code unknown")
	}
}

func TestDeriveStatus(t *testing.T) {
	cases := []struct {
		name  string
		codes []string
		want  Status
	}{
		{"conformance happy flow", []string{"105", "100", "110", "200", "301", "301", "405", "400", "500"}, StatusAccepted},
		{"105 after 100 does not lower", []string{"100", "105"}, StatusReceiptConfirmed},
		{"no codes yet", nil, StatusSent},
		{"rejection", []string{"105", "100", "110", "200", "311"}, StatusRejected},
		{"authentication failed", []string{"105", "100", "110", "210"}, StatusFailed},
		{"delivery error", []string{"105", "100", "110", "200", "301", "405", "410"}, StatusFailed},
		{"technical problem then recovery", []string{"105", "100", "405", "420", "400", "500"}, StatusAccepted},
		{"authority rejects after validating", []string{"500", "510"}, StatusRejected},
		{"unknown code keeps progress", []string{"105", "100", "999"}, StatusInProgress},
		{"shuffled happy flow", []string{"500", "105", "400", "100"}, StatusAccepted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := DeriveStatus(statusCodes(c.codes...)); got != c.want {
				t.Errorf("DeriveStatus(%v) = %s, want %s", c.codes, got, c.want)
			}
		})
	}
}

func statusCodes(codes ...string) []StatusCode {
	out := make([]StatusCode, len(codes))
	for i, c := range codes {
		out[i] = StatusCode{Code: c}
	}
	return out
}

// A 420 is a warning while Digipoort retries; the 420 with AFS600 after 72 hours means
// it gave up: the return was never delivered and the message has failed.
func TestDigipoortGaveUpDelivering(t *testing.T) {
	for _, foutcode := range []string{"AFS600", " afs600 "} {
		info := InterpretStatus("420", foutcode)
		if info.Status != StatusFailed || info.Kind != KindFinalError || !info.NeedsAction || !info.Error() || info.Code != "420" {
			t.Errorf("420 with %q = %+v, want failed, final error, needs action", foutcode, info)
		}
		for _, want := range []string{"NOT filed", "deadline may pass", "Restore the message"} {
			if !strings.Contains(info.Advice, want) {
				t.Errorf("advice %q must say %q", info.Advice, want)
			}
		}
	}
	for _, foutcode := range []string{"", "AFS500", "AFS400"} {
		if info := InterpretStatus("420", foutcode); info.Status != StatusInProgress || info.NeedsAction {
			t.Errorf("420 with %q = %+v: Digipoort still retries, the message stays in progress", foutcode, info)
		}
	}
	if InterpretStatus("400", "AFS600").Status != StatusInProgress {
		t.Error("AFS600 changes the meaning of a 420 only")
	}
	flow := append(statusCodes("105", "100", "110", "200", "301", "405", "420"), StatusCode{Code: "420", Foutcode: "AFS600"})
	if got := DeriveStatus(flow); got != StatusFailed {
		t.Errorf("DeriveStatus(… 420, 420 AFS600) = %s, want failed", got)
	}
	if got := DeriveStatus(statusCodes("105", "100", "110", "200", "301", "405", "420", "420")); got != StatusInProgress {
		t.Errorf("two 420s without AFS600 = %s, want in progress", got)
	}
	if InterpretCode("420").Status != StatusInProgress {
		t.Error("InterpretCode reads a status without a foutcode")
	}
}
