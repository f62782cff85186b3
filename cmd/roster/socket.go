package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// socketDialWait is how long a probe waits for the admin socket to
// accept a connection, and socketAnswerWait for the server to answer.
const (
	socketDialWait   = 300 * time.Millisecond
	socketAnswerWait = 2 * time.Second
)

// maxSocketPath is the longest path a Unix socket can be bound to
// (sun_path holds 108 bytes on Linux, 104 on the BSDs, with the NUL).
const maxSocketPath = 103

type socketState int

const (
	socketAbsent  socketState = iota // no file there
	socketStale                      // a file nothing answers on
	socketAnswers                    // a roster serve answers /healthz
)

// probeSocket tells whether a roster serve answers on the admin socket
// at path. It takes at most socketDialWait when nothing listens, and
// socketAnswerWait when something accepts but does not answer.
func probeSocket(ctx context.Context, path string) socketState {
	if _, err := os.Stat(path); err != nil {
		return socketAbsent
	}
	ctx, cancel := context.WithTimeout(ctx, socketAnswerWait)
	defer cancel()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: socketDialWait}
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://roster/healthz", nil)
	if err != nil {
		return socketStale
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return socketStale
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK {
		return socketStale
	}
	return socketAnswers
}

// listenSocket creates the admin socket at path with mode 0600 (only the
// user running serve can connect). A stale socket there is replaced, but
// only once nothing answers on it. The socket is bound in a private
// directory beside path and renamed into place, so it never exists with
// a wider mode. The caller removes it (removeSocket) when done.
func listenSocket(ctx context.Context, path string) (*net.UnixListener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("admin socket %s: the path is %d bytes, longer than a Unix socket allows (%d); set admin.socket in roster.yaml to a shorter path, or move the data dir", path, len(path), maxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("admin socket %s: a file that is not a socket is in the way; remove it or set admin.socket", path)
		}
		switch probeSocket(ctx, path) {
		case socketAnswers:
			return nil, fmt.Errorf("admin socket %s: another roster serve answers on it; stop it first, or give this one another admin.socket", path)
		default:
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("admin socket %s: remove the stale socket: %w", path, err)
			}
		}
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".rs")
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	if len(tmp) > maxSocketPath {
		return nil, fmt.Errorf("admin socket %s: the path is too long for a Unix socket; set admin.socket in roster.yaml to a shorter path", path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, error) {
		ln.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return ln, nil
}

// removeSocket removes the admin socket at path if it is still the one
// ln created.
func removeSocket(path string, created os.FileInfo) {
	if fi, err := os.Lstat(path); err == nil && created != nil && os.SameFile(fi, created) {
		_ = os.Remove(path)
	}
}
