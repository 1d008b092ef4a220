import type { Clock, Logger } from '../core/index.js'
import { GatewayError } from '../core/index.js'
import type { PluginRow } from '../db/index.js'
import type { PluginView, Registry, RouteMatcher } from '../registry/index.js'
import { compileRoutes } from '../registry/index.js'
import type { Worker } from '../workers/index.js'
import { fetchMetadata, type MetadataFetchConfig } from './fetch-metadata.js'
import type { MetadataService } from './service.js'

export interface MetadataPolicyDeps {
  registry: Registry
  /** Fetches into the database, one flight per plugin. */
  store: MetadataService
  /** How a worker of code the catalog has moved on from is asked (its answer is kept with it, not stored). */
  fetch: MetadataFetchConfig
  clock: Clock
  log: Logger
  /** A plugin without usable metadata asks a running worker again at most this often; its 503s say Retry-After that long. */
  retryMs: number
  /** Metadata arrived with a configSchema other than the one known: what is stored follows it (gateway/stored-secrets.ts). */
  onNewConfigSchema?: (pluginId: string) => Promise<unknown>
}

/**
 * What the gateway knows about a plugin's routes, and when it asks a worker for them: the one owner
 * of the metadata state (CONTRACT.md §6). Every fetch goes through the asked worker's own dispatcher.
 */
export interface MetadataPolicy {
  /**
   * The routes a request is checked against before any worker is started for it: the declared ones
   * when fresh, or the last good ones after a failed fetch. null when nothing is known yet (never
   * fetched, or stale after a manual refresh): the request is checked once a worker runs (ensureRoutes).
   */
  routesBeforeStart(view: PluginView): RouteMatcher | null
  /**
   * The routes once a worker of the plugin runs (its start fetched what it could). Still none: the
   * request is refused 503 METADATA_UNAVAILABLE, and the running worker is asked again, off the request
   * path, at most once per retryMs; otherwise a busy plugin would answer 503 until it restarted (its
   * own traffic keeps it from idling out).
   */
  ensureRoutes(worker: Worker): RouteMatcher
  /**
   * Pool hook: a new worker of a plugin whose metadata is not fresh is asked before it serves. After a
   * failed fetch the last good metadata still routes, so that retry runs in the background instead of
   * adding its attempts and timeouts to a cold start.
   */
  afterReady(worker: Worker, signal?: AbortSignal): Promise<void>
  /** Manual refresh: stale from now on; `running` (a worker of the plugin its caller holds) is asked at once. */
  refresh(pluginId: string, running?: Worker): Promise<void>
}

export function createMetadataPolicy(deps: MetadataPolicyDeps): MetadataPolicy {
  const { registry, store, clock, log } = deps
  // Plugin id → when one of its workers was last asked.
  const lastAsked = new Map<string, number>()
  // Workers started for code a rescan has since replaced (or removed): the requests that waited for
  // them are checked against the routes they declare themselves, which are not the plugin's any more.
  const ownRoutes = new WeakMap<Worker, RouteMatcher>()

  /**
   * Asks worker for its plugin's metadata and applies the answer. Stored only for the code the worker
   * runs: one started before a rescan changed the plugin answers for the old code.
   */
  async function ask(worker: Worker, view: PluginView, signal?: AbortSignal): Promise<void> {
    lastAsked.set(view.id, clock.now())
    const row = await store.ensureFresh(view.id, worker.dispatcher, worker.checksum, signal)
    registry.updateRow(row)
    await arrived(view, row)
  }

  /** What follows from metadata that arrived: stored config follows a new configSchema (a failure leaves it to the next start-up). */
  async function arrived(before: PluginView, row: PluginRow): Promise<void> {
    const schema = row.metadata?.configSchema
    if (!schema || !deps.onNewConfigSchema || JSON.stringify(schema) === JSON.stringify(before.row.metadata?.configSchema ?? null)) return
    await deps
      .onNewConfigSchema(row.id)
      .catch((err: unknown) => log.warn({ err, pluginId: row.id }, 'stored config could not follow the new schema'))
  }

  const inBackground = (asked: Promise<void>, pluginId: string, what: string) =>
    asked.catch((err: unknown) => log.warn({ err, pluginId }, what))

  return {
    routesBeforeStart(view) {
      const state = view.row.metadataState
      return state === 'fresh' || state === 'error' ? view.routes : null
    },

    ensureRoutes(worker) {
      const own = ownRoutes.get(worker)
      if (own) return own
      const view = registry.plugin(worker.pluginId)
      if (view?.routes) return view.routes
      const last = lastAsked.get(worker.pluginId)
      if (view?.sdkVersion === 'v2' && (last === undefined || clock.now() - last >= deps.retryMs)) {
        void inBackground(ask(worker, view), view.id, 'metadata retry failed')
      }
      throw new GatewayError('METADATA_UNAVAILABLE', 503, `metadata of ${worker.pluginId} is unavailable`, {
        retryAfterSeconds: Math.ceil(deps.retryMs / 1000),
      })
    },

    async afterReady(worker, signal) {
      const view = registry.plugin(worker.pluginId)
      if (worker.sdkVersion === 'v2' && worker.checksum !== view?.checksum) {
        const answer = await fetchMetadata({ dispatcher: worker.dispatcher, clock, ...deps.fetch, log, ...(signal && { signal }) })
        if (answer.ok) ownRoutes.set(worker, compileRoutes(answer.metadata.routes))
        return
      }
      if (view?.sdkVersion !== 'v2' || view.row.metadataState === 'fresh') return
      const asked = ask(worker, view, signal)
      if (view.row.metadataState === 'error' && view.row.metadata) {
        void inBackground(asked, view.id, 'background metadata refresh failed')
        return
      }
      await asked
    },

    async refresh(pluginId, running) {
      const stale = await store.markStale(pluginId)
      const view = stale && registry.updateRow(stale)
      if (view && running) await ask(running, view)
    },
  }
}
