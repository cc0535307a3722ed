package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/transport"
)

// Serving before the server is assembled. mcpauth.New connects every
// upstream before it returns; an upstream that takes tokens mcpauth mints
// for it ("callerToken") verifies them with the keys mcpauth publishes at
// /.well-known/jwks.json, and may fetch them only when mcpauth's first
// request arrives, which is during New. So, when an upstream takes such
// tokens, the listener serves the JWK Set (and 503 "starting" for
// everything else) from the moment it is open, and is handed to the real
// server once New has returned.

// early serves the JWK Set on a listener until it is handed over.
type early struct {
	ln    net.Listener
	conns chan net.Conn
	srv   *http.Server
	done  chan struct{} // the early server's Serve returned
	once  sync.Once
	err   error // the accept loop's end
}

// needsEarly reports whether an upstream takes tokens mcpauth mints.
func needsEarly(lc *mcpauth.Config) bool {
	for _, e := range lc.Upstreams {
		if e.CallerToken != nil {
			return true
		}
	}
	return false
}

// serveEarly starts serving lc's JWK Set on ln.
func serveEarly(ln net.Listener, lc *mcpauth.Config, logger *slog.Logger) (*early, error) {
	jwks, err := lc.JWKS()
	if err != nil {
		return nil, err
	}
	e := &early{ln: ln, conns: make(chan net.Conn), done: make(chan struct{})}
	go e.accept()
	mux := http.NewServeMux()
	serveKeys := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(jwks)
	}
	mux.HandleFunc("GET "+transport.JWKSPath, serveKeys)
	if lc.BasePath != "" {
		mux.HandleFunc("GET "+lc.BasePath+transport.JWKSPath, serveKeys)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"starting","error_description":"mcpauth is starting (connecting its upstream servers); retry shortly"}` + "\n"))
	})
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	// Every answer closes its connection: a client must not keep one to
	// the early server and send its next request (a POST, which is not
	// retried) into a connection closed by the hand-over.
	e.srv.SetKeepAlivesEnabled(false)
	go func() {
		defer close(e.done)
		_ = e.srv.Serve(e.listener(false))
	}()
	return e, nil
}

// accept passes ln's connections to whichever server is listening now.
func (e *early) accept() {
	for {
		c, err := e.ln.Accept()
		if err != nil {
			e.err = err
			close(e.conns)
			return
		}
		e.conns <- c
	}
}

// handOver stops the early server (letting its requests finish) and
// returns the listener the real server serves; closing that listener
// closes ln.
func (e *early) handOver(ctx context.Context) net.Listener {
	e.once.Do(func() {
		_ = e.srv.Shutdown(ctx)
		<-e.done
	})
	return e.listener(true)
}

// listener is a net.Listener taking connections from the accept loop;
// closing it closes ln only when owner.
func (e *early) listener(owner bool) net.Listener {
	return &chanListener{e: e, owner: owner, closed: make(chan struct{})}
}

type chanListener struct {
	e      *early
	owner  bool
	closed chan struct{}
	once   sync.Once
}

var errListenerClosed = errors.New("listener closed")

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c, ok := <-l.e.conns:
		if !ok {
			return nil, l.e.err
		}
		return c, nil
	case <-l.closed:
		return nil, errListenerClosed
	}
}

func (l *chanListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.closed)
		if l.owner {
			err = l.e.ln.Close()
		}
	})
	return err
}

func (l *chanListener) Addr() net.Addr { return l.e.ln.Addr() }
