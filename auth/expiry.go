package auth

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidExpiry reports an expiry string that cannot be parsed.
var ErrInvalidExpiry = errors.New("invalid expiry")

// Expiry is a token lifetime as operators write it: "90d", "24h", "15m",
// "30s" or "never". The zero value is not valid; use ParseExpiry.
type Expiry struct {
	// Duration is the lifetime; zero when Never is set.
	Duration time.Duration
	// Never marks a token without an exp claim.
	Never bool
}

// String renders the expiry back in the compact syntax.
func (e Expiry) String() string {
	if e.Never {
		return "never"
	}
	d := e.Duration
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	default:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
}

// maxExpiry bounds what the syntax itself accepts (100 years); the
// configured policy maximum is usually far lower.
const maxExpiry = 100 * 365 * 24 * time.Hour

// ParseExpiry parses "<n>d", "<n>h", "<n>m", "<n>s" (n a positive integer)
// or "never". Zero, negative, fractional, non-numeric and overflowing
// values are refused with a message that says what is accepted.
func ParseExpiry(s string) (Expiry, error) {
	const help = `use <number><unit> with unit d, h, m or s (e.g. "30d", "24h", "15m") or "never"`
	if s == "" {
		return Expiry{}, fmt.Errorf("%w: empty value; %s", ErrInvalidExpiry, help)
	}
	if s == "never" {
		return Expiry{Never: true}, nil
	}
	if len(s) > 32 {
		return Expiry{}, fmt.Errorf("%w: value too long; %s", ErrInvalidExpiry, help)
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'd':
		unit = 24 * time.Hour
	case 'h':
		unit = time.Hour
	case 'm':
		unit = time.Minute
	case 's':
		unit = time.Second
	default:
		return Expiry{}, fmt.Errorf("%w: %q has no valid unit; %s", ErrInvalidExpiry, s, help)
	}
	num := s[:len(s)-1]
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return Expiry{}, fmt.Errorf("%w: %q is not a positive whole number of units; %s", ErrInvalidExpiry, s, help)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/int64(unit) || time.Duration(n)*unit > maxExpiry {
		return Expiry{}, fmt.Errorf("%w: %q is too long; the largest lifetime the syntax accepts is 36500d", ErrInvalidExpiry, s)
	}
	if n == 0 {
		return Expiry{}, fmt.Errorf("%w: %q is zero; a token must live at least 1s", ErrInvalidExpiry, s)
	}
	return Expiry{Duration: time.Duration(n) * unit}, nil
}
