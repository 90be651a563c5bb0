package domain

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// MessageType is what an environment queues: a VAT return, a payroll return, …
type MessageType string

const (
	TypeVAT        MessageType = "btw"          // omzetbelasting
	TypeVATFix     MessageType = "obsup"        // suppletie omzetbelasting
	TypeICP        MessageType = "icp"          // opgaaf intracommunautaire prestaties
	TypeIncomeTax  MessageType = "ib"           // inkomstenbelasting
	TypeCorpTax    MessageType = "vpb"          // vennootschapsbelasting
	TypePayroll    MessageType = "loonaangifte" // loonheffingen
	TypeKvK        MessageType = "kvk"          // deponering bij de KvK
	TypeEInvoice   MessageType = "einvoice"     // UBL e-factuur per e-mail
	TypePayment    MessageType = "payment"      // SEPA-betaalopdracht (pain.001) aan de bank
	TypeUnknownONB MessageType = "onb"          // an incoming reply that links to nothing
)

// SubtypeONB marks an unknown reply (onbekend bericht).
const SubtypeONB = "ONB"

// Channel is the way a message leaves Koerier.
type Channel string

const (
	ChannelDigipoort Channel = "digipoort"
	// ChannelEmail is for UBL e-invoices, which go out and come in through the
	// environment that has the e-mail profile, not through the service.
	ChannelEmail Channel = "email"
	// ChannelBank is for SEPA payment orders, delivered to the environment's own bank
	// host-to-host over SFTP, as set in its bank profile.
	ChannelBank Channel = "bank"
)

// TypeSpec describes one message type.
type TypeSpec struct {
	Type    MessageType
	Channel Channel
	// Berichtsoort is Digipoort's name for the process; empty until configured for
	// types whose name Logius has not confirmed.
	Berichtsoort string
	// IdentityType is the type of identiteitBelanghebbende the type is sent with
	// (KOERIER_IDENTITY_TYPES); store.Queue keeps it with each message.
	IdentityType string
	// Subject is what the subject (belanghebbende) of the type is: its form, and how it
	// becomes the identity number (SubjectKind.NumberRule).
	Subject SubjectKind
	// Document is what the first file (the declaration) must be.
	Document DocumentKind
	// Attachments is set when the type's Digipoort process takes further files
	// (berichtBijlagen); KOERIER_BIJLAGEN. None do unless known: "Further files" in
	// docs/rules.md.
	Attachments bool
	// Fiscal messages may be cleaned up in fiscal mode, which skips the status check.
	Fiscal      bool
	Description string
}

// Catalog is the set of message types this installation knows.
type Catalog struct{ specs map[MessageType]TypeSpec }

// DefaultCatalog holds the types with the berichtsoort names that are confirmed (NOTES.md).
// Income tax, corporate tax and KvK names must come from configuration. VAT types default to
// identity type BTW, as production clients send them ("Identity of the belanghebbende" in
// docs/rules.md).
func DefaultCatalog() Catalog {
	specs := []TypeSpec{
		{Type: TypeVAT, Channel: ChannelDigipoort, Berichtsoort: "Omzetbelasting", IdentityType: IdentityBTW, Subject: SubjectVATNumber,
			Document: DocumentXBRL, Fiscal: true, Description: "aangifte omzetbelasting"},
		{Type: TypeVATFix, Channel: ChannelDigipoort, Berichtsoort: "OBSUP", IdentityType: IdentityBTW, Subject: SubjectVATNumber,
			Document: DocumentXBRL, Fiscal: true, Description: "suppletie omzetbelasting"},
		{Type: TypeICP, Channel: ChannelDigipoort, Berichtsoort: "ICP", IdentityType: IdentityBTW, Subject: SubjectVATNumber,
			Document: DocumentXBRL, Fiscal: true, Description: "opgaaf intracommunautaire prestaties"},
		{Type: TypeIncomeTax, Channel: ChannelDigipoort, IdentityType: IdentityFi, Subject: SubjectBSN,
			Document: DocumentXBRL, Fiscal: true, Description: "aangifte inkomstenbelasting"},
		{Type: TypeCorpTax, Channel: ChannelDigipoort, IdentityType: IdentityFi, Subject: SubjectRSIN,
			Document: DocumentXBRL, Fiscal: true, Description: "aangifte vennootschapsbelasting"},
		{Type: TypePayroll, Channel: ChannelDigipoort, Berichtsoort: "Aangifte_LH", IdentityType: IdentityLHnr, Subject: SubjectLHNumber,
			Document: DocumentXML, Fiscal: true, Description: "aangifte loonheffingen"},
		{Type: TypeKvK, Channel: ChannelDigipoort, IdentityType: IdentityKvK, Subject: SubjectKvKNumber,
			Document: DocumentXBRL, Description: "deponering jaarverantwoording KvK"},
		{Type: TypeEInvoice, Channel: ChannelEmail, Subject: SubjectText, Document: DocumentXML, Description: "UBL e-factuur per e-mail"},
		{Type: TypePayment, Channel: ChannelBank, Subject: SubjectText, Document: DocumentXML, Description: "SEPA-betaalopdracht (pain.001)"},
	}
	c := Catalog{specs: make(map[MessageType]TypeSpec, len(specs))}
	for _, s := range specs {
		c.specs[s.Type] = s
	}
	return c
}

// with returns a copy of the catalog with set applied to each type=value pair of a
// setting such as "ib=IB_2025,vpb=VPB_2025"; a pair for an unknown type, or for a type
// not sent through Digipoort, is an error.
func (c Catalog) with(setting, config, example string, set func(spec *TypeSpec, value string) error) (Catalog, error) {
	out := Catalog{specs: make(map[MessageType]TypeSpec, len(c.specs))}
	for k, v := range c.specs {
		out.specs[k] = v
	}
	for _, pair := range strings.Split(config, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		typ, value, ok := strings.Cut(pair, "=")
		typ, value = strings.TrimSpace(typ), strings.TrimSpace(value)
		if !ok || typ == "" || value == "" {
			return Catalog{}, fmt.Errorf("%s setting %q: want type=%s, e.g. %s", setting, pair, setting, example)
		}
		spec, ok := out.specs[MessageType(typ)]
		if !ok {
			return Catalog{}, fmt.Errorf("%s setting %q: unknown message type %q (known: %s)", setting, pair, typ, strings.Join(out.typeNames(), ", "))
		}
		if spec.Channel != ChannelDigipoort {
			return Catalog{}, fmt.Errorf("%s setting %q: %s is not sent through Digipoort", setting, pair, typ)
		}
		if err := set(&spec, value); err != nil {
			return Catalog{}, fmt.Errorf("%s setting %q: %w", setting, pair, err)
		}
		out.specs[spec.Type] = spec
	}
	return out, nil
}

// WithBerichtsoorten reads "ib=IB_2025,vpb=VPB_2025,kvk=KvK-Jaarverantwoording" and
// returns a catalog with those names set; a name for an unknown type is an error.
func (c Catalog) WithBerichtsoorten(config string) (Catalog, error) {
	return c.with("berichtsoort", config, "ib=IB_2025", func(spec *TypeSpec, name string) error {
		if len(name) > MaxBerichtsoortLen {
			return fmt.Errorf("the name is longer than Digipoort's %d characters", MaxBerichtsoortLen)
		}
		spec.Berichtsoort = name
		return nil
	})
}

// WithIdentityTypes reads "btw=Fi,icp=Fi" and returns a catalog with those identity
// types set. An identity type that cannot name the type's subject (BTW for income
// tax, whose subject is a BSN) is an error that lists the ones that can.
func (c Catalog) WithIdentityTypes(config string) (Catalog, error) {
	return c.with("identity type", config, "btw=Fi", func(spec *TypeSpec, value string) error {
		t := canonicalIdentityType(value)
		if _, ok := spec.Subject.NumberRule(t); t == "" || !ok {
			return fmt.Errorf("%s messages are about %s, which identity type %q cannot name: use %s",
				spec.Type, spec.Subject.Expected(), value, strings.Join(spec.Subject.IdentityTypes(), " or "))
		}
		spec.IdentityType = t
		return nil
	})
}

// WithAttachments reads "vpb=yes,ib=no" and returns a catalog in which those types do
// or do not take further files (berichtBijlagen).
func (c Catalog) WithAttachments(config string) (Catalog, error) {
	return c.with("attachments", config, "vpb=yes", func(spec *TypeSpec, value string) error {
		switch strings.ToLower(value) {
		case "yes", "true":
			spec.Attachments = true
		case "no", "false":
			spec.Attachments = false
		default:
			return fmt.Errorf("%q: use yes or no", value)
		}
		return nil
	})
}

// Lookup returns the spec of a type, with an error that lists the known types.
func (c Catalog) Lookup(t MessageType) (TypeSpec, error) {
	spec, ok := c.specs[t]
	if !ok {
		return TypeSpec{}, fmt.Errorf("unknown message type %q (known: %s)", t, strings.Join(c.typeNames(), ", "))
	}
	return spec, nil
}

// Types lists the known types in a stable order.
func (c Catalog) Types() []TypeSpec {
	out := make([]TypeSpec, 0, len(c.specs))
	for _, s := range c.specs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

func (c Catalog) typeNames() []string {
	names := make([]string, 0, len(c.specs))
	for t := range c.specs {
		names = append(names, string(t))
	}
	sort.Strings(names)
	return names
}

// ReadyToQueue says whether a message of this type can be queued for an environment
// with the given profile, and if not, what to do about it.
func (s TypeSpec) ReadyToQueue(profile Profile) error {
	switch s.Channel {
	case ChannelDigipoort:
		if s.Berichtsoort == "" {
			return fmt.Errorf("message type %s has no Digipoort berichtsoort configured: set KOERIER_BERICHTSOORTEN=%s=<name Logius gave you>", s.Type, s.Type)
		}
	case ChannelEmail:
		// Rule 2 (docs/rules.md): the service sends nothing but Digipoort traffic;
		// e-invoices go out (and come in) through the environment's own e-mail profile,
		// so an environment without one has nothing to send them from.
		if !profile.HasEmail() {
			name := profile.Environment
			if name == "" {
				name = "NAME"
			}
			return fmt.Errorf("message type %s is sent by e-mail from the environment's own e-mail profile, and environment %s has none: "+
				"give it one with `starter environments set %s --email-from ADDRESS --smtp HOST:PORT …`, or on the local development "+
				"mail server with `starter environments set %s --local-mail`", s.Type, name, name, name)
		}
	case ChannelBank:
		// A payment order goes to the environment's own bank under the environment's
		// contract; without a bank profile there is no bank to deliver it to.
		if !profile.HasBank {
			name := profile.Environment
			if name == "" {
				name = "NAME"
			}
			return fmt.Errorf("message type %s is delivered to the environment's own bank over SFTP, and environment %s has no bank profile: "+
				"give it one with `starter environments set %s --sftp HOST:PORT …`, or on the local bank simulator with "+
				"`starter environments set %s --local-bank`", s.Type, name, name, name)
		}
	}
	return nil
}

// Profile is an environment's communication profile.
type Profile struct {
	// Environment names the environment, for advice that says what to run.
	Environment string
	AutoSend    bool
	AutoProcess bool
	// EmailFrom is the sender address of the environment's e-mail profile; empty when
	// it has none.
	EmailFrom string
	// HasBank is set when the environment has a bank profile (SFTP host-to-host), which
	// payment orders are delivered through.
	HasBank bool
}

// HasEmail reports whether the environment can send e-mail itself.
func (p Profile) HasEmail() bool { return p.EmailFrom != "" }

// NormalizeSubject is a subject of this type in its stored form ("One form for subject and
// period" in docs/rules.md), or an error that says what form the type's identity type expects.
func (s TypeSpec) NormalizeSubject(raw string) (string, error) {
	text, err := NormalizeText("subject", raw)
	if err != nil {
		return "", err
	}
	out, why := s.Subject.canonical(text)
	if why != "" {
		return "", fmt.Errorf("subject %q %s: %s messages are sent with identity type %s, which needs %s",
			truncate(raw, 40), why, s.Type, s.IdentityType, s.Subject.Expected())
	}
	return out, nil
}

// Identity is the identiteitBelanghebbende (nummer and type) a message of this type
// about subject is sent with.
func (s TypeSpec) Identity(subject string) (nummer, identityType string, err error) {
	subject, err = s.NormalizeSubject(subject)
	if err != nil {
		return "", "", err
	}
	return IdentityNumber(s.IdentityType, subject), s.IdentityType, nil
}

// HowNumber says how a subject of this type becomes the identity number.
func (s TypeSpec) HowNumber() string {
	if how, ok := s.Subject.NumberRule(s.IdentityType); ok {
		return how
	}
	return "not sent through Digipoort"
}

// CheckFiles checks the files of a message of this type before it is stored: the first is the
// declaration the type expects ("One form for subject and period" in docs/rules.md), and
// further files are sent as berichtBijlagen only where the process takes them — never dropped
// ("Further files" in docs/rules.md).
func (s TypeSpec) CheckFiles(files []Attachment) error {
	if len(files) == 0 {
		return errors.New("a message needs at least one file (the declaration itself)")
	}
	var errs []error
	if err := CheckDocument(s.Document, s.Type, files[0]); err != nil {
		errs = append(errs, err)
	}
	if len(files) > 1 && !s.Attachments {
		names := make([]string, 0, len(files)-1)
		for _, f := range files[1:] {
			names = append(names, f.FileName)
		}
		errs = append(errs, fmt.Errorf("%s messages take one file, the declaration, and %d more were given (%s): Digipoort's process %s is not "+
			"known to take attachments (berichtBijlagen), and Koerier never drops a file. Queue the declaration alone, or, if Logius "+
			"confirmed that this process takes attachments, set KOERIER_BIJLAGEN=%s=yes",
			s.Type, len(files)-1, strings.Join(names, ", "), orNone(s.Berichtsoort), s.Type))
	}
	return errors.Join(errs...)
}
