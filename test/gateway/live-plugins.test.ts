// Plugins added, upgraded and removed under a running gateway (issue 18; README: Live plugin changes).
import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { startCluster } from '../cluster/harness.js'
import { startGate } from '../helpers/gate.js'
import { copyPlugin, EXAMPLES_DIR, FIXTURES_DIR, isRunning, startTestGateway, tempDir } from '../helpers/gateway.js'
import { enable, startGatewayProcess, workersOf } from '../helpers/gateway-process.js'
import { fetchJson } from '../helpers/http.js'
import { createManualClock } from '../helpers/manual-clock.js'
import { PREWARM_REFILL_DELAY_MS } from '../../src/workers/pool.js'

const WAIT = { timeout: 15_000, interval: 20 }

interface Answer {
  version: number
  pid: number
  label: string | null
}

/** A plugins directory holding a copy of the versioned fixture, which tests rewrite. */
async function versionedPlugins(): Promise<{ root: string; plugins: string; pluginDir: string }> {
  const root = await tempDir()
  const plugins = join(root, 'plugins')
  const pluginDir = await copyPlugin(join(FIXTURES_DIR, 'versioned'), plugins, 'versioned')
  return { root, plugins, pluginDir }
}

const setVersion = (pluginDir: string, version: number) => writeFile(join(pluginDir, 'version.js'), `export const VERSION = ${version}\n`)

const pluginJson = async (url: string, id: string) => {
  const { body } = await fetchJson<{ plugins: Array<{ id: string; checksum: string | null }> }>(`${url}/admin/plugins`)
  return body.plugins.find((p) => p.id === id)
}

const rescan = (url: string) => fetchJson(`${url}/admin/plugins/rescan`, { method: 'POST' })

const NOTHING = { added: [], changed: [], removed: [], invalid: [] }

describe('live plugin changes', () => {
  it('rolls a changed plugin while a client loops on it: no request fails, the one in flight ends on the old code, the old worker goes, the new route is served, the gateway stays', async () => {
    const gate = await startGate()
    const { plugins, pluginDir } = await versionedPlugins()
    const g = await startGatewayProcess(await tempDir(), { PLUGINS_DIR: plugins, GATE_URL: gate.url })
    const gatewayPid = g.proc.child.pid
    await enable(g.url, 'acme', 'versioned')
    const base = `${g.url}/orgs/acme/plugins/versioned`
    const first = await fetchJson<Answer>(`${base}/version`)
    expect(first).toMatchObject({ status: 200, body: { version: 1 } })
    const oldPid = first.body.pid
    expect((await fetchJson(`${base}/since-v2`)).status).toBe(404) // not declared by version 1
    const before = await pluginJson(g.url, 'versioned')

    const held = fetchJson<Answer>(`${base}/hold/swap`)
    await gate.arrived('swap')
    const seen: Array<{ status: number; version: number | undefined }> = []
    let isLooping = true
    const loop = (async () => {
      while (isLooping) {
        const res = await fetchJson<Partial<Answer>>(`${base}/version`)
        seen.push({ status: res.status, version: res.body?.version })
      }
    })()
    await vi.waitFor(() => expect(seen.length).toBeGreaterThan(0), WAIT)

    await setVersion(pluginDir, 2)
    expect(await rescan(g.url)).toMatchObject({ status: 200, body: { ...NOTHING, changed: ['versioned'] } })
    await vi.waitFor(() => expect(seen.at(-1)?.version).toBe(2), WAIT)
    expect(await fetchJson<Answer>(`${base}/since-v2`)).toMatchObject({ status: 200, body: { version: 2 } })

    // The request the old worker held finishes there; only then does that worker stop.
    expect(isRunning(oldPid)).toBe(true)
    gate.open('swap')
    expect(await held).toMatchObject({ status: 200, body: { version: 1, pid: oldPid } })
    await vi.waitFor(() => expect(isRunning(oldPid)).toBe(false), WAIT)
    isLooping = false
    await loop

    expect(seen.filter((s) => s.status !== 200)).toEqual([])
    const firstNew = seen.findIndex((s) => s.version === 2)
    expect(seen.slice(firstNew).map((s) => s.version)).toEqual(seen.slice(firstNew).map(() => 2)) // never the old code again
    expect([g.proc.child.pid, g.proc.child.exitCode]).toEqual([gatewayPid, null])
    const after = await pluginJson(g.url, 'versioned')
    expect(after).toMatchObject({ metadataState: 'fresh', scanError: null })
    expect(after?.checksum).not.toBe(before?.checksum)
    expect((await workersOf(g.url)).map((w) => w.pid)).not.toContain(oldPid)
  })

  it('serves changed code from a prewarmed runner booted before the change: nothing cached in it holds the old entry', async () => {
    const { plugins, pluginDir } = await versionedPlugins()
    // Unsandboxed, one prewarmed runner serves any plugin.
    const t = await startTestGateway({ pluginDirs: [plugins], env: { WORKER_SANDBOX: 'off', PREWARM_POOL_SIZE: '1' } })
    await t.enable('acme', 'versioned')
    expect(await fetchJson(`${t.url}/orgs/acme/plugins/versioned/version`)).toMatchObject({ status: 200, body: { version: 1 } })
    await vi.waitFor(() => expect(t.gw.pool.prewarmed()).toBe(1), WAIT) // booted after that start, before the change
    const waiting = t.processes.filter((p) => !t.spawned.includes(p)).map((p) => p.pid)
    expect(waiting).toHaveLength(1)

    await setVersion(pluginDir, 2)
    expect((await t.admin('POST', '/plugins/rescan')).body).toEqual({ ...NOTHING, changed: ['versioned'] })
    const res = await fetchJson<Answer>(`${t.url}/orgs/acme/plugins/versioned/version`)
    expect(res).toMatchObject({ status: 200, body: { version: 2, pid: waiting[0] } })
  })

  it('serves a request that waited for a start of the old code from that worker, and starts the new code for one that came after the change', async () => {
    const gate = await startGate()
    const { plugins, pluginDir } = await versionedPlugins()
    const t = await startTestGateway({ pluginDirs: [plugins], env: { GATE_URL: gate.url } })
    await t.enable('acme', 'versioned', { startGate: 'start' })
    const base = `${t.url}/orgs/acme/plugins/versioned`
    const waited = fetchJson<Answer>(`${base}/version`) // metadata never fetched: the route is checked after the start
    const [{ pid: oldPid } = {}] = (await gate.arrived('start-v1')).map((q) => ({ pid: Number(q.get('pid')) }))

    await setVersion(pluginDir, 2)
    expect((await t.admin('POST', '/plugins/rescan')).body).toEqual({ ...NOTHING, changed: ['versioned'] })
    const after = fetchJson<Answer>(`${base}/since-v2`)
    await gate.arrived('start-v2')
    gate.open('start-v1')
    expect(await waited).toMatchObject({ status: 200, body: { version: 1, pid: oldPid } })
    await vi.waitFor(() => expect(isRunning(oldPid ?? -1)).toBe(false), WAIT) // retired once its waiter was served
    gate.open('start-v2')
    expect(await after).toMatchObject({ status: 200, body: { version: 2 } })
    expect(await fetchJson(`${base}/version`)).toMatchObject({ status: 200, body: { version: 2 } })
    expect(t.gw.pool.list()).toEqual([expect.objectContaining({ pluginId: 'versioned', state: 'ready' })])
    expect((await t.instanceRow('acme', 'versioned'))?.runtimeState).toBe('ready')
  })

  it('a start of the old code that fails after the change is reported (the row does not stay starting), and the new code starts without its backoff', async () => {
    const gate = await startGate()
    const { plugins, pluginDir } = await versionedPlugins()
    const t = await startTestGateway({
      pluginDirs: [plugins],
      env: { GATE_URL: gate.url, RESTART_BACKOFF_MS: '3600000', RESTART_BACKOFF_MAX_MS: '3600000' },
    })
    await t.enable('acme', 'versioned', { startGate: 'start' })
    const base = `${t.url}/orgs/acme/plugins/versioned`
    const waited = fetchJson(`${base}/version`)
    const [{ pid: oldPid = -1 } = {}] = (await gate.arrived('start-v1')).map((q) => ({ pid: Number(q.get('pid')) }))

    await setVersion(pluginDir, 2)
    expect((await t.admin('POST', '/plugins/rescan')).body).toEqual({ ...NOTHING, changed: ['versioned'] })
    process.kill(oldPid, 'SIGKILL') // the old code's start fails, rolled
    expect(await waited).toMatchObject({ status: 503, body: { error: { code: 'WORKER_START_FAILED' } } })
    await vi.waitFor(async () => expect((await t.instanceRow('acme', 'versioned'))?.runtimeState).toBe('error'), WAIT)

    gate.open('start-v2')
    expect(await fetchJson(`${base}/version`)).toMatchObject({ status: 200, body: { version: 2 } })
    expect((await t.instanceRow('acme', 'versioned'))?.runtimeState).toBe('ready')
  })

  it('gives a changed plugin a sandbox policy worked out again, and a prewarmed runner booted under it', async () => {
    const root = await tempDir()
    const plugins = join(root, 'plugins')
    const pluginDir = await copyPlugin(join(FIXTURES_DIR, 'versioned'), plugins, 'versioned')
    const t = await startTestGateway({ pluginDirs: [plugins], env: { PREWARM_POOL_SIZE: '1' } })
    await t.enable('acme', 'versioned')
    expect((await fetchJson(`${t.url}/orgs/acme/plugins/versioned/version`)).status).toBe(200)
    await vi.waitFor(() => expect(t.gw.pool.prewarmed()).toBe(1), WAIT)
    const [runner] = t.processes.filter((p) => !t.spawned.includes(p))

    // Version 2 imports a package linked in from elsewhere: the policy of version 1 could not read it.
    const library = join(root, 'packages', 'greeting')
    await mkdir(library, { recursive: true })
    await writeFile(join(library, 'package.json'), '{"name":"greeting","type":"module","exports":"./index.js"}')
    await writeFile(join(library, 'index.js'), 'export const VERSION = 2\n')
    await mkdir(join(pluginDir, 'node_modules'))
    await symlink('../../../packages/greeting', join(pluginDir, 'node_modules', 'greeting'))
    await writeFile(join(pluginDir, 'version.js'), "export { VERSION } from 'greeting'\n")
    expect((await t.admin('POST', '/plugins/rescan')).body).toEqual({ ...NOTHING, changed: ['versioned'] })

    await vi.waitFor(() => expect(runner?.signalCode).toBe('SIGKILL'), WAIT) // booted under the old policy: given up
    expect(await fetchJson(`${t.url}/orgs/acme/plugins/versioned/version`)).toMatchObject({ status: 200, body: { version: 2 } })
    await vi.waitFor(() => expect(t.gw.pool.prewarmed()).toBe(1), WAIT)
    await t.enable('globex', 'versioned')
    const next = await fetchJson<Answer>(`${t.url}/orgs/globex/plugins/versioned/version`)
    expect(next).toMatchObject({ status: 200, body: { version: 2 } })
    expect(t.processes.find((p) => p.pid === next.body.pid)?.spawnargs).toContain('--prewarm')
  })

  it('boots no prewarmed runner under the old policy for a start of the old code that ends after the change; the new code’s start refills the pool under the new one', async () => {
    const gate = await startGate()
    const clock = createManualClock(Date.now()) // the refill runs on a timer: the test fires it
    const { plugins, pluginDir } = await versionedPlugins()
    const t = await startTestGateway({ clock, pluginDirs: [plugins], env: { GATE_URL: gate.url, PREWARM_POOL_SIZE: '1' } })
    const runners = () => t.processes.filter((p) => p.spawnargs.includes('--prewarm'))
    const refillDue = () => clock.waitForTimer((timer) => timer.ms === PREWARM_REFILL_DELAY_MS)
    await t.enable('acme', 'versioned', { startGate: 'start' })
    const base = `${t.url}/orgs/acme/plugins/versioned`
    const waited = fetchJson<Answer>(`${base}/version`)
    await gate.arrived('start-v1') // sandboxed: no runner yet, so this start spawned fresh

    await setVersion(pluginDir, 2)
    expect((await t.admin('POST', '/plugins/rescan')).body).toEqual({ ...NOTHING, changed: ['versioned'] })
    gate.open('start-v1')
    expect(await waited).toMatchObject({ status: 200, body: { version: 1 } })
    await refillDue()
    clock.advance(PREWARM_REFILL_DELAY_MS)
    expect(runners()).toHaveLength(0) // no runner of the old policy: nobody would take it

    gate.open('start-v2')
    const first = await fetchJson<Answer>(`${base}/version`)
    expect(first).toMatchObject({ status: 200, body: { version: 2 } })
    await refillDue()
    clock.advance(PREWARM_REFILL_DELAY_MS)
    expect(runners()).toHaveLength(1)
    await vi.waitFor(() => expect(t.gw.pool.prewarmed()).toBe(1), WAIT)
    await t.enable('globex', 'versioned', { startGate: 'start' })
    const next = await fetchJson<Answer>(`${t.url}/orgs/globex/plugins/versioned/version`)
    expect(next).toMatchObject({ status: 200, body: { version: 2, pid: runners()[0]?.pid } })
  })

  it('lists what a roll leaves running beside the new generation: the worker of the old code draining, a start of the old code, each replaced by a start named `replacing` it', async () => {
    const gate = await startGate()
    const { plugins, pluginDir } = await versionedPlugins()
    const t = await startTestGateway({ pluginDirs: [plugins], env: { GATE_URL: gate.url } })
    const url = (orgId: string, path: string) => `${t.url}/orgs/${orgId}/plugins/versioned${path}`
    const workers = async () => (await t.admin('GET', '/workers')).body.workers as Array<Record<string, unknown>>
    // globex: a ready worker of the old code with a request held on it.
    await t.enable('globex', 'versioned', { startGate: 'g' })
    gate.open('g-v1')
    const old = await fetchJson<Answer>(url('globex', '/version'))
    expect(old).toMatchObject({ status: 200, body: { version: 1 } })
    const held = fetchJson<Answer>(url('globex', '/hold/swap'))
    await gate.arrived('swap')
    // acme: a start of the old code, held in its onStart.
    await t.enable('acme', 'versioned', { startGate: 'a' })
    const waited = fetchJson<Answer>(url('acme', '/version'))
    await gate.arrived('a-v1')
    const gens = Object.fromEntries((await workers()).map((w) => [w.orgId, w.gen as number]))

    await setVersion(pluginDir, 2)
    expect((await t.admin('POST', '/plugins/rescan')).body).toEqual({ ...NOTHING, changed: ['versioned'] })
    const after = ['acme', 'globex'].map((org) => fetchJson<Answer>(url(org, '/version')))
    await gate.arrived('a-v2')
    await gate.arrived('g-v2')
    const listed = await workers()
    const newGen = (orgId: string) => listed.find((w) => w.orgId === orgId && w.gen !== gens[orgId])?.gen
    expect(listed).toHaveLength(4)
    expect(listed).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ orgId: 'acme', gen: newGen('acme'), state: 'starting', replacing: gens.acme }),
        expect.objectContaining({ orgId: 'acme', gen: gens.acme, state: 'starting', replacing: null }),
        expect.objectContaining({ orgId: 'globex', gen: newGen('globex'), state: 'starting', replacing: gens.globex }),
        expect.objectContaining({ orgId: 'globex', gen: gens.globex, state: 'stopping', pid: old.body.pid, inFlight: 1, replacing: null }),
      ]),
    )
    // The slot comes first: what reads one worker per key reads the current generation.
    expect(listed.map((w) => w.replacing === null)).toEqual([false, false, true, true])

    gate.open('a-v1')
    gate.open('swap')
    expect([await waited, await held]).toMatchObject([{ body: { version: 1 } }, { body: { version: 1 } }])
    gate.open('a-v2')
    gate.open('g-v2')
    for (const answer of after) expect(await answer).toMatchObject({ status: 200, body: { version: 2 } })
    await vi.waitFor(async () => {
      const settled = await workers()
      expect(settled.map((w) => [w.state, w.replacing])).toEqual([
        ['ready', null],
        ['ready', null],
      ])
    }, WAIT)
  })

  it('lists an added folder at once; a removed one answers 404, drains its worker, and keeps its instance and sealed config for when it is back', async () => {
    const gate = await startGate()
    const { root, plugins, pluginDir } = await versionedPlugins()
    const t = await startTestGateway({ pluginDirs: [plugins], env: { GATE_URL: gate.url } })

    await copyPlugin(join(EXAMPLES_DIR, 'echo'), plugins, 'echo')
    expect(await t.admin('POST', '/plugins/rescan')).toEqual({ status: 200, body: { ...NOTHING, added: ['echo'] } })
    expect((await t.admin('GET', '/plugins')).body.plugins).toEqual([
      expect.objectContaining({ id: 'echo', valid: true, metadataState: 'missing' }),
      expect.objectContaining({ id: 'versioned' }),
    ])
    await t.enable('acme', 'echo')
    expect((await fetchJson(`${t.url}/orgs/acme/plugins/echo/items/1`)).status).toBe(200)
    expect((await t.pluginRow('echo'))?.metadataState).toBe('fresh') // fetched on its first start

    await t.enable('acme', 'versioned', { label: 'kept' })
    const base = `${t.url}/orgs/acme/plugins/versioned`
    const { body: first } = await fetchJson<Answer>(`${base}/version`)
    expect(first).toMatchObject({ version: 1, label: 'kept' })
    const stored = await t.instanceRow('acme', 'versioned')
    const held = fetchJson<Answer>(`${base}/hold/leaving`)
    await gate.arrived('leaving')

    await rename(pluginDir, join(root, 'aside'))
    expect((await t.admin('POST', '/plugins/rescan')).body).toEqual({ ...NOTHING, removed: ['versioned'] })
    expect(await fetchJson(`${base}/version`)).toMatchObject({ status: 404, body: { error: { code: 'PLUGIN_NOT_FOUND' } } })
    expect((await t.admin('GET', '/orgs/acme/plugins/versioned')).status).toBe(404)
    expect(isRunning(first.pid)).toBe(true) // draining
    gate.open('leaving')
    expect(await held).toMatchObject({ status: 200, body: { pid: first.pid } })
    await vi.waitFor(() => expect(isRunning(first.pid)).toBe(false), WAIT)
    // The pid is gone before the gateway has heard of the exit and written the stop: wait for the row.
    await vi.waitFor(
      async () =>
        expect(await t.instanceRow('acme', 'versioned')).toMatchObject({ enabled: true, config: stored?.config, runtimeState: 'stopped' }),
      WAIT,
    )
    expect((await fetchJson(`${t.url}/orgs/acme/plugins/echo/items/2`)).status).toBe(200) // the other plugin is untouched

    await rename(join(root, 'aside'), pluginDir)
    expect((await t.admin('POST', '/plugins/rescan')).body).toEqual({ ...NOTHING, added: ['versioned'] })
    expect(await fetchJson(`${base}/version`)).toMatchObject({ status: 200, body: { version: 1, label: 'kept' } })
  })

  it('keeps serving the previous version when a change breaks the manifest, shows the error on the plugin, and takes the fixed version', async () => {
    const { plugins, pluginDir } = await versionedPlugins()
    await copyPlugin(join(EXAMPLES_DIR, 'echo'), plugins, 'echo')
    // A failed start's backoff outlasts the test: only the rescan of the fixed directory clears it.
    const t = await startTestGateway({ pluginDirs: [plugins], env: { RESTART_BACKOFF_MS: '3600000', RESTART_BACKOFF_MAX_MS: '3600000' } })
    await t.enable('acme', 'versioned')
    await t.enable('acme', 'echo')
    const base = `${t.url}/orgs/acme/plugins/versioned`
    const { body: first } = await fetchJson<Answer>(`${base}/version`)
    const before = await pluginJson(t.url, 'versioned')

    const manifest = join(pluginDir, 'package.json')
    const good = await readFile(manifest, 'utf8')
    await writeFile(manifest, '{ "name": "hay-plugin-fixture-versioned", ')
    await setVersion(pluginDir, 2)
    const { body } = await t.admin('POST', '/plugins/rescan')
    expect(body).toEqual({ ...NOTHING, invalid: [{ id: 'versioned', error: expect.stringContaining('not valid JSON') }] })
    expect(await pluginJson(t.url, 'versioned')).toMatchObject({
      valid: true,
      checksum: before?.checksum,
      scanError: expect.stringContaining('not valid JSON'),
      error: expect.stringContaining('not valid JSON'),
    })
    expect(await fetchJson(`${base}/version`)).toMatchObject({ status: 200, body: { version: 1, pid: first.pid } }) // same worker
    expect((await fetchJson(`${t.url}/orgs/acme/plugins/echo/items/1`)).status).toBe(200)
    expect(t.spawned.filter((c) => c.pid === first.pid)).toHaveLength(1)
    // The last valid version is not on disk any more: a worker starting meanwhile reads the directory as it is.
    await t.enable('globex', 'versioned')
    const other = `${t.url}/orgs/globex/plugins/versioned`
    expect(await fetchJson(`${other}/version`)).toMatchObject({ status: 503, body: { error: { code: 'WORKER_START_FAILED' } } })

    await writeFile(manifest, good)
    expect((await t.admin('POST', '/plugins/rescan')).body).toEqual({ ...NOTHING, changed: ['versioned'] })
    expect(await fetchJson(`${base}/version`)).toMatchObject({ status: 200, body: { version: 2 } })
    expect(await fetchJson(`${other}/version`)).toMatchObject({ status: 200, body: { version: 2 } })
    expect(await pluginJson(t.url, 'versioned')).toMatchObject({ scanError: null, error: null })
    await vi.waitFor(() => expect(isRunning(first.pid)).toBe(false), WAIT)
  })

  it('lists an id found in two plugins directories as invalid once, and keeps serving the version it had', async () => {
    const { root, plugins } = await versionedPlugins()
    const other = join(root, 'more-plugins')
    await mkdir(other)
    const t = await startTestGateway({ pluginDirs: [plugins, other] })
    await t.enable('acme', 'versioned')
    const base = `${t.url}/orgs/acme/plugins/versioned`
    const { body: first } = await fetchJson<Answer>(`${base}/version`)

    await copyPlugin(join(FIXTURES_DIR, 'versioned'), other, 'versioned')
    const { body } = await t.admin('POST', '/plugins/rescan')
    expect(body).toEqual({ ...NOTHING, invalid: [{ id: 'versioned', error: expect.any(String) }] })
    expect(await fetchJson(`${base}/version`)).toMatchObject({ status: 200, body: { version: 1, pid: first.pid } })
  })

  it.runIf(process.getuid?.() === 0)(
    'lists a plugin added where its workers’ user cannot reach as invalid, with the reason (a root gateway)',
    async () => {
      const { plugins } = await versionedPlugins()
      const t = await startTestGateway({ pluginDirs: [plugins] })
      const locked = await copyPlugin(join(EXAMPLES_DIR, 'echo'), plugins, 'locked')
      await chmod(locked, 0o700)
      expect((await t.admin('POST', '/plugins/rescan')).body).toEqual({
        ...NOTHING,
        invalid: [{ id: 'locked', error: expect.stringContaining(`cannot search ${locked} (mode 0700`) }],
      })
    },
  )

  it('restarts every org’s worker of one plugin, and works out its sandbox policy again (a relinked dependency the checksum does not cover)', async () => {
    const root = await tempDir()
    const plugins = join(root, 'plugins')
    const pluginDir = await copyPlugin(join(FIXTURES_DIR, 'versioned'), plugins, 'versioned')
    await copyPlugin(join(EXAMPLES_DIR, 'echo'), plugins, 'echo')
    const library = (version: number) => join(root, `greeting-${version}`)
    for (const version of [1, 2]) {
      await mkdir(library(version))
      await writeFile(join(library(version), 'package.json'), '{"name":"greeting","type":"module","exports":"./index.js"}')
      await writeFile(join(library(version), 'index.js'), `export const VERSION = ${version}\n`)
    }
    await mkdir(join(pluginDir, 'node_modules'))
    const link = join(pluginDir, 'node_modules', 'greeting')
    await symlink(library(1), link)
    await writeFile(join(pluginDir, 'version.js'), "export { VERSION } from 'greeting'\n")
    const t = await startTestGateway({ pluginDirs: [plugins] })
    const pids: Record<string, number> = {}
    for (const org of ['acme', 'globex']) {
      await t.enable(org, 'versioned')
      const { body } = await fetchJson<Answer>(`${t.url}/orgs/${org}/plugins/versioned/version`)
      expect(body.version).toBe(1)
      pids[org] = body.pid
    }
    await t.enable('acme', 'echo')
    expect((await fetchJson(`${t.url}/orgs/acme/plugins/echo/items/1`)).status).toBe(200)
    const echoPid = t.gw.pool.list().find((w) => w.pluginId === 'echo')?.pid

    await rm(link)
    await symlink(library(2), link)
    expect((await t.admin('POST', '/plugins/rescan')).body).toEqual(NOTHING) // node_modules is not in the checksum
    expect(await t.admin('POST', '/plugins/versioned/restart')).toEqual({ status: 200, body: { pluginId: 'versioned', workers: 2 } })
    for (const org of ['acme', 'globex']) {
      await vi.waitFor(() => expect(isRunning(pids[org] ?? -1)).toBe(false), WAIT)
      expect(await fetchJson(`${t.url}/orgs/${org}/plugins/versioned/version`)).toMatchObject({ status: 200, body: { version: 2 } })
    }
    expect(t.gw.pool.list().find((w) => w.pluginId === 'echo')?.pid).toBe(echoPid)
    expect(await t.admin('POST', '/plugins/nope/restart')).toMatchObject({ status: 404, body: { error: { code: 'PLUGIN_NOT_FOUND' } } })
  })

  it('WATCH_PLUGINS: a checksum change is picked up without a call, and so is a new folder', async () => {
    const { plugins, pluginDir } = await versionedPlugins()
    const t = await startTestGateway({ pluginDirs: [plugins], env: { WATCH_PLUGINS: '1', WATCH_DEBOUNCE_MS: '20' } })
    await t.enable('acme', 'versioned')
    const base = `${t.url}/orgs/acme/plugins/versioned`
    expect((await fetchJson<Answer>(`${base}/version`)).body.version).toBe(1)
    const before = await pluginJson(t.url, 'versioned')

    await setVersion(pluginDir, 2)
    await vi.waitFor(async () => expect((await pluginJson(t.url, 'versioned'))?.checksum).not.toBe(before?.checksum), WAIT)
    expect(await fetchJson(`${base}/version`)).toMatchObject({ status: 200, body: { version: 2 } })

    await copyPlugin(join(EXAMPLES_DIR, 'echo'), plugins, 'echo')
    await vi.waitFor(async () => expect(await pluginJson(t.url, 'echo')).toMatchObject({ valid: true }), WAIT)
  })

  it('WATCH_PLUGINS, sandbox off: what a plugin writes beside its code (logs) neither changes its checksum nor rolls its workers', async () => {
    const { plugins, pluginDir } = await versionedPlugins()
    const writer = await copyPlugin(join(FIXTURES_DIR, 'writes-own-dir'), plugins, 'writes-own-dir')
    const t = await startTestGateway({ pluginDirs: [plugins], env: { WORKER_SANDBOX: 'off', WATCH_PLUGINS: '1', WATCH_DEBOUNCE_MS: '20' } })
    await t.enable('acme', 'writes-own-dir')
    const write = async () => (await fetchJson<{ pid: number }>(`${t.url}/orgs/acme/plugins/writes-own-dir/write`)).body.pid
    const pid = await write()
    expect([await write(), await write()]).toEqual([pid, pid])
    expect(existsSync(join(writer, 'app.log'))).toBe(true)
    const written = await pluginJson(t.url, 'writes-own-dir')

    // A change of another plugin's code, after those writes: its rescan sees only that change.
    const before = await pluginJson(t.url, 'versioned')
    await setVersion(pluginDir, 2)
    await vi.waitFor(async () => expect((await pluginJson(t.url, 'versioned'))?.checksum).not.toBe(before?.checksum), WAIT)
    expect((await pluginJson(t.url, 'writes-own-dir'))?.checksum).toBe(written?.checksum)
    expect(await write()).toBe(pid)
  })
})

describe('live plugin changes in a cluster', () => {
  it('a rescan on one gateway reaches the other: both converge on the checksum and each replaces its own workers; a restart reaches both too', async () => {
    const { plugins, pluginDir } = await versionedPlugins()
    const { gateways } = await startCluster(2, { PLUGINS_DIR: plugins })
    const [gw0, gw1] = [gateways[0]!, gateways[1]!]
    // acme's worker on gw0, globex's on gw1: the gateway that first serves a key owns it.
    const started = async () => {
      const pids: number[] = []
      for (const [org, gw] of [
        ['acme', gw0],
        ['globex', gw1],
      ] as const) {
        const res = await fetchJson<Answer>(`${gw.url}/orgs/${org}/plugins/versioned/version`)
        expect(res.status).toBe(200)
        pids.push(res.body.pid)
        expect((await workersOf(gw.url)).map((w) => [w.orgId, w.pid])).toContainEqual([org, res.body.pid])
      }
      return pids
    }
    await enable(gw0.url, 'acme', 'versioned')
    await enable(gw0.url, 'globex', 'versioned')
    const v1 = await started()

    await setVersion(pluginDir, 2)
    expect(await rescan(gw0.url)).toMatchObject({ status: 200, body: { ...NOTHING, changed: ['versioned'] } })
    const checksum = (await pluginJson(gw0.url, 'versioned'))?.checksum
    await vi.waitFor(async () => expect((await pluginJson(gw1.url, 'versioned'))?.checksum).toBe(checksum), WAIT)
    for (const pid of v1) await vi.waitFor(() => expect(isRunning(pid)).toBe(false), WAIT)
    for (const gw of [gw0, gw1]) {
      for (const org of ['acme', 'globex']) {
        expect(await fetchJson(`${gw.url}/orgs/${org}/plugins/versioned/since-v2`)).toMatchObject({ status: 200, body: { version: 2 } })
      }
    }

    // A restart through gw1 reaches gw0's workers too (there since the requests above), and gw1's own.
    await enable(gw0.url, 'initech', 'versioned')
    expect((await fetchJson(`${gw1.url}/orgs/initech/plugins/versioned/version`)).status).toBe(200)
    const live = [...(await workersOf(gw0.url)), ...(await workersOf(gw1.url))]
    expect(live.map((w) => w.orgId).sort()).toEqual(['acme', 'globex', 'initech'])
    expect((await workersOf(gw1.url)).map((w) => w.orgId)).toEqual(['initech'])
    expect(await fetchJson(`${gw1.url}/admin/plugins/versioned/restart`, { method: 'POST' })).toMatchObject({
      status: 200,
      body: { pluginId: 'versioned', workers: 1 },
    })
    for (const { pid } of live) await vi.waitFor(() => expect(isRunning(pid)).toBe(false), WAIT)
  })
})
