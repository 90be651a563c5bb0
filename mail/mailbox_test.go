package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func mailboxProfile(f imapFixture, ca testCA) Profile {
	return Profile{
		From:    imapUser,
		SMTP:    Server{Host: "127.0.0.1", Port: 1, Security: SecurityTLS},
		IMAP:    f.Server,
		RootCAs: ca.Pool,
	}
}

func incoming(n int) []byte {
	return []byte(fmt.Sprintf("Message-ID: <in-%d@leverancier.example>\r\nFrom: <facturen@leverancier.example>\r\nTo: <%s>\r\nSubject: Factuur %d\r\n\r\nFactuur %d.\r\n", n, imapUser, n, n))
}

func openMailbox(t *testing.T, p Profile) *Mailbox {
	t.Helper()
	m, err := Open(ctx10s(t), p)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// folderState reads a folder with a separate client, as a person's mail
// program would: the subjects in it and whether each was marked seen.
func folderState(t *testing.T, f imapFixture, ca testCA, folder string) (subjects []string, seen []bool) {
	t.Helper()
	dial := imapclient.DialTLS
	if f.Server.Security == SecurityStartTLS {
		dial = imapclient.DialStartTLS
	}
	c, err := dial(hostPort(f.Server), &imapclient.Options{TLSConfig: (Profile{RootCAs: ca.Pool}).tlsConfig(f.Server.Host)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(imapUser, imapPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("select %s: %v", folder, err)
	}
	if sel.NumMessages == 0 {
		return nil, nil
	}
	msgs, err := c.Fetch(imap.SeqSetNum(seqRange(sel.NumMessages)...), &imap.FetchOptions{Envelope: true, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		subjects = append(subjects, m.Envelope.Subject)
		seen = append(seen, slices.Contains(m.Flags, imap.FlagSeen))
	}
	return subjects, seen
}

func seqRange(n uint32) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i + 1)
	}
	return out
}

func TestMailboxFetchAndMoveProcessed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		security string
		move     bool
	}{
		{"tls with MOVE", "tls", true},
		{"tls without MOVE (COPY+STORE+EXPUNGE)", "tls", false},
		{"starttls", "starttls", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := newTestCA(t, "127.0.0.1")
			f := startIMAP(t, tc.security, ca.Server, tc.move)
			base := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
			for i := 1; i <= 3; i++ {
				f.appendMail(t, "INBOX", incoming(i), base.Add(time.Duration(i)*time.Hour))
			}
			m := openMailbox(t, mailboxProfile(f, ca))

			got, err := m.Fetch(ctx10s(t), 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 {
				t.Fatalf("Fetch(2) returned %d messages", len(got))
			}
			for i, g := range got {
				if !bytes.Equal(g.Raw, incoming(i+1)) {
					t.Errorf("message %d = %q, want %q (oldest first, whole)", i, g.Raw, incoming(i+1))
				}
				if want := base.Add(time.Duration(i+1) * time.Hour); !g.InternalDate.Equal(want) {
					t.Errorf("message %d internal date %v, want %v", i, g.InternalDate, want)
				}
			}
			if got[0].UID >= got[1].UID {
				t.Errorf("UIDs %d, %d not ascending", got[0].UID, got[1].UID)
			}
			if _, seen := folderState(t, f, ca, "INBOX"); slices.Contains(seen, true) {
				t.Errorf("Fetch marked messages seen: %v", seen)
			}

			if err := m.MoveProcessed(ctx10s(t), []uint32{got[0].UID, got[1].UID}); err != nil {
				t.Fatalf("MoveProcessed: %v", err)
			}
			if subj, _ := folderState(t, f, ca, "INBOX"); !slices.Equal(subj, []string{"Factuur 3"}) {
				t.Errorf("INBOX after move = %v, want [Factuur 3]", subj)
			}
			if subj, _ := folderState(t, f, ca, DefaultProcessed); !slices.Equal(subj, []string{"Factuur 1", "Factuur 2"}) {
				t.Errorf("%s after move = %v, want [Factuur 1 Factuur 2]", DefaultProcessed, subj)
			}

			// The folder exists now; a second move must not trip over that.
			rest, err := m.Fetch(ctx10s(t), 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(rest) != 1 || !bytes.Equal(rest[0].Raw, incoming(3)) {
				t.Fatalf("Fetch after move returned %d messages, want only message 3", len(rest))
			}
			if err := m.MoveProcessed(ctx10s(t), []uint32{rest[0].UID}); err != nil {
				t.Fatalf("second MoveProcessed: %v", err)
			}
			if left, err := m.Fetch(ctx10s(t), 10); err != nil || len(left) != 0 {
				t.Errorf("Fetch of an emptied folder = %d messages, %v", len(left), err)
			}
		})
	}
}

func TestMailboxSentHas(t *testing.T) {
	ca := newTestCA(t, "127.0.0.1")
	f := startIMAP(t, "tls", ca.Server, true)
	_, raw := testInvoiceMail(t) // Message-ID KOE-1000001@koerier.example
	f.appendMail(t, "Sent", raw, time.Now())
	// Another message whose Message-ID contains the looked-up one as a substring.
	f.appendMail(t, "Sent", []byte("Message-ID: <X-KOE-1000002@koerier.example.nl>\r\nSubject: x\r\n\r\nx\r\n"), time.Now())
	// A header the server's substring search matches, but whose Message-ID
	// is another one.
	f.appendMail(t, "Sent", []byte("Message-ID: <other@koerier.example> (<KOE-1000003@koerier.example>)\r\nSubject: y\r\n\r\ny\r\n"), time.Now())
	m := openMailbox(t, mailboxProfile(f, ca))

	for id, want := range map[string]bool{
		"KOE-1000001@koerier.example":   true,
		"<KOE-1000001@koerier.example>": true,
		"KOE-1000002@koerier.example":   false,
		"KOE-100000@koerier.example":    false,
		"KOE-1000003@koerier.example":   false,
		"other@koerier.example":         true,
	} {
		got, err := m.SentHas(ctx10s(t), id)
		if err != nil {
			t.Fatalf("SentHas(%s): %v", id, err)
		}
		if got != want {
			t.Errorf("SentHas(%s) = %v, want %v", id, got, want)
		}
	}

	// A Sent folder that does not exist is an error, not "not sent".
	p := mailboxProfile(f, ca)
	p.Sent = "Verzonden items"
	m2 := openMailbox(t, p)
	if _, err := m2.SentHas(ctx10s(t), "KOE-1000001@koerier.example"); !errors.Is(err, ErrNoFolder) || !strings.Contains(err.Error(), "Verzonden items") {
		t.Errorf("SentHas on a missing folder: err = %v, want an error naming the folder", err)
	}
}

func TestMailboxOpenFailures(t *testing.T) {
	ca := newTestCA(t, "127.0.0.1")
	f := startIMAP(t, "tls", ca.Server, true)

	p := mailboxProfile(f, ca)
	p.IMAP.Password = "wrong-imap-password"
	_, err := Open(ctx10s(t), p)
	if !errors.Is(err, ErrAuth) {
		t.Errorf("wrong password: err = %v, want ErrAuth", err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong-imap-password") {
		t.Errorf("error shows the password: %v", err)
	}

	p = mailboxProfile(f, ca)
	p.RootCAs = newTestCA(t, "127.0.0.1").Pool
	if _, err := Open(ctx10s(t), p); !errors.Is(err, ErrTLS) {
		t.Errorf("untrusted certificate: err = %v, want ErrTLS", err)
	}

	p = mailboxProfile(f, ca)
	p.IMAP = Server{}
	if _, err := Open(ctx10s(t), p); !errors.Is(err, ErrNoMailbox) {
		t.Errorf("no mailbox: err = %v, want ErrNoMailbox", err)
	}
}

func TestMailboxContextEndsCall(t *testing.T) {
	ca := newTestCA(t, "127.0.0.1")
	f := startIMAP(t, "tls", ca.Server, true)
	m := openMailbox(t, mailboxProfile(f, ca))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Fetch(ctx, 10); err == nil {
		t.Fatal("Fetch with a cancelled context succeeded")
	}
}
