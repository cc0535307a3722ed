package tools

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/internal/args"
)

// parseArgs decodes a call's arguments strictly (args.Decode).
func parseArgs(req mcp.CallToolRequest, known ...string) (args.Args, error) {
	raw := req.Params.RawArguments
	if len(raw) == 0 {
		if req.Params.Arguments == nil {
			return args.Args{}, nil
		}
		b, err := json.Marshal(req.Params.Arguments)
		if err != nil {
			return nil, fmt.Errorf("arguments are not valid JSON: %w", err)
		}
		raw = b
	}
	return args.Decode(raw, known...)
}

// Page is where a page of a listing starts, out of how many items, and
// where the next one starts (nil on the last).
type Page struct {
	Limit, Offset, Total int
	Next                 *int
}

// pageOption is a listing tool's limit argument: at most maxLimit of
// what it lists (items), default def.
func pageOption(items string, def, maxLimit int) mcp.ToolOption {
	return mcp.WithNumber("limit", mcp.Description(fmt.Sprintf("At most this many %s (1-%d, default %d).", items, maxLimit, def)))
}

// offsetOption is a listing tool's offset argument.
func offsetOption(items string) mcp.ToolOption {
	return mcp.WithNumber("offset", mcp.Description("Skip this many matching "+items+" first (for the next page). Default 0."))
}

// pageArgs reads the optional limit (1..maxLimit, default def) and offset
// arguments of a listing tool.
func pageArgs(a args.Args, def, maxLimit int) (Page, error) {
	limit, err := a.Int("limit", def, 1, maxLimit)
	if err != nil {
		return Page{}, err
	}
	offset, err := a.Int("offset", 0, 0, math.MaxInt32)
	if err != nil {
		return Page{}, err
	}
	return Page{Limit: limit, Offset: offset}, nil
}

// cut returns p's page of items, with p's Total and Next filled in.
func cut[T any](items []T, p Page) ([]T, Page) {
	p.Total = len(items)
	if p.Offset >= len(items) {
		return nil, p
	}
	items = items[p.Offset:]
	if len(items) > p.Limit {
		items = items[:p.Limit]
		next := p.Offset + p.Limit
		p.Next = &next
	}
	return items, p
}
