package domain

import (
	"testing"
)

func TestOrderIsExplicitAndStrict(t *testing.T) {
	want := []Status{StatusQueued, StatusReadyToResend, StatusSendFailed, StatusSent, StatusReceiptConfirmed,
		StatusInProgress, StatusAccepted, StatusRejected, StatusFailed}
	got := OutgoingStatuses()
	if len(got) != len(want) {
		t.Fatalf("order has %d statuses, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order[%d] = %s, want %s", i, got[i], want[i])
		}
		if i > 0 && !Higher(want[i], want[i-1]) {
			t.Errorf("%s must rank above %s", want[i], want[i-1])
		}
	}
}

func TestHighestStatusWins(t *testing.T) {
	cases := []struct {
		name string
		in   []Status
		want Status
	}{
		{"accepted never goes back to sent", []Status{StatusAccepted, StatusSent}, StatusAccepted},
		{"order of arrival does not matter", []Status{StatusSent, StatusInProgress, StatusReceiptConfirmed}, StatusInProgress},
		{"rejection after acceptance is shown", []Status{StatusAccepted, StatusRejected}, StatusRejected},
		{"failure outranks progress", []Status{StatusInProgress, StatusFailed, StatusReceiptConfirmed}, StatusFailed},
		{"single", []Status{StatusQueued}, StatusQueued},
		{"none", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Highest(c.in...); got != c.want {
				t.Errorf("Highest(%v) = %s, want %s", c.in, got, c.want)
			}
		})
	}
}

func TestHigherRefusesEqualAndLower(t *testing.T) {
	if Higher(StatusSent, StatusSent) {
		t.Error("an equal status must not count as higher")
	}
	if Higher(StatusSent, StatusAccepted) {
		t.Error("sent must not rank above accepted")
	}
	if Higher(Status("bogus"), StatusQueued) {
		t.Error("an unknown status must never win")
	}
}

func TestStatusClasses(t *testing.T) {
	cases := []struct {
		s                                Status
		final, failure, unsent, due, lbl bool
	}{
		{StatusQueued, false, false, true, true, true},
		{StatusReadyToResend, false, false, true, true, true},
		{StatusSendFailed, true, true, true, false, true},
		{StatusSent, false, false, false, false, true},
		{StatusReceiptConfirmed, false, false, false, false, true},
		{StatusInProgress, false, false, false, false, true},
		{StatusAccepted, true, false, false, false, true},
		{StatusRejected, true, true, false, false, true},
		{StatusFailed, true, true, false, false, true},
		{StatusReceived, false, false, false, false, true},
	}
	if len(cases) != len(AllStatuses()) {
		t.Fatalf("every status needs a row: %d rows, %d statuses", len(cases), len(AllStatuses()))
	}
	for _, c := range cases {
		t.Run(string(c.s), func(t *testing.T) {
			if c.s.IsFinal() != c.final || c.s.IsFailure() != c.failure || c.s.IsUnsent() != c.unsent || c.s.IsDue() != c.due {
				t.Errorf("final=%v failure=%v unsent=%v due=%v, want %v %v %v %v",
					c.s.IsFinal(), c.s.IsFailure(), c.s.IsUnsent(), c.s.IsDue(), c.final, c.failure, c.unsent, c.due)
			}
			if c.s.Label() == string(c.s) {
				t.Errorf("%s has no Dutch label", c.s)
			}
			if _, err := ParseStatus(string(c.s)); err != nil {
				t.Error(err)
			}
		})
	}
	if _, err := ParseStatus("verzonden"); err == nil {
		t.Error("ParseStatus must refuse an unknown status")
	}
}

// Rule 9 (docs/rules.md): only a message whose final status reached its environment
// and was reported counts as handled correctly.
func TestHandledCorrectly(t *testing.T) {
	acc, rej := StatusAccepted, StatusRejected
	cases := []struct {
		status, env Status
		reported    *Status
		want        bool
	}{
		{StatusAccepted, StatusAccepted, &acc, true},
		{StatusRejected, StatusRejected, &rej, true},
		{StatusAccepted, StatusInProgress, nil, false},
		{StatusAccepted, StatusAccepted, nil, false},
		{StatusAccepted, StatusAccepted, &rej, false},
		{StatusInProgress, StatusInProgress, nil, false},
		{StatusQueued, StatusQueued, nil, false},
	}
	for _, c := range cases {
		if got := HandledCorrectly(c.status, c.env, c.reported); got != c.want {
			t.Errorf("HandledCorrectly(%s, %s, %v) = %v", c.status, c.env, c.reported, got)
		}
	}
}
