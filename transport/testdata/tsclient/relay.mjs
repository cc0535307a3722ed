// Gateway relay test client for mcpauth, built on the official MCP
// TypeScript SDK: runs a list of steps against mcpauth and reports what
// happened, so the Go tests can check what the gateway relays.
//
// Usage: MCP_TOKEN=<jwt> STEPS='<json array>' node relay.mjs <url> <sse|streamable|ws>
//
// In ws mode (a ws:// URL; Node 20 needs --experimental-websocket) the
// token travels in each request's params.auth.token, as the WHATWG
// WebSocket cannot set headers (see ws.mjs).
//
// The client declares sampling, elicitation and roots, and answers them:
//   sampling/createMessage → {"model": "ts-relay-model", text "sampled by the TypeScript client"}
//   elicitation/create     → accept {"name": "Ada Lovelace"}
//   roots/list             → [{"uri": "file:///ts-client-root", "name": "ts-root"}]
// Steps (each answers one JSON value, in order):
//   {"op": "complete", "ref": {...}, "argument": {...}, "context": {...}}  → CompleteResult
//   {"op": "call", "name": n, "arguments": {...}, "progress": true}        → {result, progress: [...]}
//   {"op": "cancelAfterProgress", "name": n, "arguments": {...}}          → {error} (aborted after the first progress)
//   {"op": "setLevel", "level": l}                                        → {}
//   {"op": "waitLog", "contains": s}                                      → the first notifications/message params whose data contains s
//   {"op": "read", "uri": u}, {"op": "getPrompt", "name": n, "arguments": {...}}, {"op": "templates"}
//   {"op": "subscribe", "uri": u}, {"op": "unsubscribe", "uri": u}
//   {"op": "waitUpdated", "uri": u}                                       → the notifications/resources/updated params
// Prints one JSON line: {"results": [...]}. Exit codes: 0 ok, 1 error
// (message on stderr), 2 timeout (25s).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { WebSocketClientTransport } from '@modelcontextprotocol/sdk/client/websocket.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { run } from './run.mjs';

// waiter collects notifications and lets a step wait for one.
function waiter() {
  const seen = [];
  const waiting = [];
  return {
    push(v) {
      seen.push(v);
      for (const w of waiting.splice(0)) {
        if (!w.match(v)) waiting.push(w);
        else w.resolve(v);
      }
    },
    wait(match) {
      const hit = seen.find(match);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve) => waiting.push({ match, resolve }));
    },
  };
}

async function main() {
  const [urlArg, mode] = process.argv.slice(2);
  const steps = JSON.parse(process.env.STEPS ?? '[]');
  const headers = { Authorization: `Bearer ${process.env.MCP_TOKEN ?? ''}` };
  const url = new URL(urlArg);
  let transport;
  switch (mode) {
    case 'sse':
      transport = new SSEClientTransport(url, {
        requestInit: { headers },
        eventSourceInit: {
          fetch: (input, init) => {
            const h = new Headers(init?.headers);
            h.set('Authorization', headers.Authorization);
            return fetch(input, { ...init, headers: h });
          },
        },
      });
      break;
    case 'ws': {
      transport = new WebSocketClientTransport(url);
      const send = transport.send.bind(transport);
      const token = process.env.MCP_TOKEN ?? '';
      transport.send = (m) => send('method' in m && 'id' in m
        ? { ...m, params: { ...(m.params ?? {}), auth: { token } } }
        : m);
      break;
    }
    case 'streamable':
      transport = new StreamableHTTPClientTransport(url, { requestInit: { headers } });
      break;
    default:
      throw new Error(`unknown mode ${mode}`);
  }

  const client = new Client({ name: 'mcpauth-relay-test', version: '0.0.0' },
    { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: false } } });
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({
    model: 'ts-relay-model', role: 'assistant', content: { type: 'text', text: 'sampled by the TypeScript client' },
  }));
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { name: 'Ada Lovelace' } }));
  client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: 'file:///ts-client-root', name: 'ts-root' }] }));
  const logs = waiter();
  const updates = waiter();
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => logs.push(n.params));
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => updates.push(n.params));
  await client.connect(transport);

  const results = [];
  for (const s of steps) {
    switch (s.op) {
      case 'complete':
        results.push(await client.complete({ ref: s.ref, argument: s.argument, context: s.context }));
        break;
      case 'call': {
        const progress = [];
        const opts = s.progress ? { onprogress: (p) => progress.push(p) } : {};
        const result = await client.callTool({ name: s.name, arguments: s.arguments ?? {} }, undefined, opts);
        results.push({ result, progress });
        break;
      }
      case 'cancelAfterProgress': {
        const ac = new AbortController();
        try {
          await client.callTool({ name: s.name, arguments: s.arguments ?? {} }, undefined,
            { signal: ac.signal, onprogress: () => ac.abort('cancelled by the test') });
          results.push({ error: null });
        } catch (e) {
          results.push({ error: String(e && e.message ? e.message : e) });
        }
        break;
      }
      case 'setLevel':
        results.push(await client.setLoggingLevel(s.level));
        break;
      case 'waitLog':
        results.push(await logs.wait((p) => JSON.stringify(p.data).includes(s.contains)));
        break;
      case 'read':
        results.push(await client.readResource({ uri: s.uri }));
        break;
      case 'templates':
        results.push(await client.listResourceTemplates());
        break;
      case 'getPrompt':
        results.push(await client.getPrompt({ name: s.name, arguments: s.arguments ?? {} }));
        break;
      case 'subscribe':
        results.push(await client.subscribeResource({ uri: s.uri }));
        break;
      case 'unsubscribe':
        results.push(await client.unsubscribeResource({ uri: s.uri }));
        break;
      case 'waitUpdated':
        results.push(await updates.wait((p) => p.uri === s.uri));
        break;
      default:
        throw new Error(`unknown step ${s.op}`);
    }
  }
  await client.close();
  await new Promise((resolve) => process.stdout.write(JSON.stringify({ results }) + '\n', resolve));
}

run(main, 25_000);
