import { readFile } from 'node:fs/promises'
import getPort from 'get-port'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { silentLogger } from '../../src/core/index.js'
import { createInstancesRepo, openDatabase } from '../../src/db/index.js'
import { ROOT, isRunning, tempDir, TEST_SECRET_KEY } from '../helpers/gateway.js'
import { rawRequest } from '../helpers/http.js'
import { startGate } from '../helpers/gate.js'
import { listeningPorts, spawnNode, workerEnv } from '../helpers/process.js'
import { enable, startGatewayProcess, startWorker, type GatewayProcess } from '../helpers/gateway-process.js'

const DEAF_RUNNER = join(ROOT, 'test', 'fixtures', 'runners', 'deaf-runner.mjs')

/** Shutdown has begun once the gateway no longer listens (it stops accepting first). */
const drainingBegan = (gw: GatewayProcess) =>
  vi.waitFor(() => expect(listeningPorts(gw.proc.child.pid as number)).not.toContain(Number(new URL(gw.url).port)), {
    timeout: 10_000,
    interval: 10,
  })

const gone = (pid: number) => vi.waitFor(() => expect(isRunning(pid)).toBe(false), { timeout: 10_000, interval: 20 })

describe('gateway shutdown', () => {
  it('exits on SIGTERM when whoever read its stdout left before it started (every log line and "listening" hit EPIPE)', async () => {
    const dir = await tempDir()
    const port = await getPort()
    const proc = spawnNode([join(ROOT, 'dist', 'node', 'main.js')], {
      env: workerEnv({ PORT: String(port), DATABASE_URL: `file:${join(dir, 'gateway.db')}`, LOG_LEVEL: 'info' }),
    })
    proc.child.stdout?.destroy() // a log shipper that died, a `| head` that had enough
    await vi.waitFor(async () => expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200), {
      timeout: 15_000,
      interval: 50,
    })
    proc.child.kill('SIGTERM')
    const exited = await Promise.race([proc.exited, new Promise((resolve) => setTimeout(resolve, 15_000, 'still running'))])
    expect(exited).toEqual({ code: 0, signal: null })
  })

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

  it('on SIGTERM, exits although a keep-alive client keeps polling; /healthz says 503 while it drains', async () => {
    const gw = await startGatewayProcess(await tempDir())
    const statuses: Array<number | string> = []
    let polling = true
    const poll = (async () => {
      const agent = new Agent({ keepAliveTimeout: 60_000, pipelining: 1 }) // one connection, kept open
      while (polling) {
        // Back to back: the connection is idle only for moments between an answer and the next request.
        statuses.push(
          await request(`${gw.url}/healthz`, { dispatcher: agent }).then(
            async (r) => {
              await r.body.dump()
              return r.statusCode
            },
            () => 'closed',
          ),
        )
      }
      await agent.close()
    })()
    onTestFinished(() => {
      polling = false
    }) // however the test ends, the client stops
    await vi.waitFor(() => expect(statuses.length).toBeGreaterThan(3), { timeout: 10_000, interval: 20 })

    gw.proc.child.kill('SIGTERM')
    expect(await gw.proc.exited).toEqual({ code: 0, signal: null }) // before the client stops
    polling = false
    await poll
    expect(statuses[0]).toBe(200)
    expect(statuses.at(-1)).toBe('closed')
    expect(statuses.filter((s) => s !== 200 && s !== 503 && s !== 'closed')).toEqual([])
  })

  it('on SIGTERM during a cold start, ends that start too: the waiting request gets 503 and the row says stopped', async () => {
    const dir = await tempDir()
    const gate = await startGate()
    const gw = await startGatewayProcess(dir, { GATE_URL: gate.url, SECRET_KEY: TEST_SECRET_KEY })
    await enable(gw.url, 'acme', 'gated', { enabled: true, config: { startGate: 'start' } })
    const waiting = fetch(`${gw.url}/orgs/acme/plugins/gated/whoami`)
    await gate.arrived('start')

    gw.proc.child.kill('SIGTERM')
    await drainingBegan(gw)
    gate.open('start') // the start ends now, into a gateway that is shutting down
    const res = await waiting
    expect([res.status, ((await res.json()) as { error: { code: string } }).error.code]).toEqual([503, 'WORKER_UNAVAILABLE'])
    expect(await gw.proc.exited).toEqual({ code: 0, signal: null })

    const db = await openDatabase({ url: `file:${join(dir, 'gateway.db')}`, log: silentLogger })
    onTestFinished(() => db.close())
    const row = await createInstancesRepo(db.db, { now: Date.now, setTimer: () => () => {} }).get('acme', 'gated')
    expect(row).toMatchObject({ runtimeState: 'stopped', lastError: null, pid: null })
  })

  it('on SIGTERM, lets a request in flight finish (within DRAIN_TIMEOUT_MS) and refuses new connections meanwhile', async () => {
    const dir = await tempDir()
    const gate = await startGate()
    const gw = await startGatewayProcess(dir, { GATE_URL: gate.url })
    const pid = await startWorker(gw.url, 'acme', 'gated', '/whoami')
    const inFlight = fetch(`${gw.url}/orgs/acme/plugins/gated/hold/in-flight`)
    await gate.arrived('in-flight')

    gw.proc.child.kill('SIGTERM')
    await drainingBegan(gw)
    const port = Number(new URL(gw.url).port)
    await expect(rawRequest({ port, path: '/healthz' })).rejects.toMatchObject({ code: 'ECONNREFUSED' }) // a new connection
    expect(isRunning(pid)).toBe(true) // still serving the request it has
    gate.open('in-flight')
    const res = await inFlight
    expect([res.status, await res.json()]).toEqual([200, { released: true, pid, orgId: 'acme', bytes: 0 }])
    expect(await gw.proc.exited).toEqual({ code: 0, signal: null })
    expect(isRunning(pid)).toBe(false)
  })

  it('on SIGTERM, stops a worker whose request outlasts DRAIN_TIMEOUT_MS: that request fails, the gateway exits', async () => {
    const gate = await startGate()
    const gw = await startGatewayProcess(await tempDir(), { GATE_URL: gate.url, DRAIN_TIMEOUT_MS: '300', STOP_TIMEOUT_MS: '500' })
    const pid = await startWorker(gw.url, 'acme', 'gated', '/whoami')
    const stuck = fetch(`${gw.url}/orgs/acme/plugins/gated/hold/never`).then(
      async (r) => [r.status, await r.json()],
      (err: { cause?: { code?: string } }) => err.cause?.code,
    )
    await gate.arrived('never') // never opened: only the drain bound ends this request

    gw.proc.child.kill('SIGTERM')
    expect(await gw.proc.exited).toEqual({ code: 0, signal: null })
    expect(isRunning(pid)).toBe(false)
    expect(await stuck).toEqual([502, { error: { code: 'UPSTREAM_ERROR', message: 'plugin worker failed while handling the request' } }])
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

  it("leaves a running gateway's workers and rows alone when a second one is started on its database by mistake", async () => {
    const dir = await tempDir()
    // A runner that ignores its parent: exactly the kind of worker start-up recovery kills as an orphan.
    const env = { RUNNER_COMMAND: `env node ${DEAF_RUNNER}` }
    // Started as `npm start` does: `node dist/node/main.js`, a path relative to the gateway's cwd.
    const firstProc = spawnNode(['dist/node/main.js'], {
      cwd: ROOT,
      env: workerEnv({
        PORT: '0',
        DATABASE_URL: `file:${join(dir, 'gateway.db')}`,
        PLUGINS_DIR: join(ROOT, 'examples', 'plugins'),
        LOG_LEVEL: 'silent',
        ...env,
      }),
    })
    onTestFinished(async () => {
      firstProc.child.kill('SIGTERM') // it stops its own workers (this runner ignores a dead parent)
      await firstProc.exited
    })
    await firstProc.waitForStdout('listening on ')
    const first = { url: /listening on (\S+)/.exec(firstProc.stdout())?.[1] ?? '' }
    const pid = await startWorker(first.url, 'acme', 'echo', '/ping')

    // On its port: refused in one line, before anything is served.
    const samePort = spawnNode([join(ROOT, 'dist', 'node', 'main.js')], {
      env: workerEnv({
        PORT: new URL(first.url).port,
        DATABASE_URL: `file:${join(dir, 'gateway.db')}`,
        PLUGINS_DIR: join(ROOT, 'examples', 'plugins'),
        LOG_LEVEL: 'silent',
        ...env,
      }),
    })
    expect(await samePort.exited).toEqual({ code: 1, signal: null })
    expect(samePort.stderr()).toMatch(/^plugin-gateway: cannot start \(LISTEN_FAILED\): 127\.0\.0\.1:\d+ is already in use/)
    // On another port it starts, and takes nothing from the first.
    await startGatewayProcess(dir, env)
    expect(isRunning(pid)).toBe(true)
    const res = await fetch(`${first.url}/orgs/acme/plugins/echo/ping`)
    expect([res.status, res.headers.get('x-plugin-cold-start')]).toEqual([200, null])
    await res.body?.cancel()
    const db = await openDatabase({ url: `file:${join(dir, 'gateway.db')}`, log: silentLogger })
    onTestFinished(() => db.close())
    const row = await createInstancesRepo(db.db, { now: Date.now, setTimer: () => () => {} }).get('acme', 'echo')
    expect(row).toMatchObject({ runtimeState: 'ready', pid })
  })

  it('in a cluster, a gateway restarted at once with its GATEWAY_ID takes back its orphans', async () => {
    const dir = await tempDir()
    const env = { CLUSTER_SECRET: 'cluster-secret-0123456789', GATEWAY_ID: 'gw-stable', RUNNER_COMMAND: `env node ${DEAF_RUNNER}` }
    const first = await startGatewayProcess(dir, env)
    const pid = await startWorker(first.url, 'acme', 'echo', '/ping')
    first.proc.child.kill('SIGKILL')
    await first.proc.exited

    const second = await startGatewayProcess(dir, env) // long before its previous life could be declared dead
    await gone(pid)
    const { body } = await fetch(`${second.url}/admin/orgs/acme/plugins/echo`).then(async (r) => ({ body: await r.json() }))
    expect(body).toMatchObject({ runtimeState: 'stopped', worker: null })
  })

  it('kills a prewarmed worker a dead gateway left behind, although its command line still says --prewarm', async () => {
    const dir = await tempDir()
    const first = await startGatewayProcess(dir) // PREWARM_POOL_SIZE: the default, 1
    // Starts are fresh until the pool's runner has booted; the first one after that takes it.
    const pids: number[] = []
    const prewarmed = await vi.waitFor(
      async () => {
        const pid = await startWorker(first.url, `org-${pids.length}`, 'ignores-parent', '/ping')
        pids.push(pid)
        expect((await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')).toContain('--prewarm')
        return pid
      },
      { timeout: 15_000, interval: 50 },
    )
    first.proc.child.kill('SIGKILL')
    await first.proc.exited
    expect(pids.filter(isRunning)).toEqual(pids) // the plugin ignores its parent's death: all orphans now

    const second = await startGatewayProcess(dir)
    await Promise.all(pids.map(gone))
    const { body } = await fetch(`${second.url}/admin/orgs/org-${pids.indexOf(prewarmed)}/plugins/ignores-parent`).then(async (r) => ({
      body: await r.json(),
    }))
    expect(body).toMatchObject({ runtimeState: 'stopped', worker: null })
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
