package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// Admin API roles.
const (
	// RoleAdmin may do everything the CLI does.
	RoleAdmin = "admin"
	// RoleAuditor may only read: status, plans, workers, the audit log
	// and its exports and verification, reports.
	RoleAuditor = "auditor"
)

// SocketOff is the value of admin.socket that disables the socket.
const SocketOff = "off"

// DefaultSocketName is the admin socket's file name in the data dir.
const DefaultSocketName = "roster.sock"

// Admin configures the admin API of `roster serve`: the Unix socket the
// CLI uses on the same machine and the bearer tokens that reach the API
// over the network. The zero value (no admin block) serves the socket at
// its default place and no network API.
type Admin struct {
	// Socket is the path of the admin socket as configured: "" for the
	// default (DefaultSocketName in the data dir), SocketOff for none, or
	// an absolute path (relative in the file, to its directory). Use
	// Config.AdminSocket for the path in effect.
	Socket string
	// Tokens are the bearer tokens accepted under /api/v1/ on the
	// server's HTTP(S) listener, which serves the API only when there is
	// at least one. Names and secret references are distinct, and differ
	// from the SCIM tokens' secrets.
	Tokens []AdminToken
}

// AdminToken is one admin API bearer token. Name is the actor recorded
// in the audit log ("api:<name>"); Secret is a reference, "env:NAME" or
// "file:PATH", never the value; Role is RoleAdmin or RoleAuditor.
type AdminToken struct {
	Name   string
	Secret string
	Role   string

	src       *source
	line, col int // position of the token's entry
	secretAt  pos
}

// Errorf returns an *Error positioned at the token's entry in roster.yaml,
// for problems found when the token is used (a secret that does not
// resolve). %w in format is honoured by errors.Is and errors.As.
func (t AdminToken) Errorf(format string, args ...any) error {
	cause := fmt.Errorf(format, args...)
	e := t.src.errorAt(t.line, t.col, fmt.Sprintf("admin token %q: %s", t.Name, cause))
	e.err = cause
	return e
}

// AdminSocket returns the path of the admin socket in effect: the
// configured one, or DefaultSocketName in DataDir; "" when it is off.
func (c *Config) AdminSocket() string {
	switch c.Admin.Socket {
	case SocketOff:
		return ""
	case "":
		return filepath.Join(c.DataDir, DefaultSocketName)
	}
	return c.Admin.Socket
}

func (d *decoder) admin(c *Config, e entry) {
	d.block("admin", e, []field{
		{key: "socket", set: func(e entry) {
			v, ok := d.nonEmptyString("admin.socket", e)
			if !ok {
				return
			}
			v = strings.TrimSpace(v)
			if v != SocketOff && !filepath.IsAbs(v) {
				v = filepath.Join(c.Dir, v)
			}
			if v != SocketOff {
				v = filepath.Clean(v)
			}
			c.Admin.Socket = v
		}},
		{key: "tokens", set: func(e entry) { c.Admin.Tokens = d.adminTokens(e) }},
	})
}

func (d *decoder) adminTokens(e entry) []AdminToken {
	seq, ok := e.value.(*ast.SequenceNode)
	if !ok {
		d.errorf(e.at, "admin.tokens must be a list of {name, secret, role}, got %s", kindOf(e.value))
		return nil
	}
	var out []AdminToken
	names := map[string]bool{}
	secrets := map[string]string{}
	for i, item := range seq.Values {
		ie := entry{keyPos: nodePos(item), at: nodePos(item), value: d.resolve(item)}
		if ie.value == nil {
			continue
		}
		where := fmt.Sprintf("admin.tokens[%d]", i)
		if isNull(ie.value) {
			d.errorf(ie.at, "%s must be a mapping {name, secret, role}, got null", where)
			continue
		}
		t := AdminToken{src: d.src, line: ie.at.line, col: ie.at.col}
		ok := true
		d.block(where, ie, []field{
			{key: "name", required: true, set: func(e entry) {
				v, good := d.nonEmptyString(where+".name", e)
				if good && !tokenName.MatchString(v) {
					d.errorf(e.at, "%s %q must be letters, digits, '.', '-' and '_', starting with a letter or digit (it names the actor in the audit log)", where+".name", v)
					good = false
				}
				if good && names[v] {
					d.errorf(e.at, "%s: another admin token is already named %q", where+".name", v)
					good = false
				}
				names[v] = true
				t.Name, ok = v, ok && good
			}},
			{key: "secret", required: true, set: func(e entry) {
				v, good := d.nonEmptyString(where+".secret", e)
				if good && !strings.HasPrefix(v, "env:") && !strings.HasPrefix(v, "file:") {
					// Never echo the value: it may be a pasted token.
					d.errorf(e.at, "%s must be a reference env:NAME or file:PATH, not an inline value", where+".secret")
					good = false
				}
				t.Secret, ok, t.secretAt = v, ok && good, e.at
			}},
			{key: "role", required: true, set: func(e entry) {
				v, good := d.nonEmptyString(where+".role", e)
				if good && v != RoleAdmin && v != RoleAuditor {
					d.errorf(e.at, "%s %q must be %s (everything) or %s (read-only: status, plans, workers, audit log, exports, reports)", where+".role", v, RoleAdmin, RoleAuditor)
					good = false
				}
				t.Role, ok = v, ok && good
			}},
		})
		if !ok || t.Name == "" || t.Secret == "" || t.Role == "" {
			continue
		}
		if other, dup := secrets[t.Secret]; dup {
			d.errorf(t.secretAt, "%s: admin token %q uses the same secret %s as admin token %q; each token needs its own secret so the audit log names the right caller", where+".secret", t.Name, t.Secret, other)
			continue
		}
		secrets[t.Secret] = t.Name
		out = append(out, t)
	}
	return out
}

// checkAdminSecrets rejects an admin token whose secret reference is a
// SCIM token's: an HR client must not be able to call the admin API.
func (d *decoder) checkAdminSecrets(c *Config) {
	if c.SCIM == nil {
		return
	}
	for i, t := range c.Admin.Tokens {
		for _, s := range c.SCIM.Tokens {
			if s.Secret == t.Secret {
				d.errorf(t.secretAt, "admin.tokens[%d].secret: admin token %q uses the same secret %s as scim token %q; admin tokens must be distinct from SCIM tokens", i, t.Name, t.Secret, s.Name)
			}
		}
	}
}

// marshal renders the admin block (secrets as their references), or nil
// when everything is at its default.
func (a Admin) marshal() yaml.MapSlice {
	var out yaml.MapSlice
	if a.Socket != "" {
		out = append(out, yaml.MapItem{Key: "socket", Value: a.Socket})
	}
	if len(a.Tokens) > 0 {
		tokens := make([]yaml.MapSlice, len(a.Tokens))
		for i, t := range a.Tokens {
			tokens[i] = yaml.MapSlice{{Key: "name", Value: t.Name}, {Key: "secret", Value: t.Secret}, {Key: "role", Value: t.Role}}
		}
		out = append(out, yaml.MapItem{Key: "tokens", Value: tokens})
	}
	return out
}
