package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"

	"github.com/sirupsen/logrus"

	"koerier/store"
)

// The environment's own e-mail profile (rule 2 in docs/rules.md): the sender address
// and servers its e-invoices go out and come in through. A password is taken in and
// never given back: the answer says only whether one is set.

const (
	// maxProfileBody bounds a PUT /v1/mail-profile body: a profile is a few hundred bytes.
	maxProfileBody = 64 << 10
	noProfile      = "this environment has no e-mail profile: PUT /v1/mail-profile gives it one"
)

// serverJSON is one server of a profile as a PUT sends it.
type serverJSON struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Security string `json:"security"`
	User     string `json:"user"`
	// Password empty (or left out) keeps the stored one while the user stays the same.
	Password string `json:"password"`
}

// profileJSON is the body of PUT /v1/mail-profile. IMAP left out: the profile sends
// but does not receive.
type profileJSON struct {
	From            string      `json:"from"`
	SMTP            serverJSON  `json:"smtp"`
	IMAP            *serverJSON `json:"imap"`
	Folder          string      `json:"folder"`
	ProcessedFolder string      `json:"processed_folder"`
	SentFolder      string      `json:"sent_folder"`
}

// serverView is one server of a profile as the API shows it: never the password.
type serverView struct {
	Host        string `json:"host"`
	Port        int    `json:"port"`
	Security    string `json:"security"`
	User        string `json:"user,omitempty"`
	PasswordSet bool   `json:"password_set"`
}

// profileView is the environment's e-mail profile as GET and PUT answer it.
type profileView struct {
	From            string      `json:"from"`
	SMTP            serverView  `json:"smtp"`
	IMAP            *serverView `json:"imap,omitempty"`
	Folder          string      `json:"folder"`
	ProcessedFolder string      `json:"processed_folder"`
	SentFolder      string      `json:"sent_folder"`
	// Local is set for a profile on the local development mail server.
	Local bool `json:"local"`
	// ScheduleError is set when the profile was saved but the environment's e-mail
	// schedule could not be brought in line.
	ScheduleError string `json:"schedule_error,omitempty"`
}

func serverOf(m store.MailServer) serverView {
	return serverView{Host: m.Host, Port: m.Port, Security: m.Security, User: m.User, PasswordSet: m.Password != ""}
}

func profileViewOf(p store.MailProfile) profileView {
	v := profileView{From: p.From, SMTP: serverOf(p.SMTP), Folder: p.Folder, ProcessedFolder: p.Processed, SentFolder: p.Sent, Local: p.Local}
	if p.HasMailbox() {
		imap := serverOf(p.IMAP)
		v.IMAP = &imap
	}
	return v
}

// profileRemoved is the answer to DELETE /v1/mail-profile.
type profileRemoved struct {
	Removed       bool   `json:"removed"`
	ScheduleError string `json:"schedule_error,omitempty"`
}

func (s *Server) getMailProfile(w http.ResponseWriter, r *http.Request) {
	p, err := s.Store.MailProfile(r.Context(), environmentOf(r).ID)
	if s.answered(w, r, err, "read e-mail profile", noProfile) {
		return
	}
	writeJSON(w, http.StatusOK, profileViewOf(p))
}

func (s *Server) putMailProfile(w http.ResponseWriter, r *http.Request) {
	env := environmentOf(r)
	in, rerr := readProfile(w, r)
	if rerr != nil {
		rerr.write(w, r)
		return
	}
	p := store.MailProfile{From: in.From, Folder: in.Folder, Processed: in.ProcessedFolder, Sent: in.SentFolder,
		SMTP: store.MailServer(in.SMTP)}
	if in.IMAP != nil {
		p.IMAP = store.MailServer(*in.IMAP)
	}
	if why := machineLocal(p); why != "" {
		writeProblem(w, r, http.StatusUnprocessableEntity, ProblemInvalidProfile, "E-mail profile not saved", why)
		return
	}
	err := s.Store.SetMailProfile(r.Context(), env.Name, p, "environment "+env.Name+" (API)")
	switch {
	case errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrRefused), errors.Is(err, store.ErrNotFound):
		writeProblem(w, r, http.StatusUnprocessableEntity, ProblemInvalidProfile, "E-mail profile not saved", withoutSentinel(err))
		return
	case err != nil:
		s.unavailable(w, r, "set e-mail profile", err)
		return
	}
	saved, err := s.Store.MailProfile(r.Context(), env.ID)
	if err != nil {
		s.unavailable(w, r, "read e-mail profile", err)
		return
	}
	v := profileViewOf(saved)
	// Every profile gets the schedule: it sends the due e-invoices, and reads the mailbox
	// only where there is one.
	v.ScheduleError = s.applySchedule(w, r, env.Name, true)
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) deleteMailProfile(w http.ResponseWriter, r *http.Request) {
	env := environmentOf(r)
	err := s.Store.ClearMailProfile(r.Context(), env.Name, "environment "+env.Name+" (API)")
	switch {
	case errors.Is(err, store.ErrRefused), errors.Is(err, store.ErrNotFound):
		writeProblem(w, r, http.StatusUnprocessableEntity, ProblemInvalidProfile, "E-mail profile not removed", withoutSentinel(err))
		return
	case err != nil:
		s.unavailable(w, r, "remove e-mail profile", err)
		return
	}
	writeJSON(w, http.StatusOK, profileRemoved{Removed: true, ScheduleError: s.applySchedule(w, r, env.Name, false)})
}

// readProfile reads a PUT body: one JSON object, no unknown fields.
func readProfile(w http.ResponseWriter, r *http.Request) (profileJSON, *requestError) {
	var in profileJSON
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return in, &requestError{http.StatusUnsupportedMediaType, ProblemMediaType, "Unsupported media type",
			"send the profile as application/json"}
	}
	if r.ContentLength > maxProfileBody {
		return in, tooLarge("the profile is over %d bytes: it cannot be valid", maxProfileBody)
	}
	r.Body = http.MaxBytesReader(unwrap(w), r.Body, maxProfileBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return in, tooLarge("the profile is over %d bytes: it cannot be valid", maxProfileBody)
		}
		return in, badRequest("the JSON body could not be read: %v; send one object with from, smtp {host, port, security, user, "+
			"password}, imap {…} (to receive), folder, processed_folder and sent_folder", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return in, badRequest("the JSON body has more after its object: send one object")
	}
	return in, nil
}

// applySchedule runs the MailSchedule hook after a profile change. The profile is
// saved either way; a failure is logged and returned as the warning the answer
// carries, since only an operator can apply the schedules.
func (s *Server) applySchedule(w http.ResponseWriter, r *http.Request, env string, mailbox bool) string {
	if s.MailSchedule == nil {
		return ""
	}
	// The profile is saved: the schedule must follow even when the client has gone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), temporalTimeout)
	defer cancel()
	err := s.MailSchedule(ctx, env, mailbox)
	if err == nil {
		return ""
	}
	id := w.Header().Get(headerRequestID)
	s.Log.WithFields(logrus.Fields{"request_id": id, "environment": env, "mailbox": mailbox}).WithError(err).
		Warn("e-mail profile saved, but its send/receive schedule could not be applied")
	return fmt.Sprintf("the profile is saved, but the environment's e-mail send/receive schedule could not be brought in line with it: "+
		"ask an operator to run `starter schedules apply` (request_id %s)", id)
}

// machineLocal says why an environment may not set this profile itself: it names a
// server on the worker's own machine or network (loopback, private, link-local) or asks
// for no TLS. An environment's token must not make the worker talk to services only
// the machine can reach (a local relay would send mail as anyone); an operator sets such
// a profile with `starter environments set` (--local-mail for the development server).
func machineLocal(p store.MailProfile) string {
	for _, srv := range []struct {
		what string
		s    store.MailServer
	}{{"smtp", p.SMTP}, {"imap", p.IMAP}} {
		if srv.s.Host == "" {
			continue
		}
		if srv.s.Security == store.SecurityNone {
			return fmt.Sprintf("%s: security none is not accepted through the API; use tls or starttls (an operator can set a "+
				"profile on this machine with `starter environments set`)", srv.what)
		}
		h := strings.ToLower(strings.Trim(srv.s.Host, "[]"))
		ip := net.ParseIP(h)
		if h == "localhost" || strings.HasSuffix(h, ".localhost") ||
			(ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified())) {
			return fmt.Sprintf("%s: host %s is on the service's own machine or network, which an environment cannot choose through the API; "+
				"an operator sets such a profile with `starter environments set`", srv.what, srv.s.Host)
		}
	}
	return ""
}
