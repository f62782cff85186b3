package config

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// Defaults of the server block (`roster serve`).
const (
	DefaultListen            = "127.0.0.1:8080"
	DefaultReadTimeout       = Duration(10 * time.Second)
	DefaultWriteTimeout      = Duration(30 * time.Second)
	DefaultIdleTimeout       = Duration(60 * time.Second)
	DefaultMaxBody           = ByteSize(1 << 20) // 1MiB
	DefaultReconcileInterval = Duration(time.Hour)
	DefaultTickInterval      = Duration(time.Minute)
)

// Server configures `roster serve`: where it listens and how it runs the
// engine. Every field has a default, so a config without a server block
// serves on DefaultListen.
type Server struct {
	// Listen is the HOST:PORT to listen on; port 0 picks a free port.
	// The --listen flag overrides it. Default 127.0.0.1:8080.
	Listen string
	// TLS, when set, serves HTTPS; nil serves plain HTTP.
	TLS *TLS
	// ReadTimeout bounds reading a whole request (headers and body),
	// WriteTimeout writing the response, IdleTimeout how long a kept-alive
	// connection waits for the next request. All greater than 0. Defaults
	// 10s, 30s, 60s.
	ReadTimeout  Duration
	WriteTimeout Duration
	IdleTimeout  Duration
	// MaxBody is the largest SCIM request body accepted; a larger one is
	// answered 413. Default 1MiB.
	MaxBody ByteSize
	// ReconcileInterval is how often every app is read and everybody
	// planned (the full reconcile that finds drift); 0 means only at
	// start. Default 1h.
	ReconcileInterval Duration
	// TickInterval is how often the scheduler looks for start and end
	// dates that have come (greater than 0). Default 1m.
	TickInterval Duration
}

// TLS names the certificate and key files for HTTPS. Both are absolute;
// in the file they are relative to the config file's directory. The
// files are read when `roster serve` starts, not when the config loads.
type TLS struct {
	CertFile string
	KeyFile  string
}

// SCIM configures the SCIM 2.0 service provider of `roster serve`. It is
// nil when roster.yaml has no scim block; serve then offers no SCIM.
type SCIM struct {
	// Tokens are the bearer tokens a SCIM client may present, at least
	// one, with distinct names and distinct secret references.
	Tokens []SCIMToken
	// Mapping overrides the default mapping from worker attributes to SCIM
	// attribute paths, as written (nil when absent). An empty path removes
	// the attribute's default mapping. The SCIM package validates the
	// merged mapping when serve starts; MappingErrorf positions its
	// complaints.
	Mapping map[string]string

	src        *source
	line, col  int            // position of the scim key
	mapLine    int            // position of the mapping key (0 when absent)
	mapCol     int            //
	mappingPos map[string]pos // position of each mapping key
}

// SCIMToken is one bearer token: Name is the actor recorded in the audit
// log for every change made with it; Secret is a reference, "env:NAME" or
// "file:PATH", never the value (resolve it with Config.ResolveSecret).
type SCIMToken struct {
	Name   string
	Secret string

	src       *source
	line, col int // position of the token's entry
}

// Errorf returns an *Error positioned at the token's entry in roster.yaml,
// for problems found when the token is used (a secret that does not
// resolve). %w in format is honoured by errors.Is and errors.As.
func (t SCIMToken) Errorf(format string, args ...any) error {
	cause := fmt.Errorf(format, args...)
	e := t.src.errorAt(t.line, t.col, fmt.Sprintf("scim token %q: %s", t.Name, cause))
	e.err = cause
	return e
}

// MappingErrorf returns an *Error positioned at the mapping entry of the
// worker attribute attr in roster.yaml, or at the mapping block (or the
// scim block) when attr is not one of the overrides. %w in format is
// honoured by errors.Is and errors.As.
func (s *SCIM) MappingErrorf(attr, format string, args ...any) error {
	cause := fmt.Errorf(format, args...)
	line, col := s.line, s.col
	if s.mapLine > 0 {
		line, col = s.mapLine, s.mapCol
	}
	msg := fmt.Sprintf("scim.mapping: %s", cause)
	if p, ok := s.mappingPos[attr]; ok {
		line, col = p.line, p.col
		msg = fmt.Sprintf("scim.mapping.%s: %s", attr, cause)
	}
	e := s.src.errorAt(line, col, msg)
	e.err = cause
	return e
}

// MappingAttrs returns the overridden worker attributes, sorted.
func (s *SCIM) MappingAttrs() []string {
	out := make([]string, 0, len(s.Mapping))
	for k := range s.Mapping {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CheckListen reports whether addr is a HOST:PORT that `roster serve` can
// listen on: a port number 0..65535 (0 picks a free port) and an
// optional host (empty means every interface).
func CheckListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q must be HOST:PORT, e.g. 127.0.0.1:8080 or :8080", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || strings.TrimSpace(port) != port {
		return fmt.Errorf("listen address %q: port must be a number from 0 to 65535", addr)
	}
	if strings.ContainsAny(host, " \t/") {
		return fmt.Errorf("listen address %q: bad host %q", addr, host)
	}
	return nil
}

// tokenName is what a SCIM token may be called: it becomes the audit
// actor.
var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func defaultServer() Server {
	return Server{
		Listen:            DefaultListen,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      DefaultWriteTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxBody:           DefaultMaxBody,
		ReconcileInterval: DefaultReconcileInterval,
		TickInterval:      DefaultTickInterval,
	}
}

func (d *decoder) server(c *Config, e entry) {
	s := &c.Server
	d.block("server", e, []field{
		{key: "listen", set: func(e entry) {
			if v, ok := d.nonEmptyString("server.listen", e); ok {
				if err := CheckListen(v); err != nil {
					d.errorf(e.at, "server.listen: %v", err)
					return
				}
				s.Listen = v
			}
		}},
		{key: "tls", set: func(e entry) {
			var t TLS
			bad := false
			d.block("server.tls", e, []field{
				{key: "cert_file", required: true, set: func(e entry) {
					v, ok := d.nonEmptyString("server.tls.cert_file", e)
					t.CertFile, bad = v, bad || !ok
				}},
				{key: "key_file", required: true, set: func(e entry) {
					v, ok := d.nonEmptyString("server.tls.key_file", e)
					t.KeyFile, bad = v, bad || !ok
				}},
			})
			if !bad && t.CertFile != "" && t.KeyFile != "" {
				s.TLS = &t
			}
		}},
		{key: "read_timeout", set: func(e entry) { d.duration("server.read_timeout", e, &s.ReadTimeout, true) }},
		{key: "write_timeout", set: func(e entry) { d.duration("server.write_timeout", e, &s.WriteTimeout, true) }},
		{key: "idle_timeout", set: func(e entry) { d.duration("server.idle_timeout", e, &s.IdleTimeout, true) }},
		{key: "max_body", set: func(e entry) { d.byteSize("server.max_body", e, &s.MaxBody) }},
		{key: "reconcile_interval", set: func(e entry) {
			d.duration("server.reconcile_interval", e, &s.ReconcileInterval, false)
		}},
		{key: "tick_interval", set: func(e entry) { d.duration("server.tick_interval", e, &s.TickInterval, true) }},
	})
}

// byteSize decodes a positive size into dst.
func (d *decoder) byteSize(path string, e entry, dst *ByteSize) {
	var text string
	switch v := e.value.(type) {
	case *ast.StringNode:
		text = v.Value
	case *ast.IntegerNode:
		text = v.GetToken().Value
	default:
		d.errorf(e.at, "%s must be a size such as 1MiB, 512KiB or 1048576 (bytes), got %s", path, kindOf(e.value))
		return
	}
	v, err := ParseByteSize(text)
	switch {
	case err != nil:
		d.errorf(e.at, "%s: %v", path, err)
	case v == 0:
		d.errorf(e.at, "%s must be greater than 0", path)
	default:
		*dst = v
	}
}

func (d *decoder) scim(c *Config, e entry) {
	s := &SCIM{src: d.src, line: e.keyPos.line, col: e.keyPos.col}
	d.block("scim", e, []field{
		{key: "tokens", required: true, set: func(e entry) { s.Tokens = d.scimTokens(e) }},
		{key: "mapping", set: func(e entry) {
			s.mapLine, s.mapCol = e.keyPos.line, e.keyPos.col
			d.scimMapping(s, e)
		}},
	})
	c.SCIM = s
}

func (d *decoder) scimTokens(e entry) []SCIMToken {
	seq, ok := e.value.(*ast.SequenceNode)
	if !ok {
		d.errorf(e.at, "scim.tokens must be a list of {name, secret}, got %s", kindOf(e.value))
		return nil
	}
	if len(seq.Values) == 0 {
		d.errorf(e.at, "scim.tokens must list at least one token")
		return nil
	}
	var out []SCIMToken
	for _, t := range d.tokenList(seq, tokenListSpec{what: "scim.tokens", shape: "{name, secret}", noun: "token", who: "client"}) {
		out = append(out, SCIMToken{Name: t.name, Secret: t.secret, src: d.src, line: t.at.line, col: t.at.col})
	}
	return out
}

// tokenListSpec says how to word the problems of one list of tokens.
type tokenListSpec struct {
	what  string // "scim.tokens"
	shape string // "{name, secret}"
	noun  string // "token", "admin token"
	who   string // who the name stands for in the audit log: "client", "caller"
	// extra, when set, decodes the fields an entry has besides name and
	// secret; it returns false when one of them is wrong.
	extra func(i int, where string) (fields []field, ok func() bool)
}

// tokenEntry is what every token list shares: a name (the actor in the
// audit log) and a secret reference, with their positions.
type tokenEntry struct {
	index        int
	name, secret string
	at, secretAt pos
}

// tokenList decodes a list of tokens: each a mapping with a name (letters,
// digits, '.', '-', '_'; unique) and a secret that is an env:/file:
// reference (never an inline value, never echoed; unique, so the audit log
// names the right caller), plus spec.extra's fields. Entries with a
// problem are reported and left out.
func (d *decoder) tokenList(seq *ast.SequenceNode, spec tokenListSpec) []tokenEntry {
	var out []tokenEntry
	names := map[string]bool{}
	secrets := map[string]string{}
	for i, item := range seq.Values {
		ie := entry{keyPos: nodePos(item), at: nodePos(item), value: d.resolve(item)}
		if ie.value == nil {
			continue
		}
		where := fmt.Sprintf("%s[%d]", spec.what, i)
		if isNull(ie.value) {
			d.errorf(ie.at, "%s must be a mapping %s, got null", where, spec.shape)
			continue
		}
		t := tokenEntry{index: i, at: ie.at}
		ok := true
		fields := []field{
			{key: "name", required: true, set: func(e entry) {
				v, good := d.nonEmptyString(where+".name", e)
				if good && !tokenName.MatchString(v) {
					d.errorf(e.at, "%s %q must be letters, digits, '.', '-' and '_', starting with a letter or digit (it names the actor in the audit log)", where+".name", v)
					good = false
				}
				if good && names[v] {
					d.errorf(e.at, "%s: another %s is already named %q", where+".name", spec.noun, v)
					good = false
				}
				names[v] = true
				t.name, ok = v, ok && good
			}},
			{key: "secret", required: true, set: func(e entry) {
				v, good := d.nonEmptyString(where+".secret", e)
				if good && !strings.HasPrefix(v, "env:") && !strings.HasPrefix(v, "file:") {
					// Never echo the value: it may be a pasted token.
					d.errorf(e.at, "%s must be a reference env:NAME or file:PATH, not an inline value", where+".secret")
					good = false
				}
				t.secret, ok, t.secretAt = v, ok && good, e.at
			}},
		}
		extraOK := func() bool { return true }
		if spec.extra != nil {
			var more []field
			more, extraOK = spec.extra(i, where)
			fields = append(fields, more...)
		}
		d.block(where, ie, fields)
		if !ok || !extraOK() || t.name == "" || t.secret == "" {
			continue
		}
		if other, dup := secrets[t.secret]; dup {
			d.errorf(t.secretAt, "%s: %s %q uses the same secret %s as %s %q; each token needs its own secret so the audit log names the right %s", where+".secret", spec.noun, t.name, t.secret, spec.noun, other, spec.who)
			continue
		}
		secrets[t.secret] = t.name
		out = append(out, t)
	}
	return out
}

func (d *decoder) scimMapping(s *SCIM, e entry) {
	m, ok := e.value.(*ast.MappingNode)
	if !ok {
		d.errorf(e.at, "scim.mapping must be a mapping of worker attributes to SCIM attribute paths, got %s", kindOf(e.value))
		return
	}
	s.Mapping = map[string]string{}
	s.mappingPos = map[string]pos{}
	for _, me := range d.entries(m, 0) {
		if strings.TrimSpace(me.key) == "" {
			d.errorf(me.keyPos, "scim.mapping: a worker attribute name must not be empty")
			continue
		}
		if me.value == nil {
			continue
		}
		if isNull(me.value) {
			d.errorf(me.at, "scim.mapping.%s must be a SCIM attribute path (a string; \"\" removes the default mapping), got null", me.key)
			continue
		}
		var v string
		switch n := me.value.(type) {
		case *ast.StringNode:
			v = n.Value
		default:
			d.errorf(me.at, "scim.mapping.%s must be a SCIM attribute path (a string), got %s", me.key, kindOf(me.value))
			continue
		}
		s.Mapping[me.key] = strings.TrimSpace(v)
		s.mappingPos[me.key] = me.keyPos
	}
}

// resolveTLS makes the TLS file paths absolute.
func resolveTLS(c *Config) {
	if c.Server.TLS == nil {
		return
	}
	t := *c.Server.TLS
	for _, p := range []*string{&t.CertFile, &t.KeyFile} {
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(c.Dir, *p)
		}
		*p = filepath.Clean(*p)
	}
	c.Server.TLS = &t
}

// marshal renders the server block with every default written out.
func (s Server) marshal() yaml.MapSlice {
	out := yaml.MapSlice{{Key: "listen", Value: s.Listen}}
	if s.TLS != nil {
		out = append(out, yaml.MapItem{Key: "tls", Value: yaml.MapSlice{
			{Key: "cert_file", Value: s.TLS.CertFile},
			{Key: "key_file", Value: s.TLS.KeyFile},
		}})
	}
	return append(out,
		yaml.MapItem{Key: "read_timeout", Value: s.ReadTimeout.String()},
		yaml.MapItem{Key: "write_timeout", Value: s.WriteTimeout.String()},
		yaml.MapItem{Key: "idle_timeout", Value: s.IdleTimeout.String()},
		yaml.MapItem{Key: "max_body", Value: s.MaxBody.String()},
		yaml.MapItem{Key: "reconcile_interval", Value: s.ReconcileInterval.String()},
		yaml.MapItem{Key: "tick_interval", Value: s.TickInterval.String()},
	)
}

// marshal renders the scim block (secrets as their references).
func (s *SCIM) marshal() yaml.MapSlice {
	tokens := make([]yaml.MapSlice, len(s.Tokens))
	for i, t := range s.Tokens {
		tokens[i] = yaml.MapSlice{{Key: "name", Value: t.Name}, {Key: "secret", Value: t.Secret}}
	}
	out := yaml.MapSlice{{Key: "tokens", Value: tokens}}
	if s.Mapping != nil {
		m := yaml.MapSlice{}
		for _, k := range s.MappingAttrs() {
			m = append(m, yaml.MapItem{Key: k, Value: s.Mapping[k]})
		}
		out = append(out, yaml.MapItem{Key: "mapping", Value: m})
	}
	return out
}
