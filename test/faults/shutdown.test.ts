import { join } from 'node:path'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { silentLogger } from '../../src/core/index.js'
import { createInstancesRepo, openDatabase } from '../../src/db/index.js'
import { EXAMPLES_DIR, FIXTURES_DIR, ROOT, isRunning, tempDir } from '../helpers/gateway.js'
import { spawnNode, workerEnv, type Spawned } from '../helpers/process.js'

const DEAF_RUNNER = join(ROOT, 'test', 'fixtures', 'runners', 'deaf-runner.mjs')

interface GatewayProcess {
  proc: Spawned
  url: string
}

/** The real gateway as `npm start` runs it (its own node process), on a database in dir. */
async function startGatewayProcess(dir: string, env: Record<string, string> = {}): Promise<GatewayProcess> {
  const proc = spawnNode([join(ROOT, 'dist', 'node', 'main.js')], {
    env: workerEnv({
      PORT: '0',
      DATABASE_URL: `file:${join(dir, 'gateway.db')}`,
      PLUGINS_DIR: `${EXAMPLES_DIR}:${FIXTURES_DIR}`,
      LOG_LEVEL: 'silent',
      ...env,
    }),
  })
  onTestFinished(() => {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL')
  })
  await proc.waitForStdout('listening on ')
  const url = /listening on (\S+)/.exec(proc.stdout())?.[1] ?? ''
  return { proc, url }
}

async function startWorker(url: string, orgId: string, pluginId: string, route: string): Promise<number> {
  const enabled = await fetch(`${url}/admin/orgs/${orgId}/plugins/${pluginId}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ enabled: true }),
  })
  expect(enabled.status).toBe(200)
  const res = await fetch(`${url}/orgs/${orgId}/plugins/${pluginId}${route}`)
  expect(res.status).toBe(200)
  await res.body?.cancel()
  const { workers } = (await (await fetch(`${url}/admin/workers`)).json()) as { workers: Array<{ orgId: string; pid: number }> }
  const pid = workers.find((w) => w.orgId === orgId)?.pid
  expect(pid).toBeGreaterThan(0)
  onTestFinished(() => {
    if (pid && isRunning(pid)) process.kill(pid, 'SIGKILL')
  })
  return pid ?? -1
}

const gone = (pid: number) => vi.waitFor(() => expect(isRunning(pid)).toBe(false), { timeout: 10_000, interval: 20 })

describe('gateway shutdown', () => {
  it('on SIGTERM to the gateway process, stops every worker itself and records them stopped', async () => {
    const dir = await tempDir()
    const gw = await startGatewayProcess(dir)
    const pids = [
      await startWorker(gw.url, 'acme', 'echo', '/items/1'),
      await startWorker(gw.url, 'globex', 'echo', '/items/1'),
      await startWorker(gw.url, 'acme', 'legacy-v1', '/hello'),
    ]

    gw.proc.child.kill('SIGTERM')
    expect(await gw.proc.exited).toEqual({ code: 0, signal: null })
    for (const pid of pids) expect(isRunning(pid)).toBe(false)

    const db = await openDatabase({ url: `file:${join(dir, 'gateway.db')}`, log: silentLogger })
    onTestFinished(() => db.close())
    const rows = await createInstancesRepo(db.db, { now: Date.now, setTimer: () => () => {} }).list()
    expect(rows.map((r) => r.runtimeState)).toEqual(['stopped', 'stopped', 'stopped'])
  })

  it('on SIGKILL of the gateway, every worker exits by itself, runners that ignore their parent too', async () => {
    const dir = await tempDir()
    const ours = await startGatewayProcess(dir)
    const ourPid = await startWorker(ours.url, 'acme', 'echo', '/items/1')
    const legacyPid = await startWorker(ours.url, 'acme', 'legacy-v1', '/hello')

    const deaf = await startGatewayProcess(await tempDir(), { RUNNER_COMMAND: `node ${DEAF_RUNNER}` })
    const deafPid = await startWorker(deaf.url, 'acme', 'echo', '/ping')

    ours.proc.child.kill('SIGKILL')
    deaf.proc.child.kill('SIGKILL')
    await Promise.all([gone(ourPid), gone(legacyPid), gone(deafPid)])
  })

  it('kills a worker a dead gateway left behind, identity checked, at the next start-up', async () => {
    const dir = await tempDir()
    // `env node …` is not a node command, so no watchdog can be preloaded: this worker survives.
    const env = { RUNNER_COMMAND: `env node ${DEAF_RUNNER}` }
    const first = await startGatewayProcess(dir, env)
    const pid = await startWorker(first.url, 'acme', 'echo', '/ping')
    first.proc.child.kill('SIGKILL')
    await first.proc.exited
    expect(isRunning(pid)).toBe(true)

    const second = await startGatewayProcess(dir, env)
    await gone(pid)
    const { body } = await fetch(`${second.url}/admin/orgs/acme/plugins/echo`).then(async (r) => ({ body: await r.json() }))
    expect(body).toMatchObject({ runtimeState: 'stopped', worker: null })
  })
})
