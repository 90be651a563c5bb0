package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"koerier/bank/simulator"
	"koerier/internal/secrets"
	"koerier/store"
)

// keyPair is an ed25519 key as `ssh-keygen -t ed25519` writes it (OpenSSH PEM), with
// its public half as an authorized_keys line.
func keyPair(t *testing.T, passphrase string) (private []byte, public string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
}

// pemBody is the base64 body of a PEM key: what must never be printed.
func pemBody(t *testing.T, key []byte) string {
	t.Helper()
	block, _ := pem.Decode(key)
	if block == nil {
		t.Fatal("not PEM")
	}
	return strings.Split(string(key), "\n")[1]
}

func bankProfileOf(t *testing.T, st *store.Store, env string) (store.BankProfile, error) {
	t.Helper()
	e, err := st.Environment(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	return st.BankProfile(context.Background(), e.ID)
}

// A private key is never taken as a flag value (ps, shell history), and the refusal
// does not repeat it; contradicting flags are refused. All of it before anything is
// opened (the database here does not answer).
func TestBankProfileRefusesAKeyOnTheCommandLine(t *testing.T) {
	catalogEnv(t)
	t.Setenv("KOERIER_DATABASE_URL", "postgres://postgres@127.0.0.1:1/koerier?sslmode=disable&connect_timeout=2")
	const secret = "AAAAC3NzaC1lZDI1NTE5AAAAIhunter2"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"environments", "set", "acme", "--sftp-key", secret}, "--sftp-key-file FILE"},
		{[]string{"environments", "add", "acme", "--sftp", "bank.example:22", "--private-key=" + secret}, "visible in ps"},
		{[]string{"environments", "set", "acme", "--sftp-password", secret}, "with a key, not a password"},
	} {
		_, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "is refused") {
			t.Errorf("%v: got %v, want a refusal naming %q", c.args, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%v: the refusal repeats the key: %v", c.args, err)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"environments", "set", "acme", "--local-bank", "--sftp", "h:22"}, "leave out --sftp"},
		{[]string{"environments", "set", "acme", "--local-bank", "--no-bank"}, "contradict"},
		{[]string{"environments", "set", "acme", "--no-bank", "--sftp-user", "u"}, "leave out --sftp-user"},
		{[]string{"environments", "set", "acme", "--sftp-key-file", ""}, "name the file"},
	} {
		if _, err := run(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.args, err, c.want)
		}
	}
}

// --local-bank without the settings of `make run` says what to do, and stores nothing:
// no environment is added, and an existing one keeps having no bank profile.
func TestLocalBankWithoutTheSimulatorGivesAdvice(t *testing.T) {
	catalogEnv(t)
	url := useDatabase(t)
	t.Setenv(envDevBank, "")
	t.Setenv(envDevBankControl, "")
	_, err := run(t, "environments", "add", "verkoop", "--local-bank")
	for _, want := range []string{envDevBank, envDevBankControl, "make run", "source .koerier/env.sh"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v, want advice naming %q", err, want)
		}
	}
	st := keyStore(t, url)
	if _, err := st.Environment(context.Background(), "verkoop"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the environment was added although its bank profile could not be made: %v", err)
	}
	if _, err := run(t, "environments", "add", "verkoop"); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envDevBank, "127.0.0.1:2222") // one of the two is not enough
	if _, err := run(t, "environments", "set", "verkoop", "--local-bank"); err == nil || !strings.Contains(err.Error(), envDevBankControl) ||
		strings.Contains(err.Error(), envDevBank+",") {
		t.Fatalf("set --local-bank: %v", err)
	}
	if e, err := st.Environment(context.Background(), "verkoop"); err != nil || e.HasBank {
		t.Fatalf("verkoop has a bank profile after a refused --local-bank: %+v %v", e, err)
	}
}

// The private key comes from a file, is checked before anything is stored, is stored
// encrypted and never printed; flags not given keep the stored profile; a new server
// needs its host key pinned; the schedule follows the profile; the list shows the
// server and the pinned host key's fingerprint, never the key.
func TestBankProfileFromAKeyFile(t *testing.T) {
	catalogEnv(t)
	url := useDatabase(t)
	useTemporal(t)
	t.Setenv(secrets.EnvVar, secrets.NewKey())
	ctx := context.Background()
	key, public := keyPair(t, "")
	keyFile := writeFile(t, "id_ed25519", key)
	_, hostPublic := keyPair(t, "")
	hostKey := hostPublic
	locked, _ := keyPair(t, "sesam")

	st := keyStore(t, url)
	for _, c := range []struct {
		file, want string
	}{
		{writeFile(t, "id_ed25519.pub", []byte(public+"\n")), "holds a public key"},
		{writeFile(t, "locked", locked), "protected by a passphrase"},
		{writeFile(t, "notes.txt", []byte("hello\n")), "holds no private key"},
		{t.TempDir() + "/missing", "no such file"},
	} {
		_, err := run(t, "environments", "add", "acme", "--sftp", "bank.example:2222", "--sftp-user", "acme01", "--sftp-key-file", c.file,
			"--sftp-host-key", hostKey)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("key file %s: got %v, want %q", c.file, err, c.want)
		}
		if _, err := st.Environment(ctx, "acme"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the environment was added although its key file was refused: %v", err)
		}
	}
	if _, err := run(t, "environments", "add", "acme", "--sftp", "bank.example:2222", "--sftp-user", "acme01"); err == nil ||
		!strings.Contains(err.Error(), "--sftp-key-file F, --sftp-host-key KEY") {
		t.Fatalf("a profile without key and host key: %v", err)
	}

	out, errOut, err := runIn(t, "", "environments", "add", "acme", "--sftp", "bank.example:2222", "--sftp-user", "acme01", "--sftp-key-file", keyFile,
		"--sftp-host-key", hostKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"environment acme added", "bank profile SFTP acme01@bank.example:2222", "host key " + store.HostKeyFingerprint(hostKey),
		"private key stored encrypted", "the bank must have this public key registered for user acme01: " + public,
		"schedule koerier-bank-acme created"} {
		if !strings.Contains(out, want) {
			t.Errorf("add lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, pemBody(t, key)) || strings.Contains(out+errOut, "PRIVATE KEY") {
		t.Fatalf("add printed the private key:\n%s%s", out, errOut)
	}
	p, err := bankProfileOf(t, st, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if string(p.PrivateKey) != strings.TrimSpace(string(key)) || p.Host != "bank.example" || p.Port != 2222 || p.User != "acme01" || p.Local ||
		p.UploadDir != store.DefaultBankUploadDir {
		t.Fatalf("stored profile: %+v", p)
	}

	// Flags not given keep the stored values, the key among them.
	if out, err := run(t, "environments", "set", "acme", "--upload-dir", "in/koerier", "--archive-dir", "in/archief"); err != nil ||
		!strings.Contains(out, "upload=in/koerier") || !strings.Contains(out, "schedule koerier-bank-acme updated") {
		t.Fatalf("set --upload-dir: %v\n%s", err, out)
	}
	if p, err = bankProfileOf(t, st, "acme"); err != nil || string(p.PrivateKey) != strings.TrimSpace(string(key)) || p.User != "acme01" ||
		p.UploadDir != "in/koerier" || p.ArchiveDir != "in/archief" {
		t.Fatalf("after set --upload-dir: %+v %v", p, err)
	}
	// Another server with the old pin would be refused at connect: it is refused now.
	if _, err := run(t, "environments", "set", "acme", "--sftp", "other-bank.example:22"); err == nil || !strings.Contains(err.Error(), "--sftp-host-key") {
		t.Fatalf("another server without its host key: %v", err)
	}

	listed, err := run(t, "environments", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		Name string    `json:"name"`
		Bank *bankView `json:"bank"`
	}
	if err := json.Unmarshal([]byte(listed), &rows); err != nil || len(rows) != 1 || rows[0].Bank == nil {
		t.Fatalf("list --json: %v\n%s", err, listed)
	}
	if b := rows[0].Bank; b.SFTP != "bank.example:2222" || b.User != "acme01" || b.HostKeyFingerprint != store.HostKeyFingerprint(hostKey) || b.Local {
		t.Fatalf("listed bank profile: %+v", b)
	}
	text, err := run(t, "environments", "list")
	if err != nil || !strings.Contains(text, "acme01@bank.example:2222") || !strings.Contains(text, store.HostKeyFingerprint(hostKey)) {
		t.Fatalf("list: %v\n%s", err, text)
	}
	if strings.Contains(listed+text, pemBody(t, key)) {
		t.Fatal("the list shows the private key")
	}

	if out, err := run(t, "environments", "set", "acme", "--no-bank"); err != nil || !strings.Contains(out, "no bank profile") ||
		!strings.Contains(out, "schedule koerier-bank-acme removed") {
		t.Fatalf("set --no-bank: %v\n%s", err, out)
	}
	if _, err := bankProfileOf(t, st, "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the profile is still there: %v", err)
	}
}

// --local-bank on the real simulator: the environment's new key is registered for user
// NAME, the simulator's host key is pinned, and the stored profile logs in over SFTP.
// Running it again keeps the key (nothing changes); --local-bank after a real profile
// makes a new key for the simulator.
func TestLocalBankOnTheSimulator(t *testing.T) {
	catalogEnv(t)
	url := useDatabase(t)
	useTemporal(t)
	t.Setenv(secrets.EnvVar, secrets.NewKey())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := logrus.New()
	log.SetOutput(io.Discard)
	sim, err := simulator.Start(ctx, simulator.Options{Dir: t.TempDir(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	t.Setenv(envDevBank, sim.Addr())
	t.Setenv(envDevBankControl, sim.ControlURL())

	out, err := run(t, "environments", "add", "verkoop", "--local-bank")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bank profile SFTP verkoop@" + sim.Addr(), "host key " + sim.Fingerprint() + " pinned", "archive=archive",
		"on the local bank simulator", "schedule koerier-bank-verkoop created"} {
		if !strings.Contains(out, want) {
			t.Errorf("add --local-bank lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PRIVATE KEY") {
		t.Fatalf("add --local-bank printed the key:\n%s", out)
	}
	st := keyStore(t, url)
	p, err := bankProfileOf(t, st, "verkoop")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Local || p.User != "verkoop" || p.HostKey != sim.HostKey() || p.ArchiveDir != "archive" {
		t.Fatalf("stored profile: %+v", p)
	}
	signer, err := ssh.ParsePrivateKey(p.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	registered := false
	for _, u := range sim.Users() {
		for _, f := range u.Fingerprints {
			registered = registered || u.User == "verkoop" && f == ssh.FingerprintSHA256(signer.PublicKey())
		}
	}
	if !registered {
		t.Fatalf("the key is not registered at the simulator: %+v", sim.Users())
	}
	// The stored profile logs in, pinning the stored host key, and sees its folders.
	pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(p.HostKey))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ssh.Dial("tcp", sim.Addr(), &ssh.ClientConfig{User: p.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(pinned), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("log in with the stored profile: %v", err)
	}
	c, err := sftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stat(p.UploadDir); err != nil {
		t.Fatalf("upload folder: %v", err)
	}
	c.Close()
	conn.Close()

	// Again: the same key, so nothing changes.
	if out, err := run(t, "environments", "set", "verkoop", "--local-bank"); err != nil || !strings.Contains(out, "schedule koerier-bank-verkoop updated") {
		t.Fatalf("set --local-bank again: %v\n%s", err, out)
	}
	again, err := bankProfileOf(t, st, "verkoop")
	if err != nil || string(again.PrivateKey) != string(p.PrivateKey) {
		t.Fatalf("set --local-bank again changed the key: %v", err)
	}
	lines, err := st.ReadLog(ctx, store.LogFilter{Environment: "verkoop", Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	profileLines := 0
	for _, l := range lines {
		if strings.Contains(l.Description, "bank profile of environment verkoop") {
			profileLines++
		}
	}
	if profileLines != 1 {
		t.Fatalf("%d log lines about the bank profile, want 1 (set again changes nothing): %+v", profileLines, lines)
	}

	// A simulator at another address than KOERIER_DEV_BANK says so.
	t.Setenv(envDevBank, "127.0.0.1:1")
	if _, err := run(t, "environments", "set", "verkoop", "--local-bank"); err == nil || !strings.Contains(err.Error(), "serves SFTP on "+sim.Addr()) {
		t.Fatalf("a stale KOERIER_DEV_BANK: %v", err)
	}
}
