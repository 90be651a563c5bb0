package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// LockSendReceive is the name of the send/receive lock (rule 6 in docs/rules.md).
const LockSendReceive = "send-receive"

// Lock is a held lock.
type Lock struct {
	Name       string    `db:"name" json:"name"`
	Holder     string    `db:"holder" json:"holder"`
	AcquiredAt time.Time `db:"acquired_at" json:"acquired_at"`
	ExpiresAt  time.Time `db:"expires_at" json:"expires_at"`
}

// LockHeldError says who holds a lock and until when.
type LockHeldError struct{ Lock Lock }

func (e *LockHeldError) Error() string {
	return fmt.Sprintf("%s is already running: %s holds the lock since %s; it is released when that run ends, or by itself at %s",
		e.Lock.Name, e.Lock.Holder, e.Lock.AcquiredAt.Local().Format("15:04:05"), e.Lock.ExpiresAt.Local().Format("2006-01-02 15:04:05 MST"))
}

// AcquireLock takes a lock for d. The same holder acquiring again extends it (so a
// retried activity is harmless); another holder is refused with a *LockHeldError
// unless the lock expired, in which case it is taken over. The database clock
// decides expiry.
func (s *Store) AcquireLock(ctx context.Context, name, holder string, d time.Duration) (Lock, error) {
	if holder == "" || d <= 0 {
		return Lock{}, fmt.Errorf("%w: a lock needs a holder and a duration", ErrInvalid)
	}
	var l Lock
	err := s.db.GetContext(ctx, &l, `
		INSERT INTO locks (name, holder, acquired_at, expires_at)
		VALUES ($1, $2, now(), now() + make_interval(secs => $3))
		ON CONFLICT (name) DO UPDATE
			SET holder = EXCLUDED.holder,
			    acquired_at = CASE WHEN locks.holder = EXCLUDED.holder THEN locks.acquired_at ELSE EXCLUDED.acquired_at END,
			    expires_at = EXCLUDED.expires_at
			WHERE locks.holder = EXCLUDED.holder OR locks.expires_at <= now()
		RETURNING name, holder, acquired_at, expires_at`, name, holder, d.Seconds())
	if errors.Is(err, sql.ErrNoRows) {
		cur, cerr := s.LockStatus(ctx, name)
		if cerr != nil {
			return Lock{}, cerr
		}
		if cur == nil {
			// Released between the two statements: try once more.
			return s.AcquireLock(ctx, name, holder, d)
		}
		return Lock{}, &LockHeldError{Lock: *cur}
	}
	if err != nil {
		return Lock{}, fmt.Errorf("acquire lock %s for %s: %w", name, holder, err)
	}
	return l, nil
}

// ReleaseLock frees a lock held by holder; it reports whether holder had it.
func (s *Store) ReleaseLock(ctx context.Context, name, holder string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM locks WHERE name = $1 AND holder = $2`, name, holder)
	if err != nil {
		return false, fmt.Errorf("release lock %s for %s: %w", name, holder, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// LockStatus returns the current holder of a lock, or nil when it is free or expired.
func (s *Store) LockStatus(ctx context.Context, name string) (*Lock, error) {
	var l Lock
	err := s.db.GetContext(ctx, &l, `SELECT name, holder, acquired_at, expires_at FROM locks WHERE name = $1 AND expires_at > now()`, name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lock %s: %w", name, err)
	}
	return &l, nil
}
