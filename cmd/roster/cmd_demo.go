package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	roster "github.com/rosterhq/roster"
	"github.com/rosterhq/roster/lifecycle"
	"github.com/rosterhq/roster/lifecycle/hr"
)

// demoClock is a clock the demo moves forward to show future start dates
// and grace periods.
type demoClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *demoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *demoClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newDemoCmd(g *globals) *cobra.Command {
	var keep string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole story on the sample company, in-process, in seconds",
		Long: `Demo copies the sample company Pied Piper (about 60 people, six in-process
"memory" apps: github, slack, google, hubspot, zendesk, zapier) into a fresh
temporary data dir and tells the story: import the company from HR (CSV),
plan, apply; then, with HR talking to Roster's SCIM endpoint over loopback
HTTP as Entra ID or Okta would: hire an engineer with a future start date; hire a marketer; move an
engineer to marketing (old access kept for the grace period); end a
contractor's contract; a leaver. Each plan and its result is printed, and
the demo ends with the audit log verified and what each app holds.

No network, no config needed. --keep DIR keeps the data and config there
so you can run other commands on it afterwards.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := keep
			if dir == "" {
				tmp, err := os.MkdirTemp("", "roster-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			}
			if err := extractSample(dir); err != nil {
				return err
			}
			clock := &demoClock{t: g.clock().UTC()}
			dg := &globals{configPath: filepath.Join(dir, "roster.yaml"), dataDir: filepath.Join(dir, "data"), now: clock.Now, logger: g.logger}
			d := &demo{out: cmd.OutOrStdout(), g: dg, clock: clock, dir: dir}
			if err := d.run(cmd.Context()); err != nil {
				return err
			}
			if keep != "" {
				fmt.Fprintf(d.out, "\nThe demo's config and data are in %s; try:\n  roster --config %s status\n", dir, dg.configPath)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keep, "keep", "", "write the sample company and its data here and keep them")
	return cmd
}

// extractSample writes the embedded sample company into dir.
func extractSample(dir string) error {
	sub, err := fs.Sub(roster.Sample, "testdata/piedpiper")
	if err != nil {
		return err
	}
	return fs.WalkDir(sub, ".", func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, p)
		if de.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}

type demo struct {
	scim  *demoSCIM
	out   io.Writer
	g     *globals
	clock *demoClock
	dir   string
	s     *session
	step  int
}

func (d *demo) title(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n== %d. %s ==\n\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) run(ctx context.Context) error {
	s, err := d.g.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	d.s = s
	e := s.engine
	scim, err := startDemoSCIM(d.out, e)
	if err != nil {
		return fmt.Errorf("demo: start the SCIM endpoint: %w", err)
	}
	defer scim.close()
	d.scim = scim
	fmt.Fprintf(d.out, "Roster demo: Pied Piper, %d apps (%s), today is %s in %s.\n",
		len(e.Apps()), strings.Join(e.Apps(), ", "), d.clock.Now().In(s.cfg.Location).Format("Mon 2006-01-02"), s.cfg.Timezone)

	d.title("HR sends the company: import hr.csv")
	f, err := os.Open(filepath.Join(d.dir, "hr.csv"))
	if err != nil {
		return err
	}
	file, err := hr.ReadCSV("hr.csv", f)
	f.Close()
	if err != nil {
		return err
	}
	res, err := hr.Import(ctx, e, "hr-import", file)
	if err != nil {
		return err
	}
	st, err := e.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "Imported %d workers%s.\n%d active, %d pending (future start date), %d already gone.\n",
		res.Records, transitionsText(res.Transitions), st.Workers[lifecycle.Active], st.Workers[lifecycle.Pending], st.Workers[lifecycle.Terminated])

	d.title("Plan and apply: every app gets what the policy says")
	if err := d.apply(ctx, false); err != nil {
		return err
	}

	ws, err := e.Workers(ctx)
	if err != nil {
		return err
	}
	engineer := pick(ws, func(w *lifecycle.Worker) bool {
		return w.HR.Division == "Engineering" && w.HR.WorkerType == "employee" && w.HR.Team != "" && !strings.HasSuffix(w.HR.Title, "Lead") && w.Status == lifecycle.Active
	})
	contractor := pick(ws, func(w *lifecycle.Worker) bool {
		return w.HR.WorkerType == "contractor" && !w.HR.EndDate.IsZero() && w.Status == lifecycle.Active
	})
	leaver := pick(ws, func(w *lifecycle.Worker) bool {
		return w.HR.Division != "Engineering" && w.HR.WorkerType == "employee" && w.Status == lifecycle.Active && w.HR.Title != "" && !strings.Contains(w.HR.Title, "Chief")
	})
	lead := pick(ws, func(w *lifecycle.Worker) bool {
		return w.HR.Division == "Engineering" && strings.HasSuffix(w.HR.Title, "Lead") && w.Status == lifecycle.Active
	})
	if engineer == nil || contractor == nil || leaver == nil || lead == nil {
		return errors.New("demo: the sample company lacks an engineer, a lead, a contractor or a leaver to show")
	}

	today := d.clock.Now().In(s.cfg.Location)
	start := today.AddDate(0, 0, 3)
	d.title("Hire an engineer who starts in three days (%s)", start.Format("Mon 2006-01-02"))
	newEng := lifecycle.HRRecord{UserName: "laurie.bream", Email: "laurie.bream@piedpiper.com", GivenName: "Laurie",
		FamilyName: "Bream", DisplayName: "Laurie Bream", WorkerType: "employee", Title: "Software Engineer",
		Department: lead.HR.Department, Division: "Engineering", Organization: lead.HR.Organization, Team: lead.HR.Team,
		Location: "Palo Alto", Manager: string(lead.ID), StartDate: lifecycle.Date(start.Format(time.DateOnly)), Active: true,
		Custom: map[string]string{"githubUsername": "lbream"}}
	if _, err := d.scim.create(ctx, newEng); err != nil {
		return err
	}
	fmt.Fprintln(d.out, "Before the start date the plan has nothing for her:")
	if err := d.plan(ctx); err != nil {
		return err
	}
	d.clock.Advance(start.Sub(today))
	fmt.Fprintf(d.out, "\n... three days later (%s), the scheduler activates her:\n\n", d.clock.Now().In(s.cfg.Location).Format("Mon 2006-01-02"))
	if err := d.apply(ctx, true); err != nil {
		return err
	}

	d.title("Hire a marketer who starts today")
	if _, err := d.scim.create(ctx, lifecycle.HRRecord{UserName: "ed.chen", Email: "ed.chen@piedpiper.com", GivenName: "Ed",
		FamilyName: "Chen", DisplayName: "Ed Chen", WorkerType: "employee", Title: "Growth Marketer", Department: "Marketing",
		Division: "Go-To-Market", Organization: lead.HR.Organization, Location: "New York",
		StartDate: lifecycle.Date(d.clock.Now().In(s.cfg.Location).Format(time.DateOnly)), Active: true}); err != nil {
		return err
	}
	if err := d.apply(ctx, true); err != nil {
		return err
	}

	d.title("%s moves from engineering to marketing", engineer.HR.DisplayName)
	if err := d.scim.patch(ctx, engineer.ID, []scimOp{
		{Op: "Replace", Path: scimEnterprise + ":division", Value: "Go-To-Market"},
		{Op: "Replace", Path: scimEnterprise + ":department", Value: "Marketing"},
		{Op: "Remove", Path: scimRoster + ":team"},
		{Op: "Replace", Path: "title", Value: "Product Marketing Manager"},
	}); err != nil {
		return err
	}
	if err := d.apply(ctx, true); err != nil {
		return err
	}
	d.clock.Advance(4 * 24 * time.Hour)
	fmt.Fprintf(d.out, "\n... four days later (%s), the grace period is over:\n\n", d.clock.Now().In(s.cfg.Location).Format("Mon 2006-01-02"))
	if err := d.apply(ctx, true); err != nil {
		return err
	}

	yesterday := d.clock.Now().In(s.cfg.Location).AddDate(0, 0, -1).Format(time.DateOnly)
	d.title("%s's contract ends (end date %s)", contractor.HR.DisplayName, yesterday)
	if err := d.scim.patch(ctx, contractor.ID, []scimOp{{Op: "Replace", Path: scimRoster + ":endDate", Value: yesterday}}); err != nil {
		return err
	}
	if err := d.apply(ctx, true); err != nil {
		return err
	}

	d.title("%s leaves the company (HR sends active \"False\", as Entra ID does)", leaver.HR.DisplayName)
	// As Entra ID sends it: the boolean as a string.
	if err := d.scim.patch(ctx, leaver.ID, []scimOp{{Op: "Replace", Path: "active", Value: "False"}}); err != nil {
		return err
	}
	if err := d.apply(ctx, true); err != nil {
		return err
	}

	d.title("Nothing left to do, and the audit log is intact")
	p, err := e.Plan(ctx, lifecycle.PlanOptions{})
	if err != nil {
		return err
	}
	renderPlan(d.out, p)
	vr, err := e.Audit().Verify(ctx)
	if err != nil {
		return fmt.Errorf("demo: audit verify: %w", err)
	}
	fmt.Fprintf(d.out, "Audit log OK: %d records, chain intact, head %s\n", vr.Records, short(vr.Head))

	d.title("What each app holds now")
	return d.holdings(ctx)
}

func pick(ws []*lifecycle.Worker, f func(*lifecycle.Worker) bool) *lifecycle.Worker {
	for _, w := range ws {
		if f(w) {
			return w
		}
	}
	return nil
}

func (d *demo) plan(ctx context.Context) error {
	p, err := d.s.engine.Plan(ctx, lifecycle.PlanOptions{})
	if err != nil {
		return err
	}
	renderPlan(d.out, p)
	return nil
}

// apply runs a whole apply; full prints the plan, otherwise a summary.
func (d *demo) apply(ctx context.Context, full bool) error {
	p, _, err := d.s.engine.Prepare(ctx, "demo")
	if err != nil {
		return err
	}
	if full {
		renderPlan(d.out, p)
	} else {
		perApp := map[string]int{}
		for _, st := range p.Steps {
			perApp[st.Action.App]++
		}
		apps := make([]string, 0, len(perApp))
		for a := range perApp {
			apps = append(apps, a)
		}
		sort.Strings(apps)
		for _, a := range apps {
			fmt.Fprintf(d.out, "  %-8s %4d changes\n", a, perApp[a])
		}
		fmt.Fprintln(d.out, summaryLine(p))
	}
	rep, err := d.s.engine.ApplyPlan(ctx, p, lifecycle.ApplyOptions{Actor: "demo"})
	if err != nil {
		return err
	}
	printReport(d.out, rep)
	if len(rep.Failed) > 0 {
		return fmt.Errorf("demo: %d actions failed", len(rep.Failed))
	}
	return nil
}

func (d *demo) holdings(ctx context.Context) error {
	states, err := d.s.engine.Snapshot(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "  %-8s %8s %10s %7s\n", "app", "accounts", "suspended", "grants")
	for _, app := range d.s.engine.Apps() {
		var active, suspended, grants int
		counts := map[string]int{}
		for _, a := range states[app].Accounts {
			if a.Suspended {
				suspended++
			} else {
				active++
			}
			grants += len(a.Entitlements)
			for _, e := range a.Entitlements {
				counts[e.Key().String()]++
			}
		}
		fmt.Fprintf(d.out, "  %-8s %8d %10d %7d   %s\n", app, active, suspended, grants, topCounts(counts, 4))
	}
	return nil
}

func topCounts(m map[string]int, n int) string {
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range m {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].v != all[j].v {
			return all[i].v > all[j].v
		}
		return all[i].k < all[j].k
	})
	var parts []string
	for i, x := range all {
		if i == n {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%s %d", x.k, x.v))
	}
	return strings.Join(parts, ", ")
}
