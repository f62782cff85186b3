package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rosterhq/roster/lifecycle"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writePlanJSON writes a plan as `plan -o json` prints it.
func writePlanJSON(w io.Writer, p *lifecycle.Plan) error {
	return writeJSON(w, jsonPlan(p))
}

// jsonPlan returns p with its steps as a JSON list even when there are
// none ("steps": [], not null), so consumers need no null check.
func jsonPlan(p *lifecycle.Plan) *lifecycle.Plan {
	if p == nil || p.Steps != nil {
		return p
	}
	c := *p
	c.Steps = []lifecycle.Step{}
	return &c
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return fmt.Errorf("--output %q: want text or json", o)
	}
	return nil
}

func newPlanCmd(g *globals) *cobra.Command {
	var (
		detailed bool
		output   string
		dir      string
	)
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what apply would change, and why, without changing anything",
		Long: `Plan reads every app's current state, evaluates the policy for every worker
and prints the changes that would make the apps match: grouped by worker,
then app; + adds, ~ changes, - removes; each line with its reason (joiner,
mover, leaver, rehire, policy change, exception expired, drift).

With --policies DIR the plan uses the policy files in DIR instead of the
configured ones, without loading them: review a policy pull request by
running plan against its checkout and see exactly whose access changes.

Plan changes nothing: not the apps, not the data file, not the audit log.`,
		Example: `  roster plan
  roster plan --detailed-exitcode     # exit 0: no changes, 2: changes, 1: error
  roster plan --policies ./proposed-policies -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := g.dialFor(cmd, output)
			if err != nil {
				return err
			}
			defer b.Close()
			var proposed *proposedPolicies
			if dir != "" {
				proposed = &proposedPolicies{Dir: dir}
			}
			p, err := b.Plan(cmd.Context(), proposed)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				if err := writePlanJSON(out, p); err != nil {
					return err
				}
			} else {
				renderPlan(out, p)
			}
			if err := unreadableError(p); err != nil {
				return err
			}
			if detailed && !p.Empty() {
				return &exitError{code: 2}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 0 when there are no changes, 2 when there are, 1 on error")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&dir, "policies", "", "plan with the policy files in this directory instead of the configured ones (what-if)")
	return cmd
}

func newApplyCmd(g *globals) *cobra.Command {
	var (
		auto   bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Make every app match the policy: plan, confirm, carry out, audit",
		Long: `Apply first finishes any actions a previous run left in the outbox (after a
crash or kill), brings worker statuses up to date with the clock (start
dates, contract ends), then computes the plan, shows it and asks for
confirmation (type "yes"), unless --auto-approve.

A plan that suspends, revokes or deletes more than the safety thresholds in
roster.yaml allow is not applied: it is saved as pending, its id printed,
and it runs only after ` + "`roster approve ID`" + ` (exit code 3).

Each action is written to the outbox and its intent to the audit log before
it is tried; its outcome is audited when it ends. Transient errors are
retried with exponential backoff; terminal ones are reported (exit 1).`,
		Example: `  roster apply
  roster apply --auto-approve`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "json" && !auto {
				return errors.New("-o json needs --auto-approve: there is no prompt in JSON mode")
			}
			b, err := g.dialFor(cmd, output)
			if err != nil {
				return err
			}
			defer b.Close()
			out := cmd.OutOrStdout()
			actor := cliActor()
			p, resumed, err := b.Review(cmd.Context(), actor)
			if output == "text" {
				printResumed(out, resumed)
			}
			if err != nil {
				return err
			}
			if output == "text" {
				renderPlan(out, p)
			}
			if p.Empty() {
				// Nothing to change; applying the empty plan records that
				// the pending transitions are carried out.
				res, err := b.Apply(cmd.Context(), actor, p)
				if err != nil {
					return err
				}
				if output == "json" {
					if err := writeJSON(out, map[string]any{"plan": jsonPlan(res.Plan), "report": res.Report}); err != nil {
						return err
					}
				}
				return unreadableError(res.Plan)
			}
			if !auto {
				ok, err := confirm(cmd.InOrStdin(), out)
				if err != nil {
					return err
				}
				if !ok {
					return &exitError{code: 1, err: errors.New("apply cancelled")}
				}
			}
			res, err := b.Apply(cmd.Context(), actor, p)
			if res == nil {
				return err
			}
			if output == "text" {
				printResumed(out, res.Resumed)
			}
			if errors.Is(err, lifecycle.ErrPlanChanged) {
				return err
			}
			if err := reportApply(out, output, res.Plan, res.Report, err); err != nil {
				return err
			}
			return unreadableError(res.Plan)
		},
	}
	cmd.Flags().BoolVar(&auto, "auto-approve", false, "apply without asking for confirmation (safety thresholds still apply)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// printResumed says what finishing an earlier run's outbox did, if
// anything.
func printResumed(out io.Writer, resumed *lifecycle.Report) {
	if resumed == nil {
		return
	}
	if n := resumed.Done + len(resumed.Failed) + resumed.Skipped; n > 0 {
		fmt.Fprintf(out, "Finished %d actions left in the outbox by an earlier run (%d failed).\n\n", n, len(resumed.Failed))
	}
}

// reportApply prints the outcome of an apply and turns it into an exit code.
func reportApply(out io.Writer, output string, p *lifecycle.Plan, rep *lifecycle.Report, err error) error {
	var ar *lifecycle.ApprovalRequiredError
	if errors.As(err, &ar) {
		if output == "json" {
			_ = writeJSON(out, map[string]any{"plan": jsonPlan(p), "pendingApproval": ar.PlanID, "exceeded": ar.Exceeded})
		} else {
			fmt.Fprintf(out, "\nThis plan exceeds the safety thresholds:\n")
			for _, x := range ar.Exceeded {
				fmt.Fprintf(out, "  - %s\n", x)
			}
			fmt.Fprintf(out, "Nothing was changed. The plan was saved as %s.\nReview it, then run: roster approve %s\n", ar.PlanID, ar.PlanID)
		}
		return &exitError{code: 3}
	}
	if output == "json" {
		if jerr := writeJSON(out, map[string]any{"plan": jsonPlan(p), "report": rep}); jerr != nil {
			return jerr
		}
	} else if rep != nil {
		printReport(out, rep)
	}
	if err != nil {
		return err
	}
	if rep != nil && len(rep.Failed) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d actions failed", len(rep.Failed))}
	}
	return nil
}

func printReport(out io.Writer, rep *lifecycle.Report) {
	fmt.Fprintf(out, "\nApply complete: %d done, %d failed, %d skipped.", rep.Done, len(rep.Failed), rep.Skipped)
	if rep.PlanID != "" {
		fmt.Fprintf(out, " (plan %s)", rep.PlanID)
	}
	fmt.Fprintln(out)
	for _, f := range rep.Failed {
		fmt.Fprintf(out, "  ! %s: %s [%s, %d attempts]\n", f.Action.String(), f.Error, f.Kind, f.Attempts)
	}
}

// confirm asks for "yes" on in.
func confirm(in io.Reader, out io.Writer) (bool, error) {
	if f, ok := in.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice == 0 {
			return false, errors.New("standard input is not a terminal: pass --auto-approve to apply without confirmation")
		}
	}
	fmt.Fprint(out, "\nDo you want to perform these actions? Only 'yes' will be accepted: ")
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return strings.TrimSpace(line) == "yes", nil
}

// cliActor names the person running the CLI in the audit log.
func cliActor() string {
	for _, v := range []string{"ROSTER_ACTOR", "SUDO_USER", "USER", "LOGNAME"} {
		if u := os.Getenv(v); u != "" {
			return "cli:" + u
		}
	}
	return "cli"
}

func newApproveCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "approve PLAN_ID",
		Short: "Approve a plan that exceeded the safety thresholds, and apply it",
		Long: `Approve records your approval of a pending plan in the audit log and carries
it out. The apps are read again first: steps that are no longer needed are
dropped, and changes that appeared since the plan was saved are left for
the next apply, so an approval never does more than you reviewed.

` + "`roster status`" + ` lists pending plans.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := g.dialFor(cmd, output)
			if err != nil {
				return err
			}
			defer b.Close()
			res, err := b.Approve(cmd.Context(), cliActor(), args[0])
			if res == nil || res.Plan == nil && err != nil {
				// Not approved (stays pending, e.g. an app cannot be read):
				// say what finishing the outbox did, then why.
				if res != nil && res.Report != nil && res.Report.Done+len(res.Report.Failed)+res.Report.Skipped > 0 && output == "text" {
					printReport(cmd.OutOrStdout(), res.Report)
				}
				return err
			}
			out := cmd.OutOrStdout()
			if output == "text" {
				fmt.Fprintf(out, "Plan %s approved.", args[0])
				if res.Stale > 0 {
					fmt.Fprintf(out, " %d of its steps were no longer needed and were dropped.", res.Stale)
				}
				fmt.Fprintln(out)
			}
			return reportApply(out, output, res.Plan, res.Report, err)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func newStatusCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show workers by status, the outbox, pending plans, the last reconcile and the audit head",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := g.dialFor(cmd, output)
			if err != nil {
				return err
			}
			defer b.Close()
			st, err := b.Status(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				return writeJSON(out, st)
			}
			fmt.Fprintf(out, "Workers:       %d active, %d pending, %d terminated\n", st.Workers[lifecycle.Active], st.Workers[lifecycle.Pending], st.Workers[lifecycle.Terminated])
			if len(st.Transitions) > 0 {
				var parts []string
				for k, v := range st.Transitions {
					parts = append(parts, fmt.Sprintf("%d %s", v, k))
				}
				sort.Strings(parts)
				fmt.Fprintf(out, "Not yet applied: %s\n", strings.Join(parts, ", "))
			}
			fmt.Fprintf(out, "Apps:          %s\n", strings.Join(st.Apps, ", "))
			fmt.Fprintf(out, "Outbox:        %d actions waiting\n", st.Outbox)
			if len(st.PendingPlans) == 0 {
				fmt.Fprintf(out, "Pending plans: none\n")
			} else {
				fmt.Fprintf(out, "Pending plans: %s (roster approve ID)\n", strings.Join(st.PendingPlans, ", "))
			}
			if !st.LastApply.IsZero() {
				fmt.Fprintf(out, "Last apply:    %s\n", st.LastApply.UTC().Format("2006-01-02 15:04:05 UTC"))
			}
			if !st.LastReconcile.IsZero() {
				when := st.LastReconcile.UTC().Format("2006-01-02 15:04:05 UTC")
				if len(st.Unreadable) == 0 {
					fmt.Fprintf(out, "Last reconcile: %s, every app read\n", when)
				} else {
					names := make([]string, 0, len(st.Unreadable))
					for app := range st.Unreadable {
						names = append(names, app)
					}
					sort.Strings(names)
					fmt.Fprintf(out, "Last reconcile: %s, could not read %s:\n", when, strings.Join(names, ", "))
					for _, app := range names {
						fmt.Fprintf(out, "  ! %s: %s\n", app, st.Unreadable[app])
					}
				}
			}
			fmt.Fprintf(out, "Policy:        %s\n", short(st.PolicyHash))
			fmt.Fprintf(out, "Audit log:     %d records, head %s\n", st.AuditRecords, short(st.AuditHead))
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	if h == "" {
		return "-"
	}
	return h
}

// unreadableError is the error for a plan that left out apps whose state
// could not be read: the command did what it could, and says what it
// could not.
func unreadableError(p *lifecycle.Plan) error {
	if len(p.Unreadable) == 0 {
		return nil
	}
	names := make([]string, 0, len(p.Unreadable))
	for app := range p.Unreadable {
		names = append(names, app)
	}
	sort.Strings(names)
	return &exitError{code: 1, err: fmt.Errorf("could not read the state of %s; nothing was planned there (see above); run again when it answers", strings.Join(names, ", "))}
}
