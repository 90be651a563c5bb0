// Package testfixtures locates Logius' reference material (XSD, WSDLs, captured
// responses) that lives next to the repository in ../shared/digipoort, for tests.
package testfixtures

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Dir returns the absolute path of ../shared/digipoort relative to the repository
// root (found by walking up from the test's package directory to go.mod). The test is
// skipped only when ../shared does not exist.
func Dir(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := wd
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			t.Fatalf("no go.mod above %s", wd)
		}
		root = parent
	}
	shared := filepath.Join(root, "..", "shared")
	if _, err := os.Stat(shared); os.IsNotExist(err) {
		t.Skipf("%s is absent: Logius' reference material is not available here", shared)
	}
	dir, err := filepath.Abs(filepath.Join(shared, "digipoort"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("%s exists but %s does not: %v", shared, dir, err)
	}
	return dir
}

// Read returns the contents of a file under ../shared/digipoort (e.g.
// "fixtures/valid-deliver-response.xml").
func Read(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(Dir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// XMLLint returns the path of xmllint, failing the test (not skipping it) when it is
// not installed.
func XMLLint(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("xmllint")
	if err != nil {
		t.Fatalf("xmllint is not installed; it validates requests against Logius' XSD: run `apt-get install -y libxml2-utils`")
	}
	return p
}
