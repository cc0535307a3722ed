package transport

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcpauth/mcpauth/auth"
)

// Metrics counts what the audit records say happened (every mint,
// revocation, refusal and sign-in, whichever path made it: tool, CLI,
// token API or OAuth) and exposes them, with the open sessions, to
// Prometheus. Counting at the audit record means nothing is counted twice
// or forgotten, and labels stay bounded (event and path, never ids).
type Metrics struct {
	reg      *prometheus.Registry
	events   *prometheus.CounterVec
	refusals *prometheus.CounterVec
}

// The limits whose refusals are counted (the limit label).
const (
	limitStreamsPerClient  = "streams_per_client"
	limitSessionsPerClient = "sessions_per_client"
	// limitStalledStream counts event streams (legacy SSE, Streamable
	// HTTP GET) dropped because their client stopped reading
	// (SSEWriteTimeout).
	limitStalledStream = "stalled_stream"
)

// knownLimits bounds the limit label; each starts at zero.
var knownLimits = []string{limitStreamsPerClient, limitSessionsPerClient, limitStalledStream}

// NewMetrics returns the metrics; sessions reports open sessions.
func NewMetrics(sessions func() int) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpauth_events_total",
			Help: "Security events from the audit log: token.issued, token.revoked, auth.failed, oauth.*, …, by path (via).",
		}, []string{"event", "via"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpauth_limit_refusals_total",
			Help: "Requests refused (or streams ended) because a limit was reached, by limit.",
		}, []string{"limit"}),
	}
	for _, l := range knownLimits {
		m.refusals.WithLabelValues(l)
	}
	m.reg.MustRegister(m.events, m.refusals,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mcpauth_open_sessions", Help: "Open SSE and Streamable HTTP sessions."},
			func() float64 { return float64(sessions()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves the metrics (mount it behind the admin check).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// KnowLimits makes the refusals of limits kept elsewhere (the gateway's,
// upstream.Limits) show in /metrics from zero, like the transport's own.
func (m *Metrics) KnowLimits(limits ...string) {
	for _, l := range limits {
		m.refusals.WithLabelValues(l)
	}
}

// Refused counts one refusal by a limit (nil-safe: without metrics,
// nothing is counted).
func (m *Metrics) Refused(limit string) {
	if m != nil {
		m.refusals.WithLabelValues(limit).Inc()
	}
}

// knownVia bounds the via label.
var knownVia = map[string]bool{"issue_token": true, "token_api": true, "oauth": true, "cli": true, "tools/call": true, "metrics": true}

// CountingHandler wraps a log handler: every audit record also counts.
func (m *Metrics) CountingHandler(next slog.Handler) slog.Handler { return &counting{next: next, m: m} }

type counting struct {
	next slog.Handler
	m    *Metrics
}

func (c *counting) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || c.next.Enabled(ctx, l)
}

func (c *counting) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "audit" {
		var event, via string
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "event":
				event = a.Value.String()
			case "via":
				via = a.Value.String()
			}
			return true
		})
		if !knownVia[via] {
			via = ""
		}
		if event != "" {
			c.m.events.WithLabelValues(event, via).Inc()
		}
	}
	if !c.next.Enabled(ctx, r.Level) {
		return nil
	}
	return c.next.Handle(ctx, r)
}

func (c *counting) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &counting{next: c.next.WithAttrs(attrs), m: c.m}
}

func (c *counting) WithGroup(name string) slog.Handler {
	return &counting{next: c.next.WithGroup(name), m: c.m}
}

// adminOnly lets only admin-scoped callers through (after bearer.Middleware).
func adminOnly(resourceMetadata string, logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := auth.ClaimsFrom(r.Context())
		if !ok || !c.Scope.IsAdmin() {
			forbid(w, r, logger, c, auth.ScopeAdmin, resourceMetadata, "metrics")
			return
		}
		next.ServeHTTP(w, r)
	})
}
