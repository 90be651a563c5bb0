package simulator

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// dialRaw is dialSFTP over a socket the test holds, so that closing it is what a
// killed client's kernel does: the connection ends without a goodbye.
func dialRaw(t *testing.T, sim *Sim, user string, key ssh.Signer) (*sftp.Client, net.Conn) {
	t.Helper()
	pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(sim.HostKey()))
	require.NoError(t, err)
	nc, err := net.DialTimeout("tcp", sim.Addr(), 5*time.Second)
	require.NoError(t, err)
	sc, chans, reqs, err := ssh.NewClientConn(nc, sim.Addr(), &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(pinned)})
	require.NoError(t, err)
	c, err := sftp.NewClient(ssh.NewClient(sc, chans, reqs))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close(); nc.Close() })
	return c, nc
}

// putAsync runs putFile in the background; its error arrives on the channel.
func putAsync(c *sftp.Client, name string, content []byte) <-chan error {
	done := make(chan error, 1)
	go func() { done <- putFile(c, name, content) }()
	return done
}

func waitHolding(t *testing.T, sim *Sim, want int) {
	t.Helper()
	require.Eventually(t, func() bool { return sim.Holding() == want }, 5*time.Second, 5*time.Millisecond, "holding %d", want)
}

// A held upload stalls with its connection open and part of the file written; when the
// client's connection ends (its process killed) the hold ends at once, the partial
// .part stays and is never consumed, and the next upload is not held.
func TestHoldNextStallsUntilTheClientIsGone(t *testing.T) {
	sim := startSim(t, t.TempDir())
	key := newKey(t)
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))
	c, raw := dialRaw(t, sim, "demo", key)
	c2 := mustDial(t, sim, "demo", key)

	sim.HoldNext(1, 512, time.Minute)
	content := pain001("MSG-HOLD-1", 4000, "Papiergroothandel Noord B.V.")
	done := putAsync(c, "MSG-HOLD-1.xml", content)
	waitHolding(t, sim, 1)
	assert.Equal(t, []string{"upload/MSG-HOLD-1.xml.part"}, sim.Files("demo").Holding)
	fi, err := c2.Stat("upload/MSG-HOLD-1.xml.part")
	require.NoError(t, err)
	assert.Equal(t, int64(512), fi.Size(), "stalled after 512 bytes")
	time.Sleep(10 * testStep)
	select {
	case err := <-done:
		t.Fatalf("the held upload ended during the hold: %v", err)
	default:
	}
	assert.Equal(t, 1, sim.Holding(), "still held")

	start := time.Now()
	require.NoError(t, raw.Close())
	waitHolding(t, sim, 0)
	assert.Less(t, time.Since(start), 5*time.Second, "the hold ends with the connection, not after a minute")
	select {
	case err := <-done:
		require.Error(t, err, "the client lost its connection mid-upload")
	case <-time.After(5 * time.Second):
		t.Fatal("the upload did not end with its connection")
	}
	assert.Empty(t, sim.Files("demo").Holding)
	fi, err = c2.Stat("upload/MSG-HOLD-1.xml.part")
	require.NoError(t, err, "the partial file stays")
	assert.Equal(t, int64(512), fi.Size())
	time.Sleep(10 * testStep)
	assert.False(t, exists(c2, "upload/MSG-HOLD-1.xml"))
	assert.Equal(t, 0, sim.Received("demo", "MSG-HOLD-1"), "a .part is never consumed")

	// Only the next upload was held: the retry goes through at once.
	require.NoError(t, c2.Remove("upload/MSG-HOLD-1.xml.part"))
	start = time.Now()
	require.NoError(t, putFile(c2, "MSG-HOLD-1.xml", content))
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, []string{"ACTC", "ACCP", "ACSC"}, groups(waitReports(t, c2, "MSG-HOLD-1", 3)))
	assert.Equal(t, 1, sim.Received("demo", "MSG-HOLD-1"))
	assert.Equal(t, 0, sim.Holding())
}

// A hold that runs out lets the upload go on whole; a file shorter than after_bytes
// stalls before it is closed, complete but not taken by the bank meanwhile.
func TestHoldNextEndsAfterTheHold(t *testing.T) {
	sim := startSim(t, t.TempDir())
	key := newKey(t)
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))
	c := mustDial(t, sim, "demo", key)
	const hold = 300 * time.Millisecond

	sim.HoldNext(2, 512, hold)
	start := time.Now()
	done := putAsync(c, "MSG-HOLD-2.xml", pain001("MSG-HOLD-2", 4000, "Papiergroothandel Noord B.V."))
	waitHolding(t, sim, 1)
	require.NoError(t, <-done)
	assert.GreaterOrEqual(t, time.Since(start), hold)
	assert.Equal(t, []string{"ACTC", "ACCP", "ACSC"}, groups(waitReports(t, c, "MSG-HOLD-2", 3)))

	short := pain001("MSG-HOLD-3", 0, "Papiergroothandel Noord B.V.")
	sim.HoldNext(1, len(short)+1000, hold)
	start = time.Now()
	done = putAsync(c, "MSG-HOLD-3.xml", short)
	waitHolding(t, sim, 1)
	time.Sleep(5 * testStep) // several polls of the bank during the hold
	assert.Equal(t, 0, sim.Received("demo", "MSG-HOLD-3"), "not taken while held open")
	require.NoError(t, <-done)
	assert.GreaterOrEqual(t, time.Since(start), hold)
	assert.Equal(t, []string{"ACTC", "ACCP", "ACSC"}, groups(waitReports(t, c, "MSG-HOLD-3", 3)))
	assert.Equal(t, 1, sim.Received("demo", "MSG-HOLD-3"))

	// Drop-next wins over hold-next: that upload is cut, not held, and the hold stays
	// pending for the next one.
	sim.DropNext(1, 100)
	sim.HoldNext(1, 100, hold)
	c3, err := dialSFTP(sim, "demo", key)
	require.NoError(t, err)
	defer c3.Close()
	require.Error(t, putFile(c3, "MSG-HOLD-4.xml", pain001("MSG-HOLD-4", 0, "Papiergroothandel Noord B.V.")))
	sim.mu.Lock()
	assert.Equal(t, holdRule{n: 1, afterBytes: 100, hold: hold}, sim.holdNext)
	sim.mu.Unlock()
}

// Close does not wait for a held upload's hold to run out.
func TestCloseEndsAHold(t *testing.T) {
	sim, err := Start(context.Background(), Options{Dir: t.TempDir(), Poll: 10 * time.Millisecond, Step: testStep})
	require.NoError(t, err)
	key := newKey(t)
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))
	c := mustDial(t, sim, "demo", key)
	sim.HoldNext(1, 0, time.Hour)
	done := putAsync(c, "MSG-HOLD-5.xml", pain001("MSG-HOLD-5", 0, "Papiergroothandel Noord B.V."))
	waitHolding(t, sim, 1)
	closed := make(chan error, 1)
	go func() { closed <- sim.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close waits for the hold")
	}
	require.Error(t, <-done)
	assert.Equal(t, 0, sim.Holding())
}

func TestHoldNextControl(t *testing.T) {
	sim := startSim(t, t.TempDir())
	post := func(body string) int {
		resp, err := http.Post(sim.ControlURL()+"/control/hold-next", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, post(`{"n":1,"after_bytes":512,"hold":"2m"}`))
	sim.mu.Lock()
	assert.Equal(t, holdRule{n: 1, afterBytes: 512, hold: 2 * time.Minute}, sim.holdNext)
	sim.mu.Unlock()
	assert.Equal(t, http.StatusBadRequest, post(`{"n":1,"after_bytes":512}`), "no hold")
	assert.Equal(t, http.StatusBadRequest, post(`{"n":-1,"hold":"1s"}`))
	assert.Equal(t, http.StatusBadRequest, post(`{"n":1,"after_bytes":-5,"hold":"1s"}`))
	assert.Equal(t, http.StatusBadRequest, post(`{"n":1,"hold":"1s","extra":true}`))
	assert.Equal(t, http.StatusOK, post(`{"n":0}`), "clears")
	sim.mu.Lock()
	assert.Equal(t, 0, sim.holdNext.n)
	sim.mu.Unlock()

	act, err := FilesOf(context.Background(), sim.ControlURL(), "demo")
	require.NoError(t, err)
	assert.NotNil(t, act.Holding)
	assert.Empty(t, act.Holding)
}
