import { join } from 'node:path'
import { expect, onTestFinished } from 'vitest'
import { EXAMPLES_DIR, FIXTURES_DIR, ROOT, isRunning } from './gateway.js'
import { spawnNode, workerEnv, type Spawned } from './process.js'

export interface GatewayProcess {
  proc: Spawned
  url: string
}

/** The real gateway as `npm start` runs it (its own node process, nodeArgs before the entry), on the database in dir. */
export async function startGatewayProcess(dir: string, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<GatewayProcess> {
  const proc = spawnNode([...nodeArgs, join(ROOT, 'dist', 'node', 'main.js')], {
    env: workerEnv({
      PORT: '0',
      DATABASE_URL: `file:${join(dir, 'gateway.db')}`,
      PLUGINS_DIR: `${EXAMPLES_DIR}:${FIXTURES_DIR}`,
      LOG_LEVEL: 'silent',
      ...env,
    }),
  })
  onTestFinished(async () => {
    if (proc.child.exitCode === null && proc.child.signalCode === null) {
      proc.child.kill('SIGTERM')
      // Bounded: a gateway still draining (DRAIN_TIMEOUT_MS is 30 s by default) is killed; its
      // workers leave with it (IPC disconnect, or the watchdog).
      const timer = setTimeout(() => proc.child.kill('SIGKILL'), 10_000)
      await proc.exited
      clearTimeout(timer)
    }
  })
  await proc.waitForStdout('listening on ').catch((err: Error) => {
    throw new Error(
      `${err.message} (exit ${proc.child.exitCode} ${proc.child.signalCode})\n--- gateway stderr ---\n${proc.stderr()}\n--- stdout ---\n${proc.stdout()}`,
    )
  })
  const url = /listening on (\S+)/.exec(proc.stdout())?.[1] ?? ''
  return { proc, url }
}

export async function enable(url: string, orgId: string, pluginId: string, body: object = { enabled: true }): Promise<void> {
  const res = await fetch(`${url}/admin/orgs/${orgId}/plugins/${pluginId}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  expect(res.status).toBe(200)
  await res.body?.cancel()
}

export interface LiveWorker {
  orgId: string
  pluginId: string
  pid: number
  state: string
}

/** The workers this gateway runs itself (in a cluster, /admin/workers lists every gateway's). */
export async function workersOf(url: string): Promise<LiveWorker[]> {
  const res = await fetch(`${url}/admin/workers?scope=local`)
  return ((await res.json()) as { workers: LiveWorker[] }).workers
}

/** Enables the plugin, hits route once, and returns the worker's pid (SIGKILLed after the test if left). */
export async function startWorker(url: string, orgId: string, pluginId: string, route: string): Promise<number> {
  await enable(url, orgId, pluginId)
  const res = await fetch(`${url}/orgs/${orgId}/plugins/${pluginId}${route}`)
  expect(res.status).toBe(200)
  await res.body?.cancel()
  const pid = (await workersOf(url)).find((w) => w.orgId === orgId && w.pluginId === pluginId)?.pid
  expect(pid).toBeGreaterThan(0)
  onTestFinished(() => {
    if (pid && isRunning(pid)) process.kill(pid, 'SIGKILL')
  })
  return pid ?? -1
}
