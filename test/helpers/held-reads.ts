import type { InstancesRepo } from '../../src/db/index.js'

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
