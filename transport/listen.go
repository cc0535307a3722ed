package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Timeouts bound how long a client may take: to send its headers
// (slowloris), to send a whole request, and to sit idle between requests.
// There is no server-wide write timeout: event streams are long-lived by
// design and end at token expiry or revocation instead; the event streams
// bound each of their writes themselves (HTTPConfig.SSEWriteTimeout).
type Timeouts struct {
	ReadHeader time.Duration // default 10s
	Read       time.Duration // default 60s
	Idle       time.Duration // default 120s
}

// MaxHeaderBytes bounds request headers (an 8 KiB token fits many times).
const MaxHeaderBytes = 64 << 10

// Serve runs handler on ln until ctx ends, then shuts down gracefully,
// closing open streams first (streams never finish on their own).
func Serve(ctx context.Context, ln net.Listener, h *HTTP, logger *slog.Logger) error {
	t := h.cfg.Timeouts
	if t.ReadHeader <= 0 {
		t.ReadHeader = 10 * time.Second
	}
	if t.Read <= 0 {
		t.Read = 60 * time.Second
	}
	if t.Idle <= 0 {
		t.Idle = 120 * time.Second
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	reapCtx, stopReaper := context.WithCancel(ctx)
	defer stopReaper()
	go h.RunReaper(reapCtx)
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	streams, calls := h.OpenSessions(), h.inflight.Load()
	logger.Info("mcpauth stopping: closing event streams and draining requests", "open_sessions", streams, "in_flight", calls)
	h.draining.Store(true) // from now on new requests get 503
	_ = h.Close(shutCtx)
	drained := h.waitIdle(shutCtx)
	err := srv.Shutdown(shutCtx)
	logger.Info("mcpauth stopped", "closed_sessions", streams, "drained_requests", calls, "all_finished", drained)
	if err2 := <-errc; err2 != nil && !errors.Is(err2, http.ErrServerClosed) && err == nil {
		err = err2
	}
	return err
}

// waitIdle waits until no request is being served, or ctx ends (false).
func (h *HTTP) waitIdle(ctx context.Context) bool {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for h.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}
