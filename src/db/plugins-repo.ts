import { and, asc, eq, sql } from 'drizzle-orm'
import type { HayPluginBlock, Metadata, SdkVersion } from '../contract/index.js'
import type { Clock } from '../core/index.js'
import { GatewayError } from '../core/index.js'
import { withBusyRetry } from './busy.js'
import { plugins } from './schema.js'
import type { MetadataState, PluginRow } from './schema.js'
import type { Database } from './types.js'

/**
 * What the repository needs from a valid catalog entry (catalog's `ValidCatalogEntry` is
 * assignable to it). Declared here so db never imports from catalog (routes → catalog → db).
 */
export interface CatalogPlugin {
  id: string
  name: string
  version: string
  /** Absolute plugin directory. */
  dir: string
  manifest: HayPluginBlock
  sdkVersion: SdkVersion
  checksum: string
  /** Required for v1: the metadata derived from the manifest. */
  legacyMetadata?: Metadata
}

export interface SaveMetadataOptions {
  /**
   * Store only if the row still has this checksum. A fetch that raced a rescan (new code on
   * disk) must not mark the old code's metadata fresh; undefined is then returned.
   */
  expectedChecksum?: string
}

export interface PluginsRepo {
  /** Inserts or updates the row for a valid catalog plugin; see CONTRACT.md §1 and §6. */
  syncFromCatalog(entry: CatalogPlugin): Promise<PluginRow>
  get(id: string): Promise<PluginRow | undefined>
  list(): Promise<PluginRow[]>
  /** fresh, metadataFetchedAt = now, metadataError cleared. */
  saveMetadata(id: string, metadata: Metadata, opts?: SaveMetadataOptions): Promise<PluginRow | undefined>
  /** error with the text; the last good metadata is kept (graceful degradation, §6). */
  markMetadataError(id: string, error: string): Promise<PluginRow | undefined>
  /** stale (or missing when there is no metadata yet): the next ensureFresh fetches again. */
  markStale(id: string): Promise<PluginRow | undefined>
}

// Concurrent syncs from several gateways: each update is conditional on the checksum it read.
const SYNC_ATTEMPTS = 3

export function createPluginsRepo(db: Database, clock: Clock): PluginsRepo {
  const write = <T>(fn: () => Promise<T>) => withBusyRetry(fn, { clock })
  const now = () => new Date(clock.now())

  const get = async (id: string): Promise<PluginRow | undefined> => db.select().from(plugins).where(eq(plugins.id, id)).get()

  async function syncOnce(entry: CatalogPlugin): Promise<PluginRow | undefined> {
    const at = now()
    const legacy = entry.sdkVersion === 'v1' ? legacyMetadataOf(entry) : undefined
    const fields = {
      name: entry.name,
      version: entry.version,
      path: entry.dir,
      manifest: entry.manifest,
      sdkVersion: entry.sdkVersion,
      checksum: entry.checksum,
    }
    const existing = await get(entry.id)

    if (existing === undefined) {
      const initial = legacy
        ? { metadata: legacy, metadataState: 'fresh' as const, metadataFetchedAt: at }
        : { metadata: null, metadataState: 'missing' as const, metadataFetchedAt: null }
      const [row] = await db
        .insert(plugins)
        .values({ id: entry.id, ...fields, ...initial, createdAt: at, updatedAt: at })
        .onConflictDoNothing()
        .returning()
      return row // undefined: another gateway inserted it first; the caller re-reads
    }

    const isChanged = existing.checksum !== entry.checksum
    let metadataPatch: Partial<Pick<PluginRow, 'metadata' | 'metadataState' | 'metadataFetchedAt' | 'metadataError'>> = {}
    if (legacy && (isChanged || existing.metadataState !== 'fresh')) {
      // v1: the manifest is the metadata, so it is fresh as soon as it is read.
      metadataPatch = { metadata: legacy, metadataState: 'fresh', metadataFetchedAt: at, metadataError: null }
    } else if (!legacy && isChanged) {
      // v2: new code may declare other routes; keep serving the last good metadata until refetched.
      const state: MetadataState = existing.metadata ? 'stale' : 'missing'
      metadataPatch = { metadataState: state, metadataError: null }
    }

    const isSame =
      Object.keys(metadataPatch).length === 0 &&
      existing.name === fields.name &&
      existing.version === fields.version &&
      existing.path === fields.path &&
      existing.sdkVersion === fields.sdkVersion &&
      JSON.stringify(existing.manifest) === JSON.stringify(fields.manifest)
    if (isSame && !isChanged) return existing

    const [row] = await db
      .update(plugins)
      .set({ ...fields, ...metadataPatch, updatedAt: at })
      .where(and(eq(plugins.id, entry.id), eq(plugins.checksum, existing.checksum)))
      .returning()
    return row // undefined: the checksum moved under us; the caller re-reads
  }

  return {
    get,

    list: () => db.select().from(plugins).orderBy(asc(plugins.id)).all(),

    syncFromCatalog: (entry) =>
      write(async () => {
        for (let attempt = 0; attempt < SYNC_ATTEMPTS; attempt++) {
          const row = await syncOnce(entry)
          if (row) return row
        }
        throw new GatewayError('INTERNAL', 500, `plugin ${entry.id} kept changing while it was synced`)
      }),

    saveMetadata: (id, metadata, opts) =>
      write(async () => {
        const at = now()
        const match =
          opts?.expectedChecksum === undefined ? eq(plugins.id, id) : and(eq(plugins.id, id), eq(plugins.checksum, opts.expectedChecksum))
        const [row] = await db
          .update(plugins)
          .set({ metadata, metadataState: 'fresh', metadataFetchedAt: at, metadataError: null, updatedAt: at })
          .where(match)
          .returning()
        return row
      }),

    markMetadataError: (id, error) =>
      write(async () => {
        const [row] = await db
          .update(plugins)
          .set({ metadataState: 'error', metadataError: error, updatedAt: now() })
          .where(eq(plugins.id, id))
          .returning()
        return row
      }),

    markStale: (id) =>
      write(async () => {
        const [row] = await db
          .update(plugins)
          .set({
            // One statement, so a concurrent saveMetadata cannot slip between a read and this write.
            metadataState: sql<MetadataState>`case when ${plugins.metadata} is null then 'missing' else 'stale' end`,
            metadataError: null,
            updatedAt: now(),
          })
          .where(eq(plugins.id, id))
          .returning()
        return row
      }),
  }
}

function legacyMetadataOf(entry: CatalogPlugin): Metadata {
  if (!entry.legacyMetadata) {
    throw new GatewayError('PLUGIN_INVALID', 500, `legacy v1 plugin ${entry.id} has no manifest-derived metadata`)
  }
  return entry.legacyMetadata
}
