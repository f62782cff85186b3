package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadFullServerAndSCIM(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")
	want := Server{
		Listen:            "127.0.0.1:8080",
		TLS:               &TLS{CertFile: filepath.Join(dir, "tls", "roster.crt"), KeyFile: filepath.Join(dir, "tls", "roster.key")},
		ReadTimeout:       Duration(10 * time.Second),
		WriteTimeout:      Duration(30 * time.Second),
		IdleTimeout:       Duration(60 * time.Second),
		MaxBody:           1 << 20,
		ReconcileInterval: Duration(time.Hour),
		TickInterval:      Duration(time.Minute),
	}
	if !reflect.DeepEqual(c.Server, want) {
		t.Errorf("Server %+v (TLS %+v)\nwant   %+v (TLS %+v)", c.Server, c.Server.TLS, want, want.TLS)
	}
	if c.SCIM == nil {
		t.Fatal("SCIM is nil")
	}
	var tokens []string
	for _, tk := range c.SCIM.Tokens {
		tokens = append(tokens, tk.Name+"="+tk.Secret)
	}
	if want := []string{"hr=env:ROSTER_SCIM_TOKEN", "okta=file:secrets/okta-scim-token"}; !reflect.DeepEqual(tokens, want) {
		t.Errorf("tokens %q, want %q", tokens, want)
	}
	wantMap := map[string]string{
		"location":     `addresses[type eq "work"].locality`,
		"custom:badge": "urn:ietf:params:scim:schemas:extension:roster:2.0:User:badge",
		"manager":      "",
	}
	if !reflect.DeepEqual(c.SCIM.Mapping, wantMap) {
		t.Errorf("mapping %q", c.SCIM.Mapping)
	}
	if got := c.SCIM.MappingAttrs(); !reflect.DeepEqual(got, []string{"custom:badge", "location", "manager"}) {
		t.Errorf("MappingAttrs %q", got)
	}
}

func TestServerDefaultsWithoutSCIM(t *testing.T) {
	c, err := Parse("roster.yaml", []byte(withTail("version: 1", "server:", "  listen: :9090", "  max_body: 512KiB", "  reconcile_interval: 0")))
	if err != nil {
		t.Fatal(err)
	}
	if c.SCIM != nil {
		t.Errorf("SCIM %+v, want nil without a scim block", c.SCIM)
	}
	s := c.Server
	if s.Listen != ":9090" || s.MaxBody != 512<<10 || s.ReconcileInterval != 0 || s.TLS != nil {
		t.Errorf("server %+v", s)
	}
	if s.ReadTimeout != DefaultReadTimeout || s.WriteTimeout != DefaultWriteTimeout || s.IdleTimeout != DefaultIdleTimeout || s.TickInterval != DefaultTickInterval {
		t.Errorf("defaults lost: %+v", s)
	}
	// max_body as plain bytes; an absolute TLS path stays as it is.
	c, err = Parse("roster.yaml", []byte(withTail("version: 1", "server:", "  max_body: 1000", "  tls: {cert_file: /etc/roster/c.pem, key_file: k.pem}")))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.MaxBody != 1000 || c.Server.TLS.CertFile != "/etc/roster/c.pem" || c.Server.TLS.KeyFile != filepath.Join(c.Dir, "k.pem") {
		t.Errorf("server %+v TLS %+v", c.Server, c.Server.TLS)
	}
}

func TestParseRejectsServerAndSCIM(t *testing.T) {
	tests := []struct {
		name string
		src  string
		at   string // "line:col"
		msg  string // substring of Msg
	}{
		{"unknown key in server", withTail("version: 1", "server:", "  listn: :80"), "3:3", `unknown key "listn" in server (did you mean "listen"?)`},
		{"server a list", withTail("version: 1", "server: [a]"), "2:9", "server must be a mapping, got a list"},
		{"listen without port", withTail("version: 1", "server:", "  listen: localhost"), "3:11", `listen address "localhost" must be HOST:PORT`},
		{"listen port out of range", withTail("version: 1", "server:", "  listen: 127.0.0.1:70000"), "3:11", "port must be a number from 0 to 65535"},
		{"listen port not a number", withTail("version: 1", "server:", "  listen: 127.0.0.1:http"), "3:11", "port must be a number"},
		{"listen not a string", withTail("version: 1", "server:", "  listen: 8080"), "3:11", "server.listen must be a string, got an integer"},
		{"tls without key", withTail("version: 1", "server:", "  tls:", "    cert_file: c.pem"), "3:3", `missing required key "key_file" in server.tls`},
		{"tls without cert", withTail("version: 1", "server:", "  tls: {key_file: k.pem}"), "3:3", `missing required key "cert_file" in server.tls`},
		{"tls cert empty", withTail("version: 1", "server:", "  tls: {cert_file: '', key_file: k.pem}"), "3:20", "server.tls.cert_file must not be empty"},
		{"tls unknown key", withTail("version: 1", "server:", "  tls: {cert: c, cert_file: c, key_file: k}"), "3:9", `unknown key "cert" in server.tls`},
		{"read_timeout zero", withTail("version: 1", "server:", "  read_timeout: 0s"), "3:17", "server.read_timeout must be greater than 0"},
		{"write_timeout bad", withTail("version: 1", "server:", "  write_timeout: soon"), "3:18", `server.write_timeout: invalid duration "soon"`},
		{"idle_timeout negative", withTail("version: 1", "server:", "  idle_timeout: -1s"), "3:17", "server.idle_timeout must not be negative"},
		{"tick_interval zero", withTail("version: 1", "server:", "  tick_interval: 0"), "3:18", "server.tick_interval must be greater than 0"},
		{"reconcile_interval negative", withTail("version: 1", "server:", "  reconcile_interval: -1h"), "3:23", "server.reconcile_interval must not be negative"},
		{"max_body zero", withTail("version: 1", "server:", "  max_body: 0"), "3:13", "server.max_body must be greater than 0"},
		{"max_body bad unit", withTail("version: 1", "server:", "  max_body: 1mb"), "3:13", `server.max_body: invalid size "1mb"`},
		{"max_body fraction", withTail("version: 1", "server:", "  max_body: 1.5MiB"), "3:13", `invalid size "1.5MiB"`},
		{"max_body a list", withTail("version: 1", "server:", "  max_body: [1]"), "3:13", "server.max_body must be a size such as 1MiB"},
		{"max_body overflow", withTail("version: 1", "server:", "  max_body: 99999999999GiB"), "3:13", "invalid size"},
		{"scim without tokens", withTail("version: 1", "scim:", "  mapping: {team: title}"), "2:1", `missing required key "tokens" in scim`},
		{"scim tokens empty", withTail("version: 1", "scim:", "  tokens: []"), "3:11", "scim.tokens must list at least one token"},
		{"scim tokens a mapping", withTail("version: 1", "scim:", "  tokens: {hr: env:X}"), "3:11", "scim.tokens must be a list"},
		{"scim token a string", withTail("version: 1", "scim:", "  tokens: [hr]"), "3:12", "scim.tokens[0] must be a mapping, got a string"},
		{"scim token null", withTail("version: 1", "scim:", "  tokens:", "    -"), "4:6", "scim.tokens[0] must be a mapping {name, secret}, got null"},
		{"scim token without name", withTail("version: 1", "scim:", "  tokens:", "    - secret: env:X"), "4:7", `missing required key "name" in scim.tokens[0]`},
		{"scim token without secret", withTail("version: 1", "scim:", "  tokens:", "    - name: hr"), "4:7", `missing required key "secret" in scim.tokens[0]`},
		{"scim token bad name", withTail("version: 1", "scim:", "  tokens:", "    - {name: 'h r', secret: env:X}"), "4:14", `scim.tokens[0].name "h r" must be letters`},
		{"scim token duplicate name", withTail("version: 1", "scim:", "  tokens:", "    - {name: hr, secret: env:X}", "    - {name: hr, secret: env:Y}"), "5:14", `another token is already named "hr"`},
		{"scim token shared secret", withTail("version: 1", "scim:", "  tokens:", "    - {name: hr, secret: env:X}", "    - {name: okta, secret: env:X}"), "5:28", `token "okta" uses the same secret env:X as token "hr"`},
		{"scim token inline secret", withTail("version: 1", "scim:", "  tokens:", "    - name: hr", "      secret: s3cr3t-value"), "5:15", "scim.tokens[0].secret must be a reference env:NAME or file:PATH, not an inline value"},
		{"scim token unknown key", withTail("version: 1", "scim:", "  tokens:", "    - {name: hr, secret: env:X, token: y}"), "4:33", `unknown key "token" in scim.tokens[0]`},
		{"scim mapping a list", withTail("version: 1", "scim:", "  tokens: [{name: hr, secret: env:X}]", "  mapping: [team]"), "4:12", "scim.mapping must be a mapping"},
		{"scim mapping value not a string", withTail("version: 1", "scim:", "  tokens: [{name: hr, secret: env:X}]", "  mapping:", "    team: 5"), "5:11", "scim.mapping.team must be a SCIM attribute path (a string), got an integer"},
		{"scim mapping value null", withTail("version: 1", "scim:", "  tokens: [{name: hr, secret: env:X}]", "  mapping:", "    team:"), "5:10", "scim.mapping.team must be a SCIM attribute path"},
		{"scim unknown key", withTail("version: 1", "scim:", "  tokens: [{name: hr, secret: env:X}]", "  mappings: {}"), "4:3", `unknown key "mappings" in scim (did you mean "mapping"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantOneError(t, tt.src, tt.at, tt.msg)
		})
	}
}

func TestSCIMErrorPositions(t *testing.T) {
	in := withTail(
		"version: 1", // 1
		"scim:",      // 2
		"  tokens:",  // 3
		"    - name: hr",
		"      secret: env:ROSTER_TEST_UNSET_VARIABLE", // 5
		"  mapping:", // 6
		"    team: title",
		"    location: bogus[", // 8
	)
	c, err := Parse("roster.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	tok := c.SCIM.Tokens[0]
	_, rerr := c.ResolveSecret(tok.Secret)
	if !errors.Is(rerr, ErrSecretMissing) {
		t.Fatalf("resolve: %v", rerr)
	}
	err = tok.Errorf("secret: %w", rerr)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrSecretMissing) {
		t.Fatalf("got %T %v", err, err)
	}
	if e.Line != 4 || e.Col != 7 || !strings.Contains(err.Error(), `roster.yaml:4:7: scim token "hr": secret: `) || !strings.Contains(err.Error(), "ROSTER_TEST_UNSET_VARIABLE") {
		t.Errorf("token error %q at %d:%d", err, e.Line, e.Col)
	}

	cause := errors.New("unsupported path")
	tests := []struct {
		attr, at, prefix string
	}{
		{"location", "8:5", "roster.yaml:8:5: scim.mapping.location: bad: unsupported path"},
		{"team", "7:5", "roster.yaml:7:5: scim.mapping.team: bad: unsupported path"},
		{"", "6:3", "roster.yaml:6:3: scim.mapping: bad: unsupported path"},
		{"title", "6:3", "roster.yaml:6:3: scim.mapping: bad: unsupported path"},
	}
	for _, tt := range tests {
		err := c.SCIM.MappingErrorf(tt.attr, "bad: %w", cause)
		if !errors.As(err, &e) || !errors.Is(err, cause) {
			t.Fatalf("%s: got %T %v", tt.attr, err, err)
		}
		if got := fmt.Sprintf("%d:%d", e.Line, e.Col); got != tt.at || !strings.HasPrefix(err.Error(), tt.prefix) {
			t.Errorf("%q: %q at %s, want %q at %s", tt.attr, err, got, tt.prefix, tt.at)
		}
	}

	// Without a mapping block, mapping errors point at the scim key.
	c, err = Parse("roster.yaml", []byte(withTail("version: 1", "scim:", "  tokens: [{name: hr, secret: env:X}]")))
	if err != nil {
		t.Fatal(err)
	}
	if c.SCIM.Mapping != nil {
		t.Errorf("mapping %v, want nil", c.SCIM.Mapping)
	}
	if err := c.SCIM.MappingErrorf("", "x"); !errors.As(err, &e) || e.Line != 2 || e.Col != 1 {
		t.Errorf("got %v", err)
	}
}

func TestSCIMMappingEmptyValueRemoves(t *testing.T) {
	c, err := Parse("roster.yaml", []byte(withTail("version: 1", "scim:", "  tokens: [{name: hr, secret: 'file:tok'}]", "  mapping: {manager: '', team: ' title '}")))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"manager": "", "team": "title"}; !reflect.DeepEqual(c.SCIM.Mapping, want) {
		t.Errorf("mapping %q, want %q", c.SCIM.Mapping, want)
	}
}

func TestCheckListen(t *testing.T) {
	good := []string{"127.0.0.1:8080", ":8080", "localhost:0", "[::1]:443", "0.0.0.0:65535", "roster.internal:80"}
	for _, a := range good {
		if err := CheckListen(a); err != nil {
			t.Errorf("CheckListen(%q): %v", a, err)
		}
	}
	bad := []string{"", "8080", "localhost", "127.0.0.1:", "127.0.0.1:-1", "127.0.0.1:65536", "127.0.0.1:http", "::1:80", "a b:80", "127.0.0.1: 80"}
	for _, a := range bad {
		if err := CheckListen(a); err == nil {
			t.Errorf("CheckListen(%q) accepted", a)
		}
	}
}

func TestByteSize(t *testing.T) {
	good := map[string]ByteSize{
		"0": 0, "1": 1, "1000": 1000, "1B": 1, "1KB": 1000, "1MB": 1_000_000, "2GB": 2_000_000_000,
		"1KiB": 1024, "512KiB": 512 << 10, "1MiB": 1 << 20, "3GiB": 3 << 30,
	}
	for in, want := range good {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "+1", "1.5MiB", "1 MiB", "1mib", "1kb", "1Ki", "1TiB", "99999999999999999999", "9999999999GiB", " 1"} {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %v, want an error", in, got)
		}
	}
	str := map[ByteSize]string{0: "0", 1: "1", 1000: "1000", 1024: "1KiB", 1536: "1536", 1 << 20: "1MiB", 512 << 10: "512KiB", 5 << 30: "5GiB", 1_000_000: "1000000"}
	for in, want := range str {
		if got := in.String(); got != want {
			t.Errorf("(%d).String() = %q, want %q", int64(in), got, want)
		}
		back, err := ParseByteSize(in.String())
		if err != nil || back != in {
			t.Errorf("round trip %d: %v %v", int64(in), back, err)
		}
	}
	var b ByteSize
	if err := b.UnmarshalText([]byte("2MiB")); err != nil || b != 2<<20 {
		t.Errorf("UnmarshalText: %v %v", b, err)
	}
	if txt, _ := b.MarshalText(); string(txt) != "2MiB" {
		t.Errorf("MarshalText %q", txt)
	}
}

func FuzzByteSize(f *testing.F) {
	for _, s := range []string{"1MiB", "512KiB", "1000", "0", "1.5MB", "9223372036854775807", "8GiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("ParseByteSize(%q) = %d < 0", s, int64(v))
		}
		back, err := ParseByteSize(v.String())
		if err != nil || back != v {
			t.Fatalf("round trip of %q: %q -> %v, %v", s, v.String(), back, err)
		}
	})
}

// wantOneError parses src, which must be rejected with exactly one error at
// at ("line:col") whose message contains msg, and no config; the error
// must not echo an inline secret (the tests' inline secrets contain
// "s3cr3t").
func wantOneError(t *testing.T, src, at, msg string) {
	t.Helper()
	c, err := Parse("roster.yaml", []byte(src))
	if err == nil {
		t.Fatalf("Parse accepted:\n%s", src)
	}
	if c != nil {
		t.Errorf("Parse returned a config with an error")
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want Errors: %v", err, err)
	}
	if len(errs) != 1 {
		t.Errorf("got %d errors, want 1:\n%v", len(errs), err)
	}
	e := errs[0]
	if got := fmt.Sprintf("%d:%d", e.Line, e.Col); got != at {
		t.Errorf("position %s, want %s (%s)", got, at, e.Msg)
	}
	if !strings.Contains(e.Msg, msg) {
		t.Errorf("message %q does not contain %q", e.Msg, msg)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error echoes an inline secret: %v", err)
	}
}
