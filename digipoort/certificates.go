package digipoort

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// CertificateRole says what a configured certificate is for.
type CertificateRole string

const (
	// RoleClient is Config.ClientCertificate: mutual TLS and request signatures.
	RoleClient CertificateRole = "client"
	// RoleClientNext is Config.NextClientCertificate, the second client certificate
	// for the switch-over to a renewed one.
	RoleClientNext CertificateRole = "client-next"
	// RoleSigning is a certificate trusted to sign Digipoort's responses
	// (Config.SigningCertificates).
	RoleSigning CertificateRole = "response-signing"
)

// Certificate states.
const (
	StateValid       = "valid"
	StateExpired     = "expired"
	StateNotYetValid = "not yet valid"
)

// warningDays are the days before expiry at which a certificate warning is due.
// PKIoverheid renewal (ordering, the provider's identity checks, registering at
// Digipoort where needed) takes weeks: 60 days leaves time to start, 30 says it is
// getting late, 7 is the last call.
var warningDays = [...]int{60, 30, 7}

// CertificateInfo describes one configured certificate at one moment.
type CertificateInfo struct {
	Role CertificateRole `json:"role"`
	// Source is the variable and file it was read from (ConfigFromEnv); empty for a
	// Config built in code.
	Source    string    `json:"source,omitempty"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"` // hexadecimal, as CAs and openssl show it
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// DaysLeft is the number of whole days until NotAfter; negative once expired.
	DaysLeft int    `json:"days_left"`
	State    string `json:"state"` // StateValid, StateExpired or StateNotYetValid
	// InUse: for a client certificate, the one calls use now (the valid one that
	// expires last); for a signing certificate, that it is valid now, so Digipoort can
	// be signing with it.
	InUse bool `json:"in_use"`
	// Note explains a certificate that needs no action although it is near or past
	// its expiry (it has a successor).
	Note string `json:"note,omitempty"`
}

// CertificateWarning is due when a certificate that has no configured successor
// comes within 60, 30 or 7 days of its expiry, or has expired, or when no client
// certificate is valid. A caller that reports warnings once should key them on
// (Serial, ThresholdDays).
type CertificateWarning struct {
	Role    CertificateRole `json:"role"`
	Subject string          `json:"subject,omitempty"`
	Serial  string          `json:"serial,omitempty"`
	// NotAfter and DaysLeft repeat the certificate's.
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"`
	// ThresholdDays is 60, 30 or 7 (the threshold passed), or 0 when the certificate
	// has expired or no client certificate is valid.
	ThresholdDays int `json:"threshold_days"`
	// Urgent: 7 days or less, expired, or no valid client certificate.
	Urgent bool `json:"urgent"`
	// Message says what is wrong and what to do (one line).
	Message string `json:"message"`
}

// CertificateReport is every configured certificate (client certificates, trusted
// response-signing certificates) with the warnings due at Now.
type CertificateReport struct {
	Now          time.Time            `json:"now"`
	Certificates []CertificateInfo    `json:"certificates"`
	Warnings     []CertificateWarning `json:"warnings"`
	// ClientDaysLeft is DaysLeft of the client certificate in use; nil when no client
	// certificate is valid (then Warnings says so).
	ClientDaysLeft *int `json:"client_days_left"`
}

// InUseClient returns the client certificate calls use at r.Now.
func (r CertificateReport) InUseClient() (CertificateInfo, bool) {
	for _, c := range r.Certificates {
		if (c.Role == RoleClient || c.Role == RoleClientNext) && c.InUse {
			return c, true
		}
	}
	return CertificateInfo{}, false
}

// Urgent reports whether any warning is urgent.
func (r CertificateReport) Urgent() bool {
	for _, w := range r.Warnings {
		if w.Urgent {
			return true
		}
	}
	return false
}

// Certificates lists the configured certificates and the warnings due at now. It
// is a pure function of the configuration and now.
func (c Config) Certificates(now time.Time) CertificateReport {
	r := CertificateReport{Now: now, Certificates: []CertificateInfo{}, Warnings: []CertificateWarning{}}
	clients := c.clientCertificates()
	inUse, _ := chooseClientCertificate(clients, now)
	for i, nc := range clients {
		if nc.cert.Leaf == nil {
			continue
		}
		info := describe(nc.cert.Leaf, nc.role, nc.source, now)
		info.InUse = i == inUse
		if info.InUse {
			d := info.DaysLeft
			r.ClientDaysLeft = &d
		}
		var successor *x509.Certificate
		for j, o := range clients {
			if j != i && o.cert.Leaf != nil && succeeds(o.cert.Leaf, nc.cert.Leaf) {
				successor = o.cert.Leaf
			}
		}
		r.add(info, successor, clientAdvice)
	}
	for _, sc := range c.SigningCertificates {
		info := describe(sc, RoleSigning, c.sources.signing, now)
		info.InUse = info.State == StateValid
		var successor *x509.Certificate
		for _, o := range c.SigningCertificates {
			// Logius renews its signing certificate under the same name; a trusted
			// certificate of that name that outlives this one takes over.
			if o != sc && o.Subject.String() == sc.Subject.String() && succeeds(o, sc) {
				successor = o
			}
		}
		r.add(info, successor, signingAdvice)
	}
	if inUse < 0 && len(clients) > 0 && clients[0].cert.Leaf != nil {
		_, err := chooseClientCertificate(clients, now)
		r.Warnings = append(r.Warnings, CertificateWarning{Role: RoleClient, ThresholdDays: 0, Urgent: true, Message: err.Error()})
	}
	return r
}

// Certificates is Config.Certificates for the client's configuration at the client's
// clock.
func (c *Client) Certificates() CertificateReport { return c.cfg.Certificates(c.now()) }

func (r *CertificateReport) add(info CertificateInfo, successor *x509.Certificate, advice func(CertificateInfo) string) {
	threshold := -1
	switch remaining := info.NotAfter.Sub(r.Now); {
	case remaining < 0:
		threshold = 0
	default:
		for _, d := range warningDays {
			if remaining <= time.Duration(d)*24*time.Hour {
				threshold = d
			}
		}
	}
	if threshold >= 0 && successor != nil {
		info.Note = fmt.Sprintf("succeeded by serial %s (valid from %s until %s); remove this one from the configuration once it has expired",
			serialHex(successor), day(successor.NotBefore), day(successor.NotAfter))
		threshold = -1
	}
	r.Certificates = append(r.Certificates, info)
	if threshold < 0 || info.State == StateNotYetValid {
		return
	}
	var when string
	if threshold == 0 {
		when = "expired on " + day(info.NotAfter)
	} else {
		when = fmt.Sprintf("expires on %s (in %d days)", day(info.NotAfter), info.DaysLeft)
	}
	r.Warnings = append(r.Warnings, CertificateWarning{
		Role: info.Role, Subject: info.Subject, Serial: info.Serial, NotAfter: info.NotAfter, DaysLeft: info.DaysLeft,
		ThresholdDays: threshold, Urgent: threshold <= 7,
		Message: fmt.Sprintf("%s certificate %s (serial %s) %s: %s", info.Role, info.Subject, info.Serial, when, advice(info)),
	})
}

func clientAdvice(info CertificateInfo) string {
	if info.State == StateExpired {
		return "Digipoort refuses an expired certificate; configure a valid PKIoverheid certificate in " + EnvClientCert + "/" + EnvClientKey +
			" (or " + EnvClientPFX + ")"
	}
	return "order its renewal from the PKIoverheid provider and configure the renewed certificate in " + EnvClientCertNext + "/" +
		EnvClientKeyNext + " (or " + EnvClientPFXNext + "); Koerier uses it as soon as it is valid"
}

func signingAdvice(info CertificateInfo) string {
	return "get Digipoort's new signing certificate from Logius and add it to " + EnvSigningCert +
		" beside this one (a response signed by a certificate that is not trusted is refused)"
}

// succeeds reports whether next takes over from cur: it expires later and is valid
// before cur expires, so there is no gap.
func succeeds(next, cur *x509.Certificate) bool {
	return next.NotAfter.After(cur.NotAfter) && !next.NotBefore.After(cur.NotAfter)
}

func describe(c *x509.Certificate, role CertificateRole, source string, now time.Time) CertificateInfo {
	info := CertificateInfo{
		Role: role, Source: source, Subject: c.Subject.String(), Issuer: c.Issuer.String(), Serial: serialHex(c),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		DaysLeft: int(math.Floor(c.NotAfter.Sub(now).Hours() / 24)),
		State:    certState(c, now),
	}
	return info
}

func certState(c *x509.Certificate, now time.Time) string {
	switch {
	case now.Before(c.NotBefore):
		return StateNotYetValid
	case now.After(c.NotAfter):
		return StateExpired
	}
	return StateValid
}

func serialHex(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return ""
	}
	return c.SerialNumber.Text(16)
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

type namedCert struct {
	cert   tls.Certificate
	role   CertificateRole
	source string
}

// chooseClientCertificate returns the index of the certificate calls use at now: of
// the valid ones, the one that expires last. Never an expired or not yet valid one:
// Digipoort refuses those, and a refusal in the TLS handshake or as status 210 says
// less than this error. -1 and an error naming each certificate when none is valid.
func chooseClientCertificate(certs []namedCert, now time.Time) (int, error) {
	best := -1
	for i, nc := range certs {
		l := nc.cert.Leaf
		if l == nil || certState(l, now) != StateValid {
			continue
		}
		if best < 0 || l.NotAfter.After(certs[best].cert.Leaf.NotAfter) {
			best = i
		}
	}
	if best >= 0 {
		return best, nil
	}
	var each []string
	for _, nc := range certs {
		l := nc.cert.Leaf
		if l == nil {
			continue
		}
		src := string(nc.role)
		if nc.source != "" {
			src += " (" + nc.source + ")"
		}
		switch certState(l, now) {
		case StateExpired:
			each = append(each, fmt.Sprintf("%s %s expired on %s", src, l.Subject.CommonName, day(l.NotAfter)))
		default:
			each = append(each, fmt.Sprintf("%s %s is valid only from %s", src, l.Subject.CommonName, l.NotBefore.UTC().Format(time.RFC3339)))
		}
	}
	sort.Strings(each)
	return -1, fmt.Errorf("no valid client certificate (%s): configure a valid PKIoverheid certificate in %s/%s or %s "+
		"(a renewed one can wait in %s/%s or %s), and check this machine's clock", strings.Join(each, "; "),
		EnvClientCert, EnvClientKey, EnvClientPFX, EnvClientCertNext, EnvClientKeyNext, EnvClientPFXNext)
}

// sameCertificate reports whether a and b are the same certificate.
func sameCertificate(a, b *x509.Certificate) bool {
	return a != nil && b != nil && bytes.Equal(a.Raw, b.Raw)
}
