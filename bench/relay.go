package main

// The gateway benchmark's floors: the bench binary re-executes itself as
// `bench relay tcp -addr A -to URL` (a byte-level TCP relay: every
// accepted connection is copied both ways to the upstream, nothing
// parsed) or `bench relay http -addr A -to URL` (net/http's
// httputil.ReverseProxy: HTTP parsed and forwarded, nothing checked).
// Placed where mcpauth runs, they show what any gateway in a process of
// its own costs before it does any work of its own: the first is the
// least a relay can do, the second the least an HTTP-aware one (which an
// auth gateway must be, to read the Authorization header) can.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func serveRelay(mode string, args []string) error {
	fs := flag.NewFlagSet("relay "+mode, flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	to := fs.String("to", "", "the upstream's base URL (http://host:port)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	up, err := url.Parse(*to)
	if err != nil || up.Host == "" {
		return fmt.Errorf("-to %q: want the upstream's base URL, http://host:port", *to)
	}
	switch mode {
	case "tcp":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return relayTCP(ctx, *addr, up.Host)
	case "http":
		return serveUntilStopped(*addr, reverseProxy(up), 5*time.Second)
	}
	return fmt.Errorf("unknown mode %q (tcp or http)", mode)
}

// relayTCP copies every connection accepted on addr to a new connection
// to upstream, both ways, until either side closes. io.Copy between two
// TCP connections splices on Linux: the bytes do not pass through the
// process.
func relayTCP(ctx context.Context, addr, upstream string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				return
			}
			defer u.Close()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(u, c)
				_ = u.(*net.TCPConn).CloseWrite()
			}()
			_, _ = io.Copy(c, u)
			_ = c.(*net.TCPConn).CloseWrite()
			wg.Wait()
		}()
	}
}

// reverseProxy is net/http's reverse proxy to upstream, with enough idle
// connections kept for every caller (as mcpauth keeps for its upstreams)
// and responses flushed as they come (SSE).
func reverseProxy(upstream *url.URL) http.Handler {
	p := httputil.NewSingleHostReverseProxy(upstream)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 256
	p.Transport = tr
	p.FlushInterval = -1
	return p
}
