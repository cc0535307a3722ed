// Package keys holds mcpauth's signing keys: a Key (its kid, algorithm,
// signing material and public half), a Set (the key that signs and the
// keys that still verify, found by kid), the JWKS document of the public
// keys, key generation and PEM loading.
//
// The algorithm belongs to the key, never to a token: a Set answers
// "which key is this kid", and the verifier refuses a token whose alg is
// not that key's. HMAC secrets never appear in the JWKS, and no private
// part of any key does.
//
// Kids are RFC 7638 JWK thumbprints (SHA-256) for asymmetric keys, so the
// same key always has the same kid on every replica; for the HS256 secret
// the kid is a one-way hash of the secret with a domain-separation prefix
// (HMACKeyID), safe to publish in token headers.
package keys
