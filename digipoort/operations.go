package digipoort

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/beevik/etree"

	"koerier/digipoort/internal/wire"
)

func toWire(id Identity) wire.Identiteit { return wire.Identiteit{Nummer: id.Nummer, Type: id.Type} }
func fromWire(id wire.Identiteit) Identity {
	return Identity{Nummer: id.Nummer, Type: id.Type}
}

// Deliver sends a message (AanleverService.aanleveren) and returns Digipoort's
// process kenmerk. Field limits are checked before anything is sent. A response that
// carries a statusFoutcode is returned as an *Error. When Deliver fails transiently
// the delivery may nevertheless have arrived: use FindDelivery before delivering the
// same aanleverkenmerk again.
func (c *Client) Deliver(ctx context.Context, r DeliverRequest) (DeliverResponse, error) {
	if err := r.validate(); err != nil {
		return DeliverResponse{}, err
	}
	req := wire.AanleverRequest{
		Berichtsoort:             r.Berichtsoort,
		Aanleverkenmerk:          r.Aanleverkenmerk,
		IdentiteitBelanghebbende: toWire(r.Belanghebbende),
		RolBelanghebbende:        r.Rol,
		BerichtInhoud: wire.BerichtInhoud{
			MimeType:     r.MimeType,
			Bestandsnaam: r.Bestandsnaam,
			Inhoud:       base64.StdEncoding.EncodeToString(r.Inhoud),
		},
		AutorisatieAdres: c.cfg.AutorisatieAdres,
	}
	if len(r.Bijlagen) > 0 {
		req.BerichtBijlagen = &wire.Bijlagen{}
		for _, b := range r.Bijlagen {
			req.BerichtBijlagen.Bijlage = append(req.BerichtBijlagen.Bijlage, wire.BerichtInhoud{
				MimeType: b.MimeType, Bestandsnaam: b.Bestandsnaam, Inhoud: base64.StdEncoding.EncodeToString(b.Inhoud)})
		}
	}
	if r.Ontvanger != nil {
		o := toWire(*r.Ontvanger)
		req.IdentiteitOntvanger = &o
	}
	var resp wire.AanleverResponse
	if err := c.call(ctx, wire.OpAanleveren, &req, &resp); err != nil {
		return DeliverResponse{}, err
	}
	return deliverResponse(r, resp)
}

func deliverResponse(r DeliverRequest, resp wire.AanleverResponse) (DeliverResponse, error) {
	out := DeliverResponse{
		Kenmerk:           resp.Kenmerk,
		Berichtsoort:      resp.Berichtsoort,
		Aanleverkenmerk:   resp.Aanleverkenmerk,
		Aangeleverd:       resp.TijdstempelAangeleverd.Time,
		Belanghebbende:    fromWire(resp.IdentiteitBelanghebbende),
		Rol:               resp.RolBelanghebbende,
		AutorisatieAdres:  resp.AutorisatieAdres,
		Statuscode:        resp.Statuscode,
		StatusDescription: resp.Statusomschrijving,
	}
	if resp.IdentiteitOntvanger != nil {
		o := fromWire(*resp.IdentiteitOntvanger)
		out.Ontvanger = &o
	}
	if resp.TijdstempelStatus != nil {
		out.StatusTime = resp.TijdstempelStatus.Time
	}
	if resp.StatusFoutcode != nil && resp.StatusFoutcode.Foutcode != "" {
		kind, msg := ClassifyFoutcode(resp.StatusFoutcode.Foutcode, resp.StatusFoutcode.Foutbeschrijving)
		return out, &Error{Op: opDeliver, Kind: kind, Foutcode: resp.StatusFoutcode.Foutcode,
			Foutbeschrijving: resp.StatusFoutcode.Foutbeschrijving, Statuscode: resp.Statuscode, Msg: msg}
	}
	if out.Statuscode == "210" {
		return out, status210Error(opDeliver, Status{Kenmerk: out.Kenmerk, Code: out.Statuscode})
	}
	if out.Kenmerk == "" || len(out.Kenmerk) > MaxKenmerk {
		return out, &Error{Op: opDeliver, Kind: Final, Msg: fmt.Sprintf("Digipoort returned an unusable kenmerk %q", out.Kenmerk)}
	}
	if r.Aanleverkenmerk != "" && out.Aanleverkenmerk != "" && out.Aanleverkenmerk != r.Aanleverkenmerk {
		return out, &Error{Op: opDeliver, Kind: Final,
			Msg: fmt.Sprintf("Digipoort answered for aanleverkenmerk %q, not for %q", out.Aanleverkenmerk, r.Aanleverkenmerk)}
	}
	return out, nil
}

// Statuses returns every status of one delivery process (getStatussenProces) in
// Digipoort's order. Zero from/to are omitted; otherwise Digipoort returns only the
// statuses with a time inside [from, to]. When a status is 210 (authenticatie niet
// gelukt) the statuses are returned together with a Final *Error that says to check
// the client certificate.
func (c *Client) Statuses(ctx context.Context, kenmerk string, from, to time.Time) ([]Status, error) {
	return c.statuses(ctx, wire.OpGetStatussenProces, kenmerk, from, to)
}

// NewStatuses returns the statuses not fetched before with this certificate
// (getNieuweStatussenProces). A status fetched and then lost is gone for this call;
// prefer Statuses with a moving window. 210 is reported as in Statuses.
func (c *Client) NewStatuses(ctx context.Context, kenmerk string) ([]Status, error) {
	return c.statuses(ctx, wire.OpGetNieuweStatussenProces, kenmerk, time.Time{}, time.Time{})
}

func (c *Client) statuses(ctx context.Context, op, kenmerk string, from, to time.Time) ([]Status, error) {
	f := &fieldCheck{op: op}
	f.text("kenmerk", kenmerk, MaxKenmerk, true)
	if err := f.err(); err != nil {
		return nil, err
	}
	req := wire.StatusWindowRequest{
		XMLName:          wire.Name(op + "Request"),
		Kenmerk:          kenmerk,
		AutorisatieAdres: c.cfg.AutorisatieAdres,
		TijdstempelVanaf: wire.TimePtr(from),
		TijdstempelTot:   wire.TimePtr(to),
	}
	var resp wire.StatusResponse
	if err := c.call(ctx, op, &req, &resp); err != nil {
		return nil, err
	}
	if resp.Return.XMLName.Local != op+"Return" {
		return nil, &Error{Op: op, Kind: Final, Msg: fmt.Sprintf("response lacks %sReturn", op)}
	}
	out := make([]Status, 0, len(resp.Return.Resultaat))
	var err error
	for _, r := range resp.Return.Resultaat {
		s := Status{
			Kenmerk: r.Kenmerk, Code: r.Statuscode, Time: r.TijdstempelStatus.Time,
			Description: r.Statusomschrijving, Details: r.Statusdetails,
			Belanghebbende: fromWire(r.IdentiteitBelanghebbende),
		}
		if r.StatusFoutcode != nil {
			s.ErrorCode, s.ErrorDescription = r.StatusFoutcode.Foutcode, r.StatusFoutcode.Foutbeschrijving
		}
		if s.Code == "210" && err == nil {
			err = status210Error(op, s)
		}
		out = append(out, s)
	}
	return out, err
}

// Berichtsoorten lists the message types Digipoort knows for an identity
// (getBerichtsoorten).
func (c *Client) Berichtsoorten(ctx context.Context, id Identity) ([]string, error) {
	f := &fieldCheck{op: wire.OpGetBerichtsoorten}
	f.identity("identiteitBelanghebbende", id)
	if err := f.err(); err != nil {
		return nil, err
	}
	req := wire.GetBerichtsoortenRequest{IdentiteitBelanghebbende: toWire(id), AutorisatieAdres: c.cfg.AutorisatieAdres}
	var resp wire.GetBerichtsoortenResponse
	if err := c.call(ctx, wire.OpGetBerichtsoorten, &req, &resp); err != nil {
		return nil, err
	}
	return resp.Return.Berichtsoort, nil
}

// Processen lists the kenmerken of the delivery processes of one berichtsoort and
// identity (getProcessen).
func (c *Client) Processen(ctx context.Context, berichtsoort string, id Identity) ([]string, error) {
	f := &fieldCheck{op: wire.OpGetProcessen}
	f.text("berichtsoort", berichtsoort, MaxBerichtsoort, true)
	f.identity("identiteitBelanghebbende", id)
	if err := f.err(); err != nil {
		return nil, err
	}
	req := wire.GetProcessenRequest{Berichtsoort: berichtsoort, IdentiteitBelanghebbende: toWire(id), AutorisatieAdres: c.cfg.AutorisatieAdres}
	var resp wire.GetProcessenResponse
	if err := c.call(ctx, wire.OpGetProcessen, &req, &resp); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(resp.Return.Resultaat))
	for _, p := range resp.Return.Resultaat {
		out = append(out, p.Kenmerk)
	}
	return out, nil
}

// BerichtenLijst lists the messages ready for pickup (getBerichtenLijst) with a time
// in [from, to]; zero times are omitted. Koerier looks back 30 days.
func (c *Client) BerichtenLijst(ctx context.Context, from, to time.Time) ([]BerichtRef, error) {
	req := wire.GetBerichtenLijstRequest{XMLName: wire.Name(wire.OpGetBerichtenLijst + "Request"), AutorisatieAdres: c.cfg.AutorisatieAdres,
		TijdstempelVanaf: wire.TimePtr(from), TijdstempelTot: wire.TimePtr(to)}
	var resp wire.GetBerichtenLijstResponse
	if err := c.call(ctx, wire.OpGetBerichtenLijst, &req, &resp); err != nil {
		return nil, err
	}
	out := make([]BerichtRef, 0, len(resp.Return.Resultaat))
	for _, r := range resp.Return.Resultaat {
		out = append(out, BerichtRef{Kenmerk: r.Kenmerk, Berichtsoort: r.Berichtsoort, Belanghebbende: fromWire(r.IdentiteitBelanghebbende)})
	}
	return out, nil
}

// BerichtenKenmerk picks up the messages of one process kenmerk
// (getBerichtenKenmerk) with a time in [from, to]; zero times are omitted.
func (c *Client) BerichtenKenmerk(ctx context.Context, kenmerk string, from, to time.Time) ([]Bericht, error) {
	op := wire.OpGetBerichtenKenmerk
	f := &fieldCheck{op: op}
	f.text("kenmerk", kenmerk, MaxKenmerk, true)
	if err := f.err(); err != nil {
		return nil, err
	}
	req := wire.GetBerichtenKenmerkRequest{XMLName: wire.Name(op + "Request"), Kenmerk: kenmerk, AutorisatieAdres: c.cfg.AutorisatieAdres,
		TijdstempelVanaf: wire.TimePtr(from), TijdstempelTot: wire.TimePtr(to)}
	return c.berichten(ctx, op, &req)
}

// Berichten picks up the messages for an identity (getBerichten), optionally of one
// berichtsoort ("" = all), with a time in [from, to]; zero times are omitted.
func (c *Client) Berichten(ctx context.Context, id Identity, berichtsoort string, from, to time.Time) ([]Bericht, error) {
	op := wire.OpGetBerichten
	f := &fieldCheck{op: op}
	f.identity("identiteitBelanghebbende", id)
	f.text("berichtsoort", berichtsoort, MaxBerichtsoort, false)
	if err := f.err(); err != nil {
		return nil, err
	}
	req := wire.GetBerichtenRequest{XMLName: wire.Name(op + "Request"), Berichtsoort: berichtsoort, IdentiteitBelanghebbende: toWire(id),
		AutorisatieAdres: c.cfg.AutorisatieAdres, TijdstempelVanaf: wire.TimePtr(from), TijdstempelTot: wire.TimePtr(to)}
	return c.berichten(ctx, op, &req)
}

// berichtenResponse is a pickup answer whose message contents are decoded from the
// verified envelope by takeContents, in document order, rather than by encoding/xml.
type berichtenResponse struct {
	wire.BerichtenResponse
	contents [][]byte
}

func (c *Client) berichten(ctx context.Context, op string, req any) ([]Bericht, error) {
	var resp berichtenResponse
	if err := c.call(ctx, op, req, &resp); err != nil {
		return nil, err
	}
	if resp.Return.XMLName.Local != op+"Return" {
		return nil, &Error{Op: op, Kind: Final, Msg: fmt.Sprintf("response lacks %sReturn", op)}
	}
	if len(resp.contents) != len(resp.Return.Resultaat) {
		return nil, &Error{Op: op, Kind: Final, Msg: fmt.Sprintf("response holds %d messages but %d contents", len(resp.Return.Resultaat), len(resp.contents))}
	}
	out := make([]Bericht, 0, len(resp.Return.Resultaat))
	for i, r := range resp.Return.Resultaat {
		out = append(out, Bericht{
			Kenmerk: r.Kenmerk, Berichtsoort: r.Berichtsoort, Berichtkenmerk: r.Berichtkenmerk,
			Aanleverkenmerk: r.Aanleverkenmerk, Aangeleverd: r.TijdstempelAangeleverd.Time,
			Belanghebbende: fromWire(r.IdentiteitBelanghebbende), Rol: r.RolBelanghebbende,
			MimeType: r.BerichtInhoud.MimeType, Bestandsnaam: r.BerichtInhoud.Bestandsnaam, Inhoud: resp.contents[i],
		})
	}
	return out, nil
}

// takeContents decodes the base64 inhoud of every BerichtResultaat in a pickup
// payload (matched by local name, as encoding/xml matches the wire struct) and empties
// it in the tree. A message without inhoud gets nil content.
func takeContents(payload *etree.Element) ([][]byte, error) {
	returns := payload.ChildElements()
	switch {
	case len(returns) == 0:
		return nil, nil // the caller reports the missing …Return
	case len(returns) > 1:
		return nil, fmt.Errorf("%s holds %d elements; want one …Return", payload.Tag, len(returns))
	}
	var out [][]byte
	for _, r := range returns[0].ChildElements() {
		if r.Tag != "BerichtResultaat" {
			continue
		}
		var inhoud *etree.Element
		if bi := onlyChildTagged(r, "berichtInhoud"); bi != nil {
			inhoud = onlyChildTagged(bi, "inhoud")
		}
		if inhoud == nil {
			out = append(out, nil)
			continue
		}
		var chunks []string
		for _, t := range inhoud.Child {
			switch t := t.(type) {
			case *etree.CharData:
				chunks = append(chunks, t.Data)
			case *etree.Element:
				return nil, fmt.Errorf("message %d: inhoud holds an element; want base64 text", len(out)+1)
			}
		}
		b, err := decodeBase64(chunks...)
		if err != nil {
			return nil, fmt.Errorf("message %d: inhoud is not base64: %w", len(out)+1, err)
		}
		inhoud.SetText("")
		out = append(out, b)
	}
	return out, nil
}

func onlyChildTagged(el *etree.Element, tag string) *etree.Element {
	var found *etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == tag {
			if found != nil {
				return nil
			}
			found = c
		}
	}
	return found
}

// decodeBase64 decodes base64 text that may be split into chunks and broken by white
// space (line breaks every 76 characters are common), into one buffer of the decoded
// size: no stripped copy of the text is made.
func decodeBase64(chunks ...string) ([]byte, error) {
	n := 0
	for _, s := range chunks {
		for i := 0; i < len(s); i++ {
			if !isSpace(s[i]) {
				n++
			}
		}
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(n))
	r := base64.NewDecoder(base64.StdEncoding, &spaceSkipper{chunks: chunks})
	got, err := io.ReadFull(r, out)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return out[:got:got], nil // padding: fewer bytes than DecodedLen
	case err != nil:
		return nil, err
	}
	var one [1]byte
	if k, err := r.Read(one[:]); k != 0 || !errors.Is(err, io.EOF) {
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("more data than the text holds")
		}
		return nil, err
	}
	return out, nil
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// spaceSkipper reads the chunks without their white space.
type spaceSkipper struct {
	chunks []string
	pos    int
}

func (s *spaceSkipper) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && len(s.chunks) > 0 {
		c := s.chunks[0]
		for s.pos < len(c) && n < len(p) {
			if b := c[s.pos]; !isSpace(b) {
				p[n] = b
				n++
			}
			s.pos++
		}
		if s.pos == len(c) {
			s.chunks, s.pos = s.chunks[1:], 0
		}
	}
	if n == 0 && len(s.chunks) == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Candidate is a delivery process Digipoort has for a berichtsoort and belanghebbende
// that the caller does not know as one of its own.
type Candidate struct {
	Kenmerk string
	// Started is the time of the process's first status (zero when none is shown).
	Started time.Time
	// Aanleverkenmerk is the one a picked-up message of the process carries, if any:
	// whether real Digipoort fills it is not confirmed, so its absence proves nothing.
	Aanleverkenmerk string
}

// DeliveryCandidates lists the processes that may be a delivery whose answer was
// lost: getProcessen(berichtsoort, identity) — which carries no aanleverkenmerk — gives
// the kenmerken; for each one known does not claim (nil known: none is known) that
// started at or after since (from its statuses; a zero since skips that check), the
// aanleverkenmerk of its pickups is filled in where one carries it. A process without
// statuses yet is a candidate too: not knowing when it started is no reason to rule it
// out.
func (c *Client) DeliveryCandidates(ctx context.Context, berichtsoort string, id Identity, since time.Time,
	known func(kenmerk string) (bool, error)) ([]Candidate, error) {
	kenmerken, err := c.Processen(ctx, berichtsoort, id)
	if err != nil {
		return nil, err
	}
	var out []Candidate
	for _, k := range kenmerken {
		if known != nil {
			mine, err := known(k)
			if err != nil {
				return nil, err
			}
			if mine {
				continue
			}
		}
		cand := Candidate{Kenmerk: k}
		if !since.IsZero() {
			statuses, err := c.Statuses(ctx, k, time.Time{}, time.Time{})
			if err != nil {
				return nil, err
			}
			for _, st := range statuses {
				if cand.Started.IsZero() || st.Time.Before(cand.Started) {
					cand.Started = st.Time
				}
			}
			if !cand.Started.IsZero() && cand.Started.Before(since) {
				continue // an older process: not this delivery
			}
		}
		berichten, err := c.BerichtenKenmerk(ctx, k, time.Time{}, time.Time{})
		if err != nil {
			return nil, err
		}
		for _, b := range berichten {
			if b.Aanleverkenmerk != "" {
				cand.Aanleverkenmerk = b.Aanleverkenmerk
			}
		}
		out = append(out, cand)
	}
	return out, nil
}

// FindDelivery answers "does Digipoort already have a delivery with this
// aanleverkenmerk?": the candidate whose pickup carries it (DeliveryCandidates).
//
// Caveats: whether the real Digipoort fills aanleverkenmerk in BerichtResultaat, and
// whether a process has a message to pick up before its flow ends, is not confirmed
// (Logius documents the element as optional). So found=false means "not found by this
// method", not proof that nothing arrived: Koerier's delivery looks at every
// candidate (domain.ChooseDelivery) and never delivers again on its own.
func (c *Client) FindDelivery(ctx context.Context, berichtsoort string, id Identity, aanleverkenmerk string,
	known func(kenmerk string) bool) (kenmerk string, found bool, err error) {
	f := &fieldCheck{op: "FindDelivery"}
	f.text("aanleverkenmerk", aanleverkenmerk, MaxAanleverkenmerk, true)
	if err := f.err(); err != nil {
		return "", false, err
	}
	var knownErr func(string) (bool, error)
	if known != nil {
		knownErr = func(k string) (bool, error) { return known(k), nil }
	}
	cands, err := c.DeliveryCandidates(ctx, berichtsoort, id, time.Time{}, knownErr)
	if err != nil {
		return "", false, err
	}
	for _, cand := range cands {
		if cand.Aanleverkenmerk == aanleverkenmerk {
			return cand.Kenmerk, true, nil
		}
	}
	return "", false, nil
}
