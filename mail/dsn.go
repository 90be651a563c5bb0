package mail

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// DSN is a delivery status notification (RFC 3464).
type DSN struct {
	OriginalMessageID string // from the returned message/rfc822 or text/rfc822-headers part, or In-Reply-To/References
	Recipients        []DSNRecipient
}

// DSNRecipient is the report about one recipient.
type DSNRecipient struct {
	Recipient  string
	Action     string // failed, delayed, delivered, relayed, expanded
	Status     string // "5.1.1"
	Diagnostic string // the remote server's words, e.g. "550 5.1.1 user unknown"
}

// Failed returns the first recipient the message permanently failed for.
func (d DSN) Failed() (DSNRecipient, bool) {
	for _, r := range d.Recipients {
		if r.Action == "failed" {
			return r, true
		}
	}
	return DSNRecipient{}, false
}

// parseDeliveryStatus reads the per-recipient field groups of a
// message/delivery-status body. It is lenient: MTAs differ in line endings,
// folding and case.
func parseDeliveryStatus(b []byte) []DSNRecipient {
	var out []DSNRecipient
	for _, group := range fieldGroups(b) {
		rcpt := afterType(group["final-recipient"])
		if rcpt == "" {
			rcpt = afterType(group["original-recipient"])
		}
		if rcpt == "" {
			continue // the per-message group
		}
		status := group["status"]
		if f := strings.Fields(status); len(f) > 0 {
			status = f[0]
		}
		out = append(out, DSNRecipient{
			Recipient:  rcpt,
			Action:     strings.ToLower(headerToken(group["action"])),
			Status:     status,
			Diagnostic: afterType(group["diagnostic-code"]),
		})
	}
	return out
}

func fieldGroups(b []byte) []map[string]string {
	var groups []map[string]string
	cur := map[string]string{}
	last := ""
	flush := func() {
		if len(cur) > 0 {
			groups = append(groups, cur)
		}
		cur, last = map[string]string{}, ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case (line[0] == ' ' || line[0] == '\t') && last != "":
			cur[last] += " " + strings.TrimSpace(line)
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			if _, dup := cur[last]; !dup {
				cur[last] = strings.TrimSpace(v)
			}
		}
	}
	flush()
	return groups
}

// afterType strips the "rfc822;" or "smtp;" type of a DSN field.
func afterType(v string) string {
	if _, rest, ok := strings.Cut(v, ";"); ok {
		v = rest
	}
	return strings.TrimSpace(v)
}

var statusRE = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3}$`)

// ComposeDSN builds an RFC 3464 bounce for the original message, as an MTA
// would: from MAILER-DAEMON at reportingMTA to the original sender, with a
// human-readable part, the message/delivery-status part, and the original
// headers (text/rfc822-headers). Used by the dev mail server and by tests.
func ComposeDSN(reportingMTA string, original []byte, recipient, status, diagnostic string, now time.Time) ([]byte, error) {
	reportingMTA, recipient, diagnostic = oneLine(reportingMTA), oneLine(recipient), oneLine(diagnostic)
	if reportingMTA == "" || recipient == "" {
		return nil, errors.New("compose DSN: reporting MTA and recipient are required")
	}
	if !statusRE.MatchString(status) {
		return nil, fmt.Errorf("compose DSN: status %q is not an RFC 3463 code like 5.1.1", status)
	}
	action := map[byte]string{'2': "delivered", '4': "delayed", '5': "failed"}[status[0]]

	headerEnd := bytes.Index(original, []byte("\r\n\r\n"))
	sepLen := 4
	if i := bytes.Index(original, []byte("\n\n")); i >= 0 && (headerEnd < 0 || i < headerEnd) {
		headerEnd, sepLen = i, 2
	}
	if headerEnd < 0 {
		headerEnd, sepLen = len(original), 0
	}
	origHeader := original[:headerEnd+sepLen]
	oh, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(origHeader)))
	if err != nil {
		return nil, fmt.Errorf("compose DSN: original headers: %w", err)
	}
	orig := gomail.Header{Header: message.Header{Header: oh}}
	sender := fromAddress(orig)
	if sender == "" {
		return nil, errors.New("compose DSN: the original has no From address to return it to")
	}
	subject, _ := orig.Subject()

	sum := sha256.Sum256(append(append([]byte{}, original...), []byte(recipient+"\x00"+status+"\x00"+now.UTC().Format(time.RFC3339Nano))...))
	tag := hex.EncodeToString(sum[:])[:32]

	// Set in reverse: go-message writes the last field set first.
	var h gomail.Header
	h.SetContentType("multipart/report", map[string]string{"report-type": "delivery-status", "boundary": "=_dsn_" + tag})
	h.Set("MIME-Version", "1.0")
	h.Set("Auto-Submitted", "auto-replied")
	h.SetSubject("Undelivered Mail Returned to Sender")
	h.SetAddressList("To", []*gomail.Address{{Address: sender}})
	h.SetAddressList("From", []*gomail.Address{{Name: "Mail Delivery System", Address: "MAILER-DAEMON@" + reportingMTA}})
	h.SetDate(now)
	h.SetMessageID("dsn-" + tag + "@" + reportingMTA)

	var buf bytes.Buffer
	mw, err := message.CreateWriter(&buf, h.Header)
	if err != nil {
		return nil, fmt.Errorf("compose DSN: %w", err)
	}
	var text message.Header
	text.Set("Content-Transfer-Encoding", "quoted-printable")
	text.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	human := fmt.Sprintf("This is the mail system at %s.\r\n\r\nYour message %q could not be delivered to %s.\r\n\r\n%s\r\n",
		reportingMTA, subject, recipient, diagnostic)
	if err := writePart(mw, text, []byte(human)); err != nil {
		return nil, fmt.Errorf("compose DSN: %w", err)
	}

	var ds message.Header
	ds.SetContentType("message/delivery-status", nil)
	fields := fmt.Sprintf("Reporting-MTA: dns; %s\r\nArrival-Date: %s\r\n\r\nFinal-Recipient: rfc822; %s\r\nOriginal-Recipient: rfc822; %s\r\nAction: %s\r\nStatus: %s\r\n",
		reportingMTA, now.Format(time.RFC1123Z), recipient, recipient, action, status)
	if diagnostic != "" {
		fields += "Diagnostic-Code: smtp; " + diagnostic + "\r\n"
	}
	if err := writePart(mw, ds, []byte(fields)); err != nil {
		return nil, fmt.Errorf("compose DSN: %w", err)
	}

	var rh message.Header
	rh.SetContentType("text/rfc822-headers", nil)
	if err := writePart(mw, rh, crlf(origHeader)); err != nil {
		return nil, fmt.Errorf("compose DSN: %w", err)
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("compose DSN: %w", err)
	}
	return buf.Bytes(), nil
}

// oneLine keeps caller text from starting a new header or DSN field.
func oneLine(s string) string {
	return strings.TrimSpace(strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(s))
}

func crlf(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}
