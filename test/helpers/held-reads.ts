import { silentLogger } from '../../src/core/index.js'
import { createInstancesRepo, createPluginsRepo, type InstancesRepo } from '../../src/db/index.js'
import { createRegistry } from '../../src/registry/index.js'
import { openTempDb } from '../db/harness.js'
import { createManualClock } from './manual-clock.js'

/** The real instances repository, except that the test decides when a read's answer comes back. */
export function heldReads(repo: InstancesRepo) {
  let read!: () => void
  let release!: () => void
  const readDone = new Promise<void>((resolve) => (read = resolve))
  const released = new Promise<void>((resolve) => (release = resolve))
  const instances: InstancesRepo = {
    ...repo,
    async get(orgId, pluginId) {
      const row = await repo.get(orgId, pluginId)
      read()
      await released
      return row
    },
  }
  return { instances, readDone, release }
}

/** A registry on a temp database where acme has echo enabled, whose instance reads the test holds (heldReads). */
export async function registryWithHeldReads() {
  const handle = await openTempDb()
  const clock = createManualClock(1_700_000_000_000)
  const repo = createInstancesRepo(handle.db, clock)
  await repo.upsert('acme', 'echo', { enabled: true })
  const held = heldReads(repo)
  const registry = createRegistry({ plugins: createPluginsRepo(handle.db, clock), instances: held.instances, log: silentLogger })
  return { registry, held }
}
