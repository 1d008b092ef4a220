import type { Dispatcher } from 'undici'
import type { Clock, Logger } from '../core/index.js'
import { errorText, GatewayError } from '../core/index.js'
import type { PluginRow, PluginsRepo } from '../db/index.js'
import { fetchMetadata, type MetadataFetchConfig } from './fetch-metadata.js'

export interface MetadataServiceDeps {
  plugins: PluginsRepo
  clock: Clock
  log: Logger
  fetch: MetadataFetchConfig
}

export interface MetadataService {
  /**
   * Makes a v2 plugin's metadata fresh from a ready worker, over its dispatcher. Does nothing when the
   * state is already fresh or the plugin is legacy v1 (its manifest is the metadata). A failed
   * or invalid fetch marks the plugin `error` and keeps the last good metadata, so the worker
   * keeps serving (CONTRACT.md §6): only an unknown plugin id (PLUGIN_NOT_FOUND) or a database
   * failure rejects. Concurrent calls for one plugin and code share a single fetch (the first
   * caller's worker is asked: metadata is plugin-global, any ready worker of that code can answer).
   * `codeChecksum` is the checksum of the code that worker runs: the answer is stored only while
   * the shared row still describes that code (during a rolling deploy another gateway may run other code).
   */
  ensureFresh(pluginId: string, worker: Dispatcher, codeChecksum: string, signal?: AbortSignal): Promise<PluginRow>
  /** Manual refresh: the next ensureFresh fetches again. A no-op for v1; undefined if unknown. */
  markStale(pluginId: string): Promise<PluginRow | undefined>
}

export function createMetadataService(deps: MetadataServiceDeps): MetadataService {
  const { plugins, clock, log } = deps
  const inflight = new Map<string, Promise<PluginRow>>()

  async function refresh(pluginId: string, worker: Dispatcher, codeChecksum: string, signal?: AbortSignal): Promise<PluginRow> {
    const row = await plugins.get(pluginId)
    if (!row) throw new GatewayError('PLUGIN_NOT_FOUND', 404, `plugin ${pluginId} is not registered`)
    if (row.sdkVersion === 'v1' || row.metadataState === 'fresh') return row

    const result = await fetchMetadata({ dispatcher: worker, clock, ...deps.fetch, log, ...(signal && { signal }) })
    if (result.ok) {
      const { metadata } = result
      let saved: PluginRow | undefined
      try {
        saved = await plugins.saveMetadata(pluginId, metadata, { expectedChecksum: codeChecksum })
      } catch (err) {
        // Valid but not storable: an error state like any failed fetch, never a failed start.
        log.warn({ pluginId, err }, 'plugin metadata could not be stored; keeping the last good metadata')
        return (await plugins.markMetadataError(pluginId, `cannot store metadata: ${errorText(err)}`)) ?? row
      }
      log.info(
        {
          pluginId,
          attempts: result.attempts,
          configFields: Object.keys(metadata.configSchema).length,
          authMethods: metadata.authMethods.length,
          routes: metadata.routes.length,
          uiExtensions: metadata.uiExtensions.length,
        },
        'plugin metadata stored',
      )
      // undefined: the row describes other code (a rescan meanwhile, or a gateway running another
      // version); what it holds stays current.
      return saved ?? (await plugins.get(pluginId)) ?? row
    }

    // Called off (the worker died while it was asked): that says nothing about the plugin's metadata.
    if (result.reason === 'aborted') return row
    log.warn(
      { pluginId, reason: result.reason, attempts: result.attempts, error: result.error, hasMetadata: row.metadata !== null },
      'plugin metadata fetch failed; keeping the last good metadata',
    )
    return (await plugins.markMetadataError(pluginId, result.error)) ?? row
  }

  return {
    ensureFresh(pluginId, worker, codeChecksum, signal) {
      // Per code version: a worker of new code never waits on a fetch from old code, which is not stored.
      const key = `${pluginId}\0${codeChecksum}`
      const pending = inflight.get(key)
      if (pending) return pending
      // Entered in the map before the first await, so a concurrent caller always finds it.
      const flight: Promise<PluginRow> = refresh(pluginId, worker, codeChecksum, signal).finally(() => {
        if (inflight.get(key) === flight) inflight.delete(key)
      })
      inflight.set(key, flight)
      return flight
    },

    async markStale(pluginId) {
      const row = await plugins.get(pluginId)
      if (!row) return undefined
      if (row.sdkVersion === 'v1') return row // a rescan re-reads the manifest instead
      return plugins.markStale(pluginId)
    },
  }
}
