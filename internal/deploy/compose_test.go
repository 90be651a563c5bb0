package deploy

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"koerier/digipoort/devcerts"
	"koerier/internal/config"
)

const root = "../.."

// loadCompose loads docker-compose.yml as `docker compose up` does (interpolation,
// anchors and merge keys, validation against the Compose schema), with every profile
// active so that the command-line service is checked too. No .env file is read: the
// file must not depend on one.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithProfiles([]string{"*"}), cli.WithDiscardEnvFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker compose would refuse docker-compose.yml: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("docker-compose.yml has no service %q: %v", name, err)
	}
	return s
}

func env(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// dockerfileBinaries maps each binary the Dockerfile builds into /out (copied to
// /koerier) to the package it is built from.
func dockerfileBinaries(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "COPY --from=build /out/ /koerier/") {
		t.Fatal("the Dockerfile no longer copies /out/ to /koerier/: update this test with it")
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`go build [^\n]*-o /out/(\S+) (\./\S+)`).FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = m[2]
	}
	return out
}

func dependsOn(p *types.Project, from, to string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(name string) bool {
		if seen[name] {
			return false
		}
		seen[name] = true
		s, err := p.GetService(name)
		if err != nil {
			return false
		}
		for dep := range s.DependsOn {
			if dep == to || walk(dep) {
				return true
			}
		}
		if strings.HasPrefix(s.NetworkMode, "service:") && walk(strings.TrimPrefix(s.NetworkMode, "service:")) {
			return true
		}
		return false
	}
	return walk(from)
}

func TestComposeServicesRunWhatTheImagesHold(t *testing.T) {
	p := loadCompose(t)
	bins := dockerfileBinaries(t)
	for _, name := range []string{"postgres", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui", "simulator", "worker", "api",
		"schedules", "starter"} {
		service(t, p, name)
	}
	for name, s := range p.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("service %s has neither an image nor a build", name)
		}
		if s.Image != "" && !strings.Contains(s.Image, ":") {
			t.Errorf("service %s runs %s without a tag: pin the release", name, s.Image)
		}
		if s.Build == nil {
			continue
		}
		if s.Build.Context != mustAbs(t, root) {
			t.Errorf("service %s builds from %s, not this repository", name, s.Build.Context)
		}
		// Every Koerier service runs one of the image's binaries, and that binary is
		// built from a main package in this repository.
		argv := append(slices.Clone(s.Entrypoint), s.Command...)
		if len(argv) == 0 || !strings.HasPrefix(argv[0], "/koerier/") {
			t.Errorf("service %s runs %q: want one of the image's binaries in /koerier/", name, argv)
			continue
		}
		bin := strings.TrimPrefix(argv[0], "/koerier/")
		pkg, ok := bins[bin]
		if !ok {
			t.Errorf("service %s runs /koerier/%s, which the Dockerfile does not build", name, bin)
			continue
		}
		if !isMainPackage(t, filepath.Join(root, pkg)) {
			t.Errorf("the Dockerfile builds %s from %s, which holds no main package", bin, pkg)
		}
	}
	if bins["koerier-api"] != "./api/cmd/koerier-api" {
		t.Errorf("the Dockerfile must build the API from ./api/cmd/koerier-api; it builds %v", bins)
	}
}

func TestComposeTemporalIsServerWithSchemaJobOnPostgres(t *testing.T) {
	p := loadCompose(t)
	for name, s := range p.Services {
		if strings.Contains(s.Image, "auto-setup") {
			t.Errorf("service %s still runs the deprecated %s", name, s.Image)
		}
	}
	pg := env(service(t, p, "postgres"))
	schema, server, ns := service(t, p, "temporal-schema"), service(t, p, "temporal"), service(t, p, "temporal-namespace")
	release := strings.TrimPrefix(server.Image, "temporalio/server:")
	if release == server.Image || release == "" {
		t.Fatalf("temporal runs %q, want temporalio/server:<release>", server.Image)
	}
	for _, s := range []types.ServiceConfig{schema, ns} {
		if s.Image != "temporalio/admin-tools:"+release {
			t.Errorf("%s runs %s: want temporalio/admin-tools:%s, the server's release, whose schemas match it", s.Name, s.Image, release)
		}
	}

	// The schema job creates and updates both databases the server uses, on the
	// Postgres service, as the server's user.
	if d := server.DependsOn["temporal-schema"]; d.Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("temporal must wait until the schema job has completed successfully; its depends_on: %+v", server.DependsOn)
	}
	if d := schema.DependsOn["postgres"]; d.Condition != types.ServiceConditionHealthy {
		t.Errorf("the schema job must wait for a healthy Postgres; its depends_on: %+v", schema.DependsOn)
	}
	se := env(schema)
	if se["SQL_PLUGIN"] != "postgres12" || se["SQL_HOST"] != "postgres" || se["SQL_USER"] != pg["POSTGRES_USER"] ||
		se["SQL_PASSWORD"] != pg["POSTGRES_PASSWORD"] {
		t.Errorf("the schema job's temporal-sql-tool settings do not reach the postgres service: %v", se)
	}
	script := strings.Join(append(slices.Clone(schema.Entrypoint), schema.Command...), " ")
	for _, want := range []string{"temporal-sql-tool", " create", "setup-schema -v 0.0", "update-schema -d",
		"/etc/temporal/schema/postgresql/v12/", "temporal temporal_visibility", "dir=visibility", "set -eu"} {
		if !strings.Contains(script, want) {
			t.Errorf("the schema job's script lacks %q:\n%s", want, script)
		}
	}
	ve := env(server)
	if ve["DB"] != "postgres12" || ve["POSTGRES_SEEDS"] != "postgres" || ve["POSTGRES_USER"] != pg["POSTGRES_USER"] ||
		ve["POSTGRES_PWD"] != pg["POSTGRES_PASSWORD"] || ve["BIND_ON_IP"] != "0.0.0.0" {
		t.Errorf("temporal's persistence settings do not reach the postgres service, or it binds to loopback only: %v", ve)
	}
	// The server's defaults for the two databases are the ones the schema job makes.
	for _, k := range []string{"DBNAME", "VISIBILITY_DBNAME", "ENABLE_ES"} {
		if v, ok := ve[k]; ok {
			t.Errorf("temporal sets %s=%s: the schema job makes temporal and temporal_visibility on Postgres", k, v)
		}
	}
	if server.HealthCheck == nil || len(server.HealthCheck.Test) == 0 {
		t.Error("temporal has no health check, so nothing can wait for it to listen")
	}
	if d := ns.DependsOn["temporal"]; d.Condition != types.ServiceConditionHealthy {
		t.Errorf("the namespace job must wait for a healthy server; its depends_on: %+v", ns.DependsOn)
	}
	nsScript := strings.Join(append(slices.Clone(ns.Entrypoint), ns.Command...), " ")
	if !strings.Contains(nsScript, "namespace create --namespace default") || !strings.Contains(nsScript, "--address temporal:7233") {
		t.Errorf("the namespace job does not create the namespace Koerier uses:\n%s", nsScript)
	}
	for _, s := range []string{"worker", "api", "schedules"} {
		if !dependsOn(p, s, "temporal-schema") || !dependsOn(p, s, "temporal-namespace") {
			t.Errorf("%s does not wait for Temporal's schema and namespace", s)
		}
	}
	for _, s := range []string{"worker", "api"} {
		if d := service(t, p, s).DependsOn["temporal-namespace"]; d.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s must wait until the namespace job has completed successfully", s)
		}
	}
}

func TestComposeKoerierServicesHaveTheirSettings(t *testing.T) {
	p := loadCompose(t)
	pg := env(service(t, p, "postgres"))
	for _, name := range []string{"worker", "api", "schedules", "starter"} {
		s := service(t, p, name)
		e := env(s)
		for _, k := range []string{"KOERIER_DATABASE_URL", "KOERIER_TEMPORAL_ADDRESS", "KOERIER_TEMPORAL_NAMESPACE"} {
			if e[k] == "" {
				t.Errorf("%s lacks %s", name, k)
			}
		}
		// The same reader the binaries use accepts the settings.
		cfg, err := config.FromLookup(lookup(e))
		if err != nil {
			t.Errorf("%s: internal/config refuses its environment: %v", name, err)
			continue
		}
		u, err := url.Parse(cfg.DatabaseURL)
		if err != nil {
			t.Fatalf("%s: KOERIER_DATABASE_URL: %v", name, err)
		}
		pw, _ := u.User.Password()
		if u.Hostname() != "postgres" || u.User.Username() != pg["POSTGRES_USER"] || pw != pg["POSTGRES_PASSWORD"] || u.Path != "/"+pg["POSTGRES_DB"] {
			t.Errorf("%s: KOERIER_DATABASE_URL %s does not reach the postgres service's database", name, cfg.DatabaseURL)
		}
		if cfg.TemporalAddress != "temporal:7233" || cfg.Namespace != "default" {
			t.Errorf("%s: Temporal at %s namespace %s, want the temporal service and the namespace the job creates", name, cfg.TemporalAddress, cfg.Namespace)
		}
	}

	// The worker and the command line reach the simulator on 127.0.0.1 by sharing its
	// network, and read its development PKI from the shared volume.
	sim := service(t, p, "simulator")
	simDir, simAddr := flagValue(sim.Command, "-dir"), flagValue(sim.Command, "-addr")
	simVolume := volumeAt(sim, simDir)
	if simVolume == "" {
		t.Fatalf("the simulator's -dir %q is not on a volume", simDir)
	}
	for _, name := range []string{"worker", "starter"} {
		s := service(t, p, name)
		e := env(s)
		if s.NetworkMode != "service:simulator" {
			t.Errorf("%s must share the simulator's network (its certificate is for 127.0.0.1); network_mode %q", name, s.NetworkMode)
		}
		if e["KOERIER_DIGIPOORT_URL"] != "https://"+simAddr {
			t.Errorf("%s: KOERIER_DIGIPOORT_URL=%q, want https://%s", name, e["KOERIER_DIGIPOORT_URL"], simAddr)
		}
		mount := mountOf(s, simVolume)
		if mount == "" {
			t.Errorf("%s does not mount the simulator's certificates volume %s", name, simVolume)
			continue
		}
		want := devcerts.PathsIn(mount)
		for k, v := range map[string]string{"KOERIER_DIGIPOORT_CLIENT_CERT": want.ClientCert, "KOERIER_DIGIPOORT_CLIENT_KEY": want.ClientKey,
			"KOERIER_DIGIPOORT_CA": want.CA, "KOERIER_DIGIPOORT_SIGNING_CERT": want.SigningCert} {
			if e[k] != v {
				t.Errorf("%s: %s=%q, want %q (the file the simulator writes)", name, k, e[k], v)
			}
		}
	}

	// The API listens on every interface of its container, on the port the host
	// publishes (on loopback only).
	api := service(t, p, "api")
	host, port, err := net.SplitHostPort(env(api)["KOERIER_API_ADDR"])
	if err != nil || host != "0.0.0.0" {
		t.Errorf("api: KOERIER_API_ADDR=%q, want 0.0.0.0:<port> (inside its container)", env(api)["KOERIER_API_ADDR"])
	}
	published := false
	for _, pc := range api.Ports {
		if pc.Published == "8080" && port == strconv.FormatUint(uint64(pc.Target), 10) {
			published = true
		}
	}
	if !published {
		t.Errorf("api: port %s is not published as 127.0.0.1:8080: %+v", port, api.Ports)
	}

	// The command line reads files under the project folder by their relative path.
	st := service(t, p, "starter")
	if st.WorkingDir == "" || mountOfBind(st, mustAbs(t, root)) != st.WorkingDir {
		t.Errorf("starter: this folder must be mounted at its working directory, for `queue --file`; working_dir %q, volumes %+v",
			st.WorkingDir, st.Volumes)
	}
}

func TestComposePublishesOnLoopbackOnly(t *testing.T) {
	p := loadCompose(t)
	want := map[string]string{"temporal": "7233", "temporal-ui": "8233", "api": "8080"}
	for name, s := range p.Services {
		for _, pc := range s.Ports {
			if pc.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s:%s to every interface of the host: bind it to 127.0.0.1", name, pc.HostIP, pc.Published)
			}
			if want[name] == pc.Published {
				delete(want, name)
			}
		}
	}
	for name, port := range want {
		t.Errorf("%s does not publish 127.0.0.1:%s", name, port)
	}
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func volumeAt(s types.ServiceConfig, target string) string {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == target {
			return v.Source
		}
	}
	return ""
}

func mountOf(s types.ServiceConfig, volume string) string {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == volume {
			return v.Target
		}
	}
	return ""
}

func mountOfBind(s types.ServiceConfig, source string) string {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == source && v.ReadOnly {
			return v.Target
		}
	}
	return ""
}

func isMainPackage(t *testing.T, dir string) bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err == nil && regexp.MustCompile(`(?m)^package main$`).Match(b) {
			return true
		}
	}
	return false
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
