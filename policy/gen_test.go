package policy

import (
	"fmt"
	"math/rand"
	"strings"
	"time"

	"github.com/rosterhq/roster/connectors"
)

// This file generates a realistic synthetic company for benchmarks and for
// the memo-versus-direct agreement test: ~20 departments, 5 divisions, 40
// teams, 30 titles, 10 locations, a management tree, and a few hundred
// roles over those attributes.

var (
	genDivisions = []string{"Engineering", "Sales", "Marketing", "Operations", "Finance"}
	genLocations = []string{"Palo Alto", "New York", "London", "Berlin", "Tokyo", "Remote US", "Remote EU", "Austin", "Toronto", "Sydney"}
	genTypes     = []string{"employee", "employee", "employee", "employee", "employee", "employee", "employee", "employee", "contractor", "intern", "vendor"}
	genLevels    = []string{"L1", "L2", "L3", "L4", "L5", "L6", "L7"}
)

func genDepartments() []string {
	var out []string
	for i := 0; i < 20; i++ {
		out = append(out, fmt.Sprintf("%s %d", genDivisions[i%5], i/5+1))
	}
	return out
}

func genTeams() []string {
	var out []string
	for i := 0; i < 40; i++ {
		out = append(out, fmt.Sprintf("squad-%s-%d", strings.ToLower(genDivisions[i%5][:3]), i/5+1))
	}
	return out
}

func genTitles() []string {
	base := []string{"Engineer", "Manager", "Analyst", "Designer", "Specialist", "Director", "Coordinator", "Consultant", "Architect", "Administrator"}
	var out []string
	for i, b := range base {
		out = append(out, b, "Senior "+b)
		if i%2 == 0 {
			out = append(out, b+" Lead")
		} else {
			out = append(out, "Principal "+b)
		}
	}
	return out // 30
}

func genCatalog() Catalog {
	return Catalog{
		"github": {{Name: connectors.KindAccount, Roles: []string{"member", "admin"}}, {Name: "team", Roles: []string{"member", "maintainer"}}},
		"slack":  {{Name: "channel"}, {Name: "usergroup"}},
		"google": {{Name: "group", Roles: []string{"MEMBER", "MANAGER", "OWNER"}}},
		"okta":   {{Name: "app"}},
		"ldap":   {{Name: "group"}},
	}
}

// genPolicy returns a policy file with exactly n roles (n >= 60).
func genPolicy(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\nroles:\n")
	count := 0
	role := func(name, when string, includes []string, grants map[string][]string) {
		if count >= n {
			return
		}
		count++
		fmt.Fprintf(&b, "  - name: %s\n", name)
		switch when {
		case "":
		case "birthright":
			b.WriteString("    birthright: true\n")
		default:
			fmt.Fprintf(&b, "    when: %s\n", yamlQuote(when))
		}
		if len(includes) > 0 {
			fmt.Fprintf(&b, "    includes: [%s]\n", strings.Join(includes, ", "))
		}
		if len(grants) > 0 {
			b.WriteString("    grants:\n")
			for _, app := range []string{"github", "google", "ldap", "okta", "slack"} {
				if gs := grants[app]; len(gs) > 0 {
					fmt.Fprintf(&b, "      %s:\n", app)
					for _, g := range gs {
						fmt.Fprintf(&b, "        - %s\n", yamlQuote(g))
					}
				}
			}
		}
	}
	role("everyone", "birthright", nil, map[string][]string{"slack": {"channel/announcements"}})
	role("employee", `worker.workerType in ["employee", "intern"]`, nil, map[string][]string{
		"google": {"account", "group/all@piedpiper.com"}, "slack": {"account", "channel/general"}, "okta": {"account", "app/benefits"}})
	role("contractor", `worker.workerType == "contractor"`, nil, map[string][]string{"google": {"account"}, "slack": {"channel/contractors"}})
	role("tools-base", "", nil, map[string][]string{"okta": {"app/jira", "app/confluence"}})
	role("eng-base", "", []string{"tools-base"}, map[string][]string{"github": {"account", "team/engineering"}, "ldap": {"group/cn=vpn,ou=groups"}})
	role("tenured", `worker.hasStartDate && worker.startDate < now - duration("2160h")`, nil, map[string][]string{"okta": {"app/equity"}})
	for i, d := range genDivisions {
		inc := []string{"employee"}
		if d == "Engineering" {
			inc = append(inc, "eng-base")
		}
		role(fmt.Sprintf("div-%d", i), fmt.Sprintf(`worker.division == %q && worker.workerType != "vendor"`, d), inc, map[string][]string{
			"google": {fmt.Sprintf("group/div-%d@piedpiper.com", i)}, "slack": {fmt.Sprintf("channel/div-%d", i)}})
	}
	role("engineer-squad", `worker.division == "Engineering" && worker.team != ""`, []string{"eng-base"}, map[string][]string{
		"github": {"team/${worker.team}"}, "slack": {"usergroup/${worker.team}"}})
	for i, d := range genDepartments() {
		inc := []string{"tools-base"}
		role(fmt.Sprintf("dept-%d", i), fmt.Sprintf(`worker.department == %q`, d), inc, map[string][]string{
			"google": {fmt.Sprintf("group/dept-%d@piedpiper.com", i)}, "ldap": {fmt.Sprintf("group/cn=dept-%d,ou=groups", i)}})
	}
	for i, t := range genTeams() {
		role(fmt.Sprintf("team-%d", i), fmt.Sprintf(`worker.team == %q && worker.workerType in ["employee", "contractor"]`, t), nil, map[string][]string{
			"slack": {fmt.Sprintf("channel/%s", t)}})
	}
	for i, t := range genTitles() {
		g := map[string][]string{"okta": {fmt.Sprintf("app/title-%d", i)}}
		if strings.HasSuffix(t, "Lead") {
			g["github"] = []string{"team/${worker.team}#maintainer"}
		}
		role(fmt.Sprintf("title-%d", i), fmt.Sprintf(`worker.title == %q`, t), nil, g)
	}
	for i, d := range genDivisions {
		role(fmt.Sprintf("leads-%d", i), fmt.Sprintf(`worker.division == %q && (worker.title.endsWith("Lead") || worker.title.startsWith("Principal"))`, d), nil, map[string][]string{
			"google": {fmt.Sprintf("group/leads-%d@piedpiper.com#MANAGER", i)}})
	}
	for i := 0; i < 5; i++ {
		locs := []string{genLocations[2*i], genLocations[2*i+1]}
		role(fmt.Sprintf("site-%d", i), fmt.Sprintf(`worker.location in [%q, %q]`, locs[0], locs[1]), nil, map[string][]string{
			"slack": {"channel/site-${worker.location.lowerAscii().replace(' ', '-')}"}})
	}
	for i := 0; i < 20; i++ {
		mgr := fmt.Sprintf("w-%06d", i*7)
		role(fmt.Sprintf("org-%d", i), fmt.Sprintf(`%q in worker.managerChain`, mgr), nil, map[string][]string{"slack": {fmt.Sprintf("channel/org-%d", i)}})
	}
	for i, lv := range genLevels {
		role(fmt.Sprintf("level-%d", i), fmt.Sprintf(`has(worker.custom.level) && worker.custom.level == %q`, lv), nil, map[string][]string{"okta": {fmt.Sprintf("app/level-%d", i)}})
	}
	for i := 0; i < 10; i++ {
		role(fmt.Sprintf("cc-%d", i), fmt.Sprintf(`worker.costCenter == "CC-%03d"`, i*10), nil, map[string][]string{"ldap": {fmt.Sprintf("group/cn=cc-%d,ou=groups", i)}})
	}
	for i := 0; count < n; i++ {
		d := genDepartments()[i%20]
		t := genTitles()[(i*7)%30]
		role(fmt.Sprintf("combo-%d", i), fmt.Sprintf(`worker.department == %q && worker.title == %q && worker.workerType != "vendor"`, d, t),
			[]string{fmt.Sprintf("dept-%d", i%20)}, map[string][]string{"google": {fmt.Sprintf("group/combo-%d@piedpiper.com", i)}})
	}
	return []byte(b.String())
}

func yamlQuote(s string) string {
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}

// genWorkers returns n workers with a management tree (every worker's
// manager has a smaller index).
func genWorkers(n int, seed int64) []Worker {
	rng := rand.New(rand.NewSource(seed))
	depts, teams, titles := genDepartments(), genTeams(), genTitles()
	out := make([]Worker, n)
	base := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range out {
		w := &out[i]
		w.ID = fmt.Sprintf("w-%06d", i)
		w.UserName = fmt.Sprintf("user%06d", i)
		w.Email = w.UserName + "@piedpiper.com"
		w.GivenName, w.FamilyName = "Given", fmt.Sprintf("Family%d", i)
		w.DisplayName = w.GivenName + " " + w.FamilyName
		w.EmployeeNumber = fmt.Sprintf("E%06d", i)
		w.WorkerType = genTypes[rng.Intn(len(genTypes))]
		div := rng.Intn(5)
		w.Division = genDivisions[div]
		w.Department = depts[div+5*rng.Intn(4)]
		if rng.Intn(10) > 0 {
			w.Team = teams[div+5*rng.Intn(8)]
		}
		w.Title = titles[rng.Intn(len(titles))]
		w.Organization = "Pied Piper"
		w.CostCenter = fmt.Sprintf("CC-%03d", rng.Intn(100))
		w.Location = genLocations[rng.Intn(len(genLocations))]
		w.StartDate = base.AddDate(0, 0, rng.Intn(5*365))
		if rng.Intn(20) == 0 {
			w.EndDate = w.StartDate.AddDate(1, 0, 0)
		}
		w.Custom = map[string]string{"githubUsername": fmt.Sprintf("gh%d", i)}
		if rng.Intn(4) > 0 {
			w.Custom["level"] = genLevels[rng.Intn(len(genLevels))]
		}
		if i > 0 {
			// Managers are the first 50 workers and every 7th worker.
			var m int
			for {
				m = rng.Intn(i)
				if m < 50 || m%7 == 0 {
					break
				}
			}
			mw := &out[m]
			w.Manager = mw.ID
			w.ManagerChain = append([]string{mw.ID, mw.Email}, mw.ManagerChain...)
			if len(w.ManagerChain) > 12 {
				w.ManagerChain = w.ManagerChain[:12]
			}
		}
	}
	return out
}
