package policy

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/connectors"
)

// testCatalog is the connector catalog of the error and evaluation tests.
func testCatalog() Catalog {
	return Catalog{
		"github":  {{Name: connectors.KindAccount, Roles: []string{"member", "admin"}}, {Name: "team", Roles: []string{"member", "maintainer"}}},
		"slack":   {{Name: "channel"}, {Name: "usergroup"}},
		"google":  {{Name: "group", Roles: []string{"MEMBER", "MANAGER", "OWNER"}}},
		"okta":    {{Name: "app"}},
		"hubspot": {{Name: "role"}},
	}
}

// wantProblem is one expected problem: exact position, message substring.
type wantProblem struct {
	file      string
	line, col int
	msg       string
}

func TestLoadErrors(t *testing.T) {
	const dir = "testdata/errors/"
	tests := []struct {
		name  string
		files []string
		want  []wantProblem
	}{
		{"YAML syntax", []string{"yaml_syntax.yaml"}, []wantProblem{
			{"yaml_syntax.yaml", 4, 4, "YAML syntax error: value is not allowed in this context"}}},
		{"unknown key", []string{"unknown_key.yaml"}, []wantProblem{
			{"unknown_key.yaml", 4, 5, `unknown key "whne" in role (allowed: name, description, when, birthright, includes, grace, grants); did you mean "when"?`}}},
		{"missing version", []string{"missing_version.yaml"}, []wantProblem{
			{"missing_version.yaml", 1, 1, `missing required key "version"`}}},
		{"wrong version and wrong type", []string{"wrong_types.yaml"}, []wantProblem{
			{"wrong_types.yaml", 1, 10, `unsupported version "2": this Roster reads version 1`},
			{"wrong_types.yaml", 3, 3, "roles must be a list, not a mapping"}}},
		{"duplicate role across two files", []string{"dup_a.yaml", "dup_b.yaml"}, []wantProblem{
			{"dup_b.yaml", 5, 11, `duplicate role "shared": also defined at testdata/errors/dup_a.yaml:3:11`}}},
		{"unknown include", []string{"unknown_include.yaml"}, []wantProblem{
			{"unknown_include.yaml", 5, 16, `unknown role "employe" in includes; did you mean "employee"?`}}},
		{"include cycle", []string{"cycle.yaml"}, []wantProblem{
			{"cycle.yaml", 7, 9, "include cycle: a -> b -> a"}}},
		{"CEL syntax error", []string{"cel_syntax.yaml"}, []wantProblem{
			{"cel_syntax.yaml", 4, 32, "Syntax error: mismatched input '<EOF>'"}}},
		{"CEL unknown field", []string{"cel_unknown_field.yaml"}, []wantProblem{
			{"cel_unknown_field.yaml", 4, 45, `undefined field 'departmnet' (did you mean "department"?)`}}},
		{"CEL unknown field in a block scalar", []string{"cel_block.yaml"}, []wantProblem{
			{"cel_block.yaml", 6, 15, "undefined field 'tema'"}}},
		{"CEL int vs string", []string{"cel_int_string.yaml"}, []wantProblem{
			{"cel_int_string.yaml", 4, 30, "found no matching overload for '_==_' applied to '(string, int)'"}}},
		{"CEL non-bool when", []string{"cel_non_bool.yaml"}, []wantProblem{
			{"cel_non_bool.yaml", 4, 11, "a when condition must be of type bool, but this expression has type string"}}},
		{"CEL non-string template", []string{"cel_template_type.yaml"}, []wantProblem{
			{"cel_template_type.yaml", 7, 18, "a ${...} template must be of type string, but this expression has type int"},
			{"cel_template_type.yaml", 8, 44, "a ${...} template must be of type string, but this expression has type timestamp"}}},
		{"template in a flow list", []string{"template_flow.yaml"}, []wantProblem{
			{"template_flow.yaml", 6, 22, "put a grant that contains ${...} in quotes"}}},
		{"template outside the resource", []string{"template_in_kind.yaml"}, []wantProblem{
			{"template_in_kind.yaml", 6, 24, "a template ${...} may appear only in the resource"}}},
		{"bad entitlement text", []string{"bad_entitlement.yaml"}, []wantProblem{
			{"bad_entitlement.yaml", 6, 16, `bad grant: entitlement "team/": empty resource after '/'`}}},
		{"unknown connector", []string{"unknown_connector.yaml"}, []wantProblem{
			{"unknown_connector.yaml", 6, 7, `unknown connector "gihtub" (known: github, google, hubspot, okta, slack); did you mean "github"?`}}},
		{"unknown kind", []string{"unknown_kind.yaml"}, []wantProblem{
			{"unknown_kind.yaml", 6, 25, `connector "github" has no entitlement kind "tema" (it offers: account, team); did you mean "team"?`}}},
		{"bad role", []string{"bad_role.yaml"}, []wantProblem{
			{"bad_role.yaml", 6, 16, `role "owner" is not a role of kind "team" of connector "github" (roles, least to most privileged: member, maintainer)`},
			{"bad_role.yaml", 7, 15, `kind "channel" of connector "slack" takes no role, but the grant names role "admin"`}}},
		{"bad role name", []string{"bad_role_name.yaml"}, []wantProblem{
			{"bad_role_name.yaml", 3, 11, `bad role name "Sales Team"`}}},
		{"bad duration", []string{"bad_duration.yaml"}, []wantProblem{
			{"bad_duration.yaml", 5, 12, `bad duration "3 weeks"`},
			{"bad_duration.yaml", 9, 18, `bad duration "7x": unknown unit "x"`}}},
		{"bad date", []string{"bad_date.yaml"}, []wantProblem{
			{"bad_date.yaml", 6, 14, `bad date "2026-13-45": want a date like 2026-12-31`}}},
		{"exception missing reason", []string{"missing_reason.yaml"}, []wantProblem{
			{"missing_reason.yaml", 3, 5, `exception is missing required key "reason"`}}},
		{"many problems in one file", []string{"misc.yaml"}, []wantProblem{
			{"misc.yaml", 2, 1, `unknown key "rules" in policy file`},
			{"misc.yaml", 5, 5, "a role has either birthright: true or a when condition, not both"},
			{"misc.yaml", 8, 15, `the account of connector "slack" takes no role, but the grant names role "admin"`},
			{"misc.yaml", 10, 11, `long-form grant is missing required key "grant"`},
			{"misc.yaml", 11, 11, "a grant must be a string (kind/resource#role) or a mapping with grant and grace, not a number"},
			{"misc.yaml", 13, 15, "includes must be a list, not a string"},
			{"misc.yaml", 14, 17, "birthright must be true or false, not a string"},
			{"misc.yaml", 16, 5, `exception is missing required key "worker"`},
			{"misc.yaml", 16, 5, `exception is missing required key "expires"`},
			{"misc.yaml", 16, 13, "reason must not be empty"}}},
		{"problems from several files, in file order", []string{"unknown_kind.yaml", "bad_date.yaml", "cycle.yaml"}, []wantProblem{
			{"bad_date.yaml", 6, 14, "bad date"},
			{"cycle.yaml", 7, 9, "include cycle"},
			{"unknown_kind.yaml", 3, 11, `duplicate role "a": also defined at testdata/errors/cycle.yaml:3:11`},
			{"unknown_kind.yaml", 6, 25, "no entitlement kind"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var files []string
			for _, f := range tt.files {
				files = append(files, dir+f)
			}
			set, err := Load(files, Options{Catalog: testCatalog()})
			if set != nil {
				t.Fatal("Load returned a Set along with problems")
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Load error = %v, want a *LoadError", err)
			}
			if len(le.Problems) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(le.Problems), len(tt.want), err)
			}
			for i, w := range tt.want {
				p := le.Problems[i]
				if p.File != dir+w.file || p.Line != w.line || p.Col != w.col || !strings.Contains(p.Msg, w.msg) {
					t.Errorf("problem %d = %s:%d:%d: %s\nwant        %s:%d:%d: …%s…", i, p.File, p.Line, p.Col, p.Msg, dir+w.file, w.line, w.col, w.msg)
				}
				if p.Source == "" {
					t.Errorf("problem %d has no source line", i)
				}
			}
		})
	}
}

func TestLoadErrorRendering(t *testing.T) {
	_, err := Load([]string{"testdata/errors/cel_unknown_field.yaml"}, Options{Catalog: testCatalog()})
	want := "testdata/errors/cel_unknown_field.yaml:4:45: undefined field 'departmnet' (did you mean \"department\"?)\n" +
		"        when: worker.division == \"Eng\" && worker.departmnet == \"x\"\n" +
		"                                                ^"
	if err == nil || err.Error() != want {
		t.Errorf("error rendering:\n%v\nwant:\n%s", err, want)
	}
	p := Problem{File: "f.yaml", Line: 2, Col: 3, Msg: "m", Source: "\tab"}
	if got, want := p.String(), "f.yaml:2:3: m\n    \tab\n    \t ^"; got != want {
		t.Errorf("tab rendering = %q, want %q", got, want)
	}
	if got, want := (Problem{File: "f.yaml", Msg: "cannot read"}).String(), "f.yaml: cannot read"; got != want {
		t.Errorf("whole-file problem = %q, want %q", got, want)
	}
}

func TestLoadNoFilesAndUnreadable(t *testing.T) {
	if _, err := Load(nil, Options{}); !errors.Is(err, ErrNoFiles) {
		t.Errorf("Load(nil) = %v, want ErrNoFiles", err)
	}
	_, err := Load([]string{"testdata/does-not-exist.yaml"}, Options{})
	var le *LoadError
	if !errors.As(err, &le) || len(le.Problems) != 1 || !strings.Contains(le.Problems[0].Msg, "cannot read policy file") {
		t.Errorf("Load(missing file) = %v", err)
	}
}

func TestLoadBytesEmptyFile(t *testing.T) {
	for _, data := range []string{"", "# only a comment\n"} {
		_, err := LoadBytes("empty.yaml", []byte(data), Options{})
		var le *LoadError
		if !errors.As(err, &le) || le.Problems[0].Line != 1 || !strings.Contains(le.Problems[0].Msg, `missing required key "version"`) {
			t.Errorf("LoadBytes(%q) = %v", data, err)
		}
	}
}

func TestLoadWithoutCatalogChecksSyntaxOnly(t *testing.T) {
	s, err := LoadBytes("p.yaml", []byte("version: 1\nroles:\n  - name: a\n    birthright: true\n    grants: {anything: [kind/x#whatever]}\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Evaluate(&Worker{ID: "w"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Grants) != 2 || res.Grants[1].Entitlement.String() != "kind/x#whatever" {
		t.Errorf("grants = %+v", res.Grants)
	}
	_, err = LoadBytes("p.yaml", []byte("version: 1\nroles:\n  - name: a\n    birthright: true\n    grants: {anything: [kind/]}\n"), Options{})
	if err == nil {
		t.Error("bad entitlement syntax accepted without a catalog")
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"72h", 72 * time.Hour, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"1.5d", 36 * time.Hour, true},
		{"90m", 90 * time.Minute, true},
		{"0", 0, true},
		{"", 0, false},
		{"3", 0, false},
		{"-1h", 0, false},
		{"7x", 0, false},
		{"d", 0, false},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.yaml", "b.yml", "c.txt", "sub/d.yaml"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("version: 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	abs := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, filepath.Join(dir, n))
		}
		return out
	}
	tests := []struct {
		name     string
		patterns []string
		base     string
		want     []string
		wantErr  error
	}{
		{"directory means its yaml files", []string{dir}, "", abs("a.yaml", "b.yml"), nil},
		{"relative glob", []string{"*.yaml", "sub/*.yaml"}, dir, abs("a.yaml", "sub/d.yaml"), nil},
		{"relative directory", []string{"sub"}, dir, abs("sub/d.yaml"), nil},
		{"duplicates removed, sorted", []string{"sub/d.yaml", "*.y*ml", "a.yaml"}, dir, abs("a.yaml", "b.yml", "sub/d.yaml"), nil},
		{"no match is an error", []string{"nothing-*.yaml"}, dir, nil, ErrNoFiles},
		{"missing file is an error", []string{"missing.yaml"}, dir, nil, ErrNoFiles},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Expand(tt.patterns, tt.base)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Expand = %v, %v; want error %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("Expand = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if _, err := Expand([]string{"**/*.yaml"}, dir); err == nil {
		t.Error("** accepted")
	}
}

func TestSetAccessors(t *testing.T) {
	files := []string{"testdata/eval/exceptions.yaml", "testdata/eval/company.yaml"}
	s, err := Load(files, Options{Catalog: testCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Files(), []string{"testdata/eval/company.yaml", "testdata/eval/exceptions.yaml"}; !slices.Equal(got, want) {
		t.Errorf("Files = %v, want %v", got, want)
	}
	wantRoles := []string{"employee", "eng-base", "engineer", "everyone", "gavin-org", "level-five", "sales", "squad-lead", "tools"}
	if got := s.RoleNames(); !slices.Equal(got, wantRoles) {
		t.Errorf("RoleNames = %v, want %v", got, wantRoles)
	}
	if len(s.Hash()) != 64 {
		t.Errorf("Hash = %q, want 64 hex digits", s.Hash())
	}
	// Same contents, other order: same hash. Other contents: other hash.
	s2, err := Load([]string{files[1], files[0]}, Options{Catalog: testCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	if s.Hash() != s2.Hash() {
		t.Error("hash depends on the order files are given in")
	}
	data, err := os.ReadFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	s3, err := LoadBytes("x.yaml", append(data, "# changed\n"...), Options{Catalog: testCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	s4, err := LoadBytes("x.yaml", data, Options{Catalog: testCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	if s3.Hash() == s4.Hash() {
		t.Error("hash does not change with the contents")
	}
}
