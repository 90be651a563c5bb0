package store_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"koerier/internal/testdb"
	"koerier/store"
)

// sshKey is a fresh ed25519 key: its PEM (OpenSSH form, as ssh-keygen writes it) and
// its public key as an authorized_keys line.
func sshKey(t *testing.T) (pemBytes []byte, public string, fingerprint string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))), ssh.FingerprintSHA256(sp)
}

func bankProfile(t *testing.T) (store.BankProfile, string) {
	t.Helper()
	key, _, _ := sshKey(t)
	_, hostKey, hostFP := sshKey(t)
	return store.BankProfile{Host: "sftp.bank.example", Port: 2222, User: "acme-h2h", PrivateKey: key, HostKey: hostKey + " bank-host"}, hostFP
}

// Issue 14: the private key is stored sealed, read back with the store's key, never
// logged; an update without a key keeps it; a changed host key is said in so many words.
func TestBankProfileRoundTripSealsTheKey(t *testing.T) {
	url := testdb.New(t)
	f := newMailStore(t, url, newBox(t))
	acme := f.env("acme")
	if acme.HasBank || acme.Profile().HasBank {
		t.Fatalf("a new environment has no bank: %+v", acme)
	}
	p, hostFP := bankProfile(t)
	if err := f.SetBankProfile(ctx, "acme", p, "tester"); err != nil {
		t.Fatal(err)
	}
	got, err := f.BankProfile(ctx, acme.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := p
	want.HostKey = strings.TrimSuffix(p.HostKey, " bank-host") // stored without its comment
	want.UploadDir, want.DownloadDir, want.ProcessedDir = "upload", "download", "processed"
	if !bytes.Equal(got.PrivateKey, want.PrivateKey) {
		t.Fatal("the private key read back is not the one stored")
	}
	got.PrivateKey, want.PrivateKey = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("profile read back:\n got %+v\nwant %+v", got, want)
	}
	var raw []byte
	if err := f.DB().GetContext(ctx, &raw, `SELECT private_key FROM environment_bank_profiles WHERE environment_id = $1`, acme.ID); err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 || bytes.Contains(raw, []byte("PRIVATE KEY")) || bytes.Contains(raw, p.PrivateKey[40:80]) {
		t.Fatal("the private key is not sealed in the table")
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE description LIKE '%PRIVATE KEY%' OR information LIKE '%PRIVATE KEY%'`); n != 0 {
		t.Fatalf("the private key is in the log (%d lines)", n)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE description LIKE 'bank profile of environment acme set by tester:%'
		AND description LIKE '%acme-h2h@sftp.bank.example:2222%' AND description LIKE '%host key pinned to ' || $1 || '%'
		AND description LIKE '%private key set (the bank must know its public key SHA256:%'`, hostFP); n != 1 {
		t.Fatalf("the I line of the new profile: %d", n)
	}
	env := f.mustEnv("acme")
	if !env.HasBank || !env.Profile().HasBank {
		t.Fatalf("the environment does not report its bank profile: %+v", env)
	}

	// No key given keeps the stored one; only what changed is logged.
	sealed := raw
	p2 := p
	p2.PrivateKey, p2.Port = nil, 22
	if err := f.SetBankProfile(ctx, "acme", p2, "tester"); err != nil {
		t.Fatal(err)
	}
	if got, err := f.BankProfile(ctx, acme.ID); err != nil || !bytes.Equal(got.PrivateKey, p.PrivateKey) || got.Port != 22 {
		t.Fatalf("after an update without a key: port %d, %v", got.Port, err)
	}
	if err := f.DB().GetContext(ctx, &raw, `SELECT private_key FROM environment_bank_profiles WHERE environment_id = $1`, acme.ID); err != nil ||
		!bytes.Equal(raw, sealed) {
		t.Fatalf("the stored key changed though none was given (%v)", err)
	}
	var line string
	if err := f.DB().GetContext(ctx, &line, `SELECT description FROM communication_log WHERE description LIKE 'bank profile of environment acme changed%'`); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(line, "SFTP acme-h2h@sftp.bank.example:2222 → acme-h2h@sftp.bank.example:22") || strings.Contains(line, "key") {
		t.Fatalf("change line: %s", line)
	}
	// The same key again is no change and no line.
	before := f.count(`SELECT count(*) FROM communication_log`)
	p2.PrivateKey = p.PrivateKey
	if err := f.SetBankProfile(ctx, "acme", p2, "tester"); err != nil {
		t.Fatal(err)
	}
	if after := f.count(`SELECT count(*) FROM communication_log`); after != before {
		t.Fatalf("setting the same profile again wrote %d line(s)", after-before)
	}

	// A changed host key is logged as such, old and new fingerprint; a fingerprint is a
	// pin as good as the key.
	_, _, newFP := sshKey(t)
	p2.HostKey = newFP
	if err := f.SetBankProfile(ctx, "acme", p2, "tester"); err != nil {
		t.Fatal(err)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE description LIKE '%host key changed from ' || $1 || ' to ' || $2 || '%'`,
		hostFP, newFP); n != 1 {
		t.Fatalf("the host key change is not logged explicitly (%d)", n)
	}
	if got, _ := f.BankProfile(ctx, acme.ID); got.HostKey != newFP {
		t.Fatalf("host key fingerprint stored as %q", got.HostKey)
	}

	// Another key cannot open it; no key says what to set.
	if _, err := newMailStore(t, url, newBox(t)).BankProfile(ctx, acme.ID); err == nil || !strings.Contains(err.Error(), "acme") {
		t.Fatalf("wrong key: %v", err)
	}
	nokey := newMailStore(t, url, nil)
	if _, err := nokey.BankProfile(ctx, acme.ID); err == nil || !strings.Contains(err.Error(), "KOERIER_SECRET_KEY") {
		t.Fatalf("no key, reading: %v", err)
	}
	nokey.env("beta")
	if err := nokey.SetBankProfile(ctx, "beta", p, "tester"); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "KOERIER_SECRET_KEY") {
		t.Fatalf("no key, setting: %v", err)
	}

	envs, err := f.BankEnvironments(ctx)
	if err != nil || len(envs) != 1 || envs[0].Name != "acme" || !envs[0].HasBank {
		t.Fatalf("bank environments: %+v %v", envs, err)
	}
	if err := f.ClearBankProfile(ctx, "acme", "tester"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.BankProfile(ctx, acme.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cleared profile: %v", err)
	}
	if envs, _ := f.BankEnvironments(ctx); len(envs) != 0 || f.mustEnv("acme").HasBank {
		t.Fatalf("a cleared profile still counts: %+v", envs)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE description LIKE 'bank profile of environment acme removed by tester%'`); n != 1 {
		t.Fatalf("the clear line: %d", n)
	}
}

func TestBankProfileRefusals(t *testing.T) {
	f := newMailStore(t, testdb.New(t), newBox(t))
	f.env("acme")
	_, pub, _ := sshKey(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakBlock, err := ssh.MarshalPrivateKey(weak, "")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		edit func(*store.BankProfile)
		want string
	}{
		"no host":         {func(p *store.BankProfile) { p.Host = "" }, "needs a host"},
		"host with port":  {func(p *store.BankProfile) { p.Host = "sftp.bank.example:22" }, "give the port apart"},
		"port":            {func(p *store.BankProfile) { p.Port = 70000 }, "port 70000"},
		"user":            {func(p *store.BankProfile) { p.User = "" }, "SFTP user"},
		"no key":          {func(p *store.BankProfile) { p.PrivateKey = nil }, "a private key is needed"},
		"public key":      {func(p *store.BankProfile) { p.PrivateKey = []byte(pub) }, "not a key in PEM or OpenSSH form"},
		"no host key":     {func(p *store.BankProfile) { p.HostKey = "" }, "host key is missing"},
		"bad host key":    {func(p *store.BankProfile) { p.HostKey = "ssh-ed25519 AAAAnotakey" }, "neither a public key nor a SHA256"},
		"bad fingerprint": {func(p *store.BankProfile) { p.HostKey = "SHA256:abc" }, "not a SHA256 fingerprint"},
		"same folders":    {func(p *store.BankProfile) { p.ProcessedDir = "download" }, "must differ"},
		"dotdot":          {func(p *store.BankProfile) { p.UploadDir = "../etc" }, "upload folder"},
		// What the bank channel would refuse to dial with is not stored either.
		"weak rsa key":      {func(p *store.BankProfile) { p.PrivateKey = pem.EncodeToMemory(weakBlock) }, "1024 bits"},
		"archive is upload": {func(p *store.BankProfile) { p.ArchiveDir = "upload" }, "ArchiveDir"},
		"bracketed host":    {func(p *store.BankProfile) { p.Host = "[::1]" }, "field Host"},
	} {
		p, _ := bankProfile(t)
		c.edit(&p)
		err := f.SetBankProfile(ctx, "acme", p, "tester")
		if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := f.count(`SELECT count(*) FROM environment_bank_profiles`); n != 0 {
		t.Fatalf("a refused profile was stored (%d)", n)
	}
	// A known_hosts line, as ssh-keyscan prints it, pins the key it holds.
	p, _ := bankProfile(t)
	p.HostKey = "[sftp.bank.example]:2222 " + pub
	if err := f.SetBankProfile(ctx, "acme", p, "tester"); err != nil {
		t.Fatal(err)
	}
	if got, err := f.BankProfile(ctx, f.mustEnv("acme").ID); err != nil || got.HostKey != pub {
		t.Fatalf("known_hosts line stored as %q (%v)", got.HostKey, err)
	}
	if _, err := f.RemoveEnvironment(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := f.SetBankProfile(ctx, "acme", p, "tester"); !errors.Is(err, store.ErrRefused) {
		t.Fatalf("removed environment: %v", err)
	}
	if err := f.SetBankProfile(ctx, "nobody", p, "tester"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown environment: %v", err)
	}
}
