import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { EXAMPLES_DIR, ROOT, startTestGateway } from '../helpers/gateway.js'

// Hay's runner answers /health as soon as it listens and runs the plugin's onStart after that
// (NOTES.md). The fixture does the same, with an onStart that takes a while; it ignores the plugin
// directory, so any v2 plugin id of the catalog names it.
const LATE_START_RUNNER = join(ROOT, 'test', 'fixtures', 'runners', 'late-start-runner.mjs')

async function lateStartGateway(flags = '') {
  const t = await startTestGateway({
    pluginDirs: [EXAMPLES_DIR],
    env: { RUNNER_COMMAND: `node ${LATE_START_RUNNER} --start-ms=300 ${flags}` },
  })
  await t.enable('acme', 'echo')
  return t
}

describe('a runner whose /health answers before its onStart has run', () => {
  it('is ready only once onStart is done: the MCP tools it registers are listed on the first call', async () => {
    const t = await lateStartGateway()
    const tools = await t.admin('GET', '/orgs/acme/plugins/echo/mcp/tools') // this call starts the worker
    expect(tools).toMatchObject({ status: 200, body: { tools: [{ name: 'site-info' }] } })
    expect(t.spawned).toHaveLength(1)
  })

  it('takes a config update right after its start instead of refusing it (422 "Runtime data not set")', async () => {
    const t = await lateStartGateway()
    expect((await t.admin('POST', '/orgs/acme/plugins/echo/start')).status).toBe(200)
    const put = await t.admin('PUT', '/orgs/acme/plugins/echo', { config: { siteUrl: 'https://shop.example' } })
    expect(put).toMatchObject({ status: 200, body: { config: { siteUrl: 'https://shop.example' } } })
    const call = await t.admin('POST', '/orgs/acme/plugins/echo/mcp/call', { toolName: 'site-info', arguments: {} })
    expect(call).toMatchObject({ status: 200, body: { siteUrl: 'https://shop.example' } })
    expect(t.spawned).toHaveLength(1) // the update reached the running worker: no restart
  })

  it("serves one whose onStart failed (degraded, as Hay's runner keeps it): ready, no tools, stopped cleanly", async () => {
    const t = await lateStartGateway('--start-fails')
    expect(await t.admin('GET', '/orgs/acme/plugins/echo/mcp/tools')).toMatchObject({ status: 200, body: { tools: [] } })
    expect((await fetch(`${t.url}/orgs/acme/plugins/echo/ping`)).status).toBe(200)
    const [child] = t.spawned
    expect(await t.admin('POST', '/orgs/acme/plugins/echo/stop')).toMatchObject({ status: 200, body: { stopped: true } })
    expect(child?.exitCode).toBe(0) // SIGTERM honoured, no SIGKILL
  })
})
