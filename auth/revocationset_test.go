package auth

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/internal/tokentest"
)

func TestRevocationSet(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := NewRevocationSet()
	if s.IsRevoked("a") || s.Len() != 0 {
		t.Fatal("a new set is not empty")
	}
	v0 := s.Version()
	s.Add(map[string]time.Time{"a": now.Add(time.Hour), "b": now.Add(-time.Hour), "never": {}})
	if !s.IsRevoked("a") || !s.IsRevoked("b") || !s.IsRevoked("never") || s.IsRevoked("c") {
		t.Fatal("Add did not mark exactly the given ids")
	}
	if s.Version() == v0 {
		t.Error("Add did not change the version")
	}

	// Prune keeps tokens expired within the leeway (still accepted as
	// unexpired by the verifier) and never-expiring ones.
	s.Add(map[string]time.Time{"edge": now.Add(-10 * time.Second)})
	s.Prune(now, 30*time.Second)
	for id, want := range map[string]bool{"a": true, "b": false, "never": true, "edge": true} {
		if s.IsRevoked(id) != want {
			t.Errorf("after Prune IsRevoked(%q) = %v, want %v", id, !want, want)
		}
	}

	// Replace swaps the whole set; an identical snapshot changes nothing.
	s.Replace(map[string]time.Time{"x": {}})
	if s.IsRevoked("a") || !s.IsRevoked("x") || s.Len() != 1 {
		t.Fatal("Replace did not swap the set")
	}
	v := s.Version()
	s.Replace(map[string]time.Time{"x": {}})
	if s.Version() != v {
		t.Error("an identical snapshot bumped the version")
	}
}

func TestRevocationSetIsSafeForConcurrentUse(t *testing.T) {
	s := NewRevocationSet()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				s.Add(map[string]time.Time{string(rune('a'+i)) + string(rune(j)): {}})
			}
		}(i)
		go func() {
			defer wg.Done()
			for j := 0; j < 2000; j++ {
				_ = s.IsRevoked("a")
			}
		}()
	}
	wg.Wait()
	if s.Len() != 8*200 {
		t.Fatalf("Len = %d, want %d", s.Len(), 8*200)
	}
}

func TestVerifierRefusesRevokedTokens(t *testing.T) {
	set := NewRevocationSet()
	v := newTestVerifier(t, func(c *VerifierConfig) { c.Revoked = set })
	tok := tokentest.HS256(t, tokentest.BaseClaims())
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	set.Add(map[string]time.Time{tokentest.JTI: tokentest.T0.Add(time.Hour)})
	if _, err := v.Verify(tok); err != ErrTokenRevoked {
		t.Fatalf("after revocation: %v, want ErrTokenRevoked", err)
	}
	if in := v.Inspect(tok); in.Valid || !in.Revoked || in.Reason != "Token has been revoked" {
		t.Fatalf("Inspect = %+v", in)
	}
	// Another token is unaffected.
	other := tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["jti"] = "another" }))
	if _, err := v.Verify(other); err != nil {
		t.Fatalf("unrevoked token: %v", err)
	}
}

// Rule: with a revocation age bound, a verifier refuses every token with
// ErrRevocationStale once its set has not matched the registry for longer
// than the bound (cached tokens too), and accepts again once the set is
// marked synced; without a bound the set's age never matters.
func TestVerifierFailsClosedOnAStaleRevocationSet(t *testing.T) {
	tok := tokentest.Sign(t, jwt.SigningMethodHS256, tokentest.BaseClaims(), tokentest.Secret)
	for _, tc := range []struct {
		name     string
		maxAge   time.Duration
		syncedAt time.Time
		want     error
	}{
		{"fresh", time.Second, tokentest.T0, nil},
		{"at the bound", time.Second, tokentest.T0.Add(-time.Second), nil},
		{"past the bound", time.Second, tokentest.T0.Add(-time.Second - time.Millisecond), ErrRevocationStale},
		{"never synced", time.Second, time.Time{}, ErrRevocationStale},
		{"no bound", 0, tokentest.T0.Add(-24 * time.Hour), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := NewRevocationSet()
			if !tc.syncedAt.IsZero() {
				set.MarkSynced(tc.syncedAt)
			}
			v, err := NewVerifier(VerifierConfig{Secret: tokentest.Secret, Issuer: tokentest.Issuer, Now: fixedClock(tokentest.T0), Revoked: set, RevocationMaxAge: tc.maxAge})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second call is served from the cache
				if _, err := v.Verify(tok); !errors.Is(err, tc.want) && (err != nil || tc.want != nil) {
					t.Fatalf("Verify = %v, want %v", err, tc.want)
				}
			}
			set.MarkSynced(tokentest.T0)
			if _, err := v.Verify(tok); err != nil {
				t.Fatalf("after a resync: %v", err)
			}
		})
	}
	if _, err := NewVerifier(VerifierConfig{Secret: tokentest.Secret, Issuer: tokentest.Issuer, Revoked: fakeChecker{}, RevocationMaxAge: time.Second}); err == nil {
		t.Fatal("an age bound was accepted with a set that cannot tell its age")
	}
}

type fakeChecker struct{}

func (fakeChecker) IsRevoked(string) bool { return false }
