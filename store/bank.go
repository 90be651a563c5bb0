package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"

	"github.com/jmoiron/sqlx"
	"golang.org/x/crypto/ssh"

	"koerier/bank"
	"koerier/domain"
	"koerier/internal/secrets"
)

// BankProfile is an environment's host-to-host connection to its bank (issue 14):
// payment orders are uploaded over SFTP to UploadDir, the bank's status reports read
// from DownloadDir and moved to ProcessedDir once stored.
type BankProfile struct {
	Host string
	// Port is the SFTP port; 0 is 22.
	Port int
	User string
	// PrivateKey is the PEM of the key Koerier logs in with, unencrypted; never logged
	// or printed. Empty in SetBankProfile keeps the stored one.
	PrivateKey []byte
	// HostKey pins the bank's server: an authorized_keys or known_hosts line (as
	// `ssh-keyscan` prints it), or its SHA256: fingerprint (as `ssh-keygen -l` prints
	// it). A server that shows another key is refused.
	HostKey string
	// ArchiveDir is where the bank moves the files it has taken, if it does: a look-up
	// after an uncertain upload searches it too. Empty: none.
	UploadDir, DownloadDir, ProcessedDir, ArchiveDir string
	// Local marks a profile on the local bank simulator.
	Local bool
}

// String never shows the private key: a profile printed by mistake (%v, %+v) must not
// leak it.
func (p BankProfile) String() string {
	return fmt.Sprintf("%s@%s:%d (host key %s, key %d bytes)", p.User, p.Host, p.Port, HostKeyFingerprint(p.HostKey), len(p.PrivateKey))
}

// GoString is String, for %#v.
func (p BankProfile) GoString() string { return p.String() }

// Folders a bank profile gets when none is named.
const (
	DefaultBankPort         = 22
	DefaultBankUploadDir    = "upload"
	DefaultBankDownloadDir  = "download"
	DefaultBankProcessedDir = "processed"
)

type bankProfileRow struct {
	EnvironmentID int64  `db:"environment_id"`
	Host          string `db:"host"`
	Port          int    `db:"port"`
	User          string `db:"sftp_user"`
	PrivateKey    []byte `db:"private_key"`
	HostKey       string `db:"host_key"`
	UploadDir     string `db:"upload_dir"`
	DownloadDir   string `db:"download_dir"`
	ProcessedDir  string `db:"processed_dir"`
	ArchiveDir    string `db:"archive_dir"`
	Local         bool   `db:"local"`
}

const bankProfileColumns = `environment_id, host, port, sftp_user, private_key, host_key, upload_dir, download_dir, processed_dir,
	archive_dir, local`

// SetBankProfile gives an environment its bank profile, or changes it. It checks the
// profile (host, port, user; the private key parses; the host key is a public key or
// a SHA256 fingerprint; folders), seals the private key with the store's key, and
// writes an I line that names what changed and who changed it: the private key only
// as set or changed, with the fingerprint of its public half (what the bank
// registers); a changed host key explicitly, old and new fingerprint, since a changed
// pin means trusting another server with the environment's payments. An empty key
// keeps the stored one.
func (s *Store) SetBankProfile(ctx context.Context, env string, p BankProfile, who string) error {
	p = p.withDefaults()
	signer, hostKey, err := p.validate(env)
	if err != nil {
		return err
	}
	p.HostKey = hostKey
	if who == "" {
		who = "an operator"
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		id, err := lockActiveEnvironment(ctx, tx, env, "its bank profile can no longer be set")
		if err != nil {
			return err
		}
		var old *bankProfileRow
		var stored bankProfileRow
		err = tx.GetContext(ctx, &stored, `SELECT `+bankProfileColumns+` FROM environment_bank_profiles WHERE environment_id = $1`, id)
		switch {
		case err == nil:
			old = &stored
		case !isNoRows(err):
			return err
		}
		row := bankProfileRow{EnvironmentID: id, Host: p.Host, Port: p.Port, User: p.User, HostKey: p.HostKey, UploadDir: p.UploadDir,
			DownloadDir: p.DownloadDir, ProcessedDir: p.ProcessedDir, ArchiveDir: p.ArchiveDir, Local: p.Local}
		if row.PrivateKey, err = s.sealBankKey(env, p.PrivateKey, old); err != nil {
			return err
		}
		changes := bankProfileChanges(old, row, signer)
		if len(changes) == 0 {
			return nil
		}
		if _, err := tx.NamedExecContext(ctx, `
			INSERT INTO environment_bank_profiles (`+bankProfileColumns+`, updated_at)
			VALUES (:environment_id, :host, :port, :sftp_user, :private_key, :host_key, :upload_dir, :download_dir, :processed_dir,
				:archive_dir, :local, now())
			ON CONFLICT (environment_id) DO UPDATE SET host = EXCLUDED.host, port = EXCLUDED.port, sftp_user = EXCLUDED.sftp_user,
				private_key = EXCLUDED.private_key, host_key = EXCLUDED.host_key, upload_dir = EXCLUDED.upload_dir,
				download_dir = EXCLUDED.download_dir, processed_dir = EXCLUDED.processed_dir, archive_dir = EXCLUDED.archive_dir,
				local = EXCLUDED.local, updated_at = now()`, row); err != nil {
			return err
		}
		what := "set"
		if old != nil {
			what = "changed"
		}
		return writeLog(ctx, tx, LogEntry{EnvironmentID: &id, Step: domain.StepEnvironment, Level: domain.LevelInfo,
			Description: truncateRunes(fmt.Sprintf("bank profile of environment %s %s by %s: %s", env, what, who, strings.Join(changes, ", ")), 2000)})
	})
	if err != nil {
		return fmt.Errorf("set the bank profile of environment %s: %w", env, err)
	}
	return nil
}

// ClearBankProfile removes an environment's bank profile: it no longer queues or sends
// payment orders, and its bank's reports are no longer fetched. Clearing a profile that
// is not there does nothing.
func (s *Store) ClearBankProfile(ctx context.Context, env, who string) error {
	return s.clearProfile(ctx, "environment_bank_profiles", "bank profile", env, who,
		"it no longer sends payment orders or fetches the bank's status reports")
}

// BankProfile returns an environment's bank profile with its private key opened;
// ErrNotFound when it has none.
func (s *Store) BankProfile(ctx context.Context, envID int64) (BankProfile, error) {
	var row struct {
		bankProfileRow
		Name string `db:"name"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT e.name, `+prefixed("p.", bankProfileColumns)+`
		FROM environment_bank_profiles p JOIN environments e ON e.id = p.environment_id WHERE p.environment_id = $1`, envID)
	if isNoRows(err) {
		return BankProfile{}, fmt.Errorf("%w: environment %d has no bank profile: give it one with `starter environments set NAME --sftp HOST:PORT …` "+
			"(or --local-bank)", ErrNotFound, envID)
	}
	if err != nil {
		return BankProfile{}, fmt.Errorf("read the bank profile of environment %d: %w", envID, err)
	}
	r := row.bankProfileRow
	p := BankProfile{Host: r.Host, Port: r.Port, User: r.User, HostKey: r.HostKey, UploadDir: r.UploadDir, DownloadDir: r.DownloadDir,
		ProcessedDir: r.ProcessedDir, ArchiveDir: r.ArchiveDir, Local: r.Local}
	if s.secrets == nil {
		return BankProfile{}, fmt.Errorf("the private key of environment %s's bank profile is stored encrypted, and no key is configured: set %s to "+
			"the key it was stored with", row.Name, secrets.EnvVar)
	}
	if p.PrivateKey, err = s.secrets.Open(r.PrivateKey); err != nil {
		return BankProfile{}, fmt.Errorf("the private key of environment %s's bank profile: %w", row.Name, err)
	}
	return p, nil
}

// BankEnvironments lists the active environments with a bank profile, by name: the
// bank's status reports are fetched for each.
func (s *Store) BankEnvironments(ctx context.Context) ([]Environment, error) {
	out := []Environment{}
	if err := s.db.SelectContext(ctx, &out, `SELECT `+environmentColumns+` FROM environments
		WHERE active AND EXISTS (SELECT 1 FROM environment_bank_profiles p WHERE p.environment_id = environments.id)
		ORDER BY name`); err != nil {
		return nil, fmt.Errorf("list environments with a bank profile: %w", err)
	}
	return out, nil
}

func (p BankProfile) withDefaults() BankProfile {
	p.Host = strings.ToLower(strings.TrimSpace(p.Host))
	p.User = strings.TrimSpace(p.User)
	p.HostKey = strings.TrimSpace(p.HostKey)
	if p.Port == 0 {
		p.Port = DefaultBankPort
	}
	if p.UploadDir == "" {
		p.UploadDir = DefaultBankUploadDir
	}
	if p.DownloadDir == "" {
		p.DownloadDir = DefaultBankDownloadDir
	}
	if p.ProcessedDir == "" {
		p.ProcessedDir = DefaultBankProcessedDir
	}
	return p
}

// validate says everything that is wrong with a profile at once. It returns the
// private key's signer (nil when the key is left out, to keep the stored one) and the
// host key in its stored form.
func (p BankProfile) validate(env string) (ssh.Signer, string, error) {
	var problems []string
	switch {
	case p.Host == "":
		problems = append(problems, "the bank's SFTP server needs a host")
	case len(p.Host) > 253 || strings.ContainsAny(p.Host, " /:@\t\r\n") && net.ParseIP(strings.Trim(p.Host, "[]")) == nil:
		problems = append(problems, fmt.Sprintf("host %q is not a host name (give the port apart)", p.Host))
	}
	if p.Port < 1 || p.Port > 65535 {
		problems = append(problems, fmt.Sprintf("port %d is not a port (1-65535)", p.Port))
	}
	if p.User == "" || len(p.User) > 200 || strings.ContainsAny(p.User, " \t\r\n") {
		problems = append(problems, fmt.Sprintf("user %q: the bank gives the SFTP user name to log in with", p.User))
	}
	var signer ssh.Signer
	if len(bytes.TrimSpace(p.PrivateKey)) > 0 {
		var err error
		signer, err = ssh.ParsePrivateKey(p.PrivateKey)
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			problems = append(problems, "the private key is protected by a passphrase, which Koerier cannot type: give it an unencrypted copy "+
				"(`ssh-keygen -p -N '' -f KEY`); it is stored encrypted under "+secrets.EnvVar)
		case err != nil:
			problems = append(problems, fmt.Sprintf("the private key is not a key in PEM or OpenSSH form (%v): give the file "+
				"`ssh-keygen -t ed25519 -f KEY` made, not its .pub", err))
		}
	}
	hostKey, herr := pinnedHostKey(p.HostKey)
	if herr != nil {
		problems = append(problems, herr.Error())
	}
	dirs := []struct{ what, v string }{{"upload folder", p.UploadDir}, {"download folder", p.DownloadDir},
		{"processed folder", p.ProcessedDir}, {"archive folder", p.ArchiveDir}}
	for _, d := range dirs {
		if d.v == "" && d.what == "archive folder" {
			continue
		}
		if strings.TrimSpace(d.v) != d.v || len(d.v) > 200 || strings.ContainsAny(d.v, "\r\n\x00\\") || path.Clean(d.v) != d.v ||
			strings.HasPrefix(d.v, "../") || d.v == ".." {
			problems = append(problems, fmt.Sprintf("%s %q: use a plain path on the bank's server (upload, /out/koerier), without "+
				"surrounding spaces, backslashes or ..", d.what, d.v))
		}
	}
	if p.DownloadDir == p.ProcessedDir {
		problems = append(problems, fmt.Sprintf("the download folder (%s) and the folder for processed reports (%s) must differ, or reports are "+
			"read again and again", p.DownloadDir, p.ProcessedDir))
	}
	if p.UploadDir == p.DownloadDir {
		problems = append(problems, fmt.Sprintf("the upload folder and the download folder are both %s: Koerier would read its own payment "+
			"files as status reports", p.UploadDir))
	}
	if len(problems) == 0 && signer != nil {
		// What package bank would refuse to dial with (an RSA key under 2048 bits, a DSA
		// key, an archive folder that is the upload folder) must not be stored: every
		// send and fetch would fail on it, and be retried, until an operator looked.
		bp := p.Bank()
		bp.HostKey = hostKey
		if err := bp.Validate(); err != nil {
			problems = append(problems, strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	if len(problems) > 0 {
		return nil, "", fmt.Errorf("%w: bank profile of environment %s: %s", ErrInvalid, env, strings.Join(problems, "; "))
	}
	return signer, hostKey, nil
}

// Bank is the profile as package bank dials it.
func (p BankProfile) Bank() bank.Profile {
	return bank.Profile{Host: p.Host, Port: p.Port, User: p.User, PrivateKey: p.PrivateKey, HostKey: p.HostKey, UploadDir: p.UploadDir,
		DownloadDir: p.DownloadDir, ProcessedDir: p.ProcessedDir, ArchiveDir: p.ArchiveDir}
}

// pinnedHostKey reads a host key as given and returns its stored form: a public key as
// an authorized_keys line without comment, or a SHA256: fingerprint as given.
func pinnedHostKey(s string) (string, error) {
	const advice = "give the bank's host key as `ssh-keyscan -p PORT HOST` prints it, or its SHA256: fingerprint (`ssh-keygen -l`), " +
		"as the bank publishes it; check it with the bank before trusting it"
	if s == "" {
		return "", fmt.Errorf("the bank's host key is missing: %s", advice)
	}
	if rest, ok := strings.CutPrefix(s, "SHA256:"); ok {
		if raw, err := base64.RawStdEncoding.DecodeString(rest); err != nil || len(raw) != 32 {
			return "", fmt.Errorf("host key fingerprint %q is not a SHA256 fingerprint (SHA256: and 43 characters of base64): %s", s, advice)
		}
		return s, nil
	}
	if key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s)); err == nil {
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), nil
	}
	if _, _, key, _, _, err := ssh.ParseKnownHosts([]byte(s)); err == nil {
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), nil
	}
	return "", fmt.Errorf("host key %q is neither a public key nor a SHA256: fingerprint: %s", firstRunes(s, 40), advice)
}

// HostKeyFingerprint is the SHA256 fingerprint of a pinned host key in its stored form,
// as `ssh-keygen -l` prints it: what a log line and an error name it by.
func HostKeyFingerprint(pinned string) string {
	if strings.HasPrefix(pinned, "SHA256:") {
		return pinned
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pinned))
	if err != nil {
		return pinned
	}
	return ssh.FingerprintSHA256(key)
}

func firstRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// sealBankKey is the private key to store: the given one sealed, or the stored one
// when none is given or it is the same key again (so the log claims no change).
func (s *Store) sealBankKey(env string, key []byte, old *bankProfileRow) ([]byte, error) {
	if len(bytes.TrimSpace(key)) == 0 {
		if old == nil {
			return nil, fmt.Errorf("%w: bank profile of environment %s: a private key is needed to log in at the bank: make one with "+
				"`ssh-keygen -t ed25519 -N '' -f KEY`, give KEY, and register KEY.pub with the bank", ErrInvalid, env)
		}
		return old.PrivateKey, nil
	}
	if s.secrets == nil {
		return nil, fmt.Errorf("%w: bank profile of environment %s: its private key is stored encrypted, and no key is configured: set %s "+
			"(make one with `openssl rand -base64 32`) for the service and the commands, then set the profile again",
			ErrInvalid, env, secrets.EnvVar)
	}
	if old != nil {
		if plain, err := s.secrets.Open(old.PrivateKey); err == nil && bytes.Equal(plain, key) {
			return old.PrivateKey, nil
		}
	}
	return s.secrets.Seal(key), nil
}

// bankProfileChanges says what differs between the stored profile and the new one, in
// words for the log. signer is the new private key, nil when the stored one is kept.
func bankProfileChanges(old *bankProfileRow, row bankProfileRow, signer ssh.Signer) []string {
	var o bankProfileRow
	if old != nil {
		o = *old
	}
	var out []string
	add := func(what, before, after string) {
		switch {
		case before == after:
		case old == nil:
			out = append(out, fmt.Sprintf("%s %s", what, after))
		default:
			out = append(out, fmt.Sprintf("%s %s → %s", what, before, after))
		}
	}
	server := func(r bankProfileRow) string {
		if r.Host == "" {
			return "none"
		}
		return fmt.Sprintf("%s@%s:%d", r.User, r.Host, r.Port)
	}
	add("SFTP", server(o), server(row))
	if o.HostKey != row.HostKey {
		if old == nil {
			out = append(out, "host key pinned to "+HostKeyFingerprint(row.HostKey))
		} else {
			out = append(out, fmt.Sprintf("host key changed from %s to %s: Koerier now trusts another server with the payment orders",
				HostKeyFingerprint(o.HostKey), HostKeyFingerprint(row.HostKey)))
		}
	}
	dirs := func(r bankProfileRow) string {
		s := fmt.Sprintf("upload=%s download=%s processed=%s", r.UploadDir, r.DownloadDir, r.ProcessedDir)
		if r.ArchiveDir != "" {
			s += " archive=" + r.ArchiveDir
		}
		return s
	}
	add("folders", dirs(o), dirs(row))
	if old == nil || o.Local != row.Local {
		if row.Local {
			out = append(out, "on the local bank simulator")
		} else if old != nil {
			out = append(out, "no longer on the local bank simulator")
		}
	}
	if !bytes.Equal(o.PrivateKey, row.PrivateKey) {
		what := "private key set"
		if old != nil {
			what = "private key changed"
		}
		if signer != nil {
			what += " (the bank must know its public key " + ssh.FingerprintSHA256(signer.PublicKey()) + ")"
		}
		out = append(out, what)
	}
	return out
}
