package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"koerier/internal/demo"
	"koerier/pipeline"
	"koerier/store"
)

// The page's message properties and "Opslaan bijlage" (issue 12, item 1): `show --json`
// holds the general properties, the full Berichtactie, every reply and every file with
// its id and SHA-256; `attachment save` writes the message's files and its reply
// documents' byte for byte, never overwrites, and keeps both of two files with one
// name; an unknown reply's (ONB) file is saved the same way, and a name that holds a
// path stays inside the folder. The workflow's loader carries the same, bounded.
func TestShowAndSaveAttachments(t *testing.T) {
	catalogEnv(t)
	url := useDatabase(t)
	ctx := context.Background()
	st := acmeStore(t, url)
	n := queueVAT(t, st, "NL001000044B37", "2026-10")
	// As if queued under KOERIER_BIJLAGEN=btw=yes.
	pdf := []byte("%PDF-1.7 toelichting\x00\xff")
	sum := sha256.Sum256(pdf)
	if _, err := st.DB().Exec(`INSERT INTO attachments (message_number, file_name, mime_type, size, sha256, content)
		VALUES ($1, 'toelichting.pdf', 'application/pdf', $2, $3, $4)`, n, len(pdf), sum[:], pdf); err != nil {
		t.Fatal(err)
	}
	plan, err := st.BeginDelivery(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RecordDelivered(ctx, n, plan.Attempt, "K-att", ""); err != nil {
		t.Fatal(err)
	}
	reply1, reply2, onbDoc := []byte("<reply>one</reply>"), []byte("<reply>two</reply>"), []byte("<who>?</who>")
	res, err := st.StoreIncoming(ctx, []store.IncomingDoc{
		{PickupKenmerk: "K-att", Berichtkenmerk: "b1", Subject: "001000044B37", FileName: "reply.xml", MimeType: "text/xml", Content: reply1},
		{PickupKenmerk: "K-att", Berichtkenmerk: "b2", Subject: "001000044B37", FileName: "REPLY.xml", MimeType: "text/xml", Content: reply2},
		{PickupKenmerk: "K-stranger", Berichtkenmerk: "b3", Subject: "999", FileName: "../../evil.xml", MimeType: "text/xml", Content: onbDoc},
	})
	if err != nil || len(res.Linked[n]) != 2 || len(res.Unknown) != 1 {
		t.Fatalf("incoming: %+v %v", res, err)
	}
	if _, err := st.ApplyReplies(ctx, []store.Reply{store.ReplyFromCode("K-att", "100", time.Now().Add(-time.Minute))}); err != nil {
		t.Fatal(err)
	}

	out, err := run(t, "show", itoa(n), "--json")
	if err != nil {
		t.Fatal(err)
	}
	var shown map[string]any
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, k := range []string{"number", "environment", "type", "subject", "period", "status", "version", "do_not_send", "needs_action", "action",
		"last_status_change", "replies", "attachments"} {
		if _, ok := shown[k]; !ok {
			t.Errorf("show --json lacks %q:\n%s", k, out)
		}
	}
	var detail struct {
		Replies []struct {
			Code string `json:"code"`
			Time string `json:"time"`
		} `json:"replies"`
		Attachments []struct {
			ID      int64  `json:"id"`
			Message int64  `json:"message"`
			Name    string `json:"name"`
			Size    int64  `json:"size"`
			SHA256  string `json:"sha256"`
			Role    string `json:"role"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal([]byte(out), &detail); err != nil {
		t.Fatal(err)
	}
	if len(detail.Replies) != 1 || detail.Replies[0].Code != "100" || detail.Replies[0].Time == "" {
		t.Errorf("replies: %+v", detail.Replies)
	}
	want := map[string][]byte{"aangifte.xbrl": demo.VATReturn, "toelichting.pdf": pdf, "reply.xml": reply1, "REPLY.xml": reply2}
	if len(detail.Attachments) != 4 {
		t.Fatalf("attachments: %+v, want the message's two files and one of each reply document", detail.Attachments)
	}
	var pdfID int64
	for _, a := range detail.Attachments {
		s := sha256.Sum256(want[a.Name])
		if a.ID == 0 || a.Size != int64(len(want[a.Name])) || a.SHA256 != hex.EncodeToString(s[:]) {
			t.Errorf("attachment %+v does not describe its file", a)
		}
		if a.Name == "toelichting.pdf" {
			pdfID = a.ID
		}
	}
	if r := detail.Attachments; r[0].Role != "declaration" || r[1].Role != "attachment" || r[2].Role != "reply" || r[2].Message == n {
		t.Errorf("roles: %+v", r)
	}

	dir := filepath.Join(t.TempDir(), "out")
	out, err = run(t, "attachment", "save", itoa(n), "--out", dir)
	if err != nil {
		t.Fatal(err)
	}
	paths := strings.Fields(out)
	if len(paths) != 4 {
		t.Fatalf("want four paths printed, got:\n%s", out)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Fatalf("want four files (two reply.xml whose names differ only in case both kept), got %v", entries)
	}
	got := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || filepath.Dir(p) != dir {
			t.Fatalf("%s: %v", p, err)
		}
		got[filepath.Base(p)] = b
	}
	for name, content := range map[string][]byte{"aangifte.xbrl": demo.VATReturn, "toelichting.pdf": pdf, "reply.xml": reply1} {
		if !bytes.Equal(got[name], content) {
			t.Errorf("%s is not written byte for byte", name)
		}
	}
	var clash string
	for name := range got {
		if strings.HasPrefix(name, "REPLY-") && strings.HasSuffix(name, ".xml") {
			clash = name
		}
	}
	if clash == "" || !bytes.Equal(got[clash], reply2) {
		t.Errorf("the second reply.xml must be kept under a name of its own: %v", paths)
	}

	// Saved again: refused, and nothing is touched.
	if err := os.WriteFile(filepath.Join(dir, "toelichting.pdf"), []byte("changed by the operator"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "attachment", "save", itoa(n), "--out", dir); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("an existing file must not be overwritten: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "toelichting.pdf")); string(b) != "changed by the operator" {
		t.Error("an existing file was overwritten")
	}

	one := t.TempDir()
	out, err = run(t, "attachment", "save", itoa(n), "--id", itoa(pdfID), "--out", one)
	if err != nil || strings.TrimSpace(out) != filepath.Join(one, "toelichting.pdf") {
		t.Fatalf("--id: %v\n%s", err, out)
	}
	if _, err := run(t, "attachment", "save", itoa(n), "--id", "999999999", "--out", one); err == nil || !strings.Contains(err.Error(), "no file with id") {
		t.Errorf("an unknown id: %v", err)
	}

	onb := t.TempDir()
	out, err = run(t, "attachment", "save", itoa(res.Unknown[0]), "--out", onb)
	if err != nil {
		t.Fatal(err)
	}
	p := strings.TrimSpace(out)
	if b, _ := os.ReadFile(p); filepath.Dir(p) != onb || !bytes.Equal(b, onbDoc) {
		t.Errorf("the ONB's file must be saved inside the folder: %q", p)
	}

	// The full Berichtactie in show, bounded in what the workflow loads.
	m2 := queueVAT(t, st, "NL001000044B37", "2026-11")
	plan2, err := st.BeginDelivery(ctx, m2)
	if err != nil {
		t.Fatal(err)
	}
	long := "ALS100 " + strings.Repeat("the certificate is not known; ", 150) + "\nsecond line"
	if err := st.RecordSendFailed(ctx, m2, plan2.Attempt, long); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "show", itoa(m2), "--json")
	if err != nil {
		t.Fatal(err)
	}
	var failed struct {
		Action string `json:"action"`
		Errors []struct {
			Description string `json:"description"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &failed); err != nil {
		t.Fatal(err)
	}
	if failed.Action != long {
		t.Errorf("show --json must hold the whole action, got %d of %d characters", len(failed.Action), len(long))
	}
	if len(failed.Errors) != 1 || !strings.HasSuffix(failed.Errors[0].Description, "second line") {
		t.Errorf("show --json lacks the F line: %+v", failed.Errors)
	}
	d, err := st.Declaration(ctx, m2)
	if err != nil {
		t.Fatal(err)
	}
	if utf8.RuneCountInString(d.Action) != pipeline.MaxActionInState || !strings.HasPrefix(d.Action, "ALS100 ") || !strings.HasSuffix(d.Action, "…") {
		t.Errorf("the loaded action must be clipped to %d runes, marked: %d", pipeline.MaxActionInState, utf8.RuneCountInString(d.Action))
	}
	if len(d.Errors) != 1 || utf8.RuneCountInString(d.Errors[0].Description) != pipeline.MaxErrorLenInState || len(d.Files) != 1 ||
		d.Files[0].Name != "aangifte.xbrl" || d.LastStatusChange.IsZero() {
		t.Errorf("loaded: %+v", d)
	}
}

// pflag takes the first back-quoted word of a flag's usage as its value name: the help must
// show `--id ID`, not a word from an example command.
func TestAttachmentSaveHelpNamesTheID(t *testing.T) {
	out, err := run(t, "attachment", "save", "--help")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "--id ID ") || strings.Contains(out, "`") {
		t.Errorf("help of --id:\n%s", out)
	}
}
