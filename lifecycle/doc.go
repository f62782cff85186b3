// Package lifecycle is Roster's engine: the identity store, the HR record →
// joiner / mover / leaver / rehire transitions, future-dated starts and
// contract ends, the planner, the safety gate, and the durable outbox with
// its executor.
//
// The flow of one run (Engine.Apply):
//
//  1. finish whatever a previous run left in the outbox (a crash or kill -9
//     loses nothing: actions are written to the outbox before they are
//     tried and removed only in the transaction that audits their outcome);
//  2. bring stored worker statuses up to date with the clock (start dates,
//     contract ends) and audit each transition;
//  3. read every app's real state (connectors.Connector.Snapshot), evaluate
//     the policy for every worker and compute the Plan — a plain value made
//     by the pure function Compute;
//  4. check the plan against the safety thresholds; a plan over them is
//     saved as pending and waits for Engine.Approve;
//  5. enqueue the plan's actions in the outbox (auditing each intent in the
//     same transaction) and execute them with a per-connector worker pool,
//     retrying transient errors with exponential backoff and jitter.
//
// While the server loop runs (Engine.Run, in `roster serve`), an admin
// works on the same engine through its admin API: Plan only reads;
// ApplyChecked (an apply that carries out the plan only if it is the one
// the admin reviewed, else *PlanChangedError), Approve, Reject and
// LoadPolicy wait for the actions already running before they read the
// apps, hold the loop's planning off only while they plan and enqueue,
// and let their actions run alongside the loop's.
//
// Errors: an audit write that fails stops the run before the change it
// would have recorded; connector errors are classified with
// connectors.KindOf and either retried or recorded as failed outcomes.
// ErrApprovalRequired reports a plan that waits for approval.
package lifecycle
