import type { CatalogEntry } from '../catalog/index.js'
import { createPluginReach } from '../workers/index.js'

type WorkerUsers = Parameters<typeof createPluginReach>[0]

/**
 * A catalog scan with each plugin its workers' users cannot reach made invalid: listed with the
 * reason, never started (README: Sandbox). Every scan of the plugin directories goes through this.
 */
export function withWorkerReach(entries: readonly CatalogEntry[], users: WorkerUsers): CatalogEntry[] {
  const unreachable = createPluginReach(users)
  return entries.map((entry) => {
    const error = entry.ok ? unreachable(entry) : undefined
    return error === undefined ? entry : { ok: false, id: entry.id, dir: entry.dir, error }
  })
}
