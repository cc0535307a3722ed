package idp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// fetcher gets provider documents: only the URLs it is given (https, or
// loopback http in development, redirects held to the same rule), within
// a time and size bound.
type fetcher struct {
	client   *http.Client
	maxBytes int64
	timeout  time.Duration
	loopback bool
}

func newFetcher(o Options) *fetcher {
	f := &fetcher{maxBytes: o.MaxResponseBytes, timeout: o.Timeout, loopback: o.AllowLoopbackHTTP}
	c := *o.Client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("too many redirects")
		}
		return checkURL(req.URL.String(), f.loopback)
	}
	f.client = &c
	return f
}

// errTooLarge refuses a document over the size bound.
var errTooLarge = errors.New("response is larger than the limit")

// get fetches a JSON document and how long it may be cached (zero when
// the response does not say).
func (f *fetcher) get(ctx context.Context, url string) ([]byte, time.Duration, error) {
	if err := checkURL(url, f.loopback); err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "" && mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil, 0, fmt.Errorf("GET %s: content type %q is not JSON", url, mt)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", url, err)
	}
	if int64(len(b)) > f.maxBytes {
		return nil, 0, fmt.Errorf("GET %s: %w (%d bytes)", url, errTooLarge, f.maxBytes)
	}
	return b, maxAge(resp.Header.Get("Cache-Control")), nil
}

// maxAge reads max-age from a Cache-Control header: zero when absent, the
// shortest possible (then raised to the minimum refresh interval) when
// the response must not be reused (no-store, no-cache).
func maxAge(cc string) time.Duration {
	var age time.Duration
	for _, d := range strings.Split(cc, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(strings.ToLower(d)), "=")
		switch k {
		case "no-store", "no-cache":
			return time.Nanosecond
		case "max-age":
			if n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64); err == nil && n > 0 {
				age = time.Duration(min(n, 1<<31)) * time.Second
			}
		}
	}
	return age
}
