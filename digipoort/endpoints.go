package digipoort

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"koerier/digipoort/internal/wire"
)

// Endpoints are the URLs of the three WUS services, one per service: Logius'
// environments do not share one path layout (the conformance environment serves the
// pickup service under a path of its own), so a base URL plus fixed paths cannot reach
// all of them.
type Endpoints struct {
	Aanlever         string `json:"aanleverservice"`         // AanleverService: aanleveren
	Statusinformatie string `json:"statusinformatieservice"` // StatusinformatieService: statuses, processes, message types
	Ophaal           string `json:"ophaalservice"`           // OphaalService: pickup
}

// Names of the endpoint presets (KOERIER_DIGIPOORT_ENVIRONMENT).
const (
	EnvironmentProduction    = "production"
	EnvironmentPreproduction = "preproduction"
	EnvironmentConformance   = "conformance"
)

// presets are Logius' published endpoints for koppelvlak 1.2 (WUS 2.0). Where they
// come from (Logius' documents are not part of this repository):
//
//   - production and preproduction: Logius' Digipoort documentation for WUS 2.0
//     (koppelvlak 1.2), as recorded in the protocol notes kept beside Logius' XSD and
//     WSDLs: https://wus.digipoort.logius.nl and
//     https://wus.preproductie.digipoort.logius.nl, each with the path
//     /wus/2.0/<service>/1.2 for aanleverservice, statusinformatieservice and
//     ophaalservice.
//   - conformance: the soap11:address location of each service in Logius' WSDLs for
//     koppelvlak 1.2 (AanleverService_V1_2.wsdl, StatusinformatieService_V1_2.wsdl,
//     OphaalService_V1_2.wsdl), on cs-bedrijven.procesinfrastructuur.nl:443. The pickup
//     service's path there is /cpl/ophaalservice/services/OphaalService_V1_2, not
//     /cpl/ophaalservice/1.2 as the other two would suggest.
var presets = map[string]Endpoints{
	EnvironmentProduction: {
		Aanlever:         "https://wus.digipoort.logius.nl/wus/2.0/aanleverservice/1.2",
		Statusinformatie: "https://wus.digipoort.logius.nl/wus/2.0/statusinformatieservice/1.2",
		Ophaal:           "https://wus.digipoort.logius.nl/wus/2.0/ophaalservice/1.2",
	},
	EnvironmentPreproduction: {
		Aanlever:         "https://wus.preproductie.digipoort.logius.nl/wus/2.0/aanleverservice/1.2",
		Statusinformatie: "https://wus.preproductie.digipoort.logius.nl/wus/2.0/statusinformatieservice/1.2",
		Ophaal:           "https://wus.preproductie.digipoort.logius.nl/wus/2.0/ophaalservice/1.2",
	},
	EnvironmentConformance: {
		Aanlever:         "https://cs-bedrijven.procesinfrastructuur.nl:443/cpl/aanleverservice/1.2",
		Statusinformatie: "https://cs-bedrijven.procesinfrastructuur.nl:443/cpl/statusinformatieservice/1.2",
		Ophaal:           "https://cs-bedrijven.procesinfrastructuur.nl:443/cpl/ophaalservice/services/OphaalService_V1_2",
	},
}

// Environments lists the preset names, sorted.
func Environments() []string {
	out := make([]string, 0, len(presets))
	for k := range presets {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// PresetEndpoints returns the endpoints of one of Logius' environments: production,
// preproduction or conformance.
func PresetEndpoints(environment string) (Endpoints, error) {
	e, ok := presets[strings.ToLower(strings.TrimSpace(environment))]
	if !ok {
		return Endpoints{}, fmt.Errorf("unknown Digipoort environment %q: use one of %s", environment, strings.Join(Environments(), ", "))
	}
	return e, nil
}

// BaseURLEndpoints returns the endpoints under one base URL with the WUS 2.0 paths
// (/wus/2.0/<service>/1.2), as production, preproduction and the simulator lay them
// out.
func BaseURLEndpoints(base string) (Endpoints, error) {
	if err := checkBaseURL(base); err != nil {
		return Endpoints{}, err
	}
	b := strings.TrimRight(base, "/")
	return Endpoints{Aanlever: b + wire.Aanlever.Path, Statusinformatie: b + wire.Statusinformatie.Path, Ophaal: b + wire.Ophaal.Path}, nil
}

// IsZero reports whether no endpoint is set.
func (e Endpoints) IsZero() bool { return e == Endpoints{} }

// forService returns the URL of one service.
func (e Endpoints) forService(s wire.Service) string {
	switch s {
	case wire.Aanlever:
		return e.Aanlever
	case wire.Statusinformatie:
		return e.Statusinformatie
	case wire.Ophaal:
		return e.Ophaal
	}
	return ""
}

// serviceWords tell the services' URLs apart: each of Logius' URLs names its service,
// so a URL naming another one is a mix-up (e.g. two variables swapped).
var serviceWords = [3]string{"aanlever", "statusinformatie", "ophaal"}

// check verifies each URL; names are what the caller calls the three fields (variable
// names or Config field names), so that a problem names what to fix.
func (e Endpoints) check(names [3]string) error {
	var errs []error
	for i, u := range [3]string{e.Aanlever, e.Statusinformatie, e.Ophaal} {
		if u == "" {
			errs = append(errs, fmt.Errorf("%s is not set: give all three service URLs", names[i]))
			continue
		}
		if err := checkServiceURL(u); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", names[i], u, err))
			continue
		}
		p := strings.ToLower(mustPath(u))
		for j, w := range serviceWords {
			if j != i && strings.Contains(p, w) && !strings.Contains(p, serviceWords[i]) {
				errs = append(errs, fmt.Errorf("%s=%q looks like the URL of the %sservice, not of the %sservice: check that the variables are not swapped",
					names[i], u, w, serviceWords[i]))
			}
		}
	}
	return errors.Join(errs...)
}

func mustPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Path
}

func checkServiceURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	switch {
	case u.Scheme != "https" || u.Host == "":
		return errors.New("must be an https:// URL (Digipoort requires mutual TLS)")
	case u.User != nil:
		return errors.New("must not carry a user name or password: Digipoort authenticates by the client certificate")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("must not have a query or fragment: give the service URL exactly as Logius publishes it")
	}
	return nil
}

func checkBaseURL(raw string) error {
	if err := checkServiceURL(raw); err != nil {
		return err
	}
	p := strings.ToLower(mustPath(raw))
	named := strings.Contains(p, "/wus/") || strings.Contains(p, "/cpl/")
	for _, w := range serviceWords {
		named = named || strings.Contains(p, w)
	}
	if named {
		return fmt.Errorf("a base URL must not name a service path (the client appends /wus/2.0/<service>/1.2); for Logius' environments set %s "+
			"(%s), for other paths set the three per-service URLs %s, %s and %s",
			EnvEnvironment, strings.Join(Environments(), ", "), EnvAanleverURL, EnvStatusinformatieURL, EnvOphaalURL)
	}
	return nil
}
