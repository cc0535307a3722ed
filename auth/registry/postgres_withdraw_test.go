package registry

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// muteProxy forwards TCP both ways to target, except that while muted it
// swallows what the server sends: a statement reaches PostgreSQL and
// commits, but its answer never reaches the client.
type muteProxy struct {
	ln    net.Listener
	muted atomic.Bool
}

func startMuteProxy(t *testing.T, target string) *muteProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &muteProxy{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := up.Read(buf)
					if n > 0 && !p.muted.Load() {
						if _, werr := c.Write(buf[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				c.Close()
			}()
		}
	}()
	return p
}

// Rule: a Record whose outcome is unknown (the INSERT reached PostgreSQL
// and committed, but its answer was lost) returns an error and withdraws
// the token: it does not stay recorded as issued, since no caller ever
// received it. A refusal the server answered (a duplicate jti) deletes
// nothing.
func TestPostgresRecordWithAnUnknownOutcomeIsWithdrawn(t *testing.T) {
	_, dbURL := newPostgresSchema(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startMuteProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	s := openPostgres(t, u.String())
	direct := openPostgres(t, dbURL)
	// One connection whose statement cache knows the INSERT, so the next
	// one goes out whole (bind, execute, sync) without waiting for a
	// reply first.
	s.db.SetMaxOpenConns(1)
	if err := s.Record(context.Background(), tok("warm-up", "c", t0, t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}

	proxy.muted.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err = s.Record(ctx, tok("lost-answer", "c", t0, t0.Add(time.Hour)))
	cancel()
	if err == nil {
		t.Fatal("Record returned nil although its answer never arrived")
	}
	proxy.muted.Store(false)
	s.db.SetMaxOpenConns(10)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, gerr := direct.Get(context.Background(), "lost-answer")
		if errors.Is(gerr, ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a token whose mint failed is still recorded (Get: %v)", gerr)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A duplicate jti is an answer from the server: the first record stays.
	if err := s.Record(context.Background(), tok("first", "c", t0, t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(context.Background(), tok("first", "d", t0, t0.Add(time.Hour))); err == nil {
		t.Fatal("a duplicate jti was recorded")
	}
	if got, err := direct.Get(context.Background(), "first"); err != nil || got.ClientID != "c" {
		t.Fatalf("the first record of a duplicate jti: %+v, %v", got, err)
	}
	if n := len(s.withdrawals); n != 0 {
		t.Fatalf("%d withdrawals queued by a refusal the server answered", n)
	}
}
