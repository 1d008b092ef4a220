import { describe, expect, it } from 'vitest'
import type { Metadata } from '../../src/contract/index.js'
import { createPluginsRepo } from '../../src/db/index.js'
import type { CatalogPlugin } from '../../src/db/index.js'
import { createManualClock } from '../helpers/manual-clock.js'
import { openTempDb, v2Plugin } from './harness.js'

const workerMetadata: Metadata = {
  configSchema: { apiKey: { type: 'string', required: true, encrypted: true } },
  authMethods: [{ type: 'apiKey', id: 'apiKey', label: 'API key', configField: 'apiKey' }],
  uiExtensions: [],
  pages: [],
  routes: [{ method: 'POST', path: '/webhook' }],
  mcp: { local: [], external: [] },
}

const legacyMetadata: Metadata = { ...workerMetadata, routes: [{ method: 'GET', path: '/items/:id' }] }

const v1 = (over: Partial<CatalogPlugin> = {}): CatalogPlugin => ({
  id: 'legacy',
  name: 'hay-plugin-legacy',
  version: '0.9.0',
  dir: '/plugins/legacy',
  manifest: { entry: './index.js', env: [], permissions: [], configSchema: legacyMetadata.configSchema },
  sdkVersion: 'v1',
  checksum: 'sum-a',
  legacyMetadata,
  ...over,
})

async function harness() {
  const clock = createManualClock(1_700_000_000_000)
  const { db } = await openTempDb()
  return { clock, plugins: createPluginsRepo(db, clock) }
}

describe('PluginsRepo.syncFromCatalog', () => {
  it('inserts a new SDK v2 plugin with metadata missing', async () => {
    const { plugins } = await harness()
    const row = await plugins.syncFromCatalog(v2Plugin())
    expect(row).toMatchObject({
      id: 'echo',
      name: 'hay-plugin-echo',
      path: '/plugins/echo',
      sdkVersion: 'v2',
      checksum: 'sum-1',
      metadata: null,
      metadataState: 'missing',
      metadataFetchedAt: null,
    })
    expect(await plugins.get('echo')).toEqual(row)
  })

  it('stores a legacy v1 plugin with its manifest-derived metadata as fresh', async () => {
    const { plugins, clock } = await harness()
    const row = await plugins.syncFromCatalog(v1())
    expect(row.metadataState).toBe('fresh')
    expect(row.metadata).toEqual(legacyMetadata)
    expect(row.metadataFetchedAt?.getTime()).toBe(clock.now())
  })

  it('marks fetched metadata stale when the checksum changes, keeping it', async () => {
    const { plugins, clock } = await harness()
    await plugins.syncFromCatalog(v2Plugin())
    const saved = await plugins.saveMetadata('echo', workerMetadata)
    clock.advance(60_000)

    const row = await plugins.syncFromCatalog(v2Plugin({ checksum: 'sum-2', version: '1.1.0' }))
    expect(row).toMatchObject({ checksum: 'sum-2', version: '1.1.0', metadataState: 'stale', metadata: workerMetadata })
    expect(row.metadataFetchedAt).toEqual(saved?.metadataFetchedAt)
  })

  it('keeps a v2 plugin missing when its checksum changes before any metadata was fetched', async () => {
    const { plugins } = await harness()
    await plugins.syncFromCatalog(v2Plugin())
    expect((await plugins.syncFromCatalog(v2Plugin({ checksum: 'sum-2' }))).metadataState).toBe('missing')
  })

  it('leaves the metadata state alone when the checksum is unchanged', async () => {
    const { plugins, clock } = await harness()
    await plugins.syncFromCatalog(v2Plugin())
    const fresh = await plugins.saveMetadata('echo', workerMetadata)
    clock.advance(1_000)
    const row = await plugins.syncFromCatalog(v2Plugin())
    expect(row).toEqual(fresh)
  })

  it('updates the descriptive fields on a rescan with the same checksum', async () => {
    const { plugins } = await harness()
    await plugins.syncFromCatalog(v2Plugin())
    await plugins.saveMetadata('echo', workerMetadata)
    const row = await plugins.syncFromCatalog(v2Plugin({ dir: '/elsewhere/echo', name: 'renamed' }))
    expect(row).toMatchObject({ path: '/elsewhere/echo', name: 'renamed', metadataState: 'fresh' })
  })

  it('refreshes a v1 plugin from its manifest when the checksum changes', async () => {
    const { plugins, clock } = await harness()
    await plugins.syncFromCatalog(v1())
    clock.advance(5_000)
    const changed: Metadata = { ...legacyMetadata, routes: [{ method: 'DELETE', path: '/items/:id' }] }
    const row = await plugins.syncFromCatalog(v1({ checksum: 'sum-b', legacyMetadata: changed }))
    expect(row).toMatchObject({ metadataState: 'fresh', metadata: changed })
    expect(row.metadataFetchedAt?.getTime()).toBe(clock.now())
  })

  it('rejects a v1 entry without manifest-derived metadata with a coded error', async () => {
    const { plugins } = await harness()
    await expect(plugins.syncFromCatalog(v1({ legacyMetadata: undefined }))).rejects.toMatchObject({
      code: 'PLUGIN_INVALID',
    })
  })
})

describe('PluginsRepo metadata state', () => {
  it('saveMetadata makes the row fresh with metadataFetchedAt now and clears the error', async () => {
    const { plugins, clock } = await harness()
    await plugins.syncFromCatalog(v2Plugin())
    await plugins.markMetadataError('echo', 'boom')
    clock.advance(10)
    const row = await plugins.saveMetadata('echo', workerMetadata)
    expect(row).toMatchObject({ metadataState: 'fresh', metadata: workerMetadata, metadataError: null })
    expect(row?.metadataFetchedAt?.getTime()).toBe(clock.now())
  })

  it('saveMetadata with a stale expected checksum stores nothing', async () => {
    const { plugins } = await harness()
    await plugins.syncFromCatalog(v2Plugin({ checksum: 'sum-2' }))
    expect(await plugins.saveMetadata('echo', workerMetadata, { expectedChecksum: 'sum-1' })).toBeUndefined()
    expect((await plugins.get('echo'))?.metadataState).toBe('missing')
  })

  it('markMetadataError keeps the last good metadata', async () => {
    const { plugins } = await harness()
    await plugins.syncFromCatalog(v2Plugin())
    await plugins.saveMetadata('echo', workerMetadata)
    const row = await plugins.markMetadataError('echo', 'GET /metadata answered 500')
    expect(row).toMatchObject({ metadataState: 'error', metadataError: 'GET /metadata answered 500', metadata: workerMetadata })
  })

  it('markStale marks fetched metadata stale and a plugin without metadata missing', async () => {
    const { plugins } = await harness()
    await plugins.syncFromCatalog(v2Plugin())
    await plugins.syncFromCatalog(v2Plugin({ id: 'other' }))
    await plugins.saveMetadata('echo', workerMetadata)
    await plugins.markMetadataError('other', 'boom')

    expect(await plugins.markStale('echo')).toMatchObject({ metadataState: 'stale', metadata: workerMetadata })
    expect(await plugins.markStale('other')).toMatchObject({ metadataState: 'missing', metadataError: null })
    expect(await plugins.markStale('nope')).toBeUndefined()
  })

  it('lists plugins by id', async () => {
    const { plugins } = await harness()
    await plugins.syncFromCatalog(v2Plugin({ id: 'zeta' }))
    await plugins.syncFromCatalog(v1())
    await plugins.syncFromCatalog(v2Plugin())
    expect((await plugins.list()).map((p) => p.id)).toEqual(['echo', 'legacy', 'zeta'])
  })
})
