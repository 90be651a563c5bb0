package digipoort_test

import (
	"context"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"koerier/digipoort/devcerts"
	"koerier/digipoort/simulator"
)

type observation struct {
	op   string
	took time.Duration
	err  error
}

type observer struct {
	mu  sync.Mutex
	got []observation
}

func (o *observer) observe(op string, took time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, observation{op, took, err})
}

func (o *observer) all() []observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]observation(nil), o.got...)
}

// Config.Observe sees every SOAP call, with its operation, its duration and its
// error: a delivery and a status query that worked, and a delivery that failed on TLS.
func TestObserveSeesEveryCall(t *testing.T) {
	sim := startSim(t, simulator.Options{})
	cfg, err := sim.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	var obs observer
	cfg.Observe = obs.observe
	c := newClient(t, cfg)
	ctx := context.Background()
	resp, err := c.Deliver(ctx, request("2026000900"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Statuses(ctx, resp.Kenmerk, time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	got := obs.all()
	if len(got) != 2 || got[0].op != "aanleveren" || got[0].err != nil || got[0].took <= 0 ||
		got[1].op != "getStatussenProces" || got[1].err != nil || got[1].took <= 0 {
		t.Fatalf("observations %+v; want aanleveren and getStatussenProces, both without error", got)
	}
	if n := sim.Calls("aanleveren"); n != 1 {
		t.Fatalf("the simulator saw %d deliveries", n)
	}

	other, err := devcerts.SelfSigned(devcerts.ClientTemplate("another CA"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(other.Cert)
	cfg.ServerCAs = pool
	var failed observer
	cfg.Observe = failed.observe
	_, derr := newClient(t, cfg).Deliver(ctx, request("2026000901"))
	if derr == nil {
		t.Fatal("a delivery to a server the CA does not vouch for worked")
	}
	if got := failed.all(); len(got) != 1 || got[0].op != "aanleveren" || got[0].err == nil || got[0].err.Error() != derr.Error() {
		t.Fatalf("observations %+v; want the failed aanleveren with the error the caller got (%v)", got, derr)
	}
}
