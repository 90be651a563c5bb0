package domain

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits set by Digipoort's koppelvlak (XSD) and by Koerier.
const (
	MaxAttachmentSize  = 20 << 20 // 20 MiB, Digipoort's limit on berichtInhoud
	MaxBerichtsoortLen = 80
	MaxKenmerkLen      = 40
	MaxFileNameLen     = 80
	MaxSubjectLen      = 35 // identiteitBelanghebbende/nummer
	MaxPeriodLen       = 32
	MaxClientRefLen    = 200
	MaxMemoLen         = 4000
)

// MinRetention is the age floor of clean-up: nothing younger is ever removed.
const MinRetention = 30 * 24 * time.Hour

// ReceiveLookBack is how far back each receive asks Digipoort for replies, rule 7
// (docs/rules.md).
const ReceiveLookBack = 30 * 24 * time.Hour

// LockDuration is how long a send/receive run holds its lock; a run that dies frees
// it by itself after this time (rule 6).
const LockDuration = 30 * time.Minute

// Declaration identifies what is declared; queuing the same one again makes a new
// version.
type Declaration struct {
	Environment string
	Type        MessageType
	Subject     string // who the declaration is about: fiscal number, loonheffingennummer, KvK number
	Period      string // e.g. 2026-10, 2026-Q3, 2026
}

// Key is the stable text that names a declaration across its versions.
func (d Declaration) Key() string {
	return strings.Join([]string{d.Environment, string(d.Type), d.Subject, d.Period}, "/")
}

// Validate checks the declaration's fields before anything is stored.
func (d Declaration) Validate() error {
	var errs []error
	// The key joins the fields with slashes: none may contain one.
	errs = append(errs, checkText("environment", d.Environment, 63)...)
	errs = append(errs, checkText("message type", string(d.Type), 32)...)
	errs = append(errs, checkText("subject", d.Subject, MaxSubjectLen)...)
	errs = append(errs, checkText("period", d.Period, MaxPeriodLen)...)
	return errors.Join(errs...)
}

func checkText(field, v string, max int) []error {
	switch {
	case strings.TrimSpace(v) == "":
		return []error{fmt.Errorf("%s is empty", field)}
	case !utf8.ValidString(v):
		return []error{fmt.Errorf("%s is not valid UTF-8", field)}
	case utf8.RuneCountInString(v) > max:
		return []error{fmt.Errorf("%s %q is %d characters, at most %d allowed", field, truncate(v, 40), utf8.RuneCountInString(v), max)}
	case strings.ContainsAny(v, "/\r\n\t"):
		return []error{fmt.Errorf("%s %q contains a slash or a control character", field, truncate(v, 40))}
	}
	return nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// Attachment is one file of a message.
type Attachment struct {
	FileName string
	MimeType string
	Content  []byte
}

// IsXML reports whether the attachment claims to be XML (XBRL, UBL, …).
func (a Attachment) IsXML() bool {
	m := strings.ToLower(a.MimeType)
	return strings.HasSuffix(m, "/xml") || strings.HasSuffix(m, "+xml")
}

// Validate refuses what Digipoort would refuse, before it is stored: an empty file, a
// file over 20 MiB, a name Digipoort can't carry, and XML that is not well-formed.
func (a Attachment) Validate() error {
	name := a.FileName
	if name == "" {
		name = "(unnamed)"
	}
	switch {
	case a.FileName == "":
		return errors.New("attachment has no file name")
	case !utf8.ValidString(a.FileName) || utf8.RuneCountInString(a.FileName) > MaxFileNameLen:
		return fmt.Errorf("attachment %q: the file name must be valid UTF-8 of at most %d characters", truncate(name, 40), MaxFileNameLen)
	case a.MimeType == "":
		return fmt.Errorf("attachment %s has no mime type", name)
	case len(a.Content) == 0:
		return fmt.Errorf("attachment %s is empty: queue the file with its content", name)
	case len(a.Content) > MaxAttachmentSize:
		return fmt.Errorf("attachment %s is %d bytes, over Digipoort's limit of %d bytes (20 MiB)", name, len(a.Content), MaxAttachmentSize)
	}
	if a.IsXML() {
		if err := WellFormedXML(a.Content); err != nil {
			return fmt.Errorf("attachment %s is not well-formed XML: %w", name, err)
		}
	}
	return nil
}

// WellFormedXML checks that content is one well-formed UTF-8 XML document.
func WellFormedXML(content []byte) error {
	if !utf8.Valid(content) {
		return errors.New("the file is not valid UTF-8")
	}
	dec := xml.NewDecoder(bytes.NewReader(content))
	dec.Strict = true
	depth, roots := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			line, _ := dec.InputPos()
			return fmt.Errorf("line %d: %w", line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return errors.New("text outside the root element")
			}
		}
	}
	switch {
	case roots == 0:
		return errors.New("no root element")
	case roots > 1:
		return errors.New("more than one root element")
	case depth != 0:
		return errors.New("the document ends before its root element is closed")
	}
	return nil
}

// Version is one queued version of a declaration as the rules need to see it.
type Version struct {
	Number    int64
	Version   int
	Status    Status
	DoNotSend bool
}

// MaySend says whether this version may go to Digipoort now (rule 3): only the latest
// version, never one marked do-not-send, and only when it is due.
func MaySend(v Version, latest int) error {
	switch {
	case v.DoNotSend:
		return fmt.Errorf("message %d is version %d and marked do-not-send: version %d of the declaration was queued before it was sent", v.Number, v.Version, latest)
	case v.Version < latest:
		return fmt.Errorf("message %d is version %d, but version %d exists: only the latest version may be sent", v.Number, v.Version, latest)
	case !v.Status.IsDue():
		return fmt.Errorf("message %d is %s, not due to send (only %s or %s messages are sent)", v.Number, v.Status, StatusQueued, StatusReadyToResend)
	}
	return nil
}

// MayRestore says whether an operator may put this version back to "ready to resend
// after error" (rule 3): only a failed message, and only the latest version.
func MayRestore(v Version, latest int) error {
	switch {
	case v.Version < latest:
		return fmt.Errorf("message %d is version %d of its declaration and version %d exists: restore the latest version instead", v.Number, v.Version, latest)
	case v.DoNotSend:
		return fmt.Errorf("message %d is marked do-not-send: a newer version replaced it", v.Number)
	case !v.Status.IsFailure():
		return fmt.Errorf("message %d is %s: only a message that failed (%s, %s, %s) can be restored",
			v.Number, v.Status, StatusSendFailed, StatusRejected, StatusFailed)
	}
	return nil
}

// DefaultAanleverkenmerkPrefix names a Koerier installation in its aanleverkenmerken
// when KOERIER_AANLEVERKENMERK_PREFIX does not: another system delivering with the same
// certificate (and numbering its own deliveries from 1000001 too) then cannot have its
// replies linked to Koerier's messages. Two Koerier installations on one certificate
// each set their own.
const DefaultAanleverkenmerkPrefix = "KOERIER"

// MaxAanleverkenmerkPrefix leaves room in Digipoort's 40 characters for a message
// number and an attempt.
const MaxAanleverkenmerkPrefix = 12

var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9]+$`)

// ValidateAanleverkenmerkPrefix accepts 1 to 12 letters and digits. It must never
// change while deliveries are open: their replies are linked by it.
func ValidateAanleverkenmerkPrefix(prefix string) error {
	if !prefixPattern.MatchString(prefix) || len(prefix) > MaxAanleverkenmerkPrefix {
		return fmt.Errorf("aanleverkenmerk prefix %q: use 1 to %d letters and digits that name this installation (and keep them)",
			prefix, MaxAanleverkenmerkPrefix)
	}
	return nil
}

// Aanleverkenmerk is the reference Koerier gives Digipoort for a delivery: the
// installation's prefix and the message number, so that a retried delivery is
// recognised and another system's deliveries are not. A deliberate resend after
// restore is a new attempt with its own reference, so that its replies are not
// mistaken for the failed attempt's.
func Aanleverkenmerk(prefix string, number int64, attempt int) string {
	if attempt <= 1 {
		return fmt.Sprintf("%s-%d", prefix, number)
	}
	return fmt.Sprintf("%s-%d-%d", prefix, number, attempt)
}

// ParseAanleverkenmerk is the inverse of Aanleverkenmerk for this installation's
// prefix; another prefix is not Koerier's (ok false).
func ParseAanleverkenmerk(prefix, ref string) (number int64, attempt int, ok bool) {
	rest, found := strings.CutPrefix(ref, prefix+"-")
	if !found || prefix == "" {
		return 0, 0, false
	}
	numText, attText, hasAttempt := strings.Cut(rest, "-")
	if _, err := fmt.Sscanf(numText, "%d", &number); err != nil || number <= 0 || fmt.Sprint(number) != numText {
		return 0, 0, false
	}
	attempt = 1
	if hasAttempt {
		if _, err := fmt.Sscanf(attText, "%d", &attempt); err != nil || attempt < 2 || fmt.Sprint(attempt) != attText {
			return 0, 0, false
		}
	}
	return number, attempt, true
}

// DeliveryTrouble starts the reason of a needs-action that a delivery raised (no
// known outcome, a deadline that may pass): a later delivery resolves it.
const DeliveryTrouble = "delivery: "

// DeliveryCandidate is a process Digipoort has for a message's berichtsoort and
// subject that no delivery of Koerier's claims, and that started after the message's
// delivery whose answer was lost.
type DeliveryCandidate struct {
	Kenmerk string
	Started time.Time
	// Aanleverkenmerk, when a picked-up message of the process carries one.
	Aanleverkenmerk string
}

// ChooseDelivery decides which candidate is the delivery with this aanleverkenmerk
// whose answer was lost (rule 11): the one whose pickup carries the aanleverkenmerk,
// else the only candidate there is. Otherwise (none, or several) it cannot decide:
// delivering again could file the return twice, adopting the wrong one could link
// another filing's replies, so an operator decides.
func ChooseDelivery(aanleverkenmerk string, cands []DeliveryCandidate) (kenmerk, why string, ok bool) {
	for _, c := range cands {
		if c.Aanleverkenmerk == aanleverkenmerk {
			return c.Kenmerk, fmt.Sprintf("a message of process %s carries aanleverkenmerk %s", c.Kenmerk, aanleverkenmerk), true
		}
	}
	if len(cands) == 1 && cands[0].Aanleverkenmerk == "" {
		return cands[0].Kenmerk, fmt.Sprintf("process %s (started %s) is the only process of this berichtsoort and belanghebbende "+
			"since the delivery that Koerier does not know", cands[0].Kenmerk, cands[0].Started.UTC().Format(time.RFC3339)), true
	}
	return "", "", false
}
