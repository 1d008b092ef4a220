import { request } from 'node:http'
import { describe, expect, it } from 'vitest'
import { startGate } from '../helpers/gate.js'
import { startTestGateway } from '../helpers/gateway.js'

const TOKEN = 'test-admin-token-0123456789'

describe('admin API', () => {
  it('lists plugins with sdkVersion, metadata state and the errors of invalid ones', async () => {
    const t = await startTestGateway()
    const { status, body } = await t.admin('GET', '/plugins')
    expect(status).toBe(200)
    const byId = new Map(body.plugins.map((p: { id: string }) => [p.id, p]))
    expect(byId.get('echo')).toMatchObject({
      name: 'hay-plugin-echo',
      version: '1.0.0',
      sdkVersion: 'v2',
      metadataState: 'missing',
      valid: true,
    })
    expect(byId.get('bad-manifest')).toMatchObject({ valid: false, error: expect.any(String) })
  })

  it('refuses requests without the bearer token when ADMIN_TOKEN is set, in constant time', async () => {
    const t = await startTestGateway({ env: { ADMIN_TOKEN: TOKEN } })
    const routes: Array<[string, string]> = [
      ['GET', '/admin/plugins'],
      ['POST', '/admin/plugins/echo/refresh-metadata'],
      ['GET', '/admin/orgs/acme/plugins/echo'],
      ['PUT', '/admin/orgs/acme/plugins/echo'],
      ['PUT', '/admin/orgs/acme/plugins/echo/auth'],
      ['POST', '/admin/orgs/acme/plugins/echo/start'],
      ['POST', '/admin/orgs/acme/plugins/echo/stop'],
      ['GET', '/admin/orgs/acme/plugins/tools/mcp/tools'],
      ['POST', '/admin/orgs/acme/plugins/tools/mcp/call'],
      ['GET', '/admin/workers'],
    ]
    for (const [method, path] of routes) {
      for (const authorization of [undefined, 'Bearer wrong-token-0123456789', `Basic ${TOKEN}`, TOKEN]) {
        const res = await fetch(`${t.url}${path}`, { method, headers: authorization ? { authorization } : {} })
        expect([method, path, authorization, res.status]).toEqual([method, path, authorization, 401])
        expect(await res.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } })
      }
    }
    const ok = await t.admin('GET', '/plugins')
    expect(ok.status).toBe(200)
  })

  it('reads JSON bodies only when sent as JSON (415 otherwise), so a cross-site form or text/plain post is never an API call', async () => {
    const t = await startTestGateway()
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined]) {
      const res = await fetch(`${t.url}/admin/orgs/acme/plugins/echo`, {
        method: 'PUT',
        headers: type === undefined ? {} : { 'content-type': type },
        body: JSON.stringify({ enabled: true }),
      })
      expect([type, res.status]).toEqual([type, 415])
      expect(await res.json()).toMatchObject({ error: { code: 'UNSUPPORTED_MEDIA_TYPE' } })
    }
    expect(await t.instanceRow('acme', 'echo')).toBeUndefined()
    const ok = await fetch(`${t.url}/admin/orgs/acme/plugins/echo`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ enabled: true }),
    })
    expect(ok.status).toBe(200)
  })

  it('validates instance bodies and config against the plugin configSchema', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo')
    await (await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).body?.cancel() // metadata now known

    const malformed = await fetch(`${t.url}/admin/orgs/acme/plugins/echo`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: '{nope',
    })
    expect(malformed.status).toBe(400)
    expect(await malformed.json()).toMatchObject({ error: { code: 'BAD_REQUEST' } })

    const wrongShape = await t.admin('PUT', '/orgs/acme/plugins/echo', { enabled: 'yes' })
    expect(wrongShape).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED', details: [{ path: 'enabled' }] } } })

    const wrongType = await t.admin('PUT', '/orgs/acme/plugins/echo', { config: { prefix: 42 } })
    expect(wrongType).toMatchObject({ status: 400, body: { error: { code: 'CONFIG_INVALID' } } })
    const unknownKey = await t.admin('PUT', '/orgs/acme/plugins/echo', { config: { nope: 'x' } })
    expect(unknownKey).toMatchObject({ status: 400, body: { error: { code: 'CONFIG_INVALID' } } })
  })

  it('bounds what an admin call may send: past MAX_BODY_BYTES, too deep, a __proto__ key, or more than a worker can be started with', async () => {
    const t = await startTestGateway({ env: { MAX_BODY_BYTES: '65536' } })
    const put = (body: string) =>
      fetch(`${t.url}/admin/orgs/acme/plugins/echo`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body })
    const answer = async (res: Response) => [res.status, ((await res.json()) as { error: { code: string } }).error.code]

    const huge = await put(JSON.stringify({ enabled: true, config: { prefix: 'x'.repeat(200_000) } }))
    expect([...(await answer(huge)), huge.headers.get('connection')]).toEqual([413, 'PAYLOAD_TOO_LARGE', 'close'])
    // 40 KB of brackets: parsed, then refused before anything serializes (seals) it.
    expect(await answer(await put(`{"enabled":true,"config":{"deep":${'['.repeat(20_000)}${']'.repeat(20_000)}}}`))).toEqual([
      400,
      'VALIDATION_FAILED',
    ])
    // An object built from it would drop the key with a 200.
    expect(await answer(await put('{"enabled":true,"config":{"__proto__":"x","prefix":"p"}}'))).toEqual([400, 'VALIDATION_FAILED'])
    expect(await t.instanceRow('acme', 'echo')).toBeUndefined()

    // Under MAX_BODY_BYTES, over what one environment variable (HAY_ORG_CONFIG, HAY_ORG_AUTH) may hold.
    const big = await startTestGateway()
    const tooBig = await big.admin('PUT', '/orgs/acme/plugins/legacy-v1', {
      enabled: true,
      config: { apiKey: 'k', greeting: 'g'.repeat(140_000) },
    })
    expect(tooBig).toMatchObject({ status: 413, body: { error: { code: 'CONFIG_TOO_LARGE' } } })
    expect(await big.instanceRow('acme', 'legacy-v1')).toBeUndefined()
    await big.enable('acme', 'legacy-v1', { apiKey: 'k' })
    const tooBigAuth = await big.admin('PUT', '/orgs/acme/plugins/legacy-v1/auth', {
      methodId: 'apiKey',
      credentials: { apiKey: 'k'.repeat(140_000) },
    })
    expect(tooBigAuth).toMatchObject({ status: 413, body: { error: { code: 'CONFIG_TOO_LARGE' } } })
    const res = await fetch(`${big.url}/orgs/acme/plugins/legacy-v1/hello`)
    expect([res.status, await res.json()]).toEqual([200, { greeting: 'hello', orgId: 'acme', hasAuth: false }])
  })

  it('shows the runtime state, last error and last start of an instance as stored, which workers change beside its cache', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'crash-on-start')
    await t.enable('acme', 'echo')
    await (await fetch(`${t.url}/orgs/acme/plugins/crash-on-start/anything`)).body?.cancel()
    await (await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).body?.cancel()
    const crashed = await t.instanceRow('acme', 'crash-on-start') // flushed: the row holds what happened
    expect((await t.admin('GET', '/orgs/acme/plugins/crash-on-start')).body).toMatchObject({
      runtimeState: 'error',
      lastError: crashed?.lastError,
    })
    expect((await t.instanceRow('acme', 'echo'))?.runtimeState).toBe('ready')
    const echo = (await t.admin('GET', '/orgs/acme/plugins/echo')).body
    expect([echo.runtimeState, typeof echo.lastStartedAt]).toEqual(['ready', 'string'])
  })

  it('pushes new config to the running worker through /config-update', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo', { prefix: 'one' })
    expect(await (await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).json()).toMatchObject({ prefix: 'one' })

    const res = await t.admin('PUT', '/orgs/acme/plugins/echo', { config: { prefix: 'two' } })
    expect(res).toMatchObject({ status: 200, body: { config: { prefix: 'two' }, enabled: true } })
    expect(await (await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).json()).toMatchObject({ prefix: 'two' })
    expect(t.spawned).toHaveLength(1)
  })

  it('delivers a config change made while the worker is starting, once it is ready, without a restart', async () => {
    const gate = await startGate()
    const t = await startTestGateway({ env: { GATE_URL: gate.url } })
    await t.enable('acme', 'gated', { startGate: 'start', label: 'old' })
    const first = fetch(`${t.url}/orgs/acme/plugins/gated/whoami`)
    await gate.arrived('start') // spawned with the old config, held in onStart

    const put = sendJson(t.url, 'PUT', '/admin/orgs/acme/plugins/gated', { config: { startGate: 'start', label: 'new' } })
    await put.sent
    // Answered after the PUT was read: the PUT now waits for the start, which only the gate can end.
    expect((await t.admin('GET', '/workers')).body.workers).toEqual([expect.objectContaining({ state: 'starting' })])
    gate.open('start')
    expect(await put.status).toBe(200)
    expect((await first).status).toBe(200)
    const res = await fetch(`${t.url}/orgs/acme/plugins/gated/whoami`)
    expect(await res.json()).toMatchObject({ label: 'new', startedWith: 'old', pid: t.spawned[0]?.pid })
    expect(t.spawned).toHaveLength(1)
  })

  it('stores auth only when the worker validates it, and answers 422 otherwise', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'webhook', { webhookSecret: 's3cret' })

    const bad = await t.admin('PUT', '/orgs/acme/plugins/webhook/auth', { methodId: 'apiKey', credentials: { apiKey: 'nope' } })
    expect(bad).toMatchObject({ status: 422, body: { error: { code: 'AUTH_INVALID' } } })
    expect((await t.admin('GET', '/orgs/acme/plugins/webhook')).body.auth).toBeNull()

    const good = await t.admin('PUT', '/orgs/acme/plugins/webhook/auth', {
      methodId: 'apiKey',
      credentials: { apiKey: 'whk_0123456789' },
    })
    expect(good).toMatchObject({ status: 200, body: { auth: { methodId: 'apiKey', configured: true } } })
    expect(JSON.stringify(good.body)).not.toContain('whk_0123456789')

    const missing = await t.admin('PUT', '/orgs/acme/plugins/webhook/auth', { methodId: 'apiKey' })
    expect(missing).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } })
  })

  it('stores auth of a legacy v1 plugin once its worker validates it (the bundled example serves /validate-auth)', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'legacy-v1', { apiKey: 'k' })
    const bad = await t.admin('PUT', '/orgs/acme/plugins/legacy-v1/auth', { methodId: 'apiKey', credentials: { apiKey: '' } })
    expect(bad).toMatchObject({ status: 422, body: { error: { code: 'AUTH_INVALID', message: 'apiKey must be a non-empty string' } } })
    const good = await t.admin('PUT', '/orgs/acme/plugins/legacy-v1/auth', { methodId: 'apiKey', credentials: { apiKey: 'k2' } })
    expect(good).toMatchObject({ status: 200, body: { auth: { methodId: 'apiKey', configured: true } } })
    const res = await fetch(`${t.url}/orgs/acme/plugins/legacy-v1/hello`) // restarted with HAY_ORG_AUTH
    expect(await res.json()).toMatchObject({ hasAuth: true })
  })

  it('checks auth of a disabled instance with a worker that does not outlive the check', async () => {
    const t = await startTestGateway()
    await t.admin('PUT', '/orgs/acme/plugins/webhook', { enabled: false })
    const bad = await t.admin('PUT', '/orgs/acme/plugins/webhook/auth', { methodId: 'apiKey', credentials: { apiKey: 'nope' } })
    expect(bad).toMatchObject({ status: 422, body: { error: { code: 'AUTH_INVALID' } } })
    expect(t.spawned).toHaveLength(1)
    expect((await t.admin('GET', '/workers')).body.workers).toEqual([])
    expect(t.spawned[0]?.exitCode ?? t.spawned[0]?.signalCode).not.toBeNull()
  })

  it('starts and stops workers, and lists them with pid, port, state and in-flight', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo')
    const started = await t.admin('POST', '/orgs/acme/plugins/echo/start')
    expect(started).toMatchObject({
      status: 200,
      body: { worker: { orgId: 'acme', pluginId: 'echo', state: 'ready', sdkVersion: 'v2', inFlight: 0 } },
    })
    expect(started.body.worker.pid).toBe(t.spawned[0]?.pid)

    const { body } = await t.admin('GET', '/workers')
    expect(body.workers).toHaveLength(1)
    expect(body.workers[0]).toMatchObject({ port: started.body.worker.port, startedAt: expect.any(String) })

    expect(await t.admin('POST', '/orgs/acme/plugins/echo/stop')).toMatchObject({ status: 200, body: { stopped: true } })
    expect((await t.admin('GET', '/workers')).body.workers).toHaveLength(0)
    expect(await t.instanceRow('acme', 'echo')).toMatchObject({ runtimeState: 'stopped' })
  })

  it('lists and calls MCP tools of an org worker', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'tools')
    const tools = await t.admin('GET', '/orgs/acme/plugins/tools/mcp/tools')
    expect(tools.status).toBe(200)
    expect(tools.body.tools.map((x: { name: string }) => x.name).sort()).toEqual(['add', 'uppercase'])

    const sum = await t.admin('POST', '/orgs/acme/plugins/tools/mcp/call', { toolName: 'add', arguments: { a: 2, b: 40 } })
    expect(sum).toMatchObject({ status: 200, body: { structuredContent: { sum: 42 } } })
    const unknown = await t.admin('POST', '/orgs/acme/plugins/tools/mcp/call', { toolName: 'nope', arguments: {} })
    expect(unknown).toEqual({ status: 404, body: { error: { code: 'NOT_FOUND', message: 'no tool named nope' } } })
  })

  it('refreshes metadata on demand: stale, then fresh again from the running worker', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo')
    await (await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).body?.cancel()
    const before = (await t.pluginRow('echo'))?.metadataFetchedAt

    const res = await t.admin('POST', '/plugins/echo/refresh-metadata')
    expect(res).toMatchObject({ status: 200, body: { id: 'echo', metadataState: 'fresh' } })
    expect(new Date(res.body.metadataFetchedAt).getTime()).toBeGreaterThan(before?.getTime() ?? Infinity)
  })

  it('answers /healthz', async () => {
    const t = await startTestGateway()
    const res = await fetch(`${t.url}/healthz`)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ status: 'ok' })
  })
})

/** A JSON request whose bytes are known to have left: `sent` once written, `status` once answered. */
function sendJson(base: string, method: string, path: string, body: unknown) {
  const req = request(`${base}${path}`, { method, headers: { 'content-type': 'application/json' } })
  const status = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
  })
  const sent = new Promise<void>((resolve) => req.end(JSON.stringify(body), resolve))
  return { sent, status }
}
