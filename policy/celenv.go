package policy

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// Worker is what policies know about one worker: the HR attributes that
// conditions (`worker.<field>` in CEL) and templates read. Strings are
// empty when unknown; a zero StartDate or EndDate means "not set".
type Worker struct {
	ID             string
	UserName       string
	Email          string
	DisplayName    string
	GivenName      string
	FamilyName     string
	EmployeeNumber string
	WorkerType     string // employee | contractor | vendor | intern
	Title          string
	Department     string
	Division       string
	Organization   string
	Team           string
	CostCenter     string
	Location       string
	Manager        string // the manager's worker id
	// ManagerChain lists the ids AND e-mails of all managers up the
	// chain, nearest first.
	ManagerChain []string
	// Groups are the HR groups (teams, cost centres) the worker is in,
	// by display name.
	Groups    []string
	StartDate time.Time
	EndDate   time.Time
	// Custom holds any other HR attribute (githubUsername, level…).
	Custom map[string]string
}

// fieldID names one field of the CEL worker object.
type fieldID uint8

const (
	fID fieldID = iota
	fUserName
	fEmail
	fDisplayName
	fGivenName
	fFamilyName
	fEmployeeNumber
	fWorkerType
	fTitle
	fDepartment
	fDivision
	fOrganization
	fTeam
	fCostCenter
	fLocation
	fManager
	fManagerChain
	fGroups
	fStartDate
	fEndDate
	fHasStartDate
	fHasEndDate
	fCustom
	numFields
)

// fieldNames are the CEL names of the worker fields, by fieldID.
var fieldNames = [numFields]string{
	"id", "userName", "email", "displayName", "givenName", "familyName", "employeeNumber", "workerType",
	"title", "department", "division", "organization", "team", "costCenter", "location", "manager",
	"managerChain", "groups", "startDate", "endDate", "hasStartDate", "hasEndDate", "custom",
}

func fieldByName(name string) (fieldID, bool) {
	for i, n := range fieldNames {
		if n == name {
			return fieldID(i), true
		}
	}
	return 0, false
}

func (f fieldID) isString() bool { return f <= fManager }

// str returns string field f of w (f must satisfy isString).
func (w *Worker) str(f fieldID) string {
	switch f {
	case fID:
		return w.ID
	case fUserName:
		return w.UserName
	case fEmail:
		return w.Email
	case fDisplayName:
		return w.DisplayName
	case fGivenName:
		return w.GivenName
	case fFamilyName:
		return w.FamilyName
	case fEmployeeNumber:
		return w.EmployeeNumber
	case fWorkerType:
		return w.WorkerType
	case fTitle:
		return w.Title
	case fDepartment:
		return w.Department
	case fDivision:
		return w.Division
	case fOrganization:
		return w.Organization
	case fTeam:
		return w.Team
	case fCostCenter:
		return w.CostCenter
	case fLocation:
		return w.Location
	case fManager:
		return w.Manager
	}
	return ""
}

// workerTypeName is the CEL type of `worker`. Users never write it.
const workerTypeName = "roster.Worker"

var workerCELType = types.NewObjectType(workerTypeName)

// zeroTimestamp is what an unset date reads as in CEL.
var zeroTimestamp = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)

// celWorker is the CEL value of `worker` during one evaluation. Field
// access goes through workerProvider's FieldType getters, without
// reflection.
type celWorker struct {
	w      *Worker
	chain  ref.Val
	groups ref.Val
	custom ref.Val
}

func (c *celWorker) get(f fieldID) ref.Val {
	switch {
	case f.isString():
		return types.String(c.w.str(f))
	case f == fManagerChain:
		if c.chain == nil {
			c.chain = types.NewStringList(types.DefaultTypeAdapter, c.w.ManagerChain)
		}
		return c.chain
	case f == fGroups:
		if c.groups == nil {
			c.groups = types.NewStringList(types.DefaultTypeAdapter, c.w.Groups)
		}
		return c.groups
	case f == fStartDate:
		return timestampVal(c.w.StartDate)
	case f == fEndDate:
		return timestampVal(c.w.EndDate)
	case f == fHasStartDate:
		return types.Bool(!c.w.StartDate.IsZero())
	case f == fHasEndDate:
		return types.Bool(!c.w.EndDate.IsZero())
	case f == fCustom:
		if c.custom == nil {
			m := c.w.Custom
			if m == nil {
				m = map[string]string{}
			}
			c.custom = types.NewStringStringMap(types.DefaultTypeAdapter, m)
		}
		return c.custom
	}
	return types.NewErr("no such field %d", f)
}

func timestampVal(t time.Time) ref.Val {
	if t.IsZero() {
		return types.Timestamp{Time: zeroTimestamp}
	}
	return types.Timestamp{Time: t.UTC()}
}

// celWorker is a ref.Val so that `worker` can also be used as a whole
// value (compared, passed to type()).

func (c *celWorker) ConvertToNative(typeDesc reflect.Type) (any, error) {
	return nil, fmt.Errorf("worker cannot be converted to %v", typeDesc)
}

func (c *celWorker) ConvertToType(typeVal ref.Type) ref.Val {
	if typeVal == types.TypeType {
		return workerCELType
	}
	return types.NewErr("worker cannot be converted to %s", typeVal.TypeName())
}

func (c *celWorker) Equal(other ref.Val) ref.Val {
	o, ok := other.(*celWorker)
	return types.Bool(ok && o.w == c.w)
}

func (c *celWorker) Type() ref.Type { return workerCELType }

func (c *celWorker) Value() any { return c }

// activation resolves the two variables of policy expressions.
type activation struct {
	worker  celWorker
	nowTime time.Time
	now     ref.Val // built from nowTime on first use
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "worker":
		return &a.worker, true
	case "now":
		if a.now == nil {
			a.now = types.Timestamp{Time: a.nowTime.UTC()}
		}
		return a.now, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// workerProvider adds the roster.Worker object type to CEL's type provider.
type workerProvider struct {
	types.Provider
	fields map[string]*types.FieldType
	names  []string
}

func newWorkerProvider(base types.Provider) *workerProvider {
	p := &workerProvider{Provider: base, fields: map[string]*types.FieldType{}}
	for i, name := range fieldNames {
		f := fieldID(i)
		var t *types.Type
		switch {
		case f.isString():
			t = types.StringType
		case f == fManagerChain, f == fGroups:
			t = types.NewListType(types.StringType)
		case f == fStartDate, f == fEndDate:
			t = types.TimestampType
		case f == fHasStartDate, f == fHasEndDate:
			t = types.BoolType
		case f == fCustom:
			t = types.NewMapType(types.StringType, types.StringType)
		}
		p.fields[name] = &types.FieldType{
			Type:  t,
			IsSet: func(any) bool { return true },
			GetFrom: func(obj any) (any, error) {
				cw, ok := obj.(*celWorker)
				if !ok {
					return nil, fmt.Errorf("worker field %s read from %T", fieldNames[f], obj)
				}
				return cw.get(f), nil
			},
		}
		p.names = append(p.names, name)
	}
	return p
}

func (p *workerProvider) FindStructType(name string) (*types.Type, bool) {
	if name == workerTypeName {
		return types.NewTypeTypeWithParam(workerCELType), true
	}
	return p.Provider.FindStructType(name)
}

func (p *workerProvider) FindStructFieldNames(name string) ([]string, bool) {
	if name == workerTypeName {
		return append([]string(nil), p.names...), true
	}
	return p.Provider.FindStructFieldNames(name)
}

func (p *workerProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if name == workerTypeName {
		ft, ok := p.fields[field]
		return ft, ok
	}
	return p.Provider.FindStructFieldType(name, field)
}

func (p *workerProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if name == workerTypeName {
		return types.NewErr("a worker cannot be constructed in a policy expression")
	}
	return p.Provider.NewValue(name, fields)
}

// newCELEnv builds the environment every policy expression is checked in:
// the standard library, the strings extension, optional values
// (worker.custom.?x.orValue("")), `worker` and `now`.
func newCELEnv() (*cel.Env, error) {
	env, err := cel.NewEnv(
		ext.Strings(),
		cel.OptionalTypes(),
		func(e *cel.Env) (*cel.Env, error) {
			return cel.CustomTypeProvider(newWorkerProvider(e.CELTypeProvider()))(e)
		},
		cel.Variable("worker", workerCELType),
		cel.Variable("now", cel.TimestampType),
	)
	if err != nil {
		return nil, fmt.Errorf("policy: build CEL environment: %w", err)
	}
	return env, nil
}

// celIssue is one CEL compile problem, located inside the expression text.
type celIssue struct {
	line, col int // 1-based line, 0-based column (in runes) within the expression
	msg       string
}

// expr is a compiled, type-checked expression (a condition or a template
// part) and what it reads.
type expr struct {
	text string
	prg  cel.Program
	refs refSet
	// direct, when isDir, is the string worker field the template reads
	// as is (`worker.team`): evaluated without CEL.
	direct fieldID
	isDir  bool
	// customKey, when isCustom, is the custom attribute the template
	// reads as is (`worker.custom.githubUsername`).
	customKey string
	isCustom  bool
	// memo remembers template results by the values read.
	memo memo[tplResult]
}

// maxEvalCost bounds the work of one evaluation of one expression (CEL
// cost units, about one per operation): a condition that loops over lists
// inside loops stops with an error (the role does not match, with a
// warning) instead of holding a CPU. Real conditions cost a few hundred.
const maxEvalCost = 1_000_000

// compileExpr parses and type-checks text, which must have type want.
func compileExpr(env *cel.Env, text string, want *types.Type, what string) (*expr, []celIssue) {
	checked, iss := env.Compile(text)
	if iss != nil && iss.Err() != nil {
		var out []celIssue
		for _, e := range iss.Errors() {
			out = append(out, celIssue{line: e.Location.Line(), col: e.Location.Column(), msg: cleanCELMessage(e.Message)})
		}
		return nil, out
	}
	if !checked.OutputType().IsExactType(want) {
		return nil, []celIssue{{line: 1, col: 0, msg: fmt.Sprintf("%s must be of type %s, but this expression has type %s", what, typeName(want), typeName(checked.OutputType()))}}
	}
	prg, err := env.Program(checked, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(maxEvalCost))
	if err != nil {
		return nil, []celIssue{{line: 1, col: 0, msg: err.Error()}}
	}
	x := &expr{text: text, prg: prg}
	native := checked.NativeRep()
	x.refs = analyzeRefs(native.Expr())
	// Recognize the plain reads `worker.f` and `worker.custom.k` that
	// templates mostly are.
	e := native.Expr()
	if e.Kind() == celast.SelectKind && !e.AsSelect().IsTestOnly() {
		sel := e.AsSelect()
		if isWorkerIdent(sel.Operand()) {
			if f, ok := fieldByName(sel.FieldName()); ok && f.isString() {
				x.direct, x.isDir = f, true
			}
		} else if isCustomSelect(sel.Operand()) {
			x.customKey, x.isCustom = sel.FieldName(), true
		}
	} else if k, ok := customIndexKey(e); ok {
		x.customKey, x.isCustom = k, true
	}
	return x, nil
}

func typeName(t *types.Type) string {
	switch {
	case t == nil:
		return "unknown"
	case t.IsExactType(types.TimestampType):
		return "timestamp"
	case t.IsExactType(types.DurationType):
		return "duration"
	}
	return t.String()
}

// cleanCELMessage makes CEL's messages read better for policy authors.
func cleanCELMessage(m string) string {
	m = strings.ReplaceAll(m, "'"+workerTypeName+"'", "worker")
	m = strings.ReplaceAll(m, workerTypeName, "worker")
	if strings.HasPrefix(m, "undefined field '") {
		name := strings.TrimSuffix(strings.TrimPrefix(m, "undefined field '"), "'")
		if s := suggest(name, fieldNames[:]); s != "" {
			m += fmt.Sprintf(" (did you mean %q?)", s)
		}
	}
	return m
}

// refSet is what an expression reads: worker fields, specific custom
// attributes, and flags for things that defeat memoization.
type refSet struct {
	fields     uint32 // bit i set: reads fieldID(i)
	keyFields  []fieldID
	customKeys []string // sorted, distinct: custom attributes read by constant key
	now        bool     // reads `now`
	opaque     bool     // uses `worker` as a whole, or shadows it: key unknown
}

func (r *refSet) add(f fieldID) { r.fields |= 1 << f }

func (r refSet) has(f fieldID) bool { return r.fields&(1<<f) != 0 }

// singleString reports whether r reads exactly one string field (and
// nothing else), and which.
func (r refSet) singleString() (fieldID, bool) {
	if len(r.keyFields) != 1 || len(r.customKeys) != 0 || !r.keyFields[0].isString() {
		return 0, false
	}
	return r.keyFields[0], true
}

// signature identifies expressions that read the same things.
func (r refSet) signature() string {
	return fmt.Sprintf("%x|%t|%t|%s", r.fields, r.now, r.opaque, strings.Join(r.customKeys, "\x00"))
}

// highCardinality fields take a different value for (almost) every worker:
// memoizing on them costs memory and never hits.
const highCardinality = 1<<fID | 1<<fUserName | 1<<fEmail | 1<<fDisplayName | 1<<fGivenName |
	1<<fFamilyName | 1<<fEmployeeNumber | 1<<fCustom

// cacheable reports whether results can be memoized by the values read.
// Expressions reading `now` are not cached: callers may pass a different
// time on every call.
func (r refSet) cacheable() bool {
	return !r.opaque && !r.now && r.fields&highCardinality == 0
}

func isWorkerIdent(e celast.Expr) bool {
	return e.Kind() == celast.IdentKind && e.AsIdent() == "worker"
}

func isCustomSelect(e celast.Expr) bool {
	if e.Kind() != celast.SelectKind {
		return false
	}
	s := e.AsSelect()
	return !s.IsTestOnly() && s.FieldName() == "custom" && isWorkerIdent(s.Operand())
}

// customIndexKey recognizes worker.custom["k"] and worker.custom[?"k"].
func customIndexKey(e celast.Expr) (string, bool) {
	if e.Kind() != celast.CallKind {
		return "", false
	}
	c := e.AsCall()
	if (c.FunctionName() != operators.Index && c.FunctionName() != operators.OptIndex) || len(c.Args()) != 2 {
		return "", false
	}
	return customKeyArgs(c.Args()[0], c.Args()[1])
}

func customKeyArgs(m, k celast.Expr) (string, bool) {
	if !isCustomSelect(m) || k.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := k.AsLiteral().(types.String)
	return string(s), ok
}

// analyzeRefs walks a checked expression and returns what it reads.
func analyzeRefs(root celast.Expr) refSet {
	var r refSet
	keys := map[string]bool{}
	var walk func(e celast.Expr)
	walk = func(e celast.Expr) {
		switch e.Kind() {
		case celast.IdentKind:
			switch e.AsIdent() {
			case "worker":
				r.opaque = true // worker used as a whole
			case "now":
				r.now = true
			}
		case celast.SelectKind:
			s := e.AsSelect()
			op := s.Operand()
			switch {
			case isWorkerIdent(op):
				if f, ok := fieldByName(s.FieldName()); ok {
					r.add(f)
					if f == fCustom {
						r.opaque = true // custom map as a whole: see below
					}
				} else {
					r.opaque = true
				}
			case isCustomSelect(op):
				keys[s.FieldName()] = true
			default:
				walk(op)
			}
		case celast.CallKind:
			c := e.AsCall()
			args := c.Args()
			fn := c.FunctionName()
			if (fn == operators.Index || fn == operators.OptIndex || fn == operators.OptSelect) && len(args) == 2 {
				if k, ok := customKeyArgs(args[0], args[1]); ok {
					keys[k] = true
					return
				}
			}
			if fn == operators.In && len(args) == 2 {
				if k, ok := customKeyArgs(args[1], args[0]); ok {
					keys[k] = true
					return
				}
			}
			if c.IsMemberFunction() {
				walk(c.Target())
			}
			for _, a := range args {
				walk(a)
			}
		case celast.ComprehensionKind:
			cp := e.AsComprehension()
			for _, v := range []string{cp.IterVar(), cp.IterVar2(), cp.AccuVar()} {
				if v == "worker" || v == "now" {
					r.opaque = true // shadowed: the walk below cannot tell which is which
				}
			}
			walk(cp.IterRange())
			walk(cp.AccuInit())
			walk(cp.LoopCondition())
			walk(cp.LoopStep())
			walk(cp.Result())
		case celast.ListKind:
			for _, el := range e.AsList().Elements() {
				walk(el)
			}
		case celast.MapKind:
			for _, en := range e.AsMap().Entries() {
				me := en.AsMapEntry()
				walk(me.Key())
				walk(me.Value())
			}
		case celast.StructKind:
			for _, f := range e.AsStruct().Fields() {
				walk(f.AsStructField().Value())
			}
		}
	}
	walk(root)
	// A custom attribute read by key makes the worker depend on that key
	// only; whole-map use was flagged opaque above.
	if len(keys) > 0 {
		r.add(fCustomKeys)
	}
	for k := range keys {
		r.customKeys = append(r.customKeys, k)
	}
	sort.Strings(r.customKeys)
	for f := fieldID(0); f < numFields; f++ {
		if r.has(f) {
			r.keyFields = append(r.keyFields, f)
		}
	}
	return r
}

// fCustomKeys is a pseudo field bit: the expression reads custom
// attributes by constant key (listed in refSet.customKeys). It is not in
// highCardinality, so such expressions stay cacheable.
const fCustomKeys = numFields
