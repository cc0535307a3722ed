package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseExpiryAccepts(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name string
		in   string
		want Expiry
	}{
		{"days are 24 hours", "30d", Expiry{Duration: 30 * day}},
		{"hours", "24h", Expiry{Duration: 24 * time.Hour}},
		{"minutes", "15m", Expiry{Duration: 15 * time.Minute}},
		{"seconds", "30s", Expiry{Duration: 30 * time.Second}},
		{"one second is the shortest lifetime", "1s", Expiry{Duration: time.Second}},
		{"100 years (36500d) is the longest lifetime", "36500d", Expiry{Duration: 36500 * day}},
		{"never means no expiry and zero duration", "never", Expiry{Never: true}},
		{"leading zeros are still a positive whole number", "007m", Expiry{Duration: 7 * time.Minute}},
		{"large second counts within 100 years", "3153600000s", Expiry{Duration: 3153600000 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseExpiry(tc.in)
			if err != nil {
				t.Fatalf("ParseExpiry(%q) error: %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("ParseExpiry(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseExpiryRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty string is refused", ""},
		{"zero days is refused", "0d"},
		{"zero seconds is refused", "0s"},
		{"negative value is refused", "-1d"},
		{"fractional value is refused", "1.5d"},
		{"non-numeric value is refused", "abc"},
		{"number without unit is refused", "10"},
		{"unknown unit w is refused", "10w"},
		{"unit alone is refused", "d"},
		{"upper-case unit is refused", "30D"},
		{"upper-case never is refused", "Never"},
		{"more than 100 years of days is refused", "36501d"},
		{"overflowing day count is refused", "999999999d"},
		{"max int64 seconds is refused", "9223372036854775807s"},
		{"int64 overflow digits are refused", "99999999999999999999s"},
		{"leading space is refused", " 30d"},
		{"trailing space is refused", "30d "},
		{"space before the unit is refused", "30 d"},
		{"explicit plus sign is refused", "+5d"},
		{"hex number is refused", "0x10d"},
		{"exponent notation is refused", "1e3s"},
		{"underscore digit separator is refused", "1_000s"},
		{"go duration syntax is refused", "1h30m"},
		{"non-ASCII digits are refused", "٣d"},
		{"33 characters is too long even if numeric", strings.Repeat("0", 31) + "1d"},
		{"very long string is refused", strings.Repeat("9", 10000) + "d"},
		{"very long never-like string is refused", strings.Repeat("never", 1000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseExpiry(tc.in)
			if !errors.Is(err, ErrInvalidExpiry) {
				t.Fatalf("ParseExpiry(%q) = %+v, %v; want ErrInvalidExpiry", tc.in, got, err)
			}
			if got != (Expiry{}) {
				t.Fatalf("ParseExpiry(%q) returned non-zero Expiry %+v with an error", tc.in, got)
			}
			if len(err.Error()) > 400 {
				t.Fatalf("error message for %d-byte input is %d bytes long: input echoed unbounded", len(tc.in), len(err.Error()))
			}
		})
	}
}

func TestExpiryString(t *testing.T) {
	tests := []struct {
		name string
		in   Expiry
		want string
	}{
		{"never renders as never", Expiry{Never: true}, "never"},
		{"whole days render in days", Expiry{Duration: 30 * 24 * time.Hour}, "30d"},
		{"24 hours renders as 1d", Expiry{Duration: 24 * time.Hour}, "1d"},
		{"whole hours render in hours", Expiry{Duration: 25 * time.Hour}, "25h"},
		{"60 minutes renders as 1h", Expiry{Duration: 60 * time.Minute}, "1h"},
		{"whole minutes render in minutes", Expiry{Duration: 90 * time.Minute}, "90m"},
		{"seconds render in seconds", Expiry{Duration: 90 * time.Second}, "90s"},
		{"never wins over a duration", Expiry{Never: true, Duration: time.Hour}, "never"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.String(); got != tc.want {
				t.Fatalf("%+v.String() = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestExpiryStringRoundTrips(t *testing.T) {
	for _, in := range []string{"30d", "24h", "15m", "30s", "never", "1s", "36500d", "25h", "90m", "61s", "3600s", "1440m"} {
		t.Run("parse(String(parse("+in+"))) is the same expiry", func(t *testing.T) {
			e, err := ParseExpiry(in)
			if err != nil {
				t.Fatalf("ParseExpiry(%q): %v", in, err)
			}
			again, err := ParseExpiry(e.String())
			if err != nil {
				t.Fatalf("ParseExpiry(%q) (from String of %q): %v", e.String(), in, err)
			}
			if again != e {
				t.Fatalf("round trip of %q: %+v -> %q -> %+v", in, e, e.String(), again)
			}
		})
	}
}
