import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { createWorkerUsers } from '../../src/workers/index.js'
import { startGate } from '../helpers/gate.js'
import { copyPlugin, exitOf, FIXTURES_DIR, startTestGateway, tempDir } from '../helpers/gateway.js'
import { enable, startGatewayProcess, startWorker, workersOf } from '../helpers/gateway-process.js'

// Only a root gateway runs its workers as users other than its own: as any other user there is no
// uid to give them, and every worker can signal every other (README: Sandbox, what still holds in part).
const isRoot = process.getuid?.() === 0
const NOGROUP = 65_534
const DEFAULT_UIDS = { min: 0x7000_0000, max: 0x7000_ffff }
const KILL = ['/usr/bin/kill', '/bin/kill'].find((path) => existsSync(path)) // procps, as the gateway finds it on PATH

async function uidOf(pid: number): Promise<number> {
  return Number(/^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1])
}

/** A live process outside any gateway, SIGKILLed after the test; its holder name in a claim is `<pid>-<start time>`. */
async function liveProcess(options: { uid?: number } = {}) {
  const child = spawn('sleep', ['300'], { stdio: 'ignore', ...options })
  onTestFinished(async () => {
    child.kill('SIGKILL')
    await exitOf(child)
  })
  await vi.waitFor(async () => expect(await readFile(`/proc/${child.pid}/stat`, 'utf8')).toContain('sleep'))
  const stat = await readFile(`/proc/${child.pid}/stat`, 'utf8')
  return { child, holder: `${child.pid}-${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}` }
}

/** `R` (running), `S` (sleeping), `Z` (dead, not yet reaped) … or `gone`. */
async function stateOf(pid: number): Promise<string> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  return /^State:\s+(\S+)/m.exec(status)?.[1] ?? 'gone'
}
const isDead = (state: string) => ['Z', 'X', 'gone'].includes(state)
function readFileSyncState(pid: number): string {
  try {
    return /^State:\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 'gone'
  } catch {
    return 'gone'
  }
}

/** A claims directory as the gateway makes it (root's, 0700), removed after the test. */
async function claimsDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'plugin-gateway-claims-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function plantClaim(dir: string, uid: number, holder: string): Promise<void> {
  await mkdir(join(dir, String(uid)))
  await symlink(holder, join(dir, String(uid), '0'))
}

describe.runIf(isRoot)('worker uids of a root gateway', () => {
  it("runs two orgs' workers under uids of their own; a worker that signals another gets EPERM, and the other keeps serving", async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo')
    await t.enable('globex', 'hostile')
    const echo = await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)
    expect(echo.status).toBe(200)
    await echo.body?.cancel()
    const { workers } = (await t.admin('GET', '/workers')).body as { workers: Array<{ pluginId: string; pid: number }> }
    const echoPid = workers.find((w) => w.pluginId === 'echo')?.pid as number
    const signal = await fetch(`${t.url}/orgs/globex/plugins/hostile/signal?pid=${echoPid}`)
    expect(await signal.json()).toMatchObject({ ok: false, code: 'EPERM' })

    const hostilePid = (await t.admin('GET', '/workers')).body.workers.find((w: { pluginId: string }) => w.pluginId === 'hostile').pid
    const [echoUid, hostileUid] = [await uidOf(echoPid), await uidOf(hostilePid)]
    expect(echoUid).not.toBe(hostileUid)
    for (const uid of [echoUid, hostileUid]) expect(uid >= DEFAULT_UIDS.min && uid <= DEFAULT_UIDS.max).toBe(true)
    const again = await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)
    expect(again.status).toBe(200)
    await again.body?.cancel()
    expect((await t.admin('GET', '/workers')).body.workers.find((w: { pluginId: string }) => w.pluginId === 'echo').pid).toBe(echoPid)
  })

  it('hands out disjoint uids from the default range in two gateways of one host', async () => {
    const a = await startGatewayProcess(await tempDir())
    const b = await startGatewayProcess(await tempDir())
    const pids = []
    for (const gw of [a, b]) for (const org of ['acme', 'globex']) pids.push(await startWorker(gw.url, org, 'echo', '/items/1'))
    const uids = await Promise.all(pids.map(uidOf))
    expect(new Set(uids).size).toBe(4)
    for (const uid of uids) expect(uid >= DEFAULT_UIDS.min && uid <= DEFAULT_UIDS.max).toBe(true)
  })

  it('never gives a uid another gateway of the host holds: with every uid of a shared range taken there, it answers 503 until one is freed', async () => {
    // Two uids, two workers each: whichever uid the second gateway took would be the first's.
    const range = { WORKER_UID: '1879900000-1879900001', MAX_WORKERS: '2', PREWARM_POOL_SIZE: '0' }
    const a = await startGatewayProcess(await tempDir(), range)
    const b = await startGatewayProcess(await tempDir(), range)
    const held = [await startWorker(a.url, 'acme', 'echo', '/items/1'), await startWorker(a.url, 'globex', 'echo', '/items/1')]
    const heldUids = await Promise.all(held.map(uidOf))
    expect(new Set(heldUids).size).toBe(2)

    await enable(b.url, 'initech', 'echo')
    const refused = await fetch(`${b.url}/orgs/initech/plugins/echo/items/1`)
    expect([refused.status, ((await refused.json()) as { error: { code: string } }).error.code]).toEqual([503, 'CAPACITY_EXHAUSTED'])
    expect(await workersOf(b.url)).toEqual([]) // no process started, and no failed start kept (no backoff)

    const stop = await fetch(`${a.url}/admin/orgs/globex/plugins/echo/stop`, { method: 'POST' })
    expect(stop.status).toBe(200)
    await stop.body?.cancel()
    await vi.waitFor(
      async () => {
        const res = await fetch(`${b.url}/orgs/initech/plugins/echo/items/1`)
        await res.body?.cancel()
        expect(res.status).toBe(200)
      },
      { timeout: 10_000, interval: 100 },
    )
    const worker = (await workersOf(b.url)).find((w) => w.pid)
    expect(await uidOf(worker?.pid as number)).toBe(heldUids[1])
  })

  describe('with the smallest range config accepts (MAX_WORKERS + PREWARM_POOL_SIZE uids)', () => {
    // Each evicted or rolled worker below is held in its /disable (its gate stays shut; DISABLE_TIMEOUT_MS
    // ends the wait, then SIGTERM and STOP_TIMEOUT_MS): it keeps its uid meanwhile, and the start that
    // needs that uid must wait for it, not refuse. The gates open at the end, for a quick teardown.
    async function gatewayWithTwoUids(uids: string, env: Record<string, string> = {}) {
      const gate = await startGate()
      const t = await startTestGateway({
        env: { WORKER_UID: uids, MAX_WORKERS: '2', PREWARM_POOL_SIZE: '0', STOP_TIMEOUT_MS: '500', GATE_URL: gate.url, ...env },
      })
      onTestFinished(() => {
        for (const org of ['a', 'b', 'c']) gate.open(`${org}-disable`)
      })
      return { t, gate }
    }
    const whoami = async (url: string, org: string) => {
      const res = await fetch(`${url}/orgs/${org}/plugins/gated/whoami`)
      expect(res.status, await res.clone().text()).toBe(200)
      return ((await res.json()) as { pid: number }).pid
    }

    it('starts the worker that evicted the least recently used one under the uid that one frees once it has stopped', async () => {
      const { t, gate } = await gatewayWithTwoUids('1879900040-1879900041')
      for (const org of ['a', 'b', 'c']) await t.enable(org, 'gated', { disableGate: `${org}-disable` })
      const evictedPid = await whoami(t.url, 'a') // the least recently used of the two
      await whoami(t.url, 'b')
      const evictedUid = await uidOf(evictedPid)

      const pid = await whoami(t.url, 'c')
      expect(gate.arrivals('a-disable')).toHaveLength(1) // evicted, and held in its stop while c started
      expect(await uidOf(pid)).toBe(evictedUid)
      expect((await t.instanceRow('a', 'gated'))?.runtimeState).toBe('stopped')
    })

    it('starts the next generation of a rolled plugin under the uid of a worker of the old one once it has stopped', async () => {
      const { t, gate } = await gatewayWithTwoUids('1879900042-1879900043')
      for (const org of ['a', 'b']) await t.enable(org, 'gated', { disableGate: `${org}-disable` })
      const oldPids = [await whoami(t.url, 'a'), await whoami(t.url, 'b')]
      const oldUids = await Promise.all(oldPids.map(uidOf))

      expect(t.gw.pool.roll('gated', 'replaced')).toBe(2)
      const pid = await whoami(t.url, 'a')
      expect(oldPids).not.toContain(pid)
      expect(oldUids).toContain(await uidOf(pid))
      expect(gate.arrivals('a-disable').length + gate.arrivals('b-disable').length).toBeGreaterThan(0)
    })

    it('refuses a start with 503 CAPACITY_EXHAUSTED at once when no uid is being freed here, and the key earns no restart backoff', async () => {
      const range = { min: 1879900044, max: 1879900045 }
      const { t } = await gatewayWithTwoUids(`${range.min}-${range.max}`, { RESTART_BACKOFF_MS: '60000' })
      // Another gateway of the host holds both uids.
      const other = createWorkerUsers({ uids: range, gid: NOGROUP }, { killCommand: KILL })
      const held = [other.take(), other.take()]
      onTestFinished(async () => {
        for (const user of held) await other.give(user)
      })
      await t.enable('acme', 'gated')

      const refused = await fetch(`${t.url}/orgs/acme/plugins/gated/whoami`)
      expect([
        refused.status,
        refused.headers.get('retry-after'),
        ((await refused.json()) as { error: { code: string } }).error.code,
      ]).toEqual([503, '1', 'CAPACITY_EXHAUSTED'])
      expect(t.gw.pool.list()).toEqual([])

      const freed = held.pop() as (typeof held)[number]
      await other.give(freed)
      expect(await uidOf(await whoami(t.url, 'acme'))).toBe(freed.uid)
    })
  })

  it('kills what a stopped worker left running under its uid, and closing the gateway waits for that', async () => {
    const plugins = join(await tempDir(), 'plugins')
    await mkdir(plugins)
    const dir = await copyPlugin(join(FIXTURES_DIR, 'hostile'), plugins, 'spawner')
    const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'))
    manifest['hay-plugin'].permissions = ['child-process']
    await writeFile(join(dir, 'package.json'), JSON.stringify(manifest))
    const t = await startTestGateway({ pluginDirs: [plugins] })
    await t.enable('acme', 'spawner')
    const leaveBehind = async () => {
      const cmd = 'sleep 300 >/dev/null 2>&1 & echo $!' // outlives the worker: its parent dies first
      const res = await fetch(`${t.url}/orgs/acme/plugins/spawner/shell?${new URLSearchParams({ cmd })}`)
      const pid = Number(((await res.json()) as { stdout: string }).stdout.trim())
      onTestFinished(() => {
        if (!isDead(readFileSyncState(pid))) process.kill(pid, 'SIGKILL')
      })
      expect(await stateOf(pid)).toBe('S')
      return pid
    }

    const first = await leaveBehind()
    expect(await t.admin('POST', '/orgs/acme/plugins/spawner/stop')).toMatchObject({ status: 200 })
    await vi.waitFor(async () => expect(isDead(await stateOf(first))).toBe(true), { timeout: 5_000, interval: 20 })

    const second = await leaveBehind()
    await t.gw.close()
    expect(await stateOf(second)).toSatisfy(isDead)
  })

  it('takes over a claim whose holder is dead or whose pid now names another process, and skips a live holder', async () => {
    const dir = await claimsDir()
    const uids = { min: 1879900010, max: 1879900013 }
    const dead = spawn('true')
    await exitOf(dead)
    const holder = await liveProcess()
    await plantClaim(dir, uids.min, `${dead.pid}-1`) // its holder is gone
    await plantClaim(dir, uids.min + 1, `${process.pid}-1`) // its pid is alive, but started at another time
    await plantClaim(dir, uids.min + 2, holder.holder) // a live gateway's
    await plantClaim(dir, uids.min + 3, holder.holder)
    const users = createWorkerUsers({ uids, gid: NOGROUP }, { claimsDir: dir, killCommand: KILL })
    const taken = [users.take().uid, users.take().uid].sort()
    expect(taken).toEqual([uids.min, uids.min + 1])
    expect(() => users.take()).toThrow(expect.objectContaining({ code: 'CAPACITY_EXHAUSTED' }))

    // Another instance (another gateway) sees this one's claims as held until it gives them back.
    const other = createWorkerUsers({ uids, gid: NOGROUP }, { claimsDir: dir, killCommand: KILL })
    expect(() => other.take()).toThrow(expect.objectContaining({ code: 'CAPACITY_EXHAUSTED' }))
    await users.give({ uid: uids.min, gid: NOGROUP })
    expect(other.take().uid).toBe(uids.min)

    holder.child.kill('SIGKILL')
    await exitOf(holder.child)
    expect([other.take().uid, other.take().uid].sort()).toEqual([uids.min + 2, uids.min + 3])
  })

  it('skips a uid a dead gateway held while some process still runs as it, and kills what is left under a uid before freeing it', async () => {
    const dir = await claimsDir()
    const uids = { min: 1879900020, max: 1879900021 }
    await liveProcess({ uid: uids.min }) // the worker of a gateway that was killed, still leaving
    await plantClaim(dir, uids.min, '999999999-1') // that gateway's claim (no pid is that high)
    const users = createWorkerUsers({ uids, gid: NOGROUP }, { claimsDir: dir, killCommand: KILL })
    const user = users.take()
    expect(user.uid).toBe(uids.max)
    expect(() => users.take()).toThrow(expect.objectContaining({ code: 'CAPACITY_EXHAUSTED' }))

    const left = spawn('sleep', ['300'], { stdio: 'ignore', uid: user.uid, gid: user.gid }) // a worker's child, left behind
    const killed = exitOf(left)
    let stateWhileHeld: string | undefined
    await users.give(user, async () => {
      const status = await readFile(`/proc/${left.pid}/status`, 'utf8').catch(() => 'State:\tgone')
      stateWhileHeld = /^State:\s+(\S+)/m.exec(status)?.[1]
    })
    expect(['Z', 'X', 'gone']).toContain(stateWhileHeld) // killed before the temp dir is removed
    expect(await killed).toEqual({ code: null, signal: 'SIGKILL' })
  })

  it('hands a uid it gives back to a start waiting for one before any other claimant can take it; a wait that ends refuses', async () => {
    const dir = await claimsDir()
    const uids = { min: 1879900050, max: 1879900051 }
    const users = createWorkerUsers({ uids, gid: NOGROUP }, { claimsDir: dir, killCommand: KILL })
    const other = createWorkerUsers({ uids, gid: NOGROUP }, { claimsDir: dir, killCommand: KILL }) // another gateway
    const held = [users.take(), users.take()]

    const waiting = users.takeNextGiven(new AbortController().signal)
    await users.give(held[0] as (typeof held)[number])
    expect(await waiting).toEqual(held[0])
    expect(() => other.take()).toThrow(expect.objectContaining({ code: 'CAPACITY_EXHAUSTED' })) // never released meanwhile

    const gaveUp = new AbortController()
    const refused = users.takeNextGiven(gaveUp.signal)
    gaveUp.abort()
    await expect(refused).rejects.toMatchObject({ code: 'CAPACITY_EXHAUSTED' })
    await users.give(held[1] as (typeof held)[number])
    expect(other.take()).toEqual(held[1]) // released, not handed to the start that stopped waiting
  })

  it('kills a chain of processes that keeps forking a new one and exiting (each missed by a walk of /proc that lists it too late)', async () => {
    const dir = await claimsDir()
    const uids = { min: 1879900030, max: 1879900031 }
    const users = createWorkerUsers({ uids, gid: NOGROUP }, { claimsDir: dir, killCommand: KILL })
    const runningAs = (uid: number) =>
      readdirSync('/proc')
        .filter((name) => /^\d+$/.test(name))
        .filter((pid) => {
          const status = (() => {
            try {
              return readFileSync(`/proc/${pid}/status`, 'utf8')
            } catch {
              return ''
            }
          })()
          return /^Uid:\s+(\d+)/m.exec(status)?.[1] === String(uid) && !/^State:\s+[ZX]/m.test(status)
        })
    // Each round of the chain: a shell that sleeps a moment, starts the next shell and exits.
    const script = join(await tempDir(), 'hop.sh')
    await writeFile(script, 'sleep 0.002; sh "$0" & exit 0\n', { mode: 0o755 })
    await chmod(dirname(script), 0o755)
    for (let round = 0; round < 5; round++) {
      const user = users.take()
      onTestFinished(() => {
        // Should the chain have escaped, killing a list of it would miss its next round as well.
        for (let i = 0; i < 3 && KILL; i++) spawnSync(KILL, ['-9', '-1'], { uid: user.uid, gid: user.gid, cwd: '/', stdio: 'ignore' })
      })
      spawn('sh', [script], { stdio: 'ignore', uid: user.uid, gid: user.gid, detached: true }).unref()
      await vi.waitFor(() => expect(runningAs(user.uid).length).toBeGreaterThan(0))
      await users.give(user)
      expect(runningAs(user.uid)).toEqual([])
    }
  })
})
