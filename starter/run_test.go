package main

import (
	"testing"
	"time"
)

// --before takes days as --retention does ("30d"), besides Go durations and dates.
func TestCleanupBeforeAcceptsDays(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"30d": now.AddDate(0, 0, -30),
		"90d": now.AddDate(0, 0, -90),
		"36h": now.Add(-36 * time.Hour),
	} {
		got, err := parseBefore(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseBefore(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if got, err := parseBefore("2026-01-01", now); err != nil || got.Year() != 2026 || got.YearDay() != 1 {
		t.Errorf("a date: %v, %v", got, err)
	}
	for _, bad := range []string{"d", "-1d", "thirty days", "2026-13-01"} {
		if _, err := parseBefore(bad, now); err == nil {
			t.Errorf("parseBefore(%q) accepted", bad)
		}
	}
}
