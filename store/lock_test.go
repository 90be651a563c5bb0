package store_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"koerier/store"
)

// Rule 6 (docs/rules.md).
func TestSendReceiveLock(t *testing.T) {
	f := newStore(t)
	l, err := f.AcquireLock(ctx, store.LockSendReceive, "run-1", 30*time.Minute)
	if err != nil || l.Holder != "run-1" || l.ExpiresAt.Sub(l.AcquiredAt) != 30*time.Minute {
		t.Fatalf("acquire: %+v %v", l, err)
	}
	_, err = f.AcquireLock(ctx, store.LockSendReceive, "run-2", 30*time.Minute)
	var held *store.LockHeldError
	if !errors.As(err, &held) || held.Lock.Holder != "run-1" {
		t.Fatalf("second acquirer: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "run-1") || !strings.Contains(msg, "already running") ||
		!strings.Contains(msg, l.ExpiresAt.Local().Format("15:04:05")) {
		t.Errorf("the refusal must name the holder and when it is released: %s", msg)
	}
	// The same holder again (a retried activity) keeps the lock and extends it.
	again, err := f.AcquireLock(ctx, store.LockSendReceive, "run-1", time.Hour)
	if err != nil || !again.AcquiredAt.Equal(l.AcquiredAt) || !again.ExpiresAt.After(l.ExpiresAt) {
		t.Fatalf("re-acquire: %+v %v", again, err)
	}
	if ok, err := f.ReleaseLock(ctx, store.LockSendReceive, "run-2"); ok || err != nil {
		t.Errorf("another holder must not release: %v %v", ok, err)
	}
	if ok, err := f.ReleaseLock(ctx, store.LockSendReceive, "run-1"); !ok || err != nil {
		t.Fatalf("release: %v %v", ok, err)
	}
	if cur, _ := f.LockStatus(ctx, store.LockSendReceive); cur != nil {
		t.Errorf("released lock still held: %+v", cur)
	}
	if _, err := f.AcquireLock(ctx, store.LockSendReceive, "run-2", time.Minute); err != nil {
		t.Errorf("free lock: %v", err)
	}
}

// A run that dies frees its lock by itself when the 30 minutes are over.
func TestExpiredLockIsTakenOver(t *testing.T) {
	f := newStore(t)
	if _, err := f.AcquireLock(ctx, store.LockSendReceive, "dead-run", 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	f.exec(`UPDATE locks SET acquired_at = now() - interval '31 minutes', expires_at = now() - interval '1 minute'`)
	if cur, _ := f.LockStatus(ctx, store.LockSendReceive); cur != nil {
		t.Errorf("expired lock reported as held: %+v", cur)
	}
	l, err := f.AcquireLock(ctx, store.LockSendReceive, "new-run", 30*time.Minute)
	if err != nil || l.Holder != "new-run" {
		t.Fatalf("take over: %+v %v", l, err)
	}
	if ok, _ := f.ReleaseLock(ctx, store.LockSendReceive, "dead-run"); ok {
		t.Error("the dead run must not release the new holder's lock")
	}
}

func TestLockUnderParallelAcquirers(t *testing.T) {
	f := newStore(t)
	for round := 0; round < 5; round++ {
		const n = 16
		var wg sync.WaitGroup
		won := make(chan string, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				holder := fmt.Sprintf("round-%d-run-%d", round, i)
				_, err := f.AcquireLock(ctx, store.LockSendReceive, holder, time.Minute)
				var held *store.LockHeldError
				switch {
				case err == nil:
					won <- holder
				case !errors.As(err, &held):
					t.Errorf("acquirer %d: %v", i, err)
				}
			}(i)
		}
		wg.Wait()
		close(won)
		var winners []string
		for w := range won {
			winners = append(winners, w)
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d holders at once: %v", round, len(winners), winners)
		}
		if ok, _ := f.ReleaseLock(ctx, store.LockSendReceive, winners[0]); !ok {
			t.Fatal("winner could not release")
		}
	}
}
