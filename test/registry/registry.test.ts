import { describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/index.js'
import { createInstancesRepo, createPluginsRepo } from '../../src/db/index.js'
import { createRegistry } from '../../src/registry/index.js'
import { openTempDb } from '../db/harness.js'
import { heldReads } from '../helpers/held-reads.js'
import { createManualClock } from '../helpers/manual-clock.js'

describe('Registry instance cache', () => {
  it('neither caches nor answers a read that a write overtook: the write is what every reader sees', async () => {
    const handle = await openTempDb()
    const clock = createManualClock(1_700_000_000_000)
    const repo = createInstancesRepo(handle.db, clock)
    await repo.upsert('acme', 'echo', { enabled: true })
    const held = heldReads(repo)
    const registry = createRegistry({ plugins: createPluginsRepo(handle.db, clock), instances: held.instances, log: silentLogger })

    const slowRead = registry.instance('acme', 'echo')
    await held.readDone // it holds the row as it was before the write below
    await registry.saveInstance('acme', 'echo', { enabled: false })
    held.release()
    expect((await slowRead)?.enabled).toBe(false)
    expect((await registry.instance('acme', 'echo'))?.enabled).toBe(false)
  })
})
