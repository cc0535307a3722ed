// Package auth owns everything about mcpauth's tokens: the claims they
// carry, the expiry syntax operators type ("90d", "24h", "never"), minting
// (Issuer), verification with the key a token's kid names, in that key's
// algorithm (Verifier; the keys themselves are in auth/keys), the identity
// carried through a request's context, and the Bearer token a request
// carries (BearerToken). The HTTP edge in front of it (the Bearer
// middleware, the 401/403/429/503 answers, the failure throttle) is
// package auth/bearer.
//
// It never logs, returns or formats a token or secret in an error: errors
// name the problem (ErrTokenExpired), never the material. Message chooses
// the words a client reads for an error ("Token has expired").
package auth
