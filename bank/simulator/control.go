package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("3s", "150ms"); a JSON number is taken as milliseconds.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return errors.New(`duration must be a string like "3s" or a number of milliseconds`)
	}
	*d = Duration(time.Duration(ms * float64(time.Millisecond)))
	return nil
}

// UserRequest is the body of POST /control/users.
type UserRequest struct {
	User      string `json:"user"`
	PublicKey string `json:"public_key"` // an authorized_keys line
}

// SlowRequest is the body of POST /control/slow.
type SlowRequest struct {
	Delay Duration `json:"delay"`
}

// DropNextRequest is the body of POST /control/drop-next.
type DropNextRequest struct {
	N          int `json:"n"`
	AfterBytes int `json:"after_bytes"`
}

// HoldNextRequest is the body of POST /control/hold-next.
type HoldNextRequest struct {
	N          int      `json:"n"`
	AfterBytes int      `json:"after_bytes"`
	Hold       Duration `json:"hold"`
}

// DropAfterRenameRequest is the body of POST /control/drop-after-rename.
type DropAfterRenameRequest struct {
	N int `json:"n"`
}

// HostKeyInfo is what GET /control/host-key returns.
type HostKeyInfo struct {
	AuthorizedKey string `json:"authorized_key"`
	Fingerprint   string `json:"fingerprint"`
	Addr          string `json:"addr"`
}

func (s *Sim) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /control/host-key", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, HostKeyInfo{AuthorizedKey: s.HostKey(), Fingerprint: s.Fingerprint(), Addr: s.Addr()})
	})
	mux.HandleFunc("GET /control/users", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Users())
	})
	mux.HandleFunc("POST /control/users", s.handleAddUser)
	mux.HandleFunc("GET /control/files", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if user == "" {
			http.Error(w, "files: name the user: ?user=NAME", http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, s.Files(user))
	})
	mux.HandleFunc("POST /control/slow", func(w http.ResponseWriter, r *http.Request) {
		var req SlowRequest
		if err := decodeJSON(r, &req); err != nil {
			http.Error(w, "slow: "+err.Error(), http.StatusBadRequest)
			return
		}
		if req.Delay < 0 {
			http.Error(w, "slow: the delay must not be negative", http.StatusBadRequest)
			return
		}
		s.SetSlow(time.Duration(req.Delay))
		s.log.WithField("delay", time.Duration(req.Delay).String()).Info("slow set")
		writeJSON(w, http.StatusOK, req)
	})
	mux.HandleFunc("POST /control/drop-next", func(w http.ResponseWriter, r *http.Request) {
		var req DropNextRequest
		if err := decodeJSON(r, &req); err != nil {
			http.Error(w, "drop-next: "+err.Error(), http.StatusBadRequest)
			return
		}
		if req.N < 0 || req.AfterBytes < 0 {
			http.Error(w, "drop-next: n and after_bytes must be 0 or more", http.StatusBadRequest)
			return
		}
		s.DropNext(req.N, req.AfterBytes)
		s.log.WithFields(map[string]any{"n": req.N, "after_bytes": req.AfterBytes}).Info("drop-next set")
		writeJSON(w, http.StatusOK, req)
	})
	mux.HandleFunc("POST /control/hold-next", func(w http.ResponseWriter, r *http.Request) {
		var req HoldNextRequest
		if err := decodeJSON(r, &req); err != nil {
			http.Error(w, "hold-next: "+err.Error(), http.StatusBadRequest)
			return
		}
		if req.N < 0 || req.AfterBytes < 0 {
			http.Error(w, "hold-next: n and after_bytes must be 0 or more", http.StatusBadRequest)
			return
		}
		if req.N > 0 && req.Hold <= 0 {
			http.Error(w, `hold-next: say how long to hold at most, e.g. "hold":"2m"`, http.StatusBadRequest)
			return
		}
		s.HoldNext(req.N, req.AfterBytes, time.Duration(req.Hold))
		s.log.WithFields(map[string]any{"n": req.N, "after_bytes": req.AfterBytes, "hold": time.Duration(req.Hold).String()}).Info("hold-next set")
		writeJSON(w, http.StatusOK, req)
	})
	mux.HandleFunc("POST /control/drop-after-rename", func(w http.ResponseWriter, r *http.Request) {
		var req DropAfterRenameRequest
		if err := decodeJSON(r, &req); err != nil {
			http.Error(w, "drop-after-rename: "+err.Error(), http.StatusBadRequest)
			return
		}
		if req.N < 0 {
			http.Error(w, "drop-after-rename: n must be 0 or more", http.StatusBadRequest)
			return
		}
		s.DropAfterRename(req.N)
		s.log.WithField("n", req.N).Info("drop-after-rename set")
		writeJSON(w, http.StatusOK, req)
	})
	return mux
}

func (s *Sim) handleAddUser(w http.ResponseWriter, r *http.Request) {
	var req UserRequest
	if err := decodeJSON(r, &req); err != nil {
		http.Error(w, "users: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := checkUserName(req.User); err != nil {
		http.Error(w, "users: "+err.Error(), http.StatusBadRequest)
		return
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(req.PublicKey)))
	if err != nil {
		http.Error(w, fmt.Sprintf("users: public_key must be one authorized_keys line (\"ssh-ed25519 AAAA…\"): %v", err), http.StatusBadRequest)
		return
	}
	if err := s.AddUser(req.User, pub); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, UserInfo{User: req.User, Fingerprints: []string{ssh.FingerprintSHA256(pub)}})
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("read JSON body: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
