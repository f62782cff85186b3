package hr

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/memory"
	"github.com/rosterhq/roster/lifecycle"
	"github.com/rosterhq/roster/policy"
)

const goodCSV = "\ufeffid, email ,givenName,familyName,workerType,title,division,team,manager,startDate,endDate,active,githubUsername,slackId\n" +
	"w-001,richard@pp.com,Richard,Hendricks,employee,CEO,Executive,,,2020-01-01,,true,rhendricks,U01\n" +
	"w-002, gilfoyle@pp.com ,Bertram,Gilfoyle,employee,\"Backend Lead, Platform\",Engineering,backend,w-001,2021-01-01,,TRUE,gilfoyle,\n" +
	"w-003,dinesh@pp.com,Dinesh,Chugtai,contractor,Engineer,Engineering,frontend,w-002,2021-02-01,2026-12-31,1,,\n" +
	"w-004,jared@pp.com,Jared,Dunn,employee,COO,Operations,,w-001,2022-01-01,,false,,\n" +
	"w-005,laurie@pp.com,Laurie,Bream,,Investor,,,,,,,,\n"

func TestReadCSVGood(t *testing.T) {
	file, err := ReadCSV("hr.csv", strings.NewReader(goodCSV))
	if err != nil {
		t.Fatalf("ReadCSV: %v", err)
	}
	recs := file.Records
	want := []lifecycle.HRRecord{
		{ID: "w-001", Email: "richard@pp.com", GivenName: "Richard", FamilyName: "Hendricks", WorkerType: "employee", Title: "CEO",
			Division: "Executive", StartDate: "2020-01-01", Active: true, Custom: map[string]string{"githubUsername": "rhendricks", "slackId": "U01"}},
		{ID: "w-002", Email: "gilfoyle@pp.com", GivenName: "Bertram", FamilyName: "Gilfoyle", WorkerType: "employee",
			Title: "Backend Lead, Platform", Division: "Engineering", Team: "backend", Manager: "w-001", StartDate: "2021-01-01",
			Active: true, Custom: map[string]string{"githubUsername": "gilfoyle"}},
		{ID: "w-003", Email: "dinesh@pp.com", GivenName: "Dinesh", FamilyName: "Chugtai", WorkerType: "contractor", Title: "Engineer",
			Division: "Engineering", Team: "frontend", Manager: "w-002", StartDate: "2021-02-01", EndDate: "2026-12-31", Active: true},
		{ID: "w-004", Email: "jared@pp.com", GivenName: "Jared", FamilyName: "Dunn", WorkerType: "employee", Title: "COO",
			Division: "Operations", Manager: "w-001", StartDate: "2022-01-01", Active: false},
		{ID: "w-005", Email: "laurie@pp.com", GivenName: "Laurie", FamilyName: "Bream", Title: "Investor", Active: true},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(recs[i], want[i]) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, recs[i], want[i])
		}
	}
}

func TestReadCSVOnlyID(t *testing.T) {
	file, err := ReadCSV("ids.csv", strings.NewReader("id\nw-1\nw-2\n"))
	if err != nil {
		t.Fatal(err)
	}
	recs := file.Records
	if len(recs) != 2 || !recs[0].Active || recs[1].ID != "w-2" {
		t.Fatalf("ReadCSV: %+v %v", recs, err)
	}
}

func TestReadCSVBad(t *testing.T) {
	const header = "id,email,startDate,endDate,active,workerType\n"
	tests := []struct {
		name string
		csv  string
		want []string // substrings of the error, each a problem
		rows []int    // lines of the *RowError values, in order
	}{
		{
			name: "bad date",
			csv:  header + "w-1,a@pp.com,2026-01-01,,true,employee\nw-2,b@pp.com,2026-02-30,,true,employee\n",
			want: []string{`hr.csv:3: column startDate: date "2026-02-30": want YYYY-MM-DD`},
			rows: []int{3},
		},
		{
			name: "duplicate id",
			csv:  header + "w-1,a@pp.com,,,,\nw-2,b@pp.com,,,,\nw-1,c@pp.com,,,,\n",
			want: []string{"hr.csv:4: column id: w-1 already on line 2"},
			rows: []int{4},
		},
		{
			name: "empty id",
			csv:  header + "w-1,a@pp.com,,,,\n ,b@pp.com,,,,\n",
			want: []string{"hr.csv:3: column id: empty"},
			rows: []int{3},
		},
		{
			name: "bad active",
			csv:  header + "w-1,a@pp.com,,,yes please,\n",
			want: []string{`hr.csv:2: column active: "yes please": want true or false`},
			rows: []int{2},
		},
		{
			name: "bad worker type",
			csv:  header + "w-1,a@pp.com,,,,robot\n",
			want: []string{`hr.csv:2: invalid HR record: worker w-1: workerType "robot"`},
			rows: []int{2},
		},
		{
			name: "every problem is reported, with line numbers after a multi-line field",
			csv: "id,title,startDate,active\n" +
				"w-1,\"Head of\nEverything\",2026-01-01,true\n" + // lines 2-3
				"w-2,x,01/02/2026,true\n" + // line 4
				"w-3,x,,maybe\n" + // line 5
				"w-2,x,,\n", // line 6
			want: []string{"hr.csv:4: column startDate", "hr.csv:5: column active", "hr.csv:6: column id: w-2 already on line 4"},
			rows: []int{4, 5, 6},
		},
		{
			name: "missing id column",
			csv:  "email,active\na@pp.com,true\n",
			want: []string{`hr.csv:1: no "id" column (columns: email,active)`},
		},
		{
			name: "duplicate column",
			csv:  "id,email,email\nw-1,a,b\n",
			want: []string{`hr.csv:1: column "email" appears twice`},
		},
		{
			name: "empty file",
			csv:  "",
			want: []string{"hr.csv: read header: EOF"},
		},
		{
			name: "wrong number of fields",
			csv:  header + "w-1,a@pp.com,,,,,extra\n",
			want: []string{"hr.csv: record on line 2: wrong number of fields"},
		},
		{
			name: "bare quote in the first field does not panic",
			csv:  header + "w\"1,a@pp.com,,,,\nw-2,b@pp.com,,,,\n",
			want: []string{`hr.csv: parse error on line 2, column 2: bare " in non-quoted-field`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file, err := ReadCSV("hr.csv", strings.NewReader(tc.csv))
			if err == nil {
				t.Fatalf("no error; records %+v", file.Records)
			}
			if file != nil {
				t.Errorf("the file was not rejected whole: %d records", len(file.Records))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			var lines []int
			var joined interface{ Unwrap() []error }
			if errors.As(err, &joined) {
				for _, e := range joined.Unwrap() {
					var re *RowError
					if errors.As(e, &re) {
						lines = append(lines, re.Line)
						if re.File != "hr.csv" {
							t.Errorf("row error file %q", re.File)
						}
					}
				}
			}
			if !reflect.DeepEqual(lines, tc.rows) && (len(lines) > 0 || len(tc.rows) > 0) {
				t.Errorf("row error lines %v, want %v", lines, tc.rows)
			}
		})
	}
}

func TestRowErrorUnwrap(t *testing.T) {
	_, err := ReadCSV("hr.csv", strings.NewReader("id,workerType\nw-1,robot\n"))
	if !errors.Is(err, lifecycle.ErrInvalidRecord) {
		t.Errorf("error %v does not wrap ErrInvalidRecord", err)
	}
}

func TestImport(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "roster.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	now := func() time.Time { return time.Date(2026, 1, 12, 12, 0, 0, 0, time.UTC) }
	chat, err := memory.New("chat", memory.Config{Kinds: []connectors.KindSpec{{Name: "channel"}}}, db, now)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.LoadBytes("p.yaml", []byte("version: 1\nroles:\n  - name: all\n    birthright: true\n    grants: {chat: [account]}\n"),
		policy.Options{Catalog: policy.Catalog{"chat": chat.Kinds()}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := lifecycle.New(lifecycle.Options{DB: db, Policy: pol, Apps: []connectors.Connector{chat}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	file, err := ReadCSV("hr.csv", strings.NewReader(goodCSV))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Import(ctx, e, "hr-import", file)
	if err != nil {
		t.Fatal(err)
	}
	// w-004 is inactive: stored, but no transition.
	if res.Records != 5 || res.Unchanged != 0 || !reflect.DeepEqual(res.Transitions, map[string]int{lifecycle.Joiner: 4}) {
		t.Errorf("first import %+v", res)
	}
	file.Records[1].Title = "CTO"
	res, err = Import(ctx, e, "hr-import", file)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 5 || res.Unchanged != 4 || !reflect.DeepEqual(res.Transitions, map[string]int{lifecycle.Mover: 1}) {
		t.Errorf("second import %+v", res)
	}
	bad := &File{Columns: []string{"id", "startDate"}, Records: []lifecycle.HRRecord{{ID: "w-9", StartDate: "soon", Active: true}}}
	if _, err := Import(ctx, e, "hr-import", bad); !errors.Is(err, lifecycle.ErrInvalidRecord) {
		t.Errorf("import of a bad record: %v", err)
	}

	// A partial file changes only its own columns: the title moves, the
	// e-mail, division, custom attributes and active flag stay.
	before, err := e.Worker(ctx, file.Records[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	partial, err := ReadCSV("titles.csv", strings.NewReader("id,title\n"+string(before.ID)+",Staff Engineer\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Import(ctx, e, "hr-import", partial); err != nil {
		t.Fatal(err)
	}
	after, err := e.Worker(ctx, before.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := before.HR
	want.Title = "Staff Engineer"
	if !reflect.DeepEqual(after.HR, want) {
		t.Errorf("partial import changed more than the title:\n got %+v\nwant %+v", after.HR, want)
	}
}
