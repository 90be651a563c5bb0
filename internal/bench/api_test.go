package bench

import (
	"fmt"
	"strings"
	"testing"
)

// The example of the Standard Webhooks specification (and of its reference libraries):
// the receiver must accept exactly this signature, and nothing altered.
func TestVerifySignatureStandardWebhooksExample(t *testing.T) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts     = "1614265330"
		body   = `{"test": 2432232314}`
		sig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	if !verifySignature(secret, id, ts, []byte(body), sig) {
		t.Fatal("the specification's example does not verify")
	}
	if !verifySignature(secret, id, ts, []byte(body), "v1,bm90IHRoaXMgb25l "+sig) {
		t.Error("a header with several signatures (a secret being rotated) must verify when one matches")
	}
	for name, c := range map[string][5]string{
		"other body":      {secret, id, ts, `{"test": 2432232315}`, sig},
		"other id":        {secret, "msg_other", ts, body, sig},
		"other timestamp": {secret, id, "1614265331", body, sig},
		"other secret":    {"whsec_" + "AAAA" + secret[10:], id, ts, body, sig},
		"no secret":       {"", id, ts, body, sig},
		"other version":   {secret, id, ts, body, "v2" + sig[2:]},
		"no signature":    {secret, id, ts, body, ""},
	} {
		if verifySignature(c[0], c[1], c[2], []byte(c[3]), c[4]) {
			t.Errorf("%s: verifies, must not", name)
		}
	}
}

// Both paths get the same number of declarations, in rounds ordered D A A D, so that
// neither always follows the other.
func TestRoundsAlternateFairly(t *testing.T) {
	for _, c := range []struct{ n, conc, chunks int }{{40, 16, 4}, {200, 16, 4}, {1000, 16, 12}, {10000, 16, 20}, {3, 16, 2}, {1, 16, 1}} {
		t.Run(fmt.Sprint(c.n), func(t *testing.T) {
			rs := rounds(c.n, c.conc)
			if len(rs) != c.chunks {
				t.Fatalf("%d chunks, want %d: %v", len(rs), c.chunks, rs)
			}
			api, direct, next := 0, 0, 0
			for k, r := range rs {
				if r[0] != next || r[1] <= r[0] {
					t.Fatalf("chunks do not cover 0..%d in order: %v", c.n-1, rs)
				}
				next = r[1]
				if viaAPI(k) {
					api += r[1] - r[0]
				} else {
					direct += r[1] - r[0]
				}
			}
			if next != c.n || api-direct > 2 || direct-api > 2 {
				t.Errorf("api %d, direct %d of %d: %v", api, direct, c.n, rs)
			}
			if !viaAPI(1) || !viaAPI(2) || viaAPI(0) || viaAPI(3) {
				t.Error("the order is not D A A D")
			}
		})
	}
}

// Several API processes (the scale-out measurement) are taken in turn.
func TestAPIClientTakesSeveralAPIsInTurn(t *testing.T) {
	c := newAPIClient(" http://a:1/, http://b:2 ,", 4)
	if len(c.bases) != 2 {
		t.Fatalf("bases: %q", c.bases)
	}
	var got []string
	for range 4 {
		got = append(got, c.next())
	}
	if strings.Join(got, " ") != "http://a:1 http://b:2 http://a:1 http://b:2" {
		t.Fatalf("turns: %q", got)
	}
}
