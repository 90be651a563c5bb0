package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/jmoiron/sqlx/reflectx"
	"github.com/lib/pq"

	"koerier/domain"
	"koerier/schema"
	"koerier/schema/migrations"
)

// Migrate applies Koerier's migrations to db and returns how many it applied: the SQL
// files of package schema, and those written in Go, which need this installation's
// catalog of message types (schema/migrations/00004_normalise_declarations.go). Open
// calls it; so does `starter migrate`.
func Migrate(ctx context.Context, db *sql.DB, cat domain.Catalog) (int, error) {
	return schema.Migrate(ctx, db, goMigrations(cat)...)
}

// goMigrations are the migrations written in Go, with the catalog they need.
func goMigrations(cat domain.Catalog) []schema.GoMigration {
	return []schema.GoMigration{{Version: 4, Up: func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, migrations.Schema00004); err != nil {
			return fmt.Errorf("migration 00004, schema: %w", err)
		}
		x := &sqlx.Tx{Tx: tx, Mapper: reflectx.NewMapperFunc("db", sqlx.NameMapper)}
		if _, err := normaliseStored(ctx, x, cat); err != nil {
			return fmt.Errorf("migration 00004, stored subjects and periods: %w", err)
		}
		return nil
	}}}
}

// NormaliseReport says what normaliseStored changed, by message number.
type NormaliseReport struct {
	// Normalised got their subject, period and declaration key in the stored form.
	Normalised []int64
	// Merged were one declaration in several spellings: renumbered, and needs-action.
	Merged []int64
	// Superseded were marked do-not-send by the merge (rule 3).
	Superseded []int64
	// Left could not be put in the stored form and kept what they were queued with.
	Left []int64
	// SentSubject have a delivery whose outcome is not known that keeps the subject it
	// was made with, for its look-up.
	SentSubject []int64
	// Held are open messages with further files their type does not take (rule 17).
	Held []int64
}

// storedRow is an outgoing message as the migration reads it.
type storedRow struct {
	Number       int64         `db:"number"`
	Environment  string        `db:"environment"`
	Type         string        `db:"message_type"`
	Subject      string        `db:"subject"`
	Period       string        `db:"period"`
	Key          string        `db:"declaration_key"`
	Version      int           `db:"version"`
	Status       domain.Status `db:"status"`
	DoNotSend    bool          `db:"do_not_send"`
	IdentityType string        `db:"identity_type"`
	OpenDelivery bool          `db:"open_delivery"`
}

const selectStored = `SELECT m.number, e.name AS environment, m.message_type, m.subject, m.period, m.declaration_key, m.version, m.status,
	m.do_not_send, m.identity_type,
	EXISTS (SELECT 1 FROM deliveries d WHERE d.message_number = m.number AND d.attempt = m.attempt AND ` + openDelivery + `) AS open_delivery
	FROM messages m JOIN environments e ON e.id = m.environment_id
	WHERE m.direction = 'out'`

// member is a message of a declaration as it will be stored.
type member struct {
	storedRow
	decl      domain.Declaration
	version   int
	doNotSend bool
}

func (m *member) key() string { return m.decl.Key() }

// normaliseStored brings outgoing messages queued before subjects and periods had one
// form to that form, computed by storedDeclaration exactly as store.Queue computes it,
// so that the same declaration queued again is its next version (rule 3), a client
// reference asked again finds its message (rule 1), and a reply about the subject links
// (rule 4). It is idempotent: a message in the stored form is left alone, and every
// needs-action and log line is written once.
//
// Where spellings turn out to be one declaration, their versions are numbered anew in
// the order the messages were queued, older unsent versions are marked do-not-send as
// Queue would have marked them, and every message of it needs an operator: that is
// never merged silently. What cannot be put in the stored form (a subject that fails its
// type's form) is left as it was queued. Open messages with further files their type
// does not take are held for an operator (holdFurtherFiles).
func normaliseStored(ctx context.Context, tx *sqlx.Tx, cat domain.Catalog) (NormaliseReport, error) {
	var rep NormaliseReport
	// Nothing queues, supersedes or delivers while declarations are renumbered; reading
	// goes on.
	if _, err := tx.ExecContext(ctx, `LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return rep, err
	}
	changed, left, err := readUnnormalised(ctx, tx, cat)
	if err != nil {
		return rep, err
	}
	var logs []LogEntry
	var flags []needsAction
	for _, l := range left {
		n := l.row.Number
		rep.Left = append(rep.Left, n)
		why := fmt.Sprintf("message %d (%s, subject %q, period %q) was queued before subjects and periods had one form (rule 18) and cannot be "+
			"put in it: %s. It keeps what it was queued with (declaration %s), so it is not one declaration with messages that name "+
			"its subject in the stored form", n, l.row.Type, l.row.Subject, l.row.Period, strings.Join(l.problems, "; "), l.row.Key)
		settled := l.row.Status.IsFinal() || (l.row.DoNotSend && l.row.Status.IsUnsent() && !l.row.OpenDelivery)
		if settled {
			logs = append(logs, LogEntry{MessageNumber: &n, Step: domain.StepQueue, Level: domain.LevelInfo, Description: why,
				DedupeKey: fmt.Sprintf("normalise/left/%d", n)})
			continue
		}
		why += ". It is delivered as it is, which Digipoort or the authority will most likely refuse: check the subject and period with " +
			"its environment, and if the return must be filed, queue it again in the form expected"
		flags = append(flags, needsAction{number: n, reason: why, dedupe: fmt.Sprintf("normalise/left/%d", n)})
	}

	groups, err := groupByNewKey(ctx, tx, changed)
	if err != nil {
		return rep, err
	}
	var updates []*member
	merged := false
	for _, g := range groups {
		updates = append(updates, g...)
		if oldKeys(g) == 1 {
			for _, m := range g {
				m.version, m.doNotSend = m.Version, m.DoNotSend
				n := m.Number
				rep.Normalised = append(rep.Normalised, n)
				var what []string
				if m.Subject != m.decl.Subject {
					what = append(what, fmt.Sprintf("subject %q is %s", m.Subject, m.decl.Subject))
				}
				if m.Period != m.decl.Period {
					what = append(what, fmt.Sprintf("period %q is %s", m.Period, m.decl.Period))
				}
				what = append(what, fmt.Sprintf("declaration %s, version %d", m.key(), m.version))
				logs = append(logs, LogEntry{MessageNumber: &n, Step: domain.StepQueue, Level: domain.LevelInfo,
					Description: fmt.Sprintf("message %d stored in one form (rule 18): %s", n, strings.Join(what, ", ")),
					DedupeKey:   fmt.Sprintf("normalise/%d", n)})
			}
			continue
		}
		merged = true
		renumber(g)
		for _, m := range g {
			n := m.Number
			rep.Merged = append(rep.Merged, n)
			if m.doNotSend && !m.DoNotSend {
				rep.Superseded = append(rep.Superseded, n)
			}
			flags = append(flags, needsAction{number: n, reason: mergeReason(m, g), dedupe: fmt.Sprintf("normalise/merged/%d", n)})
		}
	}
	if err := storeMembers(ctx, tx, updates, merged); err != nil {
		return rep, err
	}
	sent, sentLogs, err := keepSentSubjects(ctx, tx, updates)
	if err != nil {
		return rep, err
	}
	rep.SentSubject, logs = sent, append(logs, sentLogs...)

	held, err := heldByMigration(ctx, tx, cat)
	if err != nil {
		return rep, err
	}
	for _, h := range held {
		rep.Held = append(rep.Held, h.number)
	}
	flags = append(flags, held...)
	if _, err := markNeedsAction(ctx, tx, domain.StepQueue, flags); err != nil {
		return rep, err
	}
	if len(logs)+len(flags) > 0 {
		logs = append(logs, LogEntry{Step: domain.StepQueue, Level: domain.LevelInfo, DedupeKey: "normalise/summary",
			Description: fmt.Sprintf("messages queued before subjects and periods had one form (rule 18): %d stored in it, %d of declarations "+
				"queued in several spellings renumbered (%d of them do-not-send now), %d left as queued, %d held for their further files; "+
				"those that need an operator say why (`starter messages`)", len(rep.Normalised), len(rep.Merged), len(rep.Superseded),
				len(rep.Left), len(rep.Held))})
	}
	if err := writeLogs(ctx, tx, logs); err != nil {
		return rep, err
	}
	return rep, nil
}

type leftRow struct {
	row      storedRow
	problems []string
}

// readUnnormalised returns the outgoing messages whose subject, period or key is not
// what Queue would store now, and those that cannot be put in that form at all. Only
// those are kept in memory: a table of years of messages is read once, in order.
func readUnnormalised(ctx context.Context, tx *sqlx.Tx, cat domain.Catalog) ([]*member, []leftRow, error) {
	rows, err := tx.QueryxContext(ctx, selectStored+` ORDER BY m.number`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var changed []*member
	var left []leftRow
	for rows.Next() {
		var r storedRow
		if err := rows.StructScan(&r); err != nil {
			return nil, nil, err
		}
		decl, _, _, problems := storedDeclaration(cat,
			domain.Declaration{Environment: r.Environment, Type: domain.MessageType(r.Type), Subject: r.Subject, Period: r.Period})
		switch {
		case len(problems) > 0:
			left = append(left, leftRow{row: r, problems: problems})
		case decl.Subject != r.Subject || decl.Period != r.Period || decl.Key() != r.Key:
			changed = append(changed, &member{storedRow: r, decl: decl})
		}
	}
	return changed, left, rows.Err()
}

// groupByNewKey groups the changed messages by the declaration they are now, with the
// messages already stored under that declaration's key; groups come in key order.
func groupByNewKey(ctx context.Context, tx *sqlx.Tx, changed []*member) ([][]*member, error) {
	byKey := map[string][]*member{}
	var keys []string
	var numbers []int64
	for _, m := range changed {
		if _, ok := byKey[m.key()]; !ok {
			keys = append(keys, m.key())
		}
		byKey[m.key()] = append(byKey[m.key()], m)
		numbers = append(numbers, m.Number)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	var present []storedRow
	if err := tx.SelectContext(ctx, &present, selectStored+` AND m.declaration_key = ANY($1) AND NOT m.number = ANY($2)`,
		pq.Array(keys), pq.Array(numbers)); err != nil {
		return nil, err
	}
	for _, r := range present {
		byKey[r.Key] = append(byKey[r.Key], &member{storedRow: r,
			decl: domain.Declaration{Environment: r.Environment, Type: domain.MessageType(r.Type), Subject: r.Subject, Period: r.Period}})
	}
	slices.Sort(keys)
	out := make([][]*member, 0, len(keys))
	for _, k := range keys {
		g := byKey[k]
		slices.SortFunc(g, func(a, b *member) int { return cmp.Compare(a.Number, b.Number) })
		out = append(out, g)
	}
	return out, nil
}

// oldKeys counts the declaration keys a group was stored under.
func oldKeys(g []*member) int {
	seen := map[string]bool{}
	for _, m := range g {
		seen[m.Key] = true
	}
	return len(seen)
}

// renumber numbers the versions of one declaration queued in several spellings in the
// order the messages were queued (their numbers), and marks every older version that
// has not reached Digipoort do-not-send, as Queue does when a newer version is queued
// (rule 3): only the latest may be sent.
func renumber(g []*member) {
	for i, m := range g {
		m.version, m.doNotSend = i+1, m.DoNotSend
		if i < len(g)-1 && m.Status.IsUnsent() {
			m.doNotSend = true
		}
	}
}

// mergeReason is the needs-action of a message of a declaration that was queued in
// several spellings: what happened, what it means for this message, what to do.
func mergeReason(m *member, g []*member) string {
	latest := g[len(g)-1]
	var list, reached []string
	for _, o := range g {
		list = append(list, fmt.Sprintf("version %d = message %d (subject %q, period %q, %s, was version %d)", o.version, o.Number, o.Subject,
			o.Period, o.Status, o.Version))
		if !o.Status.IsUnsent() {
			reached = append(reached, fmt.Sprintf("%d (message %d)", o.version, o.Number))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "declaration %s was queued in %d spellings before subjects and periods had one form (rule 18), each numbered from version 1. "+
		"They are one declaration now, its versions numbered in the order they were queued: %s. This message is version %d (was %d).",
		m.key(), oldKeys(g), strings.Join(list, "; "), m.version, m.Version)
	if m.doNotSend && !m.DoNotSend {
		fmt.Fprintf(&b, " It had not reached Digipoort and is marked do-not-send now: version %d (message %d) replaces it (rule 3).",
			latest.version, latest.Number)
	}
	if len(reached) > 1 {
		fmt.Fprintf(&b, " Versions %s each reached Digipoort: the authority may hold more than one return for this period.", strings.Join(reached, ", "))
	}
	fmt.Fprintf(&b, " What to do: check with the environment that version %d (message %d) is the return to file; if it is not, queue the right "+
		"one, which becomes the next version. A client that asks again with its client reference is told the new version number.",
		latest.version, latest.Number)
	return b.String()
}

// storeMembers writes the stored form. A declaration that is renumbered moves to keys of
// its own first: its versions are unique per key at every row the update touches.
func storeMembers(ctx context.Context, tx *sqlx.Tx, ms []*member, renumbered bool) error {
	if len(ms) == 0 {
		return nil
	}
	var numbers, versions []int64
	var subjects, periods, keys []string
	var dns []bool
	for _, m := range ms {
		numbers, versions = append(numbers, m.Number), append(versions, int64(m.version))
		subjects, periods, keys = append(subjects, m.decl.Subject), append(periods, m.decl.Period), append(keys, m.key())
		dns = append(dns, m.doNotSend)
	}
	if renumbered {
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET declaration_key = 'migration-00004/' || number WHERE number = ANY($1)`,
			pq.Array(numbers)); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `
		UPDATE messages m SET subject = u.subject, period = u.period, declaration_key = u.key, version = u.version, do_not_send = u.dns
		FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bool[]) AS u(number, subject, period, key, version, dns)
		WHERE m.number = u.number`,
		pq.Array(numbers), pq.Array(subjects), pq.Array(periods), pq.Array(keys), pq.Array(versions), pq.Array(dns))
	return err
}

// keepSentSubjects records, for a message whose delivery has no known outcome, the
// subject the delivery was made with where the stored form names another belanghebbende
// (the old NL001000044B37 sent with identity type Fi is 001000044B37 now): the look-up
// of that delivery must ask Digipoort for what was sent, or it cannot find it (rule 11).
func keepSentSubjects(ctx context.Context, tx *sqlx.Tx, ms []*member) ([]int64, []LogEntry, error) {
	var numbers []int64
	var subjects []string
	var logs []LogEntry
	for _, m := range ms {
		sent, now := domain.IdentityNumber(m.IdentityType, m.Subject), domain.IdentityNumber(m.IdentityType, m.decl.Subject)
		if !m.OpenDelivery || sent == now {
			continue
		}
		n := m.Number
		numbers, subjects = append(numbers, n), append(subjects, m.Subject)
		logs = append(logs, LogEntry{MessageNumber: &n, Step: domain.StepQueue, Level: domain.LevelInfo,
			Description: fmt.Sprintf("the delivery of message %d whose outcome is not known named the belanghebbende %s (%s); its look-up keeps "+
				"asking Digipoort for that, although the stored subject makes %s", n, sent, m.IdentityType, now),
			DedupeKey: fmt.Sprintf("normalise/sent-subject/%d", n)})
	}
	if len(numbers) == 0 {
		return nil, nil, nil
	}
	if _, err := tx.ExecContext(ctx, `
		UPDATE deliveries d SET sent_subject = u.subject
		FROM unnest($1::bigint[], $2::text[]) AS u(number, subject), messages m
		WHERE d.message_number = u.number AND m.number = u.number AND d.attempt = m.attempt AND `+openDelivery+` AND d.sent_subject IS NULL`,
		pq.Array(numbers), pq.Array(subjects)); err != nil {
		return nil, nil, err
	}
	return numbers, logs, nil
}

// needsAction is a reason an operator must look at a message, logged once (F).
type needsAction struct {
	number int64
	reason string
	dedupe string
}

// markNeedsAction flags messages for an operator. A reason a message has already is
// not repeated; a message that needs action for something else keeps that reason first
// (a delivery's trouble is decided by its prefix) and gets this one after it. It returns
// the messages it flagged now.
func markNeedsAction(ctx context.Context, tx *sqlx.Tx, step domain.Step, items []needsAction) ([]int64, error) {
	if len(items) == 0 {
		return nil, nil
	}
	// One reason per message: two of them (merged and held) are one line.
	var numbers []int64
	reasonOf := map[int64]string{}
	logs := make([]LogEntry, 0, len(items))
	for _, it := range items {
		n := it.number
		if r, ok := reasonOf[n]; ok {
			reasonOf[n] = r + "; also: " + it.reason
		} else {
			numbers, reasonOf[n] = append(numbers, n), it.reason
		}
		logs = append(logs, LogEntry{MessageNumber: &n, Step: step, Level: domain.LevelError, Description: it.reason, DedupeKey: it.dedupe})
	}
	reasons := make([]string, len(numbers))
	for i, n := range numbers {
		reasons[i] = reasonOf[n]
	}
	var flagged []int64
	if err := tx.SelectContext(ctx, &flagged, `
		UPDATE messages m SET needs_action = true,
			needs_action_reason = CASE WHEN m.needs_action AND m.needs_action_reason <> '' THEN m.needs_action_reason || '; also: ' || u.reason
			                           ELSE u.reason END
		FROM unnest($1::bigint[], $2::text[]) AS u(number, reason)
		WHERE m.number = u.number AND NOT (m.needs_action AND strpos(m.needs_action_reason, u.reason) > 0)
		RETURNING m.number`, pq.Array(numbers), pq.Array(reasons)); err != nil {
		return nil, err
	}
	return flagged, writeLogs(ctx, tx, logs)
}
