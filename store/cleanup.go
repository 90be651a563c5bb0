package store

import (
	"context"
	"database/sql"
	"errors"
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
	EnvironmentID    *int64           `db:"environment_id"`
	NeedsAction      bool             `db:"needs_action"`
}

// cleanupColumns are what clean-up decides on. A delivery of the current attempt
// without kenmerk and not refused has no known outcome: the message may be at
// Digipoort right now. (A due message without such a row may be removed: its
// delivery starts by locking the row and finds it gone, so nothing is sent.)
const cleanupColumns = `m.number, m.status, m.last_status_change, m.fiscal, m.direction, m.subtype, m.environment_id, m.needs_action,
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
		var envID *int64
		if req.Environment != "" {
			var id int64
			err := tx.GetContext(ctx, &id, `SELECT id FROM environments WHERE name = $1`, req.Environment)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: environment %q does not exist (see `starter environments list --all`)", ErrNotFound, req.Environment)
			}
			if err != nil {
				return err
			}
			envID = &id
		}
		var before *time.Time
		if !req.Before.IsZero() {
			before = &req.Before
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
				WHERE m.last_status_change <= now() - make_interval(secs => $1)
				  AND ((m.direction = $6 AND (m.status = ANY($2) OR ($3 AND m.fiscal AND m.status <> 'queued')))
				       OR (m.subtype = 'ONB' AND NOT m.needs_action)) AND m.number > $5
				  AND ($7::bigint IS NULL OR m.environment_id = $7) AND ($8::timestamptz IS NULL OR m.last_status_change < $8)
				ORDER BY m.number LIMIT $4 FOR UPDATE OF m SKIP LOCKED`,
				req.Retention.Seconds(), pq.Array(domain.CleanableStatuses()), fiscal, req.PageSize, req.After, domain.DirectionOut,
				envID, before); err != nil {
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
		ok := []int64{}
		for _, r := range rows {
			if reason := selectionRefusal(r, envID, req); reason != "" {
				res.Refused = append(res.Refused, pipeline.CleanupRefused{Number: r.Number, Reason: reason})
				continue
			}
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
		// A sweep logs even when it removes nothing, so every run that could have
		// removed something leaves its line (rule 8).
		if len(ok) == 0 && (req.DryRun || len(req.Numbers) > 0 || (req.Run == "" && req.After > 0)) {
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
		// Rule 3: an older version replaced by a version that reached the authority stays
		// replaced once that version is gone (mayClearDoNotSend).
		if _, err := tx.ExecContext(ctx, `UPDATE messages o SET newer_version_filed = true FROM messages n
			WHERE n.number = ANY($1) AND n.status = ANY($2) AND o.declaration_key = n.declaration_key AND o.version < n.version
				AND o.do_not_send AND NOT o.newer_version_filed AND NOT o.number = ANY($1)`,
			pq.Array(ok), pq.Array(domain.FiledStatuses())); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE number = ANY($1)`, pq.Array(ok)); err != nil {
			return err
		}
		who := req.Who
		if who == "" {
			who = "clean-up"
		}
		scope := fmt.Sprintf("mode %s, retention %d days", req.Mode, int(req.Retention.Hours()/24))
		if req.Environment != "" {
			scope += ", environment " + req.Environment
		}
		if before != nil {
			scope += ", last status change before " + before.UTC().Format(time.RFC3339)
		}
		// Append-only: each page writes its own line, in the transaction that removes,
		// with every number it removed (a page is at most 500): the log is the lasting
		// record of what was deleted, so a line is never rewritten.
		if req.Run != "" {
			scope += ", run " + req.Run
		}
		numbers := make([]string, len(ok))
		for i, n := range ok {
			numbers[i] = fmt.Sprint(n)
		}
		info := "numbers: none"
		if len(numbers) > 0 {
			info = "numbers: " + strings.Join(numbers, ", ")
		}
		line := LogEntry{Step: domain.StepCleanup, Level: domain.LevelInfo, EnvironmentID: envID,
			Description: fmt.Sprintf("%s removed %d message(s) with %d attachment(s), %d bytes (%s)", who, len(ok), stats.N, stats.Bytes, scope),
			Information: info}
		return writeLog(ctx, tx, line)
	})
	if err != nil {
		return pipeline.CleanupResult{}, fmt.Errorf("clean up: %w", err)
	}
	return res, nil
}

// selectionRefusal refuses what the request's environment and date leave out; a sweep
// never selects such rows, an operator's selection may name them.
func selectionRefusal(r cleanupRow, envID *int64, req pipeline.CleanupRequest) string {
	if envID != nil && (r.EnvironmentID == nil || *r.EnvironmentID != *envID) {
		return fmt.Sprintf("message %d is not a message of environment %s", r.Number, req.Environment)
	}
	if !req.Before.IsZero() && !r.LastStatusChange.Before(req.Before) {
		return fmt.Sprintf("message %d changed status at %s, not before %s", r.Number,
			r.LastStatusChange.UTC().Format(time.RFC3339), req.Before.UTC().Format(time.RFC3339))
	}
	return ""
}

func cleanupRefusal(r cleanupRow, now time.Time, req pipeline.CleanupRequest) string {
	if r.Dir != domain.DirectionOut {
		if r.Subtype == domain.SubtypeONB {
			// Resolved (needs-action cleared by store.ResolveONB) it is the operator's
			// decision on record; it ages from the resolution like any message.
			if r.NeedsAction {
				return fmt.Sprintf("message %d is an open unknown reply (ONB): link it to a message or resolve it first (`starter onb`)", r.Number)
			}
			if age := now.Sub(r.LastStatusChange); age < req.Retention {
				return fmt.Sprintf("message %d is an unknown reply resolved %s ago, less than the retention of %d days", r.Number,
					age.Truncate(time.Hour), int(req.Retention.Hours()/24))
			}
			return ""
		}
		return fmt.Sprintf("message %d is a reply document: it goes with the message it answers", r.Number)
	}
	return domain.CleanupRefusal(
		domain.CleanupCandidate{Number: r.Number, Status: domain.Status(r.Status), LastStatusChange: r.LastStatusChange, Fiscal: r.Fiscal,
			OpenDelivery: r.OpenDelivery}, now, req.Retention, req.Mode)
}
