package devserver

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime/multipart"
	"net/textproto"
	"strings"
	"time"

	gmtextproto "github.com/emersion/go-message/textproto"
)

func newMessageID(domain string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b) + "@" + domain
}

// originalHeader returns the header block of raw, as parsed and rewritten by
// go-message, so that a broken original still yields something to quote.
func originalHeader(raw []byte) (gmtextproto.Header, []byte) {
	h, err := gmtextproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return h, nil
	}
	var buf bytes.Buffer
	if err := gmtextproto.WriteHeader(&buf, h); err != nil {
		return h, nil
	}
	return h, buf.Bytes()
}

// deliveryStatus composes an RFC 3464 non-delivery report for recipients of
// raw, as Postfix would after a remote 550 5.1.1.
func deliveryStatus(domain string, recipients []string, sender string, raw []byte, arrived time.Time) []byte {
	h, headerBlock := originalHeader(raw)
	origID := strings.TrimSpace(h.Get("Message-Id"))

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)

	text, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}})
	fmt.Fprintf(text, "This is the mail system at host %s (the Koerier development mail server).\r\n\r\n", domain)
	fmt.Fprintf(text, "Your message could not be delivered to one or more recipients (bounce- scenario):\r\n\r\n")
	for _, r := range recipients {
		fmt.Fprintf(text, "<%s>: host mx.%s said: 550 5.1.1 User unknown\r\n", r, domainOf(r))
	}
	if origID != "" {
		fmt.Fprintf(text, "\r\nOriginal Message-ID: %s\r\n", origID)
	}

	status, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"message/delivery-status"}})
	fmt.Fprintf(status, "Reporting-MTA: dns; %s\r\nArrival-Date: %s\r\n", domain, arrived.Format(time.RFC1123Z))
	for _, r := range recipients {
		fmt.Fprintf(status, "\r\nFinal-Recipient: rfc822; %s\r\nOriginal-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: 5.1.1\r\n", r, r)
		fmt.Fprintf(status, "Remote-MTA: dns; mx.%s\r\nDiagnostic-Code: smtp; 550 5.1.1 <%s>: Recipient address rejected: User unknown\r\n", domainOf(r), r)
	}

	headers, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/rfc822-headers"}})
	_, _ = headers.Write(headerBlock)
	_ = mw.Close()

	var msg bytes.Buffer
	fmt.Fprintf(&msg, "From: Mail Delivery System <mailer-daemon@%s>\r\n", domain)
	fmt.Fprintf(&msg, "To: <%s>\r\n", sender)
	fmt.Fprintf(&msg, "Subject: Undelivered Mail Returned to Sender\r\n")
	fmt.Fprintf(&msg, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&msg, "Message-ID: <%s>\r\n", newMessageID(domain))
	fmt.Fprintf(&msg, "Auto-Submitted: auto-replied\r\n")
	fmt.Fprintf(&msg, "MIME-Version: 1.0\r\n")
	fmt.Fprintf(&msg, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=%q\r\n\r\n", mw.Boundary())
	msg.Write(body.Bytes())
	return msg.Bytes()
}

// autoReply composes an RFC 3834 automatic reply from rcpt to sender.
func autoReply(domain, rcpt, sender string, raw []byte, received time.Time) []byte {
	h, _ := originalHeader(raw)
	origID := strings.TrimSpace(h.Get("Message-Id"))
	subject := strings.TrimSpace(h.Get("Subject")) // kept encoded: encoded-words survive a prefix

	var msg bytes.Buffer
	fmt.Fprintf(&msg, "From: <%s>\r\n", rcpt)
	fmt.Fprintf(&msg, "To: <%s>\r\n", sender)
	fmt.Fprintf(&msg, "Subject: Automatic reply: %s\r\n", subject)
	fmt.Fprintf(&msg, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&msg, "Message-ID: <%s>\r\n", newMessageID(domain))
	if origID != "" {
		fmt.Fprintf(&msg, "In-Reply-To: %s\r\nReferences: %s\r\n", origID, origID)
	}
	fmt.Fprintf(&msg, "Auto-Submitted: auto-replied\r\n")
	fmt.Fprintf(&msg, "MIME-Version: 1.0\r\n")
	fmt.Fprintf(&msg, "Content-Type: text/plain; charset=utf-8\r\n\r\n")
	fmt.Fprintf(&msg, "Thank you for your message of %s.\r\n\r\n", received.Format(time.RFC1123Z))
	fmt.Fprintf(&msg, "This mailbox is not read; this is an automatic reply\r\n(autoreply- scenario of the Koerier development mail server).\r\n")
	return msg.Bytes()
}

func domainOf(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}
