package config

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadFullAdmin(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")
	if want := filepath.Join(dir, "run", "roster.sock"); c.Admin.Socket != want || c.AdminSocket() != want {
		t.Errorf("socket %q (in effect %q), want %q", c.Admin.Socket, c.AdminSocket(), want)
	}
	var got []string
	for _, tk := range c.Admin.Tokens {
		got = append(got, tk.Name+"="+tk.Secret+"="+tk.Role)
	}
	want := []string{"ops=env:ROSTER_ADMIN_TOKEN=admin", "soc2-auditor=file:secrets/auditor-token=auditor"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tokens %q, want %q", got, want)
	}
}

func TestAdminSocketDefaultAndOff(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  func(c *Config) string
	}{
		{"no admin block", []string{"version: 1"}, func(c *Config) string { return filepath.Join(c.DataDir, "roster.sock") }},
		{"socket off", []string{"version: 1", "admin: {socket: off}"}, func(*Config) string { return "" }},
		{"absolute socket", []string{"version: 1", "admin: {socket: /run/roster/admin.sock}"}, func(*Config) string { return "/run/roster/admin.sock" }},
		{"relative socket", []string{"version: 1", "admin:", "  socket: ./run/../a.sock"}, func(c *Config) string { return filepath.Join(c.Dir, "a.sock") }},
		{"tokens only", []string{"version: 1", "admin:", "  tokens: [{name: ops, secret: env:X, role: admin}]"}, func(c *Config) string { return filepath.Join(c.DataDir, "roster.sock") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("roster.yaml", []byte(withTail(tt.lines...)))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := c.AdminSocket(), tt.want(c); got != want {
				t.Errorf("AdminSocket() = %q, want %q", got, want)
			}
			// The default follows --data-dir; a configured path does not.
			moved, err := c.WithDataDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if c.Admin.Socket == "" && moved.AdminSocket() != filepath.Join(moved.DataDir, "roster.sock") {
				t.Errorf("default socket did not follow the data dir: %q", moved.AdminSocket())
			}
			if c.Admin.Socket != "" && moved.AdminSocket() != c.AdminSocket() {
				t.Errorf("configured socket moved with the data dir: %q", moved.AdminSocket())
			}
		})
	}
}

func TestParseRejectsAdmin(t *testing.T) {
	tests := []struct {
		name string
		src  string
		at   string // "line:col"
		msg  string // substring of Msg
	}{
		{"admin a list", withTail("version: 1", "admin: [a]"), "2:8", "admin must be a mapping, got a list"},
		{"unknown key", withTail("version: 1", "admin:", "  sockets: x"), "3:3", `unknown key "sockets" in admin (did you mean "socket"?)`},
		{"socket empty", withTail("version: 1", "admin: {socket: ''}"), "2:17", "admin.socket must not be empty"},
		{"socket a number", withTail("version: 1", "admin: {socket: 5}"), "2:17", "admin.socket must be a string, got an integer"},
		{"tokens a mapping", withTail("version: 1", "admin:", "  tokens: {ops: env:X}"), "3:11", "admin.tokens must be a list"},
		{"token null", withTail("version: 1", "admin:", "  tokens:", "    -"), "4:6", "admin.tokens[0] must be a mapping {name, secret, role}, got null"},
		{"token without role", withTail("version: 1", "admin:", "  tokens:", "    - {name: ops, secret: env:X}"), "4:7", `missing required key "role" in admin.tokens[0]`},
		{"token bad role", withTail("version: 1", "admin:", "  tokens:", "    - {name: ops, secret: env:X, role: root}"), "4:40", `admin.tokens[0].role "root" must be admin (everything) or auditor`},
		{"token without name", withTail("version: 1", "admin:", "  tokens:", "    - {secret: env:X, role: admin}"), "4:7", `missing required key "name" in admin.tokens[0]`},
		{"token bad name", withTail("version: 1", "admin:", "  tokens:", "    - {name: 'o p', secret: env:X, role: admin}"), "4:14", `admin.tokens[0].name "o p" must be letters`},
		{"token duplicate name", withTail("version: 1", "admin:", "  tokens:", "    - {name: ops, secret: env:X, role: admin}", "    - {name: ops, secret: env:Y, role: auditor}"), "5:14", `another admin token is already named "ops"`},
		{"token shared secret", withTail("version: 1", "admin:", "  tokens:", "    - {name: ops, secret: env:X, role: admin}", "    - {name: aud, secret: env:X, role: auditor}"), "5:27", `admin token "aud" uses the same secret env:X as admin token "ops"`},
		{"token inline secret", withTail("version: 1", "admin:", "  tokens:", "    - name: ops", "      role: admin", "      secret: s3cr3t-value"), "6:15", "admin.tokens[0].secret must be a reference env:NAME or file:PATH, not an inline value"},
		{"token secret of a scim token", withTail("version: 1", "scim:", "  tokens: [{name: hr, secret: env:X}]", "admin:", "  tokens:", "    - {name: ops, secret: env:X, role: admin}"), "6:27", `admin token "ops" uses the same secret env:X as scim token "hr"`},
		{"token unknown key", withTail("version: 1", "admin:", "  tokens:", "    - {name: ops, secret: env:X, role: admin, scope: all}"), "4:47", `unknown key "scope" in admin.tokens[0]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantOneError(t, tt.src, tt.at, tt.msg)
		})
	}
}

func TestAdminTokenErrorf(t *testing.T) {
	c, err := Parse("roster.yaml", []byte(withTail("version: 1", "admin:", "  tokens:", "    - name: ops", "      secret: env:ROSTER_TEST_UNSET_ADMIN", "      role: admin")))
	if err != nil {
		t.Fatal(err)
	}
	tok := c.Admin.Tokens[0]
	_, rerr := c.ResolveSecret(tok.Secret)
	err = tok.Errorf("%w", rerr)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrSecretMissing) || e.Line != 4 || e.Col != 7 ||
		!strings.Contains(err.Error(), `roster.yaml:4:7: admin token "ops": `) || !strings.Contains(err.Error(), "ROSTER_TEST_UNSET_ADMIN") {
		t.Errorf("got %v", err)
	}
}
