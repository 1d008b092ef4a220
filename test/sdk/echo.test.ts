import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fetchJson, postJson, rawRequest } from '../helpers/http.js'
import { EXAMPLES_DIR, startRunner } from '../helpers/process.js'
import { useNoLeftoverProcesses } from './setup.js'

const pluginDir = join(EXAMPLES_DIR, 'echo')

describe('runner with the echo example', () => {
  useNoLeftoverProcesses()

  it('answers /health with its pid and org once ready, and reports the port it listens on', async () => {
    const runner = await startRunner({ pluginDir, orgId: 'org-echo' })
    expect(await runner.ready).toEqual({ type: 'ready', port: runner.port })
    const health = await fetchJson(runner.url('/health'))
    expect(health).toMatchObject({ status: 200, body: { status: 'healthy', pid: runner.child.pid, orgId: 'org-echo' } })
  })

  it('describes its config, routes and UI in /metadata', async () => {
    const runner = await startRunner({ pluginDir })
    const { status, body } = await fetchJson(runner.url('/metadata'))
    expect(status).toBe(200)
    expect(body).toEqual({
      configSchema: { prefix: { type: 'string', label: 'Reply prefix', default: 'echo', env: 'ECHO_PREFIX' } },
      authMethods: [],
      uiExtensions: [{ slot: 'after-settings', component: 'components/EchoSettings.vue' }],
      pages: [],
      routes: [
        { method: 'POST', path: '/echo' },
        { method: 'GET', path: '/items/:id' },
        { method: 'POST', path: '/raw' },
        { method: 'GET', path: '/boom' },
      ],
      mcp: { local: [], external: [] },
    })
  })

  it('hands a route the method, path, query, headers, parsed JSON body and org config', async () => {
    const runner = await startRunner({ pluginDir, config: { prefix: '>>' } })
    const reply = await postJson(runner.url('/echo?tag=a&tag=b&one=1'), { hello: 'world', n: [1, 2] }, { 'x-request-id': 'r-1' })
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({
      prefix: '>>',
      method: 'POST',
      path: '/echo',
      query: { tag: ['a', 'b'], one: '1' },
      headers: { 'content-type': 'application/json', 'user-agent': expect.any(String), 'x-request-id': 'r-1' },
      body: { hello: 'world', n: [1, 2] },
    })
  })

  it('matches :params (URI-decoded) and tolerates a trailing slash', async () => {
    const runner = await startRunner({ pluginDir })
    expect((await fetchJson(runner.url('/items/a%20b?x=1'))).body).toEqual({ prefix: 'echo', id: 'a b', query: { x: '1' } })
    expect((await fetchJson(runner.url('/items/42/'))).body).toMatchObject({ id: '42' })
  })

  it('gives a route the exact request bytes as rawBody', async () => {
    const runner = await startRunner({ pluginDir })
    const sent = Buffer.concat([Buffer.from('{ "a" :\t1 ,\r\n "b":"é" }  \n'), Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0d])])
    const reply = await rawRequest({
      port: runner.port,
      method: 'POST',
      path: '/raw',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(sent.length) },
      body: sent,
    })
    expect(reply.status).toBe(200)
    expect(reply.body.equals(sent)).toBe(true)
  })

  it('keeps rawBody byte-identical even when the body is parsed as JSON', async () => {
    const runner = await startRunner({ pluginDir })
    const sent = Buffer.from('{"z":1,   "a":  [ 1,2 ] }\n\n')
    const reply = await rawRequest({
      port: runner.port,
      method: 'POST',
      path: '/raw',
      headers: { 'content-type': 'application/json' },
      body: sent,
    })
    expect(reply.body.equals(sent)).toBe(true)
  })

  it('falls back to an allow-listed env var when the org config has no value', async () => {
    const runner = await startRunner({ pluginDir, env: { ECHO_PREFIX: 'from-env' } })
    expect((await fetchJson(runner.url('/items/1'))).body).toMatchObject({ prefix: 'from-env' })
  })

  it('turns a throwing handler into a 500 JSON error and keeps serving', async () => {
    const runner = await startRunner({ pluginDir })
    const boom = await fetchJson<{ error: { code: string } }>(runner.url('/boom'))
    expect(boom.status).toBe(500)
    expect(boom.body.error.code).toBe('INTERNAL')
    expect((await fetchJson(runner.url('/health'))).status).toBe(200)
  })

  it('answers unknown paths and methods with a 404 JSON error', async () => {
    const runner = await startRunner({ pluginDir })
    for (const [method, path] of [
      ['GET', '/nope'],
      ['GET', '/echo'],
      ['DELETE', '/items/1'],
      ['GET', '/disable'],
    ] as const) {
      const reply = await fetchJson<{ error: { code: string } }>(runner.url(path), { method })
      expect(reply.status, `${method} ${path}`).toBe(404)
      expect(reply.body.error.code).toBe('NOT_FOUND')
    }
  })

  it('rejects a malformed JSON body on a route with 400', async () => {
    const runner = await startRunner({ pluginDir })
    const reply = await fetchJson<{ error: { code: string } }>(runner.url('/echo'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"broken":',
    })
    expect(reply.status).toBe(400)
    expect(reply.body.error.code).toBe('INVALID_JSON')
  })

  it('refuses a body over 5 MiB with 413 and closes the connection', async () => {
    const runner = await startRunner({ pluginDir })
    const reply = await rawRequest({ port: runner.port, method: 'POST', path: '/raw', body: Buffer.alloc(5 * 1024 * 1024 + 1) })
    expect(reply.status).toBe(413)
    expect(reply.headers.connection).toBe('close')
    expect(JSON.parse(reply.body.toString()).error.code).toBe('PAYLOAD_TOO_LARGE')
  })

  it('serves HEAD through GET routes, without a body', async () => {
    const runner = await startRunner({ pluginDir })
    const reply = await rawRequest({ port: runner.port, method: 'HEAD', path: '/items/7' })
    expect(reply.status).toBe(200)
    expect(reply.body.length).toBe(0)
  })

  it('applies POST /config-update so routes read the new values', async () => {
    const runner = await startRunner({ pluginDir, config: { prefix: 'old' } })
    expect(await postJson(runner.url('/config-update'), { config: { prefix: 'new' } })).toMatchObject({
      status: 200,
      body: { success: true },
    })
    expect((await fetchJson(runner.url('/items/1'))).body).toMatchObject({ prefix: 'new' })
  })

  it('answers /config-update without a config object with 400 success:false', async () => {
    const runner = await startRunner({ pluginDir })
    for (const body of [{}, { config: 'x' }, { config: [1] }]) {
      const reply = await postJson<{ success: boolean; error: string }>(runner.url('/config-update'), body)
      expect(reply.status).toBe(400)
      expect(reply.body).toMatchObject({ success: false, error: expect.any(String) })
    }
  })

  it('answers /validate-auth without a valid authState with 400 valid:false, whatever the body', async () => {
    const runner = await startRunner({ pluginDir })
    const bodies = ['{}', '{"authState":{"methodId":"apiKey"}}', '{"authState":{"credentials":{}}}', 'not json', '']
    for (const body of bodies) {
      const reply = await fetchJson<{ valid: boolean; error: string }>(runner.url('/validate-auth'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      })
      expect(reply.status, body).toBe(400)
      expect(reply.body).toMatchObject({ valid: false, error: expect.any(String) })
    }
  })

  it('treats auth as valid when the plugin has no onValidateAuth (as Hay does)', async () => {
    const runner = await startRunner({ pluginDir })
    const reply = await postJson(runner.url('/validate-auth'), { authState: { methodId: 'x', credentials: {} } })
    expect(reply).toMatchObject({ status: 200, body: { valid: true } })
  })

  it('answers POST /disable with success and keeps answering until stopped', async () => {
    const runner = await startRunner({ pluginDir })
    expect(await postJson(runner.url('/disable'), {})).toMatchObject({ status: 200, body: { success: true } })
    expect(await postJson(runner.url('/disable'), {})).toMatchObject({ status: 200, body: { success: true } })
    expect((await fetchJson(runner.url('/health'))).status).toBe(200)
  })

  it('lists no MCP tools for a plugin without any, and 404s a call', async () => {
    const runner = await startRunner({ pluginDir })
    expect((await fetchJson(runner.url('/mcp/list-tools'))).body).toEqual({ tools: [] })
    expect((await postJson(runner.url('/mcp/call-tool'), { toolName: 'add', arguments: {} })).status).toBe(404)
  })
})
