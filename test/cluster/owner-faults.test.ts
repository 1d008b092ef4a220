// The owner of a worker fails while other gateways send it traffic (README: Several gateways on
// one database): silent but alive (SIGSTOP), or dead with a request in flight (SIGKILL).
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { startGate } from '../helpers/gate.js'
import { isRunning } from '../helpers/gateway.js'
import { startWorker, workersOf } from '../helpers/gateway-process.js'
import { startCluster } from './harness.js'

const WAIT = { timeout: 20_000, interval: 50 }

interface ErrorBody {
  error: { code: string; message: string }
}

/** A request's outcome: 200 with the answering worker's pid, a coded error, or how the connection failed. */
async function outcome(url: string, init?: RequestInit): Promise<{ status: number; pid?: number; code?: string } | { failed: string }> {
  try {
    const res = await fetch(url, init)
    const body = (await res.json()) as { pid?: number } & Partial<ErrorBody>
    return res.status === 200 ? { status: 200, pid: body.pid ?? -1 } : { status: res.status, code: body.error?.code ?? '?' }
  } catch (err) {
    return { failed: (err as { cause?: { code?: string } }).cause?.code ?? String(err) }
  }
}

describe('an owner gateway that fails under load', () => {
  it('is replaced once its lease lapses when it is SIGSTOPped (alive, silent); resumed, it stops its worker', async () => {
    const { gateways, repo, instances, allWorkers } = await startCluster(3)
    const [owner, a, b] = [gateways[0]!, gateways[1]!, gateways[2]!]
    const oldPid = await startWorker(owner.url, 'acme', 'gated', '/whoami')
    const before = await repo.lease('acme', 'gated')
    expect(before?.ownerGatewayId).toBe('gw0')

    // Load: four clients keep sending through the other two gateways, which forward to the owner.
    const outcomes: Array<Awaited<ReturnType<typeof outcome>>> = []
    let loading = true
    onTestFinished(() => {
      loading = false
    })
    const load = Promise.all(
      [a, b, a, b].map(async (g, client) => {
        for (let i = 0; loading; i++) outcomes.push(await outcome(`${g.url}/orgs/acme/plugins/gated/whoami?client=${client}&i=${i}`))
      }),
    )
    await vi.waitFor(() => expect(outcomes.length).toBeGreaterThan(20), WAIT)

    const ownerPid = owner.proc.child.pid as number
    process.kill(ownerPid, 'SIGSTOP')
    const resume = () => void process.kill(ownerPid, 'SIGCONT')
    onTestFinished(resume) // a stopped process cannot act on the teardown's SIGTERM
    // Its lease lapses and a request after that is served by a new owner's worker, while the
    // owner's own (still alive) worker is never reached.
    const served = await vi.waitFor(async () => {
      const o = await outcome(`${a.url}/orgs/acme/plugins/gated/whoami?probe`, { signal: AbortSignal.timeout(2_000) })
      expect(o).toMatchObject({ status: 200 })
      return o as { status: number; pid: number }
    }, WAIT)
    const after = await repo.lease('acme', 'gated')
    expect(after?.ownerGatewayId).not.toBe('gw0')
    expect(after?.generation).toBeGreaterThan(before?.generation ?? Infinity)
    const newOwner = gateways[Number(after?.ownerGatewayId?.slice('gw'.length))]! // GATEWAY_ID gw<i>
    const [replacement] = await workersOf(newOwner.url)
    expect(replacement?.pid).not.toBe(oldPid)
    expect(isRunning(oldPid)).toBe(true) // the silent owner's worker lives on meanwhile

    resume()
    // Back, it finds its lease gone and stops its worker; the key's row stays the new owner's.
    await vi.waitFor(() => expect(isRunning(oldPid)).toBe(false), WAIT)
    loading = false
    await load
    expect((await allWorkers()).map((w) => w.pid)).toEqual([replacement?.pid])
    expect(await repo.lease('acme', 'gated')).toMatchObject({ ownerGatewayId: after?.ownerGatewayId, generation: after?.generation })
    expect(await instances.get('acme', 'gated')).toMatchObject({ runtimeState: 'ready', pid: replacement?.pid })
    // Every request was answered: served, or refused with a coded error; none lost on the wire.
    expect(outcomes.filter((o) => !('status' in o) || (o.status !== 200 && o.code === undefined))).toEqual([])
    expect(served.pid).toBe(replacement?.pid)
  })

  it('sends a bodyless request in flight when its owner dies again, to the new owner; one with a body gets a coded 502', async () => {
    const gate = await startGate()
    const { gateways, repo, allWorkers } = await startCluster(2, { GATE_URL: gate.url })
    const [owner, other] = [gateways[0]!, gateways[1]!]
    const oldPid = await startWorker(owner.url, 'acme', 'gated', '/whoami')
    const get = outcome(`${other.url}/orgs/acme/plugins/gated/hold/get`)
    const post = outcome(`${other.url}/orgs/acme/plugins/gated/hold/post`, { method: 'POST', body: '{"n":1}' })
    const [first] = await gate.arrived('get') // forwarded to the owner, and held in its worker
    await gate.arrived('post')
    expect(Number(first?.get('pid'))).toBe(oldPid)

    owner.proc.child.kill('SIGKILL')
    await owner.proc.exited
    expect(await post).toEqual({ status: 502, code: 'UPSTREAM_ERROR' }) // its body was already streamed to the dead owner
    const [, again] = await gate.arrived('get', 2) // sent again once the lease lapsed: a new worker holds it now
    expect(Number(again?.get('pid'))).not.toBe(oldPid)
    gate.open('get')
    const answered = await get
    expect(answered).toEqual({ status: 200, pid: Number(again?.get('pid')) })
    expect((await repo.lease('acme', 'gated'))?.ownerGatewayId).toBe('gw1')
    expect((await allWorkers()).map((w) => w.pid)).toEqual([Number(again?.get('pid'))])
    await vi.waitFor(() => expect(isRunning(oldPid)).toBe(false), WAIT)
  })
})
