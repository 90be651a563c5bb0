// Package devserver is a small, real mail server for `make run` and for tests:
// it speaks SMTP (github.com/emersion/go-smtp) and IMAP (go-imap v2's imapserver
// with the in-memory imapmemserver backend), keeps everything in memory, and
// shows what it holds on a web page and a JSON API.
//
// # Mailboxes
//
// Every <anything>@Domain (default koerier.test) is a local mailbox, created on
// first use (SMTP delivery, SMTP AUTH, IMAP LOGIN or Deliver) with the folders
// INBOX, Sent, Drafts, Archive, Junk and Trash. All local mailboxes share the one
// Config.Password. IMAP listens with implicit TLS when Config.TLS is set; SMTP
// then offers STARTTLS and only allows AUTH after it.
//
// SMTP accepts mail without authentication from loopback clients (as the
// issue's KOERIER_DEV_SMTP promises); other clients must AUTH PLAIN with a local
// address and the password. A message for a local address lands in its INBOX
// with Return-Path and Received headers prepended, as a real MTA does; one for
// another domain is kept in Outbound, a catch-all relay log like mailpit's. When
// the envelope sender is local, the message as submitted is also put in the
// sender's Sent folder, as Gmail and Exchange do, so that a client that lost the
// 250 can find it there by Message-ID. Both happen before the 250 is written.
//
// # Scenarios
//
// The local part of a recipient address, in any domain, chooses a scenario:
//
//   - reject-*@any: RCPT is refused with 550 5.1.1.
//   - bounce-*@any: the message is accepted (250) and, Config.BounceDelay later,
//     an RFC 3464 delivery status notification (multipart/report;
//     report-type=delivery-status, with Final-Recipient, Action: failed,
//     Status: 5.1.1, Diagnostic-Code and the original's headers, Message-ID
//     included, as text/rfc822-headers) is sent to the envelope sender.
//   - autoreply-*@any: accepted (250) and, BounceDelay later, an automatic reply
//     (Auto-Submitted: auto-replied, In-Reply-To and References naming the
//     original Message-ID) is sent to the envelope sender.
//
// Scenario recipients are not delivered to a mailbox; for another domain they
// are still logged in Outbound, since the relay accepted them. Generated mail
// goes to the sender's INBOX when the sender is local, else to Outbound, and is
// never sent for a null sender (MAIL FROM:<>), to avoid loops.
//
// # Faults
//
// FailNext makes the next n transactions fail at RCPT or at the end of DATA with
// a given reply (a 451 4.3.0 at DATA stores nothing). DropNext makes the next n
// transactions read the whole DATA, deliver the message (stored, counted in
// Accepted) and then close the connection without writing the 250: the case of a
// client whose 250 was lost, which must look the message up in Sent by
// Message-ID rather than send it again. Both are also reachable over HTTP at
// POST /control/fail-next and /control/drop-next.
//
// Messages, Outbound and the web page never change what a client sees: they
// read the mailboxes over an in-process IMAP connection with EXAMINE and
// BODY.PEEK, so \Seen flags are untouched.
package devserver
