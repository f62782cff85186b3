package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/audit"
)

// exported is one JSON Lines row of `audit export`.
type exported struct {
	audit.Record
	PrevHash, Hash string
	body           []byte // the stored body, cut out of the line
}

// parseJSONL parses an export and re-verifies its chain offline, as the
// export's documentation tells an auditor to.
func parseJSONL(t testing.TB, out string) []exported {
	t.Helper()
	var rows []exported
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var hashes struct{ PrevHash, Hash string }
		if err := json.Unmarshal(line, &hashes); err != nil {
			t.Fatalf("line %d does not parse: %v\n%s", len(rows)+1, err, line)
		}
		var r exported
		if err := json.Unmarshal(line, &r.Record); err != nil {
			t.Fatalf("line %d is not a record: %v", len(rows)+1, err)
		}
		r.PrevHash, r.Hash = hashes.PrevHash, hashes.Hash
		suffix := `,"prevHash":"` + r.PrevHash + `","hash":"` + r.Hash + `"}`
		if !bytes.HasSuffix(line, []byte(suffix)) {
			t.Fatalf("line %d does not end with the hashes: %s", len(rows)+1, line)
		}
		r.body = append(bytes.Clone(line[:len(line)-len(suffix)]), '}')
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// verifyRows checks each row's hash and, for consecutive seqs, the links.
func verifyRows(t testing.TB, rows []exported) {
	t.Helper()
	for i, r := range rows {
		prev, err := hex.DecodeString(r.PrevHash)
		if err != nil || len(prev) != sha256.Size {
			t.Fatalf("record %d: bad prevHash %q", r.Seq, r.PrevHash)
		}
		h := sha256.New()
		h.Write(binary.BigEndian.AppendUint64(nil, r.Seq))
		h.Write(prev)
		h.Write(r.body)
		if got := hex.EncodeToString(h.Sum(nil)); got != r.Hash {
			t.Fatalf("record %d: hash %s, recomputed %s", r.Seq, r.Hash, got)
		}
		if i > 0 && rows[i-1].Seq+1 == r.Seq && rows[i-1].Hash != r.PrevHash {
			t.Fatalf("record %d: prevHash does not link to record %d", r.Seq, rows[i-1].Seq)
		}
	}
}

// TestAuditLogAndExport reads the log of an applied company with `audit
// log` and both export formats, and checks the rows against each other
// and against the chain.
func TestAuditLogAndExport(t *testing.T) {
	t.Parallel()
	e := newEnvWithData(t)
	n, head := e.auditHead()

	all := parseJSONL(t, e.must(0, "audit", "export", "--format", "jsonl").stdout)
	if len(all) != n {
		t.Fatalf("jsonl export has %d records, verify counted %d", len(all), n)
	}
	for i, r := range all {
		if r.Seq != uint64(i+1) {
			t.Fatalf("row %d has seq %d", i+1, r.Seq)
		}
	}
	verifyRows(t, all)
	if all[n-1].Hash != head {
		t.Errorf("last exported hash %s, verify's head %s", all[n-1].Hash, head)
	}

	// audit log --worker w-011 --type action.: exactly the action records
	// of Marcus, oldest first.
	var want []uint64
	for _, r := range all {
		if r.Worker == "w-011" && strings.HasPrefix(r.Type, "action.") {
			want = append(want, r.Seq)
		}
	}
	if len(want) < 6 {
		t.Fatalf("only %d action records for w-011", len(want))
	}
	out := e.must(0, "audit", "log", "--worker", "w-011", "--type", "action.").stdout
	lineRE := regexp.MustCompile(`^\s*(\d+)  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  (action\.(?:intent|outcome))\s+\S+\s+worker=w-011 app=\S+ action=\S+ entitlement=\S+ reason=\S+`)
	var got []uint64
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unexpected audit log line: %q", line)
		}
		seq, _ := strconv.ParseUint(m[1], 10, 64)
		got = append(got, seq)
		if r := all[seq-1]; r.Type != m[2] {
			t.Errorf("record %d: log says %s, export %s", seq, m[2], r.Type)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit log --worker w-011 --type action. listed %v, want %v", got, want)
	}
	// -o json is JSON Lines with the same records.
	js := parseJSONL(t, e.must(0, "audit", "log", "--worker", "w-011", "--type", "action.", "-o", "json").stdout)
	if len(js) != len(want) || js[0].Seq != want[0] || js[len(js)-1].Seq != want[len(want)-1] {
		t.Errorf("audit log -o json: %d records, want %d", len(js), len(want))
	}
	// A time window after everything selects nothing.
	tomorrow := time.Now().UTC().AddDate(0, 0, 2).Format(time.DateOnly)
	if out := e.must(0, "audit", "log", "--since", tomorrow).stdout; out != "" {
		t.Errorf("audit log --since %s printed:\n%s", tomorrow, out)
	}

	// CSV export to a file: the same records and hashes, atomically
	// written, announced on stderr.
	csvPath := filepath.Join(t.TempDir(), "audit.csv")
	r := e.must(0, "audit", "export", "--format", "csv", "--out", csvPath)
	if r.stdout != "" || !strings.Contains(r.stderr, fmt.Sprintf("Exported %d records to %s", n, csvPath)) {
		t.Errorf("export --out: %s", r)
	}
	rows := readCSV(t, csvPath)
	if !slices.Equal(rows[0], audit.CSVHeader()) {
		t.Fatalf("csv header %v, want %v", rows[0], audit.CSVHeader())
	}
	if len(rows)-1 != n {
		t.Fatalf("csv has %d rows, want %d", len(rows)-1, n)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for i, row := range rows[1:] {
		j := all[i]
		if row[col["seq"]] != strconv.FormatUint(j.Seq, 10) || row[col["type"]] != j.Type || row[col["hash"]] != j.Hash ||
			row[col["prev_hash"]] != j.PrevHash || row[col["worker"]] != j.Worker || row[col["action_id"]] != j.ActionID ||
			row[col["time"]] != j.Time.UTC().Format(audit.TimeFormat) {
			t.Fatalf("csv row %d differs from jsonl record %d:\n%v", i+1, j.Seq, row)
		}
	}
	// A filtered CSV export: Marcus's outcomes, all ok.
	csvPath = filepath.Join(t.TempDir(), "marcus.csv")
	e.must(0, "audit", "export", "--format", "csv", "--worker", "w-011", "--type", "action.outcome", "--out", csvPath)
	rows = readCSV(t, csvPath)
	if len(rows)-1 != len(want)/2 {
		t.Errorf("filtered csv has %d rows, want %d outcomes", len(rows)-1, len(want)/2)
	}
	for _, row := range rows[1:] {
		if row[col["worker"]] != "w-011" || row[col["type"]] != "action.outcome" || row[col["outcome"]] != "ok" {
			t.Errorf("filtered csv row: %v", row)
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(csvPath)); len(ents) != 1 {
		t.Errorf("export left temporary files: %v", ents)
	}
}

func readCSV(t testing.TB, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s does not parse as CSV: %v", path, err)
	}
	return rows
}

// TestAuditTamper flips one byte in the JSON body of one stored record
// and checks that `audit verify` exits 1 naming that record, while the
// untampered log verifies.
func TestAuditTamper(t *testing.T) {
	t.Parallel()
	for _, which := range []string{"first", "middle", "last"} {
		t.Run(which, func(t *testing.T) {
			t.Parallel()
			e := newEnvWithData(t)
			n, _ := e.auditHead()
			seq := map[string]uint64{"first": 1, "middle": uint64(n / 2), "last": uint64(n)}[which]

			path := filepath.Join(e.data, "roster.db")
			db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte(audit.Bucket))
				key := binary.BigEndian.AppendUint64(nil, seq)
				v := bytes.Clone(b.Get(key))
				if len(v) < 64+20 {
					return fmt.Errorf("record %d: value of %d bytes", seq, len(v))
				}
				// Flip a letter of the actor: still valid JSON, a
				// plausible forgery ("cli:alice" -> "cli:Alice").
				body := v[64:]
				i := bytes.Index(body, []byte(`"actor":"`))
				if i < 0 {
					return fmt.Errorf("record %d has no actor: %s", seq, body)
				}
				body[i+len(`"actor":"`)] ^= 0x20
				if !json.Valid(body) {
					return fmt.Errorf("tampered body is not JSON: %s", body)
				}
				return b.Put(key, v)
			})
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}

			r := e.roster("audit", "verify")
			want := fmt.Sprintf("audit log verification FAILED at record %d: hash mismatch", seq)
			if r.code != 1 || !strings.Contains(r.stderr, want) || strings.Contains(r.stdout, "chain intact") {
				t.Errorf("want exit 1 and %q, got %s", want, r)
			}
		})
	}
}
