import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { startGate } from '../helpers/gate.js'
import { copyPlugin, exitOf, FIXTURES_DIR, ROOT, startTestGateway, tempDir, warmUp } from '../helpers/gateway.js'
import { capturedLogger } from '../helpers/log.js'
import { listeningPorts } from '../helpers/process.js'

const DEAF_RUNNER = join(ROOT, 'test', 'fixtures', 'runners', 'deaf-runner.mjs')

const isPrewarmed = (args: readonly string[]) => args.includes('--prewarm')

describe('prewarmed runners', () => {
  it('serve the next cold start from a booted runner and refill in the background', async () => {
    const t = await startTestGateway({ env: { PREWARM_POOL_SIZE: '1' } })
    expect([t.gw.pool.prewarmed(), t.processes.length]).toEqual([0, 0]) // none before a plugin has started
    await warmUp(t, 'echo', '/items/1')
    expect(t.processes.map((c) => isPrewarmed(c.spawnargs))).toEqual([false, true]) // the warm-up's worker, then a runner for echo
    const zygote = t.processes[1]
    await t.enable('acme', 'echo', { prefix: 'warm' })

    const res = await fetch(`${t.url}/orgs/acme/plugins/echo/items/7`)
    expect(res.status).toBe(200)
    expect(res.headers.get('x-plugin-cold-start')).toBe('1')
    expect(await res.json()).toMatchObject({ id: '7', prefix: 'warm' })
    const workers = (await t.admin('GET', '/workers')).body.workers
    const worker = workers.find((w: { orgId: string }) => w.orgId === 'acme')
    expect(worker).toEqual(expect.objectContaining({ pid: zygote!.pid, state: 'ready' }))
    // The throwaway worker it warmed up with while waiting is gone: it listens on its own port only.
    expect(listeningPorts(zygote!.pid!)).toEqual([worker.port])
    expect(await t.instanceRow('acme', 'echo')).toMatchObject({ runtimeState: 'ready', pid: zygote!.pid })

    // The pool refills with a new prewarmed runner; no fresh worker was spawned.
    await vi.waitFor(() => expect(t.gw.pool.prewarmed()).toBe(1), { timeout: 10_000, interval: 5 })
    expect(t.processes.map((c) => isPrewarmed(c.spawnargs))).toEqual([false, true, true])
    expect(t.spawned).toEqual([t.processes[0], zygote])
  })

  it('are booted for the plugin started last and serve only workers of that plugin (sandboxed)', async () => {
    const t = await startTestGateway({ env: { PREWARM_POOL_SIZE: '1' } })
    await warmUp(t, 'echo', '/items/1')
    const [, forEcho] = t.processes
    await t.enable('acme', 'env-probe')
    const probe = await fetch(`${t.url}/orgs/acme/plugins/env-probe/whoami`)
    expect(probe.status).toBe(200)
    expect(((await probe.json()) as { pid: number }).pid).not.toBe(forEcho?.pid) // another plugin's runner is not taken
    // With room for one, the runner for echo is given up for one for env-probe, the plugin started last.
    await vi.waitFor(() => expect(forEcho?.signalCode).toBe('SIGKILL'), { timeout: 10_000, interval: 5 })
    await vi.waitFor(() => expect(t.gw.pool.prewarmed()).toBe(1), { timeout: 10_000, interval: 5 })
    await t.enable('globex', 'env-probe')
    const again = await fetch(`${t.url}/orgs/globex/plugins/env-probe/whoami`)
    const pid = ((await again.json()) as { pid: number }).pid
    expect(isPrewarmed(t.processes.find((c) => c.pid === pid)?.spawnargs ?? [])).toBe(true)
  })

  it('serve one of several concurrent cold starts; the others spawn fresh, each worker with its own org and config', async () => {
    const gate = await startGate()
    const t = await startTestGateway({ env: { GATE_URL: gate.url } })
    await warmUp(t, 'gated', '/whoami') // one prewarmed runner for gated
    const orgs = ['acme', 'globex', 'initech']
    for (const org of orgs) await t.enable(org, 'gated', { startGate: 'start', label: `label-${org}` })
    const replies = orgs.map(async (org) => {
      const res = await fetch(`${t.url}/orgs/${org}/plugins/gated/whoami`)
      return [res.status, await res.json()]
    })
    const held = await gate.arrived('start', 3) // all three starts are in onStart at once
    expect(held.map((q) => q.get('orgId')).sort()).toEqual(orgs)
    gate.open('start')

    const answers = await Promise.all(replies)
    expect(answers).toEqual(
      orgs.map((org) => [200, expect.objectContaining({ orgId: org, label: `label-${org}`, startedWith: `label-${org}` })]),
    )
    const pids = answers.map(([, body]) => (body as { pid: number }).pid)
    expect(new Set(pids).size).toBe(3)
    const started = t.spawned.slice(1) // after the warm-up's
    expect(started.map((c) => c.pid).sort()).toEqual([...pids].sort())
    expect(started.filter((c) => isPrewarmed(c.spawnargs))).toHaveLength(1) // taken once, by one of them
    await vi.waitFor(() => expect(t.gw.pool.prewarmed()).toBe(1), { timeout: 10_000, interval: 5 }) // and refilled
  })

  it('give a prewarmed worker exactly the environment of a freshly spawned one', async () => {
    const env = { PREWARM_POOL_SIZE: '1', PROBE_ALLOWED: 'yes', NOT_ALLOWED: 'no' }
    const warm = await startTestGateway({ env })
    await warmUp(warm, 'env-probe', '/whoami', { label: 'x' })
    const fresh = await startTestGateway({ env: { ...env, PREWARM_POOL_SIZE: '0' } })
    const probe = async (t: typeof warm) => {
      await t.enable('acme', 'env-probe', { label: 'x' })
      const res = await fetch(`${t.url}/orgs/acme/plugins/env-probe/env`)
      expect(res.status).toBe(200)
      const body = (await res.json()) as { keys: string[]; env: Record<string, string> }
      return { keys: body.keys, allowed: body.env.PROBE_ALLOWED, org: JSON.parse(body.env.HAY_ORG_CONFIG ?? '{}').org }
    }
    const [a, b] = [await probe(warm), await probe(fresh)]
    expect(isPrewarmed(warm.spawned[1]!.spawnargs)).toBe(true)
    expect(a).toEqual(b)
    expect(a.keys).not.toContain('NOT_ALLOWED')
    expect(a).toMatchObject({ allowed: 'yes', org: { id: 'acme' } })
  })

  it('log a prewarmed worker’s output with its org, plugin and generation, as a freshly spawned worker’s is', async () => {
    const { log, records } = capturedLogger('debug')
    const t = await startTestGateway({ log, env: { PREWARM_POOL_SIZE: '1' } })
    await warmUp(t, 'output-flood', '/ping') // its worker is spawned fresh; then a runner is booted for the plugin
    await t.enable('acme', 'output-flood')
    const say = async (orgId: string, line: string) => {
      const res = await fetch(`${t.url}/orgs/${orgId}/plugins/output-flood/say?line=${line}`, { method: 'POST' })
      expect(res.status).toBe(200)
      return ((await res.json()) as { pid: number }).pid
    }
    const freshPid = await say('warm-up', 'from-fresh')
    const prewarmedPid = await say('acme', 'from-prewarmed')
    expect(isPrewarmed(t.processes.find((c) => c.pid === prewarmedPid)?.spawnargs ?? [])).toBe(true)
    expect(isPrewarmed(t.processes.find((c) => c.pid === freshPid)?.spawnargs ?? [])).toBe(false)

    const lineOf = (line: string) => records().find((r) => r.msg === 'worker output' && r.line === line)
    await vi.waitFor(() => expect([lineOf('from-fresh'), lineOf('from-prewarmed')]).not.toContain(undefined), {
      timeout: 10_000,
      interval: 5,
    })
    const gens = new Map(t.gw.pool.list().map((w) => [w.orgId, w.gen]))
    expect(lineOf('from-prewarmed')).toMatchObject({ orgId: 'acme', pluginId: 'output-flood', gen: gens.get('acme'), stream: 'stdout' })
    expect(lineOf('from-fresh')).toMatchObject({ orgId: 'warm-up', pluginId: 'output-flood', gen: gens.get('warm-up') })
    const fieldsOf = (r: Record<string, unknown> | undefined) => Object.keys(r ?? {}).sort()
    expect(fieldsOf(lineOf('from-prewarmed'))).toEqual(fieldsOf(lineOf('from-fresh')))
  })

  it('are not used for a worker allowed a variable Node reads only at boot (NODE_OPTIONS…): it is spawned fresh', async () => {
    const plugins = join(await tempDir(), 'plugins')
    const dir = await copyPlugin(join(FIXTURES_DIR, 'env-probe'), plugins, 'env-boot')
    const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'))
    manifest['hay-plugin'].env = ['PROBE_ALLOWED', 'NODE_OPTIONS']
    await writeFile(join(dir, 'package.json'), JSON.stringify(manifest))
    // Unsandboxed, so that a runner that could take any plugin is waiting.
    const env = { PREWARM_POOL_SIZE: '1', NODE_OPTIONS: '--no-deprecation', WORKER_SANDBOX: 'off' }
    const t = await startTestGateway({ env, pluginDirs: [plugins] })

    await t.enable('acme', 'env-boot')
    const res = await fetch(`${t.url}/orgs/acme/plugins/env-boot/env`)
    const body = (await res.json()) as { env: Record<string, string> }
    expect([res.status, body.env.NODE_OPTIONS]).toEqual([200, '--no-deprecation'])
    expect(t.processes.map((c) => isPrewarmed(c.spawnargs))).toEqual([true, false])
    expect(t.gw.pool.prewarmed()).toBe(1) // still waiting for a worker it can become
  })

  it('are not used for legacy workers, and leave no process behind', async () => {
    const t = await startTestGateway({ env: { PREWARM_POOL_SIZE: '2', WORKER_SANDBOX: 'off' } }) // runners for any plugin
    await t.enable('acme', 'legacy-v1')
    const res = await fetch(`${t.url}/orgs/acme/plugins/legacy-v1/hello`)
    expect(res.status).toBe(200)
    await res.body?.cancel()
    expect(t.processes.map((c) => isPrewarmed(c.spawnargs))).toEqual([true, true, false])
    expect(t.gw.pool.prewarmed()).toBe(2)

    const exits = t.processes.map(exitOf)
    await t.gw.close()
    await Promise.all(exits) // teardown also asserts no child is left
  })

  it('are not kept for a custom RUNNER_COMMAND, which may not know --prewarm', async () => {
    const t = await startTestGateway({ env: { PREWARM_POOL_SIZE: '2', RUNNER_COMMAND: `node ${DEAF_RUNNER}` } })
    await t.enable('acme', 'echo')
    const res = await fetch(`${t.url}/orgs/acme/plugins/echo/ping`)
    expect(res.status).toBe(200)
    await res.body?.cancel()
    expect(t.processes.map((c) => isPrewarmed(c.spawnargs))).toEqual([false])
    expect(t.gw.pool.prewarmed()).toBe(0)
  })
})
