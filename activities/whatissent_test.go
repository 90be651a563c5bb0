package activities_test

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"koerier/digipoort"
	"koerier/domain"
	"koerier/pipeline"
)

// Rules 14 and 15: the delivery names the belanghebbende with the identity type stored
// with the message, and sends every further file queued with it as berichtBijlagen.
func TestDeliverSendsTheStoredIdentityAndEveryFile(t *testing.T) {
	h := newHarness(t)
	n := h.queue("1").Number
	// As if queued under KOERIER_IDENTITY_TYPES=btw=Fi and KOERIER_BIJLAGEN=btw=yes: what
	// was stored with the message is what is sent, whatever the settings are now.
	bijlage := []byte("%PDF-1.7 toelichting")
	sum := sha256.Sum256(bijlage)
	h.exec(`UPDATE messages SET identity_type = 'Fi' WHERE number = $1`, n)
	h.exec(`INSERT INTO attachments (message_number, file_name, mime_type, size, sha256, content) VALUES ($1, 'toelichting.pdf',
		'application/pdf', $2, $3, $4)`, n, len(bijlage), sum[:], bijlage)

	res, err := h.deliverCall(n)
	if err != nil || res.Outcome != pipeline.OutcomeSent {
		t.Fatalf("deliver: %+v %v", res, err)
	}
	r := h.dp.requests[0]
	if r.Belanghebbende != (digipoort.Identity{Nummer: "000000001B01", Type: "Fi"}) {
		t.Errorf("identiteitBelanghebbende %+v, want the stored identity type Fi with the omzetbelastingnummer", r.Belanghebbende)
	}
	if r.Bestandsnaam != "aangifte.xbrl" || len(r.Bijlagen) != 1 || r.Bijlagen[0].Bestandsnaam != "toelichting.pdf" ||
		r.Bijlagen[0].MimeType != "application/pdf" || !bytes.Equal(r.Bijlagen[0].Inhoud, bijlage) {
		t.Fatalf("the second file must go as berichtBijlagen: %+v", r)
	}
}

// The 420 with AFS600 fails the message and says the deadline may pass; the 500's
// statusdetails (the authority's acknowledgement) are kept as sent.
func TestReceiveReadsCodeAndFoutcodeAndKeepsDetails(t *testing.T) {
	h := newHarness(t)
	a := h.delivered("1", "KM-A")
	b := h.delivered("2", "KM-B")
	gaveUp := statusesOf("KM-A", "105", "100", "110", "200", "301", "405", "420", "420")
	gaveUp[7].ErrorCode, gaveUp[7].ErrorDescription = "AFS600", "Het maximaal aantal afleverpogingen is bereikt."
	accepted := statusesOf("KM-B", "105", "100", "110", "200", "301", "405", "400", "500")
	const ack = "<bevestiging>ontvangen door de Belastingdienst</bevestiging>"
	accepted[7].Details = ack
	h.answerStatuses(map[string]statusAnswer{"KM-A": {statuses: gaveUp}, "KM-B": {statuses: accepted}})

	if _, err := h.receive(); err != nil {
		t.Fatal(err)
	}
	m := h.requireMessage(a, domain.StatusFailed, true, "KM-A")
	if !containsAll(m.NeedsActionReason, "420 AFS600", "deadline may pass", "Restore the message") {
		t.Errorf("needs-action reason: %q", m.NeedsActionReason)
	}
	h.requireMessage(b, domain.StatusAccepted, false, "KM-B")
	if h.count(`SELECT count(*) FROM status_events WHERE message_number = $1 AND code = '500' AND details = $2`, b, ack) != 1 {
		t.Error("the 500's statusdetails must be stored as sent")
	}
	if h.count(`SELECT count(*) FROM status_events WHERE message_number = $1 AND code = '420' AND error_code = 'AFS600' AND status = 'failed'`, a) != 1 {
		t.Error("the 420 with AFS600 must be stored as failed with its foutcode")
	}
}
