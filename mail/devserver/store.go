package devserver

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// standardFolders are created with every mailbox, named as most providers do.
var standardFolders = []struct {
	name string
	use  imap.MailboxAttr
}{
	{"INBOX", ""},
	{"Sent", imap.MailboxAttrSent},
	{"Drafts", imap.MailboxAttrDrafts},
	{"Archive", imap.MailboxAttrArchive},
	{"Junk", imap.MailboxAttrJunk},
	{"Trash", imap.MailboxAttrTrash},
}

// normalizeAddress returns addr lowercased without angle brackets, or an
// error when it is not local@domain.
func normalizeAddress(addr string) (string, error) {
	a := strings.ToLower(strings.TrimSpace(addr))
	a = strings.TrimSuffix(strings.TrimPrefix(a, "<"), ">")
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || at == len(a)-1 || strings.ContainsAny(a, " \t\r\n<>") {
		return "", fmt.Errorf("address %q is not of the form name@domain", addr)
	}
	return a, nil
}

// isLocal reports whether a normalized address is in the local domain.
func (s *Server) isLocal(addr string) bool {
	return strings.HasSuffix(addr, "@"+s.cfg.Domain)
}

// scenario returns "reject", "bounce", "autoreply" or "" for a normalized
// address.
func scenario(addr string) string {
	local := addr[:strings.LastIndexByte(addr, '@')]
	for _, sc := range []string{"reject", "bounce", "autoreply"} {
		if strings.HasPrefix(local, sc+"-") {
			return sc
		}
	}
	return ""
}

func (s *Server) passwordOK(password string) bool {
	return subtle.ConstantTimeCompare([]byte(password), []byte(s.cfg.Password)) == 1
}

// user returns the mailbox of a normalized local address, creating it when
// create is set; nil when it does not exist.
func (s *Server) user(addr string, create bool) *imapmemserver.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[addr]; u != nil || !create {
		return u
	}
	u := imapmemserver.NewUser(addr, s.cfg.Password)
	for _, f := range standardFolders {
		var opts *imap.CreateOptions
		if f.use != "" {
			opts = &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{f.use}}
		}
		// A fresh user has no folders, so Create cannot fail.
		_ = u.Create(f.name, opts)
		_ = u.Subscribe(f.name)
	}
	s.users[addr] = u
	s.log.WithField("mailbox", addr).Info("mailbox created")
	return u
}

// appendTo stores raw in a folder of a local mailbox, creating the folder
// if a client deleted it.
func (s *Server) appendTo(addr, folder string, raw []byte, t time.Time) (uint32, error) {
	u := s.user(addr, true)
	opts := &imap.AppendOptions{Time: t}
	data, err := u.Append(folder, bytes.NewReader(raw), opts)
	if err != nil {
		if cerr := u.Create(folder, nil); cerr != nil {
			return 0, fmt.Errorf("store message in %s/%s: %w", addr, folder, err)
		}
		if data, err = u.Append(folder, bytes.NewReader(raw), opts); err != nil {
			return 0, fmt.Errorf("store message in %s/%s: %w", addr, folder, err)
		}
	}
	return uint32(data.UID), nil
}

// Deliver puts raw straight into the INBOX of a local address, as if it had
// arrived from elsewhere. It does not count as accepted.
func (s *Server) Deliver(to string, raw []byte) error {
	addr, err := normalizeAddress(to)
	if err != nil {
		return fmt.Errorf("deliver: %w", err)
	}
	if !s.isLocal(addr) {
		return fmt.Errorf("deliver to %s: not a mailbox of %s; use an address @%s", addr, s.cfg.Domain, s.cfg.Domain)
	}
	if _, err := s.appendTo(addr, "INBOX", raw, time.Now()); err != nil {
		return fmt.Errorf("deliver: %w", err)
	}
	s.log.WithFields(logMessage(raw)).WithField("mailbox", addr).Info("message delivered directly")
	return nil
}

// Mailboxes lists the addresses of all local mailboxes, sorted.
func (s *Server) Mailboxes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.users))
	for a := range s.users {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Messages is what a folder of a local mailbox holds, oldest first; nil when
// the mailbox or folder does not exist.
func (s *Server) Messages(mailbox, folder string) []Stored {
	msgs, err := s.messages(mailbox, folder)
	if err != nil {
		s.log.WithError(err).WithFields(map[string]any{"mailbox": mailbox, "folder": folder}).Warn("read mailbox")
	}
	return msgs
}

func (s *Server) messages(mailbox, folder string) ([]Stored, error) {
	var out []Stored
	err := s.withMailbox(mailbox, func(c *imapclient.Client) error {
		var err error
		out, err = fetchFolder(c, folder)
		return err
	})
	return out, err
}

// Folders lists a local mailbox's folders, sorted, INBOX first.
func (s *Server) Folders(mailbox string) []string {
	var out []string
	err := s.withMailbox(mailbox, func(c *imapclient.Client) error {
		var err error
		out, err = listFolders(c)
		return err
	})
	if err != nil {
		s.log.WithError(err).WithField("mailbox", mailbox).Warn("list folders")
	}
	return out
}

// withMailbox runs f on an in-process IMAP session of an existing mailbox;
// imapmemserver has no other way to read messages back.
func (s *Server) withMailbox(mailbox string, f func(*imapclient.Client) error) error {
	addr, err := normalizeAddress(mailbox)
	if err != nil {
		return err
	}
	if s.user(addr, false) == nil {
		return nil
	}
	conn, err := s.pipe.dial()
	if err != nil {
		return fmt.Errorf("read mailbox %s: %w", addr, err)
	}
	c := imapclient.New(conn, nil)
	defer c.Close()
	if err := c.Login(addr, s.cfg.Password).Wait(); err != nil {
		return fmt.Errorf("read mailbox %s: login: %w", addr, err)
	}
	if err := f(c); err != nil {
		return fmt.Errorf("read mailbox %s: %w", addr, err)
	}
	_ = c.Logout().Wait()
	return nil
}

func listFolders(c *imapclient.Client) ([]string, error) {
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return nil, fmt.Errorf("list folders: %w", err)
	}
	var out []string
	for _, l := range list {
		out = append(out, l.Mailbox)
	}
	slices.SortFunc(out, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == "INBOX":
			return -1
		case b == "INBOX":
			return 1
		}
		return strings.Compare(a, b)
	})
	return out, nil
}

func fetchFolder(c *imapclient.Client, folder string) ([]Stored, error) {
	// EXAMINE and BODY.PEEK leave \Seen alone, so looking changes nothing.
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		if imapErr, ok := err.(*imap.Error); ok && imapErr.Code == imap.ResponseCodeNonExistent {
			return nil, nil
		}
		return nil, fmt.Errorf("select %s: %w", folder, err)
	}
	if sel.NumMessages == 0 {
		return nil, nil
	}
	var all imap.SeqSet
	all.AddRange(1, 0)
	bufs, err := c.Fetch(all, &imap.FetchOptions{
		UID:          true,
		InternalDate: true,
		BodySection:  []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", folder, err)
	}
	out := make([]Stored, 0, len(bufs))
	for _, b := range bufs {
		var raw []byte
		if len(b.BodySection) > 0 {
			raw = b.BodySection[0].Bytes
		}
		st := summarize(raw)
		st.UID = uint32(b.UID)
		st.Received = b.InternalDate
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, nil
}

// summarize fills From, To, Subject and MessageID from raw's header; a header
// that does not parse leaves the field empty, since a dev server must show
// broken mail too.
func summarize(raw []byte) Stored {
	st := Stored{Raw: raw}
	th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return st
	}
	h := mail.Header{Header: message.Header{Header: th}}
	if from, err := h.AddressList("From"); err == nil && len(from) > 0 {
		st.From = from[0].Address
	} else {
		st.From = h.Get("From")
	}
	for _, key := range []string{"To", "Cc"} {
		if l, err := h.AddressList(key); err == nil {
			for _, a := range l {
				st.To = append(st.To, a.Address)
			}
		}
	}
	if subj, err := h.Subject(); err == nil {
		st.Subject = subj
	} else {
		st.Subject = h.Get("Subject")
	}
	if id, err := h.MessageID(); err == nil {
		st.MessageID = id
	}
	return st
}

// logMessage is what may be logged about a message: never its body.
func logMessage(raw []byte) map[string]any {
	st := summarize(raw)
	return map[string]any{"message_id": st.MessageID, "size": len(raw)}
}
