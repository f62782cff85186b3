// Package policy reads, validates, evaluates and tests Roster's role
// policies: YAML files (format version 1) that say which roles a worker
// has, by CEL conditions over their HR attributes, and which entitlements
// each role grants in each connected app, plus time-bound exceptions for
// single workers.
//
// Load reads a set of files (Expand turns config globs into the list) and
// compiles it into a Set. Loading is all or nothing: any problem — YAML
// syntax, an unknown key, a missing version, name, reason or expiry, a
// duplicate role, an unknown or cyclic include, a CEL syntax or type
// error, a bad entitlement, an unknown connector, kind or role, a bad
// duration or date — rejects the whole set, and the returned *LoadError
// lists every problem found as file:line:col with the source line.
//
// Set.Evaluate gives one worker's matched roles and desired grants at a
// given time. It does not fail on odd worker data: an expression that
// cannot be evaluated for that worker (a missing custom attribute, say)
// makes its role not match or skips its grant, and is reported in
// Result.Warnings. Evaluation is memoized by the values of the worker
// fields each condition reads, so a reconcile over many workers evaluates
// each distinct combination once; the memo never changes a result.
//
// CEL environment: the variable `worker` has the fields id, userName,
// email, displayName, givenName, familyName, employeeNumber, workerType,
// title, department, division, organization, team, costCenter, location,
// manager (strings, "" when unknown), managerChain (list<string>: ids and
// e-mails of the managers, nearest first), groups (list<string>: the HR
// groups the worker is in), startDate and endDate
// (timestamps; 0001-01-01T00:00:00Z when unset), hasStartDate and
// hasEndDate (bools), and custom (map<string, string>). Every field is
// always present, so has(worker.team) is always true; test custom
// attributes with has(worker.custom.x) or "x" in worker.custom. The
// variable `now` is the evaluation time. The standard library, the
// strings extension and optional values (worker.custom.?level.orValue(""))
// are available.
//
// LoadTests and Set.RunTests run policy tests: a worker, the exact roles
// it must match, and entitlements that must be present or absent.
package policy
