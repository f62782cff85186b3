package policy

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/rosterhq/roster/connectors"
)

// TestCase is one policy test: a worker, and what the policy set must give
// them.
type TestCase struct {
	Name string
	File string
	Line int
	// Now is the evaluation time; zero means the time passed to RunTests.
	Now    time.Time
	Worker Worker
	// Roles is the exact set of matched roles (direct and included),
	// checked only when RolesSet (an empty list then means "no role").
	Roles    []string
	RolesSet bool
	// Present and Absent hold "app:entitlement" texts. Without "#role"
	// any role satisfies (Present) or violates (Absent) the check; with
	// one, only that role does.
	Present []string
	Absent  []string
}

// TestResult is the outcome of one TestCase.
type TestResult struct {
	Case TestCase
	// Failures are human sentences saying what differs; empty means the
	// test passed.
	Failures []string
	// Warnings are the evaluation warnings for the test's worker (a
	// condition that failed to evaluate, say). They do not fail the test.
	Warnings []string
}

// Passed reports whether the test had no failure.
func (r TestResult) Passed() bool { return len(r.Failures) == 0 }

var (
	testFileKeys = []string{"version", "tests"}
	testKeys     = []string{"name", "now", "worker", "roles", "present", "absent"}
)

// LoadTests reads policy test files (the `tests:` list of each). Decoding
// is strict, like Load: on any problem it returns a *LoadError listing
// every problem with file:line:col, and no test.
func LoadTests(files []string) ([]TestCase, error) {
	var ps problems
	var out []TestCase
	sorted := append([]string(nil), files...)
	sort.Strings(sorted)
	for _, f := range sorted {
		data, err := os.ReadFile(f)
		if err != nil {
			ps.list = append(ps.list, Problem{File: f, Msg: fmt.Sprintf("cannot read policy test file: %v", err)})
			continue
		}
		out = append(out, parseTestFile(newSource(f, data), &ps)...)
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return out, nil
}

// LoadTestsBytes is LoadTests for one file already in memory.
func LoadTestsBytes(name string, data []byte) ([]TestCase, error) {
	var ps problems
	out := parseTestFile(newSource(name, data), &ps)
	if err := ps.err(); err != nil {
		return nil, err
	}
	return out, nil
}

func parseTestFile(src *source, ps *problems) []TestCase {
	d, body := parseYAML(src, ps)
	if d == nil {
		return nil
	}
	if body == nil {
		ps.add(src, 1, 1, `missing required key "tests" (the file is empty)`)
		return nil
	}
	keys, _, ok := d.mapping(body, "policy test file", testFileKeys)
	if !ok {
		return nil
	}
	if p, ok := keys["version"]; ok {
		if _, isInt := p.val.(*ast.IntegerNode); !isInt || p.val.GetToken().Value != "1" {
			text, _ := scalarText(p.val)
			d.errAt(p.valPos(), "unsupported version %q: this Roster reads version 1", text)
		}
	}
	p, ok := keys["tests"]
	if !ok {
		d.errAt(body, `missing required key "tests"`)
		return nil
	}
	if p.val == nil {
		return nil
	}
	items, ok := d.list(p.val, "tests")
	if !ok {
		return nil
	}
	var out []TestCase
	for _, it := range items {
		if tc, ok := parseTestCase(d, it); ok {
			out = append(out, tc)
		}
	}
	return out
}

func parseTestCase(d *doc, n ast.Node) (TestCase, bool) {
	keys, _, ok := d.mapping(n, "test", testKeys)
	if !ok {
		return TestCase{}, false
	}
	line, _ := d.pos(n)
	tc := TestCase{File: d.src.name, Line: line}
	valid := true
	if p, ok := keys["name"]; !ok || p.val == nil {
		d.errAt(n, `test is missing required key "name"`)
		valid = false
	} else if tc.Name, ok = d.str(p.val, "test name"); !ok {
		valid = false
	}
	if p, ok := keys["now"]; ok {
		if text, ok := d.scalar(p.val, "now"); ok {
			t, err := parseTime(text)
			if err != nil {
				d.errAt(p.valPos(), "%v", err)
				valid = false
			}
			tc.Now = t
		} else {
			valid = false
		}
	}
	if p, ok := keys["worker"]; !ok || p.val == nil {
		d.errAt(n, `test is missing required key "worker"`)
		valid = false
	} else if !parseTestWorker(d, p.val, &tc.Worker) {
		valid = false
	}
	if p, ok := keys["roles"]; ok {
		tc.RolesSet = true
		if p.val != nil {
			tc.Roles, ok = stringList(d, p.val, "roles")
			valid = valid && ok
		}
	}
	for _, k := range []string{"present", "absent"} {
		p, ok := keys[k]
		if !ok || p.val == nil {
			continue
		}
		items, ok := d.list(p.val, k)
		if !ok {
			valid = false
			continue
		}
		for _, it := range items {
			text, ok := d.str(it, k+" entry")
			if !ok {
				valid = false
				continue
			}
			if _, _, err := parseAppEntitlement(text); err != nil {
				d.errAt(it, "%v", err)
				valid = false
				continue
			}
			if k == "present" {
				tc.Present = append(tc.Present, text)
			} else {
				tc.Absent = append(tc.Absent, text)
			}
		}
	}
	return tc, valid
}

func stringList(d *doc, n ast.Node, what string) ([]string, bool) {
	items, ok := d.list(n, what)
	if !ok {
		return nil, false
	}
	out := []string{}
	for _, it := range items {
		s, ok := d.scalar(it, what+" entry")
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func parseTestWorker(d *doc, n ast.Node, w *Worker) bool {
	allowed := append([]string(nil), fieldNames[:]...)
	allowed = slicesDelete(allowed, "hasStartDate", "hasEndDate")
	keys, pairs, ok := d.mapping(n, "worker", allowed)
	if !ok {
		return false
	}
	_ = keys
	valid := true
	for _, p := range pairs {
		f, _ := fieldByName(p.key)
		switch {
		case f.isString():
			if p.val == nil {
				continue
			}
			s, ok := d.scalar(p.val, "worker."+p.key)
			if !ok {
				valid = false
				continue
			}
			setWorkerString(w, f, s)
		case f == fManagerChain:
			if p.val == nil {
				continue
			}
			l, ok := stringList(d, p.val, "managerChain")
			valid = valid && ok
			w.ManagerChain = l
		case f == fGroups:
			if p.val == nil {
				continue
			}
			l, ok := stringList(d, p.val, "groups")
			valid = valid && ok
			w.Groups = l
		case f == fStartDate, f == fEndDate:
			if p.val == nil {
				continue
			}
			s, ok := d.scalar(p.val, "worker."+p.key)
			if !ok {
				valid = false
				continue
			}
			t, err := parseTime(s)
			if err != nil {
				d.errAt(p.val, "%v", err)
				valid = false
				continue
			}
			if f == fStartDate {
				w.StartDate = t
			} else {
				w.EndDate = t
			}
		case f == fCustom:
			if p.val == nil {
				continue
			}
			_, cps, ok := d.mapping(p.val, "worker.custom", nil)
			if !ok {
				valid = false
				continue
			}
			w.Custom = map[string]string{}
			for _, cp := range cps {
				if cp.val == nil {
					w.Custom[cp.key] = ""
					continue
				}
				s, ok := d.scalar(cp.val, "worker.custom."+cp.key)
				if !ok {
					valid = false
					continue
				}
				w.Custom[cp.key] = s
			}
		}
	}
	return valid
}

func slicesDelete(list []string, drop ...string) []string {
	out := list[:0]
	for _, s := range list {
		if !contains(drop, s) {
			out = append(out, s)
		}
	}
	return out
}

func setWorkerString(w *Worker, f fieldID, s string) {
	switch f {
	case fID:
		w.ID = s
	case fUserName:
		w.UserName = s
	case fEmail:
		w.Email = s
	case fDisplayName:
		w.DisplayName = s
	case fGivenName:
		w.GivenName = s
	case fFamilyName:
		w.FamilyName = s
	case fEmployeeNumber:
		w.EmployeeNumber = s
	case fWorkerType:
		w.WorkerType = s
	case fTitle:
		w.Title = s
	case fDepartment:
		w.Department = s
	case fDivision:
		w.Division = s
	case fOrganization:
		w.Organization = s
	case fTeam:
		w.Team = s
	case fCostCenter:
		w.CostCenter = s
	case fLocation:
		w.Location = s
	case fManager:
		w.Manager = s
	}
}

// parseAppEntitlement reads "app:entitlement".
func parseAppEntitlement(s string) (string, connectors.Entitlement, error) {
	app, rest, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(app) == "" {
		return "", connectors.Entitlement{}, fmt.Errorf("bad entitlement %q: want app:entitlement, as in github:team/backend#member", s)
	}
	e, err := connectors.ParseEntitlement(rest)
	if err != nil {
		return "", connectors.Entitlement{}, fmt.Errorf("bad entitlement %q: %w", s, err)
	}
	return strings.TrimSpace(app), e, nil
}

// RunTests evaluates each case against the set (at the case's Now, or at
// now) and compares. It never fails as a whole: a case whose worker cannot
// be evaluated fails with the reason.
func (s *Set) RunTests(cases []TestCase, now time.Time) []TestResult {
	out := make([]TestResult, 0, len(cases))
	for _, c := range cases {
		out = append(out, s.runTest(c, now))
	}
	return out
}

func (s *Set) runTest(c TestCase, now time.Time) TestResult {
	tr := TestResult{Case: c}
	at := c.Now
	if at.IsZero() {
		at = now
	}
	w := c.Worker
	res, err := s.Evaluate(&w, at)
	if err != nil {
		tr.Failures = append(tr.Failures, fmt.Sprintf("cannot evaluate the worker: %v", err))
		return tr
	}
	tr.Warnings = res.Warnings
	fail := func(format string, args ...any) {
		tr.Failures = append(tr.Failures, fmt.Sprintf(format, args...))
	}
	if c.RolesSet {
		want := map[string]bool{}
		for _, r := range c.Roles {
			want[r] = true
		}
		got := map[string]RoleMatch{}
		for _, m := range res.Roles {
			got[m.Role] = m
		}
		var missing []string
		for r := range want {
			if _, ok := got[r]; !ok {
				missing = append(missing, r)
			}
		}
		sort.Strings(missing)
		for _, r := range missing {
			i, ok := s.byName[r]
			switch {
			case !ok:
				fail("missing role %s: there is no role %q in the policy set", r, r)
			case s.roles[i].cond != nil:
				if w := warningFor(res.Warnings, r); w != "" {
					fail("missing role %s: its condition failed to evaluate for this worker (%s)", r, w)
				} else {
					fail("missing role %s: its condition is false for this worker (when: %s)", r, oneLine(s.roles[i].when))
				}
			default:
				fail("missing role %s: it has no condition and no matched role includes it", r)
			}
		}
		for _, m := range res.Roles {
			if want[m.Role] {
				continue
			}
			switch {
			case m.IncludedBy != "":
				fail("unexpected role %s: included by role %s", m.Role, m.IncludedBy)
			case m.Birthright:
				fail("unexpected role %s: it is a birthright role", m.Role)
			default:
				fail("unexpected role %s: its condition is true for this worker (when: %s)", m.Role, oneLine(m.When))
			}
		}
	}
	for _, p := range c.Present {
		app, e, err := parseAppEntitlement(p)
		if err != nil {
			fail("%v", err)
			continue
		}
		g, ok := findGrant(res.Grants, app, e)
		switch {
		case !ok:
			if x, ok := findGrant(res.Expired, app, e); ok {
				fail("missing %s: only an expired exception grants it (%s)", p, describeSources(x.Sources))
			} else {
				fail("missing %s: nothing grants it", p)
			}
		case e.Role != "" && g.Entitlement.Role != e.Role:
			fail("missing %s: got %s:%s instead (from %s)", p, app, g.Entitlement, describeSources(g.Sources))
		}
	}
	for _, a := range c.Absent {
		app, e, err := parseAppEntitlement(a)
		if err != nil {
			fail("%v", err)
			continue
		}
		g, ok := findGrant(res.Grants, app, e)
		if ok && (e.Role == "" || g.Entitlement.Role == e.Role) {
			fail("unexpected %s: granted as %s:%s by %s", a, app, g.Entitlement, describeSources(g.Sources))
		}
	}
	return tr
}

// warningFor returns the evaluation error of role's condition, if any.
func warningFor(warnings []string, role string) string {
	prefix := fmt.Sprintf("role %q ", role)
	for _, w := range warnings {
		if strings.HasPrefix(w, prefix) {
			if _, cause, ok := strings.Cut(w, condFailed); ok {
				return cause
			}
		}
	}
	return ""
}

func findGrant(grants []Grant, app string, e connectors.Entitlement) (Grant, bool) {
	for _, g := range grants {
		if g.App == app && g.Entitlement.Key() == e.Key() {
			return g, true
		}
	}
	return Grant{}, false
}

// describeSources says in words where a grant comes from.
func describeSources(srcs []Source) string {
	parts := make([]string, 0, len(srcs))
	for _, s := range srcs {
		switch {
		case s.Role != "":
			parts = append(parts, fmt.Sprintf("role %s (%s:%d)", s.Role, s.File, s.Line))
		case s.Exception != "":
			parts = append(parts, fmt.Sprintf("exception %q until %s (%s:%d)", s.Exception, s.Expires.Format(time.RFC3339), s.File, s.Line))
		default:
			parts = append(parts, s.Implied)
		}
	}
	return strings.Join(parts, ", ")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
