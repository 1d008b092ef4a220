import { describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/index.js'
import { createPluginsRepo } from '../../src/db/index.js'
import type { CatalogPlugin } from '../../src/db/index.js'
import { createMetadataService } from '../../src/metadata/index.js'
import { openTempDb, v2Plugin } from '../db/harness.js'
import { createManualClock } from '../helpers/manual-clock.js'
import { goodMetadata, invalidMetadata, otherMetadata } from './fixtures.js'
import { json, startPeer } from './peer.js'
import type { Reply } from './peer.js'

const echo = v2Plugin()

const legacy: CatalogPlugin = {
  id: 'legacy',
  name: 'legacy',
  version: '1.0.0',
  dir: '/plugins/legacy',
  manifest: { entry: './index.js', env: [], permissions: [], configSchema: goodMetadata.configSchema },
  sdkVersion: 'v1',
  checksum: 'sum-a',
  legacyMetadata: goodMetadata,
}

async function harness(reply: (n: number) => Reply | Promise<Reply>) {
  const clock = createManualClock(1_700_000_000_000)
  const { db } = await openTempDb()
  const plugins = createPluginsRepo(db, clock)
  const peer = await startPeer(reply)
  const metadata = createMetadataService({
    plugins,
    clock,
    log: silentLogger,
    fetch: { attempts: 3, backoffMs: [1_000, 2_000, 3_000], timeoutMs: 5_000 },
  })
  return { clock, plugins, peer, metadata }
}

describe('MetadataService.ensureFresh', () => {
  it('fetches missing metadata and stores it fresh with metadataFetchedAt', async () => {
    const { metadata, plugins, peer, clock } = await harness(() => json(goodMetadata))
    await plugins.syncFromCatalog(echo)

    const row = await metadata.ensureFresh('echo', peer.dispatcher, echo.checksum)
    expect(row).toMatchObject({ id: 'echo', metadataState: 'fresh', metadata: goodMetadata, metadataError: null })
    expect(row.metadataFetchedAt?.getTime()).toBe(clock.now())
    expect(await plugins.get('echo')).toEqual(row)
    expect(peer.requests()).toBe(1)
  })

  it('does nothing when the metadata is already fresh', async () => {
    const { metadata, plugins, peer } = await harness(() => json(otherMetadata))
    await plugins.syncFromCatalog(echo)
    const fresh = await plugins.saveMetadata('echo', goodMetadata)

    expect(await metadata.ensureFresh('echo', peer.dispatcher, echo.checksum)).toEqual(fresh)
    expect(await metadata.ensureFresh('echo', peer.dispatcher, echo.checksum)).toEqual(fresh)
    expect(peer.requests()).toBe(0)
  })

  it('refetches stale metadata after a manual refresh', async () => {
    const { metadata, plugins, peer } = await harness(() => json(otherMetadata))
    await plugins.syncFromCatalog(echo)
    await plugins.saveMetadata('echo', goodMetadata)

    expect(await metadata.markStale('echo')).toMatchObject({ metadataState: 'stale', metadata: goodMetadata })
    expect(await metadata.ensureFresh('echo', peer.dispatcher, echo.checksum)).toMatchObject({
      metadataState: 'fresh',
      metadata: otherMetadata,
    })
    expect(peer.requests()).toBe(1)
  })

  it('keeps the last good metadata and marks the plugin error when every attempt fails', async () => {
    const { metadata, plugins, peer, clock } = await harness(() => json({ error: 'down' }, 500))
    await plugins.syncFromCatalog(echo)
    await plugins.saveMetadata('echo', goodMetadata)
    await plugins.syncFromCatalog({ ...echo, checksum: 'sum-2' }) // new code on disk: stale

    const row = metadata.ensureFresh('echo', peer.dispatcher, echo.checksum)
    for (const ms of [1_000, 2_000]) {
      await clock.waitForTimer((t) => t.ms === ms)
      clock.advance(ms)
    }
    expect(await row).toMatchObject({ metadataState: 'error', metadata: goodMetadata, metadataError: expect.any(String) })
    expect(peer.requests()).toBe(3)
  })

  it('marks invalid metadata as an error state without throwing', async () => {
    const { metadata, plugins, peer, clock } = await harness(() => json(invalidMetadata))
    await plugins.syncFromCatalog(echo)

    const row = metadata.ensureFresh('echo', peer.dispatcher, echo.checksum)
    for (const ms of [1_000, 2_000]) {
      await clock.waitForTimer((t) => t.ms === ms)
      clock.advance(ms)
    }
    expect(await row).toMatchObject({ metadataState: 'error', metadata: null })
  })

  it('shares one fetch among concurrent calls for the same plugin', async () => {
    let release: (reply: Reply) => void = () => {}
    const gate = new Promise<Reply>((resolve) => (release = resolve))
    const { metadata, plugins, peer } = await harness((n) => (n === 1 ? gate : json(otherMetadata)))
    await plugins.syncFromCatalog(echo)

    const calls = Array.from({ length: 5 }, () => metadata.ensureFresh('echo', peer.dispatcher, echo.checksum))
    await peer.received(1)
    release(json(goodMetadata))
    const rows = await Promise.all(calls)
    expect(rows.every((r) => r.metadataState === 'fresh')).toBe(true)
    expect(peer.requests()).toBe(1)

    // The flight is over: a later refresh fetches again.
    await metadata.markStale('echo')
    expect(await metadata.ensureFresh('echo', peer.dispatcher, echo.checksum)).toMatchObject({ metadata: otherMetadata })
    expect(peer.requests()).toBe(2)
  })

  it('does not mark metadata fresh when the plugin code changed during the fetch', async () => {
    let release: (reply: Reply) => void = () => {}
    const gate = new Promise<Reply>((resolve) => (release = resolve))
    const { metadata, plugins, peer } = await harness(() => gate)
    await plugins.syncFromCatalog(echo)
    await plugins.saveMetadata('echo', otherMetadata)
    await plugins.markStale('echo')

    const row = metadata.ensureFresh('echo', peer.dispatcher, echo.checksum)
    await peer.received(1)
    await plugins.syncFromCatalog({ ...echo, checksum: 'sum-2' })
    release(json(goodMetadata))
    expect(await row).toMatchObject({ checksum: 'sum-2', metadataState: 'stale', metadata: otherMetadata })
  })

  it('stores nothing when the shared row describes other code than the worker runs (a gateway on another version)', async () => {
    const { metadata, plugins, peer } = await harness(() => json(goodMetadata))
    await plugins.syncFromCatalog({ ...echo, checksum: 'sum-new' }) // another gateway runs a newer build
    await plugins.saveMetadata('echo', otherMetadata)
    await plugins.markStale('echo')

    const row = await metadata.ensureFresh('echo', peer.dispatcher, echo.checksum) // this worker runs sum-1
    expect(row).toMatchObject({ checksum: 'sum-new', metadataState: 'stale', metadata: otherMetadata })
    expect(await plugins.get('echo')).toMatchObject({ checksum: 'sum-new', metadataState: 'stale', metadata: otherMetadata })
  })

  it('never fetches for a legacy v1 plugin', async () => {
    const { metadata, plugins, peer } = await harness(() => json(otherMetadata))
    await plugins.syncFromCatalog(legacy)

    expect(await metadata.markStale('legacy')).toMatchObject({ metadataState: 'fresh' })
    expect(await metadata.ensureFresh('legacy', peer.dispatcher, legacy.checksum)).toMatchObject({
      metadataState: 'fresh',
      metadata: goodMetadata,
    })
    expect(peer.requests()).toBe(0)
  })

  it('rejects an unknown plugin with a coded error', async () => {
    const { metadata, peer } = await harness(() => json(goodMetadata))
    await expect(metadata.ensureFresh('ghost', peer.dispatcher, echo.checksum)).rejects.toMatchObject({ code: 'PLUGIN_NOT_FOUND' })
    expect(await metadata.markStale('ghost')).toBeUndefined()
  })
})
