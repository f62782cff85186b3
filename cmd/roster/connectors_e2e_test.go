package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/connectors/github/githubfake"
	"github.com/rosterhq/roster/connectors/slack/slackfake"
)

// appsEnv is the sample company with GitHub and Slack as real connectors,
// each talking to its stateful fake over loopback HTTP.
type appsEnv struct {
	*env
	gh *githubfake.Server
	sl *slackfake.Server
	// logins maps worker id to the GitHub login HR knows for them.
	logins map[string]string
}

// newAppsEnv rewrites the sample's github and slack instances from type
// memory to the real connectors, seeds the fakes with every team, channel
// and user group the policies name and every GitHub user HR names.
func newAppsEnv(t *testing.T) *appsEnv {
	t.Helper()
	e := newEnv(t)
	gh := githubfake.New(githubfake.Options{})
	t.Cleanup(gh.Close)
	sl := slackfake.New(slackfake.Options{})
	t.Cleanup(sl.Close)
	// Secrets from files (t.Setenv would forbid t.Parallel).
	ghToken := writeSecret(t, e.dir, "github-token", gh.Token())
	slToken := writeSecret(t, e.dir, "slack-token", sl.Token)

	editFile(t, e.config, `  github:
    type: memory
    settings:
      kinds:
        - {name: account, roles: [member, admin], doc: "GitHub org membership"}
        - {name: team, roles: [member, maintainer], doc: "GitHub team"}
`, `  github:
    type: github
    settings:
      org: `+gh.Org()+`
      base_url: `+gh.URL+`/
      token: `+ghToken+`
      teams: ["*"]
      timeout: 2s
`)
	editFile(t, e.config, `  slack:
    type: memory
    settings:
      kinds:
        - {name: usergroup, doc: "Slack user group (@handle), e.g. @oncall"}
        - {name: channel, doc: "Slack channel, without the #"}
`, `  slack:
    type: slack
    settings:
      api_url: `+sl.APIURL()+`
      scim_url: `+sl.SCIMURL()+`
      token: `+slToken+`
      channels: ["*"]
      timeout: 2s
`)
	// A mover loses the old squad's team at once (the sample keeps it for
	// 72 hours), so the story can check the revoke.
	editFile(t, filepath.Join(e.dir, "policies", "engineering.yaml"), "    grace: 72h\n", "    grace: 0s\n")
	// Faster retries than production, so the fault test stays short.
	editFile(t, e.config, "backoff_base: 200ms, backoff_max: 30s", "backoff_base: 50ms, backoff_max: 2s")

	channels, groups := map[string]bool{}, map[string]bool{}
	for _, f := range globFiles(t, filepath.Join(e.dir, "policies", "*.yaml")) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(channel|usergroup)/([a-z0-9-]+)`).FindAllStringSubmatch(string(b), -1) {
			if m[1] == "channel" {
				channels[m[2]] = true
			} else {
				groups[m[2]] = true
			}
		}
	}
	// The division channels come from a template in birthright.yaml.
	for _, ch := range []string{"eng", "gtm", "support", "g-and-a"} {
		channels[ch] = true
	}
	sl.AddChannels(sortedKeys(channels)...)
	sl.AddUsergroups(sortedKeys(groups)...)

	ae := &appsEnv{env: e, gh: gh, sl: sl, logins: map[string]string{}}
	teams := map[string]bool{"engineering": true, "infra": true}
	for _, row := range hrRows(t, filepath.Join(e.dir, "hr.csv")) {
		if row["team"] != "" {
			teams[row["team"]] = true
		}
		if row["githubUsername"] != "" {
			gh.AddUser(row["githubUsername"])
			ae.logins[row["id"]] = row["githubUsername"]
		}
	}
	for _, slug := range sortedKeys(teams) {
		gh.AddTeam(slug)
	}
	return ae
}

// acceptAll has every invited person accept their GitHub invitation.
func (a *appsEnv) acceptAll() {
	a.t.Helper()
	for _, inv := range a.gh.Invitations() {
		key := inv.Login
		if key == "" {
			key = inv.Email
		}
		if _, err := a.gh.AcceptInvitation(key); err != nil {
			a.t.Fatalf("accept invitation of %s: %v", key, err)
		}
	}
}

// slackUser returns the Slack user Roster linked to worker id.
func (a *appsEnv) slackUser(id string) slackfake.User {
	a.t.Helper()
	for _, u := range a.sl.Users() {
		if u.ExternalID == id {
			return u
		}
	}
	a.t.Fatalf("no Slack user with externalId %s", id)
	return slackfake.User{}
}

// converge applies and accepts invitations until the plan is empty; it
// fails the test after a few rounds.
func (a *appsEnv) converge() {
	a.t.Helper()
	for round := 1; ; round++ {
		r := a.roster("apply", "--auto-approve")
		if r.code != 0 && r.code != 1 {
			a.t.Fatalf("apply (round %d): %s", round, r)
		}
		a.acceptAll()
		if p := a.roster("plan", "--detailed-exitcode"); p.code == 0 {
			return
		} else if round == 4 {
			a.t.Fatalf("no convergence after %d applies; last apply:\n%s\nplan:\n%s", round, r, p)
		}
	}
}

// TestRealConnectorsLifecycle drives joiner, mover, leaver and rehire for
// an engineer through `roster apply` against the GitHub and Slack fakes,
// and checks the apps and the audit log after each step.
func TestRealConnectorsLifecycle(t *testing.T) {
	t.Parallel()
	a := newAppsEnv(t)
	runLifecycle(t, a)
	login := a.logins["w-011"]
	// Every write happened once: one Slack account per worker, and one
	// GitHub invitation per joining (Marcus joined twice).
	noDuplicateSlackUsers(t, a.sl)
	if n := githubWrites(a.gh, "invite", login); n != 2 {
		t.Errorf("Marcus was invited to GitHub %d times, want 2 (joiner, rehire)", n)
	}
}

// TestRealConnectorsUnderFaults is the same story with a fifth of the
// requests to each app failing: 429 with Retry-After: 1s (5%), 5xx before
// the change (10-12%), and the change made but its answer lost (GitHub: a
// 502 after the change, 5%; Slack: no answer until the client gives up,
// 3%). It must end in the same state with nothing lost or duplicated.
func TestRealConnectorsUnderFaults(t *testing.T) {
	t.Parallel()
	a := newAppsEnv(t)
	a.gh.SetFaults(githubfake.Faults{Rate429: 0.05, Rate5xx: 0.10, RateLost: 0.05, RetryAfter: time.Second, Seed: 7})
	a.sl.SetFaults(slackfake.Faults{Rate429: 0.05, Rate5xx: 0.12, RateHang: 0.03, RetryAfter: time.Second, Seed: 7})
	runLifecycle(t, a)
	login := a.logins["w-011"]
	if c := a.gh.Calls(); c.Throttled == 0 {
		t.Errorf("the GitHub fake injected no 429: %+v", c)
	}
	if c := a.sl.Calls(); c.Throttled == 0 {
		t.Errorf("the Slack fake injected no 429: %+v", c)
	}
	// Retry-After was honoured: no request answered 429 came again sooner
	// than the second it asked for. (POSTs are left out: one URL, many
	// invitations.)
	reqs := a.gh.Requests()
	waited := 0
	for i, r := range reqs {
		if r.Fault != "429" || r.Method == "POST" {
			continue
		}
		for _, next := range reqs[i+1:] {
			if next.Method == r.Method && next.Path == r.Path && next.Query == r.Query {
				if gap := next.Time.Sub(r.Time); gap < 950*time.Millisecond {
					t.Errorf("%s %s?%s was retried %v after a 429 with Retry-After: 1", r.Method, r.Path, r.Query, gap)
				}
				waited++
				break
			}
		}
	}
	if waited == 0 {
		t.Error("no request answered 429 by the GitHub fake was retried")
	}
	// Creating is not idempotent in either API: a lost answer must not
	// become a second account or a second invitation.
	lost, hung := 0, 0
	for _, r := range a.gh.Requests() {
		if r.Fault == "lost" {
			lost++
		}
	}
	for _, r := range a.sl.Requests() {
		if r.Fault == "hang" {
			hung++
		}
	}
	if lost == 0 || hung == 0 {
		t.Errorf("answers lost: %d by the GitHub fake, %d by the Slack fake; want some of each", lost, hung)
	}
	noDuplicateSlackUsers(t, a.sl)
	if n := githubWrites(a.gh, "invite", login); n != 2 {
		t.Errorf("Marcus was invited to GitHub %d times under faults, want 2", n)
	}
}

// runLifecycle is the joiner → mover → leaver → rehire story of Marcus
// Webb (w-011, backend engineer, GitHub login in HR).
func runLifecycle(t *testing.T, a *appsEnv) {
	t.Helper()
	const id = "w-011"
	login := a.logins[id]
	if login == "" {
		t.Fatalf("the sample HR file has no githubUsername for %s", id)
	}
	csvPath := filepath.Join(a.dir, "hr.csv")

	// Joiner: the whole company is imported and applied.
	a.must(0, "hr", "import", csvPath)
	a.converge()
	if role := a.gh.Members()[login]; role != "member" {
		t.Fatalf("joiner: %s is %q in the GitHub org, want member; members %v", login, role, a.gh.Members())
	}
	for _, team := range []string{"engineering", "backend"} {
		if _, ok := a.gh.TeamMembers(team)[login]; !ok {
			t.Errorf("joiner: %s is not in GitHub team %s: %v", login, team, a.gh.TeamMembers(team))
		}
	}
	u := a.slackUser(id)
	if !u.Active || !strings.EqualFold(u.Email, "marcus.webb@piedpiper.com") {
		t.Fatalf("joiner: Slack user %+v", u)
	}
	for _, ch := range []string{"general", "eng"} {
		if !slices.Contains(a.sl.ChannelMembers(ch), u.ID) {
			t.Errorf("joiner: Slack user %s is not in #%s", u.ID, ch)
		}
	}
	if !slices.Contains(a.sl.UsergroupMembers("oncall"), u.ID) {
		t.Errorf("joiner: Slack user %s is not in @oncall", u.ID)
	}

	// Mover: backend squad -> the infra team's squad.
	editCSV(t, csvPath, map[string]map[string]string{id: {"team": "infra"}})
	r := a.must(0, "hr", "import", csvPath)
	wantLines(t, r.stdout, `1 mover`)
	a.converge()
	if _, ok := a.gh.TeamMembers("backend")[login]; ok {
		t.Errorf("mover: %s is still in team backend", login)
	}
	if _, ok := a.gh.TeamMembers("infra")[login]; !ok {
		t.Errorf("mover: %s is not in team infra: %v", login, a.gh.TeamMembers("infra"))
	}

	// Leaver: out of the GitHub org and every team; Slack deactivated,
	// which also takes away channels and user groups.
	editCSV(t, csvPath, map[string]map[string]string{id: {"active": "false"}})
	a.must(0, "hr", "import", csvPath)
	a.converge()
	if _, ok := a.gh.Members()[login]; ok {
		t.Errorf("leaver: %s is still an org member", login)
	}
	for _, team := range []string{"engineering", "infra"} {
		if _, ok := a.gh.TeamMembers(team)[login]; ok {
			t.Errorf("leaver: %s is still in team %s", login, team)
		}
	}
	if u := a.slackUser(id); u.Active || slices.Contains(a.sl.ChannelMembers("eng"), u.ID) || slices.Contains(a.sl.UsergroupMembers("oncall"), u.ID) {
		t.Errorf("leaver: Slack user %+v is active or still in #eng / @oncall", u)
	}

	// Rehire: the same identity comes back, with the same Slack user.
	editCSV(t, csvPath, map[string]map[string]string{id: {"active": "true"}})
	r = a.must(0, "hr", "import", csvPath)
	wantLines(t, r.stdout, `1 rehire`)
	a.converge()
	if _, ok := a.gh.Members()[login]; !ok {
		t.Errorf("rehire: %s is not back in the org", login)
	}
	if _, ok := a.gh.TeamMembers("infra")[login]; !ok {
		t.Errorf("rehire: %s is not back in team infra", login)
	}
	if again := a.slackUser(id); !again.Active || again.ID != u.ID || !slices.Contains(a.sl.ChannelMembers("eng"), again.ID) {
		t.Errorf("rehire: Slack user %+v (was %s) is not the same, active and in #eng", again, u.ID)
	}

	// The audit log shows every step for both apps, and verifies.
	r = a.must(0, "audit", "log", "--worker", id, "--type", "action.")
	for _, want := range []string{
		`app=github action=create_account .*reason=joiner outcome=ok`,
		`app=github action=grant entitlement=team/infra.*reason=mover outcome=ok`,
		`app=github action=revoke entitlement=team/backend.*reason=mover outcome=ok`,
		`app=github action=suspend_account .*reason=leaver outcome=ok`,
		`app=github action=revoke entitlement=team/engineering.*reason=leaver outcome=ok`,
		`app=github action=restore_account .*reason=rehire outcome=ok`,
		`app=slack action=create_account .*reason=joiner outcome=ok`,
		`app=slack action=suspend_account .*reason=leaver outcome=ok`,
		`app=slack action=restore_account .*reason=rehire outcome=ok`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("audit log of %s has no line matching %q:\n%s", id, want, r.stdout)
		}
	}
	a.must(0, "audit", "verify")
}

// githubWrites counts the fake's writes whose What is what and whose
// target is target.
func githubWrites(gh *githubfake.Server, what, target string) int {
	n := 0
	for _, w := range gh.Writes() {
		if w.What == what && w.Target == target {
			n++
		}
	}
	return n
}

// noDuplicateSlackUsers fails t when a worker has two Slack users, or an
// e-mail address belongs to two.
func noDuplicateSlackUsers(t *testing.T, sl *slackfake.Server) {
	t.Helper()
	byWorker, byEmail := map[string]int{}, map[string]int{}
	for _, u := range sl.Users() {
		if u.ExternalID != "" {
			byWorker[u.ExternalID]++
		}
		byEmail[strings.ToLower(u.Email)]++
	}
	for id, n := range byWorker {
		if n != 1 {
			t.Errorf("worker %s has %d Slack users", id, n)
		}
	}
	for e, n := range byEmail {
		if n != 1 {
			t.Errorf("%d Slack users have the e-mail %s", n, e)
		}
	}
}

func globFiles(t testing.TB, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("glob %s: %v (%d files)", pattern, err, len(m))
	}
	return m
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// hrRows reads an HR file into one map per row, keyed by column.
func hrRows(t testing.TB, path string) []map[string]string {
	t.Helper()
	rows := readCSV(t, path)
	var out []map[string]string
	for _, row := range rows[1:] {
		m := map[string]string{}
		for i, col := range rows[0] {
			m[col] = row[i]
		}
		out = append(out, m)
	}
	return out
}

// TestRealAppsExampleConfig keeps the commented example of real GitHub
// and Slack instances loading: config, connectors (offline) and policy.
func TestRealAppsExampleConfig(t *testing.T) {
	for _, v := range []string{"GITHUB_TOKEN", "SLACK_TOKEN", "SLACK_SCIM_TOKEN"} {
		t.Setenv(v, "example-"+strings.ToLower(v))
	}
	cfg := filepath.Join(sampleDir, "roster.real-apps.yaml")
	data := t.TempDir()
	r := runCLI(t, "--config", cfg, "--data-dir", data, "config", "check")
	if r.code != 0 {
		t.Fatalf("config check: %s", r)
	}
	wantLines(t, r.stdout, `^    github\s+github\s+kinds: account, team$`, `^    slack\s+slack\s+kinds: account, channel, usergroup$`)
	if r := runCLI(t, "--config", cfg, "--data-dir", data, "policy", "check"); r.code != 0 {
		t.Fatalf("policy check: %s", r)
	}
	if strings.Contains(r.stdout+r.stderr, "example-github_token") {
		t.Errorf("a secret value was printed:\n%s", r)
	}
}

// TestConnectorsCheck runs `roster connectors check` against the fakes,
// directly and through a running `roster serve` (which holds the data
// file): a missing Slack scope and a misspelt GitHub team in the policy
// are reported, and no token is printed.
func TestConnectorsCheck(t *testing.T) {
	t.Parallel()
	a := newAppsEnv(t)
	a.sl.SetScopes("usergroups:read", "channels:read", "channels:manage", "users:read", "users:read.email", "admin")
	editFile(t, filepath.Join(a.dir, "policies", "engineering.yaml"), "        - team/engineering\n", "        - team/engineerin\n")
	a.must(0, "hr", "import", filepath.Join(a.dir, "hr.csv"))

	check := func(via string) {
		t.Helper()
		r := a.roster("connectors", "check", "github", "slack")
		if r.code != 1 {
			t.Fatalf("%s: connectors check: want exit 1, got %s", via, r)
		}
		wantLines(t, r.stdout, `^CONNECTOR\s+TYPE\s+STATUS\s+DETAIL$`,
			`^github\s+github\s+unknown resources\s+the policy grants what does not exist: team/engineerin$`,
			`^slack\s+slack\s+missing permissions\s+.*usergroups:write`)
		if strings.Contains(r.stdout, a.sl.Token) || strings.Contains(r.stdout, a.gh.Token()) {
			t.Errorf("%s: a token was printed:\n%s", via, r.stdout)
		}
	}
	check("direct")
	if r := a.roster("connectors", "check", "nope"); r.code != 1 || !strings.Contains(r.stderr, `no connector named "nope"`) {
		t.Errorf("an unknown name: %s", r)
	}

	// Fixed, the same check passes for GitHub through a running server.
	editFile(t, filepath.Join(a.dir, "policies", "engineering.yaml"), "        - team/engineerin\n", "        - team/engineering\n")
	editFile(t, a.config, "env:ROSTER_SCIM_TOKEN", writeSecret(t, a.dir, "scim-token", "scim-secret-0123456789abcdefghijklmnopq"))
	inProcessServe(t, a.env)
	r := a.must(0, "connectors", "check", "github")
	wantLines(t, r.stdout, `^github\s+github\s+ok\s+credentials work; no permission missing; all \d+ resources the policy grants exist$`)
	r = a.must(0, "audit", "log", "--type", "api.")
	wantLines(t, r.stdout, `api\.call\s+socket:\S+.*path=/api/v1/connectors/check`)
}

// TestServeCountsRetryWaits: a 429 from Slack while `roster serve` reads
// it is waited out and shows in /metrics, by app and cause.
func TestServeCountsRetryWaits(t *testing.T) {
	t.Parallel()
	a := newAppsEnv(t)
	editFile(t, a.config, "env:ROSTER_SCIM_TOKEN", writeSecret(t, a.dir, "scim-token", "scim-secret-0123456789abcdefghijklmnopq"))
	a.sl.SetFaults(slackfake.Faults{First429: 1, RetryAfter: time.Second})
	base, _ := inProcessServe(t, a.env)
	const sample = `roster_connector_retry_wait_seconds_count{app="slack",cause="rate_limited"} 1`
	var body string
	waitFor(t, 15*time.Second, "the wait in /metrics", func() bool {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return strings.Contains(body, sample)
	})
	if !strings.Contains(body, `roster_connector_retry_wait_seconds_sum{app="slack",cause="rate_limited"} 1`) {
		t.Errorf("the 1s Retry-After is not the recorded wait:\n%s", grepLines(body, "retry_wait"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
