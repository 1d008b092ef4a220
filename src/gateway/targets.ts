import { GatewayError } from '../core/index.js'
import type { PluginInstanceRow } from '../db/index.js'
import type { PluginView, Registry } from '../registry/index.js'

/** A plugin and one org's instance of it: what a request or an admin call is about. */
export interface Target {
  view: PluginView
  instance: PluginInstanceRow
}

export interface Targets {
  /** The plugin, or 404 PLUGIN_NOT_FOUND / PLUGIN_INVALID. */
  plugin(pluginId: string): PluginView
  /** The plugin and the org's instance; 404 INSTANCE_NOT_FOUND, or INSTANCE_DISABLED when one is required enabled. */
  target(orgId: string, pluginId: string, opts: { requireEnabled: boolean }): Promise<Target>
}

export function createTargets(registry: Registry): Targets {
  function plugin(pluginId: string): PluginView {
    const view = registry.plugin(pluginId)
    if (view) return view
    const invalid = registry.invalidPlugin(pluginId)
    if (invalid) throw new GatewayError('PLUGIN_INVALID', 404, `plugin ${pluginId} is invalid: ${invalid.error}`)
    throw new GatewayError('PLUGIN_NOT_FOUND', 404, `no plugin ${pluginId}`)
  }

  return {
    plugin,
    async target(orgId, pluginId, opts) {
      plugin(pluginId) // an unknown plugin is refused before any database read
      const instance = await registry.instance(orgId, pluginId)
      if (!instance) throw new GatewayError('INSTANCE_NOT_FOUND', 404, `plugin ${pluginId} is not installed for org ${orgId}`)
      if (opts.requireEnabled && !instance.enabled) {
        throw new GatewayError('INSTANCE_DISABLED', 404, `plugin ${pluginId} is disabled for org ${orgId}`)
      }
      // Read again after the wait: a rescan may have changed or removed the plugin meanwhile, and a
      // worker started from the view read before would run (and be labelled with) the old catalog.
      return { view: plugin(pluginId), instance }
    },
  }
}
