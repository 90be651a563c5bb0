// Package mail is Koerier's e-mail channel: it submits messages by SMTP from an
// environment's own profile, reads that environment's IMAP mailbox, and builds
// and parses the MIME messages (UBL e-invoices, bounces, automatic replies).
//
// It speaks the protocols only; what a message means for an invoice is decided
// by the callers.
package mail

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"strings"
)

// Security is how a connection to a mail server is protected.
type Security string

const (
	// SecurityTLS is implicit TLS (SMTP 465, IMAP 993).
	SecurityTLS Security = "tls"
	// SecurityStartTLS upgrades a plain connection (SMTP 587, IMAP 143) and
	// refuses to continue when the server does not offer it.
	SecurityStartTLS Security = "starttls"
	// SecurityNone sends everything, password included, in the clear; only
	// allowed for a server on this machine (the local dev mail server).
	SecurityNone Security = "none"
)

// Server is one mail server a profile talks to.
type Server struct {
	Host     string
	Port     int
	Security Security
	User     string
	Password string
}

// Profile is an environment's e-mail profile: its own submission server, its
// own mailbox, and its own sender address.
type Profile struct {
	From      string // sender address
	SMTP      Server
	IMAP      Server         // Host "" = no mailbox (receive and the Sent look-up are then unavailable)
	Folder    string         // incoming folder, default "INBOX"
	Processed string         // where read mail is moved, default "Koerier/Verwerkt" (created when missing)
	Sent      string         // where the server keeps sent mail, default "Sent"
	RootCAs   *x509.CertPool // nil = system roots
}

// Defaults for the folder names of a profile. Folder names use "/" as the
// hierarchy separator; it is translated to the server's own.
const (
	DefaultFolder    = "INBOX"
	DefaultProcessed = "Koerier/Verwerkt"
	DefaultSent      = "Sent"
)

func (p Profile) folder() string    { return orDefault(p.Folder, DefaultFolder) }
func (p Profile) processed() string { return orDefault(p.Processed, DefaultProcessed) }
func (p Profile) sent() string      { return orDefault(p.Sent, DefaultSent) }

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// HasMailbox reports whether the profile names an IMAP mailbox.
func (p Profile) HasMailbox() bool { return p.IMAP.Host != "" }

// Validate reports everything that is missing or wrong in the profile, each
// problem naming its field, so that an operator can fix them in one go.
func (p Profile) Validate() error {
	var errs []error
	if strings.TrimSpace(p.From) == "" {
		errs = append(errs, errors.New("field From: the sender address is empty"))
	} else if _, err := mail.ParseAddress(p.From); err != nil {
		errs = append(errs, fmt.Errorf("field From: %q is not an e-mail address: %v", p.From, err))
	}
	errs = append(errs, p.SMTP.validate("SMTP", false)...)
	if p.HasMailbox() {
		errs = append(errs, p.IMAP.validate("IMAP", true)...)
		for _, f := range [][2]string{{"Folder", p.folder()}, {"Processed", p.processed()}, {"Sent", p.sent()}} {
			if strings.ContainsAny(f[1], "\r\n\"*%") {
				errs = append(errs, fmt.Errorf("field %s: folder name %q contains a character IMAP does not allow here", f[0], f[1]))
			}
		}
		if p.folder() == p.processed() {
			errs = append(errs, fmt.Errorf("field Processed: %q is also the incoming Folder; read mail would never leave it", p.processed()))
		}
	}
	return errors.Join(errs...)
}

func (s Server) validate(field string, needUser bool) []error {
	var errs []error
	if strings.TrimSpace(s.Host) == "" {
		errs = append(errs, fmt.Errorf("%s.Host is empty", field))
	} else if strings.ContainsAny(s.Host, " /:@") && net.ParseIP(s.Host) == nil {
		errs = append(errs, fmt.Errorf("%s.Host %q is not a host name (give the port in %s.Port)", field, s.Host, field))
	}
	if s.Port < 1 || s.Port > 65535 {
		errs = append(errs, fmt.Errorf("%s.Port %d is not a port number (1-65535)", field, s.Port))
	}
	switch s.Security {
	case SecurityTLS, SecurityStartTLS:
	case SecurityNone:
		if s.Host != "" && !isLoopback(s.Host) {
			errs = append(errs, fmt.Errorf("%s.Security %q is only allowed for a server on this machine (localhost, 127.0.0.1, ::1), not %q: use %q or %q",
				field, SecurityNone, s.Host, SecurityTLS, SecurityStartTLS))
		}
	default:
		errs = append(errs, fmt.Errorf("%s.Security %q is not one of %q, %q, %q", field, s.Security, SecurityTLS, SecurityStartTLS, SecurityNone))
	}
	if needUser && s.User == "" {
		errs = append(errs, fmt.Errorf("%s.User is empty: the mailbox needs a login", field))
	}
	if s.User == "" && s.Password != "" {
		errs = append(errs, fmt.Errorf("%s.Password is set but %s.User is empty", field, field))
	}
	if strings.ContainsAny(s.User, "\r\n") || strings.ContainsAny(s.Password, "\r\n") {
		errs = append(errs, fmt.Errorf("%s.User or %s.Password contains a line break", field, field))
	}
	return errs
}

// isLoopback accepts only names that cannot leave the machine; a host name
// that merely resolves to 127.0.0.1 today is not trusted with a password.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func (s Server) addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// String describes the server without its password: "user@host:587 starttls".
func (s Server) String() string {
	if s.Host == "" {
		return "(none)"
	}
	out := s.addr() + " " + string(s.Security)
	if s.User != "" {
		out = s.User + "@" + out
	}
	return out
}

// String describes the profile for logs and operators; it never contains a
// password.
func (p Profile) String() string {
	out := fmt.Sprintf("from %s, smtp %s", p.From, p.SMTP)
	if p.HasMailbox() {
		out += fmt.Sprintf(", imap %s folder %q", p.IMAP, p.folder())
	} else {
		out += ", no mailbox"
	}
	return out
}

func (p Profile) tlsConfig(host string) *tls.Config {
	return &tls.Config{
		ServerName: strings.Trim(host, "[]"),
		RootCAs:    p.RootCAs,
		MinVersion: tls.VersionTLS12,
	}
}
