package transport

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/bearer"
)

// maxForwardedHops bounds how many X-Forwarded-For entries are read.
const maxForwardedHops = 32

// ParseTrustedProxies parses a list of IP addresses and CIDR prefixes
// ("10.0.0.0/8", "127.0.0.1", "::1") naming the reverse proxies whose
// X-Forwarded-For header is believed.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, raw := range list {
		s := strings.TrimSpace(raw)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP address or CIDR prefix (like 10.0.0.0/8)", s)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an IP address or CIDR prefix (like 10.0.0.0/8)", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// clientAddress records each request's client address in its context
// (auth.WithRemoteAddr), where bearer.ClientAddress, the failure throttles
// and the audit log read it. The address is the TCP peer's, unless the peer
// is a trusted proxy: then X-Forwarded-For is read from the right, past
// trusted proxies, to the first address that is not one. Entries a client
// writes itself sit left of that and are never believed.
func clientAddress(trusted []netip.Prefix, next http.Handler) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := resolveClient(trusted, r.RemoteAddr, r.Header.Values("X-Forwarded-For"))
		next.ServeHTTP(w, r.WithContext(auth.WithRemoteAddr(r.Context(), addr)))
	})
}

// resolveClient is clientAddress's decision for one request.
func resolveClient(trusted []netip.Prefix, remoteAddr string, forwarded []string) string {
	peer := bearer.PeerAddress(remoteAddr)
	cur, err := netip.ParseAddr(peer)
	if err != nil || !isTrusted(trusted, cur) {
		return peer
	}
	cur = cur.Unmap()
	hops := forwardedHops(forwarded)
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			// A trusted proxy does not write garbage: stop at the
			// last address a trusted hop vouched for.
			break
		}
		cur = a
		if !isTrusted(trusted, a) {
			break
		}
	}
	return cur.String()
}

// forwardedHops splits X-Forwarded-For header values into entries, keeping
// at most the maxForwardedHops right-most ones.
func forwardedHops(values []string) []string {
	var hops []string
	for _, v := range values {
		for h := range strings.SplitSeq(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	if len(hops) > maxForwardedHops {
		hops = hops[len(hops)-maxForwardedHops:]
	}
	return hops
}

// parseHop reads one X-Forwarded-For entry: an IP address, optionally with
// a port ("203.0.113.7:4711", "[2001:db8::1]:4711").
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil && a.Zone() == "" {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

func isTrusted(trusted []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
