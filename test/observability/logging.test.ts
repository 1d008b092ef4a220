import { describe, expect, it, vi } from 'vitest'
import { startGate } from '../helpers/gate.js'
import { startTestGateway } from '../helpers/gateway.js'
import { capturedLogger } from '../helpers/log.js'

const TOKEN = 'logging-admin-token-0123456789'

describe('logger (pino, JSON lines)', () => {
  it('redacts authorization headers, tokens, config, credentials and worker env, one level deep too', () => {
    const { log, records } = capturedLogger()
    log.info(
      {
        headers: { authorization: 'Bearer s3cret-a', 'content-type': 'text/plain' },
        req: { headers: { authorization: 'Bearer s3cret-b', cookie: 'sid=s3cret-c' } },
        config: { apiKey: 's3cret-d' },
        instance: { orgId: 'acme', config: { apiKey: 's3cret-e' }, authState: { credentials: { apiKey: 's3cret-f' } } },
        auth: { methodId: 'apiKey', credentials: { apiKey: 's3cret-g' } },
        token: 's3cret-h',
        spawn: { env: { HAY_ORG_AUTH: 's3cret-i' } },
      },
      'something happened',
    )
    const [line] = records()
    expect(JSON.stringify(line)).not.toMatch(/s3cret/)
    expect(line).toMatchObject({
      level: 30,
      service: 'plugin-gateway',
      msg: 'something happened',
      headers: { authorization: '[redacted]', 'content-type': 'text/plain' },
      instance: { orgId: 'acme', config: '[redacted]' },
      auth: { methodId: 'apiKey', credentials: '[redacted]' },
    })
  })

  it('honours the level: debug lines are dropped at info', () => {
    const { log, lines } = capturedLogger('info')
    log.debug({ a: 1 }, 'debug line')
    log.info({ a: 2 }, 'info line')
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['info line'])
  })
})

describe('request logging on a real gateway', () => {
  it('logs method, path, status, ms and the request id the worker also received, at debug', async () => {
    const { log, records } = capturedLogger()
    const t = await startTestGateway({ log })
    await t.enable('acme', 'echo')

    const res = await fetch(`${t.url}/orgs/acme/plugins/echo/echo?token=query-s3cret`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-log-1' },
      body: '{}',
    })
    const echoed = (await res.json()) as { headers: Record<string, string> }
    expect(echoed.headers['x-request-id']).toBe('req-log-1')
    const boom = await fetch(`${t.url}/orgs/acme/plugins/echo/boom`)
    await boom.arrayBuffer()

    const requests = records().filter((r) => r.msg === 'request')
    expect(requests.find((r) => r.requestId === 'req-log-1')).toEqual({
      level: 20,
      time: expect.any(Number),
      service: 'plugin-gateway',
      method: 'POST',
      path: '/orgs/acme/plugins/echo/echo', // never the query string
      status: 200,
      ms: expect.any(Number),
      requestId: 'req-log-1',
      msg: 'request',
    })
    expect(requests.find((r) => r.path === '/orgs/acme/plugins/echo/boom')).toMatchObject({
      status: 500, // what the plugin sent, not the proxy's placeholder
      requestId: boom.headers.get('x-request-id'),
    })
    expect(JSON.stringify(records())).not.toContain('query-s3cret')
  })

  it('logs a client that hangs up during a cold start as a refusal (499), not as a gateway failure', async () => {
    const { log, records } = capturedLogger()
    const gate = await startGate()
    const t = await startTestGateway({ log, env: { GATE_URL: gate.url } })
    await t.enable('acme', 'gated', { startGate: 'start' })
    const client = new AbortController()
    const gone = fetch(`${t.url}/orgs/acme/plugins/gated/whoami`, { signal: client.signal }).catch((err: unknown) => err)
    await gate.arrived('start') // the start is held: the client hangs up while it waits for it
    const waiting = fetch(`${t.url}/orgs/acme/plugins/gated/whoami`)
    await vi.waitFor(() => expect(t.gw.pool.list()[0]?.state).toBe('starting'), { timeout: 10_000, interval: 2 })
    client.abort()
    expect(await gone).toMatchObject({ name: 'AbortError' })
    await vi.waitFor(() => expect(records().some((r) => r.status === 499)).toBe(true), { timeout: 10_000, interval: 5 })
    gate.open('start')

    const answered = await waiting // the start went on for the others
    expect([answered.status, answered.headers.get('x-plugin-cold-start')]).toEqual([200, '1'])
    await answered.body?.cancel()
    await t.gw.pool.stop('acme', 'gated')
    const byPath = records().filter((r) => r.path === '/orgs/acme/plugins/gated/whoami')
    expect(byPath.map((r) => [r.msg, r.status ?? r.code])).toEqual(
      expect.arrayContaining([
        ['request refused', 'CLIENT_CLOSED'],
        ['request', 499],
        ['request', 200],
      ]),
    )
    expect(records().filter((r) => (r.level as number) >= 50)).toEqual([])
    expect(t.spawned).toHaveLength(1)
  })

  it('never logs config values, credentials or the admin token, at debug, across a whole session', async () => {
    const { log, lines } = capturedLogger()
    const t = await startTestGateway({ log, env: { ADMIN_TOKEN: TOKEN } })
    const secrets = ['whsec-config-s3cret-value', 'whk_credential-s3cret-value', TOKEN]

    expect((await t.admin('PUT', '/orgs/acme/plugins/webhook', { enabled: true, config: { webhookSecret: secrets[0] } })).status).toBe(200)
    const auth = await t.admin('PUT', '/orgs/acme/plugins/webhook/auth', { methodId: 'apiKey', credentials: { apiKey: secrets[1] } })
    expect(auth.status).toBe(200)
    const bad = await t.admin('PUT', '/orgs/acme/plugins/webhook/auth', { methodId: 'apiKey', credentials: { apiKey: 'nope-s3cret' } })
    expect(bad.status).toBe(422)
    await (await fetch(`${t.url}/admin/ui?token=${TOKEN}`)).arrayBuffer()
    await (await fetch(`${t.url}/metrics`, { headers: { authorization: 'Bearer wrong-token-s3cret' } })).arrayBuffer()
    await t.admin('POST', '/orgs/acme/plugins/webhook/stop')

    const all = lines.join('\n')
    expect(lines.length).toBeGreaterThan(5)
    for (const secret of [...secrets, 'nope-s3cret', 'wrong-token-s3cret']) expect(all).not.toContain(secret)
  })
})
