import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { fetchJson, postJson, rawRequest } from '../helpers/http.js'
import { FIXTURES_DIR, startRunner } from '../helpers/process.js'
import { useNoLeftoverProcesses } from './setup.js'

const pluginDir = join(FIXTURES_DIR, 'hay-compat')

// A plugin written against Hay's SDK v2 API (see the fixture's header) runs unchanged.
describe('a Hay-style SDK v2 plugin under our runner', () => {
  useNoLeftoverProcesses()
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hay-compat-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('builds /metadata the way Hay does: OAuth client fields by name, legacy ui() and ui.page()', async () => {
    const runner = await startRunner({ pluginDir })
    const { body } = await fetchJson<Record<string, unknown>>(runner.url('/metadata'))
    expect(body).toEqual({
      configSchema: expect.objectContaining({ retries: { type: 'number', label: 'Retries', default: 3 } }),
      authMethods: [
        { type: 'apiKey', id: 'apiKey', label: 'API Key', configField: 'apiKey' },
        {
          type: 'oauth2',
          id: 'oauth',
          label: 'OAuth 2.0',
          authorizationUrl: 'https://example.test/oauth/authorize',
          tokenUrl: 'https://example.test/oauth/token',
          scopes: ['read', 'write'],
          clientId: 'clientId',
          clientSecret: 'clientSecret',
        },
      ],
      uiExtensions: [{ slot: 'plugin-settings', component: 'components/Settings.vue' }],
      pages: [{ id: 'setup-guide', title: 'Setup Guide', component: './components/Setup.vue', slot: 'after-settings' }],
      routes: [
        { method: 'POST', path: '/webhook' },
        { method: 'GET', path: '/health' },
        { method: 'GET', path: '/settings' },
        { method: 'GET', path: '/oauth/callback' },
        { method: 'GET', path: '/cron-runs' },
      ],
      mcp: { local: [], external: [] },
    })
  })

  it("serves the runner's /health over a plugin route of the same path (control endpoints win, as in Hay)", async () => {
    const runner = await startRunner({ pluginDir })
    expect((await fetchJson(runner.url('/health'))).body).toMatchObject({ status: 'healthy', pid: runner.child.pid })
  })

  it('parses JSON bodies for Express-style handlers', async () => {
    const runner = await startRunner({ pluginDir })
    expect((await postJson(runner.url('/webhook'), { type: 'payment_intent.succeeded' })).body).toEqual({
      received: true,
      type: 'payment_intent.succeeded',
    })
  })

  it('supports the Express response helpers plugins use, such as redirect', async () => {
    const runner = await startRunner({ pluginDir })
    const reply = await rawRequest({ port: runner.port, path: '/oauth/callback?code=abc' })
    expect(reply.status).toBe(302)
    expect(reply.headers.location).toBe('/done?code=abc')
  })

  it('resolves config as org value, then allow-listed env (never another), then default', async () => {
    const keys = ['apiKey', 'clientId', 'clientSecret', 'retries', 'externalMcpUrl', 'token']
    const env = { HAY_COMPAT_API_KEY: 'from-env', NOT_ALLOWED_TOKEN: 'leaked' }
    const fromEnv = await startRunner({ pluginDir, config: {}, env })
    expect((await fetchJson(fromEnv.url('/settings'))).body).toEqual({ apiKey: 'from-env', retries: 3, token: 'fallback', keys })
    const fromOrg = await startRunner({ pluginDir, config: { apiKey: 'from-org', retries: 7, token: 't' }, env })
    expect((await fetchJson(fromOrg.url('/settings'))).body).toEqual({ apiKey: 'from-org', retries: 7, token: 't', keys })
  })

  it('validates auth against stored config overlaid with the submitted credentials', async () => {
    const runner = await startRunner({ pluginDir, config: { apiKey: 'sk_test_stale' } })
    const good = await postJson(runner.url('/validate-auth'), {
      authState: { methodId: 'apiKey', credentials: { apiKey: 'sk_test_good' } },
    })
    expect(good.body).toEqual({ valid: true })
    const bad = await postJson(runner.url('/validate-auth'), { authState: { methodId: 'apiKey', credentials: { apiKey: 'sk_test_bad' } } })
    expect(bad.body).toEqual({ valid: false })
  })

  it('reports an onConfigUpdate that throws as success:false and keeps the previous config', async () => {
    const runner = await startRunner({ pluginDir, config: { retries: 5 } })
    const reply = await postJson(runner.url('/config-update'), { config: { retries: 13 } })
    expect(reply).toMatchObject({ status: 500, body: { success: false, error: '13 retries is unlucky' } })
    expect((await fetchJson(runner.url('/settings'))).body).toMatchObject({ retries: 5 })
  })

  it('lists and calls tools of MCP servers started in onStart: in-process, stdio and external', async () => {
    const external = await startJsonRpcServer()
    try {
      const runner = await startRunner({ pluginDir, config: { externalMcpUrl: external.url } })
      const { body } = await fetchJson<{ tools: { name: string }[] }>(runner.url('/mcp/list-tools'))
      expect(body.tools).toEqual([
        { name: 'ping', description: 'Answers pong', input_schema: { type: 'object', properties: {} } },
        { name: 'stdio_echo', description: 'Echoes its arguments', input_schema: { type: 'object' } },
        { name: 'remote_time', description: '', input_schema: { type: 'object', properties: {} } },
      ])
      const call = (toolName: string, args: unknown) => postJson(runner.url('/mcp/call-tool'), { toolName, arguments: args })
      expect((await call('ping', {})).body).toEqual({ content: [{ type: 'text', text: 'pong' }] })
      expect((await call('stdio_echo', { x: 1 })).body).toEqual({ content: [{ type: 'text', text: '{"x":1}' }] })
      expect((await call('remote_time', {})).body).toEqual({ content: [{ type: 'text', text: 'noon' }] })
      expect(external.authorizations.every((a) => a === 'Bearer t0ken')).toBe(true)
      expect((await call('nope', {})).status).toBe(404)
    } finally {
      external.server.close()
    }
  })

  it('runs onDisable exactly once across POST /disable and the SIGTERM that follows', async () => {
    const marker = join(dir, 'disable.log')
    const runner = await startRunner({ pluginDir, env: { HAY_COMPAT_MARKER: marker } })
    expect((await postJson(runner.url('/disable'), {})).body).toEqual({ success: true })
    runner.child.kill('SIGTERM')
    expect((await runner.exited).code).toBe(0)
    expect(readFileSync(marker, 'utf8')).toBe('disabled\n')
  })

  it('runs onDisable on SIGTERM when /disable never came', async () => {
    const marker = join(dir, 'disable.log')
    const runner = await startRunner({ pluginDir, env: { HAY_COMPAT_MARKER: marker } })
    runner.child.kill('SIGTERM')
    expect((await runner.exited).code).toBe(0)
    expect(readFileSync(marker, 'utf8')).toBe('disabled\n')
  })

  it('serves registered cron jobs at POST /cron/:name', async () => {
    const runner = await startRunner({ pluginDir })
    expect((await postJson(runner.url('/cron/refresh'), {})).body).toEqual({ success: true })
    expect((await fetchJson(runner.url('/cron-runs'))).body).toEqual({ cronRuns: 1 })
    expect((await postJson(runner.url('/cron/nope'), {})).status).toBe(404)
  })
})

/** A tiny external MCP server: JSON-RPC 2.0 over HTTP POST, recording the auth header it saw. */
async function startJsonRpcServer() {
  const authorizations: (string | undefined)[] = []
  const server = createServer(async (req: IncomingMessage, res) => {
    authorizations.push(req.headers.authorization)
    let text = ''
    for await (const chunk of req) text += chunk
    const { id, method } = JSON.parse(text) as { id: number; method: string }
    const result =
      method === 'tools/list' ? { tools: [{ name: 'remote_time', inputSchema: null }] } : { content: [{ type: 'text', text: 'noon' }] }
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ jsonrpc: '2.0', id, result }))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, authorizations, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp` }
}
