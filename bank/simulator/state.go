package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// StateFile is the file in Options.Dir where the simulator keeps its users and
// what they sent.
const StateFile = "state.json"

// A bank remembers who may connect and which MsgIds it has seen long after a
// restart: a file sent again after the simulator restarted is still a
// duplicate, and a report not yet written is written by the next run. Kept:
// users and their public keys, the MsgIds seen per user, the files received,
// the reports (pending ones with their content) and the counters that name
// reports. Not kept: the fault scenarios (drop-next, drop-after-rename,
// hold-next, slow).
type state struct {
	Version int                   `json:"version"`
	Seq     int                   `json:"seq"` // numbers the reports' own MsgIds
	Users   map[string]*userState `json:"users"`
}

type userState struct {
	Keys    []string       `json:"keys"` // authorized_keys lines
	Seen    map[string]int `json:"seen"` // MsgId -> complete arrivals
	Files   []FileRecord   `json:"files"`
	Reports []ReportRecord `json:"reports"`
	Next    map[string]int `json:"next"` // report name stem -> last n used
}

// FileRecord is one file the bank consumed from a user's upload folder.
type FileRecord struct {
	Name       string    `json:"name"`        // as uploaded
	ArchivedAs string    `json:"archived_as"` // its name in archive/
	MsgID      string    `json:"msg_id"`      // "" when the file could not be read
	Time       time.Time `json:"time"`
	Size       int64     `json:"size"`
	// Arrival is 1 for the first file with this MsgId, 2 for the next, …
	Arrival int `json:"arrival"`
	// TimesSeen is how many files with this MsgId arrived so far (filled in
	// when listed).
	TimesSeen int `json:"times_seen"`
	// Outcome is what the bank made of it: accepted, partially-accepted,
	// rejected (the whole file, SIM-RJCT), duplicate or unreadable.
	Outcome string `json:"outcome"`
}

// ReportRecord is one pain.002 status report, written or still due.
type ReportRecord struct {
	Name        string    `json:"name"` // in download/
	MsgID       string    `json:"msg_id"`
	OrgnlMsgID  string    `json:"orgnl_msg_id"`
	GroupStatus string    `json:"group_status"`
	Due         time.Time `json:"due"`
	Written     bool      `json:"written"`
	// Content is kept only while the report is pending.
	Content []byte `json:"content,omitempty"`
}

func newState() state { return state{Version: 1, Users: map[string]*userState{}} }

func newUserState() *userState {
	return &userState{Keys: []string{}, Seen: map[string]int{}, Files: []FileRecord{}, Reports: []ReportRecord{}, Next: map[string]int{}}
}

func (s *Sim) statePath() string { return filepath.Join(s.opts.Dir, StateFile) }

// load reads the state a previous run kept, if any. A file that cannot be read
// is an error rather than a fresh start: silently forgetting users and MsgIds
// would make duplicates look new.
func (s *Sim) load() error {
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the kept state: %w", err)
	}
	st := newState()
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("read the kept state from %s: %w (move the file away to start with no users)", s.statePath(), err)
	}
	if st.Version != 1 {
		return fmt.Errorf("%s has version %d of the kept state, this simulator reads version 1 (move the file away to start with no users)",
			s.statePath(), st.Version)
	}
	for name, u := range st.Users {
		if err := checkUserName(name); err != nil {
			return fmt.Errorf("%s: %w", s.statePath(), err)
		}
		if u == nil {
			u = newUserState()
			st.Users[name] = u
		}
		for _, k := range u.Keys {
			if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
				return fmt.Errorf("%s: a key of user %q cannot be read: %w", s.statePath(), name, err)
			}
		}
		if u.Seen == nil {
			u.Seen = map[string]int{}
		}
		if u.Next == nil {
			u.Next = map[string]int{}
		}
		if u.Files == nil {
			u.Files = []FileRecord{}
		}
		if u.Reports == nil {
			u.Reports = []ReportRecord{}
		}
	}
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
	s.log.WithFields(map[string]any{"users": len(st.Users), "file": s.statePath()}).Info("kept state loaded")
	return nil
}

// save writes the state atomically: a temporary file in the same directory,
// synced, renamed over the old one, so a crash leaves the old state or the
// new, never half.
func (s *Sim) save() error {
	s.mu.Lock()
	b, err := json.MarshalIndent(s.st, "", " ")
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode the state: %w", err)
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	tmp, err := os.CreateTemp(s.opts.Dir, StateFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", s.statePath(), err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; cleans up after a failure
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), s.statePath()); err != nil {
		return fmt.Errorf("replace %s: %w", s.statePath(), err)
	}
	return nil
}

var userNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// checkUserName keeps user names usable as directory names.
func checkUserName(user string) error {
	if !userNameRE.MatchString(user) {
		return fmt.Errorf("user name %q: use 1 to 64 of A-Z a-z 0-9 . _ - starting with a letter or digit", user)
	}
	return nil
}

// ensureUserDirs creates the folders of a user's session.
func (s *Sim) ensureUserDirs(user string) error {
	for _, d := range []string{"upload", "download", "archive"} {
		if err := os.MkdirAll(filepath.Join(s.UserDir(user), d), 0o755); err != nil {
			return fmt.Errorf("create the folders of user %s: %w", user, err)
		}
	}
	return nil
}

// AddUser lets user log in with pub. It is idempotent: a key already
// registered is not added twice, and a user may have several keys. The user's
// folders are created and the state saved before it returns.
func (s *Sim) AddUser(user string, pub ssh.PublicKey) error {
	if err := checkUserName(user); err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	if pub == nil {
		return fmt.Errorf("add user %s: a public key is required", user)
	}
	if err := s.ensureUserDirs(user); err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	line := authorizedKey(pub)
	s.mu.Lock()
	u := s.st.Users[user]
	if u == nil {
		u = newUserState()
		s.st.Users[user] = u
	}
	known := false
	for _, k := range u.Keys {
		if k == line {
			known = true
		}
	}
	if !known {
		u.Keys = append(u.Keys, line)
	}
	s.mu.Unlock()
	if known {
		return nil
	}
	if err := s.save(); err != nil {
		return fmt.Errorf("add user %s: %w", user, err)
	}
	s.log.WithFields(map[string]any{"user": user, "key": ssh.FingerprintSHA256(pub)}).Info("user key registered")
	return nil
}

// UserInfo describes a registered user.
type UserInfo struct {
	User         string   `json:"user"`
	Fingerprints []string `json:"fingerprints"`
}

// Users lists the registered users with their keys' fingerprints, by name.
func (s *Sim) Users() []UserInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []UserInfo{}
	for name, u := range s.st.Users {
		ui := UserInfo{User: name, Fingerprints: []string{}}
		for _, k := range u.Keys {
			if pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err == nil {
				ui.Fingerprints = append(ui.Fingerprints, ssh.FingerprintSHA256(pub))
			}
		}
		out = append(out, ui)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].User < out[j].User })
	return out
}

// authorized says whether pub is a registered key of user.
func (s *Sim) authorized(user string, pub ssh.PublicKey) bool {
	line := authorizedKey(pub)
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Users[user]
	if u == nil {
		return false
	}
	for _, k := range u.Keys {
		if k == line {
			return true
		}
	}
	return false
}

// Received is how many times a file with msgID arrived complete from user
// (consumed from upload/), duplicates included.
func (s *Sim) Received(user, msgID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.st.Users[user]; u != nil {
		return u.Seen[msgID]
	}
	return 0
}

// Activity is what a user sent and what the bank answered.
type Activity struct {
	User    string         `json:"user"`
	Files   []FileRecord   `json:"files"`
	Reports []ReportRecord `json:"reports"`
	// Holding names the user's uploads HoldNext stalls right now (paths in the
	// user's folder, "upload/X.xml.part"), in order.
	Holding []string `json:"holding"`
}

// Files lists what user sent, oldest first, the reports, written and pending
// (without their content), and the uploads held now.
func (s *Sim) Files(user string) Activity {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := Activity{User: user, Files: []FileRecord{}, Reports: []ReportRecord{}, Holding: []string{}}
	for key := range s.held {
		if p, ok := strings.CutPrefix(key, user+"/"); ok {
			a.Holding = append(a.Holding, p)
		}
	}
	sort.Strings(a.Holding)
	u := s.st.Users[user]
	if u == nil {
		return a
	}
	for _, f := range u.Files {
		f.TimesSeen = u.Seen[f.MsgID]
		a.Files = append(a.Files, f)
	}
	for _, r := range u.Reports {
		r.Content = nil
		a.Reports = append(a.Reports, r)
	}
	return a
}
