import { once } from 'node:events'
import { createServer } from 'node:net'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { startGate } from '../helpers/gate.js'
import { exitOf, startTestGateway, warmUp } from '../helpers/gateway.js'

const WAIT = { timeout: 10_000, interval: 20 }

describe('lazy start on first hit', () => {
  it('persists stopped → starting → ready with sdkVersion, pid and port', async () => {
    const gate = await startGate()
    const t = await startTestGateway({ env: { GATE_URL: gate.url } })
    await t.enable('acme', 'gated', { startGate: 'start' })
    expect((await t.instanceRow('acme', 'gated'))?.runtimeState).toBe('stopped')

    const first = fetch(`${t.url}/orgs/acme/plugins/gated/whoami`)
    const [held] = await gate.arrived('start') // the worker is in onStart, and stays there
    await vi.waitFor(async () => expect((await t.instanceRow('acme', 'gated'))?.runtimeState).toBe('starting'), WAIT)
    gate.open('start')
    const res = await first
    expect(res.status).toBe(200)
    const pid = t.spawned[0]?.pid
    expect(await res.json()).toMatchObject({ pid, orgId: 'acme' })
    const row = await t.instanceRow('acme', 'gated')
    expect(row).toMatchObject({ runtimeState: 'ready', sdkVersion: 'v2', pid, port: Number(held?.get('port')) })
    expect(row?.port).toBeGreaterThan(0)
    expect(row?.lastStartedAt).toBeInstanceOf(Date)
  })

  it('starts the worker again on another port when its port was taken before it could bind it', async () => {
    const gate = await startGate()
    const t = await startTestGateway({ env: { GATE_URL: gate.url } })
    await t.enable('acme', 'gated', { startGate: 'start' })
    const first = fetch(`${t.url}/orgs/acme/plugins/gated/whoami`)
    const [held] = await gate.arrived('start') // the worker has its port but listens only after onStart
    const taken = Number(held?.get('port'))
    const squatter = createServer()
    squatter.listen(taken, '127.0.0.1')
    await once(squatter, 'listening') // another process got there first
    onTestFinished(() => new Promise<void>((resolve) => squatter.close(() => resolve())))
    const lost = exitOf(t.spawned[0]!)
    gate.open('start')

    const res = await first
    expect(res.status).toBe(200)
    expect(await lost).toEqual({ code: 2, signal: null }) // the runner's LISTEN_FAILED
    expect(t.spawned).toHaveLength(2)
    const { body } = await t.admin('GET', '/workers')
    expect(body.workers).toEqual([expect.objectContaining({ pid: t.spawned[1]?.pid, state: 'ready' })])
    expect(body.workers[0].port).not.toBe(taken)
    expect(await res.json()).toMatchObject({ pid: t.spawned[1]?.pid })
  })

  it('fetches metadata once: missing → fresh with metadataFetchedAt', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo')
    expect(await t.pluginRow('echo')).toMatchObject({ metadataState: 'missing', metadataFetchedAt: null })

    const res = await fetch(`${t.url}/orgs/acme/plugins/echo/items/42`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ id: '42' })
    const row = await t.pluginRow('echo')
    expect(row?.metadataState).toBe('fresh')
    expect(row?.metadataFetchedAt).toBeInstanceOf(Date)
    expect(row?.metadata?.routes).toContainEqual({ method: 'GET', path: '/items/:id' })
  })

  it('marks the cold request and reuses the worker for the next one', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo')

    const cold = await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)
    expect(cold.headers.get('x-plugin-cold-start')).toBe('1')
    expect(cold.headers.get('server-timing')).toMatch(
      /cold;dur=[\d.]+, queue;dur=[\d.]+, spawn;dur=[\d.]+, ready;dur=[\d.]+, metadata;dur=[\d.]+, proxy;dur=[\d.]+/,
    )
    await cold.body?.cancel()

    const warm = await fetch(`${t.url}/orgs/acme/plugins/echo/items/2`)
    expect(warm.status).toBe(200)
    expect(warm.headers.get('x-plugin-cold-start')).toBeNull()
    expect(warm.headers.get('server-timing')).toMatch(/^proxy;dur=[\d.]+$/)
    await warm.body?.cancel()
    expect(t.spawned).toHaveLength(1)
  })

  it.each([
    ['a prewarmed runner (the default)', {}, true],
    ['a fresh spawn', { PREWARM_POOL_SIZE: '0' }, false],
  ])('starts exactly one worker, %s, for 100 concurrent first requests, and all succeed', async (_name, env, prewarmed) => {
    const t = await startTestGateway({ env })
    if (prewarmed) await warmUp(t, 'echo', '/items/0')
    await t.enable('acme', 'echo')

    const responses = await Promise.all(Array.from({ length: 100 }, (_, i) => fetch(`${t.url}/orgs/acme/plugins/echo/items/${i}`)))
    const bodies = await Promise.all(responses.map((r) => r.json() as Promise<{ id: string }>))
    expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200))
    expect(bodies.map((b) => b.id)).toEqual(Array.from({ length: 100 }, (_, i) => String(i)))
    expect(t.spawned.slice(prewarmed ? 1 : 0).map((c) => c.spawnargs.includes('--prewarm'))).toEqual([prewarmed])
  })

  it('keeps orgs apart: each (org, plugin) pair gets its own worker and config', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo', { prefix: 'acme' })
    await t.enable('globex', 'echo', { prefix: 'globex' })

    const [a, b] = await Promise.all([
      fetch(`${t.url}/orgs/acme/plugins/echo/items/1`).then((r) => r.json()),
      fetch(`${t.url}/orgs/globex/plugins/echo/items/1`).then((r) => r.json()),
    ])
    expect(a).toMatchObject({ prefix: 'acme' })
    expect(b).toMatchObject({ prefix: 'globex' })
    expect(t.spawned).toHaveLength(2)
    const { body } = await t.admin('GET', '/workers')
    expect(body.workers.map((w: { orgId: string }) => w.orgId).sort()).toEqual(['acme', 'globex'])
  })
})
