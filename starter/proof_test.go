package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"koerier/digipoort"
	"koerier/digipoort/simulator"
	"koerier/domain"
	"koerier/internal/testdb"
	"koerier/store"
)

// sharedFixture reads a real captured Digipoort response from ../shared/digipoort/fixtures
// (next to the repository), skipping only where ../shared is absent.
func sharedFixture(t *testing.T, name string) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the starter's tests run from starter/, below go.mod: %v", err)
	}
	shared := filepath.Join(root, "..", "shared")
	if _, err := os.Stat(shared); os.IsNotExist(err) {
		t.Skipf("%s is absent: Logius' captured responses are not available here", shared)
	}
	path := filepath.Join(shared, "digipoort", "fixtures", name)
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// writePEM writes certificates as a PEM file and returns its path.
func writePEM(t *testing.T, certs ...*x509.Certificate) string {
	t.Helper()
	var b bytes.Buffer
	for _, c := range certs {
		if err := pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "trusted.pem")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// embeddedSigner is the certificate in a response's BinarySecurityToken. The tests trust
// it explicitly, by writing it to a PEM file: the command itself never does.
func embeddedSigner(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, "X509v3\"")
	if i < 0 {
		t.Fatal("no X509v3 BinarySecurityToken")
	}
	s = s[i:]
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s[strings.IndexByte(s, '>')+1:strings.Index(s, "</")]), ""))
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// otherCertificate is a self-signed certificate that signed nothing.
func otherCertificate(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "not Digipoort"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The real response Logius' conformance environment signed in 2021 verifies against
// its signing certificate (expired since: what counts is that it was valid when it
// signed); the same response with one byte changed does not, and the command exits
// non-zero. Without a trusted certificate it refuses to say anything.
func TestDigipoortVerifyRealResponses(t *testing.T) {
	valid := sharedFixture(t, "valid-deliver-response.xml")
	tampered := sharedFixture(t, "tampered-deliver-response.xml")
	trust := writePEM(t, embeddedSigner(t, valid))
	setEnv(t, nil)

	t.Run("text", func(t *testing.T) {
		stdout, _, err := runDigipoortCLI(t, "digipoort", "verify", valid, "--trust", trust)
		if err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		for _, want := range []string{"verified", "700627b6-383e-4d8d-809f-b066845b36e0", "Happyflow", "Fi:001000044B37",
			"2021-03-07T11:37:39.702Z (tijdstempelAangeleverd)", "signed at", "2021-03-07T11:37:39.708Z", "cs-bedrijven.procesinfrastructuur.nl",
			"expired since", "no statuses in this response", "derived status: sent"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, stdout)
			}
		}
	})
	t.Run("json, trusted through the service's setting", func(t *testing.T) {
		t.Setenv(digipoort.EnvSigningCert, trust)
		stdout, stderr, err := runDigipoortCLI(t, "digipoort", "verify", valid, "--json")
		if err != nil || stderr != "" {
			t.Fatalf("%v %s\n%s", err, stderr, stdout)
		}
		v := decodeOne(t, stdout)
		signer, _ := v["signer"].(map[string]any)
		if v["verified"] != true || v["derived_status"] != "sent" || v["operation"] != "aanleveren" || v["kenmerk"] != "700627b6-383e-4d8d-809f-b066845b36e0" ||
			v["signed_at"] != "2021-03-07T11:37:39.708Z" || v["delivered_at"] != "2021-03-07T11:37:39.702Z" || signer == nil ||
			!strings.Contains(signer["subject"].(string), "cs-bedrijven") || len(statusCodes(t, v)) != 0 {
			t.Fatalf("json: %v", v)
		}
		sum := sha256.Sum256(mustRead(t, valid))
		if v["sha256"] != hex.EncodeToString(sum[:]) {
			t.Fatalf("sha256 %v", v["sha256"])
		}
	})
	t.Run("tampered", func(t *testing.T) {
		stdout, _, err := runDigipoortCLI(t, "digipoort", "verify", tampered, "--trust", trust, "--json")
		if err == nil || !strings.Contains(err.Error(), "signature") {
			t.Fatalf("want a non-zero exit that names the signature, got %v", err)
		}
		v := decodeOne(t, stdout)
		if v["verified"] != false || !strings.Contains(v["reason"].(string), "signature") || v["derived_status"] != nil ||
			len(statusCodes(t, v)) != 0 || v["kenmerk"] != nil {
			t.Fatalf("json of a tampered response: %v", v)
		}
		stdout, _, err = runDigipoortCLI(t, "digipoort", "verify", tampered, "--trust", trust)
		if err == nil || !strings.Contains(stdout, "NOT VERIFIED") || strings.Contains(stdout, "700627b6") {
			t.Fatalf("text of a tampered response: %v\n%s", err, stdout)
		}
	})
	t.Run("standard input", func(t *testing.T) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetIn(bytes.NewReader(mustRead(t, valid)))
		root.SetArgs([]string{"digipoort", "verify", "-", "--trust", trust})
		if err := root.ExecuteContext(context.Background()); err != nil || !strings.Contains(out.String(), "-: verified") {
			t.Fatalf("%v\n%s", err, out.String())
		}
	})
	t.Run("untrusted signer", func(t *testing.T) {
		_, _, err := runDigipoortCLI(t, "digipoort", "verify", valid, "--trust", writePEM(t, otherCertificate(t)))
		if err == nil || !strings.Contains(err.Error(), "not trusted") {
			t.Fatalf("want a refusal of the untrusted signer, got %v", err)
		}
	})
	t.Run("nothing trusted", func(t *testing.T) {
		_, _, err := runDigipoortCLI(t, "digipoort", "verify", valid)
		if err == nil || !strings.Contains(err.Error(), "--trust") || !strings.Contains(err.Error(), digipoort.EnvSigningCert) {
			t.Fatalf("want an error that says how to name the trusted certificate, got %v", err)
		}
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// simAnswers delivers a return that Digipoort cannot hand to the authority through
// the simulator (mutual TLS) and returns the signed answers the client recorded (the
// delivery's, and the status answer that shows the whole flow) and the statuses the
// client read from the latter.
func simAnswers(t *testing.T) (*simulator.Sim, []digipoort.SignedResponse, []digipoort.Status) {
	t.Helper()
	sctx, cancel := context.WithCancel(context.Background())
	sim, err := simulator.Start(sctx, simulator.Options{Dir: t.TempDir(), StepInterval: 2 * time.Millisecond})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); sim.Close() })
	cfg, err := sim.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := digipoort.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var mu sync.Mutex
	var got []digipoort.SignedResponse
	ctx := digipoort.WithResponseRecorder(context.Background(), func(r digipoort.SignedResponse) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r)
	})
	resp, err := c.Deliver(ctx, digipoort.DeliverRequest{Berichtsoort: "Omzetbelasting", Aanleverkenmerk: "Afleverfout-proof",
		Belanghebbende: digipoort.Identity{Nummer: "001000044B37", Type: "Fi"}, Rol: "Bedrijf", MimeType: "text/xml", Bestandsnaam: "ob.xbrl",
		Inhoud: []byte(`<xbrli:xbrl xmlns:xbrli="http://www.xbrl.org/2003/instance"/>`)})
	if err != nil {
		t.Fatal(err)
	}
	var ss []digipoort.Status
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ss, err = c.Statuses(ctx, resp.Kenmerk, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(ss); n > 0 && ss[n-1].Code == "410" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the simulator's flow did not end")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return sim, []digipoort.SignedResponse{got[0], got[len(got)-1]}, ss
}

// A status answer shows every status in it with the status Koerier derives, in text
// and in JSON.
func TestDigipoortVerifyShowsStatuses(t *testing.T) {
	sim, answers, statuses := simAnswers(t)
	setEnv(t, nil)
	file := filepath.Join(t.TempDir(), "status.xml")
	if err := os.WriteFile(file, answers[1].Body, 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runDigipoortCLI(t, "digipoort", "verify", file, "--trust", sim.Paths().SigningCert, "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	v := decodeOne(t, stdout)
	got := statusCodes(t, v)
	var want []string
	for _, s := range statuses {
		want = append(want, s.Code)
	}
	if !slices.Equal(got, want) || v["operation"] != "getStatussenProces" {
		t.Fatalf("statuses %v, want %v: %v", got, want, v)
	}
	codes := make([]domain.StatusCode, 0, len(got))
	for _, x := range v["statuses"].([]any) {
		s := x.(map[string]any)
		codes = append(codes, domain.StatusCode{Code: s["code"].(string), Foutcode: s["error_code"].(string)})
	}
	derived := domain.DeriveStatus(codes)
	if v["derived_status"] != string(derived) || !derived.IsFinal() {
		t.Fatalf("derived_status %v, want %s (final)", v["derived_status"], derived)
	}
	last := statuses[len(statuses)-1]
	stdout, _, err = runDigipoortCLI(t, "digipoort", "verify", file, "--trust", sim.Paths().SigningCert)
	if err != nil || last.ErrorCode == "" || !strings.Contains(stdout, last.ErrorCode) || !strings.Contains(stdout, "derived status: "+string(derived)) {
		t.Fatalf("%v\n%s", err, stdout)
	}
}

// `digipoort proof` writes a message's kept answers byte for byte, in order, with a
// README and SHA256SUMS; the files verify with `digipoort verify`; nothing is ever
// overwritten.
func TestDigipoortProof(t *testing.T) {
	sim, answers, _ := simAnswers(t)
	setEnv(t, nil)
	url := testdb.New(t)
	t.Setenv("KOERIER_DATABASE_URL", url)
	st, err := store.Open(context.Background(), url, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if _, err := st.AddEnvironment(ctx, store.Environment{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	queue := func(period string) int64 {
		q, err := st.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypeVAT, Subject: "NL001000044B37", Period: period,
			Attachments: []domain.Attachment{{FileName: "aangifte.xbrl", MimeType: "application/xml",
				Content: []byte(`<?xml version="1.0"?><xbrli:xbrl xmlns:xbrli="http://www.xbrl.org/2003/instance"></xbrli:xbrl>`)}}})
		if err != nil {
			t.Fatal(err)
		}
		return q.Number
	}
	n := queue("2026-10")
	var keep []store.SignedResponse
	for _, a := range answers {
		k := "K-proof"
		keep = append(keep, store.SignedResponse{MessageNumber: n, Attempt: 1, Kenmerk: &k, Operation: a.Op, RequestMessageID: a.RequestMessageID,
			ReceivedAt: a.Received, Body: a.Body})
	}
	if _, err := st.KeepSignedResponses(ctx, keep); err != nil {
		t.Fatal(err)
	}
	t.Setenv(digipoort.EnvSigningCert, sim.Paths().SigningCert)
	dir := filepath.Join(t.TempDir(), "proof")
	num := func(n int64) string { return strconv.FormatInt(n, 10) }

	stdout, _, err := runDigipoortCLI(t, "digipoort", "proof", num(n), "--dir", dir)
	if err != nil || !strings.Contains(stdout, "wrote 2 signed Digipoort response(s) of message "+num(n)) || !strings.Contains(stdout, dir) {
		t.Fatalf("proof: %v\n%s", err, stdout)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	first := "01-aanleveren-attempt1-" + answers[0].Received.UTC().Format("20060102T150405.000Z") + ".xml"
	second := "02-getStatussenProces-attempt1-" + answers[1].Received.UTC().Format("20060102T150405.000Z") + ".xml"
	if want := []string{first, second, "README.txt", "SHA256SUMS"}; !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	for i, name := range []string{first, second} {
		if !bytes.Equal(mustRead(t, filepath.Join(dir, name)), answers[i].Body) {
			t.Fatalf("%s is not byte for byte the answer Digipoort sent", name)
		}
	}
	readme := string(mustRead(t, filepath.Join(dir, "README.txt")))
	sum := sha256.Sum256(answers[0].Body)
	for _, want := range []string{"message          " + num(n), "kenmerk", "aanleverkenmerk", first, second, hex.EncodeToString(sum[:]),
		"received       " + answers[0].Received.UTC().Format(proofTime), "verified now   yes", "statuses 105 100", "starter digipoort verify",
		"sha256sum -c SHA256SUMS"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README lacks %q:\n%s", want, readme)
		}
	}
	if sums := string(mustRead(t, filepath.Join(dir, "SHA256SUMS"))); !strings.Contains(sums, hex.EncodeToString(sum[:])+"  "+first+"\n") {
		t.Errorf("SHA256SUMS:\n%s", sums)
	}
	t.Setenv(digipoort.EnvSigningCert, "")
	stdout, _, err = runDigipoortCLI(t, "digipoort", "verify", filepath.Join(dir, first), "--trust", sim.Paths().SigningCert)
	if err != nil || !strings.Contains(stdout, "Afleverfout-proof") {
		t.Fatalf("verify the exported answer: %v\n%s", err, stdout)
	}

	// A second export to the same folder refuses and leaves the files as they were.
	before := mustRead(t, filepath.Join(dir, "README.txt"))
	_, _, err = runDigipoortCLI(t, "digipoort", "proof", num(n), "--dir", dir)
	if err == nil || !strings.Contains(err.Error(), "refusing to overwrite") || !strings.Contains(err.Error(), first) {
		t.Fatalf("second export: %v", err)
	}
	if !bytes.Equal(before, mustRead(t, filepath.Join(dir, "README.txt"))) {
		t.Fatal("the second export changed the README")
	}

	// A message without answers, and one that does not exist, write nothing.
	empty := queue("2026-11")
	emptyDir := filepath.Join(t.TempDir(), "none")
	if _, _, err := runDigipoortCLI(t, "digipoort", "proof", num(empty), "--dir", emptyDir); err == nil ||
		!strings.Contains(err.Error(), "no signed Digipoort responses") {
		t.Fatalf("message without answers: %v", err)
	}
	if _, err := os.Stat(emptyDir); !os.IsNotExist(err) {
		t.Fatalf("a folder was created for nothing: %v", err)
	}
	if _, _, err := runDigipoortCLI(t, "digipoort", "proof", "999", "--dir", emptyDir); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("unknown message: %v", err)
	}
}
