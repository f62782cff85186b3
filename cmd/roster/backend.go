package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/config"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
	"github.com/rosterhq/roster/lifecycle/hr"
	"github.com/rosterhq/roster/policy"
)

// backend is what the commands need from Roster's data: either the data
// file opened by this process (localBackend), or a running `roster serve`
// reached through its admin API (remoteBackend). Both return the same Go
// values, and every command renders them with the same code, so a command
// prints the same and exits the same either way.
//
// actor names the caller in the audit log; the remote backend ignores it
// (the server names its callers by their token or socket peer).
type backend interface {
	// Plan computes the plan with the configured policy, or with the
	// proposed policy files when proposed is not nil (the what-if; a
	// proposed set that does not load is an error naming its files).
	Plan(ctx context.Context, proposed *proposedPolicies) (*lifecycle.Plan, error)
	// Review is the first half of apply: the plan to show and confirm.
	// resumed is what finishing an earlier run's outbox did (locally).
	Review(ctx context.Context, actor string) (p *lifecycle.Plan, resumed *lifecycle.Report, err error)
	// Apply carries out the reviewed plan. The remote backend sends its
	// fingerprint, and the server refuses a plan that changed since with
	// a *lifecycle.PlanChangedError.
	Apply(ctx context.Context, actor string, reviewed *lifecycle.Plan) (*lifecycle.ApplyResult, error)
	Approve(ctx context.Context, actor, id string) (*lifecycle.ApproveResult, error)
	Reject(ctx context.Context, actor, id, reason string) (*lifecycle.SavedPlan, error)
	SavedPlans(ctx context.Context) ([]*lifecycle.SavedPlan, error)
	Status(ctx context.Context) (*lifecycle.StatusReport, error)
	Workers(ctx context.Context) ([]workerSummary, error)
	// Explain finds a worker by id, e-mail or userName and explains the
	// policy's result for them.
	Explain(ctx context.Context, key string) (*explanation, error)
	// Reload loads the configured policy files again and puts them in
	// force; a set that does not load is an error and the old one stays.
	Reload(ctx context.Context, actor string) (*reloadResult, error)
	// ImportHR imports an HR CSV file (name is its path, for messages).
	ImportHR(ctx context.Context, actor, name string, data []byte) (*hr.ImportResult, error)
	// CheckConnectors runs `connectors check` on the named instances
	// (all when names is empty), each bounded by timeout.
	CheckConnectors(ctx context.Context, names []string, timeout time.Duration) ([]connectorCheck, error)
	VerifyAudit(ctx context.Context) (audit.VerifyResult, error)
	QueryAudit(ctx context.Context, f audit.Filter, fn func(audit.Record) error) error
	ExportAudit(ctx context.Context, w io.Writer, format string, f audit.Filter) (int, error)
	Close() error
}

// explanation is `policy explain` and `workers show`: a worker, their
// status now, and what the policy gives them and why.
type explanation struct {
	Worker *lifecycle.Worker `json:"worker"`
	Status lifecycle.Status  `json:"status"`
	Result *policy.Result    `json:"result"`
}

// workerSummary is one line of `workers list`.
type workerSummary struct {
	ID          connectors.WorkerID `json:"id"`
	DisplayName string              `json:"displayName,omitempty"`
	Email       string              `json:"email,omitempty"`
	Status      lifecycle.Status    `json:"status"`
	WorkerType  string              `json:"workerType,omitempty"`
	Title       string              `json:"title,omitempty"`
	Division    string              `json:"division,omitempty"`
	Transition  string              `json:"openTransition,omitempty"`
}

// reloadResult is what `roster reload` put in force.
type reloadResult struct {
	Roles   int    `json:"roles"`
	Files   int    `json:"files"`
	Hash    string `json:"hash"`
	Changed bool   `json:"changed"`
}

// proposedPolicies are the policy files of `plan --policies DIR`, read
// by the CLI so that a remote server can plan with them too.
type proposedPolicies struct {
	Dir   string         `json:"dir"`
	Files []proposedFile `json:"files"`
}

type proposedFile struct {
	Path    string `json:"path"` // as the CLI found it (relative to its working directory, or absolute)
	Content []byte `json:"content"`
}

// read reads the files of pp.Dir (a directory or a glob), for a server
// that cannot read them itself.
func (pp *proposedPolicies) read() error {
	files, err := policy.Expand([]string{pp.Dir}, ".")
	if err != nil {
		return fmt.Errorf("proposed policies in %s: %w", pp.Dir, err)
	}
	pp.Files = pp.Files[:0]
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("proposed policies in %s: %w", pp.Dir, err)
		}
		pp.Files = append(pp.Files, proposedFile{Path: f, Content: b})
	}
	return nil
}

// load loads the proposed policy: from pp.Dir when the files were not
// sent, else from pp.Files, written under a temporary directory in their
// order, with problems naming the files as the CLI knows them.
func (pp *proposedPolicies) load(cfg *config.Config, apps []connectors.Connector) (*policy.Set, error) {
	if pp.Files == nil {
		pol, err := loadPolicy(cfg, apps, pp.Dir)
		if err != nil {
			return nil, fmt.Errorf("proposed policies in %s: %w", pp.Dir, err)
		}
		return pol, nil
	}
	tmp, err := os.MkdirTemp("", "roster-proposed-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var paths, names []string
	for i, f := range pp.Files {
		p := filepath.Join(tmp, fmt.Sprintf("%04d", i), filepath.Base(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, f.Content, 0o600); err != nil {
			return nil, err
		}
		paths = append(paths, p)
		names = append(names, f.Path)
	}
	pol, err := policy.Load(paths, policy.Options{Catalog: catalog(apps), Location: cfg.Location, DefaultGrace: cfg.Lifecycle.MoverGrace.Std()})
	if err != nil {
		// Each file has a directory of its own: no temporary path is a
		// prefix of another.
		msg := err.Error()
		for i := range paths {
			msg = strings.ReplaceAll(msg, paths[i], names[i])
		}
		return nil, fmt.Errorf("proposed policies in %s: %w", pp.Dir, &remoteError{Message: msg, Kind: kindPolicy})
	}
	return pol, nil
}

// dial picks the backend for a command: --server reaches that server;
// otherwise a `roster serve` answering on the data dir's admin socket is
// used; otherwise the data file is opened here.
func (g *globals) dial(cmd *cobra.Command) (backend, error) {
	if g.server != "" {
		return newRemote(g.server, g.tokenValue())
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	sock := cfg.AdminSocket()
	if sock != "" && probeSocket(cmd.Context(), sock) == socketAnswers {
		return newSocketRemote(sock), nil
	}
	return &localBackend{g: g, cfg: cfg}, nil
}

// dialFor checks the --output value, then picks the backend.
func (g *globals) dialFor(cmd *cobra.Command, output string) (backend, error) {
	if err := checkOutput(output); err != nil {
		return nil, err
	}
	return g.dial(cmd)
}

// tokenValue is --token, else ROSTER_TOKEN.
func (g *globals) tokenValue() string {
	if g.token != "" {
		return g.token
	}
	return os.Getenv("ROSTER_TOKEN")
}

// lockedHelp turns a locked data file into a message that says why no
// server was used and what to do.
func lockedHelp(le *lockedError, cfg *config.Config) error {
	sock := cfg.AdminSocket()
	db := le.path
	switch {
	case sock == "":
		return fmt.Errorf("%s is locked by another process, and admin.socket is off in %s, so this command cannot reach a roster serve that holds it: pass --server URL --token TOKEN to go through its HTTPS admin API, or stop the other process and retry", db, relPath(cfg.Path))
	case probeSocket(context.Background(), sock) == socketAnswers:
		return fmt.Errorf("%s is locked by a running roster serve (it answers on %s): run other commands without stopping it, they go through it; stop it first to run this one", db, sock)
	case probeSocket(context.Background(), sock) == socketStale:
		return fmt.Errorf("%s is locked by another process, and the admin socket %s is there but nothing answers on it (stale: left by a roster serve that did not stop cleanly, or a server that hangs). Find the process holding the data file (e.g. `fuser %s`), stop it, and retry; the next roster serve replaces the stale socket", db, sock, db)
	}
	return fmt.Errorf("%s is locked by another process, and no roster serve answers for this data dir (no admin socket at %s): another roster command is probably running; wait for it to finish and retry, or stop it. To reach a server elsewhere, pass --server URL --token TOKEN", db, sock)
}

// localBackend works on the data file opened in this process. The audit
// commands open only the file; the others also load connectors and the
// policy. In `roster serve` it is bound to the server's own session.
type localBackend struct {
	g   *globals
	cfg *config.Config
	db  *bolt.DB
	s   *session
	// serving: bound to a running server's engine; Apply then re-plans
	// and carries out the plan only if it is the reviewed one.
	serving bool
}

// newServingBackend is the local backend of the serve process.
func newServingBackend(g *globals, s *session) *localBackend {
	return &localBackend{g: g, cfg: s.cfg, db: s.db, s: s, serving: true}
}

func (b *localBackend) open() error {
	if b.db != nil {
		return nil
	}
	db, err := openDB(b.cfg.DataDir)
	if err != nil {
		if le := (*lockedError)(nil); errors.As(err, &le) {
			return lockedHelp(le, b.cfg)
		}
		return err
	}
	b.db = db
	return nil
}

func (b *localBackend) session(ctx context.Context) (*session, error) {
	if b.s != nil {
		return b.s, nil
	}
	if err := b.open(); err != nil {
		return nil, err
	}
	s, err := b.g.openSession(ctx, b.cfg, b.db)
	if err != nil {
		return nil, err
	}
	b.s = s
	return s, nil
}

// auditLog opens the data file, which must exist, for its audit log only.
func (b *localBackend) auditLog() (*audit.Log, error) {
	if b.s != nil {
		return b.s.engine.Audit(), nil
	}
	if b.db == nil {
		if _, err := os.Stat(filepath.Join(b.cfg.DataDir, "roster.db")); err != nil {
			return nil, fmt.Errorf("no data file in %s (%w): nothing has been recorded there yet; check --data-dir or data_dir", b.cfg.DataDir, err)
		}
		if err := b.open(); err != nil {
			return nil, err
		}
	}
	if err := lifecycle.InitStore(b.db); err != nil {
		return nil, err
	}
	return audit.New(b.db, b.g.clock), nil
}

// Close closes the data file unless the backend is bound to serve's.
func (b *localBackend) Close() error {
	if b.serving || b.db == nil {
		return nil
	}
	return b.db.Close()
}

func (b *localBackend) Plan(ctx context.Context, proposed *proposedPolicies) (*lifecycle.Plan, error) {
	s, err := b.session(ctx)
	if err != nil {
		return nil, err
	}
	opts := lifecycle.PlanOptions{}
	if proposed != nil {
		if opts.Policy, err = proposed.load(s.cfg, s.apps); err != nil {
			return nil, err
		}
	}
	return s.engine.Plan(ctx, opts)
}

func (b *localBackend) Review(ctx context.Context, actor string) (*lifecycle.Plan, *lifecycle.Report, error) {
	s, err := b.session(ctx)
	if err != nil {
		return nil, nil, err
	}
	if b.serving {
		p, err := s.engine.Plan(ctx, lifecycle.PlanOptions{})
		return p, nil, err
	}
	return s.engine.Prepare(ctx, actor)
}

func (b *localBackend) Apply(ctx context.Context, actor string, reviewed *lifecycle.Plan) (*lifecycle.ApplyResult, error) {
	if b.serving {
		return b.applyChecked(ctx, actor, reviewed.Fingerprint())
	}
	s, err := b.session(ctx)
	if err != nil {
		return nil, err
	}
	rep, err := s.engine.ApplyPlan(ctx, reviewed, lifecycle.ApplyOptions{Actor: actor})
	return &lifecycle.ApplyResult{Plan: reviewed, Report: rep}, err
}

// applyChecked is the server's apply: plan again now and carry it out
// only if it is the plan the caller reviewed.
func (b *localBackend) applyChecked(ctx context.Context, actor, fingerprint string) (*lifecycle.ApplyResult, error) {
	s, err := b.session(ctx)
	if err != nil {
		return nil, err
	}
	return s.engine.ApplyChecked(ctx, actor, fingerprint)
}

func (b *localBackend) Approve(ctx context.Context, actor, id string) (*lifecycle.ApproveResult, error) {
	s, err := b.session(ctx)
	if err != nil {
		return nil, err
	}
	return s.engine.Approve(ctx, actor, id)
}

func (b *localBackend) Reject(ctx context.Context, actor, id, reason string) (*lifecycle.SavedPlan, error) {
	s, err := b.session(ctx)
	if err != nil {
		return nil, err
	}
	return s.engine.Reject(ctx, actor, id, reason)
}

func (b *localBackend) SavedPlans(ctx context.Context) ([]*lifecycle.SavedPlan, error) {
	s, err := b.session(ctx)
	if err != nil {
		return nil, err
	}
	return s.engine.SavedPlans(ctx)
}

func (b *localBackend) CheckConnectors(ctx context.Context, names []string, timeout time.Duration) ([]connectorCheck, error) {
	s, err := b.session(ctx)
	if err != nil {
		if b.db == nil { // the data file did not open (locked…)
			return nil, err
		}
		// The policy does not load: the credentials can still be checked.
		b.g.logger.Warn("connectors check: the policy does not load, so the resources it grants are not checked", "err", err)
		apps, oerr := openConnectors(ctx, b.cfg, b.db, nil, b.g)
		if oerr != nil {
			return nil, oerr
		}
		return checkConnectors(ctx, b.cfg, apps, nil, names, timeout)
	}
	granted, err := grantedResources(ctx, s, b.g.clock())
	if err != nil {
		return nil, err
	}
	return checkConnectors(ctx, s.cfg, s.apps, granted, names, timeout)
}

func (b *localBackend) Status(ctx context.Context) (*lifecycle.StatusReport, error) {
	s, err := b.session(ctx)
	if err != nil {
		return nil, err
	}
	return s.engine.Status(ctx)
}

func (b *localBackend) Workers(ctx context.Context) ([]workerSummary, error) {
	s, err := b.session(ctx)
	if err != nil {
		return nil, err
	}
	ws, err := s.engine.Workers(ctx)
	if err != nil {
		return nil, err
	}
	now := b.g.clock()
	out := make([]workerSummary, 0, len(ws))
	for _, w := range ws {
		name := w.HR.DisplayName
		if name == "" {
			name = w.HR.GivenName + " " + w.HR.FamilyName
		}
		out = append(out, workerSummary{ID: w.ID, DisplayName: name, Email: w.HR.Email,
			Status: lifecycle.EffectiveStatus(&w.HR, w.Deleted, now, s.cfg.Location), WorkerType: w.HR.WorkerType,
			Title: w.HR.Title, Division: w.HR.Division, Transition: w.Transition})
	}
	return out, nil
}

func (b *localBackend) Explain(ctx context.Context, key string) (*explanation, error) {
	s, err := b.session(ctx)
	if err != nil {
		return nil, err
	}
	w, err := s.engine.FindWorker(ctx, key)
	if err != nil {
		return nil, err
	}
	ws, err := s.engine.Workers(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[connectors.WorkerID]*lifecycle.Worker{}
	for _, x := range ws {
		byID[x.ID] = x
	}
	now := b.g.clock()
	res, err := s.engine.Policy().Evaluate(lifecycle.PolicyWorker(w, byID, s.cfg.Location), now)
	if err != nil {
		return nil, err
	}
	return &explanation{Worker: w, Status: lifecycle.EffectiveStatus(&w.HR, w.Deleted, now, s.cfg.Location), Result: res}, nil
}

func (b *localBackend) Reload(ctx context.Context, actor string) (*reloadResult, error) {
	s, err := b.session(ctx)
	if err != nil {
		return nil, err
	}
	pol, err := loadPolicy(s.cfg, s.apps, "")
	if err != nil {
		return nil, err
	}
	changed, err := s.engine.LoadPolicy(actor, pol)
	if err != nil {
		return nil, err
	}
	return &reloadResult{Roles: len(pol.RoleNames()), Files: len(pol.Files()), Hash: pol.Hash(), Changed: changed}, nil
}

func (b *localBackend) ImportHR(ctx context.Context, actor, name string, data []byte) (*hr.ImportResult, error) {
	file, err := hr.ReadCSV(name, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	s, err := b.session(ctx)
	if err != nil {
		return nil, err
	}
	if !b.serving {
		return hr.Import(ctx, s.engine, actor, file)
	}
	// The server loop carries out each change at once, as for SCIM.
	before := map[connectors.WorkerID]uint64{}
	for _, r := range file.Records {
		if w, err := s.engine.Worker(ctx, r.ID); err == nil {
			before[r.ID] = w.Version
		}
	}
	res, err := hr.Import(ctx, s.engine, actor, file)
	for _, r := range file.Records {
		w, werr := s.engine.Worker(ctx, r.ID)
		if werr != nil {
			continue
		}
		if v, ok := before[r.ID]; !ok || v != w.Version {
			s.engine.Notify(w.ID, w.Transition)
		}
	}
	return res, err
}

func (b *localBackend) VerifyAudit(ctx context.Context) (audit.VerifyResult, error) {
	l, err := b.auditLog()
	if err != nil {
		return audit.VerifyResult{}, err
	}
	return l.Verify(ctx)
}

func (b *localBackend) QueryAudit(ctx context.Context, f audit.Filter, fn func(audit.Record) error) error {
	l, err := b.auditLog()
	if err != nil {
		return err
	}
	return l.Query(ctx, f, fn)
}

func (b *localBackend) ExportAudit(ctx context.Context, w io.Writer, format string, f audit.Filter) (int, error) {
	l, err := b.auditLog()
	if err != nil {
		return 0, err
	}
	return l.Export(ctx, w, format, f)
}
