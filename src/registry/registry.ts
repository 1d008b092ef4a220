import type { HayPluginBlock, SdkVersion } from '../contract/index.js'
import { Metadata } from '../contract/index.js'
import type { Logger, WorkerKey } from '../core/index.js'
import { errorText, workerKey } from '../core/index.js'
import type { CatalogEntry, ValidCatalogEntry } from '../catalog/index.js'
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
  /** Checksum of the code this gateway runs (its own catalog scan), whatever the shared row says. */
  checksum: string
  /** Why the latest scan found the plugin's directory invalid; this version (the last valid one) keeps serving meanwhile. */
  scanError: string | null
  row: PluginRow
  /** null until metadata has been fetched once. */
  routes: RouteMatcher | null
}

export interface InvalidPlugin {
  id: string
  dir: string
  error: string
}

/** What a catalog scan changed, by plugin id (POST /admin/plugins/rescan answers it). */
export interface CatalogChanges {
  /** Valid now, not before (new directories, and invalid ones that became valid). */
  added: string[]
  /** Valid before and now, with other code (checksum) or in another directory. */
  changed: string[]
  /** Listed before, no directory now. */
  removed: string[]
  /** Invalid in this scan; one that was valid before keeps serving its last valid version. */
  invalid: Array<{ id: string; error: string }>
}

export interface Registry {
  /**
   * Syncs a catalog scan into the database and the in-memory views, and says what changed. The views
   * are swapped at once, after every database write: a request sees the catalog before or after.
   */
  load(entries: readonly CatalogEntry[]): Promise<CatalogChanges>
  plugin(id: string): PluginView | undefined
  invalidPlugin(id: string): InvalidPlugin | undefined
  plugins(): PluginView[]
  invalidPlugins(): InvalidPlugin[]
  /** Replaces a plugin's row (after a metadata fetch or state change) and recompiles its routes. */
  updateRow(row: PluginRow): PluginView | undefined
  /** The instance for (org, plugin), read through a cache: the hot path never waits on the DB twice. */
  instance(orgId: string, pluginId: string): Promise<PluginInstanceRow | undefined>
  /**
   * The instance as stored, read past the cache: with the runtime fields (state, last error, pid) that
   * the runtime recorder writes, from any gateway of a cluster, beside the cache.
   */
  storedInstance(orgId: string, pluginId: string): Promise<PluginInstanceRow | undefined>
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

  const view = (entry: ValidCatalogEntry, row: PluginRow): PluginView =>
    withRow(
      {
        id: entry.id,
        dir: entry.dir,
        entryPath: entry.entryPath,
        sdkVersion: entry.sdkVersion,
        envAllowList: entry.envAllowList,
        manifest: entry.manifest,
        checksum: entry.checksum,
        scanError: null,
      },
      row,
    )

  /**
   * The plugin's row after a catalog sync. Stored metadata that no longer passes the contract schema
   * (edited by hand, or by another version) is not used: the row goes stale, so the next start fetches.
   */
  async function storedRow(entry: ValidCatalogEntry): Promise<PluginRow> {
    const row = await deps.plugins.syncFromCatalog(entry)
    if (hasUsableMetadata(row)) return row
    deps.log.error({ pluginId: entry.id }, 'stored plugin metadata is invalid; it will be fetched again')
    return (await deps.plugins.markStale(entry.id)) ?? row
  }

  return {
    async load(entries) {
      const changes: CatalogChanges = { added: [], changed: [], removed: [], invalid: [] }
      // The database first (awaits), then every view at once, below. Unchanged plugins are not written.
      const synced = new Map<string, { entry: ValidCatalogEntry; row: PluginRow } | { error: string }>()
      for (const entry of entries) {
        if (!entry.ok) synced.set(entry.id, { error: entry.error })
        else if (!isUnchanged(views.get(entry.id), entry)) {
          try {
            synced.set(entry.id, { entry, row: await storedRow(entry) })
          } catch (err) {
            // One unreadable row (tampered, or written by something else) costs that plugin only.
            synced.set(entry.id, { error: `its stored row cannot be read: ${errorText(err)}` })
          }
        }
      }

      const listed = new Set(entries.map((e) => e.id))
      for (const id of new Set([...views.keys(), ...invalid.keys()])) {
        if (listed.has(id)) continue
        views.delete(id)
        invalid.delete(id)
        changes.removed.push(id)
      }
      // One id twice (in two plugins directories) is invalid on both: listed once.
      for (const { id, dir } of new Map(entries.map((e) => [e.id, e])).values()) {
        const current = views.get(id)
        const outcome = synced.get(id)
        if (outcome === undefined) {
          if (current?.scanError) views.set(id, { ...current, scanError: null }) // valid again, with the code it serves
        } else if ('error' in outcome) {
          changes.invalid.push({ id, error: outcome.error })
          deps.log.warn({ pluginId: id, dir, error: outcome.error, isServingPrevious: current !== undefined }, 'invalid plugin')
          if (current) views.set(id, { ...current, scanError: outcome.error })
          else invalid.set(id, { id, dir, error: outcome.error })
        } else {
          invalid.delete(id)
          views.set(id, view(outcome.entry, outcome.row))
          if (current) changes.changed.push(id)
          else changes.added.push(id)
        }
      }
      // Listed in the scan's order (by id), added plugins included.
      const listedViews = entries.flatMap((e) => views.get(e.id) ?? [])
      views.clear()
      for (const v of listedViews) views.set(v.id, v)
      return changes
    },
    plugin: (id) => views.get(id),
    invalidPlugin: (id) => invalid.get(id),
    plugins: () => [...views.values()],
    invalidPlugins: () => [...invalid.values()],
    updateRow(row) {
      const current = views.get(row.id)
      if (!current) return undefined
      const next = withRow(current, row)
      views.set(row.id, next)
      return next
    },
    async instance(orgId, pluginId) {
      const key = workerKey(orgId, pluginId)
      for (;;) {
        if (instances.has(key)) return instances.get(key)
        const before = changes
        const row = await deps.instances.get(orgId, pluginId)
        if (changes === before) {
          remember(key, row)
          return row
        }
        // A write overtook this read: its row may predate that write (an instance disabled meanwhile
        // would still get a worker). Read what the write left instead.
      }
    },
    storedInstance: (orgId, pluginId) => deps.instances.get(orgId, pluginId),
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

/** Same code in the same place: nothing to write, and its workers go on. The checksum covers package.json. */
const isUnchanged = (current: PluginView | undefined, entry: ValidCatalogEntry) =>
  current !== undefined && current.checksum === entry.checksum && current.dir === entry.dir

const hasUsableMetadata = (row: PluginRow) => row.metadata === null || Metadata.safeParse(row.metadata).success

/** A view of row; metadata that fails the contract schema is treated as none (never compiled, never routed by). */
function withRow(base: Omit<PluginView, 'row' | 'routes'>, row: PluginRow): PluginView {
  const usable = hasUsableMetadata(row) ? row : { ...row, metadata: null }
  return { ...base, row: usable, routes: usable.metadata ? compileRoutes(usable.metadata.routes) : null }
}
