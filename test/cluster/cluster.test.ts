import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it, vi } from 'vitest'
import { startGate } from '../helpers/gate.js'
import { isRunning, ROOT } from '../helpers/gateway.js'
import { enable, startWorker, workersOf } from '../helpers/gateway-process.js'
import { openWebSocket } from '../helpers/upgrade.js'
import { startCluster } from './harness.js'

const execFileAsync = promisify(execFile)
const WAIT = { timeout: 10_000, interval: 20 }
const FORBIDDEN = { error: { code: 'FORBIDDEN', message: 'cluster requests need the cluster secret' } }

describe('multi-instance on one libSQL file', () => {
  it('starts exactly one worker in the cluster for 300 concurrent first requests spread over three gateways', async () => {
    const { gateways, allWorkers } = await startCluster(3)
    await enable(gateways[0]!.url, 'acme', 'echo')

    const responses = await Promise.all(
      Array.from({ length: 300 }, (_, i) => fetch(`${gateways[i % 3]!.url}/orgs/acme/plugins/echo/items/${i}`)),
    )
    const ids = await Promise.all(responses.map(async (r) => ((await r.json()) as { id: string }).id))
    expect(responses.map((r) => r.status)).toEqual(Array(300).fill(200))
    expect(ids).toEqual(Array.from({ length: 300 }, (_, i) => String(i)))
    const workers = await allWorkers()
    expect(workers).toHaveLength(1)
  })

  it('takes over from an owner killed with SIGKILL once its lease expires, losing no request', async () => {
    const { gateways, repo, allWorkers } = await startCluster(3)
    await enable(gateways[0]!.url, 'acme', 'echo')
    const first = await fetch(`${gateways[0]!.url}/orgs/acme/plugins/echo/items/0`)
    expect(first.status).toBe(200)
    await first.body?.cancel()
    const before = await repo.lease('acme', 'echo')
    expect(before?.ownerGatewayId).toBe('gw0')
    const [oldWorker] = await workersOf(gateways[0]!.url)

    gateways[0]!.proc.child.kill('SIGKILL')
    await gateways[0]!.proc.exited
    const survivors = gateways.slice(1)
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => fetch(`${survivors[i % 2]!.url}/orgs/acme/plugins/echo/items/${i}`)),
    )
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200))
    await Promise.all(responses.map((r) => r.body?.cancel()))

    const after = await repo.lease('acme', 'echo')
    expect(after?.ownerGatewayId).not.toBe('gw0')
    expect(after?.generation).toBeGreaterThan(before?.generation ?? Infinity)
    expect(await allWorkers()).toHaveLength(1)
    await vi.waitFor(() => expect(isRunning(oldWorker!.pid)).toBe(false), { timeout: 10_000, interval: 20 })
  })

  it('reaps on the owner and releases the lease; the next hit anywhere starts a worker again', async () => {
    const { gateways, repo, allWorkers } = await startCluster(3, { IDLE_TIMEOUT_MS: '400' })
    await enable(gateways[0]!.url, 'acme', 'echo')
    await (await fetch(`${gateways[1]!.url}/orgs/acme/plugins/echo/items/1`)).body?.cancel()
    const lease = await repo.lease('acme', 'echo')
    expect(lease?.ownerGatewayId).toBe('gw1')

    await vi.waitFor(async () => expect(await allWorkers()).toHaveLength(0), { timeout: 10_000, interval: 50 })
    await vi.waitFor(async () => expect((await repo.lease('acme', 'echo'))?.expiresAt.getTime()).toBe(0), {
      timeout: 5_000,
      interval: 20,
    })

    const again = await fetch(`${gateways[2]!.url}/orgs/acme/plugins/echo/items/2`)
    expect(again.status).toBe(200)
    expect(again.headers.get('x-plugin-cold-start')).toBe('1')
    await again.body?.cancel()
    expect(await allWorkers()).toHaveLength(1)
  })

  it('keeps the lease (and the row) of the next worker when the one it replaced finishes stopping after it started', async () => {
    // The old worker's stop is held in its onDisable until the test opens the gate: it ends only
    // once its replacement is ready, however long that takes.
    const gate = await startGate()
    const { gateways, repo, instances, allWorkers } = await startCluster(2, { GATE_URL: gate.url, DISABLE_TIMEOUT_MS: '60000' })
    const [owner, other] = [gateways[0]!, gateways[1]!]
    await enable(owner.url, 'acme', 'gated', { enabled: true, config: { disableGate: 'stop' } })
    const oldPid = await startWorker(owner.url, 'acme', 'gated', '/whoami')
    const stopping = fetch(`${owner.url}/admin/orgs/acme/plugins/gated/stop`, { method: 'POST' })
    await gate.arrived('stop')
    expect((await workersOf(owner.url)).map((w) => [w.pid, w.state])).toEqual([[oldPid, 'stopping']])

    const next = await fetch(`${owner.url}/orgs/acme/plugins/gated/whoami`) // starts the next generation
    expect([next.status, next.headers.get('x-plugin-cold-start')]).toEqual([200, '1'])
    const { pid: nextPid } = (await next.json()) as { pid: number }
    expect(nextPid).not.toBe(oldPid)
    gate.open('stop')
    expect(await (await stopping).json()).toEqual({ stopped: true }) // the old worker is gone only now
    expect(isRunning(oldPid)).toBe(false)

    expect((await workersOf(owner.url)).map((w) => [w.pid, w.state])).toEqual([[nextPid, 'ready']])
    const lease = await repo.lease('acme', 'gated')
    expect(lease?.ownerGatewayId).toBe('gw0')
    expect(lease?.expiresAt.getTime()).toBeGreaterThan(Date.now())
    // The other gateway forwards to that worker instead of starting a second one.
    const viaOther = await fetch(`${other.url}/orgs/acme/plugins/gated/whoami`)
    expect([viaOther.status, viaOther.headers.get('x-plugin-cold-start'), ((await viaOther.json()) as { pid: number }).pid]).toEqual([
      200,
      null,
      nextPid,
    ])
    expect((await allWorkers()).map((w) => w.pid)).toEqual([nextPid])
    await vi.waitFor(async () => expect(await instances.get('acme', 'gated')).toMatchObject({ runtimeState: 'ready', pid: nextPid }), WAIT)
  })

  it('lists the workers of every gateway from any of them, each with its gateway; ?scope=local lists its own', async () => {
    // A long gateway TTL: gw1, killed below, is still listed as a live peer (and so as unreachable).
    const { gateways } = await startCluster(3, { LEASE_TTL_MS: '30000' })
    const [gw0, gw1, gw2] = [gateways[0]!, gateways[1]!, gateways[2]!]
    const acme = await startWorker(gw0.url, 'acme', 'echo', '/items/1')
    const globex = await startWorker(gw1.url, 'globex', 'echo', '/items/1')
    const listing = async (url: string, query = '') => {
      const res = await fetch(`${url}/admin/workers${query}`)
      expect(res.status).toBe(200)
      return (await res.json()) as { workers: Array<{ gatewayId?: string; orgId: string; pid: number }>; unreachable?: unknown[] }
    }

    const all = await listing(gw2.url)
    const seen = all.workers.map((w) => [w.gatewayId, w.orgId, w.pid]).sort()
    expect(seen).toEqual([
      ['gw0', 'acme', acme],
      ['gw1', 'globex', globex],
    ])
    expect(all.unreachable).toEqual([])
    expect((await listing(gw2.url, '?scope=local')).workers).toEqual([])
    expect((await listing(gw0.url, '?scope=local')).workers.map((w) => w.pid)).toEqual([acme])
    // The operator CLI shows which gateway runs each worker.
    const { stdout } = await execFileAsync(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), 'workers'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GATEWAY_URL: gw2.url },
    })
    const [header, ...rows] = stdout.trimEnd().split('\n')
    expect(header).toMatch(/^GATEWAY\s+ORG\s+PLUGIN\s+GEN\s+STATE\s+PID/)
    expect(rows.map((r) => r.split(/\s+/).slice(0, 3)).sort()).toEqual([
      ['gw0', 'acme', 'echo'],
      ['gw1', 'globex', 'echo'],
    ])
    // Without the cluster secret nobody can read another gateway's list.
    const forbidden = await fetch(`${gw0.url}/internal/workers`)
    expect([forbidden.status, await forbidden.json()]).toEqual([403, FORBIDDEN])

    // A peer that is gone while its heartbeat is recent is named with why; the rest still list.
    gw1.proc.child.kill('SIGKILL')
    await gw1.proc.exited
    const after = await listing(gw2.url)
    expect(after.workers.map((w) => [w.gatewayId, w.pid])).toEqual([['gw0', acme]])
    expect(after.unreachable).toEqual([{ gatewayId: 'gw1', error: expect.any(String) }])
  })

  it('follows an owner change it had not seen: a stale owner\'s "not the owner" is not relayed, the request goes to the new one', async () => {
    // A long lease: the first owner stays cached on gw1 (until the expiry it read) throughout the test.
    const { gateways, repo } = await startCluster(3, { LEASE_TTL_MS: '20000' })
    const [gw0, gw1, gw2] = [gateways[0]!, gateways[1]!, gateways[2]!]
    const orgs = ['acme', 'globex', 'initech'] as const
    for (const org of orgs) {
      const pid = await startWorker(gw0.url, org, 'echo', '/items/1')
      const cached = await fetch(`${gw1.url}/orgs/${org}/plugins/echo/items/2`) // gw1 learns that gw0 owns it
      expect(cached.status).toBe(200)
      await cached.body?.cancel()
      process.kill(pid, 'SIGKILL') // the worker dies: gw0 gives the lease back, gw2 takes it
      await vi.waitFor(async () => expect((await repo.lease(org, 'echo'))?.expiresAt.getTime()).toBe(0), { timeout: 5_000, interval: 20 })
      const moved = await fetch(`${gw2.url}/orgs/${org}/plugins/echo/items/3`)
      expect(moved.status).toBe(200)
      await moved.body?.cancel()
      expect((await repo.lease(org, 'echo'))?.ownerGatewayId).toBe('gw2')
    }

    // Without a body, gw1 asks again at once, and reaches the new owner.
    const bodyless = await fetch(`${gw1.url}/orgs/acme/plugins/echo/items/4`)
    expect([bodyless.status, await bodyless.json()]).toEqual([200, expect.objectContaining({ id: '4' })])
    // With one (already streamed to gw0), it answers 503 + Retry-After, and has learnt: the retry lands.
    const post = (n: number) =>
      fetch(`${gw1.url}/orgs/globex/plugins/echo/echo`, {
        method: 'POST',
        body: JSON.stringify({ n }),
        headers: { 'content-type': 'application/json' },
      })
    const refused = await post(1)
    expect([
      refused.status,
      refused.headers.get('retry-after'),
      ((await refused.json()) as { error: { code: string } }).error.code,
    ]).toEqual([503, '1', 'NOT_OWNER'])
    const retried = await post(2)
    expect([retried.status, await retried.json()]).toEqual([200, expect.objectContaining({ body: { n: 2 } })])
    // Admin calls carried to the owner follow the change the same way.
    const tools = await fetch(`${gw1.url}/admin/orgs/initech/plugins/echo/mcp/tools`)
    expect(tools.status).toBe(200)
    expect(await tools.json()).toEqual({ tools: [] }) // echo declares none
  })

  it('delivers a config change made through one gateway to the worker another gateway owns', async () => {
    const { gateways } = await startCluster(3)
    await enable(gateways[1]!.url, 'acme', 'echo', { enabled: true, config: { prefix: 'before' } })
    const a = gateways[0]!
    expect(await (await fetch(`${a.url}/orgs/acme/plugins/echo/items/1`)).json()).toMatchObject({ prefix: 'before' })
    const [worker] = await workersOf(a.url)

    await enable(gateways[1]!.url, 'acme', 'echo', { config: { prefix: 'after' } })
    for (const g of gateways) {
      expect(await (await fetch(`${g.url}/orgs/acme/plugins/echo/items/1`)).json()).toMatchObject({ prefix: 'after' })
    }
    expect(await workersOf(a.url)).toEqual([expect.objectContaining({ pid: worker!.pid })])

    await enable(gateways[2]!.url, 'acme', 'echo', { enabled: false })
    for (const g of gateways) {
      const res = await fetch(`${g.url}/orgs/acme/plugins/echo/items/1`)
      expect(res.status).toBe(404)
      await res.body?.cancel()
    }
    await vi.waitFor(() => expect(isRunning(worker!.pid)).toBe(false), { timeout: 10_000, interval: 20 })
  })

  it('carries an MCP call made on any gateway to the worker its owner runs', async () => {
    const { gateways, allWorkers } = await startCluster(2)
    const [owner, other] = [gateways[0]!, gateways[1]!]
    await enable(owner.url, 'acme', 'tools')
    const started = await fetch(`${owner.url}/admin/orgs/acme/plugins/tools/start`, { method: 'POST' })
    expect(started.status).toBe(200)
    const [worker] = await workersOf(owner.url)

    const tools = await fetch(`${other.url}/admin/orgs/acme/plugins/tools/mcp/tools`)
    expect([tools.status, ((await tools.json()) as { tools: Array<{ name: string }> }).tools.map((x) => x.name).sort()]).toEqual([
      200,
      ['add', 'uppercase'],
    ])
    const call = await fetch(`${other.url}/admin/orgs/acme/plugins/tools/mcp/call`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ toolName: 'add', arguments: { a: 2, b: 40 } }),
    })
    expect([call.status, await call.json()]).toEqual([200, expect.objectContaining({ structuredContent: { sum: 42 } })])
    const unknown = await fetch(`${other.url}/admin/orgs/acme/plugins/tools/mcp/call`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ toolName: 'nope', arguments: {} }),
    })
    expect([unknown.status, await unknown.json()]).toEqual([404, { error: { code: 'NOT_FOUND', message: 'no tool named nope' } }])
    expect((await allWorkers()).map((w) => w.pid)).toEqual([worker?.pid]) // the owner's, and only it
  })

  it("relays a worker's answer through a peer without letting it pose as a gateway (x-plugin-gateway-* stripped)", async () => {
    const { gateways, allWorkers } = await startCluster(2)
    const [owner, other] = [gateways[0]!, gateways[1]!]
    const pid = await startWorker(owner.url, 'acme', 'gated', '/whoami')
    // The worker answers 503 with x-plugin-gateway-not-owner: a peer must not take that for its owner's word.
    const res = await fetch(`${other.url}/orgs/acme/plugins/gated/internal-headers`)
    expect([res.status, await res.json()]).toEqual([503, { error: { code: 'NOT_OWNER', message: 'a plugin posing as a gateway' } }])
    expect([...res.headers.keys()].filter((n) => n.startsWith('x-plugin-gateway-'))).toEqual([])
    expect(res.headers.get('x-plugin-own')).toBe('kept')
    expect((await allWorkers()).map((w) => w.pid)).toEqual([pid])
  })

  it('tunnels a WebSocket through a peer to the worker its owner runs, held there as in flight', async () => {
    const { gateways, allWorkers } = await startCluster(2)
    const [owner, other] = [gateways[0]!, gateways[1]!]
    const pid = await startWorker(owner.url, 'acme', 'legacy-streams', '/download?bytes=1')
    const open = await openWebSocket(`${other.url}/orgs/acme/plugins/legacy-streams/ws`)
    expect(open.response.headers['x-worker-pid']).toBe(String(pid))
    const binary = randomBytes(256 * 1024)
    open.ws.send(binary)
    expect((await open.received(1))[0]?.equals(binary)).toBe(true)
    const tunnels = async () => ((await (await fetch(`${owner.url}/admin/workers?scope=local`)).json()) as { workers: object[] }).workers
    expect(await tunnels()).toMatchObject([{ pid, inFlight: 1, tunnels: 1 }])

    open.ws.close(1000, 'done')
    expect(await open.closed).toEqual({ code: 1000, reason: 'done' })
    await vi.waitFor(async () => expect(await tunnels()).toMatchObject([{ pid, inFlight: 0, tunnels: 0 }]), WAIT)
    expect((await allWorkers()).map((w) => w.pid)).toEqual([pid])
  })

  it('reaches an owner restarted under its GATEWAY_ID at its new address, instead of waiting for a lease it keeps renewing', async () => {
    const { gateways, restart, repo } = await startCluster(2)
    await enable(gateways[0]!.url, 'acme', 'echo')
    const get = async (url: string) => {
      const res = await fetch(`${url}/orgs/acme/plugins/echo/items/1`)
      const body = (await res.json()) as { id?: string; error?: { code: string } }
      return [res.status, body.id ?? body.error?.code]
    }
    expect(await get(gateways[0]!.url)).toEqual([200, '1']) // gw0 owns the key
    expect(await get(gateways[1]!.url)).toEqual([200, '1']) // gw1 forwards there, and remembers where gw0 listens

    const back = await restart(0, {}) // the same id on another port; its lease was given back on the way down
    expect(await get(back.url)).toEqual([200, '1']) // gw0 takes its key back, at the same generation
    const lease = await repo.lease('acme', 'echo')
    expect([lease?.ownerGatewayId, lease?.generation]).toEqual(['gw0', 1])

    expect(await get(gateways[1]!.url)).toEqual([200, '1'])
    expect(await workersOf(gateways[1]!.url)).toEqual([])
  })

  it("keeps serving a peer's other keys and internal calls while more requests than a pool holds are held open through it", async () => {
    const gate = await startGate()
    const { gateways } = await startCluster(2, { GATE_URL: gate.url })
    const [owner, other] = [gateways[0]!, gateways[1]!]
    await startWorker(owner.url, 'acme', 'gated', '/whoami')
    await startWorker(owner.url, 'globex', 'echo', '/items/1')
    const HELD = 40 // more than the 32 connections the peer pool used to share among every key and call
    const held = Array.from({ length: HELD }, () => fetch(`${other.url}/orgs/acme/plugins/gated/hold/long`))
    await gate.arrived('long', HELD)

    const item = await fetch(`${other.url}/orgs/globex/plugins/echo/items/7`)
    expect([item.status, ((await item.json()) as { id: string }).id]).toEqual([200, '7'])
    const tools = await fetch(`${other.url}/admin/orgs/globex/plugins/echo/mcp/tools`)
    expect([tools.status, await tools.json()]).toEqual([200, { tools: [] }])

    gate.open('long')
    const answers = await Promise.all(held.map(async (r) => [(await r).status, ((await (await r).json()) as { orgId: string }).orgId]))
    expect(answers).toEqual(Array.from({ length: HELD }, () => [200, 'acme']))
  })

  it('refuses forwarded requests without the cluster secret', async () => {
    const { gateways } = await startCluster(1)
    await enable(gateways[0]!.url, 'acme', 'echo')
    const res = await fetch(`${gateways[0]!.url}/orgs/acme/plugins/echo/items/1`, {
      headers: { 'x-plugin-gateway-hop': '1', 'x-plugin-gateway-secret': 'not-the-secret-at-all' },
    })
    expect([res.status, await res.json()]).toEqual([403, FORBIDDEN])
    expect(await workersOf(gateways[0]!.url)).toEqual([]) // refused before any worker started
  })
})
