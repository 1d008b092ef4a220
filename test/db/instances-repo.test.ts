import { describe, expect, it, vi } from 'vitest'
import { createInstancesRepo } from '../../src/db/index.js'
import { createManualClock } from '../helpers/manual-clock.js'
import { openTempDb } from './harness.js'

async function harness() {
  const clock = createManualClock(1_700_000_000_000)
  const handle = await openTempDb()
  return { clock, client: handle.client, instances: createInstancesRepo(handle.db, clock) }
}

describe('InstancesRepo', () => {
  it('upsert creates a disabled, stopped instance with an empty config', async () => {
    const { instances, clock } = await harness()
    const row = await instances.upsert('acme', 'echo')
    expect(row).toMatchObject({
      orgId: 'acme',
      pluginId: 'echo',
      enabled: false,
      config: {},
      authState: null,
      runtimeState: 'stopped',
      restarts: 0,
    })
    expect(row.createdAt.getTime()).toBe(clock.now())
    expect(await instances.get('acme', 'echo')).toEqual(row)
  })

  it('upsert updates only the fields it is given', async () => {
    const { instances } = await harness()
    await instances.upsert('acme', 'echo', { enabled: true, config: { apiBase: 'https://x' } })
    await instances.upsert('acme', 'echo', { authState: { methodId: 'apiKey', credentials: { apiKey: 'k' } } })
    expect(await instances.get('acme', 'echo')).toMatchObject({
      enabled: true,
      config: { apiBase: 'https://x' },
      authState: { methodId: 'apiKey', credentials: { apiKey: 'k' } },
    })
    await instances.upsert('acme', 'echo', { authState: null })
    expect((await instances.get('acme', 'echo'))?.authState).toBeNull()
  })

  it('lists all instances and those of one org', async () => {
    const { instances } = await harness()
    await instances.upsert('beta', 'echo')
    await instances.upsert('acme', 'webhook')
    await instances.upsert('acme', 'echo')
    expect((await instances.list()).map((r) => `${r.orgId}/${r.pluginId}`)).toEqual(['acme/echo', 'acme/webhook', 'beta/echo'])
    expect((await instances.listByOrg('acme')).map((r) => r.pluginId)).toEqual(['echo', 'webhook'])
  })

  it('replaceSecrets writes only while the row still stores what was read', async () => {
    const { instances } = await harness()
    const auth = { methodId: 'apiKey', credentials: { apiKey: 'k' } }
    const read = await instances.upsert('acme', 'echo', { enabled: true, config: { a: 'old', n: 1 }, authState: auth })
    await instances.setRuntime('acme', 'echo', { runtimeState: 'ready', pid: 42, port: 5001 }) // runtime writes do not count

    const next = { config: { a: 'new', n: 1 }, authState: { methodId: 'apiKey', credentials: { apiKey: 'k2' } } }
    const written = await instances.replaceSecrets('acme', 'echo', read, next)
    expect(written).toMatchObject({ ...next, enabled: true, runtimeState: 'ready', pid: 42 })

    // Another gateway changed the config (or cleared the auth) after this read: nothing is overwritten.
    const stale = { config: read.config, authState: read.authState }
    expect(await instances.replaceSecrets('acme', 'echo', stale, { config: {}, authState: null })).toBeUndefined()
    await instances.upsert('acme', 'echo', { authState: null })
    expect(await instances.replaceSecrets('acme', 'echo', next, { config: {}, authState: null })).toBeUndefined()
    expect(await instances.get('acme', 'echo')).toMatchObject({ config: next.config, authState: null })

    expect(
      await instances.replaceSecrets('acme', 'echo', { config: next.config, authState: null }, { config: { a: 'x' }, authState: null }),
    ).toMatchObject({
      config: { a: 'x' },
    })
    expect(await instances.replaceSecrets('nobody', 'echo', stale, next)).toBeUndefined()
  })

  it('removes an instance', async () => {
    const { instances } = await harness()
    await instances.upsert('acme', 'echo')
    expect(await instances.remove('acme', 'echo')).toBe(true)
    expect(await instances.remove('acme', 'echo')).toBe(false)
    expect(await instances.get('acme', 'echo')).toBeUndefined()
  })

  it('setRuntime records a start, readiness and a stop that clears pid and port', async () => {
    const { instances, clock } = await harness()
    await instances.upsert('acme', 'echo', { enabled: true })

    const starting = await instances.setRuntime('acme', 'echo', {
      runtimeState: 'starting',
      sdkVersion: 'v2',
      port: 41_000,
      lastStartedAt: clock.now(),
      ownerGatewayId: 'gw-1',
    })
    expect(starting).toMatchObject({ runtimeState: 'starting', sdkVersion: 'v2', port: 41_000, ownerGatewayId: 'gw-1' })
    expect(starting?.lastStartedAt?.getTime()).toBe(clock.now())

    const ready = await instances.setRuntime('acme', 'echo', { runtimeState: 'ready', pid: 4242, lastError: null })
    expect(ready).toMatchObject({ runtimeState: 'ready', pid: 4242, port: 41_000 })

    const crashed = await instances.setRuntime('acme', 'echo', {
      runtimeState: 'error',
      lastError: 'exited with code 1',
      restartsIncrement: 1,
    })
    expect(crashed).toMatchObject({ runtimeState: 'error', lastError: 'exited with code 1', pid: null, port: null, restarts: 1 })

    await instances.setRuntime('acme', 'echo', { runtimeState: 'starting', restartsIncrement: 1 })
    const stopped = await instances.setRuntime('acme', 'echo', { runtimeState: 'stopped' })
    expect(stopped).toMatchObject({ runtimeState: 'stopped', pid: null, port: null, restarts: 2, sdkVersion: 'v2' })
  })

  it('setRuntime on an unknown instance returns undefined', async () => {
    const { instances } = await harness()
    expect(await instances.setRuntime('acme', 'ghost', { runtimeState: 'ready' })).toBeUndefined()
  })

  it('touchActivity writes the whole list in one batch and never moves a timestamp backwards', async () => {
    const { instances, client } = await harness()
    await instances.upsert('acme', 'echo')
    await instances.upsert('acme', 'webhook')
    await instances.upsert('beta', 'echo')
    await instances.touchActivity([{ orgId: 'beta', pluginId: 'echo', at: 5_000 }])

    const batch = vi.spyOn(client, 'batch')
    const execute = vi.spyOn(client, 'execute')
    await instances.touchActivity([
      { orgId: 'acme', pluginId: 'echo', at: 1_000 },
      { orgId: 'acme', pluginId: 'echo', at: 3_000 },
      { orgId: 'acme', pluginId: 'echo', at: 2_000 },
      { orgId: 'acme', pluginId: 'webhook', at: 2_500 },
      { orgId: 'beta', pluginId: 'echo', at: 4_000 }, // older than what another gateway stored
      { orgId: 'zeta', pluginId: 'ghost', at: 9_000 }, // no such instance: ignored
    ])
    expect(batch).toHaveBeenCalledTimes(1)
    expect(batch.mock.calls[0]?.[0]).toHaveLength(4)
    expect(execute).not.toHaveBeenCalled()

    const at = async (org: string, plugin: string) => (await instances.get(org, plugin))?.lastActivityAt?.getTime()
    expect(await at('acme', 'echo')).toBe(3_000)
    expect(await at('acme', 'webhook')).toBe(2_500)
    expect(await at('beta', 'echo')).toBe(5_000)
    expect(await instances.get('zeta', 'ghost')).toBeUndefined()
  })

  it('touchActivity with nothing to flush does not touch the database', async () => {
    const { instances, client } = await harness()
    const batch = vi.spyOn(client, 'batch')
    await instances.touchActivity([])
    expect(batch).not.toHaveBeenCalled()
  })

  it('resetOrphanedRuntime stops rows a dead gateway left live and returns them as they were', async () => {
    const { instances } = await harness()
    for (const [plugin, state] of [
      ['a', 'starting'],
      ['b', 'ready'],
      ['c', 'stopping'],
      ['d', 'stopped'],
      ['e', 'error'],
    ] as const) {
      await instances.upsert('acme', plugin)
      await instances.setRuntime('acme', plugin, { runtimeState: state, pid: 100, port: 40_000, ownerGatewayId: 'gw-old' })
    }

    const orphans = await instances.resetOrphanedRuntime()
    expect(orphans.map((r) => [r.pluginId, r.runtimeState, r.pid, r.port])).toEqual([
      ['a', 'starting', 100, 40_000],
      ['b', 'ready', 100, 40_000],
      ['c', 'stopping', 100, 40_000],
    ])
    const after = await instances.listByOrg('acme')
    expect(after.map((r) => [r.pluginId, r.runtimeState, r.pid, r.port])).toEqual([
      ['a', 'stopped', null, null],
      ['b', 'stopped', null, null],
      ['c', 'stopped', null, null],
      ['d', 'stopped', 100, 40_000],
      ['e', 'error', 100, 40_000],
    ])
    expect(await instances.resetOrphanedRuntime()).toEqual([])
  })

  it('resetOrphanedRuntime can be limited to the rows of given (dead) gateways', async () => {
    const { instances } = await harness()
    await instances.upsert('acme', 'mine')
    await instances.setRuntime('acme', 'mine', { runtimeState: 'ready', pid: 1, port: 40_001, ownerGatewayId: 'gw-dead' })
    await instances.upsert('acme', 'theirs')
    await instances.setRuntime('acme', 'theirs', { runtimeState: 'ready', pid: 2, port: 40_002, ownerGatewayId: 'gw-alive' })

    expect(await instances.resetOrphanedRuntime({ ownerGatewayIds: [] })).toEqual([])
    const reset = await instances.resetOrphanedRuntime({ ownerGatewayIds: ['gw-dead'] })
    expect(reset.map((r) => r.pluginId)).toEqual(['mine'])
    expect((await instances.get('acme', 'theirs'))?.runtimeState).toBe('ready')
  })
})
