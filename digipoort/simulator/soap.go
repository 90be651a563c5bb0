package simulator

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"koerier/digipoort/devcerts"
	"koerier/digipoort/internal/wire"
	"koerier/digipoort/wsse"
)

// maxRequestBytes bounds a request: 20 MiB content is ~27 MiB of base64.
const maxRequestBytes = 40 << 20

// request is one verified SOAP request.
type request struct {
	svc       wire.Service
	op        string
	messageID string
	cert      *x509.Certificate
	certFP    string
	known     bool
	payload   []byte
	now       time.Time
}

func (s *Sim) serveSOAP(svc wire.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST a SOAP 1.1 request", http.StatusMethodNotAllowed)
			return
		}
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "client certificate required", http.StatusForbidden)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
		if err != nil {
			return
		}
		// Until the Body is read, the operation a fault answers is the one the SOAPAction
		// names (when this service offers it), so that even an early refusal carries the
		// WSDL's fault action of the operation the client called.
		op := "unknown"
		if o, ok := strings.CutPrefix(strings.Trim(r.Header.Get("SOAPAction"), `" `), svc.ActionNS); ok {
			if o, ok = strings.CutSuffix(o, "Request"); ok {
				if got, known := wire.ServiceOf(o); known && got.Path == svc.Path {
					op = o
				}
			}
		}
		var relatesTo string
		writeFault := func(f *soapFault) {
			s.writeFault(w, svc, op, relatesTo, f)
			s.log.WithFields(logrus.Fields{"op": op, "foutcode": f.foutcode}).Info("fault")
		}
		if len(body) > maxRequestBytes {
			writeFault(specFault(svc, "Het verzoek is groter dan toegestaan."))
			return
		}
		if messageID, f := checkHeaders(svc, body); f != nil {
			relatesTo = messageID
			writeFault(f)
			return
		}
		m, err := wsse.Parse(body)
		if err != nil {
			writeFault(specFault(svc, "Het SOAP bericht is ongeldig: %v", err))
			return
		}
		relatesTo = m.Addressing.MessageID
		p := m.Payload()
		if p == nil || p.NamespaceURI() != wire.NS || !strings.HasSuffix(p.Tag, "Request") {
			writeFault(specFault(svc, "De SOAP Body bevat geen verzoek van koppelvlak 1.2."))
			return
		}
		op = strings.TrimSuffix(p.Tag, "Request")
		if op == "aanlever" {
			op = wire.OpAanleveren
		}
		if got, ok := wire.ServiceOf(op); !ok || got.Path != svc.Path {
			op = "unknown"
			writeFault(specFault(svc, "Operatie %s wordt niet door deze service aangeboden.", p.Tag))
			return
		}
		// From here on the fault answers the operation in the Body.
		s.count(op)
		want := wire.RequestAction(svc, op)
		if sa := strings.Trim(r.Header.Get("SOAPAction"), `" `); sa != want {
			writeFault(specFault(svc, "SOAPAction %q hoort niet bij %s (verwacht %q).", sa, op, want))
			return
		}
		if m.Addressing.Action != want {
			writeFault(specFault(svc, "wsa:Action %q hoort niet bij %s (verwacht %q).", m.Addressing.Action, op, want))
			return
		}
		if m.Addressing.MessageID == "" {
			writeFault(specFault(svc, "wsa:MessageID ontbreekt."))
			return
		}
		if u, err := url.Parse(m.Addressing.To); err != nil || u.Path != svc.Path {
			writeFault(specFault(svc, "wsa:To %q is niet het endpoint van de service.", m.Addressing.To))
			return
		}
		if a := m.Addressing.ReplyTo; a != "" && a != wsse.AnonymousAddress {
			writeFault(specFault(svc, "wsa:ReplyTo moet %s zijn.", wsse.AnonymousAddress))
			return
		}
		peer := r.TLS.PeerCertificates[0]
		if _, err := m.Verify(wsse.VerifyOptions{
			Trust: func(c *x509.Certificate) error {
				if !bytes.Equal(c.Raw, peer.Raw) {
					return fmt.Errorf("het certificaat in de handtekening is niet het TLS-clientcertificaat")
				}
				return nil
			},
			Tolerance: s.opts.RequestTolerance,
		}); err != nil {
			writeFault(specFault(svc, "De WS-Security handtekening is ongeldig: %v", err))
			return
		}
		payload, err := m.PayloadXML()
		if err != nil {
			writeFault(specFault(svc, "%v", err))
			return
		}
		if s.opts.OnRequest != nil {
			s.opts.OnRequest(op, payload)
		}
		fp := devcerts.Fingerprint(peer)
		req := &request{svc: svc, op: op, messageID: m.Addressing.MessageID, cert: peer, certFP: fp,
			known: s.known[fp], payload: payload, now: time.Now().Truncate(time.Millisecond)}

		inj := s.injections(op)
		if inj.http500 {
			s.log.WithField("op", op).Info("injected HTTP 500")
			http.Error(w, "Internal Server Error (injected by the simulator)", http.StatusInternalServerError)
			return
		}
		if inj.overload {
			writeFault(overloadFault(svc, "overbelast"))
			return
		}
		if inj.slow > 0 {
			if !s.sleep(r, inj.slow) {
				return
			}
			req.now = time.Now().Truncate(time.Millisecond)
		}

		resp, fields, fault := s.handle(req)
		if fault != nil {
			writeFault(fault)
			return
		}
		out, err := s.signedResponse(svc, op, m.Addressing.MessageID, resp, inj)
		if err != nil {
			writeFault(technicalFault(svc, err))
			return
		}
		fields["op"] = op
		fields["known_client"] = req.known
		if inj.timeout > 0 {
			// Processed, but the answer never comes: the client cannot know whether its
			// request arrived.
			s.log.WithFields(fields).Info("processed; injected timeout, not answering")
			s.sleep(r, inj.timeout)
			panic(http.ErrAbortHandler)
		}
		s.log.WithFields(fields).Info("ok")
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write(out)
	}
}

// sleep waits d, or until the client goes away or the simulator closes; it reports
// whether the full time passed.
func (s *Sim) sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.closing:
	}
	return false
}

func (s *Sim) count(op string) {
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
}

func (s *Sim) writeFault(w http.ResponseWriter, svc wire.Service, op, relatesTo string, f *soapFault) {
	env, err := wsse.FaultEnvelope(wsse.Addressing{
		To:        wsse.AnonymousAddress,
		MessageID: "urn:uuid:" + uuid.NewString(),
		Action:    wire.FaultAction(svc, op),
		RelatesTo: relatesTo,
	}, wsse.Fault{
		Code: "soapenv:" + f.code, String: "Algemene fout", Actor: "Verantwoordingsplichtige",
		Detail: svc.FaultElem, Foutcode: f.foutcode, Foutbeschrijving: f.beschrijven,
	}, wire.NS)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write(env)
}

func (s *Sim) signedResponse(svc wire.Service, op, relatesTo string, payload any, inj injection) ([]byte, error) {
	x, err := xml.Marshal(payload)
	if err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(x); err != nil {
		return nil, err
	}
	addr := wsse.Addressing{
		To:        wsse.AnonymousAddress,
		MessageID: "urn:uuid:" + uuid.NewString(),
		Action:    wire.ResponseAction(svc, op),
		RelatesTo: relatesTo,
	}
	if inj.unsigned {
		return unsignedEnvelope(doc.Root(), addr)
	}
	out, err := wsse.SignedEnvelope(doc.Root(), addr, s.signer, wsse.SignOptions{
		Algorithm: s.opts.ResponseAlgorithm, Layout: wsse.LayoutDigipoort, TTL: 10 * time.Minute,
	})
	if err != nil {
		return nil, err
	}
	if inj.tamper {
		// Change one byte of the signed Body, like the tampered fixture.
		out = tamper(out)
	}
	if inj.truncate {
		out = out[:len(out)/2]
	}
	return out, nil
}

func unsignedEnvelope(payload *etree.Element, addr wsse.Addressing) ([]byte, error) {
	doc := etree.NewDocument()
	env := doc.CreateElement("soapenv:Envelope")
	env.CreateAttr("xmlns:soapenv", wsse.NSSoap)
	env.CreateAttr("xmlns:wsa", wsse.NSWSA)
	h := env.CreateElement("soapenv:Header")
	h.CreateElement("wsa:To").SetText(addr.To)
	h.CreateElement("wsa:MessageID").SetText(addr.MessageID)
	h.CreateElement("wsa:Action").SetText(addr.Action)
	h.CreateElement("wsa:RelatesTo").SetText(addr.RelatesTo)
	env.CreateElement("soapenv:Body").AddChild(payload)
	return doc.WriteToBytes()
}

func tamper(env []byte) []byte {
	out := append([]byte(nil), env...)
	if i := bytes.Index(out, []byte("<kenmerk>")); i >= 0 && out[i+len("<kenmerk>")] != '<' {
		out[i+len("<kenmerk>")] ^= 0x01
		return out
	}
	// No kenmerk (an empty list): add text to the signed Body instead.
	if i := bytes.LastIndex(out, []byte("</soapenv:Body>")); i >= 0 {
		return append(out[:i:i], append([]byte(" "), out[i:]...)...)
	}
	return out
}

// handle runs one verified request and returns the response payload or a fault. The
// payload is first held against the XSD (wire.ValidateRequest) and the
// autorisatieAdres rule; only a request that passes is decoded and acted on.
func (s *Sim) handle(r *request) (payload any, fields logrus.Fields, fault *soapFault) {
	fields = logrus.Fields{}
	if err := wire.ValidateRequest(r.op, r.payload); err != nil {
		return nil, fields, schemaFault(r.svc, err)
	}
	if f := checkAutorisatieAdres(r); f != nil {
		return nil, fields, f
	}
	decode := func(v any) *soapFault {
		if err := xml.Unmarshal(r.payload, v); err != nil {
			// The payload passed the XSD check, so this is the simulator's own failure.
			return technicalFault(r.svc, fmt.Errorf("decoding %s: %w", r.op, err))
		}
		return nil
	}
	switch r.op {
	case wire.OpAanleveren:
		var q wire.AanleverRequest
		if f := decode(&q); f != nil {
			return nil, fields, f
		}
		fields["aanleverkenmerk"] = q.Aanleverkenmerk
		resp, f := s.aanleveren(r, &q)
		if f == nil {
			fields["kenmerk"] = resp.Kenmerk
		}
		return resp, fields, f
	case wire.OpGetStatussenProces, wire.OpGetNieuweStatussenProces:
		var q wire.StatusWindowRequest
		if f := decode(&q); f != nil {
			return nil, fields, f
		}
		fields["kenmerk"] = q.Kenmerk
		list, f := s.statussenProces(r, &q)
		if f != nil {
			return nil, fields, f
		}
		return statusResponse(r.op, list), fields, nil
	case wire.OpGetNieuweStatussen:
		var q wire.GetNieuweStatussenRequest
		if f := decode(&q); f != nil {
			return nil, fields, f
		}
		if f := firstFault(checkText(r.svc, "berichtsoort", q.Berichtsoort), checkIdentity(r.svc, "identiteitBelanghebbende", q.IdentiteitBelanghebbende)); f != nil {
			return nil, fields, f
		}
		list := s.nieuweStatussen(r, q.Berichtsoort, q.IdentiteitBelanghebbende, q.TijdstempelVanaf, q.TijdstempelTot)
		return statusResponse(r.op, list), fields, nil
	case wire.OpGetBerichtsoorten:
		var q wire.GetBerichtsoortenRequest
		if f := decode(&q); f != nil {
			return nil, fields, f
		}
		if f := checkIdentity(r.svc, "identiteitBelanghebbende", q.IdentiteitBelanghebbende); f != nil {
			return nil, fields, f
		}
		resp := &wire.GetBerichtsoortenResponse{}
		resp.Return.Berichtsoort = s.berichtsoorten()
		return resp, fields, nil
	case wire.OpGetProcessen:
		var q wire.GetProcessenRequest
		if f := decode(&q); f != nil {
			return nil, fields, f
		}
		if f := firstFault(checkText(r.svc, "berichtsoort", q.Berichtsoort),
			checkIdentity(r.svc, "identiteitBelanghebbende", q.IdentiteitBelanghebbende)); f != nil {
			return nil, fields, f
		}
		resp := &wire.GetProcessenResponse{}
		resp.Return.Resultaat = s.processen(r, q.Berichtsoort, q.IdentiteitBelanghebbende)
		return resp, fields, nil
	case wire.OpGetBerichtenLijst, wire.OpGetNieuweBerichtenLijst:
		var q wire.GetBerichtenLijstRequest
		if f := decode(&q); f != nil {
			return nil, fields, f
		}
		list := s.selectPickups(r, func(p *pickup) bool { return q.Berichtsoort == "" || p.Berichtsoort == q.Berichtsoort },
			q.TijdstempelVanaf, q.TijdstempelTot, r.op == wire.OpGetNieuweBerichtenLijst)
		resp := &wire.GetBerichtenLijstResponse{XMLName: wire.Name(r.op + "Response")}
		for _, p := range list {
			resp.Return.Resultaat = append(resp.Return.Resultaat, wire.BerichtLijstResultaat{
				Berichtsoort: p.Berichtsoort, IdentiteitBelanghebbende: p.IdentiteitBelanghebbende, Kenmerk: p.Kenmerk})
		}
		return lijstResponse(r.op, resp), fields, nil
	case wire.OpGetBerichtenKenmerk, wire.OpGetNieuweBerichtenKenmerk:
		var q wire.GetBerichtenKenmerkRequest
		if f := decode(&q); f != nil {
			return nil, fields, f
		}
		if f := checkText(r.svc, "kenmerk", q.Kenmerk); f != nil {
			return nil, fields, f
		}
		fields["kenmerk"] = q.Kenmerk
		list := s.selectPickups(r, func(p *pickup) bool { return p.Kenmerk == q.Kenmerk },
			q.TijdstempelVanaf, q.TijdstempelTot, r.op == wire.OpGetNieuweBerichtenKenmerk)
		return berichtenResponse(r.op, list), fields, nil
	case wire.OpGetBerichten, wire.OpGetNieuweBerichten:
		var q wire.GetBerichtenRequest
		if f := decode(&q); f != nil {
			return nil, fields, f
		}
		if f := checkIdentity(r.svc, "identiteitBelanghebbende", q.IdentiteitBelanghebbende); f != nil {
			return nil, fields, f
		}
		list := s.selectPickups(r, func(p *pickup) bool {
			return p.IdentiteitBelanghebbende == q.IdentiteitBelanghebbende && (q.Berichtsoort == "" || p.Berichtsoort == q.Berichtsoort)
		}, q.TijdstempelVanaf, q.TijdstempelTot, r.op == wire.OpGetNieuweBerichten)
		return berichtenResponse(r.op, list), fields, nil
	}
	return nil, fields, specFault(r.svc, "Operatie %s wordt niet ondersteund.", r.op)
}

// checkAutorisatieAdres refuses a request without autorisatieAdres, on every
// operation. The XSD makes it optional, but says a process may require it and that the
// status service requires it whenever the requester is not the belanghebbende (an
// intermediary, Koerier's case); every public WUS client sends http://geenausp.nl on
// every call (production included), so a client that leaves it out is broken in a way
// that would surface only against some berichtsoorten: the simulator refuses it
// always, like any request that does not meet the interface (x100).
func checkAutorisatieAdres(r *request) *soapFault {
	var q struct {
		AutorisatieAdres string `xml:"autorisatieAdres"`
	}
	if err := xml.Unmarshal(r.payload, &q); err != nil {
		return technicalFault(r.svc, fmt.Errorf("decoding %s: %w", r.op, err))
	}
	if strings.TrimSpace(q.AutorisatieAdres) == "" {
		return specFault(r.svc, "Element %s/autorisatieAdres ontbreekt; geef het autorisatieadres op (zonder autorisatieservice: http://geenausp.nl).",
			wire.RequestElement(r.op))
	}
	return nil
}

func statusResponse(op string, list []wire.StatusResultaat) *wire.StatusResponse {
	resp := &wire.StatusResponse{XMLName: wire.Name(op + "Response")}
	resp.Return.XMLName = wire.Name(op + "Return")
	resp.Return.Resultaat = list
	return resp
}

func lijstResponse(op string, resp *wire.GetBerichtenLijstResponse) any {
	if op == wire.OpGetBerichtenLijst {
		return resp
	}
	// getNieuweBerichtenLijstResponse has the same shape with other element names.
	type nieuwe struct {
		XMLName xml.Name
		Return  struct {
			XMLName   xml.Name
			Resultaat []wire.BerichtLijstResultaat `xml:"BerichtLijstResultaat"`
		}
	}
	n := &nieuwe{XMLName: wire.Name(op + "Response")}
	n.Return.XMLName = wire.Name(op + "Return")
	n.Return.Resultaat = resp.Return.Resultaat
	return n
}

func berichtenResponse(op string, list []*pickup) any {
	resp := &wire.BerichtenResponse{XMLName: wire.Name(op + "Response")}
	resp.Return.XMLName = wire.Name(op + "Return")
	for _, p := range list {
		resp.Return.Resultaat = append(resp.Return.Resultaat, p.BerichtResultaat)
	}
	return resp
}

// checkText refuses an empty required value. The XSD (normalizedString without
// minLength) allows <berichtsoort/>, but nothing can be done with it: the simulator
// refuses it as not meeting the interface, like Digipoort is expected to.
func checkText(svc wire.Service, name, v string) *soapFault {
	if strings.TrimSpace(v) == "" {
		return specFault(svc, "Element %s is leeg.", name)
	}
	return nil
}

func checkIdentity(svc wire.Service, name string, id wire.Identiteit) *soapFault {
	return firstFault(checkText(svc, name+"/nummer", id.Nummer), checkText(svc, name+"/type", id.Type))
}

func firstFault(fs ...*soapFault) *soapFault {
	for _, f := range fs {
		if f != nil {
			return f
		}
	}
	return nil
}

func (s *Sim) aanleveren(r *request, q *wire.AanleverRequest) (*wire.AanleverResponse, *soapFault) {
	svc := r.svc
	f := firstFault(
		checkText(svc, "berichtsoort", q.Berichtsoort),
		checkIdentity(svc, "identiteitBelanghebbende", q.IdentiteitBelanghebbende),
		checkText(svc, "rolBelanghebbende", q.RolBelanghebbende),
		checkText(svc, "berichtInhoud/mimeType", q.BerichtInhoud.MimeType),
		checkText(svc, "berichtInhoud/bestandsnaam", q.BerichtInhoud.Bestandsnaam),
	)
	if f == nil && q.IdentiteitOntvanger != nil {
		f = checkIdentity(svc, "identiteitOntvanger", *q.IdentiteitOntvanger)
	}
	if f == nil && strings.TrimSpace(q.BerichtInhoud.Inhoud) == "" {
		f = specFault(svc, "Element berichtInhoud/inhoud is leeg.")
	}
	var bijlagen []wire.BerichtInhoud
	if q.BerichtBijlagen != nil {
		bijlagen = q.BerichtBijlagen.Bijlage
	}
	for i, b := range bijlagen {
		name := fmt.Sprintf("berichtBijlagen/bijlage[%d]", i+1)
		f = firstFault(f, checkText(svc, name+"/mimeType", b.MimeType), checkText(svc, name+"/bestandsnaam", b.Bestandsnaam))
		if f == nil && strings.TrimSpace(b.Inhoud) == "" {
			f = specFault(svc, "Element %s/inhoud is leeg.", name)
		}
	}
	if f != nil {
		return nil, f
	}
	// Described before the lock: hashing 20 MiB takes a while.
	inhoud, err := describe(q.BerichtInhoud)
	if err != nil {
		return nil, specFault(svc, "Element berichtInhoud/inhoud: %v", err)
	}
	described := make([]Content, len(bijlagen))
	for i, b := range bijlagen {
		if described[i], err = describe(b); err != nil {
			return nil, specFault(svc, "Element berichtBijlagen/bijlage[%d]/inhoud: %v", i+1, err)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.changed() // a count at least; usually a new process
	sc := s.scenarioLocked(q.Aanleverkenmerk)
	st := s.stats[q.Aanleverkenmerk]
	if st == nil {
		st = &DeliveryStats{Aanleverkenmerk: q.Aanleverkenmerk, Kenmerken: []string{}}
		s.stats[q.Aanleverkenmerk] = st
	}
	st.Attempts++
	st.Scenario = sc
	key := processKey(q)
	switch sc {
	case AanleverFault:
		return nil, scenarioFault(svc)
	case OverbelastAanleveren:
		if s.overloadedLocked("aanleveren\x00"+key, r.now, true) {
			return nil, overloadFault(svc, "overbelast")
		}
	case ZwaarbelastAanleveren:
		if s.overloadedLocked("aanleveren\x00"+key, r.now, false) {
			return nil, overloadFault(svc, "zwaarbelast")
		}
	}
	repeat := false
	if q.Aanleverkenmerk != "" && s.byKey[key] != nil {
		if !s.mode.Realistic {
			// Idempotent (a choice of the default mode): the same delivery again gets the
			// original answer and starts nothing new; it is counted.
			p := s.byKey[key]
			st.Duplicates++
			st.Received++
			resp := p.resp
			return &resp, nil
		}
		// Realistic: Digipoort is not known to recognise a repeated aanleverkenmerk, so
		// the repeat is a second process with its own kenmerk, flow and pickup. It is
		// counted, so that a test can see every duplicate that reached Digipoort.
		repeat = true
		st.Repeated++
	}
	p := &process{
		kenmerk: newUUID(), req: *q, scenario: sc, steps: steps(sc, r.known),
		start: r.now, step: s.opts.StepInterval, certFP: r.certFP, aangeleverd: r.now, repeat: repeat,
		messageID: r.messageID, bdMessageID: newUUID(), inhoud: inhoud, bijlagen: described,
	}
	if s.mode.Realistic {
		p.realistic = true
		p.offsets = realisticOffsets(p.steps)
		for i := range p.offsets {
			p.offsets[i] = s.mode.scaled(p.offsets[i])
		}
		p.step = s.mode.scaled(time.Minute)
	}
	p.req.BerichtInhoud.Inhoud, p.req.BerichtBijlagen = "", nil // keep no content
	// Digipoort names the receiver in its answer, also when the request did not (the
	// captured response carries the Belastingdienst's OIN).
	ontvanger := q.IdentiteitOntvanger
	if ontvanger == nil {
		o := s.opts.Ontvanger
		ontvanger = &o
	}
	p.resp = wire.AanleverResponse{
		Kenmerk: p.kenmerk, Berichtsoort: q.Berichtsoort, Aanleverkenmerk: q.Aanleverkenmerk,
		EerderAanleverkenmerk:  q.EerderAanleverkenmerk,
		TijdstempelAangeleverd: wire.Time{Time: r.now}, IdentiteitBelanghebbende: q.IdentiteitBelanghebbende,
		RolBelanghebbende: q.RolBelanghebbende, IdentiteitOntvanger: ontvanger, RolOntvanger: q.RolOntvanger,
		AutorisatieAdres: q.AutorisatieAdres,
	}
	if q.Aanleverkenmerk != "" && s.byKey[key] == nil {
		s.byKey[key] = p // the first process answers repeats in the default mode
	}
	s.byKenmerk[p.kenmerk] = p
	s.order = append(s.order, p)
	st.Accepted++
	st.Received++
	st.Kenmerken = append(st.Kenmerken, p.kenmerk)
	if r.known {
		s.pickups = append(s.pickups, replyFor(p))
	}
	resp := p.resp
	return &resp, nil
}

// replyFor is the message a process puts ready for pickup when its flow ends. In
// realistic mode it carries no aanleverkenmerk, neither in the BerichtResultaat nor in
// the document: the real Digipoort is not known to fill it (the XSD makes it
// optional), so a client must link replies by kenmerk.
func replyFor(p *process) *pickup {
	last := p.steps[len(p.steps)-1]
	end := p.endTime()
	aanleverkenmerk := p.req.Aanleverkenmerk
	if p.realistic {
		aanleverkenmerk = ""
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<simulatorAntwoord kenmerk="` + xmlAttr(p.kenmerk) + `"`)
	if !p.realistic {
		b.WriteString(` aanleverkenmerk="` + xmlAttr(aanleverkenmerk) + `"`)
	}
	fmt.Fprintf(&b, ` berichtsoort="%s" statuscode="%s">`, xmlAttr(p.req.Berichtsoort), last.Code)
	b.WriteString("<omschrijving>" + xmlAttr(last.Omschrijving) + "</omschrijving>")
	details := last.Details
	if last.Response != "" {
		details = p.responsemessage(last.Response, p.statusTime(len(p.steps)-2))
	}
	if details != "" {
		b.WriteString("<details>" + xmlAttr(details) + "</details>")
	}
	b.WriteString("</simulatorAntwoord>\n")
	name := p.req.Berichtsoort + "-" + last.Code + ".xml"
	if len([]rune(name)) > 80 {
		name = string([]rune(name)[len([]rune(name))-80:])
	}
	return &pickup{
		tijd:   end,
		certFP: p.certFP,
		BerichtResultaat: wire.BerichtResultaat{
			Kenmerk: p.kenmerk, Berichtsoort: p.req.Berichtsoort, Berichtkenmerk: newUUID(),
			Aanleverkenmerk: aanleverkenmerk, TijdstempelAangeleverd: wire.Time{Time: end},
			IdentiteitBelanghebbende: p.req.IdentiteitBelanghebbende, RolBelanghebbende: p.req.RolBelanghebbende,
			BerichtInhoud: wire.BerichtInhoud{MimeType: "text/xml", Bestandsnaam: name, Inhoud: b64([]byte(b.String()))},
		},
	}
}

// overloadedLocked implements the Overbelast (count) and Zwaarbelast (window)
// behaviour for a key.
func (s *Sim) overloadedLocked(key string, now time.Time, byCount bool) bool {
	o := s.overload[key]
	if o == nil {
		o = &overloadState{first: now}
		s.overload[key] = o
	}
	o.count++
	if byCount {
		return o.count <= s.opts.OverloadAttempts
	}
	return now.Sub(o.first) < s.opts.OverloadWindow
}

func (s *Sim) statussenProces(r *request, q *wire.StatusWindowRequest) ([]wire.StatusResultaat, *soapFault) {
	if f := checkText(r.svc, "kenmerk", q.Kenmerk); f != nil {
		return nil, f
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.byKenmerk[q.Kenmerk]
	if p == nil || p.certFP != r.certFP {
		// Statuses are only given to the certificate that delivered.
		return nil, specFault(r.svc, "Het kenmerk %s is onbekend.", q.Kenmerk)
	}
	switch p.scenario {
	case StatusInformatieFault:
		return nil, scenarioFault(r.svc)
	case OverbelastStatusInformatie:
		if s.overloadedLocked("status\x00"+p.kenmerk, r.now, true) {
			return nil, overloadFault(r.svc, "overbelast")
		}
	case ZwaarbelastStatusInformatie:
		if s.overloadedLocked("status\x00"+p.kenmerk, r.now, false) {
			return nil, overloadFault(r.svc, "zwaarbelast")
		}
	}
	nieuwe := r.op == wire.OpGetNieuweStatussenProces
	return s.statusesLocked(p, r, q.TijdstempelVanaf, q.TijdstempelTot, nieuwe), nil
}

func (s *Sim) statusesLocked(p *process, r *request, vanaf, tot *wire.Time, nieuwe bool) []wire.StatusResultaat {
	var out []wire.StatusResultaat
	for i, st := range p.steps {
		t := p.statusTime(i)
		if t.After(r.now) || !inWindow(t, vanaf, tot) {
			continue
		}
		if nieuwe {
			k := r.certFP + "\x00status\x00" + p.kenmerk + "\x00" + fmt.Sprint(i)
			if s.fetched[k] {
				continue
			}
			s.fetched[k] = true
		}
		sr := wire.StatusResultaat{
			Kenmerk: p.kenmerk, IdentiteitBelanghebbende: p.req.IdentiteitBelanghebbende,
			Statuscode: st.Code, TijdstempelStatus: wire.Time{Time: t}, Statusomschrijving: st.Omschrijving,
			Statusdetails: st.Details,
		}
		if st.Response != "" {
			// The authority answered when the message was delivered to it (the 400 before).
			sr.Statusdetails = p.responsemessage(st.Response, p.statusTime(max(i-1, 0)))
		}
		if st.Foutcode != "" {
			sr.StatusFoutcode = &wire.Fout{Foutcode: st.Foutcode, Foutbeschrijving: st.Foutbeschrijving}
		}
		out = append(out, sr)
	}
	for j, inj := range s.injected[strings.ToLower(p.req.Aanleverkenmerk)] {
		t := p.statusTime(len(p.steps) + j)
		if t.After(r.now) || !inWindow(t, vanaf, tot) {
			continue
		}
		k := p.kenmerk
		if inj.ForKenmerk != "" {
			k = inj.ForKenmerk
		}
		out = append(out, wire.StatusResultaat{Kenmerk: k, IdentiteitBelanghebbende: p.req.IdentiteitBelanghebbende,
			Statuscode: inj.Code, TijdstempelStatus: wire.Time{Time: t}, Statusomschrijving: inj.Description})
	}
	return out
}

func (s *Sim) nieuweStatussen(r *request, berichtsoort string, id wire.Identiteit, vanaf, tot *wire.Time) []wire.StatusResultaat {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []wire.StatusResultaat
	for _, p := range s.order {
		if p.certFP != r.certFP || p.req.Berichtsoort != berichtsoort || p.req.IdentiteitBelanghebbende != id {
			continue
		}
		out = append(out, s.statusesLocked(p, r, vanaf, tot, true)...)
	}
	return out
}

func inWindow(t time.Time, vanaf, tot *wire.Time) bool {
	if vanaf != nil && t.Before(vanaf.Time) {
		return false
	}
	if tot != nil && t.After(tot.Time) {
		return false
	}
	return true
}

func (s *Sim) berichtsoorten() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := map[string]bool{}
	for _, b := range s.opts.Berichtsoorten {
		set[b] = true
	}
	for _, p := range s.order {
		set[p.req.Berichtsoort] = true
	}
	return sortedKeys(set)
}

func (s *Sim) processen(r *request, berichtsoort string, id wire.Identiteit) []wire.ProcesResultaat {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []wire.ProcesResultaat
	for _, p := range s.order {
		if p.certFP != r.certFP || p.req.Berichtsoort != berichtsoort || p.req.IdentiteitBelanghebbende != id {
			continue
		}
		out = append(out, wire.ProcesResultaat{Kenmerk: p.kenmerk, Berichtsoort: p.req.Berichtsoort,
			IdentiteitBelanghebbende: p.req.IdentiteitBelanghebbende, IdentiteitOntvanger: p.resp.IdentiteitOntvanger})
	}
	return out
}

// selectPickups returns the messages visible to the requesting certificate: those
// of its own deliveries and those added through the control API (for known clients
// only), whose time has come, inside the window, matching keep; sorted by time.
func (s *Sim) selectPickups(r *request, keep func(*pickup) bool, vanaf, tot *wire.Time, nieuwe bool) []*pickup {
	if !r.known {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*pickup
	for _, p := range s.pickups {
		if (p.certFP != "" && p.certFP != r.certFP) || p.tijd.After(r.now) || !inWindow(p.tijd, vanaf, tot) || !keep(p) {
			continue
		}
		if nieuwe {
			k := r.certFP + "\x00bericht\x00" + p.Berichtkenmerk
			if s.fetched[k] {
				continue
			}
			s.fetched[k] = true
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].tijd.Before(out[j].tijd) })
	return out
}

func newUUID() string { return uuid.NewString() }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// describe decodes one berichtInhoudType's base64 as it streams into SHA-256, so that
// a 20 MiB document is never held decoded. xsd:base64Binary allows whitespace between
// the characters; the decoder skips only CR and LF, so spaces and tabs go first.
func describe(b wire.BerichtInhoud) (Content, error) {
	text := b.Inhoud
	if strings.ContainsAny(text, " \t") {
		text = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, text)
	}
	h := sha256.New()
	n, err := io.Copy(h, base64.NewDecoder(base64.StdEncoding, strings.NewReader(text)))
	if err != nil {
		return Content{}, fmt.Errorf("not valid base64: %w", err)
	}
	return Content{MimeType: b.MimeType, Bestandsnaam: b.Bestandsnaam, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func xmlAttr(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// allowedWSA are the WS-Addressing 2005/08 headers (the WSDL's binding uses WS-Addressing;
// Digipoort's requests carry To, Action, MessageID and ReplyTo).
var allowedWSA = map[string]bool{"To": true, "From": true, "ReplyTo": true, "FaultTo": true, "Action": true, "MessageID": true, "RelatesTo": true}

// checkHeaders refuses a request with a SOAP header other than WS-Addressing and the
// WS-Security header: the WSDLs declare no other header, and Digipoort answers a
// request that does not meet its interface with the service's x100 fault. A refused
// header marked soapenv:mustUnderstand gets SOAP's MustUnderstand fault code. Only the
// Header is read (it precedes the Body); an envelope that is not well-formed is left to
// wsse.Parse, which says what is wrong with it.
//
// With a refusal it returns the wsa:MessageID the header carries (unverified: it only
// addresses the fault's wsa:RelatesTo).
func checkHeaders(svc wire.Service, body []byte) (messageID string, fault *soapFault) {
	d := xml.NewDecoder(bytes.NewReader(body))
	depth := 0
	inHeader := false
	var refused *soapFault
	for {
		tok, err := d.Token()
		if err != nil {
			return messageID, refused
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 2 && t.Name.Space == wsse.NSSoap && t.Name.Local == "Header":
				inHeader = true
			case depth == 2:
				return messageID, refused // the Body: the Header is behind us
			case depth == 3 && inHeader && t.Name.Space == wsse.NSWSA && t.Name.Local == "MessageID":
				var id string
				if err := d.DecodeElement(&id, &t); err != nil {
					return messageID, refused
				}
				depth--
				messageID = strings.TrimSpace(id)
			case depth == 3 && inHeader && refused == nil:
				allowed := (t.Name.Space == wsse.NSWSSE && t.Name.Local == "Security") ||
					(t.Name.Space == wsse.NSWSA && allowedWSA[t.Name.Local])
				if allowed {
					continue
				}
				name := "{" + t.Name.Space + "}" + t.Name.Local
				refused = specFault(svc, "De header %s is niet toegestaan: de WSDL staat alleen WS-Addressing- en WS-Security-headers toe.", name)
				for _, a := range t.Attr {
					if a.Name.Space == wsse.NSSoap && a.Name.Local == "mustUnderstand" && (a.Value == "1" || a.Value == "true") {
						refused = mustUnderstandFault(svc, name)
					}
				}
			}
		case xml.EndElement:
			depth--
			if depth == 1 && inHeader {
				return messageID, refused
			}
		}
	}
}
