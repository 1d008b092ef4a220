// README: MAX_HEADER_BYTES. What the gateway accepts reaches the plugin, whatever the gateway adds on
// the way (x-forwarded-*, x-request-id); what it refuses gets its coded JSON 431.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT, startTestGateway, type TestGateway, warmUp } from '../helpers/gateway.js'
import { parseAnswer, rawExchange } from '../helpers/upgrade.js'

const ECHO_ITEM = '/orgs/acme/plugins/echo/items/1'
const ECHOED = { prefix: 'echo', id: '1', query: {} }

/**
 * A request head whose size as Node's HTTP parser counts it toward its limit (the URL, each header's
 * name and value) is exactly `bytes`: a cookie takes what host and the URL leave.
 */
function headOfSize(bytes: number, path: string, host = 'gw.test'): string {
  const cookie = 'a'.repeat(bytes - path.length - 'host'.length - host.length - 'cookie'.length)
  return [`GET ${path} HTTP/1.1`, `host: ${host}`, `cookie: ${cookie}`, 'connection: close'].join('\r\n')
}
// connection and its value count too.
const sizedHead = (bytes: number, path: string, host?: string) => headOfSize(bytes - 'connection'.length - 'close'.length, path, host)

const portOf = (t: TestGateway) => t.gw.port

async function exchange(t: TestGateway, head: string) {
  const answer = parseAnswer(await rawExchange(portOf(t), head))
  return { status: Number(answer.statusLine.split(' ')[1]), headers: answer.headers, body: answer.body }
}

// A bare answer (Node's own 431) has no body: compared as it is.
const bodyOf = (text: string): unknown => (text === '' ? text : JSON.parse(text))

describe('request headers as big as MAX_HEADER_BYTES allows', () => {
  const cases: Array<{ name: string; env: Record<string, string>; pluginId: string; path: string; expected: unknown }> = [
    { name: 'our runner (fresh spawn)', env: { PREWARM_POOL_SIZE: '0' }, pluginId: 'echo', path: '/items/1', expected: ECHOED },
    {
      name: 'a node RUNNER_COMMAND',
      env: { PREWARM_POOL_SIZE: '0', RUNNER_COMMAND: `node ${join(ROOT, 'sdk', 'dist', 'runner.cjs')}` },
      pluginId: 'echo',
      path: '/items/1',
      expected: ECHOED,
    },
    { name: 'a legacy (v1) worker', env: {}, pluginId: 'legacy-v1', path: '/hello', expected: { greeting: 'hello', orgId: 'acme' } },
  ]

  for (const { name, env, pluginId, path, expected } of cases) {
    it(`reach the plugin just under the default 16 KiB, also with a Host that takes half of it: ${name}`, async () => {
      const t = await startTestGateway({ env })
      await t.enable('acme', pluginId, pluginId === 'legacy-v1' ? { apiKey: 'k' } : undefined)
      const url = `/orgs/acme/plugins/${pluginId}${path}`
      for (const host of ['gw.test', `${'h'.repeat(8_000)}.test`]) {
        const res = await exchange(t, sizedHead(16_384 - 1, url, host))
        expect([host.length, res.status, bodyOf(res.body)]).toEqual([host.length, 200, expect.objectContaining(expected)])
      }
    })
  }

  it('reach a prewarmed runner (booted before its plugin was known) just under the limit', async () => {
    const t = await startTestGateway({ env: { PREWARM_POOL_SIZE: '1' } })
    await warmUp(t, 'echo', '/items/1')
    await t.enable('acme', 'echo')
    const res = await exchange(t, sizedHead(16_384 - 1, ECHO_ITEM))
    expect([res.status, bodyOf(res.body)]).toEqual([200, ECHOED])
    expect(t.spawned.at(-1)?.spawnargs).toContain('--prewarm') // acme's worker was the prewarmed runner
  })

  it('reach the plugin with MAX_HEADER_BYTES raised to 32 KiB', async () => {
    const t = await startTestGateway({ env: { MAX_HEADER_BYTES: '32768' } })
    await t.enable('acme', 'echo')
    const res = await fetch(`${t.url}${ECHO_ITEM}`, { headers: { cookie: 'a'.repeat(30_000) } })
    expect([res.status, bodyOf(await res.text())]).toEqual([200, ECHOED])
  })

  it('over it, are refused by the gateway with a coded JSON 431, before any worker starts', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo')
    const res = await exchange(t, sizedHead(16_384, ECHO_ITEM))
    expect([res.status, res.headers['content-type'], res.headers.connection]).toEqual([431, 'application/json', 'close'])
    expect(JSON.parse(res.body)).toEqual({ error: { code: 'HEADERS_TOO_LARGE', message: expect.any(String) } })
    expect(t.spawned).toHaveLength(0)
  })

  it('answers what else Node refuses to parse with a coded JSON 400', async () => {
    const t = await startTestGateway()
    const res = await exchange(t, 'GET /healthz HTTP/1.1\r\nhost: gw.test\r\nbad header: x')
    expect([res.status, res.headers['content-type'], JSON.parse(res.body).error.code]).toEqual([400, 'application/json', 'BAD_REQUEST'])
  })
})
