package mail

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/textproto"
)

// Mailbox is a logged-in connection to a profile's IMAP mailbox. It is not
// safe for concurrent use. When a call's context ends, the connection is
// closed and the Mailbox is no longer usable.
type Mailbox struct {
	p     Profile
	c     *imapclient.Client
	delim rune
}

// Fetched is one message read from the incoming folder.
type Fetched struct {
	UID          uint32
	Raw          []byte
	InternalDate time.Time
}

// Open connects to the profile's IMAP server and logs in. A refused login is
// errors.Is(err, ErrAuth); a profile without a mailbox is ErrNoMailbox.
func Open(ctx context.Context, p Profile) (*Mailbox, error) {
	if !p.HasMailbox() {
		return nil, ErrNoMailbox
	}
	fail := func(err error) error { return fmt.Errorf("open mailbox %s: %w", p.IMAP, err) }
	if errs := p.IMAP.validate("IMAP", true); len(errs) > 0 {
		return nil, fail(fmt.Errorf("invalid profile: %w", errors.Join(errs...)))
	}
	s := p.IMAP
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", s.addr())
	if err != nil {
		return nil, fail(fmt.Errorf("connect: %w", err))
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var c *imapclient.Client
	switch s.Security {
	case SecurityTLS:
		tc := tls.Client(conn, p.tlsConfig(s.Host))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fail(imapTLSErr("TLS handshake", err))
		}
		c = imapclient.New(tc, nil)
	case SecurityStartTLS:
		c, err = imapclient.NewStartTLS(conn, &imapclient.Options{TLSConfig: p.tlsConfig(s.Host)})
		if err != nil {
			var ie *imap.Error
			if errors.As(err, &ie) {
				return nil, fail(fmt.Errorf("%w: the server refused STARTTLS (%v); check the port or use security %q", ErrTLS, err, SecurityTLS))
			}
			return nil, fail(imapTLSErr("STARTTLS", err))
		}
	default:
		c = imapclient.New(conn, nil)
	}
	m := &Mailbox{p: p, c: c, delim: '/'}
	if err := c.Login(s.User, s.Password).Wait(); err != nil {
		c.Close()
		var ie *imap.Error
		// A NO to LOGIN is a refused profile, unless the server says it is only away for
		// now (UNAVAILABLE, SERVERBUG): that is retried, not reported as a wrong password.
		if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo &&
			ie.Code != imap.ResponseCodeUnavailable && ie.Code != imap.ResponseCodeServerBug {
			return nil, fail(fmt.Errorf("%w: %w", ErrAuth, err))
		}
		return nil, fail(imapTLSErr("LOGIN", err))
	}
	// The hierarchy separator is the server's choice ("/" or "."); folder
	// names in the profile use "/".
	if l, err := c.List("", "", nil).Collect(); err == nil && len(l) > 0 && l[0].Delim != 0 {
		m.delim = l[0].Delim
	}
	return m, nil
}

func imapTLSErr(stage string, err error) error {
	if isTLSErr(err) {
		return fmt.Errorf("%w at %s: %w; %s", ErrTLS, stage, err, tlsAdvice(err))
	}
	return fmt.Errorf("%s: %w", stage, err)
}

// Close logs out and closes the connection.
func (m *Mailbox) Close() error {
	_ = m.c.Logout().Wait() // the server may already be gone; closing is what matters
	return m.c.Close()
}

func (m *Mailbox) name(folder string) string {
	if m.delim == '/' || m.delim == 0 {
		return folder
	}
	return strings.ReplaceAll(folder, "/", string(m.delim))
}

// guard closes the connection when ctx ends, as imapclient has no context
// support of its own.
func (m *Mailbox) guard(ctx context.Context) (stop func() bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.AfterFunc(ctx, func() { m.c.Close() }), nil
}

func (m *Mailbox) selectFolder(folder string, readOnly bool) error {
	if _, err := m.c.Select(m.name(folder), &imap.SelectOptions{ReadOnly: readOnly}).Wait(); err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
			return fmt.Errorf("%w: folder %q cannot be opened (%w); check that it exists and the profile names it correctly", ErrNoFolder, folder, err)
		}
		return fmt.Errorf("select folder %q: %w", folder, err)
	}
	return nil
}

// Fetch returns up to limit messages of the incoming folder (all when limit
// <= 0), oldest first, whole, without marking them seen: a message counts as
// handled only once MoveProcessed has moved it.
func (m *Mailbox) Fetch(ctx context.Context, limit int) ([]Fetched, error) {
	fail := func(err error) error { return fmt.Errorf("fetch from %s folder %q: %w", m.p.IMAP, m.p.folder(), err) }
	stop, err := m.guard(ctx)
	if err != nil {
		return nil, fail(err)
	}
	defer stop()
	if err := m.selectFolder(m.p.folder(), false); err != nil {
		return nil, fail(err)
	}
	found, err := m.c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		return nil, fail(fmt.Errorf("search: %w", err))
	}
	uids := found.AllUIDs()
	slices.Sort(uids)
	if limit > 0 && len(uids) > limit {
		uids = uids[:limit]
	}
	if len(uids) == 0 {
		return nil, nil
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	msgs, err := m.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{
		UID:          true,
		InternalDate: true,
		BodySection:  []*imap.FetchItemBodySection{whole},
	}).Collect()
	if err != nil {
		return nil, fail(fmt.Errorf("fetch: %w", err))
	}
	out := make([]Fetched, 0, len(msgs))
	for _, msg := range msgs {
		raw := msg.FindBodySection(whole)
		if raw == nil {
			return nil, fail(fmt.Errorf("the server returned message UID %d without its content", msg.UID))
		}
		out = append(out, Fetched{UID: uint32(msg.UID), Raw: raw, InternalDate: msg.InternalDate})
	}
	slices.SortFunc(out, func(a, b Fetched) int { return cmp.Compare(a.UID, b.UID) })
	return out, nil
}

// MoveProcessed moves the messages from the incoming folder to the processed
// folder, creating that folder when it is missing. Processed mail is kept, not
// deleted, so that an operator can still look at it.
func (m *Mailbox) MoveProcessed(ctx context.Context, uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	dest := m.p.processed()
	fail := func(err error) error {
		return fmt.Errorf("move %d messages on %s from %q to %q: %w", len(uids), m.p.IMAP, m.p.folder(), dest, err)
	}
	stop, err := m.guard(ctx)
	if err != nil {
		return fail(err)
	}
	defer stop()
	if err := m.ensureFolder(dest); err != nil {
		return fail(err)
	}
	if err := m.selectFolder(m.p.folder(), false); err != nil {
		return fail(err)
	}
	set := make([]imap.UID, len(uids))
	for i, u := range uids {
		set[i] = imap.UID(u)
	}
	// imapclient falls back to COPY + STORE \Deleted + EXPUNGE when the
	// server does not offer MOVE.
	if _, err := m.c.Move(imap.UIDSetNum(set...), m.name(dest)).Wait(); err != nil {
		return fail(err)
	}
	return nil
}

func (m *Mailbox) ensureFolder(folder string) error {
	name := m.name(folder)
	l, err := m.c.List("", name, nil).Collect()
	if err != nil {
		return fmt.Errorf("list folder %q: %w", folder, err)
	}
	for _, d := range l {
		if d.Mailbox == name && !slices.Contains(d.Attrs, imap.MailboxAttrNoSelect) {
			return nil
		}
	}
	if err := m.c.Create(name, nil).Wait(); err != nil {
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeAlreadyExists {
			return fmt.Errorf("create folder %q: %w", folder, err)
		}
	}
	// So that the folder shows in mail programs; not needed for Koerier.
	_ = m.c.Subscribe(name).Wait()
	return nil
}

// SentHas reports whether the Sent folder holds a message with this
// Message-ID: the way to learn whether an uncertain submission was accepted.
func (m *Mailbox) SentHas(ctx context.Context, messageID string) (bool, error) {
	id := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(messageID), "<"), ">")
	fail := func(err error) error {
		return fmt.Errorf("look up message %s in %s folder %q: %w", id, m.p.IMAP, m.p.sent(), err)
	}
	stop, err := m.guard(ctx)
	if err != nil {
		return false, fail(err)
	}
	defer stop()
	if id == "" || strings.ContainsAny(id, "<>\r\n") {
		return false, fail(errors.New("not a Message-ID"))
	}
	if err := m.selectFolder(m.p.sent(), true); err != nil {
		return false, fail(err)
	}
	found, err := m.c.UIDSearch(&imap.SearchCriteria{
		Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "<" + id + ">"}},
	}, nil).Wait()
	if err != nil {
		return false, fail(fmt.Errorf("search: %w", err))
	}
	uids := found.AllUIDs()
	if len(uids) == 0 {
		return false, nil
	}
	// HEADER search is a substring search, and some servers match loosely
	// (full-text indexes); only an identical Message-ID counts.
	section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}
	msgs, err := m.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		return false, fail(fmt.Errorf("fetch headers: %w", err))
	}
	for _, msg := range msgs {
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(append(msg.FindBodySection(section), "\r\n"...))))
		if err != nil {
			continue
		}
		if first(msgIDs(h.Get("Message-Id"))) == id {
			return true, nil
		}
	}
	return false, nil
}
