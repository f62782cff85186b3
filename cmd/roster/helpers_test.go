package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// sampleDir is the sample company, relative to this package.
const sampleDir = "../../testdata/piedpiper"

// copySample copies the sample company (roster.yaml, hr.csv, policies,
// tests) into a fresh temporary directory and returns it.
func copySample(t testing.TB) string {
	t.Helper()
	dst := t.TempDir()
	for _, name := range []string{"roster.yaml", "hr.csv", "policies", "tests"} {
		copyTree(t, filepath.Join(sampleDir, name), filepath.Join(dst, name))
	}
	return dst
}

// copyTree copies a file or a directory tree.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	if err := copyTreeErr(src, dst); err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

func copyTreeErr(src, dst string) error {
	return filepath.WalkDir(src, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if de.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// editFile replaces old with new in the file at path (old must occur).
func editFile(t testing.TB, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, bytes.ReplaceAll(b, []byte(old), []byte(new)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// env is one company: a config file and a data dir, driven through run().
type env struct {
	t      testing.TB
	dir    string // the copy of the sample company
	config string
	data   string
}

// newEnv copies the sample company into a temporary directory. When the
// test ends, the data file, if there is one, must pass bbolt's
// consistency check.
func newEnv(t testing.TB) *env {
	t.Helper()
	dir := copySample(t)
	e := &env{t: t, dir: dir, config: filepath.Join(dir, "roster.yaml"), data: filepath.Join(dir, "data")}
	t.Cleanup(func() { checkDB(t, filepath.Join(e.data, "roster.db")) })
	return e
}

// checkDB runs bbolt's consistency check on a data file, if it exists.
func checkDB(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Errorf("check %s: %v", path, err)
		return
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for cerr := range tx.Check() {
			t.Errorf("%s is inconsistent: %v", path, cerr)
		}
		return nil
	})
	if err != nil {
		t.Errorf("check %s: %v", path, err)
	}
}

// result is what one CLI run produced.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\n--- stdout:\n" + r.stdout + "\n--- stderr:\n" + r.stderr
}

// roster runs the CLI in-process with the env's --config and --data-dir.
func (e *env) roster(args ...string) result {
	e.t.Helper()
	return runCLI(e.t, append([]string{"--config", e.config, "--data-dir", e.data}, args...)...)
}

// must runs the CLI and fails the test unless it exits with want.
func (e *env) must(want int, args ...string) result {
	e.t.Helper()
	r := e.roster(args...)
	if r.code != want {
		e.t.Fatalf("roster %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

// rosterIn is roster with stdin.
func (e *env) rosterIn(stdin string, args ...string) result {
	e.t.Helper()
	return runCLIIn(e.t, stdin, append([]string{"--config", e.config, "--data-dir", e.data}, args...)...)
}

func runCLI(t testing.TB, args ...string) result {
	t.Helper()
	return runCLIIn(t, "", args...)
}

func runCLIIn(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// fileHash returns the SHA-256 of a file's bytes.
func fileHash(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fixtures are built at most once per test binary, on first use, under
// root, which TestMain removes.
type fixtures struct {
	root string

	baseOnce sync.Once
	baseDB   string // roster.db after importing and applying the sample company
	baseErr  error

	binOnce sync.Once
	bin     string // the roster binary
	binErr  error
}

var fx fixtures

func TestMain(m *testing.M) {
	flag.Parse()
	root, err := os.MkdirTemp("", "roster-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fx.root = root
	code := m.Run()
	os.RemoveAll(root)
	os.Exit(code)
}

// baseDB returns a roster.db holding the sample company imported and
// applied with the sample config: the starting point of tests that are
// not about the first apply. Copy it; never open it.
func baseDB(t testing.TB) string {
	t.Helper()
	fx.baseOnce.Do(func() {
		dir := filepath.Join(fx.root, "base")
		fx.baseErr = func() error {
			for _, name := range []string{"roster.yaml", "hr.csv", "policies", "tests"} {
				if err := copyTreeErr(filepath.Join(sampleDir, name), filepath.Join(dir, name)); err != nil {
					return err
				}
			}
			g := []string{"--config", filepath.Join(dir, "roster.yaml"), "--data-dir", filepath.Join(dir, "data")}
			for _, args := range [][]string{{"hr", "import", filepath.Join(dir, "hr.csv")}, {"apply", "--auto-approve"}} {
				var out, errb bytes.Buffer
				if code := run(context.Background(), append(g, args...), strings.NewReader(""), &out, &errb); code != 0 {
					return fmt.Errorf("base data: roster %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
				}
			}
			fx.baseDB = filepath.Join(dir, "data", "roster.db")
			return nil
		}()
	})
	if fx.baseErr != nil {
		t.Fatal(fx.baseErr)
	}
	return fx.baseDB
}

// newEnvWithData is newEnv with a copy of baseDB in its data dir.
func newEnvWithData(t testing.TB) *env {
	t.Helper()
	src := baseDB(t)
	e := newEnv(t)
	if err := os.MkdirAll(e.data, 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.data, "roster.db"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}
