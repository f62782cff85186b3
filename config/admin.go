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
	roles := make([]string, len(seq.Values))
	role := func(i int, where string) ([]field, func() bool) {
		good := false
		return []field{{key: "role", required: true, set: func(e entry) {
			v, g := d.nonEmptyString(where+".role", e)
			if g && v != RoleAdmin && v != RoleAuditor {
				d.errorf(e.at, "%s %q must be %s (everything) or %s (read-only: status, plans, workers, audit log, exports, reports)", where+".role", v, RoleAdmin, RoleAuditor)
				g = false
			}
			roles[i], good = v, g
		}}}, func() bool { return good }
	}
	var out []AdminToken
	for _, t := range d.tokenList(seq, tokenListSpec{what: "admin.tokens", shape: "{name, secret, role}", noun: "admin token", who: "caller", extra: role}) {
		out = append(out, AdminToken{Name: t.name, Secret: t.secret, Role: roles[t.index], src: d.src, line: t.at.line, col: t.at.col, secretAt: t.secretAt})
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
