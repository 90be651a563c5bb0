package store

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"koerier/domain"
	"koerier/pipeline"
)

type cleanupRow struct {
	Number           int64            `db:"number"`
	Status           string           `db:"status"`
	LastStatusChange time.Time        `db:"last_status_change"`
	Fiscal           bool             `db:"fiscal"`
	Dir              domain.Direction `db:"direction"`
	Subtype          string           `db:"subtype"`
	OpenDelivery     bool             `db:"open_delivery"`
}

// cleanupColumns are what clean-up decides on. A delivery of the current attempt
// without kenmerk and not refused has no known outcome: the message may be at
// Digipoort right now. (A due message without such a row may be removed: its
// delivery starts by locking the row and finds it gone, so nothing is sent.)
const cleanupColumns = `m.number, m.status, m.last_status_change, m.fiscal, m.direction, m.subtype,
	EXISTS (SELECT 1 FROM deliveries d WHERE d.message_number = m.number AND d.attempt = m.attempt
	        AND ` + openDelivery + `) AS open_delivery`

// Cleanup removes old messages with their attachments, replies and reply documents
// (rule 8 in docs/rules.md). A selection is all-or-nothing: if any message in it may not go, nothing
// goes and every refusal is reported. Without a selection it removes one page of
// eligible messages per call, each page in its own transaction, so a crash leaves
// nothing half-removed.
func (s *Store) Cleanup(ctx context.Context, req pipeline.CleanupRequest) (pipeline.CleanupResult, error) {
	if req.Retention == 0 {
		req.Retention = domain.MinRetention
	}
	if err := domain.ValidateRetention(req.Retention); err != nil {
		return pipeline.CleanupResult{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if req.Mode == "" {
		req.Mode = domain.CleanupStandard
	}
	if req.PageSize <= 0 {
		req.PageSize = 500
	}
	res := pipeline.CleanupResult{DryRun: req.DryRun, Removed: []int64{}, Refused: []pipeline.CleanupRefused{}}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var now time.Time
		if err := tx.GetContext(ctx, &now, `SELECT now()`); err != nil {
			return err
		}
		var rows []cleanupRow
		if len(req.Numbers) > 0 {
			if err := tx.SelectContext(ctx, &rows,
				`SELECT `+cleanupColumns+` FROM messages m WHERE m.number = ANY($1) ORDER BY m.number FOR UPDATE`, pq.Array(req.Numbers)); err != nil {
				return err
			}
			found := map[int64]bool{}
			for _, r := range rows {
				found[r.Number] = true
			}
			selected := slices.Clone(req.Numbers)
			slices.Sort(selected)
			for _, n := range slices.Compact(selected) {
				if !found[n] {
					res.Refused = append(res.Refused, pipeline.CleanupRefused{Number: n, Reason: fmt.Sprintf("message %d does not exist", n)})
				}
			}
		} else {
			fiscal := req.Mode == domain.CleanupFiscal
			if err := tx.SelectContext(ctx, &rows, `
				SELECT `+cleanupColumns+` FROM messages m
				WHERE m.direction = $6 AND m.last_status_change <= now() - make_interval(secs => $1)
				  AND (m.status = ANY($2) OR ($3 AND m.fiscal AND m.status <> 'queued')) AND m.number > $5
				ORDER BY m.number LIMIT $4 FOR UPDATE OF m SKIP LOCKED`,
				req.Retention.Seconds(), pq.Array(domain.CleanableStatuses()), fiscal, req.PageSize, req.After, domain.DirectionOut); err != nil {
				return err
			}
			res.More = len(rows) == req.PageSize
			if len(rows) > 0 {
				res.Next = rows[len(rows)-1].Number
			}
		}
		// Looked at again now that the rows are locked: a delivery that began while
		// this statement waited for a row is not in the statement's snapshot.
		locked := make([]int64, len(rows))
		for i, r := range rows {
			locked[i] = r.Number
		}
		var open []int64
		if err := tx.SelectContext(ctx, &open, `SELECT m.number FROM deliveries d JOIN messages m ON m.number = d.message_number AND m.attempt = d.attempt
			WHERE `+openDelivery+` AND m.number = ANY($1)`, pq.Array(locked)); err != nil {
			return err
		}
		for i := range rows {
			rows[i].OpenDelivery = rows[i].OpenDelivery || slices.Contains(open, rows[i].Number)
		}
		var ok []int64
		for _, r := range rows {
			if reason := cleanupRefusal(r, now, req); reason != "" {
				res.Refused = append(res.Refused, pipeline.CleanupRefused{Number: r.Number, Reason: reason})
				continue
			}
			ok = append(ok, r.Number)
		}
		sort.Slice(res.Refused, func(i, j int) bool { return res.Refused[i].Number < res.Refused[j].Number })
		if len(req.Numbers) > 0 && len(res.Refused) > 0 {
			return nil // all or nothing
		}
		if len(ok) == 0 {
			return nil
		}
		var stats struct {
			N     int   `db:"n"`
			Bytes int64 `db:"bytes"`
		}
		if err := tx.GetContext(ctx, &stats, `SELECT count(*) AS n, COALESCE(sum(size), 0) AS bytes FROM attachments
			WHERE message_number = ANY($1) OR message_number IN (SELECT number FROM messages WHERE reply_to = ANY($1))`, pq.Array(ok)); err != nil {
			return err
		}
		res.Attachments, res.Bytes = stats.N, stats.Bytes
		res.Removed = ok
		if req.DryRun {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE number = ANY($1)`, pq.Array(ok)); err != nil {
			return err
		}
		who := req.Who
		if who == "" {
			who = "clean-up"
		}
		return writeLog(ctx, tx, LogEntry{Step: domain.StepCleanup, Level: domain.LevelInfo,
			Description: fmt.Sprintf(
				"%s removed %d message(s) with %d attachment(s), %d bytes (mode %s, retention %d days)", who, len(ok), stats.N, stats.Bytes, req.Mode,
				int(req.Retention.Hours()/24),
			),
			Information: "numbers: " + joinNumbers(ok)})
	})
	if err != nil {
		return pipeline.CleanupResult{}, fmt.Errorf("clean up: %w", err)
	}
	return res, nil
}

func cleanupRefusal(r cleanupRow, now time.Time, req pipeline.CleanupRequest) string {
	if r.Dir != domain.DirectionOut {
		if r.Subtype == domain.SubtypeONB {
			return fmt.Sprintf("message %d is an unknown reply (ONB): an operator handles it first", r.Number)
		}
		return fmt.Sprintf("message %d is a reply document: it goes with the message it answers", r.Number)
	}
	return domain.CleanupRefusal(
		domain.CleanupCandidate{Number: r.Number, Status: domain.Status(r.Status), LastStatusChange: r.LastStatusChange, Fiscal: r.Fiscal,
			OpenDelivery: r.OpenDelivery}, now, req.Retention, req.Mode)
}

func joinNumbers(ns []int64) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprint(n)
	}
	return strings.Join(parts, ", ")
}
