package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The fixed clock of every golden case: 2026-11-29 09:00 in Palo Alto.
var goldenNow = time.Date(2026, 11, 29, 17, 0, 0, 0, time.UTC)

const goldenPolicyHash = "080a9e35d2a2ef21c0ffee0000000000000000000000000000000000000000aa"

// People of the golden cases.
var (
	alice = connectors.Person{Worker: "w-101", Email: "alice.ng@piedpiper.com", UserName: "alice.ng", GivenName: "Alice",
		FamilyName: "Ng", DisplayName: "Alice Ng", Manager: "priya.raman@piedpiper.com", Attributes: map[string]string{"githubUsername": "alng"}}
	marcus = connectors.Person{Worker: "w-011", Email: "marcus.webb@piedpiper.com", UserName: "marcus.webb", GivenName: "Marcus",
		FamilyName: "Webb", DisplayName: "Marcus Webb", Manager: "maya.whitfield@piedpiper.com"}
	maya = connectors.Person{Worker: "w-005", Email: "maya.whitfield@piedpiper.com", UserName: "maya.whitfield",
		DisplayName: "Maya Whitfield", Manager: "richard.hendricks@piedpiper.com"}
	tara = connectors.Person{Worker: "w-006", Email: "tara.lindqvist@piedpiper.com", UserName: "tara.lindqvist",
		DisplayName: "Tara Lindqvist", Manager: "richard.hendricks@piedpiper.com"}
	jian = connectors.Person{Worker: "w-022", Email: "jian.yang@piedpiper.com", DisplayName: "Jian Yang"}
	// nelson has no display name: the label is id and e-mail only.
	nelson = connectors.Person{Worker: "w-014", Email: "nelson.bighetti@piedpiper.com", UserName: "nelson.bighetti",
		Attributes: map[string]string{"githubUsername": "bighead"}}
	sofia = connectors.Person{Worker: "w-012", Email: "sofia.petrova@piedpiper.com", DisplayName: "Sofia Petrova"}
	jared = connectors.Person{Worker: "w-002", Email: "jared.dunn@piedpiper.com", DisplayName: "Jared Dunn"}
)

// ent parses an entitlement or panics (test data only).
func ent(s string) connectors.Entitlement {
	e, err := connectors.ParseEntitlement(s)
	if err != nil {
		panic(err)
	}
	return e
}

// step builds a plan step the way the planner does.
func step(kind connectors.ActionKind, app string, p connectors.Person, account connectors.AccountID, e, reason, detail string) lifecycle.Step {
	a := connectors.Action{Kind: kind, App: app, Person: p, Account: account, Entitlement: ent(e), Reason: reason, Detail: detail}
	return lifecycle.Step{ID: lifecycle.StepID(a), Action: a}
}

// from marks a grant as a role change from role.
func from(s lifecycle.Step, role string) lifecycle.Step {
	s.From = role
	return s
}

func withGrace(s lifecycle.Step, d time.Duration) lifecycle.Step {
	s.Grace = d
	return s
}

func deferred(app string, p connectors.Person, account connectors.AccountID, e, reason string, until time.Time) lifecycle.Deferred {
	return lifecycle.Deferred{Action: connectors.Action{Kind: connectors.Revoke, App: app, Person: p, Account: account,
		Entitlement: ent(e), Reason: reason}, Until: until}
}

func goldenPlan(id string, managed int, steps ...lifecycle.Step) *lifecycle.Plan {
	return &lifecycle.Plan{ID: id, CreatedAt: goldenNow, PolicyHash: goldenPolicyHash, Steps: steps, Managed: managed}
}

// goldenCases are the plans whose rendering is pinned in
// testdata/golden/<name>/plan.txt and plan.json.
func goldenCases() map[string]*lifecycle.Plan {
	const (
		C = connectors.CreateAccount
		G = connectors.Grant
		R = connectors.Revoke
		S = connectors.SuspendAccount
		O = connectors.RestoreAccount
		T = connectors.TransferData
		D = connectors.DeleteAccount
	)
	movedAt := goldenNow.Add(-24 * time.Hour)
	return map[string]*lifecycle.Plan{
		// An empty plan: nothing to do.
		"empty": goldenPlan("", 60),

		// A new engineer: accounts and grants in three apps.
		"joiner": goldenPlan("p-20261129-170000-a1b2c3", 58,
			withGrace(step(C, "github", alice, "", "account#member", lifecycle.Joiner, "role engineer"), 72*time.Hour),
			withGrace(step(G, "github", alice, "", "team/backend#member", lifecycle.Joiner, "role engineer"), 72*time.Hour),
			withGrace(step(G, "github", alice, "", "team/engineering#member", lifecycle.Joiner, "role engineer"), 72*time.Hour),
			step(C, "google", alice, "", "account", lifecycle.Joiner, "role employee"),
			step(G, "google", alice, "", "group/all@piedpiper.com#MEMBER", lifecycle.Joiner, "role employee"),
			step(C, "slack", alice, "", "account", lifecycle.Joiner, "role employee; role everyone"),
			withGrace(step(G, "slack", alice, "", "channel/eng", lifecycle.Joiner, "role division-channel; role engineer"), 72*time.Hour),
			step(G, "slack", alice, "", "usergroup/oncall", lifecycle.Joiner, "role engineer"),
		),

		// Maya becomes a GitHub org admin (an account-level role change);
		// Marcus moves from the backend squad to lead frontend: a new team
		// as maintainer, eng@ from MEMBER to MANAGER, on-call removed at
		// once (no grace), the old squad team kept for its 72h grace.
		"mover-with-grace-and-role-change": func() *lifecycle.Plan {
			p := goldenPlan("p-20261129-170000-d4e5f6", 58,
				from(step(G, "github", maya, "m-000005", "account#admin", lifecycle.PolicyChange, "role engineering-admin"), "member"),
				withGrace(step(G, "github", marcus, "m-000011", "team/frontend#maintainer", lifecycle.Mover, "role squad-lead"), 72*time.Hour),
				from(step(G, "google", marcus, "m-000031", "group/eng@piedpiper.com#MANAGER", lifecycle.Mover, "role squad-lead"), "MEMBER"),
				step(R, "slack", marcus, "m-000040", "usergroup/oncall-backend", lifecycle.Mover, "role engineer"),
			)
			p.Deferred = []lifecycle.Deferred{
				deferred("github", marcus, "m-000011", "team/backend#member", lifecycle.Mover, movedAt.Add(72*time.Hour)),
				deferred("slack", marcus, "m-000040", "channel/backend", lifecycle.Mover, movedAt.Add(72*time.Hour)),
			}
			return p
		}(),

		// Tara left 40 days ago and her accounts' retention (30d) has
		// passed; HubSpot was down when she left, so it is suspended,
		// her data transferred and her grants revoked in the same plan.
		// Jian's contract ended today.
		"leaver-with-retention-delete": goldenPlan("p-20261129-170000-0a0b0c", 57,
			step(D, "google", tara, "m-000006", "account", lifecycle.Leaver, "retention 30d passed"),
			step(S, "hubspot", tara, "m-000002", "account", lifecycle.Leaver, ""),
			step(R, "hubspot", tara, "m-000002", "role/Marketing User", lifecycle.Leaver, ""),
			step(R, "hubspot", tara, "m-000002", "team/Marketing", lifecycle.Leaver, ""),
			step(T, "hubspot", tara, "m-000002", "account", lifecycle.Leaver, "to richard.hendricks@piedpiper.com"),
			step(D, "hubspot", tara, "m-000002", "account", lifecycle.Leaver, "retention 30d passed"),
			step(S, "github", jian, "m-000019", "account", lifecycle.Leaver, ""),
			step(R, "github", jian, "m-000019", "team/mobile#member", lifecycle.Leaver, ""),
			step(S, "slack", jian, "m-000052", "account", lifecycle.Leaver, ""),
			step(R, "slack", jian, "m-000052", "channel/eng", lifecycle.Leaver, ""),
			step(R, "slack", jian, "m-000052", "channel/general", lifecycle.Leaver, ""),
		),

		// Nelson comes back: his suspended GitHub and Slack accounts are
		// restored (GitHub with a different org role), his deleted Google
		// account is created again.
		"rehire": goldenPlan("p-20261129-170000-777777", 59,
			step(O, "github", nelson, "m-000014", "account", lifecycle.Rehire, "role engineer"),
			from(step(G, "github", nelson, "m-000014", "account#member", lifecycle.Rehire, "role engineer"), "none"),
			step(G, "github", nelson, "m-000014", "team/backend#member", lifecycle.Rehire, "role engineer"),
			step(C, "google", nelson, "", "account", lifecycle.Rehire, "role employee"),
			step(O, "slack", nelson, "m-000044", "account", lifecycle.Rehire, "role employee; role everyone"),
			step(G, "slack", nelson, "m-000044", "channel/general", lifecycle.Rehire, "role employee"),
		),

		// Access granted by hand is revoked, access removed by hand is
		// granted again, an expired exception is revoked; accounts that
		// belong to nobody are reported (github sorted before slack).
		// The non-ASCII HubSpot team checks the column alignment.
		"drift-and-orphans": func() *lifecycle.Plan {
			p := goldenPlan("p-20261129-170000-dddddd", 57,
				step(R, "github", jared, "m-000002", "team/infra#member", lifecycle.ExceptionExpired, "exception: Q4 infra cost migration review, ticket OPS-311"),
				step(R, "github", sofia, "m-000012", "team/infra#maintainer", lifecycle.Drift, ""),
				step(G, "hubspot", sofia, "m-000020", "team/Équipe Ventes", lifecycle.Drift, "role sales"),
				step(G, "hubspot", sofia, "m-000020", "role/Sales User", lifecycle.Drift, "role sales"),
				step(G, "slack", sofia, "m-000012", "channel/eng", lifecycle.Drift, "role division-channel; role engineer"),
			)
			p.Orphans = []lifecycle.Orphan{
				{App: "slack", Account: connectors.AccountState{ID: "U0BOT42"}},
				{App: "github", Account: connectors.AccountState{ID: "hooli-bot", Email: "bot@hooli.xyz",
					Entitlements: []connectors.Entitlement{ent("team/infra#member")}}},
				{App: "github", Account: connectors.AccountState{ID: "erlich-old", Email: "erlich@aviato.com", Suspended: true}},
			}
			return p
		}(),

		// No step, but removals waiting for a grace period (a revoke, and
		// the suspension of an account that no role grants any more) and
		// an orphan: not "No changes", and no "will perform" header either.
		"only-waiting-and-orphans": func() *lifecycle.Plan {
			p := goldenPlan("", 58)
			p.Deferred = []lifecycle.Deferred{
				deferred("github", marcus, "m-000011", "team/backend#member", lifecycle.Mover, movedAt.Add(72*time.Hour)),
				{Action: connectors.Action{Kind: connectors.SuspendAccount, App: "zapier", Person: marcus, Account: "m-000003",
					Entitlement: connectors.Account, Reason: lifecycle.Mover}, Until: movedAt.Add(7 * 24 * time.Hour)},
			}
			p.Orphans = []lifecycle.Orphan{{App: "zendesk", Account: connectors.AccountState{ID: "m-000099", Email: "dana@hooli.xyz"}}}
			return p
		}(),
		// github is down: nothing is planned there, the rest goes ahead.
		"unreadable-app": func() *lifecycle.Plan {
			p := goldenPlan("", 58)
			p.Steps = []lifecycle.Step{
				step(connectors.SuspendAccount, "slack", marcus, "m-000011", "account", lifecycle.Leaver, ""),
			}
			p.Unreadable = map[string]string{"github": "snapshot: GET /orgs/piedpiper/members: 502 Bad Gateway (after 6 attempts)"}
			return p
		}(),
	}
}

func TestGoldenPlans(t *testing.T) {
	t.Parallel()
	cases := goldenCases()
	// Every case directory has a case, and every case a directory (a
	// renamed case must not leave a stale golden behind).
	dirs, err := os.ReadDir(filepath.Join("testdata", "golden"))
	if err != nil && !*update {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if d.Name() == adminGolden {
			continue // TestAdminAPIChildServe's
		}
		if _, ok := cases[d.Name()]; !ok {
			t.Errorf("testdata/golden/%s has no case in goldenCases", d.Name())
		}
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join("testdata", "golden", name)
			var txt bytes.Buffer
			renderPlan(&txt, p)
			var js bytes.Buffer
			if err := writePlanJSON(&js, p); err != nil {
				t.Fatal(err)
			}
			// The JSON decodes back into the same plan.
			var back lifecycle.Plan
			if err := json.Unmarshal(js.Bytes(), &back); err != nil {
				t.Fatalf("plan.json does not decode: %v", err)
			}
			if back.Fingerprint() != p.Fingerprint() || len(back.Steps) != len(p.Steps) || back.Summary() != p.Summary() {
				t.Errorf("plan.json does not round-trip: summary %+v, want %+v", back.Summary(), p.Summary())
			}
			checkGolden(t, filepath.Join(dir, "plan.txt"), txt.Bytes())
			checkGolden(t, filepath.Join(dir, "plan.json"), js.Bytes())
		})
	}
}

// checkGolden compares got with the golden file, or rewrites it with
// -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/roster -run TestGoldenPlans -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept):\n%s", path, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the lines that differ, with their numbers.
func lineDiff(want, got string) string {
	w, g := splitLines(want), splitLines(got)
	var b bytes.Buffer
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + quote(wl) + "\n  got:  " + quote(gl) + "\n")
		}
	}
	return b.String()
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := bytes.IndexByte([]byte(s), '\n')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
	return out
}

func quote(s string) string { return strconv.Quote(s) }
