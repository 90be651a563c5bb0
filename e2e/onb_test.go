package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	enums "go.temporal.io/api/enums/v1"

	"koerier/digipoort"
	"koerier/digipoort/simulator"
	"koerier/domain"
	"koerier/internal/testenv"
	"koerier/pipeline"
	"koerier/store"
)

// Rule 5 in the Web UI: an unknown reply has a workflow that the list filter
// KoerierStatus="unknown" finds; `starter onb link` makes it the message's reply
// document and ends the workflow, which is then no longer found as unknown.
func TestUnknownReplyIsFoundInTheWebUIAndLinked(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	mustCLI(t, "environments", "add", "acme")
	q := queue(t, "acme", "2026-03")
	until(t, s, q.Number, domain.StatusAccepted)
	kenmerk, _, err := s.Sim.AddPickup(simulator.Pickup{
		Berichtsoort: "Omzetbelasting",
		Identiteit:   digipoort.Identity{Nummer: "001000044B37", Type: "Fi"},
		Bestandsnaam: "nagekomen.xml",
		Inhoud:       []byte("<bericht>nagekomen antwoord</bericht>"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := sendReceive(t); c.ONB != 1 {
		t.Fatalf("counts: %+v", c)
	}
	var onbs []store.ONB
	cliJSON(t, &onbs, "onb", "list")
	if len(onbs) != 1 || onbs[0].PickupKenmerk != kenmerk || !onbs[0].Open {
		t.Fatalf("onb list: %+v", onbs)
	}
	n := onbs[0].Number
	id := pipeline.UnknownReplyID(n)
	found := func(query string) (bool, string) {
		resp, err := s.Temporal.ListWorkflow(context.Background(), listRequest(s, query))
		if err != nil {
			return false, err.Error()
		}
		for _, e := range resp.Executions {
			if e.Execution.WorkflowId == id {
				return true, ""
			}
		}
		return false, fmt.Sprint(len(resp.Executions), " found")
	}
	testenv.Eventually(t, 30*time.Second, "the unknown reply listed by KoerierStatus=\"unknown\"", func() (bool, string) {
		return found(`KoerierStatus="unknown" AND ExecutionStatus="Running"`)
	})

	out := mustCLI(t, "onb", "link", fmt.Sprint(n), fmt.Sprint(q.Number), "--memo", "the authority's late answer")
	if !strings.Contains(out, fmt.Sprintf("unknown reply %d linked to message %d as its reply document", n, q.Number)) {
		t.Fatalf("link printed %q", out)
	}
	testenv.Eventually(t, 30*time.Second, "the unknown reply's workflow completed", func() (bool, string) {
		d, err := s.Temporal.DescribeWorkflow(context.Background(), id, "")
		if err != nil {
			return false, err.Error()
		}
		return d.Status == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, d.Status.String()
	})
	testenv.Eventually(t, 30*time.Second, "the linked reply listed as linked, not unknown", func() (bool, string) {
		if ok, _ := found(`KoerierStatus="unknown"`); ok {
			return false, "still unknown"
		}
		return found(`KoerierStatus="linked"`)
	})
	var linked int
	if err := s.Store.DB().GetContext(context.Background(), &linked, `SELECT count(*) FROM messages m JOIN attachments a ON a.message_number = m.number
		WHERE m.number = $1 AND m.reply_to = $2 AND m.subtype = ''`, n, q.Number); err != nil || linked != 1 {
		t.Fatalf("the document must be the message's reply document: %d %v", linked, err)
	}
	if !hasLine(logLines(t, "--level", "I"), q.Number, "I", fmt.Sprintf("linked unknown reply (ONB) %d", n)) {
		t.Error("no I line says who linked it")
	}
	cliJSON(t, &onbs, "onb", "list")
	if len(onbs) != 0 {
		t.Fatalf("nothing is open any more: %+v", onbs)
	}
}
