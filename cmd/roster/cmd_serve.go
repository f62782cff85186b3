package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/config"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
	"github.com/rosterhq/roster/lifecycle/hr"
)

// shutdownTimeout bounds how long serve waits for in-flight HTTP requests
// after SIGINT/SIGTERM before it closes their connections. The engine is
// then always waited for: its in-flight actions finish or stay in the
// outbox.
const shutdownTimeout = 10 * time.Second

// maxHeaderBytes bounds a request's header (a URL included): SCIM and
// admin clients send small ones.
const maxHeaderBytes = 64 << 10

// minTokenLength is the length below which serve warns about a SCIM token.
const minTokenLength = 20

func newServeCmd(g *globals) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve SCIM 2.0 HR intake, health checks and metrics, and run the engine",
		Long: `Serve runs Roster as one long-running process:

  /scim/v2/…   SCIM 2.0 service provider (Users, Groups, ServiceProviderConfig,
               Schemas, ResourceTypes) for HR and identity providers; each
               token in the scim block of roster.yaml is a client, named in
               the audit log
  /healthz     200 while the process runs
  /readyz      200 once the first full reconcile has read every app, 503
               before that and while shutting down
  /metrics     Prometheus metrics
  /api/v1/…    the admin API, when roster.yaml lists admin tokens (admin or
               auditor role); every call audited with the token's name

and the same admin API on a Unix socket in the data dir (admin.socket;
mode 0600, only this user may connect): while serve holds the data file,
every other roster command on this machine finds the socket and goes
through it. And, in the same process, the engine: the executor carries out queued
actions, the scheduler acts on start and end dates (server.tick_interval),
every SCIM change is reconciled at once without waiting for the next run,
and a full reconcile reads every app and plans everybody at start and every
server.reconcile_interval.

SIGINT or SIGTERM stops it gracefully: no new requests, in-flight ones
finish (up to 10s), then in-flight actions finish or stay in the outbox for
the next start. Request logs go to stderr (--log-format text or json).`,
		Example: `  ROSTER_SCIM_TOKEN=$(openssl rand -hex 32) roster --config testdata/piedpiper/roster.yaml serve --listen 127.0.0.1:8080`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.serve(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "", "HOST:PORT to listen on, overriding server.listen (port 0 picks a free port)")
	f.StringVar(&o.logFormat, "log-format", "text", "log format on stderr: text or json")
	return cmd
}

type serveOptions struct {
	listen    string
	logFormat string
}

// serve runs the server until ctx is done (SIGINT/SIGTERM in main), the
// HTTP server fails, or the engine stops on its own.
func (g *globals) serve(ctx context.Context, stdout, stderr io.Writer, o serveOptions) error {
	if o.listen != "" {
		if err := config.CheckListen(o.listen); err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
	}
	level := slog.LevelInfo
	if g.verbose {
		level = slog.LevelDebug
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		g.logger = slog.New(slog.NewTextHandler(stderr, hopts))
	case "json":
		g.logger = slog.New(slog.NewJSONHandler(stderr, hopts))
	default:
		return fmt.Errorf("--log-format must be text or json, got %q", o.logFormat)
	}
	log := g.logger

	waits := newWaitMetric()
	g.onWait = func(app string, status int, wait time.Duration) {
		waits.WithLabelValues(app, waitCause(status)).Observe(wait.Seconds())
	}
	s, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err := s.Close(); err != nil {
			log.Error("close the data file", "err", err)
		}
	}()
	cfg := s.cfg
	addr := cfg.Server.Listen
	if o.listen != "" {
		addr = o.listen
	}

	var tlsConf *tls.Config
	if t := cfg.Server.TLS; t != nil {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return fmt.Errorf("server.tls: load certificate %s and key %s: %w", t.CertFile, t.KeyFile, err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	var tokens []apiToken
	if len(cfg.Admin.Tokens) > 0 {
		if tokens, err = apiTokens(cfg, log); err != nil {
			return err
		}
	}

	// The engine runs until the HTTP server has shut down, so SCIM writes
	// still in flight at a signal are reconciled or left in the outbox.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	api := newAdminAPI(newServingBackend(g, s), tokens, runCtx.Done(), log.With("component", "admin-api"))
	defer api.close()

	m := newServeMetrics(s.engine)
	m.reg.MustRegister(waits)
	var draining atomic.Bool
	mux := http.NewServeMux()
	if len(tokens) > 0 {
		mux.Handle(apiBase+"/", api.serve(api.tokenCaller))
		if host, _, _ := net.SplitHostPort(addr); tlsConf == nil && !isLoopbackHost(host) {
			log.Warn("the admin API is served without TLS on a non-loopback address: admin and auditor tokens would cross the network in cleartext; set server.tls or put a TLS-terminating proxy in front", "listen", addr)
		}
	}
	if cfg.SCIM != nil {
		h, err := g.scimHandler(s, cfg, log)
		if err != nil {
			return err
		}
		mux.Handle(hr.BasePath+"/", h)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if why := notReady(s, &draining); why != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "not ready: "+why+"\n")
			return
		}
		io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	// The admin socket, for the CLI on this machine.
	var sockSrv *http.Server
	sockDone := make(chan error, 1)
	sockPath := cfg.AdminSocket()
	if sockPath != "" {
		sln, err := listenSocket(ctx, sockPath)
		if err != nil {
			ln.Close()
			return err
		}
		created, _ := os.Lstat(sockPath)
		defer removeSocket(sockPath, created)
		smux := http.NewServeMux()
		smux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "ok\n")
		})
		smux.Handle(apiBase+"/", api.serve(socketCaller))
		sockSrv = &http.Server{
			Handler:           m.instrument(log, smux),
			ReadHeaderTimeout: cfg.Server.ReadTimeout.Std(),
			IdleTimeout:       cfg.Server.IdleTimeout.Std(),
			ConnContext:       socketConnContext,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		go func() { sockDone <- sockSrv.Serve(sln) }()
	}

	srv := &http.Server{
		Handler:           m.instrument(log, mux),
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: cfg.Server.ReadTimeout.Std(),
		ReadTimeout:       cfg.Server.ReadTimeout.Std(),
		WriteTimeout:      cfg.Server.WriteTimeout.Std(),
		IdleTimeout:       cfg.Server.IdleTimeout.Std(),
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	runDone := make(chan error, 1)
	go func() {
		runDone <- s.engine.Run(runCtx, lifecycle.RunOptions{
			ReconcileInterval: cfg.Server.ReconcileInterval.Std(),
			TickInterval:      cfg.Server.TickInterval.Std(),
			OnDone: func(kind string, since time.Time) {
				m.done.WithLabelValues(kind).Observe(max(g.clock().Sub(since), 0).Seconds())
			},
		})
	}()
	serveDone := make(chan error, 1)
	go func() {
		if tlsConf != nil {
			serveDone <- srv.ServeTLS(ln, "", "")
		} else {
			serveDone <- srv.Serve(ln)
		}
	}()

	scheme := "http"
	if tlsConf != nil {
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	if cfg.SCIM != nil {
		fmt.Fprintf(stdout, "roster serve: listening on %s (SCIM base URL %s%s)\n", base, base, hr.BasePath)
	} else {
		fmt.Fprintf(stdout, "roster serve: listening on %s (SCIM off: roster.yaml has no scim block)\n", base)
	}
	log.Info("serving", "addr", ln.Addr().String(), "tls", tlsConf != nil, "scim", cfg.SCIM != nil,
		"admin_socket", sockPath, "admin_api_tokens", len(tokens),
		"reconcile_interval", cfg.Server.ReconcileInterval.String(), "tick_interval", cfg.Server.TickInterval.String())

	var serveErr, runErr error
	serveEnded, runEnded := false, false
	select {
	case <-ctx.Done():
		log.Info("shutting down: stopping HTTP, then waiting for in-flight actions")
	case serveErr = <-serveDone:
		serveEnded = true
		log.Error("HTTP server failed; stopping", "err", serveErr)
	case runErr = <-runDone:
		runEnded = true
		log.Error("engine stopped; stopping", "err", runErr)
	}
	draining.Store(true)

	shCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	sockShut := make(chan struct{})
	go func() {
		defer close(sockShut)
		if sockSrv == nil {
			return
		}
		if err := sockSrv.Shutdown(shCtx); err != nil {
			log.Warn("admin socket requests still running at the shutdown timeout; closing their connections", "timeout", shutdownTimeout.String(), "err", err)
			sockSrv.Close()
		}
		if err := <-sockDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("admin socket failed", "err", err)
		}
	}()
	if err := srv.Shutdown(shCtx); err != nil {
		log.Warn("HTTP requests still running at the shutdown timeout; closing their connections", "timeout", shutdownTimeout.String(), "err", err)
		srv.Close()
	}
	<-sockShut
	cancel()
	if !serveEnded {
		if err := <-serveDone; !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	stopRun()
	if !runEnded {
		runErr = <-runDone
	}
	// Admin operations still running end with the engine; the data file
	// closes after them.
	api.close()
	if errors.Is(runErr, context.Canceled) {
		runErr = nil
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	switch {
	case serveErr != nil:
		return fmt.Errorf("serve: %w", serveErr)
	case runErr != nil:
		return fmt.Errorf("serve: engine: %w", runErr)
	case ctx.Err() == nil:
		return errors.New("serve: engine stopped unexpectedly")
	}
	log.Info("stopped")
	return nil
}

// scimHandler resolves the tokens, merges the mapping and builds the
// SCIM handler, with every problem positioned in roster.yaml.
func (g *globals) scimHandler(s *session, cfg *config.Config, log *slog.Logger) (http.Handler, error) {
	tokens, err := scimTokens(cfg)
	if err != nil {
		return nil, err
	}
	for _, t := range tokens {
		if len(t.Secret) < minTokenLength {
			log.Warn("SCIM token is short; use at least 32 random characters (openssl rand -hex 32)", "token", t.Name)
		}
	}
	mapping, err := scimMapping(cfg.SCIM)
	if err != nil {
		return nil, err
	}
	h, err := hr.NewSCIM(hr.SCIMOptions{
		Store:   s.engine,
		Tokens:  tokens,
		Mapping: mapping,
		MaxBody: int64(cfg.Server.MaxBody),
		OnChange: func(id connectors.WorkerID, transition string) {
			s.engine.Notify(id, transition)
		},
		Logger: log.With("component", "scim"),
		Now:    g.clock,
	})
	if err != nil {
		return nil, fmt.Errorf("scim: %w", err)
	}
	return h, nil
}

// scimTokens resolves every SCIM token's secret. A secret that does not
// resolve is an error naming the token, the variable or file, and the
// line in roster.yaml — never a value.
func scimTokens(cfg *config.Config) ([]hr.Token, error) {
	var out []hr.Token
	seen := map[string]string{}
	for _, t := range cfg.SCIM.Tokens {
		v, err := cfg.ResolveSecret(t.Secret)
		if err != nil {
			return nil, t.Errorf("%w", err)
		}
		if other, dup := seen[v]; dup {
			return nil, t.Errorf("its secret (%s) has the same value as token %q's; give each token its own secret so the audit log names the right client", t.Secret, other)
		}
		seen[v] = t.Name
		out = append(out, hr.Token{Name: t.Name, Secret: v})
	}
	return out, nil
}

// scimMapping is the default mapping with roster.yaml's overrides applied
// (an empty path removes an attribute's mapping), validated. An error
// points at the override that breaks it when one does alone.
func scimMapping(sc *config.SCIM) (hr.Mapping, error) {
	apply := func(m hr.Mapping, attr string) {
		if p := sc.Mapping[attr]; p == "" {
			delete(m, attr)
		} else {
			m[attr] = p
		}
	}
	m := maps.Clone(hr.DefaultMapping())
	attrs := sc.MappingAttrs()
	for _, a := range attrs {
		apply(m, a)
	}
	err := m.Validate()
	if err == nil {
		return m, nil
	}
	for _, a := range attrs {
		one := maps.Clone(hr.DefaultMapping())
		apply(one, a)
		if err1 := one.Validate(); err1 != nil {
			return nil, sc.MappingErrorf(a, "%w", err1)
		}
	}
	return nil, sc.MappingErrorf("", "%w", err)
}

// notReady says why the server is not ready, or "" when it is.
func notReady(s *session, draining *atomic.Bool) string {
	switch {
	case draining.Load():
		return "shutting down"
	case s.db.View(func(*bolt.Tx) error { return nil }) != nil:
		return "data file closed"
	case s.engine.Policy() == nil:
		return "no policy loaded"
	case !s.engine.Ready():
		return "the first full reconcile has not read every app yet"
	}
	return ""
}

// serveMetrics are the Prometheus metrics of one serve process, in a
// registry of their own (no global state).
type serveMetrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec   // SCIM requests by method and status code
	latency  *prometheus.HistogramVec // SCIM request duration by method
	done     *prometheus.HistogramVec // HR change to done in every app, by kind
}

func newServeMetrics(src statusSource) *serveMetrics {
	m := &serveMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_scim_requests_total",
			Help: "SCIM requests answered, by HTTP method and status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "roster_scim_request_duration_seconds",
			Help:    "Time to answer a SCIM request, by HTTP method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method"}),
		done: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "roster_hr_change_to_done_seconds",
			Help:    "Time from an HR change to it being carried out in every app, by kind (joiner, mover, leaver, rehire).",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"kind"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.done,
		newStatusCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// newWaitMetric is the histogram of the waits connectors make before
// retrying a call, by app and cause.
func newWaitMetric() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "roster_connector_retry_wait_seconds",
		Help:    "Waits before retrying a call to an app, by app and cause (rate_limited: 429 or an exhausted rate limit, as long as the app asked; server_error: 5xx; network).",
		Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60},
	}, []string{"app", "cause"})
}

// waitCause names the cause of a retry wait from the status that caused it.
func waitCause(status int) string {
	switch {
	case status == 0:
		return "network"
	case status >= 500:
		return "server_error"
	}
	return "rate_limited"
}

// statusSource is what the metrics read from the engine.
type statusSource interface {
	Ready() bool
	Status(ctx context.Context) (*lifecycle.StatusReport, error)
}

// statusCollector reads the engine's status on every scrape.
type statusCollector struct {
	e                                            statusSource
	outbox, workers, open, pending, audit, ready *prometheus.Desc
}

func newStatusCollector(e statusSource) *statusCollector {
	return &statusCollector{
		e: e,
		outbox: prometheus.NewDesc("roster_outbox_depth",
			"Actions waiting in the durable outbox.", nil, nil),
		workers: prometheus.NewDesc("roster_workers",
			"Workers by status.", []string{"status"}, nil),
		open: prometheus.NewDesc("roster_open_transitions",
			"HR changes not yet carried out in every app, by kind.", []string{"kind"}, nil),
		pending: prometheus.NewDesc("roster_pending_plans",
			"Plans held by the safety gate, waiting for `roster approve`.", nil, nil),
		audit: prometheus.NewDesc("roster_audit_records",
			"Records in the audit log.", nil, nil),
		ready: prometheus.NewDesc("roster_ready",
			"1 once the first full reconcile has read every app.", nil, nil),
	}
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.outbox, c.workers, c.open, c.pending, c.audit, c.ready} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	ready := 0.0
	if c.e.Ready() {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, ready)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.e.Status(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.outbox, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.outbox, prometheus.GaugeValue, float64(st.Outbox))
	for status, n := range st.Workers {
		ch <- prometheus.MustNewConstMetric(c.workers, prometheus.GaugeValue, float64(n), string(status))
	}
	for kind, n := range st.Transitions {
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(n), kind)
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(len(st.PendingPlans)))
	ch <- prometheus.MustNewConstMetric(c.audit, prometheus.GaugeValue, float64(st.AuditRecords))
}

// instrument logs every request (method, path, status, duration; never a
// header or a body) and counts SCIM requests. Probes and scrapes are
// logged at debug level only.
func (m *serveMetrics) instrument(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		d := time.Since(start)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		level := slog.LevelInfo
		if p := r.URL.Path; p == hr.BasePath || strings.HasPrefix(p, hr.BasePath+"/") {
			method := methodLabel(r.Method)
			m.requests.WithLabelValues(method, strconv.Itoa(rec.status)).Inc()
			m.latency.WithLabelValues(method).Observe(d.Seconds())
		} else {
			level = slog.LevelDebug
		}
		log.LogAttrs(r.Context(), level, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Float64("duration_ms", float64(d.Microseconds())/1000),
			slog.Int64("bytes", rec.bytes),
			slog.String("remote", r.RemoteAddr),
		)
	})
}

// methodLabel bounds the method label to the methods SCIM uses.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return m
	}
	return "other"
}

// statusRecorder remembers the status code and body size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
