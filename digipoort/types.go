package digipoort

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Identity is Digipoort's identiteitType: a number and its type (Fi, BTW, LHnr, OIN,
// kvk, …).
type Identity struct{ Nummer, Type string }

func (i Identity) String() string { return i.Type + ":" + i.Nummer }

// DeliverRequest is what Deliver sends (aanleverRequest).
type DeliverRequest struct {
	Berichtsoort    string // e.g. "Omzetbelasting"
	Aanleverkenmerk string // Koerier's message number: makes a retried delivery recognisable
	Belanghebbende  Identity
	Rol             string    // rolBelanghebbende: "Bedrijf" or "Intermediair"
	Ontvanger       *Identity // identiteitOntvanger, optional
	MimeType        string    // "text/xml" or "application/xml"
	Bestandsnaam    string
	Inhoud          []byte // at most 20 MiB
	// Bijlagen are sent as berichtBijlagen; only types whose process takes
	// attachments may carry them.
	Bijlagen []Bijlage
}

// Bijlage is one attachment to the business document (berichtInhoudType).
type Bijlage struct {
	MimeType     string
	Bestandsnaam string
	Inhoud       []byte
}

// DeliverResponse is Digipoort's answer to a delivery (aanleverResponse).
type DeliverResponse struct {
	Kenmerk          string // Digipoort's process reference; statuses and replies carry it
	Berichtsoort     string
	Aanleverkenmerk  string
	Aangeleverd      time.Time
	Belanghebbende   Identity
	Rol              string
	Ontvanger        *Identity
	AutorisatieAdres string
	// Optional status fields Digipoort may add.
	Statuscode        string
	StatusTime        time.Time
	StatusDescription string
}

// Status is one StatusResultaat of a delivery process.
type Status struct {
	Kenmerk          string
	Code             string // "105", "100", … "500"
	Time             time.Time
	Description      string // statusomschrijving
	ErrorCode        string // statusFoutcode/foutcode, e.g. "VAS500"
	ErrorDescription string // statusFoutcode/foutbeschrijving
	Details          string // statusdetails (for 311: <msg> lines)
	Belanghebbende   Identity
}

// BerichtRef is one BerichtLijstResultaat: a message ready for pickup.
type BerichtRef struct {
	Kenmerk        string
	Berichtsoort   string
	Belanghebbende Identity
}

// Bericht is one BerichtResultaat: a message picked up from the ophaalservice.
type Bericht struct {
	Kenmerk         string // the process kenmerk the message belongs to
	Berichtsoort    string
	Berichtkenmerk  string
	Aanleverkenmerk string // whether Digipoort fills this is not confirmed
	Aangeleverd     time.Time
	Belanghebbende  Identity
	Rol             string
	MimeType        string
	Bestandsnaam    string
	Inhoud          []byte
}

// Field limits of koppelvlak 1.2 (digipoort-koppelvlak-1.2.xsd), checked before a
// request is sent.
const (
	MaxKenmerk         = 40
	MaxAanleverkenmerk = 40
	MaxBerichtsoort    = 80
	MaxBestandsnaam    = 80
	MaxMimeType        = 255
	MaxIdentityNummer  = 35
	MaxIdentityType    = 20
	MaxRol             = 40
	MaxInhoud          = 20 << 20 // 20 MiB of content (before base64)
)

type fieldCheck struct {
	op       string
	problems []string
}

func (f *fieldCheck) text(name, v string, max int, required bool) {
	if v == "" {
		if required {
			f.problems = append(f.problems, name+" is empty but required")
		}
		return
	}
	if n := utf8.RuneCountInString(v); n > max {
		f.problems = append(f.problems, fmt.Sprintf("%s is %d characters; Digipoort accepts at most %d", name, n, max))
	}
	if !validXMLText(v) {
		f.problems = append(f.problems, name+" contains characters that cannot be sent in XML")
	}
}

func (f *fieldCheck) identity(name string, id Identity) {
	f.text(name+".nummer", id.Nummer, MaxIdentityNummer, true)
	f.text(name+".type", id.Type, MaxIdentityType, true)
}

func (f *fieldCheck) err() error {
	if len(f.problems) == 0 {
		return nil
	}
	return &Error{Op: f.op, Kind: Final,
		Msg: "request violates Digipoort's field limits (" + strings.Join(f.problems, "; ") + "); correct the message before sending"}
}

func validXMLText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r < 0x20, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			return false
		}
	}
	return true
}

func (r DeliverRequest) validate() error {
	f := &fieldCheck{op: opDeliver}
	f.text("berichtsoort", r.Berichtsoort, MaxBerichtsoort, true)
	f.text("aanleverkenmerk", r.Aanleverkenmerk, MaxAanleverkenmerk, false)
	f.identity("identiteitBelanghebbende", r.Belanghebbende)
	f.text("rolBelanghebbende", r.Rol, MaxRol, true)
	if r.Ontvanger != nil {
		f.identity("identiteitOntvanger", *r.Ontvanger)
	}
	f.text("mimeType", r.MimeType, MaxMimeType, true)
	f.text("bestandsnaam", r.Bestandsnaam, MaxBestandsnaam, true)
	switch {
	case len(r.Inhoud) == 0:
		f.problems = append(f.problems, "inhoud is empty")
	case len(r.Inhoud) > MaxInhoud:
		f.problems = append(f.problems, fmt.Sprintf("inhoud is %d bytes; Digipoort accepts at most %d (20 MiB)", len(r.Inhoud), MaxInhoud))
	}
	for i, b := range r.Bijlagen {
		name := fmt.Sprintf("bijlage %d", i+1)
		f.text(name+".mimeType", b.MimeType, MaxMimeType, true)
		f.text(name+".bestandsnaam", b.Bestandsnaam, MaxBestandsnaam, true)
		switch {
		case len(b.Inhoud) == 0:
			f.problems = append(f.problems, name+".inhoud is empty")
		case len(b.Inhoud) > MaxInhoud:
			f.problems = append(f.problems, fmt.Sprintf("%s.inhoud is %d bytes; Digipoort accepts at most %d (20 MiB)", name, len(b.Inhoud), MaxInhoud))
		}
	}
	return f.err()
}
