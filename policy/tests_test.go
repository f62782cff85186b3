package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRunTests(t *testing.T) {
	s := loadCompany(t)
	cases, err := LoadTests([]string{"testdata/tests/company_test.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 4 {
		t.Fatalf("loaded %d cases, want 4", len(cases))
	}
	c := cases[0]
	if c.Name != "backend engineer gets the squad team" || c.File != "testdata/tests/company_test.yaml" || c.Line != 2 ||
		!c.Now.Equal(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)) || !c.RolesSet ||
		c.Worker.Custom["githubUsername"] != "alice" || !slices.Equal(c.Worker.ManagerChain, []string{"w-002", "gavin@piedpiper.com"}) ||
		!c.Worker.StartDate.Equal(time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("case 0 decoded as %+v", c)
	}
	if cases[2].RolesSet {
		t.Error("case without roles: RolesSet is true")
	}

	results := s.RunTests(cases, june)
	tests := []struct {
		name     string
		failures []string
	}{
		{"backend engineer gets the squad team", nil},
		{"a lead is not just an engineer", []string{
			`missing role nosuchrole: there is no role "nosuchrole" in the policy set`,
			"unexpected role eng-base: included by role engineer",
			"unexpected role everyone: it is a birthright role",
			`unexpected role level-five: its condition is true for this worker (when: worker.custom.level == "L5")`,
			`unexpected role squad-lead: its condition is true for this worker (when: worker.division == "Engineering" && worker.title.endsWith("Lead"))`,
			"unexpected role tools: included by role eng-base",
			"missing github:team/backend#member: got github:team/backend#maintainer instead (from role engineer (testdata/eval/company.yaml:30), role squad-lead (testdata/eval/company.yaml:38))",
			"missing hubspot:account: nothing grants it",
			"unexpected github:team/platform: granted as github:team/platform#maintainer by role engineer (testdata/eval/company.yaml:31), role squad-lead (testdata/eval/company.yaml:38)",
		}},
		{"an expired exception is reported as such", []string{
			`missing github:team/infra: only an expired exception grants it (exception "Q4 migration, ticket OPS-311" until 2027-01-01T08:00:00Z (testdata/eval/exceptions.yaml:4))`,
		}},
		{"a condition that cannot be evaluated does not match", []string{
			"missing role level-five: its condition failed to evaluate for this worker (no such key: level)",
		}},
	}
	for i, tt := range tests {
		r := results[i]
		if r.Case.Name != tt.name {
			t.Fatalf("result %d is %q, want %q", i, r.Case.Name, tt.name)
		}
		if !slices.Equal(r.Failures, tt.failures) {
			t.Errorf("%s: failures =\n%q\nwant\n%q", tt.name, r.Failures, tt.failures)
		}
		if r.Passed() != (len(tt.failures) == 0) {
			t.Errorf("%s: Passed = %v", tt.name, r.Passed())
		}
	}
	// The second case's worker has no githubUsername: not a warning; the
	// third has no level: a warning, which does not fail the test.
	if len(results[1].Warnings) != 0 || len(results[2].Warnings) != 1 {
		t.Errorf("warnings = %q / %q", results[1].Warnings, results[2].Warnings)
	}
}

func TestRunTestsDefaultNow(t *testing.T) {
	s := loadCompany(t)
	c := TestCase{Name: "jared", Worker: Worker{ID: "w-j", Email: "jared@piedpiper.com"}, Present: []string{"github:team/infra"}}
	if r := s.RunTests([]TestCase{c}, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)); !r[0].Passed() {
		t.Errorf("with now before expiry: %q", r[0].Failures)
	}
	if r := s.RunTests([]TestCase{c}, time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)); r[0].Passed() {
		t.Error("with now after expiry: passed")
	}
}

func TestLoadTestsErrors(t *testing.T) {
	_, err := LoadTests([]string{"testdata/tests/bad_test.yaml"})
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("LoadTests error = %v, want *LoadError", err)
	}
	const f = "testdata/tests/bad_test.yaml"
	want := []wantProblem{
		{f, 4, 23, `unknown key "departmnet" in worker`},
		{f, 5, 5, `test is missing required key "name"`},
		{f, 6, 15, `bad entitlement "github team/backend": want app:entitlement`},
		{f, 8, 10, `bad date "tomorrow"`},
		{f, 9, 34, `bad date "2024-02-30"`},
		{f, 10, 14, `bad entitlement "github:team/": entitlement "team/": empty resource after '/'`},
	}
	if len(le.Problems) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(le.Problems), len(want), err)
	}
	for i, w := range want {
		p := le.Problems[i]
		if p.File != w.file || p.Line != w.line || p.Col != w.col || !strings.Contains(p.Msg, w.msg) {
			t.Errorf("problem %d = %s:%d:%d: %s\nwant        %s:%d:%d: …%s…", i, p.File, p.Line, p.Col, p.Msg, w.file, w.line, w.col, w.msg)
		}
	}
	if _, err := LoadTestsBytes("t.yaml", []byte("tests:\n  - name: x\n")); err == nil {
		t.Error("test without worker accepted")
	}
	if _, err := LoadTestsBytes("t.yaml", []byte("version: 1\n")); err == nil {
		t.Error("file without tests accepted")
	}
}
