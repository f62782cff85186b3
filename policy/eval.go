package policy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/rosterhq/roster/connectors"
)

// Set is a loaded, validated and compiled policy set. It never changes
// once loaded, except for internal memo tables that make evaluation fast
// (bounded: at most 65,536 entries per group of conditions reading the
// same fields); it is safe for concurrent use.
type Set struct {
	files      []string
	hash       string
	roles      []*role // by name
	byName     map[string]int
	birthright []int
	groups     []*condGroup
	exceptions []*exception
	excByID    map[string][]int
	excByFold  map[string][]int
	catalog    Catalog
	defGrace   time.Duration
	accounts   map[string]accountInfo
	memoLimit  int
	// staticKeys are the distinct (app, kind, resource) of all static
	// grants, sorted: tuples are ordered by position in it, so that
	// sorting a worker's grants rarely compares strings.
	staticKeys []appKey
	// excOrd orders exception sources after role sources, by reason.
	excOrd map[*exception]int
	// noCache turns memoization and the direct template paths off (tests
	// compare both ways of evaluating).
	noCache bool
	scratch sync.Pool
}

type accountInfo struct {
	ent  connectors.Entitlement
	rank int
}

// condGroup holds the roles whose conditions read the same worker fields,
// so that the memo key is built once per group and worker.
type condGroup struct {
	refs      refSet
	roles     []int
	cacheable bool
	memo      memo[groupResult]
}

// groupResult is the outcome of a group's conditions for one key.
type groupResult struct {
	match []bool
	errs  []string // nil when no condition failed
}

// defaultMemoLimit bounds each memo table; past it new keys are evaluated
// without being remembered.
const defaultMemoLimit = 1 << 16

// memo maps an encoded key to a result. Its zero value is ready to use.
type memo[V any] struct {
	mu sync.RWMutex
	m  map[string]V
}

func (m *memo[V]) get(key []byte) (V, bool) {
	m.mu.RLock()
	v, ok := m.m[string(key)]
	m.mu.RUnlock()
	return v, ok
}

func (m *memo[V]) getStr(key string) (V, bool) {
	m.mu.RLock()
	v, ok := m.m[key]
	m.mu.RUnlock()
	return v, ok
}

func (m *memo[V]) put(key string, v V, limit int) {
	m.mu.Lock()
	if m.m == nil {
		m.m = map[string]V{}
	}
	if len(m.m) < limit {
		m.m[key] = v
	}
	m.mu.Unlock()
}

// tplResult is the memoized outcome of a template expression.
type tplResult struct {
	val  string
	err  string
	skip bool // missing key: skip the grant silently
}

func newSet(srcs []*source, l *loader, byName map[string]*role) *Set {
	s := &Set{
		hash:      hashSources(srcs),
		byName:    map[string]int{},
		excByID:   map[string][]int{},
		excByFold: map[string][]int{},
		catalog:   l.opts.Catalog,
		defGrace:  l.opts.DefaultGrace,
		accounts:  map[string]accountInfo{},
		memoLimit: defaultMemoLimit,
	}
	for _, src := range srcs {
		s.files = append(s.files, src.name)
	}
	for _, r := range byName {
		s.roles = append(s.roles, r)
	}
	sort.Slice(s.roles, func(i, j int) bool { return s.roles[i].name < s.roles[j].name })
	for i, r := range s.roles {
		s.byName[r.name] = i
	}
	groupBySig := map[string]*condGroup{}
	addApps := func(gs []*grantRule) {
		for _, g := range gs {
			if _, ok := s.accounts[g.app]; !ok {
				e, rank := defaultAccount(s.catalog, g.app)
				s.accounts[g.app] = accountInfo{ent: e, rank: rank}
			}
		}
	}
	for i, r := range s.roles {
		r.incl = nil
		for _, inc := range r.includes {
			if j, ok := s.byName[inc.name]; ok && !slices.Contains(r.incl, j) {
				r.incl = append(r.incl, j)
			}
		}
		sort.Ints(r.incl)
		addApps(r.grants)
		for _, g := range r.grants {
			g.src = []Source{{Role: r.name, File: g.file, Line: g.line}}
		}
		switch {
		case r.birthright:
			s.birthright = append(s.birthright, i)
		case r.cond != nil:
			sig := r.cond.refs.signature()
			g, ok := groupBySig[sig]
			if !ok {
				g = &condGroup{refs: r.cond.refs, cacheable: r.cond.refs.cacheable()}
				groupBySig[sig] = g
				s.groups = append(s.groups, g)
			}
			g.roles = append(g.roles, i)
		}
	}
	s.groups = mergeSubsetGroups(s.groups)
	for i, x := range l.exceptions {
		for _, g := range x.grants {
			g.src = []Source{{Exception: x.reason, Expires: x.end, File: g.file, Line: g.line}}
		}
		s.exceptions = append(s.exceptions, x)
		s.excByID[x.worker] = append(s.excByID[x.worker], i)
		f := strings.ToLower(x.worker)
		s.excByFold[f] = append(s.excByFold[f], i)
		addApps(x.grants)
	}
	byReason := append([]*exception(nil), s.exceptions...)
	sort.SliceStable(byReason, func(i, j int) bool {
		a, b := byReason[i], byReason[j]
		if a.reason != b.reason {
			return a.reason < b.reason
		}
		if a.file != b.file {
			return a.file < b.file
		}
		return a.line < b.line
	})
	s.excOrd = map[*exception]int{}
	for i, x := range byReason {
		s.excOrd[x] = len(s.roles) + i
	}
	s.indexStaticKeys()
	s.scratch.New = func() any { return &scratch{} }
	return s
}

// mergeSubsetGroups folds each cacheable group into a cacheable group
// whose key reads strictly more (the one reading least): that key
// determines the smaller one, so the memo gets no more entries, and each
// worker costs one lookup less.
func mergeSubsetGroups(groups []*condGroup) []*condGroup {
	covers := func(big, small refSet) bool {
		if big.fields&small.fields != small.fields {
			return false
		}
		for _, k := range small.customKeys {
			if !slices.Contains(big.customKeys, k) {
				return false
			}
		}
		return len(big.keyFields)+len(big.customKeys) > len(small.keyFields)+len(small.customKeys)
	}
	size := func(g *condGroup) int { return len(g.refs.keyFields) + len(g.refs.customKeys) }
	into := make([]*condGroup, len(groups))
	for i, a := range groups {
		if !a.cacheable {
			continue
		}
		for j, b := range groups {
			if i != j && b.cacheable && covers(b.refs, a.refs) && (into[i] == nil || size(b) < size(into[i])) {
				into[i] = b
			}
		}
	}
	var out []*condGroup
	for i, a := range groups {
		target := into[i]
		for target != nil {
			// Follow the chain to a group that is kept.
			k := slices.Index(groups, target)
			if into[k] == nil {
				break
			}
			target = into[k]
		}
		if target == nil {
			out = append(out, a)
			continue
		}
		target.roles = append(target.roles, a.roles...)
	}
	for _, g := range out {
		slices.Sort(g.roles)
	}
	return out
}

// appKey is an entitlement key within an app.
type appKey struct {
	app string
	key connectors.Entitlement // Role unused
}

func cmpAppKey(a, b appKey) int {
	if c := strings.Compare(a.app, b.app); c != 0 {
		return c
	}
	return cmpEntKey(a.key, b.key)
}

// indexStaticKeys fills staticKeys and the ord of every static grant.
func (s *Set) indexStaticKeys() {
	var all []*grantRule
	for _, r := range s.roles {
		all = append(all, r.grants...)
	}
	for _, x := range s.exceptions {
		all = append(all, x.grants...)
	}
	for _, g := range all {
		if g.parts == nil {
			s.staticKeys = append(s.staticKeys, appKey{app: g.app, key: connectors.Entitlement{Kind: g.ent.Kind, Resource: g.ent.Resource}})
		}
	}
	slices.SortFunc(s.staticKeys, cmpAppKey)
	s.staticKeys = slices.CompactFunc(s.staticKeys, func(a, b appKey) bool { return cmpAppKey(a, b) == 0 })
	for _, g := range all {
		g.ord = -1
		if g.parts == nil {
			g.ord = s.ordOf(g.app, g.ent)
			g.implied = []Source{{Implied: "implied by " + g.ent.String()}}
		}
	}
}

// ordOf places (app, e's key) among staticKeys: 2i when it is staticKeys[i],
// 2i-1 when it sorts between staticKeys[i-1] and staticKeys[i]. Equal ords
// that are odd need a string comparison to be ordered.
func (s *Set) ordOf(app string, e connectors.Entitlement) int {
	k := appKey{app: app, key: e}
	i, found := slices.BinarySearchFunc(s.staticKeys, k, cmpAppKey)
	if found {
		return 2 * i
	}
	return 2*i - 1
}

// Hash returns the SHA-256 (hex) of the set's files, taken in path order,
// each prefixed by its length: the policy version the audit log records.
func (s *Set) Hash() string { return s.hash }

// Files returns the set's files in sorted order.
func (s *Set) Files() []string { return append([]string(nil), s.files...) }

// RoleNames returns the names of all roles, sorted.
func (s *Set) RoleNames() []string {
	out := make([]string, len(s.roles))
	for i, r := range s.roles {
		out[i] = r.name
	}
	return out
}

// Result is what a policy set gives one worker at one time.
type Result struct {
	// Roles matched, directly or through includes, by name.
	Roles []RoleMatch
	// Grants is the desired access: by app, then in Entitlement.Less
	// order, each entitlement once with the most privileged role.
	Grants []Grant
	// Expired lists entitlements that only expired exceptions of this
	// worker grant (so a plan can label the removal "exception expired").
	Expired []Grant
	// Warnings reports expressions that failed to evaluate for this
	// worker (a condition reading a missing custom attribute, say): the
	// role did not match, or the grant was skipped.
	Warnings []string
}

// RoleMatch is one matched role and why it matched.
type RoleMatch struct {
	Role       string
	When       string // the condition as written (trimmed); "" for birthright and abstract roles
	File       string
	Line       int
	Birthright bool
	// IncludedBy is the matched role whose includes brought this one in;
	// "" when the role matched by its own condition (or is birthright).
	IncludedBy string
}

// Grant is one entitlement the worker should hold in one app.
type Grant struct {
	App string
	// Entitlement has its role resolved: the kind's default when the
	// policy names none, the most privileged when several sources differ.
	Entitlement connectors.Entitlement
	// Grace is how long to keep the entitlement after the worker stops
	// qualifying for it (movers): the largest among its role sources, each
	// being the grant's own grace, else its role's grace, else
	// Options.DefaultGrace. Exception sources count 0: an expired
	// exception is removed at once.
	Grace time.Duration
	// Sources says why: roles first (by name), then exceptions (by
	// reason); or the one "implied by" source of an implied account.
	// Sources slices may be shared between Results: treat them as
	// read-only.
	Sources []Source
}

// Source is one reason for a grant.
type Source struct {
	Role      string    // the role whose grants list has it ("" otherwise)
	Exception string    // the exception's reason ("" otherwise)
	Expires   time.Time // for exceptions: the instant it stops holding (UTC)
	File      string
	Line      int
	Implied   string // for an implied account: "implied by team/x"
}

// scratch is per-call working memory, pooled in the Set.
type scratch struct {
	act    activation
	state  []int32 // per role: notMatched, direct, or the index of the including role
	queue  []int32
	key    []byte
	tuples []tuple
	idx    []int32
	exp    []tuple
	buf    []byte
	exc    []int
}

const (
	notMatched int32 = -1
	direct     int32 = -2
)

// tuple is one (app, entitlement, source) found for a worker.
type tuple struct {
	g      *grantRule
	ent    connectors.Entitlement // g.ent, with the resource resolved
	grace  time.Duration
	ord    int // see Set.ordOf
	srcOrd int // role index for roles, excOrd for exceptions
}

// Evaluate computes what w gets from the policy set at time now: matched
// roles, grants and expired exceptions. Conditions are evaluated with the
// CEL semantics; an expression that fails to evaluate for this worker (a
// missing custom attribute, say) makes its role not match, or skips its
// grant, and is reported in Result.Warnings — it is not an error, since
// one worker's odd data must not stop a run. A template evaluating to ""
// or reading a missing custom attribute skips its grant without a
// warning. Birthright roles match every worker given: callers evaluate
// only active workers. The only error is a nil worker.
//
// Results are memoized by the values of the fields each condition reads,
// so evaluating many workers with similar attributes is cheap; the memo
// never changes a result.
func (s *Set) Evaluate(w *Worker, now time.Time) (*Result, error) {
	if w == nil {
		return nil, errors.New("policy: evaluate: nil worker")
	}
	sc := s.scratch.Get().(*scratch)
	defer s.release(sc)
	sc.act = activation{worker: celWorker{w: w}, nowTime: now}
	res := &Result{}

	// 1. Roles matched by their own condition.
	n := len(s.roles)
	if cap(sc.state) < n {
		sc.state = make([]int32, n)
	}
	sc.state = sc.state[:n]
	for i := range sc.state {
		sc.state[i] = notMatched
	}
	for _, i := range s.birthright {
		sc.state[i] = direct
	}
	for _, g := range s.groups {
		s.evalGroup(g, sc, res)
	}
	// 2. Includes, breadth first in name order.
	sc.queue = sc.queue[:0]
	for i, st := range sc.state {
		if st == direct {
			sc.queue = append(sc.queue, int32(i))
		}
	}
	for q := 0; q < len(sc.queue); q++ {
		i := sc.queue[q]
		for _, j := range s.roles[i].incl {
			if sc.state[j] == notMatched {
				sc.state[j] = i
				sc.queue = append(sc.queue, int32(j))
			}
		}
	}
	res.Roles = make([]RoleMatch, 0, len(sc.queue))
	for i, st := range sc.state {
		if st == notMatched {
			continue
		}
		r := s.roles[i]
		m := RoleMatch{Role: r.name, When: r.when, File: r.file, Line: r.line, Birthright: r.birthright}
		if st >= 0 {
			m.IncludedBy = s.roles[st].name
		}
		res.Roles = append(res.Roles, m)
	}
	// 3. Grants of matched roles and of the worker's exceptions.
	sc.tuples = sc.tuples[:0]
	sc.exp = sc.exp[:0]
	for i, st := range sc.state {
		if st == notMatched {
			continue
		}
		r := s.roles[i]
		for _, g := range r.grants {
			grace := s.defGrace
			if g.hasGrace {
				grace = g.grace
			} else if r.hasGrace {
				grace = r.grace
			}
			s.addGrant(sc, res, g, grace, i, r.name, false)
		}
	}
	if len(s.exceptions) > 0 {
		s.addExceptions(sc, res, w, now)
	}
	res.Grants = s.merge(sc, sc.tuples, true)
	if len(sc.exp) > 0 {
		for _, g := range s.merge(sc, sc.exp, false) {
			if !hasGrant(res.Grants, g.App, g.Entitlement) {
				res.Expired = append(res.Expired, g)
			}
		}
	}
	return res, nil
}

func (s *Set) release(sc *scratch) {
	sc.act = activation{}
	clear(sc.tuples)
	clear(sc.exp)
	s.scratch.Put(sc)
}

// evalGroup marks the roles of g whose condition holds for the worker.
func (s *Set) evalGroup(g *condGroup, sc *scratch, res *Result) {
	if g.cacheable && !s.noCache {
		var r groupResult
		var ok bool
		var key string
		if f, one := g.refs.singleString(); one {
			// One string field: its value is the key.
			key = sc.act.worker.w.str(f)
			r, ok = g.memo.getStr(key)
		} else {
			sc.key = appendKey(sc.key[:0], &g.refs, sc.act.worker.w)
			r, ok = g.memo.get(sc.key)
			if !ok {
				key = string(sc.key)
			}
		}
		if !ok {
			r = groupResult{match: make([]bool, len(g.roles))}
			for k, i := range g.roles {
				m, errMsg := evalCond(s.roles[i].cond, &sc.act)
				r.match[k] = m
				if errMsg != "" {
					if r.errs == nil {
						r.errs = make([]string, len(g.roles))
					}
					r.errs[k] = errMsg
				}
			}
			g.memo.put(key, r, s.memoLimit)
		}
		for k, i := range g.roles {
			if r.match[k] {
				sc.state[i] = direct
			}
			if r.errs != nil && r.errs[k] != "" {
				res.Warnings = append(res.Warnings, s.condWarning(i, r.errs[k]))
			}
		}
		return
	}
	for _, i := range g.roles {
		m, errMsg := evalCond(s.roles[i].cond, &sc.act)
		if m {
			sc.state[i] = direct
		}
		if errMsg != "" {
			res.Warnings = append(res.Warnings, s.condWarning(i, errMsg))
		}
	}
}

const condFailed = ": condition failed to evaluate, role not matched: "

func (s *Set) condWarning(i int, msg string) string {
	r := s.roles[i]
	return fmt.Sprintf("role %q (%s:%d)%s%s", r.name, r.file, r.line, condFailed, msg)
}

func evalCond(x *expr, act *activation) (bool, string) {
	out, _, err := x.prg.Eval(act)
	if err != nil {
		return false, err.Error()
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Sprintf("condition gave %v, not a bool", out)
	}
	return bool(b), ""
}

// appendKey encodes the values g's conditions read from w.
func appendKey(b []byte, r *refSet, w *Worker) []byte {
	for _, f := range r.keyFields {
		switch {
		case f.isString():
			b = appendStr(b, w.str(f))
		case f == fManagerChain:
			b = binary.AppendUvarint(b, uint64(len(w.ManagerChain)))
			for _, m := range w.ManagerChain {
				b = appendStr(b, m)
			}
		case f == fGroups:
			b = binary.AppendUvarint(b, uint64(len(w.Groups)))
			for _, m := range w.Groups {
				b = appendStr(b, m)
			}
		case f == fStartDate:
			b = appendTime(b, w.StartDate)
		case f == fEndDate:
			b = appendTime(b, w.EndDate)
		case f == fHasStartDate:
			b = appendBool(b, !w.StartDate.IsZero())
		case f == fHasEndDate:
			b = appendBool(b, !w.EndDate.IsZero())
		}
	}
	for _, k := range r.customKeys {
		v, ok := w.Custom[k]
		b = appendBool(b, ok)
		if ok {
			b = appendStr(b, v)
		}
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// addGrant resolves g for the worker and records it with src.
func (s *Set) addGrant(sc *scratch, res *Result, g *grantRule, grace time.Duration, srcOrd int, owner string, expired bool) {
	ent, ord := g.ent, g.ord
	if g.parts != nil {
		sc.buf = sc.buf[:0]
		for _, p := range g.parts {
			if p.x == nil {
				sc.buf = append(sc.buf, p.lit...)
				continue
			}
			v, skip := s.evalTemplate(p.x, sc, res, g, owner)
			if skip {
				return
			}
			sc.buf = append(sc.buf, v...)
		}
		ent.Resource = string(sc.buf)
		ord = s.ordOf(g.app, ent)
	}
	t := tuple{g: g, ent: ent, grace: grace, ord: ord, srcOrd: srcOrd}
	if expired {
		sc.exp = append(sc.exp, t)
	} else {
		sc.tuples = append(sc.tuples, t)
	}
}

// evalTemplate evaluates one ${...}; skip is true when the grant must be
// skipped for this worker.
func (s *Set) evalTemplate(x *expr, sc *scratch, res *Result, g *grantRule, owner string) (string, bool) {
	w := sc.act.worker.w
	var r tplResult
	switch {
	case x.isDir && !s.noCache:
		r.val = w.str(x.direct)
	case x.isCustom && !s.noCache:
		v, ok := w.Custom[x.customKey]
		r.val, r.skip = v, !ok
	case x.refs.cacheable() && !s.noCache:
		sc.key = appendKey(sc.key[:0], &x.refs, w)
		var ok bool
		if r, ok = x.memo.get(sc.key); !ok {
			r = evalTemplateCEL(x, &sc.act)
			x.memo.put(string(sc.key), r, s.memoLimit)
		}
	default:
		r = evalTemplateCEL(x, &sc.act)
	}
	if r.err != "" {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s (%s:%d): grant %q skipped: %s", owner, g.file, g.line, g.text, r.err))
		return "", true
	}
	if r.skip || r.val == "" {
		return "", true
	}
	if strings.Contains(r.val, "#") {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s (%s:%d): grant %q skipped: ${%s} gave %q, and a resource cannot contain '#'", owner, g.file, g.line, g.text, x.text, r.val))
		return "", true
	}
	return r.val, false
}

func evalTemplateCEL(x *expr, act *activation) tplResult {
	out, _, err := x.prg.Eval(act)
	if err != nil {
		if strings.HasPrefix(err.Error(), "no such key") {
			return tplResult{skip: true}
		}
		return tplResult{err: err.Error()}
	}
	v, ok := out.(types.String)
	if !ok {
		return tplResult{err: fmt.Sprintf("gave %v, not a string", out)}
	}
	return tplResult{val: string(v)}
}

// addExceptions records the grants of w's exceptions: active ones as
// grants, expired ones as candidates for Result.Expired.
func (s *Set) addExceptions(sc *scratch, res *Result, w *Worker, now time.Time) {
	sc.exc = sc.exc[:0]
	sc.exc = append(sc.exc, s.excByID[w.ID]...)
	if w.Email != "" {
		sc.exc = append(sc.exc, s.excByFold[strings.ToLower(w.Email)]...)
	}
	if w.UserName != "" {
		sc.exc = append(sc.exc, s.excByFold[strings.ToLower(w.UserName)]...)
	}
	if len(sc.exc) == 0 {
		return
	}
	slices.Sort(sc.exc)
	sc.exc = slices.Compact(sc.exc)
	for _, i := range sc.exc {
		x := s.exceptions[i]
		expired := !now.Before(x.end)
		for _, g := range x.grants {
			s.addGrant(sc, res, g, 0, s.excOrd[x], fmt.Sprintf("exception %q", x.reason), expired)
		}
	}
}

// merge sorts tuples and folds those naming the same entitlement (app,
// kind and resource) into one Grant with the most privileged role and all
// sources. With implyAccount, an app with grants but no account gets one.
// A grant with one source shares its rule's read-only Sources slice.
func (s *Set) merge(sc *scratch, ts []tuple, implyAccount bool) []Grant {
	if len(ts) == 0 {
		return nil
	}
	sc.idx = sc.idx[:0]
	for i := range ts {
		sc.idx = append(sc.idx, int32(i))
	}
	slices.SortFunc(sc.idx, func(a, b int32) int { return cmpTuple(&ts[a], &ts[b]) })
	idx := sc.idx
	end := func(k int) int {
		j := k + 1
		for j < len(idx) && sameKey(&ts[idx[k]], &ts[idx[j]]) {
			j++
		}
		return j
	}
	newApp := func(k int) bool { return k == 0 || ts[idx[k-1]].g.app != ts[idx[k]].g.app }
	// Count to allocate once.
	nGrants, nSrcs := 0, 0
	for k := 0; k < len(idx); {
		j := end(k)
		nGrants++
		if implyAccount && newApp(k) && !ts[idx[k]].ent.IsAccount() {
			nGrants++
		}
		if j-k > 1 {
			nSrcs += j - k
		}
		k = j
	}
	grants := make([]Grant, 0, nGrants)
	var srcs []Source
	if nSrcs > 0 {
		srcs = make([]Source, 0, nSrcs)
	}
	for k := 0; k < len(idx); {
		j := end(k)
		t := &ts[idx[k]]
		if implyAccount && newApp(k) && !t.ent.IsAccount() {
			implied := t.g.implied
			if t.g.parts != nil {
				implied = []Source{{Implied: "implied by " + t.ent.String()}}
			}
			grants = append(grants, Grant{App: t.g.app, Entitlement: s.accounts[t.g.app].ent, Sources: implied})
		}
		g := Grant{App: t.g.app, Entitlement: t.ent, Grace: t.grace, Sources: t.g.src}
		if j-k > 1 {
			start, best := len(srcs), t.g.rank
			for m := k; m < j; m++ {
				u := &ts[idx[m]]
				srcs = append(srcs, u.g.src[0])
				if u.grace > g.Grace {
					g.Grace = u.grace
				}
				if u.g.rank > best || (u.g.rank == best && u.ent.Role > g.Entitlement.Role) {
					g.Entitlement.Role, best = u.ent.Role, u.g.rank
				}
			}
			g.Sources = srcs[start:len(srcs):len(srcs)]
		}
		grants = append(grants, g)
		k = j
	}
	if implyAccount {
		// An implied account keeps access as long as what implies it.
		for k := range grants {
			g := &grants[k]
			if len(g.Sources) != 1 || g.Sources[0].Implied == "" {
				continue
			}
			for j := k + 1; j < len(grants) && grants[j].App == g.App; j++ {
				g.Grace = max(g.Grace, grants[j].Grace)
			}
		}
	}
	return grants
}

// cmpTuple orders by app, entitlement key (account first), then source
// (roles by name, then exceptions by reason, then file and line).
func cmpTuple(a, b *tuple) int {
	if a.ord != b.ord {
		return a.ord - b.ord
	}
	if a.ord&1 != 0 {
		if c := strings.Compare(a.g.app, b.g.app); c != 0 {
			return c
		}
		if c := cmpEntKey(a.ent, b.ent); c != 0 {
			return c
		}
	}
	if a.srcOrd != b.srcOrd {
		return a.srcOrd - b.srcOrd
	}
	return a.g.line - b.g.line
}

func cmpEntKey(a, b connectors.Entitlement) int {
	if a.IsAccount() != b.IsAccount() {
		if a.IsAccount() {
			return -1
		}
		return 1
	}
	if c := strings.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	return strings.Compare(a.Resource, b.Resource)
}

func sameKey(a, b *tuple) bool {
	if a.ord != b.ord {
		return false
	}
	return a.ord&1 == 0 || (a.g.app == b.g.app && a.ent.Kind == b.ent.Kind && a.ent.Resource == b.ent.Resource)
}

// hasGrant reports whether grants (sorted by app and key) hold app's e.
func hasGrant(grants []Grant, app string, e connectors.Entitlement) bool {
	i := sort.Search(len(grants), func(i int) bool {
		g := &grants[i]
		if g.App != app {
			return g.App > app
		}
		return cmpEntKey(g.Entitlement, e) >= 0
	})
	return i < len(grants) && grants[i].App == app && cmpEntKey(grants[i].Entitlement, e) == 0
}
