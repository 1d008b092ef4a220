import type { HayPluginBlock, SdkVersion } from '../contract/index.js'
import type { Logger, WorkerKey } from '../core/index.js'
import { workerKey } from '../core/index.js'
import type { CatalogEntry } from '../catalog/index.js'
import type { InstancePatch, InstancesRepo, PluginInstanceRow, PluginRow, PluginsRepo, StoredSecrets } from '../db/index.js'
import { compileRoutes, type RouteMatcher } from './route-matcher.js'

/** A valid plugin as the hot path sees it: catalog facts, its DB row, and compiled routes. */
export interface PluginView {
  id: string
  dir: string
  entryPath: string
  sdkVersion: SdkVersion
  envAllowList: readonly string[]
  manifest: HayPluginBlock
  row: PluginRow
  /** null until metadata has been fetched once. */
  routes: RouteMatcher | null
}

export interface InvalidPlugin {
  id: string
  dir: string
  error: string
}

export interface Registry {
  /** Syncs a catalog scan into the database and the in-memory views. */
  load(entries: readonly CatalogEntry[]): Promise<void>
  plugin(id: string): PluginView | undefined
  invalidPlugin(id: string): InvalidPlugin | undefined
  plugins(): PluginView[]
  invalidPlugins(): InvalidPlugin[]
  /** Replaces a plugin's row (after a metadata fetch or state change) and recompiles its routes. */
  updateRow(row: PluginRow): PluginView | undefined
  /** The instance for (org, plugin), read through a cache: the hot path never waits on the DB twice. */
  instance(orgId: string, pluginId: string): Promise<PluginInstanceRow | undefined>
  saveInstance(orgId: string, pluginId: string, patch: InstancePatch): Promise<PluginInstanceRow>
  /** `row`'s config and auth replaced by `next`, unless the stored row changed since it was read (undefined then). */
  replaceSecrets(row: PluginInstanceRow, next: StoredSecrets): Promise<PluginInstanceRow | undefined>
  removeInstance(orgId: string, pluginId: string): Promise<boolean>
  /** Drops the cached instance, so the next read comes from the database (changed by another gateway). */
  forgetInstance(orgId: string, pluginId: string): void
  listInstances(orgId?: string): Promise<PluginInstanceRow[]>
}

export interface RegistryDeps {
  plugins: PluginsRepo
  instances: InstancesRepo
  log: Logger
}

// Bounds the instance cache: random org ids from the public path must not grow memory without end.
const MAX_CACHED_INSTANCES = 10_000

export function createRegistry(deps: RegistryDeps): Registry {
  const views = new Map<string, PluginView>()
  const invalid = new Map<string, InvalidPlugin>()
  // Present-but-undefined caches "no such instance" too, so unknown orgs cannot hammer the DB.
  const instances = new Map<WorkerKey, PluginInstanceRow | undefined>()

  // Counts instance writes and forgets: a database read that started before one may hold the old row
  // and must not replace what the write put in the cache.
  let changes = 0

  const remember = (key: WorkerKey, row: PluginInstanceRow | undefined) => {
    instances.delete(key) // re-insert at the end: Map order doubles as recency
    instances.set(key, row)
    if (instances.size > MAX_CACHED_INSTANCES) instances.delete(instances.keys().next().value as WorkerKey)
  }

  const view = (entry: Extract<CatalogEntry, { ok: true }>, row: PluginRow): PluginView => ({
    id: entry.id,
    dir: entry.dir,
    entryPath: entry.entryPath,
    sdkVersion: entry.sdkVersion,
    envAllowList: entry.envAllowList,
    manifest: entry.manifest,
    row,
    routes: row.metadata ? compileRoutes(row.metadata.routes) : null,
  })

  return {
    async load(entries) {
      views.clear()
      invalid.clear()
      for (const entry of entries) {
        if (!entry.ok) {
          invalid.set(entry.id, { id: entry.id, dir: entry.dir, error: entry.error })
          deps.log.warn({ pluginId: entry.id, dir: entry.dir, error: entry.error }, 'invalid plugin')
          continue
        }
        views.set(entry.id, view(entry, await deps.plugins.syncFromCatalog(entry)))
      }
    },
    plugin: (id) => views.get(id),
    invalidPlugin: (id) => invalid.get(id),
    plugins: () => [...views.values()],
    invalidPlugins: () => [...invalid.values()],
    updateRow(row) {
      const current = views.get(row.id)
      if (!current) return undefined
      const next = { ...current, row, routes: row.metadata ? compileRoutes(row.metadata.routes) : null }
      views.set(row.id, next)
      return next
    },
    async instance(orgId, pluginId) {
      const key = workerKey(orgId, pluginId)
      if (instances.has(key)) return instances.get(key)
      const before = changes
      const row = await deps.instances.get(orgId, pluginId)
      if (changes === before) remember(key, row)
      return row
    },
    async saveInstance(orgId, pluginId, patch) {
      const row = await deps.instances.upsert(orgId, pluginId, patch)
      changes++
      remember(workerKey(orgId, pluginId), row)
      return row
    },
    async replaceSecrets(row, next) {
      const key = workerKey(row.orgId, row.pluginId)
      const updated = await deps.instances.replaceSecrets(row.orgId, row.pluginId, row, next)
      changes++
      if (updated) remember(key, updated)
      else instances.delete(key) // changed elsewhere: the next read must see the database
      return updated
    },
    forgetInstance(orgId, pluginId) {
      changes++
      instances.delete(workerKey(orgId, pluginId))
    },
    async removeInstance(orgId, pluginId) {
      changes++
      instances.delete(workerKey(orgId, pluginId))
      const removed = await deps.instances.remove(orgId, pluginId)
      changes++
      return removed
    },
    listInstances: (orgId) => (orgId ? deps.instances.listByOrg(orgId) : deps.instances.list()),
  }
}
