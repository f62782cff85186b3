package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/config"
	"github.com/rosterhq/roster/lifecycle"
	"github.com/rosterhq/roster/lifecycle/hr"
	"github.com/rosterhq/roster/policy"
)

func newHRCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "hr", Short: "Load HR records"}
	imp := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Import workers from a CSV file (upsert; applied to apps only by a running server)",
		Long: `Import reads HR records from a CSV file and stores them: new workers are
joiners (pending until their start date), changed ones may be movers,
active=false or a past end date makes a leaver, and a returning leaver is a
rehire of the same identity. Every change is audited.

Columns (header row required; only id is required):
  ` + strings.Join(hr.Columns, ",") + `
Any other column becomes a custom attribute (worker.custom.NAME in policies).
Dates are YYYY-MM-DD in the company timezone. manager is the manager's id.

Workers missing from the file are left as they are. A file with any bad row
is rejected whole, with the line and column of each problem.

Without a running server, import changes no app: run ` + "`roster plan`" + ` and
` + "`roster apply`" + ` next. With ` + "`roster serve`" + ` running on the data dir, the import goes
through it and, as for SCIM changes, the server plans and carries out the
changed workers at once (safety thresholds still hold).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			// A bad file is reported before anything is opened.
			if _, err := hr.ReadCSV(args[0], bytes.NewReader(data)); err != nil {
				return err
			}
			b, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer b.Close()
			res, err := b.ImportHR(cmd.Context(), "hr-import:"+strings.TrimPrefix(cliActor(), "cli:"), args[0], data)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Imported %d records (%d unchanged)%s.\n", res.Records, res.Unchanged, transitionsText(res.Transitions))
			return nil
		},
	}
	cmd.AddCommand(imp)
	return cmd
}

func transitionsText(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range []string{lifecycle.Joiner, lifecycle.Mover, lifecycle.Leaver, lifecycle.Rehire} {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[k], plural(k, m[k])))
		}
	}
	return ": " + strings.Join(parts, ", ")
}

func plural(word string, n int) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// relPath shortens p relative to the working directory when it is below it.
func relPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// shortDuration prints 72h rather than 72h0m0s, and whole days as 7d.
func shortDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

func newPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Check, explain and test role policies"}
	var dir string
	check := &cobra.Command{
		Use:   "check",
		Short: "Load and validate the policy files; report every problem with file:line:col",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, pol, err := g.offlinePolicy(cmd, dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Policy OK: %d roles in %d files (hash %s).\n", len(pol.RoleNames()), len(pol.Files()), short(pol.Hash()))
			return nil
		},
	}
	check.Flags().StringVar(&dir, "policies", "", "check the policy files in this directory instead of the configured ones")

	var output string
	explain := &cobra.Command{
		Use:   "explain WORKER",
		Short: "Show which roles a worker matches, why, and which grants come from which role",
		Long: `Explain evaluates the policy for one stored worker (by id, e-mail or
userName) and prints the roles that match with their conditions, and every
entitlement with the roles or exceptions it comes from.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.explain(cmd, output, args[0])
		},
	}
	explain.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")

	var testDir string
	test := &cobra.Command{
		Use:   "test",
		Short: "Run the policy tests (policy_tests in roster.yaml); exit 1 on any failure",
		Long: `Test runs the policy test files: each case gives worker attributes and the
roles and entitlements expected present or absent. A failing case shows the
difference. Exit 0 when all pass, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, pol, err := g.offlinePolicy(cmd, testDir)
			if err != nil {
				return err
			}
			files, err := cfg.PolicyTestFiles()
			if err != nil {
				return err
			}
			if len(files) == 0 {
				return errors.New("no policy test files: set policy_tests in roster.yaml")
			}
			cases, err := policy.LoadTests(files)
			if err != nil {
				return err
			}
			results := pol.RunTests(cases, g.clock())
			out := cmd.OutOrStdout()
			failed := 0
			for _, r := range results {
				if len(r.Failures) == 0 {
					fmt.Fprintf(out, "PASS  %s\n", r.Case.Name)
					continue
				}
				failed++
				fmt.Fprintf(out, "FAIL  %s  (%s:%d)\n", r.Case.Name, relPath(r.Case.File), r.Case.Line)
				wd, _ := os.Getwd()
				for _, f := range r.Failures {
					if wd != "" {
						f = strings.ReplaceAll(f, wd+string(filepath.Separator), "")
					}
					fmt.Fprintf(out, "      %s\n", f)
				}
			}
			fmt.Fprintf(out, "\n%d passed, %d failed\n", len(results)-failed, failed)
			if failed > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	test.Flags().StringVar(&testDir, "policies", "", "test the policy files in this directory instead of the configured ones")
	cmd.AddCommand(check, explain, test)
	return cmd
}

// offlinePolicy loads config and policy without touching the data file
// (connectors are opened without a database: only their kinds are read).
func (g *globals) offlinePolicy(cmd *cobra.Command, dir string) (*config.Config, *policy.Set, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	db, err := openTempDB()
	if err != nil {
		return nil, nil, err
	}
	defer db.close()
	apps, err := openConnectors(cmd.Context(), cfg, db.db, nil, g)
	if err != nil {
		return nil, nil, err
	}
	pol, err := loadPolicy(cfg, apps, dir)
	return cfg, pol, err
}

// explain is `policy explain` and `workers show`.
func (g *globals) explain(cmd *cobra.Command, output, key string) error {
	b, err := g.dialFor(cmd, output)
	if err != nil {
		return err
	}
	defer b.Close()
	x, err := b.Explain(cmd.Context(), key)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if output == "json" {
		return writeJSON(out, map[string]any{"worker": x.Worker, "status": x.Status, "result": x.Result})
	}
	renderExplain(out, x.Worker, x.Status, x.Result)
	return nil
}

func renderExplain(out io.Writer, w *lifecycle.Worker, st lifecycle.Status, res *policy.Result) {
	fmt.Fprintf(out, "Worker %s %s <%s>: %s", w.ID, w.HR.DisplayName, w.HR.Email, st)
	fmt.Fprintf(out, " (%s, %s / %s, team %q, %s)\n", w.HR.WorkerType, w.HR.Division, w.HR.Department, w.HR.Team, w.HR.Title)
	if st != lifecycle.Active {
		fmt.Fprintf(out, "Only active workers get access; as %s this worker gets none of the grants below.\n", st)
	}
	fmt.Fprintln(out, "\nRoles:")
	if len(res.Roles) == 0 {
		fmt.Fprintln(out, "  (none)")
	}
	for _, r := range res.Roles {
		switch {
		case r.IncludedBy != "":
			fmt.Fprintf(out, "  %-20s included by %s  (%s:%d)\n", r.Role, r.IncludedBy, relPath(r.File), r.Line)
		case r.Birthright:
			fmt.Fprintf(out, "  %-20s birthright  (%s:%d)\n", r.Role, relPath(r.File), r.Line)
		default:
			fmt.Fprintf(out, "  %-20s when %s  (%s:%d)\n", r.Role, strings.Join(strings.Fields(r.When), " "), relPath(r.File), r.Line)
		}
	}
	fmt.Fprintln(out, "\nGrants:")
	if len(res.Grants) == 0 {
		fmt.Fprintln(out, "  (none)")
	}
	for _, gr := range res.Grants {
		var from []string
		for _, s := range gr.Sources {
			switch {
			case s.Exception != "":
				from = append(from, fmt.Sprintf("exception %q until %s", s.Exception, s.Expires.Format(time.DateOnly)))
			case s.Role != "":
				from = append(from, "role "+s.Role)
			case s.Implied != "":
				from = append(from, s.Implied)
			}
		}
		line := fmt.Sprintf("  %s:%s", gr.App, gr.Entitlement)
		fmt.Fprintf(out, "%-48s <- %s", line, strings.Join(from, ", "))
		if gr.Grace > 0 {
			fmt.Fprintf(out, "  [grace %s]", shortDuration(gr.Grace))
		}
		fmt.Fprintln(out)
	}
	for _, gr := range res.Expired {
		fmt.Fprintf(out, "  %-46s expired exception\n", gr.App+":"+gr.Entitlement.String())
	}
	for _, wn := range res.Warnings {
		fmt.Fprintf(out, "\nwarning: %s\n", wn)
	}
}

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify, read and export the audit log"}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit log's hash chain; exit 1 and name the first bad record if it was altered",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withAudit(cmd, func(b backend) error {
				res, err := b.VerifyAudit(cmd.Context())
				if err != nil {
					var ce *audit.ChainError
					if errors.As(err, &ce) {
						return &exitError{code: 1, err: fmt.Errorf("audit log verification FAILED at record %d: %s", ce.Seq, ce.Reason)}
					}
					return err
				}
				if res.Records == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "Audit log OK: empty")
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Audit log OK: %d records, chain intact, head %s\n", res.Records, res.Head)
				return nil
			})
		},
	}
	var (
		f      auditFilter
		output string
	)
	logCmd := &cobra.Command{
		Use:   "log",
		Short: "Print audit records, oldest first, with filters",
		Example: `  roster audit log --worker w-017
  roster audit log --type action. --app github --since 2026-11-01
  roster audit log --type worker.transition -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			flt, err := f.filter()
			if err != nil {
				return err
			}
			return g.withAudit(cmd, func(b backend) error {
				out := cmd.OutOrStdout()
				if output == "json" {
					_, err := b.ExportAudit(cmd.Context(), out, audit.FormatJSONL, flt)
					return err
				}
				return b.QueryAudit(cmd.Context(), flt, func(r audit.Record) error {
					_, err := fmt.Fprintln(out, formatRecord(&r))
					return err
				})
			})
		},
	}
	f.flags(logCmd)
	logCmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json (JSON Lines)")

	var (
		ef     auditFilter
		format string
		file   string
	)
	export := &cobra.Command{
		Use:   "export",
		Short: "Export audit records as JSON Lines or CSV, with their hashes, for auditors",
		Long: `Export writes audit records (all, or those the filters select) as JSON Lines
or CSV. Each record carries its prevHash and hash, so an auditor can
re-verify the chain offline. Secrets never enter the audit log.`,
		Example: `  roster audit export --format csv --out audit-2026Q4.csv --since 2026-10-01 --until 2027-01-01`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != audit.FormatJSONL && format != audit.FormatCSV {
				return fmt.Errorf("--format %q: want jsonl or csv", format)
			}
			flt, err := ef.filter()
			if err != nil {
				return err
			}
			return g.withAudit(cmd, func(b backend) error {
				var w io.Writer = cmd.OutOrStdout()
				var tmp *os.File
				if file != "" {
					tmp, err = os.CreateTemp(dirOf(file), ".roster-export-*")
					if err != nil {
						return err
					}
					defer os.Remove(tmp.Name())
					w = tmp
				}
				n, err := b.ExportAudit(cmd.Context(), w, format, flt)
				if err != nil {
					return err
				}
				if tmp != nil {
					if err := tmp.Close(); err != nil {
						return err
					}
					if err := os.Rename(tmp.Name(), file); err != nil {
						return err
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "Exported %d records to %s\n", n, file)
				}
				return nil
			})
		},
	}
	ef.flags(export)
	export.Flags().StringVar(&format, "format", "jsonl", "jsonl or csv")
	export.Flags().StringVar(&file, "out", "", "write to this file (atomically) instead of standard output")
	cmd.AddCommand(verify, logCmd, export)
	return cmd
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i+1]
	}
	return "."
}

type auditFilter struct {
	worker, app, typ, since, until string
}

func (f *auditFilter) flags(c *cobra.Command) {
	c.Flags().StringVar(&f.worker, "worker", "", "only records about this worker id")
	c.Flags().StringVar(&f.app, "app", "", "only records about this connector instance")
	c.Flags().StringVar(&f.typ, "type", "", "only records of this type; a prefix ending in '.' selects a family (action.)")
	c.Flags().StringVar(&f.since, "since", "", "only records at or after this time (YYYY-MM-DD or RFC 3339, UTC)")
	c.Flags().StringVar(&f.until, "until", "", "only records before this time (YYYY-MM-DD or RFC 3339, UTC)")
}

func (f *auditFilter) filter() (audit.Filter, error) {
	out := audit.Filter{Worker: f.worker, App: f.app, Type: f.typ}
	parse := func(name, v string) (time.Time, error) {
		if v == "" {
			return time.Time{}, nil
		}
		for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
			if t, err := time.Parse(layout, v); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("--%s %q: want YYYY-MM-DD or RFC 3339", name, v)
	}
	var err error
	if out.Since, err = parse("since", f.since); err != nil {
		return out, err
	}
	if out.Until, err = parse("until", f.until); err != nil {
		return out, err
	}
	return out, nil
}

func formatRecord(r *audit.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6d  %s  %-18s %-22s", r.Seq, r.Time.UTC().Format("2006-01-02 15:04:05"), r.Type, r.Actor)
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=%s", k, v)
		}
	}
	kv("worker", r.Worker)
	kv("app", r.App)
	kv("action", r.Action)
	kv("entitlement", r.Entitlement)
	kv("reason", r.Reason)
	kv("outcome", r.Outcome)
	kv("plan", r.PlanID)
	if r.Message != "" {
		fmt.Fprintf(&b, " %q", r.Message)
	}
	keys := make([]string, 0, len(r.Details))
	for k := range r.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, r.Details[k])
	}
	return b.String()
}

// withAudit runs fn on the backend of the audit commands: a running
// server, or the data file opened for its audit log only (a policy that
// does not load does not stop an audit).
func (g *globals) withAudit(cmd *cobra.Command, fn func(backend) error) error {
	b, err := g.dial(cmd)
	if err != nil {
		return err
	}
	defer b.Close()
	return fn(b)
}

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check the configuration"}
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate roster.yaml, open every connector offline, and load the policy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			db, err := openTempDB()
			if err != nil {
				return err
			}
			defer db.close()
			apps, err := openConnectors(cmd.Context(), cfg, db.db, nil, g)
			if err != nil {
				return err
			}
			pol, err := loadPolicy(cfg, apps, "")
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Config OK: %s\n", cfg.Path)
			fmt.Fprintf(out, "  data dir:   %s\n", cfg.DataDir)
			fmt.Fprintf(out, "  timezone:   %s\n", cfg.Timezone)
			fmt.Fprintf(out, "  policies:   %d roles in %d files\n", len(pol.RoleNames()), len(pol.Files()))
			fmt.Fprintf(out, "  connectors:\n")
			for _, c := range apps {
				kinds := []string{"account"}
				for _, k := range c.Kinds() {
					if k.Name != "account" {
						kinds = append(kinds, k.Name)
					}
				}
				fmt.Fprintf(out, "    %-10s %-8s kinds: %s\n", c.Name(), cfg.Connectors[c.Name()].Type, strings.Join(kinds, ", "))
			}
			return nil
		},
	}
	cmd.AddCommand(check)
	return cmd
}
