package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

// A refused body is described in JSON-RPC terms: the words of the tool
// argument decoder ("arguments must be a JSON object") belong to tool
// arguments only.
func TestCheckJSONRPCNamesWhatIsWrongWithTheBody(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`42`, "invalid JSON-RPC message: not a JSON object"},
		{`"ping"`, "invalid JSON-RPC message: not a JSON object"},
		{`null`, "invalid JSON-RPC message: not a JSON object"},
		{`{"jsonrpc":"2.0","id":1,"ID":2,"method":"ping"}`, `invalid JSON-RPC message: member "ID" is given more than once`},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","NAME":"b"}}`, `invalid params: member "NAME" is given more than once`},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1,"x":2}}}`, `invalid arguments: argument "x" is given more than once`},
		{`{"jsonrpc":"2.0","id":1,"method":"ping"`, "the body is not valid JSON"},
	} {
		_, err := checkJSONRPC([]byte(tc.body))
		if err == nil || err.Error() != tc.want {
			t.Errorf("checkJSONRPC(%s) = %v, want %q", tc.body, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "arguments must be") {
			t.Errorf("checkJSONRPC(%s) speaks of tool arguments: %v", tc.body, err)
		}
	}
}

// checkJSONRPCReference is checkJSONRPC as it was before it read the body
// in one pass (json.Valid, strictjson.Keys per object, json.Unmarshal for
// the values): the fuzz target holds the one-pass reader to it.
func checkJSONRPCReference(body []byte) (rpcMessage, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		return rpcMessage{}, errors.New("JSON-RPC batch requests are not supported; send one message per request")
	}
	if !json.Valid(trimmed) {
		return rpcMessage{}, errors.New("the body is not valid JSON")
	}
	keys, err := memberNames(trimmed, "JSON-RPC message", "member")
	if err != nil {
		return rpcMessage{}, err
	}
	if err := canonical(keys, jsonrpcMembers); err != nil {
		return rpcMessage{}, err
	}
	var msg struct {
		Method json.RawMessage `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	_ = json.Unmarshal(trimmed, &msg)
	var out rpcMessage
	_ = json.Unmarshal(msg.Method, &out.method)
	p := bytes.TrimSpace(msg.Params)
	if len(p) == 0 || p[0] != '{' {
		return out, nil
	}
	pkeys, err := memberNames(p, "params", "member")
	if err != nil {
		return rpcMessage{}, err
	}
	if err := canonical(pkeys, paramsMembers); err != nil {
		return rpcMessage{}, err
	}
	var params struct {
		Name      json.RawMessage `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	_ = json.Unmarshal(p, &params)
	if out.method == "tools/call" {
		_ = json.Unmarshal(params.Name, &out.tool)
	}
	if a := bytes.TrimSpace(params.Arguments); len(a) > 0 && a[0] == '{' {
		if _, err := memberNames(a, "arguments", "argument"); err != nil {
			return rpcMessage{}, err
		}
	}
	return out, nil
}

// FuzzCheckJSONRPC: the one-pass checkJSONRPC accepts and refuses exactly
// what the reference does, with the same error, method and tool; and its
// validation is json.Valid's. The seeds run with every go test; to fuzz
// longer:
//
//	go test ./transport -run '^$' -fuzz '^FuzzCheckJSONRPC$' -fuzztime 5m
func FuzzCheckJSONRPC(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		` {"jsonrpc":"2.0","id":1,"method":"ping"} `, "\v{\"method\":\"ping\"}\u00a0",
		`[{"jsonrpc":"2.0"}]`, `[`, ``, ` `, `42`, `"ping"`, `null`, `true`, `-0.5e+3`, `01`, `1.`, `1e`, `-`, `tru`, `nul`, `{"a":truex}`,
		`{"jsonrpc":"2.0","id":1,"ID":2,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":1,"Method":"ping"}`, `{"jsonrpc":"2.0","id":1,"paramſ":{}}`,
		`{"jsonrpc":"2.0","id":1,"m\u0065thod":"tools/call","p\u0061rams":{"n\u0061me":"who\u0061mi"}}`,
		`{"method":"tools/call","params":{"name":"a","NAME":"b"}}`,
		`{"method":"tools/call","params":{"name":"a","arguments":{"x":1,"x":2}}}`,
		`{"method":"tools/call","params":{"name":"a","arguments":{"x":1,"X":2}},"id":[1,}`,
		`{"method":"tools/call","params":{"name":"a","Arguments":{}}}`,
		`{"method":"tools/call","params":{"name":5,"arguments":[1,2]}}`,
		`{"method":"tools/call","params":[1,{"name":"x"}]}`, `{"method":7,"params":null}`,
		`{"method":"tools/call","params":{"name":"\ud800","arguments":{"\u00ff":1,"\u00c3\u00bf":2}}}`,
		"{\"method\":\"tools/call\",\"params\":{\"name\":\"\xff\xfe\"}}", "{\"\xff\":1,\"\xfe\":2}",
		`{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"` + "\x01" + `"}`, `{"a":1,}`, `{"a" 1}`, `{"a":[1,]}`, `{"a":{"b":1}]}`,
		`{"method":"tools/call","params":{"name":"whoami","arguments":{"k":[[[{"x":1,"x":2}]]]}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":1},"task":{}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"ping"} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := checkJSONRPC(body)
		want, werr := checkJSONRPCReference(body)
		if fmt.Sprint(err) != fmt.Sprint(werr) || got != want {
			t.Fatalf("checkJSONRPC(%q) = %+v, %v; the reference gives %+v, %v", body, got, err, want, werr)
		}
		var sc rpcScan
		trimmed := bytes.TrimSpace(body)
		if sc.valid(trimmed) != json.Valid(trimmed) {
			t.Fatalf("rpcScan.valid(%q) = %v, json.Valid says %v", trimmed, !json.Valid(trimmed), json.Valid(trimmed))
		}
	})
}

// The one-pass reader refuses what json.Valid refuses for depth: 10,000
// nested arrays or objects are JSON, 10,001 are not.
func TestCheckJSONRPCNestingDepth(t *testing.T) {
	for _, open := range []string{"[", `{"a":`} {
		for _, depth := range []int{maxNestingDepth - 1, maxNestingDepth} {
			inner := strings.Repeat(open, depth) + "1" + strings.Repeat(map[string]string{"[": "]", `{"a":`: "}"}[open], depth)
			body := []byte(`{"method":"tools/call","params":{"name":"x","arguments":{"deep":` + inner + `}}}`)
			_, err := checkJSONRPC(body)
			_, werr := checkJSONRPCReference(body)
			if fmt.Sprint(err) != fmt.Sprint(werr) {
				t.Errorf("depth %d of %q: %v, the reference gives %v", depth, open, err, werr)
			}
		}
	}
}

// One tools/call is checked without allocating beyond the tool's name.
func TestCheckJSONRPCAllocations(t *testing.T) {
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`)
	if n := testing.AllocsPerRun(100, func() { _, _ = checkJSONRPC(body) }); n > 1 {
		t.Errorf("checkJSONRPC allocates %v times per tools/call", n)
	}
}

func BenchmarkCheckJSONRPC(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = checkJSONRPC(body)
	}
}

func BenchmarkCheckJSONRPCReference(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = checkJSONRPCReference(body)
	}
}

// readBody reads what io.ReadAll reads, whatever Content-Length says, and
// passes on the body limit's error.
func TestReadBodyIsReadAll(t *testing.T) {
	body := strings.Repeat(`{"jsonrpc":"2.0"}`, 100)
	for _, cl := range []int64{-1, 0, 1, 17, int64(len(body)) - 1, int64(len(body)), int64(len(body)) + 1, 5000, maxBodyBytes + 1} {
		r := httptest.NewRequest(http.MethodPost, "/mcp", iotest.OneByteReader(strings.NewReader(body)))
		r.ContentLength = cl
		got, err := readBody(r)
		if err != nil || string(got) != body {
			t.Errorf("Content-Length %d: %d bytes, %v; want the %d bytes", cl, len(got), err, len(body))
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 100)
	var tooBig *http.MaxBytesError
	if _, err := readBody(r); !errors.As(err, &tooBig) {
		t.Errorf("over the limit: %v, want *http.MaxBytesError", err)
	}
}
