package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestPolicyFiles(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")
	got, err := c.PolicyFiles()
	want := []string{filepath.Join(dir, "policies/base.yaml"), filepath.Join(dir, "policies/engineering.yaml")}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("PolicyFiles = %q, %v; want %q", got, err, want)
	}
	got, err = c.PolicyTestFiles()
	if want := []string{filepath.Join(dir, "tests/engineering_test.yaml")}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("PolicyTestFiles = %q, %v; want %q", got, err, want)
	}
}

// configIn parses a config living in dir with the given policies globs.
func configIn(t *testing.T, dir string, globs ...string) *Config {
	t.Helper()
	c, err := Parse(filepath.Join(dir, "roster.yaml"), []byte(src("version: 1", "policies: ['"+strings.Join(globs, "', '")+"']", "connectors: {g: {type: memory}}")))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPolicyFilesExpansion(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"pol/b.yaml", "pol/a.yaml", "pol/dir.yaml/inner.yaml", "extra/c.yaml"} {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	abs := func(p string) string { return filepath.Join(dir, p) }

	// Sorted, deduplicated across patterns, directories skipped, absolute
	// patterns allowed.
	c := configIn(t, dir, "pol/*.yaml", "pol/a.yaml", abs("extra/*.yaml"), "extra/c.yaml")
	got, err := c.PolicyFiles()
	want := []string{abs("extra/c.yaml"), abs("pol/a.yaml"), abs("pol/b.yaml")}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("PolicyFiles = %q, %v; want %q", got, err, want)
	}

	for _, pattern := range []string{"missing/*.yaml", "pol/*.yml", "pol/dir.yaml"} {
		c := configIn(t, dir, "pol/*.yaml", pattern)
		got, err := c.PolicyFiles()
		if !errors.Is(err, ErrNoMatch) || got != nil {
			t.Errorf("%s: got %q, %v; want ErrNoMatch", pattern, got, err)
			continue
		}
		if !strings.Contains(err.Error(), `"`+pattern+`"`) || !strings.Contains(err.Error(), "policies") {
			t.Errorf("error does not name the pattern and key: %v", err)
		}
	}

	if got, err := configIn(t, dir, "pol/*.yaml").PolicyTestFiles(); got != nil || err != nil {
		t.Errorf("no policy_tests: %q, %v", got, err)
	}
}
