package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ResolveSecret resolves a secret reference to its value:
//
//   - "env:NAME" is the value of environment variable NAME; unset or empty
//     is an error wrapping ErrSecretMissing that names NAME.
//   - "file:PATH" is the content of the file at PATH (relative to the
//     current directory) with trailing newlines removed; an unreadable file
//     is an error wrapping the os error, an empty one wraps ErrSecretMissing.
//   - anything else is ErrInlineSecret: secrets are not written in
//     roster.yaml.
//
// No error ever contains the secret's value (or the inline value given).
// Config.ResolveSecret resolves relative file paths against the config
// file's directory instead; prefer it.
func ResolveSecret(ref string) (string, error) {
	return resolveSecret(ref, "")
}

// ResolveSecret is like the package-level ResolveSecret, except that a
// relative "file:PATH" is relative to the directory of roster.yaml. Its
// signature matches connectors.Env.Secret.
func (c *Config) ResolveSecret(ref string) (string, error) {
	return resolveSecret(ref, c.Dir)
}

func resolveSecret(ref, dir string) (string, error) {
	switch {
	case strings.HasPrefix(ref, "env:"):
		name := strings.TrimPrefix(ref, "env:")
		if name == "" {
			return "", fmt.Errorf("config: secret reference %q names no variable", ref)
		}
		v, ok := os.LookupEnv(name)
		if !ok {
			return "", fmt.Errorf("config: secret %s: environment variable %s is not set: %w", ref, name, ErrSecretMissing)
		}
		if v == "" {
			return "", fmt.Errorf("config: secret %s: environment variable %s is empty: %w", ref, name, ErrSecretMissing)
		}
		return v, nil
	case strings.HasPrefix(ref, "file:"):
		p := strings.TrimPrefix(ref, "file:")
		if p == "" {
			return "", fmt.Errorf("config: secret reference %q names no file", ref)
		}
		if dir != "" && !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			// The *PathError names the file and the cause, never content.
			return "", fmt.Errorf("config: secret %s: %w", ref, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("config: secret %s: file %s is empty: %w", ref, p, ErrSecretMissing)
		}
		return v, nil
	}
	return "", fmt.Errorf("config: %w", ErrInlineSecret)
}
