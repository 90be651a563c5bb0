package digipoort

import (
	"errors"
	"fmt"
	"testing"
)

// Only an answer that came back but cannot be trusted leaves it open whether a delivery
// arrived; a Digipoort fault, a 210 or a request that never left are definite.
func TestMayHaveArrived(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"tampered answer", &Error{Op: opDeliver, Kind: Final, HTTPStatus: 200, Msg: "signature does not verify"}, true},
		{"HTTP 500 without fault", fmt.Errorf("wrapped: %w", &Error{Op: opDeliver, Kind: Transient, HTTPStatus: 500}), true},
		{"ALS100 fault", &Error{Op: opDeliver, Kind: Final, HTTPStatus: 500, Foutcode: "ALS100"}, false},
		{"status 210", &Error{Op: opDeliver, Kind: Final, HTTPStatus: 200, Statuscode: "210"}, false},
		{"never sent (field limit, TLS)", &Error{Op: opDeliver, Kind: Final}, false},
		{"a status request", &Error{Op: "getStatussenProces", Kind: Final, HTTPStatus: 200}, false},
		{"not a Digipoort error", errors.New("boom"), false},
	}
	for _, c := range cases {
		if got := MayHaveArrived(c.err); got != c.want {
			t.Errorf("%s: MayHaveArrived = %v, want %v", c.name, got, c.want)
		}
	}
}
