// Property-based tests against a real running gateway: random paths, headers and bodies, sent as raw
// bytes over TCP (fetch and node:http would normalise paths or refuse odd headers, NOTES.md).
import { connect } from 'node:net'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'

const ADMIN_TOKEN = 'fuzz-admin-token-0123456789'
// FUZZ_RUNS=5000 for a deeper local hunt; the suite stays fast with 200.
const RUNS = Number(process.env.FUZZ_RUNS ?? 200)
const TIMEOUT_MS = 30_000 + RUNS * 10

interface RawAnswer {
  status: number
  head: string
  body: string
}

/** One request on its own connection (`Connection: close`); resolves with what came back before the close. */
function send(port: number, bytes: Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const guard = setTimeout(() => {
      socket.destroy()
      reject(new Error('no answer within 10 s'))
    }, 10_000)
    socket.on('data', (c: Buffer) => chunks.push(c))
    // The gateway may answer (400/413/431) and close before it has read everything: a reset while we
    // still write is expected; the answer already received is what counts.
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(guard)
      const bytes = Buffer.concat(chunks)
      const end = bytes.indexOf('\r\n\r\n')
      const head = (end < 0 ? bytes : bytes.subarray(0, end)).toString('latin1')
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]
      resolve({ status: status ? Number(status) : 0, head, body: end < 0 ? '' : bytes.subarray(end + 4).toString('utf8') })
    })
    // write, not end: node:http does not answer a client that half-closes (allowHalfOpen is off).
    socket.write(bytes)
  })
}

interface FuzzRequest {
  method: string
  path: Buffer
  headers: Array<[string, Buffer]>
  body: Buffer
}

function encode(r: FuzzRequest): Buffer {
  const lines: Buffer[] = [Buffer.from(`${r.method} `), r.path, Buffer.from(' HTTP/1.1\r\nhost: gateway.test\r\nconnection: close\r\n')]
  for (const [name, value] of r.headers) lines.push(Buffer.from(`${name}: `, 'latin1'), value, Buffer.from('\r\n'))
  lines.push(Buffer.from(`content-length: ${r.body.length}\r\n\r\n`), r.body)
  return Buffer.concat(lines)
}

// --- arbitraries --------------------------------------------------------------------------------

const pct = (bytes: Buffer) => [...bytes].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('')
// Bytes that would end the request line (and so let a path forge headers or framing) are escaped.
const rawSafe = (s: string) =>
  Buffer.from(
    s.replace(/[\r\n ]/g, (ch) => pct(Buffer.from(ch))),
    'utf8',
  )

const validId = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,20}$/)
const nastySegment = fc.constantFrom(
  '..',
  '.',
  '%2e%2e',
  '%2E%2E',
  '.%2e',
  '%2e.',
  '%00',
  'a%00b',
  '%2f',
  '%2F..',
  '..%2f..',
  '%5c..',
  '\\..',
  '..;',
  '%',
  '%zz',
  '%ff',
  '%c0%ae%c0%ae',
  '%252e%252e',
  'health',
  'metadata',
  'validate-auth',
  'config-update',
  'disable',
  'mcp',
  'cron',
  'HEALTH',
  'Metadata',
  '%6detadata',
  '%68ealth',
  'mcp%2fcall-tool',
  'admin',
  '',
  '~',
  ';x',
  '*',
  'items',
  'orgs',
  'plugins',
  '%20',
  '%0d%0a',
  '%09',
  '%ef%bf%bf',
  '%ed%a0%80',
  '%c3%28',
)
const unicodeSegment = fc.string({ unit: 'grapheme', maxLength: 16 })
// Raw control or non-ASCII bytes in a request line are refused by node's parser (400) before the app
// sees them: one such segment ends a path now and then, so most requests still reach the routes.
const rawTail = fc.oneof(
  { weight: 9, arbitrary: fc.constant(Buffer.alloc(0)) },
  {
    weight: 1,
    arbitrary: fc
      .oneof(unicodeSegment, fc.constantFrom('\t', '\u0000', '\u00ff', '\u{1F600}', '\u00e9'))
      .map((s) => Buffer.concat([Buffer.from('/'), rawSafe(s)])),
  },
)
const longSegment = fc.integer({ min: 200, max: 18_000 }).map((n) => 'x'.repeat(n))
const segment = fc.oneof(
  { weight: 8, arbitrary: nastySegment.map(rawSafe) },
  { weight: 4, arbitrary: unicodeSegment.map((s) => Buffer.from(pct(Buffer.from(s)))) },
  { weight: 4, arbitrary: validId.map((s) => Buffer.from(s)) },
  { weight: 1, arbitrary: longSegment.map((s) => Buffer.from(s)) },
)
const join = (parts: Buffer[]) => Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [p] : [Buffer.from('/'), p])))
const query = fc
  .tuple(
    rawTail,
    fc.option(
      fc.string({ maxLength: 40 }).map((s) => Buffer.concat([Buffer.from('?'), rawSafe(s)])),
      { nil: Buffer.alloc(0) },
    ),
  )
  .map(([tail, q]) => Buffer.concat([tail, q]))
const realPlugin = fc.constantFrom('echo', 'webhook', 'tools', 'env-probe', 'legacy-v1', 'bad-manifest', 'crash-on-start')
const pluginSegment = fc.oneof(
  realPlugin.map((s) => Buffer.from(s)),
  segment,
)

const method = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD') },
  { weight: 1, arbitrary: fc.constantFrom('PROPFIND', 'TRACE', 'FOO', 'get', 'G_T') }, // unknown ones: a parser 400
)
// Framing headers are the test's own (one request per connection, a correct length); the rest is fair game.
const FRAMING = new Set(['content-length', 'transfer-encoding', 'connection', 'host', 'expect', 'upgrade'])
const headerName = fc
  .oneof(
    fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,30}$/),
    fc.constantFrom(
      'x-forwarded-for',
      'x-forwarded-host',
      'x-request-id',
      'authorization',
      'cookie',
      'content-type',
      'accept',
      'x-signature',
      'forwarded',
      'x-real-ip',
      'te',
      'trailer',
      'keep-alive',
      'proxy-authorization',
      'x-http-method-override',
      'range',
      'accept-encoding',
    ),
  )
  .filter((n) => !FRAMING.has(n.toLowerCase()))
const headerValue = fc
  .oneof(
    { weight: 8, arbitrary: fc.string({ maxLength: 100 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        'application/json',
        'text/plain; charset=utf-8',
        'multipart/form-data; boundary=x',
        `Bearer ${ADMIN_TOKEN}`,
        '127.0.0.1',
        '../../admin',
      ),
    },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) }, // control bytes: mostly a parser 400
    { weight: 1, arbitrary: fc.integer({ min: 100, max: 18_000 }).map((n) => 'v'.repeat(n)) },
  )
  .map((v) => Buffer.from(v.replace(/[\r\n]/g, ' '), 'utf8'))
const headers = fc.array(fc.tuple(headerName, headerValue), { maxLength: 5 })
const body = fc.oneof(
  fc.constant(Buffer.alloc(0)),
  fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)),
  fc.json().map((s) => Buffer.from(s)),
  fc.jsonValue().map((v) => Buffer.from(JSON.stringify({ enabled: false, config: v }))),
)

// --- helpers --------------------------------------------------------------------------------------

/** The gateway answers its health check after the run. */
async function expectHealthy(t: TestGateway) {
  const res = await fetch(`${t.url}/healthz`)
  expect(res.status).toBe(200)
  expect(await res.json()).toEqual({ status: 'ok' })
}

const ERROR_BODY = {
  error: expect.objectContaining({ code: expect.stringMatching(/^[A-Z][A-Z_]*$/), message: expect.any(String) }),
}

/**
 * README: every failure answers JSON {"error":{"code","message"}}, also what Node's HTTP parser
 * refuses before the gateway sees it, except, for a browser, the status page's unlock form. A
 * plugin's own answers (they passed the proxy hop, named in Server-Timing) are the plugin's business.
 */
function expectWellFormed(r: FuzzRequest, a: RawAnswer): void {
  const head = a.head.toLowerCase()
  const header = (name: string) => new RegExp(`\r\n${name}: ([^\r]*)`).exec(head)?.[1]
  const what = describeFailure(r, a)
  if (a.status === 0 || a.status === 500) throw new Error(what)
  const isPluginAnswer = header('server-timing')?.includes('proxy;dur=') ?? false
  if (a.status < 400 || isPluginAnswer || r.method === 'HEAD' || header('content-type')?.startsWith('text/html')) return
  expect([what, header('content-type')]).toEqual([what, 'application/json'])
  expect([what, JSON.parse(a.body)]).toEqual([what, ERROR_BODY])
}

/** org:plugin of every worker the gateway spawned. */
const spawnedKeys = (t: TestGateway): string[] => t.spawnedFor.map((s) => `${s.orgId}:${s.pluginId}`)

function describeFailure(r: FuzzRequest, a: RawAnswer): string {
  return `${r.method} ${r.path.toString('latin1').slice(0, 300)} → ${a.status}\n${a.head.slice(0, 300)}\n${a.body.slice(0, 300)}`
}

// --- properties ------------------------------------------------------------------------------------

describe('fuzzing a running gateway', () => {
  it('public path: never a 500, never a control endpoint, never a worker for ids that are not enabled', {
    timeout: TIMEOUT_MS,
  }, async () => {
    const t = await startTestGateway({ env: { ADMIN_TOKEN } })
    await t.enable('acme', 'echo')
    expect((await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).status).toBe(200) // the one worker that may run

    // Requests for declared echo routes, with everything else random, so the proxy path is fuzzed too.
    const proxied = fc.record({
      method: fc.constantFrom('GET', 'POST'),
      path: fc
        .tuple(
          fc.constantFrom('items/', 'echo', 'raw', 'items/%2e%2e/', 'items/..%2f'),
          fc.oneof(segment, fc.constant(Buffer.alloc(0))),
          query,
        )
        .map(([route, s, q]) =>
          Buffer.concat([Buffer.from(`/orgs/acme/plugins/echo/${route}`), route.endsWith('/') ? s : Buffer.alloc(0), q]),
        ),
      headers,
      body,
    })
    const anyPath = fc.record({
      method,
      path: fc.oneof(
        {
          weight: 4,
          arbitrary: fc
            .tuple(
              fc.oneof({ weight: 3, arbitrary: fc.constant('acme') }, { weight: 2, arbitrary: validId }).map((s) => Buffer.from(s)),
              fc.oneof({ weight: 3, arbitrary: fc.constant(Buffer.from('echo')) }, { weight: 2, arbitrary: pluginSegment }),
              fc.array(segment, { maxLength: 6 }),
              query,
            )
            .map(([org, plugin, rest, q]) =>
              Buffer.concat([Buffer.from('/orgs/'), org, Buffer.from('/plugins/'), plugin, Buffer.from('/'), join(rest), q]),
            ),
        },
        {
          weight: 1,
          arbitrary: fc
            .tuple(fc.oneof(segment, fc.constant(Buffer.from('orgs'))), fc.array(segment, { maxLength: 8 }), query)
            .map(([first, parts, q]) => Buffer.concat([Buffer.from('/'), join([first, ...parts]), q])),
        },
      ),
      headers,
      body,
    })

    const publicRequest = fc.oneof({ weight: 3, arbitrary: anyPath }, { weight: 1, arbitrary: proxied })

    await fc.assert(
      fc.asyncProperty(publicRequest, async (r) => {
        const answer = await send(t.gw.port, encode(r))
        expectWellFormed(r, answer)
        // Worker control endpoints answer with these; none may ever come back through the public path.
        expect(answer.body).not.toContain('"configSchema"')
        expect(answer.body).not.toContain('"status":"healthy"')
      }),
      { numRuns: RUNS },
    )

    await expectHealthy(t)
    expect((await fetch(`${t.url}/orgs/acme/plugins/echo/items/2`)).status).toBe(200)
    expect(spawnedKeys(t)).toEqual(['acme:echo'])
    expect((await t.admin('GET', '/workers')).body.workers.map((w: { orgId: string }) => w.orgId)).toEqual(['acme'])
  })

  it('admin API: never a 500 whatever the path, token, headers or body; workers only for instances that exist', {
    timeout: TIMEOUT_MS,
  }, async () => {
    const t = await startTestGateway({ env: { ADMIN_TOKEN } })
    const org = fc.oneof(
      validId.filter((s) => s !== 'acme').map((s) => Buffer.from(s)),
      segment,
    )
    const tail = fc.constantFrom('', '/', '/auth', '/start', '/stop', '/mcp/tools', '/mcp/call', '/mcp', '/x', '/auth/..', '/%2e%2e/auth')
    // Most runs hit a real route with its own method and valid ids, so bodies reach validation.
    const json = (arb: fc.Arbitrary<unknown>) => arb.map((o) => Buffer.from(JSON.stringify(o)))
    const configKey = fc.oneof(
      fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', '$sealed', 'webhookSecret', 'prefix'),
      fc.string(),
    )
    const configValue = fc.oneof(fc.jsonValue(), fc.constant('********'), fc.constant({ $sealed: 'v1:00000000:AAAA' }))
    const instanceBody = json(
      fc.record(
        {
          enabled: fc.oneof(fc.constant(false), fc.string(), fc.integer(), fc.constant(null)),
          config: fc.oneof(fc.dictionary(configKey, configValue), fc.jsonValue()),
        },
        { requiredKeys: [] },
      ),
    )
    const authBody = json(
      fc.record(
        {
          methodId: fc.oneof(fc.string(), fc.constant('apiKey')),
          credentials: fc.oneof(fc.dictionary(fc.string(), fc.jsonValue()), fc.jsonValue()),
        },
        { requiredKeys: [] },
      ),
    )
    const callBody = json(
      fc.record({ toolName: fc.oneof(fc.string(), fc.constantFrom('add', 'whoami')), arguments: fc.jsonValue() }, { requiredKeys: [] }),
    )
    // Most runs hit a real route with its own method, valid ids and a body of roughly the right shape,
    // so requests get past routing into validation, sealing and the service.
    const route = fc
      .tuple(
        fc.constantFrom(
          ['PUT', '', instanceBody],
          ['PUT', '/auth', authBody],
          ['GET', '', body],
          ['POST', '/start', body],
          ['POST', '/stop', body],
          ['GET', '/mcp/tools', body],
          ['POST', '/mcp/call', callBody],
        ),
        fc.oneof(fc.constant('acme'), validId),
        realPlugin,
      )
      .chain(([[m, x, b], o, p]) =>
        (b as fc.Arbitrary<Buffer>).map((bytes) => ({
          method: m as string,
          path: Buffer.from(`/admin/orgs/${o}/plugins/${p}${x as string}`),
          body: bytes,
        })),
      )
    const anyRoute = fc.record({
      body,
      method,
      path: fc.oneof(
        fc
          .constantFrom(
            '/admin/plugins',
            '/admin/workers',
            '/admin',
            '/admin/',
            '/admin/ui',
            '/admin/ui/panel',
            '/admin/orgs',
            '/admin//plugins',
          )
          .map((s) => Buffer.from(s)),
        pluginSegment.map((p) => Buffer.concat([Buffer.from('/admin/plugins/'), p, Buffer.from('/refresh-metadata')])),
        fc
          .tuple(org, pluginSegment, tail)
          .map(([o, p, x]) => Buffer.concat([Buffer.from('/admin/orgs/'), o, Buffer.from('/plugins/'), p, Buffer.from(x)])),
        fc.array(segment, { maxLength: 6 }).map((parts) => Buffer.concat([Buffer.from('/admin/'), join(parts)])),
      ),
    })
    const adminRequest = fc.record({
      route: fc.oneof({ weight: 3, arbitrary: route }, { weight: 2, arbitrary: anyRoute }),
      authorization: fc.oneof(
        { weight: 8, arbitrary: fc.constant(`Bearer ${ADMIN_TOKEN}`) },
        { weight: 1, arbitrary: fc.constantFrom('', 'Bearer', `bearer ${ADMIN_TOKEN}x`, `Basic ${ADMIN_TOKEN}`, ADMIN_TOKEN) },
        { weight: 1, arbitrary: fc.string({ maxLength: 60 }).map((s) => `Bearer ${s}`) },
      ),
      headers,
    })

    await fc.assert(
      fc.asyncProperty(adminRequest, async (r) => {
        const req: FuzzRequest = {
          method: r.route.method,
          path: r.route.path,
          headers: [
            ...(r.authorization ? [['authorization', Buffer.from(r.authorization, 'utf8')] as [string, Buffer]] : []),
            ...r.headers,
          ],
          body: r.route.body,
        }
        const answer = await send(t.gw.port, encode(req))
        expectWellFormed(req, answer)
      }),
      { numRuns: RUNS },
    )

    await expectHealthy(t)
    // It still serves: the admin API, and a plugin enabled now through it.
    expect((await t.admin('GET', '/plugins')).status).toBe(200)
    await t.enable('fuzz-after', 'echo', {})
    const served = await fetch(`${t.url}/orgs/fuzz-after/plugins/echo/items/1`)
    expect([served.status, await served.json()]).toEqual([200, expect.objectContaining({ id: '1' })])
    for (const key of spawnedKeys(t)) {
      const [orgId = '', pluginId = ''] = key.split(':')
      expect([key, (await t.instanceRow(orgId, pluginId)) !== undefined]).toEqual([key, true])
    }
  })
})
