package connectortest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// PrismEnv names the environment variable that points at the Prism CLI
// binary (npm @stoplight/prism-cli). .ci/run installs Prism and sets it.
const PrismEnv = "ROSTER_PRISM"

// Prism starts `prism proxy --errors SPEC UPSTREAM` on a free loopback
// port and returns the proxy's base URL. Every request through it is
// checked against the OpenAPI description spec before it reaches the
// upstream fake, and every answer on the way back: a request that breaks
// the published API gets 422 and is not forwarded, an answer that breaks
// it becomes 500, so the connector under test fails.
//
// Prism is found through $ROSTER_PRISM, then "prism" on $PATH. When it is
// missing the test is skipped with a message that says how to install it;
// set ROSTER_REQUIRE_PRISM=1 (as .ci/run does) to fail instead. The proxy
// is stopped when the test ends, and its output is logged if the test
// failed.
func Prism(t testing.TB, spec, upstream string) string {
	t.Helper()
	bin := os.Getenv(PrismEnv)
	if bin == "" {
		if p, err := exec.LookPath("prism"); err == nil {
			bin = p
		}
	}
	if bin == "" {
		msg := "prism not found: run `npm install --prefix ~/.cache/roster-prism @stoplight/prism-cli@5.14.2` and set " +
			PrismEnv + "=~/.cache/roster-prism/node_modules/.bin/prism (bash .ci/run does this)"
		if os.Getenv("ROSTER_REQUIRE_PRISM") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	abs, err := filepath.Abs(spec)
	if err != nil {
		t.Fatalf("prism: spec %s: %v", spec, err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("prism: spec: %v", err)
	}
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "proxy", "--errors", "-h", "127.0.0.1", "-p", port, "-v", "warn", abs, upstream)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("prism: start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("prism output:\n%s", out.String())
		}
	})
	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("prism exited before it listened:\n%s", out.String())
		default:
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("prism did not listen on %s within 60s:\n%s", port, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("prism: find a free port: %v", err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
