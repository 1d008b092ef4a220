import { createServer } from 'node:net'
import { appendFile, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createClient } from '@libsql/client'
import { describe, expect, it, vi } from 'vitest'
import { startGate } from '../helpers/gate.js'
import { capturedLogger } from '../helpers/log.js'
import { createManualClock } from '../helpers/manual-clock.js'
import { EXAMPLES_DIR, copyPlugin, exitOf, startTestGateway, tempDir } from '../helpers/gateway.js'

const canBind = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })

describe('idle reaper', () => {
  it('stops a worker idle for IDLE_TIMEOUT_MS and releases its port', async () => {
    const clock = createManualClock(Date.now())
    const t = await startTestGateway({ clock, env: { IDLE_TIMEOUT_MS: '60000' } })
    await t.enable('acme', 'echo')
    const res = await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)
    await res.body?.cancel()
    const [child] = t.spawned
    const port = (await t.instanceRow('acme', 'echo'))?.port ?? 0
    expect(await canBind(port)).toBe(false)

    const exited = exitOf(child!)
    clock.advance(59_999)
    expect(t.gw.pool.list().map((w) => w.state)).toEqual(['ready']) // not a millisecond early
    clock.advance(2)
    expect((await exited).code).toBe(0)
    await t.gw.pool.stop('acme', 'echo') // joins the reaper's stop until state is written
    expect(await t.instanceRow('acme', 'echo')).toMatchObject({ runtimeState: 'stopped', pid: null, port: null })
    expect(await canBind(port)).toBe(true)
  })

  it('does not reap while a request is in flight', async () => {
    const clock = createManualClock(Date.now())
    const gate = await startGate()
    const t = await startTestGateway({ clock, env: { IDLE_TIMEOUT_MS: '1000', GATE_URL: gate.url } })
    await t.enable('acme', 'gated')
    const held = fetch(`${t.url}/orgs/acme/plugins/gated/hold/request`)
    await gate.arrived('request')
    expect(t.gw.pool.list()[0]?.inFlight).toBe(1)
    clock.advance(5_000)
    expect(t.gw.pool.list()[0]?.state).toBe('ready')
    gate.open('request')
    expect((await held).status).toBe(200)
    expect(t.gw.pool.list()[0]).toMatchObject({ state: 'ready', inFlight: 0 })
    expect(t.spawned).toHaveLength(1)
  })

  it('serves a request that arrives while the worker is being reaped from a fresh worker', async () => {
    const clock = createManualClock(Date.now())
    const t = await startTestGateway({ clock, env: { IDLE_TIMEOUT_MS: '1000' } })
    await t.enable('acme', 'echo')
    await (await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).body?.cancel()

    clock.advance(1_001) // the reaper marks the worker stopping at once
    expect(t.gw.pool.list()[0]?.state).toBe('stopping')
    const res = await fetch(`${t.url}/orgs/acme/plugins/echo/items/2`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ id: '2' })
    expect(t.spawned).toHaveLength(2)
  })
})

describe('stop', () => {
  it('SIGKILLs a worker that ignores SIGTERM once STOP_TIMEOUT_MS passes', async () => {
    const t = await startTestGateway({ env: { STOP_TIMEOUT_MS: '300' } })
    await t.enable('acme', 'ignores-sigterm')
    await (await fetch(`${t.url}/orgs/acme/plugins/ignores-sigterm/ping`)).body?.cancel()
    const exited = exitOf(t.spawned[0]!)

    const res = await t.admin('POST', '/orgs/acme/plugins/ignores-sigterm/stop')
    expect(res).toMatchObject({ status: 200, body: { stopped: true } })
    expect((await exited).signal).toBe('SIGKILL')
    expect(await t.instanceRow('acme', 'ignores-sigterm')).toMatchObject({ runtimeState: 'stopped', pid: null })
  })
})

/**
 * A copy of the echo example served once (metadata fresh) by a gateway that is then closed, so
 * the test can change the plugin's code and start a second gateway on the same database.
 */
async function echoServedOnce() {
  const dir = await tempDir()
  const pluginsDir = join(dir, 'plugins')
  const pluginDir = await copyPlugin(join(EXAMPLES_DIR, 'echo'), pluginsDir, 'echo')
  const first = await startTestGateway({ pluginDirs: [pluginsDir], dir })
  await first.enable('acme', 'echo')
  await (await fetch(`${first.url}/orgs/acme/plugins/echo/items/1`)).body?.cancel()
  const row = await first.pluginRow('echo')
  await first.gw.close()
  return { dir, pluginsDir, pluginDir, row }
}

describe('metadata cache', () => {
  it('marks metadata stale when the plugin code changes, and refetches on the next start', async () => {
    const { dir, pluginsDir, pluginDir, row: before } = await echoServedOnce()
    const fetchedAt = before?.metadataFetchedAt
    expect(before?.metadataState).toBe('fresh')

    await appendFile(join(pluginDir, 'index.js'), '\n// a new build\n')
    const second = await startTestGateway({ pluginDirs: [pluginsDir], dir })
    expect((await second.pluginRow('echo'))?.metadataState).toBe('stale')
    await (await fetch(`${second.url}/orgs/acme/plugins/echo/items/1`)).body?.cancel()
    const row = await second.pluginRow('echo')
    expect(row?.metadataState).toBe('fresh')
    expect(row?.metadataFetchedAt?.getTime()).toBeGreaterThan(fetchedAt?.getTime() ?? Infinity)
  })

  it('starts despite a corrupt stored row: metadata that fails the schema is fetched again, unreadable JSON makes that plugin invalid', async () => {
    const { dir, pluginsDir } = await echoServedOnce()
    await copyPlugin(join(EXAMPLES_DIR, 'webhook'), pluginsDir, 'webhook')
    const first = await startTestGateway({ pluginDirs: [pluginsDir], dir })
    await first.gw.close()
    const client = createClient({ url: `file:${join(dir, 'gateway.db')}` })
    await client.execute(`update plugins set metadata = '{"routes":null}' where id = 'echo'`)
    await client.execute(`update plugins set metadata = 'not json' where id = 'webhook'`)
    client.close()

    const t = await startTestGateway({ pluginDirs: [pluginsDir], dir })
    const res = await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)
    expect([res.status, await res.json()]).toEqual([200, expect.objectContaining({ id: '1' })])
    expect(await t.pluginRow('echo')).toMatchObject({
      metadataState: 'fresh',
      metadata: expect.objectContaining({ routes: expect.any(Array) }),
    })
    const { body } = await t.admin('GET', '/plugins')
    expect(body.plugins.find((p: { id: string }) => p.id === 'webhook')).toMatchObject({
      valid: false,
      error: expect.stringMatching(/stored row cannot be read/),
    })
  })

  it('does not fetch metadata again for a fresh plugin when its worker restarts', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo')
    await (await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).body?.cancel()
    const fetchedAt = (await t.pluginRow('echo'))?.metadataFetchedAt
    await t.admin('POST', '/orgs/acme/plugins/echo/stop')
    await (await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).body?.cancel()
    expect(t.spawned).toHaveLength(2)
    expect((await t.pluginRow('echo'))?.metadataFetchedAt).toEqual(fetchedAt)
  })

  it('keeps serving with the last good metadata when a refetch fails (state error)', async () => {
    const { dir, pluginsDir, pluginDir } = await echoServedOnce()

    // The new build declares a config field of an unknown type: its /metadata no longer validates.
    const code = await readFile(join(pluginDir, 'index.js'), 'utf8')
    const broken = code.replace("type: 'string', label: 'Reply prefix'", "type: 'banana', label: 'Reply prefix'")
    expect(broken).not.toBe(code)
    await writeFile(join(pluginDir, 'index.js'), broken)
    const second = await startTestGateway({ pluginDirs: [pluginsDir], dir })
    const res = await fetch(`${second.url}/orgs/acme/plugins/echo/items/7`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ id: '7' })
    const row = await second.pluginRow('echo')
    expect(row?.metadataState).toBe('error')
    expect(row?.metadataError).toMatch(/configSchema|banana|type/)
    expect(row?.metadata?.routes).toContainEqual({ method: 'GET', path: '/items/:id' })
  })

  it('asks a running worker for its metadata again, at most every 5 s, while it has none usable', async () => {
    const { log, lines } = capturedLogger('warn')
    const clock = createManualClock(Date.now())
    const t = await startTestGateway({ clock, log, env: { METADATA_ATTEMPTS: '1' } })
    await t.enable('acme', 'bad-metadata')
    const fetches = () => lines.filter((l) => l.includes('plugin metadata fetch failed')).length
    const get = async () => {
      const res = await fetch(`${t.url}/orgs/acme/plugins/bad-metadata/anything`)
      await res.body?.cancel()
      return res.status
    }

    expect(await get()).toBe(503) // its start fetched once
    expect(await get()).toBe(503) // within 5 s of that: not again
    expect(fetches()).toBe(1)
    clock.advance(5_000)
    expect(await get()).toBe(503) // asks the running worker again, off the request path
    await vi.waitFor(() => expect(fetches()).toBe(2), { timeout: 10_000, interval: 10 })
    expect(await get()).toBe(503)
    expect(fetches()).toBe(2)
    expect(t.spawned).toHaveLength(1)
  })

  it('reports metadata unavailable (503) when a plugin never produced valid metadata', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'bad-metadata')
    // Every request, not only the one whose start found the metadata invalid: nothing is forwarded unchecked.
    for (const path of ['/anything', '/anything', '/other']) {
      const res = await fetch(`${t.url}/orgs/acme/plugins/bad-metadata${path}`)
      expect([path, res.status, res.headers.get('retry-after'), await res.json()]).toEqual([
        path,
        503,
        '5', // how soon the gateway asks the running worker again
        { error: { code: 'METADATA_UNAVAILABLE', message: 'metadata of bad-metadata is unavailable' } },
      ])
    }
    expect((await t.pluginRow('bad-metadata'))?.metadataState).toBe('error')
  })
})

describe('legacy v1 plugins', () => {
  it('take metadata from the manifest and run as node <entry> with PORT, tagged v1', async () => {
    const t = await startTestGateway()
    const { body } = await t.admin('GET', '/plugins')
    const legacy = body.plugins.find((p: { id: string }) => p.id === 'legacy-v1')
    expect(legacy).toMatchObject({ sdkVersion: 'v1', metadataState: 'fresh' })
    expect(legacy.metadata.routes.length).toBeGreaterThan(0)
    const echo = body.plugins.find((p: { id: string }) => p.id === 'echo')
    expect(echo).toMatchObject({ sdkVersion: 'v2' })

    await t.enable('acme', 'legacy-v1')
    const route = legacy.metadata.routes.find((r: { method: string }) => r.method === 'GET')
    const res = await fetch(`${t.url}/orgs/acme/plugins/legacy-v1${route.path}`)
    expect(res.status).toBe(200)
    await res.body?.cancel()
    expect(t.spawned[0]?.spawnargs.slice(-1)[0]).toMatch(/legacy-v1\/index\.js$/)
    expect(await t.instanceRow('acme', 'legacy-v1')).toMatchObject({ runtimeState: 'ready', sdkVersion: 'v1' })
    const workers = (await t.admin('GET', '/workers')).body.workers
    expect(workers[0]).toMatchObject({ pluginId: 'legacy-v1', sdkVersion: 'v1', state: 'ready' })
  })
})
