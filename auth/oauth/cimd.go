package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcpauth/mcpauth/auth/registry"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// Client ID Metadata Documents: a client_id that is an https URL names a
// JSON document the client publishes about itself. Fetching it is an
// outbound request chosen by a stranger, so it is fenced: https only,
// public addresses only (checked on the connected IP, after DNS, on every
// redirect), at most 3 redirects, 64 KiB and 5 s. Documents are cached in
// the registry for their Cache-Control max-age (5 min to 24 h).

const (
	kindCIMD     = "oauth.cimd"
	cimdMaxBytes = 64 << 10
	cimdTimeout  = 5 * time.Second
)

// isMetadataURL reports whether a client_id is a metadata document URL.
func isMetadataURL(clientID string) bool {
	return strings.HasPrefix(clientID, "https://") || strings.HasPrefix(clientID, "http://")
}

// errBlockedAddress reports a fetch refused by the address fence.
var errBlockedAddress = errors.New("the metadata document's address is not public")

// publicOnly is a net.Dialer Control that refuses private, loopback,
// link-local, multicast and unspecified addresses at connect time, so
// DNS answers and redirects cannot point the fetch inside the network.
func publicOnly(allowLoopback bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return errBlockedAddress
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return errBlockedAddress
		}
		if allowLoopback && ip.Unmap().IsLoopback() {
			return nil
		}
		// IPv6 forms that embed an IPv4 address are refused whole, the
		// IPv4-mapped one included (checked before unmapping): which
		// host they reach depends on the stack, not on this check.
		if isEmbeddingOrReserved(ip) {
			return errBlockedAddress
		}
		ip = ip.Unmap()
		if !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() ||
			ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() ||
			isEmbeddingOrReserved(ip) {
			return errBlockedAddress
		}
		return nil
	}
}

// fencedPrefixes are the ranges Go's helpers do not cover: "this network"
// 0.0.0.0/8, CGNAT 100.64.0.0/10, IETF 192.0.0.0/24, benchmarking
// 198.18.0.0/15, IPv4 reserved 240.0.0.0/4; and the IPv6 forms that embed
// IPv4 or tunnel elsewhere: IPv4-compatible ::/96, IPv4-mapped
// ::ffff:0:0/96, SIIT ::ffff:0:0:0/96, NAT64 64:ff9b::/96 and
// 64:ff9b:1::/48, Teredo 2001::/32, documentation 2001:db8::/32, 6to4
// 2002::/16.
var fencedPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{
		"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4",
		"::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48",
		"2001::/32", "2001:db8::/32", "2002::/16",
	} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

// isEmbeddingOrReserved reports an address in one of fencedPrefixes.
func isEmbeddingOrReserved(ip netip.Addr) bool {
	for _, p := range fencedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (s *Server) metadataClient() *http.Client {
	dialer := &net.Dialer{Timeout: cimdTimeout, Control: publicOnly(s.cfg.AllowLoopbackMetadata)}
	tr := &http.Transport{
		DialContext:            dialer.DialContext,
		Proxy:                  nil, // never through a proxy: the fence must see the real address
		TLSHandshakeTimeout:    cimdTimeout,
		ResponseHeaderTimeout:  cimdTimeout,
		MaxResponseHeaderBytes: 16 << 10,
		DisableKeepAlives:      true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   cimdTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if err := s.checkMetadataURL(req.URL); err != nil {
				return err
			}
			return nil
		},
	}
}

func (s *Server) checkMetadataURL(u *url.URL) error {
	if u.Scheme == "https" || (u.Scheme == "http" && s.cfg.AllowLoopbackMetadata) {
		if u.User != nil || u.Fragment != "" || u.Host == "" {
			return errors.New("a client id URL has a host and no user info or fragment")
		}
		return nil
	}
	return errors.New("a client id URL must be https")
}

// metadataDocument fetches (or reads from cache) and checks the client's
// metadata document.
func (s *Server) metadataDocument(ctx context.Context, clientID string) (Client, error) {
	if st, err := s.cfg.Store.GetState(ctx, kindCIMD, clientID, s.cfg.Now()); err == nil {
		var c Client
		if json.Unmarshal(st.Value, &c) == nil {
			return c, nil
		}
	}
	u, err := url.Parse(clientID)
	if err != nil || u.Path == "" || u.Path == "/" {
		return Client{}, errors.New("a client id URL must have a path")
	}
	if err := s.checkMetadataURL(u); err != nil {
		return Client{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cimdTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, clientID, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := s.metadataClient().Do(req)
	if err != nil {
		if errors.Is(err, errBlockedAddress) {
			return Client{}, errBlockedAddress
		}
		return Client{}, fmt.Errorf("cannot fetch the client's metadata document: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Client{}, fmt.Errorf("the client's metadata document answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, cimdMaxBytes+1))
	if err != nil || len(body) > cimdMaxBytes {
		return Client{}, errors.New("the client's metadata document is unreadable or larger than 64 KiB")
	}
	var c Client
	if err := json.Unmarshal(body, &c); err != nil {
		return Client{}, errors.New("the client's metadata document is not JSON")
	}
	if c.ClientID != clientID {
		return Client{}, errors.New("the metadata document's client_id does not match its URL")
	}
	c.ClientIDIssuedAt = 0 // not ours to stamp
	c.ClientName = untrusted.Text(c.ClientName, maxClientName)
	fillClientDefaults(&c)
	if err := s.checkClient(c); err != nil {
		return Client{}, fmt.Errorf("the client's metadata document: %w", err)
	}
	val, _ := json.Marshal(c)
	_, _ = s.cfg.Store.ConsumeState(ctx, kindCIMD, clientID, s.cfg.Now()) // replace a stale entry
	// The cache is bounded like registrations: any URL makes a document
	// (a query string makes endless ones). When full, the document is
	// used for this sign-in and fetched again for the next.
	if n, err := s.cfg.Store.CountState(ctx, kindCIMD, s.cfg.Now()); err == nil && n < s.cfg.MaxClients {
		_ = s.cfg.Store.PutState(ctx, registry.State{Kind: kindCIMD, Key: clientID, Value: val, ExpiresAt: s.cfg.Now().Add(cacheFor(resp.Header))})
	}
	return c, nil
}

// cacheFor reads Cache-Control max-age, bounded to 5 minutes..24 hours;
// no-store/no-cache still caches for the minimum (one sign-in's length).
func cacheFor(h http.Header) time.Duration {
	const minAge, maxAge = 5 * time.Minute, 24 * time.Hour
	d := minAge
	for _, part := range strings.Split(h.Get("Cache-Control"), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		if strings.EqualFold(k, "max-age") {
			if n, err := strconv.Atoi(v); err == nil {
				d = time.Duration(n) * time.Second
			}
		}
	}
	return min(max(d, minAge), maxAge)
}
