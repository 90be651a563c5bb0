package domain

import (
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
)

// TypeSpec describes one message type.
type TypeSpec struct {
	Type    MessageType
	Channel Channel
	// Berichtsoort is Digipoort's name for the process; empty until configured for
	// types whose name Logius has not confirmed.
	Berichtsoort string
	// IdentityType is the kind of number the subject (belanghebbende) is.
	IdentityType string
	// Fiscal messages may be cleaned up in fiscal mode, which skips the status check.
	Fiscal      bool
	Description string
}

// Catalog is the set of message types this installation knows.
type Catalog struct{ specs map[MessageType]TypeSpec }

// DefaultCatalog holds the types with the berichtsoort names that are confirmed
// (NOTES.md). Income tax, corporate tax and KvK names must come from configuration.
func DefaultCatalog() Catalog {
	specs := []TypeSpec{
		{TypeVAT, ChannelDigipoort, "Omzetbelasting", "Fi", true, "aangifte omzetbelasting"},
		{TypeVATFix, ChannelDigipoort, "OBSUP", "Fi", true, "suppletie omzetbelasting"},
		{TypeICP, ChannelDigipoort, "ICP", "Fi", true, "opgaaf intracommunautaire prestaties"},
		{TypeIncomeTax, ChannelDigipoort, "", "Fi", true, "aangifte inkomstenbelasting"},
		{TypeCorpTax, ChannelDigipoort, "", "Fi", true, "aangifte vennootschapsbelasting"},
		{TypePayroll, ChannelDigipoort, "Aangifte_LH", "LHnr", true, "aangifte loonheffingen"},
		{TypeKvK, ChannelDigipoort, "", "kvk", false, "deponering jaarverantwoording KvK"},
		{TypeEInvoice, ChannelEmail, "", "", false, "UBL e-factuur per e-mail"},
	}
	c := Catalog{specs: make(map[MessageType]TypeSpec, len(specs))}
	for _, s := range specs {
		c.specs[s.Type] = s
	}
	return c
}

// WithBerichtsoorten reads "ib=IB_2025,vpb=VPB_2025,kvk=KvK-Jaarverantwoording" and
// returns a catalog with those names set; a name for an unknown type is an error.
func (c Catalog) WithBerichtsoorten(config string) (Catalog, error) {
	out := Catalog{specs: make(map[MessageType]TypeSpec, len(c.specs))}
	for k, v := range c.specs {
		out.specs[k] = v
	}
	for _, pair := range strings.Split(config, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		typ, name, ok := strings.Cut(pair, "=")
		typ, name = strings.TrimSpace(typ), strings.TrimSpace(name)
		if !ok || typ == "" || name == "" {
			return Catalog{}, fmt.Errorf("berichtsoort setting %q: want type=berichtsoort, e.g. ib=IB_2025", pair)
		}
		spec, ok := out.specs[MessageType(typ)]
		if !ok {
			return Catalog{}, fmt.Errorf("berichtsoort setting %q: unknown message type %q (known: %s)", pair, typ, strings.Join(out.typeNames(), ", "))
		}
		if spec.Channel != ChannelDigipoort {
			return Catalog{}, fmt.Errorf("berichtsoort setting %q: %s is not sent through Digipoort", pair, typ)
		}
		if len(name) > MaxBerichtsoortLen {
			return Catalog{}, fmt.Errorf("berichtsoort setting %q: the name is longer than Digipoort's %d characters", pair, MaxBerichtsoortLen)
		}
		spec.Berichtsoort = name
		out.specs[spec.Type] = spec
	}
	return out, nil
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
		// e-invoices go out (and come in) through the environment's own e-mail profile.
		if !profile.HasEmail() {
			return fmt.Errorf("message type %s is sent by e-mail from the environment, not by the service, "+
				"and this environment has no e-mail profile: give it one (sender address and SMTP server) and send from there", s.Type)
		}
		return fmt.Errorf("message type %s is sent by e-mail from the environment's own e-mail profile (%s), not queued at the service", s.Type, profile.EmailFrom)
	}
	return nil
}

// Profile is an environment's communication profile.
type Profile struct {
	AutoSend    bool
	AutoProcess bool
	EmailFrom   string
	SMTPAddress string
}

// HasEmail reports whether the environment can send e-mail itself.
func (p Profile) HasEmail() bool { return p.EmailFrom != "" && p.SMTPAddress != "" }
