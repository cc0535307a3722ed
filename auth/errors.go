package auth

import (
	"errors"
	"fmt"
)

// Verification errors, tested with errors.Is. Their text is Go's (logs,
// callers of the library); what a client reads is chosen by Message.
var (
	ErrTokenMissing     = errors.New("token missing")
	ErrTokenExpired     = errors.New("token expired")
	ErrTokenNotYetValid = errors.New("token not valid yet")
	ErrTokenInvalid     = errors.New("invalid token")
	ErrTokenRevoked     = errors.New("token revoked")
	// ErrRevocationStale refuses a token this replica cannot check: its
	// revocation list is older than the configured bound (the registry
	// is out of reach). It is the server's state, not the token's fault.
	ErrRevocationStale = errors.New("revocation list stale")
	// ErrIssuerUnavailable refuses a token of a trusted identity provider
	// whose keys this server cannot fetch right now. Like
	// ErrRevocationStale it is the server's state, not the token's fault:
	// clients are told to retry (503), not to sign in again.
	ErrIssuerUnavailable = errors.New("identity provider unreachable")
)

// clientWords are the words a client reads for each verification error,
// those of the token guide and the production setup document.
var clientWords = []struct {
	err   error
	words string
}{
	{ErrTokenMissing, "Authentication required"},
	{ErrTokenExpired, "Token has expired"},
	{ErrTokenNotYetValid, "Token is not valid yet"},
	{ErrTokenRevoked, "Token has been revoked"},
	{ErrRevocationStale, "Revocation list is stale; the server cannot check tokens right now, retry shortly"},
	{ErrIssuerUnavailable, "The token's identity provider cannot be reached to check it; retry shortly"},
	{ErrTokenInvalid, "Invalid token"},
}

// Refuse is the one way a verification error carries its reason: it
// wraps kind (one of the errors above; errors.Is matches it) with a
// reason Message shows the client after kind's words. The reason must
// never contain token material.
func Refuse(kind error, format string, args ...any) error {
	return &refusal{kind: kind, reason: fmt.Sprintf(format, args...)}
}

type refusal struct {
	kind   error
	reason string
}

func (r *refusal) Error() string { return r.kind.Error() + ": " + r.reason }
func (r *refusal) Unwrap() error { return r.kind }

// Message is the text a client is shown for err: for a verification
// error the words of the documents ("Token has expired", "Invalid token:
// <reason>"), for any other error its own text.
func Message(err error) string {
	if err == nil {
		return ""
	}
	var r *refusal
	if errors.As(err, &r) {
		return words(r.kind) + ": " + r.reason
	}
	return words(err)
}

// words are the client's words for the verification error err wraps,
// else err's text.
func words(err error) string {
	for _, w := range clientWords {
		if errors.Is(err, w.err) {
			return w.words
		}
	}
	return err.Error()
}
