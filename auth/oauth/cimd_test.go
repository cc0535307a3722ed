package oauth

import (
	"net/http"
	"testing"
	"time"
)

func TestMetadataFetchFenceRefusesNonPublicAddresses(t *testing.T) {
	fence := publicOnly(false)
	cases := map[string]bool{ // address -> allowed
		"93.184.216.34:443":      true,
		"[2606:4700::1111]:443":  true,
		"127.0.0.1:443":          false,
		"[::1]:443":              false,
		"10.1.2.3:443":           false,
		"172.16.0.1:443":         false,
		"192.168.1.1:443":        false,
		"169.254.169.254:80":     false, // cloud metadata
		"[fe80::1]:443":          false,
		"100.64.0.1:443":         false,
		"0.0.0.0:443":            false,
		"[::ffff:127.0.0.1]:443": false,
		"[::ffff:10.0.0.1]:443":  false,
		"224.0.0.1:443":          false,
		"198.18.0.1:443":         false,
		"[64:ff9b::a00:1]:443":   false,
		"[fc00::1]:443":          false,
		"not-an-ip:443":          false,
		// IPv4-compatible (::/96), IPv4-mapped (::ffff:0:0/96, even of a
		// public address), SIIT (::ffff:0:0:0/96), Teredo (2001::/32) and
		// "this network" (0.0.0.0/8) forms are refused as well.
		"[::a00:1]:443":               false,
		"[::5db8:d822]:443":           false,
		"[::ffff:93.184.216.34]:443":  false,
		"[::ffff:0:5db8:d822]:443":    false,
		"[2001:0:4136:e378::1]:443":   false,
		"[2001:0:5db8:d822::1]:443":   false,
		"0.1.2.3:443":                 false,
		"0.255.255.255:443":           false,
		"[2001:db8::1]:443":           false,
		"[2001:4860:4860::8888]:443":  true,
		"[2a00:1450:4001:82b::e]:443": true,
	}
	for addr, want := range cases {
		err := fence("tcp", addr, nil)
		if (err == nil) != want {
			t.Errorf("%s: allowed=%v, want %v", addr, err == nil, want)
		}
	}
	if err := publicOnly(true)("tcp", "127.0.0.1:8080", nil); err != nil {
		t.Errorf("loopback with the development flag: %v", err)
	}
	if err := publicOnly(true)("tcp", "10.0.0.1:8080", nil); err == nil {
		t.Error("the development flag opened private ranges too")
	}
}

func TestMetadataCacheLifetime(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"":                     5 * time.Minute,
		"max-age=60":           5 * time.Minute,
		"public, max-age=3600": time.Hour,
		"max-age=999999":       24 * time.Hour,
		"no-store":             5 * time.Minute,
		"max-age=nonsense":     5 * time.Minute,
	} {
		h := http.Header{}
		h.Set("Cache-Control", cc)
		if got := cacheFor(h); got != want {
			t.Errorf("Cache-Control %q: %v, want %v", cc, got, want)
		}
	}
}
