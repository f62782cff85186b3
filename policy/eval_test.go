package policy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/connectors"
)

var losAngeles = mustLocation("America/Los_Angeles")

func mustLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		// No tzdata on the machine: a fixed zone keeps the tests meaningful.
		return time.FixedZone("PST", -8*3600)
	}
	return loc
}

func loadCompany(t *testing.T) *Set {
	t.Helper()
	s, err := Load([]string{"testdata/eval/company.yaml", "testdata/eval/exceptions.yaml"},
		Options{Catalog: testCatalog(), Location: losAngeles, DefaultGrace: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var june = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func evaluate(t *testing.T, s *Set, w Worker, now time.Time) *Result {
	t.Helper()
	res, err := s.Evaluate(&w, now)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func roleNames(res *Result) []string {
	var out []string
	for _, m := range res.Roles {
		out = append(out, m.Role)
	}
	return out
}

func grantTexts(gs []Grant) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.App+":"+g.Entitlement.String())
	}
	return out
}

func findGrant_(t *testing.T, gs []Grant, text string) Grant {
	t.Helper()
	for _, g := range gs {
		if g.App+":"+g.Entitlement.String() == text {
			return g
		}
	}
	t.Fatalf("no grant %s in %v", text, grantTexts(gs))
	return Grant{}
}

func sourceRoles(g Grant) []string {
	var out []string
	for _, s := range g.Sources {
		switch {
		case s.Role != "":
			out = append(out, s.Role)
		case s.Exception != "":
			out = append(out, "exception:"+s.Exception)
		default:
			out = append(out, s.Implied)
		}
	}
	return out
}

func TestEvaluateRolesAndGrants(t *testing.T) {
	s := loadCompany(t)
	tests := []struct {
		name      string
		worker    Worker
		roles     []string
		grants    []string
		warnings  int
		includers map[string]string
	}{
		{
			name:   "birthright only",
			worker: Worker{ID: "v-1", WorkerType: "vendor", Division: "Engineering", Custom: map[string]string{"level": "L1"}},
			roles:  []string{"everyone"},
			grants: []string{"slack:account", "slack:channel/announcements"},
		},
		{
			name:   "includes are transitive and abstract roles come through them",
			worker: Worker{ID: "e-1", WorkerType: "employee", Division: "Engineering", Team: "backend", Custom: map[string]string{"githubUsername": "alice", "level": "L3"}},
			roles:  []string{"employee", "eng-base", "engineer", "everyone", "tools"},
			grants: []string{
				"github:account#member", "github:team/backend#member", "github:team/engineering#member", "github:team/gh-alice#member", "github:team/platform#member",
				"google:account", "google:group/all@piedpiper.com#MEMBER",
				"okta:account", "okta:app/jira",
				"slack:account", "slack:channel/announcements", "slack:channel/general",
			},
			includers: map[string]string{"employee": "", "eng-base": "engineer", "tools": "eng-base", "engineer": "", "everyone": ""},
		},
		{
			name:   "an included role's own condition is not checked",
			worker: Worker{ID: "c-1", WorkerType: "contractor", Division: "Engineering", Team: "backend", Custom: map[string]string{"level": "L3"}},
			roles:  []string{"employee", "eng-base", "engineer", "everyone", "tools"},
			grants: []string{
				"github:account#member", "github:team/backend#member", "github:team/engineering#member", "github:team/platform#member",
				"google:account", "google:group/all@piedpiper.com#MEMBER",
				"okta:account", "okta:app/jira",
				"slack:account", "slack:channel/announcements", "slack:channel/general",
			},
			includers: map[string]string{"employee": "engineer", "eng-base": "engineer", "tools": "eng-base"},
		},
		{
			name:   "templates that give empty or read a missing key skip their grant silently",
			worker: Worker{ID: "e-2", WorkerType: "employee", Division: "Engineering", Custom: map[string]string{"level": "L1"}},
			roles:  []string{"employee", "eng-base", "engineer", "everyone", "tools"},
			grants: []string{
				"github:account#member", "github:team/engineering#member", "github:team/platform#member",
				"google:account", "google:group/all@piedpiper.com#MEMBER",
				"okta:account", "okta:app/jira",
				"slack:account", "slack:channel/announcements", "slack:channel/general",
			},
		},
		{
			name:     "a condition reading a missing key does not match and warns",
			worker:   Worker{ID: "s-1", WorkerType: "contractor", Department: "Sales"},
			roles:    []string{"everyone", "sales"},
			grants:   []string{"hubspot:account", "hubspot:role/Sales User", "slack:account", "slack:channel/announcements"},
			warnings: 1,
		},
		{
			name:   "most privileged role wins",
			worker: Worker{ID: "l-1", WorkerType: "employee", Division: "Engineering", Team: "backend", Title: "Backend Lead", Custom: map[string]string{"level": "L5"}},
			roles:  []string{"employee", "eng-base", "engineer", "everyone", "level-five", "squad-lead", "tools"},
			grants: []string{
				"github:account#member", "github:team/backend#maintainer", "github:team/engineering#member", "github:team/platform#maintainer",
				"google:account", "google:group/all@piedpiper.com#MEMBER",
				"okta:account", "okta:app/jira", "okta:app/level5",
				"slack:account", "slack:channel/announcements", "slack:channel/general",
			},
		},
		{
			name:   "manager chain holds ids and e-mails",
			worker: Worker{ID: "r-1", WorkerType: "intern", ManagerChain: []string{"w-2", "x@piedpiper.com", "w-1", "gavin@piedpiper.com"}, Custom: map[string]string{"level": "L1"}},
			roles:  []string{"employee", "everyone", "gavin-org"},
			grants: []string{"google:account", "google:group/all@piedpiper.com#MEMBER", "slack:account", "slack:channel/announcements", "slack:channel/gavin-org", "slack:channel/general"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := evaluate(t, s, tt.worker, june)
			if got := roleNames(res); !slices.Equal(got, tt.roles) {
				t.Errorf("roles = %v, want %v", got, tt.roles)
			}
			if got := grantTexts(res.Grants); !slices.Equal(got, tt.grants) {
				t.Errorf("grants =\n%v\nwant\n%v", got, tt.grants)
			}
			if len(res.Warnings) != tt.warnings {
				t.Errorf("warnings = %q, want %d", res.Warnings, tt.warnings)
			}
			for _, m := range res.Roles {
				if want, ok := tt.includers[m.Role]; ok && m.IncludedBy != want {
					t.Errorf("role %s IncludedBy = %q, want %q", m.Role, m.IncludedBy, want)
				}
			}
			if len(res.Expired) != 0 {
				t.Errorf("expired = %v, want none", grantTexts(res.Expired))
			}
		})
	}
}

func TestEvaluateDetails(t *testing.T) {
	s := loadCompany(t)
	lead := Worker{ID: "l-1", WorkerType: "employee", Division: "Engineering", Team: "backend", Title: "Backend Lead", Custom: map[string]string{"level": "L5"}}
	res := evaluate(t, s, lead, june)

	t.Run("role match records where and why", func(t *testing.T) {
		var eng, every RoleMatch
		for _, m := range res.Roles {
			switch m.Role {
			case "engineer":
				eng = m
			case "everyone":
				every = m
			}
		}
		want := RoleMatch{Role: "engineer", When: `worker.division == "Engineering" && worker.workerType != "vendor"`, File: "testdata/eval/company.yaml", Line: 23}
		if eng != want {
			t.Errorf("engineer = %+v, want %+v", eng, want)
		}
		if !every.Birthright || every.When != "" || every.IncludedBy != "" {
			t.Errorf("everyone = %+v", every)
		}
	})
	t.Run("all sources listed, roles by name", func(t *testing.T) {
		g := findGrant_(t, res.Grants, "github:team/backend#maintainer")
		if got, want := sourceRoles(g), []string{"engineer", "squad-lead"}; !slices.Equal(got, want) {
			t.Errorf("sources = %v, want %v", got, want)
		}
		if g.Sources[0].File != "testdata/eval/company.yaml" || g.Sources[0].Line != 30 || g.Sources[1].Line != 38 {
			t.Errorf("source positions = %+v", g.Sources)
		}
	})
	t.Run("grace: the grant's own, else its role's, else the default; largest over sources", func(t *testing.T) {
		for text, want := range map[string]time.Duration{
			"github:team/engineering#member":        72 * time.Hour,     // role grace
			"github:team/platform#maintainer":       7 * 24 * time.Hour, // engineer's grant grace beats squad-lead's default
			"github:team/backend#maintainer":        72 * time.Hour,     // engineer 72h, squad-lead default 24h
			"slack:channel/announcements":           24 * time.Hour,     // default
			"okta:account":                          24 * time.Hour,     // implied: as long as what implies it
			"github:account#member":                 24 * time.Hour,     // eng-base has no grace
			"okta:app/level5":                       24 * time.Hour,     // default
			"google:group/all@piedpiper.com#MEMBER": 24 * time.Hour,     // default
		} {
			if got := findGrant_(t, res.Grants, text).Grace; got != want {
				t.Errorf("%s grace = %v, want %v", text, got, want)
			}
		}
	})
	t.Run("implied account", func(t *testing.T) {
		sales := evaluate(t, s, Worker{ID: "s-1", Department: "Sales", Custom: map[string]string{"level": "L1"}}, june)
		g := findGrant_(t, sales.Grants, "hubspot:account")
		if len(g.Sources) != 1 || g.Sources[0].Implied != "implied by role/Sales User" || g.Sources[0].Role != "" {
			t.Errorf("hubspot account sources = %+v", g.Sources)
		}
		// An implied account gets the account's default role.
		eng := evaluate(t, s, Worker{ID: "e-1", WorkerType: "vendor", Division: "Engineering"}, june)
		if got := grantTexts(eng.Grants); slices.Contains(got, "github:account#member") {
			t.Errorf("vendor got github: %v", got)
		}
	})
	t.Run("grants sorted by app then entitlement", func(t *testing.T) {
		if !slices.IsSortedFunc(res.Grants, func(a, b Grant) int {
			if a.App != b.App {
				return strings.Compare(a.App, b.App)
			}
			if a.Entitlement.Less(b.Entitlement) {
				return -1
			}
			if b.Entitlement.Less(a.Entitlement) {
				return 1
			}
			return 0
		}) {
			t.Errorf("grants not sorted: %v", grantTexts(res.Grants))
		}
	})
}

func TestEvaluateExceptions(t *testing.T) {
	s := loadCompany(t)
	jared := Worker{ID: "w-jared", Email: "Jared@PiedPiper.com", WorkerType: "vendor"}
	// 2026-12-31 ends at midnight in Los Angeles, 08:00 UTC on 2027-01-01.
	endOfDay := time.Date(2027, 1, 1, 0, 0, 0, 0, losAngeles)
	tests := []struct {
		name    string
		worker  Worker
		now     time.Time
		grant   string // in Grants, with an exception source
		expired string // in Expired
		absent  string // in neither
	}{
		{"active during the expiry day, e-mail matched case-insensitively", jared, endOfDay.Add(-time.Second), "github:team/infra#member", "", ""},
		{"expired from the next day in the company timezone", jared, endOfDay, "", "github:team/infra#member", ""},
		{"matched by id", Worker{ID: "w-dinesh", WorkerType: "vendor"}, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), "github:team/engineering#maintainer", "", ""},
		{"matched by userName, case-insensitively", Worker{ID: "w-9", UserName: "Erlich"}, time.Date(2026, 1, 15, 12, 0, 0, 0, losAngeles), "slack:channel/aviato", "", ""},
		{"not someone else's", Worker{ID: "w-10", Email: "richard@piedpiper.com"}, june, "", "", "github:team/infra#member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := evaluate(t, s, tt.worker, tt.now)
			if tt.grant != "" {
				g := findGrant_(t, res.Grants, tt.grant)
				if len(g.Sources) != 1 || g.Sources[0].Exception == "" || g.Sources[0].Expires.IsZero() || g.Grace != 0 {
					t.Errorf("grant %s = %+v", tt.grant, g)
				}
			}
			if tt.expired != "" {
				g := findGrant_(t, res.Expired, tt.expired)
				if g.Sources[0].Exception != "Q4 migration, ticket OPS-311" || !g.Sources[0].Expires.Equal(endOfDay) {
					t.Errorf("expired %s = %+v", tt.expired, g)
				}
				if slices.Contains(grantTexts(res.Grants), tt.expired) {
					t.Errorf("%s both granted and expired", tt.expired)
				}
			}
			if tt.absent != "" {
				if slices.Contains(grantTexts(res.Grants), tt.absent) || slices.Contains(grantTexts(res.Expired), tt.absent) {
					t.Errorf("%s present for another worker", tt.absent)
				}
			}
		})
	}
	t.Run("exception on top of a role: most privileged while active, not expired after", func(t *testing.T) {
		dinesh := Worker{ID: "w-dinesh", WorkerType: "employee", Division: "Engineering", Team: "backend", Custom: map[string]string{"level": "L2"}}
		res := evaluate(t, s, dinesh, time.Date(2026, 3, 31, 23, 0, 0, 0, losAngeles))
		g := findGrant_(t, res.Grants, "github:team/engineering#maintainer")
		if got, want := sourceRoles(g), []string{"engineer", "exception:release manager"}; !slices.Equal(got, want) {
			t.Errorf("sources = %v, want %v", got, want)
		}
		if g.Grace != 72*time.Hour {
			t.Errorf("grace = %v, want the role's 72h", g.Grace)
		}
		res = evaluate(t, s, dinesh, time.Date(2026, 4, 1, 0, 0, 0, 0, losAngeles))
		findGrant_(t, res.Grants, "github:team/engineering#member")
		if len(res.Expired) != 0 {
			t.Errorf("expired = %v, want none: the role still grants it", grantTexts(res.Expired))
		}
	})
}

func TestEvaluateNilWorker(t *testing.T) {
	s := loadCompany(t)
	if _, err := s.Evaluate(nil, june); err == nil {
		t.Error("Evaluate(nil) did not fail")
	}
}

func TestEvaluateCELFeatures(t *testing.T) {
	policy := `version: 1
roles:
  - name: tenured
    when: worker.hasStartDate && worker.startDate < now - duration("2160h")
    grants: {okta: [app/equity]}
  - name: leaving
    when: worker.hasEndDate && worker.endDate < timestamp("2026-07-01T00:00:00Z")
    grants: {okta: [app/offboarding]}
  - name: strings-ext
    when: worker.title.lowerAscii().split(" ").exists(w, w == "staff")
    grants: {okta: ["app/${worker.location.lowerAscii().replace(' ', '-')}"]}
  - name: custom-in
    when: '"githubUsername" in worker.custom && worker.custom["githubUsername"] != ""'
    grants: {github: ["team/${worker.custom.githubUsername}"]}
  - name: by-manager
    when: worker.manager == "w-1" || worker.managerChain.exists(m, m.endsWith("@board.com"))
    grants: {okta: [app/reports]}
`
	s, err := LoadBytes("cel.yaml", []byte(policy), Options{Catalog: testCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	w := Worker{
		ID: "w-5", Title: "Staff Engineer", Location: "New York", Manager: "w-2", ManagerChain: []string{"w-2", "ceo@board.com"},
		StartDate: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), EndDate: time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC),
		Custom: map[string]string{"githubUsername": "gw"},
	}
	res := evaluate(t, s, w, june)
	if got, want := roleNames(res), []string{"by-manager", "custom-in", "leaving", "strings-ext", "tenured"}; !slices.Equal(got, want) {
		t.Errorf("roles = %v, want %v (warnings %q)", got, want, res.Warnings)
	}
	if !slices.Contains(grantTexts(res.Grants), "okta:app/new-york") || !slices.Contains(grantTexts(res.Grants), "github:team/gw#member") {
		t.Errorf("grants = %v", grantTexts(res.Grants))
	}
	// Before 90 days of tenure; no end date.
	w.StartDate, w.EndDate = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), time.Time{}
	res = evaluate(t, s, w, june)
	if slices.Contains(roleNames(res), "tenured") || slices.Contains(roleNames(res), "leaving") {
		t.Errorf("roles = %v", roleNames(res))
	}
}

func TestTemplateWithHashIsSkippedWithWarning(t *testing.T) {
	s, err := LoadBytes("p.yaml", []byte("version: 1\nroles:\n  - name: a\n    birthright: true\n    grants:\n      slack:\n        - channel/${worker.team}\n"), Options{Catalog: testCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	res := evaluate(t, s, Worker{ID: "w", Team: "a#b"}, june)
	if len(res.Grants) != 0 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "cannot contain '#'") {
		t.Errorf("grants %v, warnings %q", grantTexts(res.Grants), res.Warnings)
	}
}

func TestEntitlementRoleResolved(t *testing.T) {
	s, err := LoadBytes("p.yaml", []byte("version: 1\nroles:\n  - name: a\n    birthright: true\n    grants:\n      github: [account#admin, team/x]\n      google: [group/g@x.com#OWNER, group/g@x.com]\n"), Options{Catalog: testCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	res := evaluate(t, s, Worker{ID: "w"}, june)
	want := []connectors.Entitlement{{Kind: "account", Role: "admin"}, {Kind: "team", Resource: "x", Role: "member"}, {Kind: "account"}, {Kind: "group", Resource: "g@x.com", Role: "OWNER"}}
	var got []connectors.Entitlement
	for _, g := range res.Grants {
		got = append(got, g.Entitlement)
	}
	if !slices.Equal(got, want) {
		t.Errorf("entitlements = %v, want %v", got, want)
	}
}

// A condition that loops inside loops stops at the cost limit: the role
// does not match and the evaluation says why, instead of holding a CPU
// (the admin API runs uploaded what-if policies).
func TestCELCostLimit(t *testing.T) {
	policy := `version: 1
roles:
  - name: greedy
    when: 'LIST.all(a, LIST.all(b, LIST.all(c, a + b + c >= 0)))'
    grants: {okta: [app/x]}
  - name: plain
    when: worker.title == "Staff Engineer"
    grants: {okta: [app/y]}
`
	policy = strings.ReplaceAll(policy, "LIST", "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119]")
	s, err := LoadBytes("cost.yaml", []byte(policy), Options{Catalog: testCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := evaluate(t, s, Worker{ID: "w-1", Title: "Staff Engineer"}, june)
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("evaluation took %v", took)
	}
	if got := roleNames(res); !slices.Equal(got, []string{"plain"}) {
		t.Errorf("roles = %v, want only plain", got)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "cost") {
		t.Errorf("warnings = %q, want one about the cost limit", res.Warnings)
	}
}
