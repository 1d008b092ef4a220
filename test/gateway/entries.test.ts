import { describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { rawRequest, type RawReply } from '../helpers/http.js'
import { capturedLogger } from '../helpers/log.js'
import { sampleValue } from '../observability/prom-text.js'

// The Node entry serves the public path without a Hono context (PUBLIC_FAST_PATH, the default) or
// through the Hono app; both run routes/public.ts's rules. The same requests must get the same answers,
// metrics and log lines from either.

interface Call {
  method?: string
  path: string
  headers?: Record<string, string>
  body?: string
}

const CALLS: Call[] = [
  { path: '/orgs/acme/plugins/echo/items/1' }, // the cold start
  { path: '/orgs/acme/plugins/echo/items/2?x=1&y=%20z' },
  { path: '/orgs/acme/plugins/echo/items/3', headers: { 'x-request-id': 'client-id-1' } },
  {
    method: 'POST',
    path: '/orgs/acme/plugins/echo/echo?via=entries',
    headers: {
      'content-type': 'application/json',
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-host': 'spoofed.example',
      'x-request-id': 'client-id-2',
    },
    body: '{"hello":"entries"}',
  },
  { method: 'HEAD', path: '/orgs/acme/plugins/echo/items/4' },
  { path: '/orgs/acme/plugins/echo' }, // the plugin's root: not declared
  { path: '/orgs/acme/plugins/echo/nope' },
  { path: '/orgs/acme/plugins/echo/metadata' },
  { path: '/orgs/acme/plugins/echo/MCP/list-tools' },
  { path: '/orgs/acme/plugins/echo/%6Detadata' },
  { path: '/orgs/acme/plugins/echo/items/../metadata' },
  { path: '/orgs/acme/plugins/echo/items/%2e%2e/metadata' },
  { path: '/orgs/acme/plugins/echo/boom' },
  { path: '/orgs/nobody/plugins/echo/items/1' },
  { path: '/orgs/off/plugins/echo/items/1' },
  { path: '/orgs/acme/plugins/ghost/items/1' },
  { path: '/orgs/acme/plugins/bad-manifest/items/1' },
  { path: '/orgs/ACME/plugins/echo/items/1' },
  { path: '/orgs/acme/plugins/echo/items/x"y' },
  { method: 'POST', path: '/orgs/acme/plugins/echo/echo', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(2_048) },
]

/** What must be equal between the entries: generated ids and durations are replaced by their shape. */
function answer(reply: RawReply, sentId: string | undefined) {
  const h = reply.headers
  const text = reply.body.toString('utf8')
  const body = text && h['content-type']?.toString().includes('json') ? JSON.parse(text) : text
  return {
    status: reply.status,
    body,
    contentType: h['content-type'],
    retryAfter: h['retry-after'],
    coldStart: h['x-plugin-cold-start'],
    requestId: sentId ?? (typeof h['x-request-id'] === 'string' && h['x-request-id'].length > 0 ? 'generated' : h['x-request-id']),
    serverTiming: typeof h['server-timing'] === 'string' ? h['server-timing'].replace(/dur=[\d.]+/g, 'dur=') : h['server-timing'],
    connection: h.connection,
  }
}

async function run(fastPath: boolean) {
  const captured = capturedLogger('debug')
  const t = await startTestGateway({ env: { PUBLIC_FAST_PATH: String(fastPath), MAX_BODY_BYTES: '1024' }, log: captured.log })
  await t.enable('acme', 'echo')
  await t.enable('off', 'echo')
  await t.admin('PUT', '/orgs/off/plugins/echo', { enabled: false })
  const answers = []
  for (const call of CALLS) {
    const reply = await rawRequest({
      port: new URL(t.url).port as unknown as number,
      method: call.method ?? 'GET',
      path: call.path,
      headers: { host: 'gw.test:8787', ...call.headers },
      ...(call.body !== undefined && { body: call.body }),
    })
    answers.push([call.method ?? 'GET', call.path, answer(reply, call.headers?.['x-request-id'])])
  }
  const lines = captured
    .records()
    .filter((r) => typeof r.path === 'string' && r.path.startsWith('/orgs/'))
    .map((r) => [r.msg, r.method, r.path, r.status ?? r.code])
  return { t, answers, lines, metrics: await scrape(t) }
}

async function scrape(t: TestGateway): Promise<string> {
  const res = await fetch(`${t.url}/metrics`)
  return res.text()
}

describe('the public path through both Node entries', () => {
  it('answers, counts and logs every request the same with and without a Hono context', async () => {
    const [fast, hono] = [await run(true), await run(false)]
    expect(fast.answers).toEqual(hono.answers)
    expect(fast.lines).toEqual(hono.lines)
    for (const status of ['200', '404', '413', '500']) {
      const count = (m: string) => sampleValue(m, 'plugin_gateway_http_requests_total', { route: 'proxy', status })
      expect([status, count(fast.metrics)]).toEqual([status, count(hono.metrics)])
    }
    // The comparison is only worth something if the requests did what they are for.
    const byPath = new Map(fast.answers.map(([method, path, a]) => [`${method} ${path}`, a]))
    expect(byPath.get('GET /orgs/acme/plugins/echo/items/1')).toMatchObject({ status: 200, coldStart: '1', requestId: 'generated' })
    expect(byPath.get('GET /orgs/acme/plugins/echo/items/2?x=1&y=%20z')).toMatchObject({
      status: 200,
      body: { id: '2', query: { x: '1', y: ' z' } },
      serverTiming: 'proxy;dur=',
    })
    expect(byPath.get('GET /orgs/acme/plugins/echo/items/3')).toMatchObject({ status: 200, requestId: 'client-id-1' })
    expect(byPath.get('POST /orgs/acme/plugins/echo/echo?via=entries')).toMatchObject({
      status: 200,
      body: {
        query: { via: 'entries' },
        body: { hello: 'entries' },
        headers: { 'x-forwarded-for': '203.0.113.7, 127.0.0.1', 'x-forwarded-host': 'gw.test:8787', 'x-forwarded-proto': 'http' },
      },
    })
    expect(byPath.get('GET /orgs/acme/plugins/echo/metadata')).toMatchObject({ status: 404, body: { error: { code: 'ROUTE_NOT_FOUND' } } })
    expect(byPath.get('GET /orgs/off/plugins/echo/items/1')).toMatchObject({ status: 404, body: { error: { code: 'INSTANCE_DISABLED' } } })
    expect(byPath.get('GET /orgs/ACME/plugins/echo/items/1')).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } })
    expect(byPath.get('POST /orgs/acme/plugins/echo/echo')).toMatchObject({ status: 413, body: { error: { code: 'PAYLOAD_TOO_LARGE' } } })
    expect(fast.lines.length).toBeGreaterThanOrEqual(CALLS.length)
  })
})
