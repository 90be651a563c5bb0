package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"koerier/store"
)

// localMailDomain is the local development mail server's domain (mail/devserver's
// default): every NAME@koerier.test is a mailbox there.
const localMailDomain = "koerier.test"

// The settings `make run` writes to .koerier/env.sh for the local mail server.
const (
	envDevSMTP     = "KOERIER_DEV_SMTP"
	envDevIMAP     = "KOERIER_DEV_IMAP"
	envDevPassword = "KOERIER_DEV_MAIL_PASSWORD"
)

// mailFlags are the e-mail profile options of `environments add` and `environments set`.
// A password is read from a file (or stdin), never taken as a flag value: that would
// leave it in ps and in the shell's history.
type mailFlags struct {
	local, none                                    bool
	from, folder, processed, sent                  string
	smtp, smtpSecurity, smtpUser, smtpPasswordFile string
	imap, imapSecurity, imapUser, imapPasswordFile string
	// Flags that exist only to refuse a password given on the command line.
	refused map[string]*string
}

// profileFlags are the flags that describe a profile; --local-mail and --no-mail
// stand instead of all of them (the folder flags may go with --local-mail).
var profileFlags = []string{"email-from", "smtp", "smtp-security", "smtp-user", "smtp-password-file", "imap", "imap-security", "imap-user",
	"imap-password-file"}

func (m *mailFlags) register(fs *pflag.FlagSet, withClear bool) {
	fs.BoolVar(&m.local, "local-mail", false, "a profile on the local development mail server of make run: mailbox NAME@"+localMailDomain+
		" (needs KOERIER_DEV_SMTP, KOERIER_DEV_IMAP and KOERIER_DEV_MAIL_PASSWORD: source .koerier/env.sh)")
	fs.StringVar(&m.from, "email-from", "", "sender address of the environment's e-mail profile (e-invoices go out from it)")
	fs.StringVar(&m.smtp, "smtp", "", "SMTP submission server host:port of the e-mail profile")
	fs.StringVar(&m.smtpSecurity, "smtp-security", "", "tls (implicit TLS), starttls or none (this machine only); default tls for port 465, else starttls")
	fs.StringVar(&m.smtpUser, "smtp-user", "", "user to log in to the SMTP server with (none: send without logging in)")
	fs.StringVar(&m.smtpPasswordFile, "smtp-password-file", "", "file holding the SMTP password (- reads it from stdin); stored encrypted")
	fs.StringVar(&m.imap, "imap", "", "IMAP server host:port of the mailbox incoming e-invoices and bounces arrive in")
	fs.StringVar(&m.imapSecurity, "imap-security", "", "tls (implicit TLS), starttls or none (this machine only); default starttls for port 143, else tls")
	fs.StringVar(&m.imapUser, "imap-user", "", "user to log in to the mailbox with (default: the SMTP user)")
	fs.StringVar(&m.imapPasswordFile, "imap-password-file", "", "file holding the IMAP password (- reads it from stdin; default: the SMTP password "+
		"when the user is the same); stored encrypted")
	fs.StringVar(&m.folder, "mail-folder", "", "mailbox folder read for incoming e-invoices (default "+store.DefaultMailFolder+")")
	fs.StringVar(&m.processed, "processed-folder", "", "mailbox folder read mail is moved to (default "+store.DefaultProcessedFolder+")")
	fs.StringVar(&m.sent, "sent-folder", "", "mailbox folder the server keeps sent mail in, where an interrupted send is looked up "+
		"(default "+store.DefaultSentFolder+`; e.g. "Sent Items", "[Gmail]/Sent Mail")`)
	if withClear {
		fs.BoolVar(&m.none, "no-mail", false, "remove the e-mail profile: the environment no longer sends or receives e-invoices")
	}
	m.refused = map[string]*string{}
	for _, name := range []string{"password", "smtp-password", "imap-password"} {
		v := new(string)
		m.refused[name] = v
		fs.StringVar(v, name, "", "refused: give a password in a file")
		_ = fs.MarkHidden(name)
	}
}

// folderFlags name the profile's mailbox folders.
var folderFlags = []string{"mail-folder", "processed-folder", "sent-folder"}

// given reports whether the command asks for a change of the e-mail profile.
func (m *mailFlags) given(cmd *cobra.Command) bool {
	for _, name := range append(append([]string{"local-mail", "no-mail"}, folderFlags...), profileFlags...) {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			return true
		}
	}
	return false
}

// check refuses what cannot go together before anything is read or opened; the
// refusal of a password flag never repeats its value.
func (m *mailFlags) check(cmd *cobra.Command) error {
	for name := range m.refused {
		if cmd.Flags().Changed(name) {
			file := "--smtp-password-file"
			if name == "imap-password" {
				file = "--imap-password-file"
			}
			return fmt.Errorf("--%s is refused: a password on the command line is visible in ps and kept in the shell's history; "+
				"put it in a file readable only by you and give %s FILE, or %s - to type or pipe it on stdin", name, file, file)
		}
	}
	var profile, folders []string
	for _, name := range profileFlags {
		if cmd.Flags().Changed(name) {
			profile = append(profile, "--"+name)
		}
	}
	for _, name := range folderFlags {
		if cmd.Flags().Changed(name) {
			folders = append(folders, "--"+name)
		}
	}
	switch {
	case m.local && m.none:
		return errors.New("--local-mail and --no-mail contradict each other: give one")
	case m.none && len(profile)+len(folders) > 0:
		return fmt.Errorf("--no-mail removes the e-mail profile; leave out %s", strings.Join(append(profile, folders...), ", "))
	case m.local && len(profile) > 0:
		return fmt.Errorf("--local-mail sets the whole profile on the local mail server; leave out %s (or --local-mail)", strings.Join(profile, ", "))
	}
	return nil
}

// profile is the e-mail profile the flags describe for environment env. old is the
// stored profile (nil if none): flags not given keep its values, and a password not
// given keeps the stored one (store.SetMailProfile keeps it while the user stays).
// It returns nil for --no-mail.
func (m *mailFlags) profile(cmd *cobra.Command, env string, old *store.MailProfile, getenv func(string) string) (*store.MailProfile, error) {
	if m.none {
		return nil, nil
	}
	if m.local {
		p, err := localProfile(env, getenv)
		if err != nil {
			return nil, err
		}
		m.folders(cmd, &p)
		return &p, nil
	}
	var p store.MailProfile
	if old != nil && !old.Local {
		// A local profile is not the base of a real one: its servers and passwords are the dev server's.
		p = *old
	}
	p.Local = false
	p.SMTP.Password, p.IMAP.Password = "", ""
	stdin := &stdinOnce{r: cmd.InOrStdin()}
	if cmd.Flags().Changed("email-from") {
		p.From = m.from
	}
	m.folders(cmd, &p)
	if err := m.server(cmd, "smtp", &p.SMTP, m.smtp, m.smtpSecurity, m.smtpPasswordFile, stdin); err != nil {
		return nil, err
	}
	if err := m.server(cmd, "imap", &p.IMAP, m.imap, m.imapSecurity, m.imapPasswordFile, stdin); err != nil {
		return nil, err
	}
	if cmd.Flags().Changed("smtp-user") {
		p.SMTP.User = m.smtpUser
	}
	switch {
	case cmd.Flags().Changed("imap-user"):
		p.IMAP.User = m.imapUser
	case p.IMAP.User == "" && p.IMAP.Host != "":
		// A new mailbox is usually the sender's own account.
		p.IMAP.User = p.SMTP.User
	}
	if p.IMAP.Password == "" && m.smtpPasswordFile != "" && m.imapPasswordFile == "" && p.IMAP.User != "" && p.IMAP.User == p.SMTP.User {
		// One account, one password: the mailbox of the sender's own login.
		p.IMAP.Password = p.SMTP.Password
	}
	var missing []string
	if p.From == "" {
		missing = append(missing, "--email-from ADDRESS")
	}
	if p.SMTP.Host == "" {
		missing = append(missing, "--smtp HOST:PORT")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("environment %s has no e-mail profile yet: give %s (or --local-mail for the local mail server of `make run`)",
			env, strings.Join(missing, " and "))
	}
	return &p, nil
}

// server applies the flags of one server (prefix smtp or imap) to srv.
// folders sets the folders the flags name; the store fills in the defaults.
func (m *mailFlags) folders(cmd *cobra.Command, p *store.MailProfile) {
	for _, f := range []struct {
		flag string
		to   *string
		v    string
	}{{"mail-folder", &p.Folder, m.folder}, {"processed-folder", &p.Processed, m.processed}, {"sent-folder", &p.Sent, m.sent}} {
		if cmd.Flags().Changed(f.flag) {
			*f.to = f.v
		}
	}
}

func (m *mailFlags) server(cmd *cobra.Command, prefix string, srv *store.MailServer, addr, security, passwordFile string, stdin *stdinOnce) error {
	changed := cmd.Flags().Changed
	if changed(prefix) {
		host, port, err := hostPort("--"+prefix, addr)
		if err != nil {
			return err
		}
		srv.Host, srv.Port = host, port
		if !changed(prefix + "-security") {
			srv.Security = defaultSecurity(prefix, port)
		}
	}
	if changed(prefix + "-security") {
		srv.Security = security
	}
	if passwordFile != "" {
		pw, err := readPassword("--"+prefix+"-password-file", passwordFile, stdin)
		if err != nil {
			return err
		}
		srv.Password = pw
	}
	return nil
}

func defaultSecurity(prefix string, port int) string {
	switch {
	case prefix == "smtp" && port == 465, prefix == "imap" && port != 143:
		return store.SecurityTLS
	}
	return store.SecurityStartTLS
}

func hostPort(flag, addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(strings.TrimSpace(addr))
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || host == "" || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%s %q: give host:port, e.g. mail.example.nl:587", flag, addr)
	}
	return host, port, nil
}

// stdinOnce reads stdin once: --smtp-password-file - and --imap-password-file - given
// together both get what was read.
type stdinOnce struct {
	r    io.Reader
	read bool
	pw   string
	err  error
}

func (s *stdinOnce) password() (string, error) {
	if !s.read {
		s.read = true
		line, err := bufio.NewReader(s.r).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			s.err = err
		}
		s.pw = strings.TrimRight(line, "\r\n")
	}
	return s.pw, s.err
}

// readPassword reads a password from a file (its first line), or from stdin for "-".
// Neither the password nor the file's content is ever part of an error.
func readPassword(flag, name string, stdin *stdinOnce) (string, error) {
	var pw string
	if name == "-" {
		var err error
		if pw, err = stdin.password(); err != nil {
			return "", fmt.Errorf("%s -: read the password from stdin: %w", flag, err)
		}
	} else {
		f, err := os.Open(name)
		if err != nil {
			return "", fmt.Errorf("%s: %w", flag, err)
		}
		defer f.Close()
		// A password is one line; a limit keeps a wrong file (a log, a device) from being read whole.
		line, err := bufio.NewReader(io.LimitReader(f, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("%s: read %s: %w", flag, name, err)
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if pw == "" {
		where := name
		if name == "-" {
			where = "stdin"
		}
		return "", fmt.Errorf("%s: %s holds no password on its first line", flag, where)
	}
	return pw, nil
}

// localProfile is a profile on the local development mail server that `make run`
// starts: mailbox NAME@koerier.test, SMTP with STARTTLS, IMAP with implicit TLS,
// the server's one password.
func localProfile(env string, getenv func(string) string) (store.MailProfile, error) {
	var missing []string
	for _, k := range []string{envDevSMTP, envDevIMAP, envDevPassword} {
		if getenv(k) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return store.MailProfile{}, fmt.Errorf("--local-mail: %s not set: the local mail server is started by `make run`; run it, then "+
			"`source .koerier/env.sh` in this shell and try again", strings.Join(missing, ", "))
	}
	smtpHost, smtpPort, err := hostPort(envDevSMTP, getenv(envDevSMTP))
	if err != nil {
		return store.MailProfile{}, err
	}
	imapHost, imapPort, err := hostPort(envDevIMAP, getenv(envDevIMAP))
	if err != nil {
		return store.MailProfile{}, err
	}
	addr := strings.ToLower(env) + "@" + localMailDomain
	pw := getenv(envDevPassword)
	return store.MailProfile{
		From:  addr,
		SMTP:  store.MailServer{Host: smtpHost, Port: smtpPort, Security: store.SecurityStartTLS, User: addr, Password: pw},
		IMAP:  store.MailServer{Host: imapHost, Port: imapPort, Security: store.SecurityTLS, User: addr, Password: pw},
		Local: true,
	}, nil
}

// mailView is an e-mail profile as listed: servers and users, never a password.
type mailView struct {
	From         string `json:"from"`
	SMTP         string `json:"smtp"`
	SMTPSecurity string `json:"smtp_security"`
	SMTPUser     string `json:"smtp_user,omitempty"`
	IMAP         string `json:"imap,omitempty"`
	IMAPSecurity string `json:"imap_security,omitempty"`
	IMAPUser     string `json:"imap_user,omitempty"`
	Folder       string `json:"folder,omitempty"`
	Local        bool   `json:"local"`
	// Error says why the servers could not be read (the profile's sender is known).
	Error string `json:"error,omitempty"`
}

func viewOf(p store.MailProfile) *mailView {
	v := &mailView{From: p.From, SMTP: net.JoinHostPort(p.SMTP.Host, strconv.Itoa(p.SMTP.Port)), SMTPSecurity: p.SMTP.Security,
		SMTPUser: p.SMTP.User, Local: p.Local}
	if p.HasMailbox() {
		v.IMAP, v.IMAPSecurity, v.IMAPUser, v.Folder = net.JoinHostPort(p.IMAP.Host, strconv.Itoa(p.IMAP.Port)), p.IMAP.Security, p.IMAP.User, p.Folder
	}
	return v
}

func (v *mailView) servers() (smtp, imap string) {
	if v == nil {
		return "-", "-"
	}
	if v.Error != "" {
		return "?", "?"
	}
	smtp = v.SMTP + " " + v.SMTPSecurity
	imap = "-"
	if v.IMAP != "" {
		imap = v.IMAP + " " + v.IMAPSecurity + " " + v.Folder
	}
	return smtp, imap
}
