package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// Inspection is what can be said about an arbitrary token string, valid or
// not: its decoded header and claims, whether the signature verifies with
// this server's key, and whether it would be accepted.
type Inspection struct {
	Header map[string]any `json:"header,omitempty"`
	Claims map[string]any `json:"claims,omitempty"`
	// Decodable is false when the string is not a JWT at all.
	Decodable bool `json:"decodable"`
	// SignatureValid reports whether the signature verifies with one of
	// this server's keys, in that key's algorithm.
	SignatureValid bool `json:"signature_valid"`
	// SignedBy names that key; nil unless SignatureValid.
	SignedBy *KeyInfo `json:"signed_by,omitempty"`
	// Valid reports whether this server would accept the token.
	Valid bool `json:"valid"`
	// Reason explains why the token is not valid; empty when valid.
	Reason  string `json:"reason,omitempty"`
	Expired bool   `json:"expired"`
	// JTI is the token's id: its jti claim, or for a legacy issuer's
	// token without one, LegacyJTI.
	JTI string `json:"jti,omitempty"`
	// Revoked reports whether the token's jti is in the revocation set.
	Revoked   bool       `json:"revoked"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// TimeLeft is a human-readable remaining lifetime ("never" when the
	// token has no exp, "expired" once past).
	TimeLeft string `json:"time_left,omitempty"`
	// Claims as verified, when Valid.
	Verified *Claims `json:"-"`
}

// Inspect decodes any string without trusting it and reports on it. It
// never panics and never returns the token itself.
func (v *Verifier) Inspect(token string) Inspection {
	var in Inspection
	token = strings.TrimSpace(token)
	if len(token) > MaxTokenLen {
		in.Reason = "token is larger than 8 KiB"
		return in
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		in.Reason = "not a JWT: a JWT has three dot-separated parts"
		return in
	}
	if err := decodePart(parts[0], &in.Header); err != nil {
		in.Reason = "header is not base64url-encoded JSON"
		return in
	}
	if err := decodePart(parts[1], &in.Claims); err != nil {
		in.Reason = "payload is not base64url-encoded JSON"
		return in
	}
	in.Decodable = true

	// Signature alone: the key's algorithm, no claim checks.
	if in.SignedBy = v.signedBy(token); in.SignedBy != nil {
		in.SignatureValid = true
	}
	if exp, ok := in.Claims["exp"].(float64); ok {
		t := time.Unix(int64(exp), 0).UTC()
		in.ExpiresAt = &t
		left := t.Sub(v.cfg.Now())
		switch {
		case left <= -v.cfg.Leeway:
			in.Expired = true
			in.TimeLeft = "expired " + roundDuration(-left).String() + " ago"
		case left <= 0:
			in.TimeLeft = "expired " + roundDuration(-left).String() + " ago, still accepted within the " + v.cfg.Leeway.String() + " leeway"
		default:
			in.TimeLeft = roundDuration(left).String()
		}
	} else if _, has := in.Claims["exp"]; !has {
		in.TimeLeft = "never"
	}
	in.JTI, _ = in.Claims["jti"].(string)
	if iss, _ := in.Claims["iss"].(string); in.JTI == "" && in.SignatureValid && slices.Contains(v.cfg.LegacyIssuers, iss) {
		in.JTI = LegacyJTI(token)
	}
	if in.JTI != "" && v.cfg.Revoked != nil && v.cfg.Revoked.IsRevoked(in.JTI) {
		in.Revoked = true
	}
	claims, err := v.Verify(token)
	if err != nil {
		in.Reason = Message(err)
		return in
	}
	in.Valid = true
	in.Verified = claims
	return in
}

func decodePart(seg string, into *map[string]any) error {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if m == nil {
		return errors.New("not an object")
	}
	*into = m
	return nil
}

func roundDuration(d time.Duration) time.Duration {
	if d > time.Hour {
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}
