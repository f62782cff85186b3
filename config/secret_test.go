package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveSecretEnv(t *testing.T) {
	t.Setenv("ROSTER_TEST_TOKEN", "s3cr3t-value")
	t.Setenv("ROSTER_TEST_EMPTY", "")
	if v, err := ResolveSecret("env:ROSTER_TEST_TOKEN"); err != nil || v != "s3cr3t-value" {
		t.Errorf("got %q, %v", v, err)
	}
	for _, ref := range []string{"env:ROSTER_TEST_EMPTY", "env:ROSTER_TEST_UNSET_42"} {
		_, err := ResolveSecret(ref)
		name := strings.TrimPrefix(ref, "env:")
		if !errors.Is(err, ErrSecretMissing) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want ErrSecretMissing naming %s", ref, err, name)
		}
	}
	if _, err := ResolveSecret("env:"); err == nil {
		t.Errorf("env: without a name must fail")
	}
}

func TestResolveSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	lf := write("lf", "tok-1\n")
	crlf := write("crlf", "tok-2\r\n")
	multi := write("multi", "line1\nline2\n\n")
	empty := write("empty", "\n")

	for ref, want := range map[string]string{"file:" + lf: "tok-1", "file:" + crlf: "tok-2", "file:" + multi: "line1\nline2"} {
		if v, err := ResolveSecret(ref); err != nil || v != want {
			t.Errorf("%s: got %q, %v; want %q", ref, v, err, want)
		}
	}
	if _, err := ResolveSecret("file:" + empty); !errors.Is(err, ErrSecretMissing) {
		t.Errorf("empty file: %v", err)
	}
	if _, err := ResolveSecret("file:" + filepath.Join(dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
	if _, err := ResolveSecret("file:"); err == nil {
		t.Errorf("file: without a path must fail")
	}

	// Config.ResolveSecret: relative to the config file's directory.
	write("slack-token", "xoxb-1\n")
	c, err := Parse(filepath.Join(dir, "roster.yaml"), []byte(src("version: 1", "policies: [p/*.yaml]", "connectors: {g: {type: memory}}")))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.ResolveSecret("file:slack-token"); err != nil || v != "xoxb-1" {
		t.Errorf("relative to config dir: %q, %v", v, err)
	}
	if _, err := ResolveSecret("file:slack-token"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("plain ResolveSecret is relative to the working directory: %v", err)
	}
	// The method matches connectors.Env.Secret.
	var _ func(string) (string, error) = c.ResolveSecret
}

func TestResolveSecretRejectsInlineValues(t *testing.T) {
	for _, ref := range []string{"ghp_s3cr3tInline", "ENV:UPPER_s3cr3t", " env:SPACE_s3cr3t", ""} {
		v, err := ResolveSecret(ref)
		if !errors.Is(err, ErrInlineSecret) || v != "" {
			t.Errorf("%q: got %q, %v; want ErrInlineSecret", ref, v, err)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error echoes the inline value: %v", err)
		}
		if !strings.Contains(err.Error(), "env:NAME or file:PATH") {
			t.Errorf("error does not say what to write: %v", err)
		}
	}
}
