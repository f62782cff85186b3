package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lineCol finds the first line of path containing marker and returns
// "path:line:col" with col the 1-based column where sub starts in that
// line: where a loader must point for a problem at sub.
func lineCol(t testing.TB, path, marker, sub string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, marker) {
			col := strings.Index(line, sub)
			if col < 0 {
				t.Fatalf("%s:%d: %q not in %q", path, i+1, sub, line)
			}
			return fmt.Sprintf("%s:%d:%d", path, i+1, col+1)
		}
	}
	t.Fatalf("%s: no line contains %q", path, marker)
	return ""
}

// TestBadPolicy breaks the policy in several ways. Each time `policy
// check`, `config check`, `plan` and `apply` exit 1 naming the exact
// file:line:col, and the data file (which holds the apps' state and the
// audit log) is not changed by a single byte. A what-if plan with the
// broken files fails the same way while the configured policy is fine.
func TestBadPolicy(t *testing.T) {
	t.Parallel()
	type broken struct {
		file, content string // a new policy file, or
		edit          [2]string
	}
	cases := []struct {
		name   string
		broken broken
		// where returns the expected location given the policies dir.
		where func(t testing.TB, dir string) string
		msg   string
		also  func(t testing.TB, dir string) string // a second location that must be named
	}{
		{
			name:   "yaml-syntax",
			broken: broken{file: "zz-broken.yaml", content: "version: 1\nroles:\n  - name: x\n    when: true\n    grants: {github: [account]\n"},
			where: func(t testing.TB, dir string) string {
				return filepath.Join(dir, "zz-broken.yaml") + ":5:13"
			},
			msg: "YAML syntax error",
		},
		{
			name:   "unknown-key",
			broken: broken{file: "zz-broken.yaml", content: "version: 1\nroles:\n  - name: x\n    whenn: true\n    grants:\n      github: [account]\n"},
			where:  func(t testing.TB, dir string) string { return filepath.Join(dir, "zz-broken.yaml") + ":4:5" },
			msg:    `unknown key "whenn"`,
		},
		{
			name:   "cel-type-error",
			broken: broken{edit: [2]string{`worker.department == "Marketing"`, `worker.department == 1`}},
			where: func(t testing.TB, dir string) string {
				return lineCol(t, filepath.Join(dir, "gtm.yaml"), "worker.department == 1", "==")
			},
			msg: "no matching overload",
		},
		{
			name:   "unknown-connector",
			broken: broken{file: "zz-broken.yaml", content: "version: 1\nroles:\n  - name: x\n    when: true\n    grants:\n      jira: [account]\n"},
			where:  func(t testing.TB, dir string) string { return filepath.Join(dir, "zz-broken.yaml") + ":6:7" },
			msg:    `unknown connector "jira"`,
		},
		{
			name:   "unknown-entitlement-kind",
			broken: broken{file: "zz-broken.yaml", content: "version: 1\nroles:\n  - name: x\n    when: true\n    grants:\n      github: [account, repo/middle-out]\n"},
			where:  func(t testing.TB, dir string) string { return filepath.Join(dir, "zz-broken.yaml") + ":6:25" },
			msg:    `no entitlement kind "repo"`,
		},
		{
			name:   "unknown-role-in-includes",
			broken: broken{file: "zz-broken.yaml", content: "version: 1\nroles:\n  - name: x\n    when: true\n    includes: [employee, enginer]\n    grants:\n      github: [account]\n"},
			where:  func(t testing.TB, dir string) string { return filepath.Join(dir, "zz-broken.yaml") + ":5:26" },
			msg:    `unknown role "enginer" in includes`,
		},
		{
			name:   "duplicate-role",
			broken: broken{file: "zz-broken.yaml", content: "version: 1\nroles:\n  - name: engineer\n    when: true\n    grants:\n      github: [account]\n"},
			where:  func(t testing.TB, dir string) string { return filepath.Join(dir, "zz-broken.yaml") + ":3:11" },
			msg:    `duplicate role "engineer"`,
			also: func(t testing.TB, dir string) string {
				return lineCol(t, filepath.Join(dir, "engineering.yaml"), "- name: engineer", "engineer")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvWithData(t)
			configured := filepath.Join(e.dir, "policies")
			breakIn := func(dir string) {
				if tc.broken.file != "" {
					if err := os.WriteFile(filepath.Join(dir, tc.broken.file), []byte(tc.broken.content), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				editFile(t, filepath.Join(dir, "gtm.yaml"), tc.broken.edit[0], tc.broken.edit[1])
			}
			check := func(r result, dir string) {
				t.Helper()
				if r.code != 1 {
					t.Errorf("want exit 1, got %s", r)
					return
				}
				if want := tc.where(t, dir) + ": "; !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, tc.msg) {
					t.Errorf("stderr should name %q with %q:\n%s", want, tc.msg, r.stderr)
				}
				if tc.also != nil {
					if want := tc.also(t, dir); !strings.Contains(r.stderr, want) {
						t.Errorf("stderr should also name %q:\n%s", want, r.stderr)
					}
				}
			}

			// What-if with the broken files: rejected, nothing else runs.
			proposed := filepath.Join(t.TempDir(), "proposed")
			copyTree(t, configured, proposed)
			breakIn(proposed)
			r := e.roster("plan", "--policies", proposed)
			check(r, proposed)
			if !strings.Contains(r.stderr, "proposed policies in "+proposed) {
				t.Errorf("plan --policies: stderr should say the proposed policies failed:\n%s", r.stderr)
			}
			check(e.roster("policy", "check", "--policies", proposed), proposed)

			// The configured policy breaks: every command that needs it
			// refuses, and the data file stays as it was.
			db := filepath.Join(e.data, "roster.db")
			before := fileHash(t, db)
			breakIn(configured)
			for _, args := range [][]string{
				{"policy", "check"},
				{"config", "check"},
				{"plan"},
				{"plan", "--detailed-exitcode"},
				{"apply", "--auto-approve"},
				{"hr", "import", filepath.Join(e.dir, "hr.csv")},
			} {
				r := e.roster(args...)
				if r.stdout != "" {
					t.Errorf("roster %s printed to stdout:\n%s", strings.Join(args, " "), r.stdout)
				}
				check(r, configured)
			}
			if after := fileHash(t, db); after != before {
				t.Errorf("the data file changed while the policy was broken")
			}
			if tc.broken.file != "" {
				// Repair it: back to no changes, the data intact.
				if err := os.Remove(filepath.Join(configured, tc.broken.file)); err != nil {
					t.Fatal(err)
				}
				e.must(0, "plan", "--detailed-exitcode")
			}
		})
	}
}
