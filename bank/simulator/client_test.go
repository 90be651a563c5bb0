package simulator

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The control client against a real simulator: the host key it reads is the one the
// SFTP server presents, a registered key logs in, and the files it lists are the
// ones uploaded.
func TestControlClient(t *testing.T) {
	sim := startSim(t, t.TempDir())
	ctx := context.Background()
	// As `make run` writes it: host:port, no scheme, a trailing slash.
	addr := strings.TrimPrefix(sim.ControlURL(), "http://") + "/"

	hk, err := HostKeyOf(ctx, addr)
	require.NoError(t, err)
	assert.Equal(t, HostKeyInfo{AuthorizedKey: sim.HostKey(), Fingerprint: sim.Fingerprint(), Addr: sim.Addr()}, hk)

	key := newKey(t)
	_, err = dialSFTP(sim, "demo", key)
	require.Error(t, err, "an unregistered key logs in")
	require.NoError(t, Register(ctx, addr, "demo", key.PublicKey()))
	require.NoError(t, Register(ctx, sim.ControlURL(), "demo", key.PublicKey()), "registering again")
	c := mustDial(t, sim, "demo", key)
	require.NoError(t, putFile(c, "MSG-CL-1.xml", pain001("MSG-CL-1", 0, "Papiergroothandel Noord B.V.")))
	waitReports(t, c, "MSG-CL-1", 1)

	act, err := FilesOf(ctx, addr, "demo")
	require.NoError(t, err)
	require.Len(t, act.Files, 1)
	assert.Equal(t, "MSG-CL-1", act.Files[0].MsgID)
	assert.Equal(t, 1, act.Files[0].TimesSeen)
	act, err = FilesOf(ctx, addr, "nobody")
	require.NoError(t, err)
	assert.Empty(t, act.Files)

	problem := func(err error) ControlProblem {
		var ce *ControlError
		if !errors.As(err, &ce) {
			t.Fatalf("%v (%T) is no *ControlError", err, err)
		}
		return ce.Problem
	}
	err = Register(ctx, addr, "a/b", key.PublicKey())
	assert.Equal(t, Refused, problem(err), "%v", err)
	assert.Contains(t, err.Error(), "400")

	// Nothing listening: a port just closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, err = HostKeyOf(ctx, closed)
	assert.Equal(t, NoAnswer, problem(err), "%v", err)
	assert.Contains(t, err.Error(), closed)

	// Something else answers: a web page, or JSON without a host key.
	for _, body := range []string{"<html>hello</html>", `{"authorized_key":"not a key"}`} {
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) }))
		_, err = HostKeyOf(ctx, other.URL)
		other.Close()
		assert.Equal(t, NotSimulator, problem(err), "%s: %v", body, err)
	}

	sim.Close()
	err = Register(ctx, addr, "demo", key.PublicKey())
	assert.Equal(t, NoAnswer, problem(err), "after Close: %v", err)
}
