package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/crypto/ssh"

	"koerier/bank/simulator"
	"koerier/internal/service"
	"koerier/store"
)

// The settings `make run` writes to .koerier/env.sh for the local bank simulator: its
// SFTP address and its control API.
const (
	envDevBank        = "KOERIER_DEV_BANK"
	envDevBankControl = "KOERIER_DEV_BANK_CONTROL"
)

// localArchiveDir is where the bank simulator moves the files it has taken: a look-up
// after an uncertain upload searches it.
const localArchiveDir = "archive"

// maxKeyFile bounds what is read as a private key: a wrong file (a log, a device) is
// not read whole. An OpenSSH RSA 16384 key is some 12 KiB.
const maxKeyFile = 64 << 10

// bankFlags are the bank profile options of `environments add` and `environments set`.
// The private key is read from a file, never taken as a flag value: that would leave it
// in ps and in the shell's history.
type bankFlags struct {
	local, none                                      bool
	sftp, user, keyFile, hostKey                     string
	uploadDir, downloadDir, processedDir, archiveDir string
	// Flags that exist only to refuse a key or password given on the command line.
	refused map[string]*string
}

// bankProfileFlags describe a profile on a real bank; --local-bank and --no-bank stand
// instead of all of them.
var bankProfileFlags = []string{"sftp", "sftp-user", "sftp-key-file", "sftp-host-key", "upload-dir", "download-dir", "processed-dir", "archive-dir"}

func (b *bankFlags) register(fs *pflag.FlagSet, withClear bool) {
	fs.BoolVar(&b.local, "local-bank", false, "a bank profile on the local bank simulator of make run: SFTP user NAME with a new ed25519 key, "+
		"the simulator's host key pinned (needs KOERIER_DEV_BANK and KOERIER_DEV_BANK_CONTROL: source .koerier/env.sh)")
	fs.StringVar(&b.sftp, "sftp", "", "the bank's host-to-host SFTP server, host:port")
	fs.StringVar(&b.user, "sftp-user", "", "the SFTP user the bank gave the environment")
	fs.StringVar(&b.keyFile, "sftp-key-file", "", "file holding the private key (PEM or OpenSSH, unencrypted) the environment logs in with; "+
		"stored encrypted, never printed; register its public key with the bank")
	fs.StringVar(&b.hostKey, "sftp-host-key", "", `the bank's host key to pin: "ssh-ed25519 AAAA…" as ssh-keyscan prints it, or its SHA256:… fingerprint`)
	fs.StringVar(&b.uploadDir, "upload-dir", "", "folder on the bank's server payment orders are uploaded to (default "+store.DefaultBankUploadDir+")")
	fs.StringVar(&b.downloadDir, "download-dir", "", "folder the bank writes its status reports to (default "+store.DefaultBankDownloadDir+")")
	fs.StringVar(&b.processedDir, "processed-dir", "", "folder fetched status reports are moved to (default "+store.DefaultBankProcessedDir+")")
	fs.StringVar(&b.archiveDir, "archive-dir", "", "folder the bank moves the payment orders it took to, if it does; searched after an "+
		"uncertain upload (default: none)")
	if withClear {
		fs.BoolVar(&b.none, "no-bank", false, "remove the bank profile: the environment no longer sends payment orders or fetches status reports")
	}
	b.refused = map[string]*string{}
	for _, name := range []string{"sftp-key", "private-key", "sftp-password"} {
		v := new(string)
		b.refused[name] = v
		fs.StringVar(v, name, "", "refused: give the private key in a file (--sftp-key-file)")
		_ = fs.MarkHidden(name)
	}
}

// given reports whether the command asks for a change of the bank profile.
func (b *bankFlags) given(cmd *cobra.Command) bool {
	for _, name := range append([]string{"local-bank", "no-bank"}, bankProfileFlags...) {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			return true
		}
	}
	return false
}

// check refuses what cannot go together before anything is read or opened; the
// refusal of a key flag never repeats its value.
func (b *bankFlags) check(cmd *cobra.Command) error {
	for _, name := range []string{"sftp-key", "private-key", "sftp-password"} {
		if !cmd.Flags().Changed(name) {
			continue
		}
		if name == "sftp-password" {
			return errors.New("--sftp-password is refused: Koerier logs in to the bank with a key, not a password; make one with " +
				"`ssh-keygen -t ed25519 -N '' -f KEY`, give --sftp-key-file KEY and register KEY.pub with the bank")
		}
		return fmt.Errorf("--%s is refused: a private key on the command line is visible in ps and kept in the shell's history; "+
			"put it in a file readable only by you and give --sftp-key-file FILE", name)
	}
	var profile []string
	for _, name := range bankProfileFlags {
		if cmd.Flags().Changed(name) {
			profile = append(profile, "--"+name)
		}
	}
	switch {
	case b.local && b.none:
		return errors.New("--local-bank and --no-bank contradict each other: give one")
	case b.none && len(profile) > 0:
		return fmt.Errorf("--no-bank removes the bank profile; leave out %s", strings.Join(profile, ", "))
	case b.local && len(profile) > 0:
		return fmt.Errorf("--local-bank sets the whole profile on the local bank simulator; leave out %s (or --local-bank)", strings.Join(profile, ", "))
	case cmd.Flags().Changed("sftp-key-file") && b.keyFile == "":
		return errors.New("--sftp-key-file: name the file that holds the private key")
	}
	if b.local {
		// Before anything is opened or stored: without the simulator nothing can be made.
		if _, _, err := localBankSettings(os.Getenv); err != nil {
			return err
		}
	}
	return nil
}

// profile is the bank profile the flags describe for a real bank. old is the stored
// profile (nil if none): flags not given keep its values, and no --sftp-key-file keeps
// its private key. It returns nil for --no-bank; --local-bank is localBankProfile's.
func (b *bankFlags) profile(cmd *cobra.Command, env string, old *store.BankProfile) (*store.BankProfile, error) {
	if b.none {
		return nil, nil
	}
	changed := cmd.Flags().Changed
	var p store.BankProfile
	onReal := old != nil && !old.Local
	if onReal {
		// A local profile is not the base of a real one: its server and key are the simulator's.
		p = *old
	}
	p.Local, p.PrivateKey = false, nil
	if changed("sftp") {
		host, port, err := hostPort("--sftp", b.sftp)
		if err != nil {
			return nil, err
		}
		if onReal && (host != old.Host || port != old.Port) && !changed("sftp-host-key") {
			return nil, fmt.Errorf("--sftp %s is another server than %s:%d: pin its host key too (--sftp-host-key, as the bank publishes it); "+
				"the old pin would refuse it", b.sftp, old.Host, old.Port)
		}
		p.Host, p.Port = host, port
	}
	if changed("sftp-user") {
		p.User = b.user
	}
	if changed("sftp-host-key") {
		p.HostKey = b.hostKey
	}
	for _, f := range []struct {
		name string
		v    string
		dst  *string
	}{{"upload-dir", b.uploadDir, &p.UploadDir}, {"download-dir", b.downloadDir, &p.DownloadDir},
		{"processed-dir", b.processedDir, &p.ProcessedDir}, {"archive-dir", b.archiveDir, &p.ArchiveDir}} {
		if changed(f.name) {
			*f.dst = f.v
		}
	}
	if b.keyFile != "" {
		key, err := readPrivateKey("--sftp-key-file", b.keyFile)
		if err != nil {
			return nil, err
		}
		p.PrivateKey = key
	}
	var missing []string
	if p.Host == "" {
		missing = append(missing, "--sftp HOST:PORT")
	}
	if p.User == "" {
		missing = append(missing, "--sftp-user U")
	}
	if !onReal && p.PrivateKey == nil {
		missing = append(missing, "--sftp-key-file F")
	}
	if p.HostKey == "" {
		missing = append(missing, "--sftp-host-key KEY")
	}
	if len(missing) > 0 {
		what := "has no bank profile yet"
		if old != nil && old.Local {
			what = "has a profile on the local bank simulator"
		}
		return nil, fmt.Errorf("environment %s %s: give %s (or --local-bank for the bank simulator of `make run`)", env, what,
			strings.Join(missing, ", "))
	}
	return &p, nil
}

// readPrivateKey reads a private key from a file and checks that it is one Koerier can
// log in with. Neither the key nor the file's content is ever part of an error.
func readPrivateKey(flag, name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %s is not a regular file (%s): give the key file `ssh-keygen` wrote", flag, name, info.Mode().Type())
	}
	key, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", flag, name, err)
	}
	if len(key) > maxKeyFile {
		return nil, fmt.Errorf("%s: %s is larger than %d bytes: it is not a private key", flag, name, maxKeyFile)
	}
	trimmed := bytes.TrimSpace(key)
	if _, _, _, _, err := ssh.ParseAuthorizedKey(trimmed); err == nil {
		return nil, fmt.Errorf("%s: %s holds a public key: give the private key (the file without .pub); the bank registers the public one", flag, name)
	}
	_, err = ssh.ParseRawPrivateKey(trimmed)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, fmt.Errorf("%s: the key in %s is protected by a passphrase, which Koerier cannot type: give it an unencrypted copy "+
			"(`ssh-keygen -p -N '' -f COPY`); it is stored encrypted", flag, name)
	case err != nil:
		return nil, fmt.Errorf("%s: %s holds no private key in PEM or OpenSSH form: give the file `ssh-keygen -t ed25519 -f KEY` wrote", flag, name)
	}
	return trimmed, nil
}

// localBankSettings reads where `make run` started the bank simulator.
func localBankSettings(getenv func(string) string) (addr, control string, err error) {
	var missing []string
	for _, k := range []string{envDevBank, envDevBankControl} {
		if getenv(k) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return "", "", fmt.Errorf("--local-bank: %s not set: the local bank simulator is started by `make run`; run it, then "+
			"`source .koerier/env.sh` in this shell and try again", strings.Join(missing, ", "))
	}
	if _, _, err := hostPort(envDevBank, getenv(envDevBank)); err != nil {
		return "", "", err
	}
	return getenv(envDevBank), simulator.ControlURL(getenv(envDevBankControl)), nil
}

// localBankProfile is a profile on the local bank simulator: SFTP user env, logging in
// with key (a new ed25519 key when key is nil), registered at the simulator's control
// API, with the simulator's host key pinned. Registering is idempotent, so a key kept
// from an earlier profile is registered again (the simulator may have lost its state).
func localBankProfile(ctx context.Context, env string, key []byte, getenv func(string) string) (store.BankProfile, error) {
	addr, control, err := localBankSettings(getenv)
	if err != nil {
		return store.BankProfile{}, err
	}
	host, port, _ := hostPort(envDevBank, addr)
	var signer ssh.Signer
	if key != nil {
		signer, err = ssh.ParsePrivateKey(key)
	}
	if key == nil || err != nil {
		if key, signer, err = simulator.NewKey("koerier " + env); err != nil {
			return store.BankProfile{}, fmt.Errorf("make a key for the bank profile: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	hk, err := simulator.HostKeyOf(ctx, control)
	if err != nil {
		return store.BankProfile{}, localBankErr(err)
	}
	if hk.Addr != "" && hk.Addr != addr {
		return store.BankProfile{}, fmt.Errorf("--local-bank: the bank simulator at %s serves SFTP on %s, but %s is %s: `source .koerier/env.sh` "+
			"again (or set %s to %s)", control, hk.Addr, envDevBank, addr, envDevBank, hk.Addr)
	}
	if err := simulator.Register(ctx, control, env, signer.PublicKey()); err != nil {
		return store.BankProfile{}, localBankErr(err)
	}
	return store.BankProfile{Host: host, Port: port, User: env, PrivateKey: key, HostKey: hk.AuthorizedKey, UploadDir: store.DefaultBankUploadDir,
		DownloadDir: store.DefaultBankDownloadDir, ProcessedDir: store.DefaultBankProcessedDir, ArchiveDir: localArchiveDir, Local: true}, nil
}

// localBankErr adds to a failed call of the simulator's control API what to do about it.
func localBankErr(err error) error {
	var ce *simulator.ControlError
	if errors.As(err, &ce) {
		switch ce.Problem {
		case simulator.NoAnswer:
			return fmt.Errorf("--local-bank: %w: is `make run` running? then `source .koerier/env.sh` and try again (or check %s)", err, envDevBankControl)
		case simulator.NotSimulator:
			return fmt.Errorf("--local-bank: %w: is that the bank simulator?", err)
		}
	}
	return fmt.Errorf("--local-bank: %w", err)
}

// storedBankProfile is the environment's bank profile; nil when it has none.
func storedBankProfile(ctx context.Context, a *app, env string) (*store.BankProfile, error) {
	e, err := a.store.Environment(ctx, env)
	if err != nil {
		return nil, err
	}
	if !e.HasBank {
		return nil, nil
	}
	p, err := a.store.BankProfile(ctx, e.ID)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// bankProfileFor is the profile the flags ask for, for environment env: for
// --local-bank a profile on the simulator that keeps the key of a stored local profile
// (old, nil if none), so that running it again changes nothing; nil for --no-bank.
func (b *bankFlags) bankProfileFor(cmd *cobra.Command, env string, old *store.BankProfile) (*store.BankProfile, error) {
	if !b.local {
		return b.profile(cmd, env, old)
	}
	var key []byte
	if old != nil && old.Local {
		key = old.PrivateKey
	}
	p, err := localBankProfile(cmd.Context(), env, key, os.Getenv)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// setBankProfile stores an environment's bank profile (nil removes it), says what is
// stored now (never the private key) and applies the environment's bank schedule,
// which uploads its payment orders and fetches the bank's reports. a must be dialled.
func setBankProfile(cmd *cobra.Command, a *app, env string, p *store.BankProfile, out io.Writer) error {
	ctx := cmd.Context()
	if p == nil {
		if err := a.store.ClearBankProfile(ctx, env, operator()); err != nil {
			return err
		}
		fmt.Fprintf(out, "environment %s: no bank profile; it no longer sends payment orders or fetches the bank's status reports\n", env)
	} else {
		if err := a.store.SetBankProfile(ctx, env, *p, operator()); err != nil {
			return err
		}
		stored, err := storedBankProfile(ctx, a, env)
		if err != nil {
			return err
		}
		if stored == nil {
			return fmt.Errorf("the bank profile of environment %s was stored, but is not there: set it again", env)
		}
		fmt.Fprintf(out, "environment %s: bank profile %s\n", env, describeBankProfile(*stored))
		if !stored.Local {
			if pub := publicKeyLine(stored.PrivateKey); pub != "" {
				fmt.Fprintf(out, "the bank must have this public key registered for user %s: %s\n", stored.User, pub)
			}
		}
	}
	r, err := service.ApplyBankSchedule(ctx, a.tc, a.cfg, env, p != nil)
	if err != nil {
		return fmt.Errorf("the bank profile of environment %s is stored, but its bank schedule was not applied (%w): run `starter schedules apply` "+
			"when Temporal answers", env, err)
	}
	if r.Why != "" {
		fmt.Fprintf(out, "schedule %s %s: %s\n", r.ID, r.Action, r.Why)
	} else {
		fmt.Fprintf(out, "schedule %s %s (every %s): `starter bank send-receive --env %s` runs it now\n", r.ID, r.Action, r.Every, env)
	}
	return nil
}

// publicKeyLine is the authorized_keys line of a private key's public half: what the
// bank registers. "" when the key does not parse.
func publicKeyLine(key []byte) string {
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
}

// describeBankProfile says what a profile holds, for the operator: never the private key.
func describeBankProfile(p store.BankProfile) string {
	out := fmt.Sprintf("SFTP %s@%s, host key %s pinned; folders upload=%s download=%s processed=%s", p.User,
		net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), store.HostKeyFingerprint(p.HostKey), p.UploadDir, p.DownloadDir, p.ProcessedDir)
	if p.ArchiveDir != "" {
		out += " archive=" + p.ArchiveDir
	}
	out += "; private key stored encrypted"
	if signer, err := ssh.ParsePrivateKey(p.PrivateKey); err == nil {
		out += " (public key " + ssh.FingerprintSHA256(signer.PublicKey()) + ")"
	}
	if p.Local {
		out += "; on the local bank simulator"
	}
	return out
}

// bankView is a bank profile as listed: server, user, folders and the pinned host key's
// fingerprint; never the private key.
type bankView struct {
	SFTP               string `json:"sftp,omitempty"`
	User               string `json:"user,omitempty"`
	HostKeyFingerprint string `json:"host_key_fingerprint,omitempty"`
	UploadDir          string `json:"upload_dir,omitempty"`
	DownloadDir        string `json:"download_dir,omitempty"`
	ProcessedDir       string `json:"processed_dir,omitempty"`
	ArchiveDir         string `json:"archive_dir,omitempty"`
	Local              bool   `json:"local"`
	// Error says why the profile could not be read (its key is sealed with
	// KOERIER_SECRET_KEY).
	Error string `json:"error,omitempty"`
}

func bankViewOf(p store.BankProfile) *bankView {
	return &bankView{SFTP: net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), User: p.User, HostKeyFingerprint: store.HostKeyFingerprint(p.HostKey),
		UploadDir: p.UploadDir, DownloadDir: p.DownloadDir, ProcessedDir: p.ProcessedDir, ArchiveDir: p.ArchiveDir, Local: p.Local}
}

// bankViewFor reads an environment's bank profile for the list; nil when it has none.
func bankViewFor(ctx context.Context, a *app, e store.Environment) *bankView {
	if !e.HasBank {
		return nil
	}
	p, err := a.store.BankProfile(ctx, e.ID)
	if err != nil {
		return &bankView{Error: err.Error()}
	}
	return bankViewOf(p)
}

// columns are the list's BANK and HOST-KEY cells.
func (v *bankView) columns() (server, hostKey string) {
	switch {
	case v == nil:
		return "-", "-"
	case v.Error != "":
		return "?", "?"
	}
	server = v.User + "@" + v.SFTP
	if v.Local {
		server += "(local)"
	}
	return server, v.HostKeyFingerprint
}

// noBankProfile is the advice when an environment without a bank profile is to use its bank.
func noBankProfile(env string) error {
	return fmt.Errorf("environment %s has no bank profile: give it one with `starter environments set %s --local-bank` (the bank simulator "+
		"of `make run`) or --sftp HOST:PORT --sftp-user U --sftp-key-file F --sftp-host-key KEY", env, env)
}
