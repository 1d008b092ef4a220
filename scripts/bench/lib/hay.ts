// Hay's own runner for the bench rows that use it: HAY_RUNNER names its entry
// (<hay-core>/packages/plugin-sdk/dist/runner/index.js), its plugins live in <hay-core>/plugins/core.
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'

export interface HayPlugin {
  runner: string
  pluginsDir: string
  pluginId: string
  /** A route the plugin declares (HAY_PLUGIN_ROUTE); Hay's core plugins declare none. */
  route: string | undefined
}

/** The runner and plugin to use, or why the rows are skipped. */
export function hayPlugin(): HayPlugin | { skipped: string } {
  const runner = process.env.HAY_RUNNER
  if (!runner) return { skipped: 'HAY_RUNNER is not set' }
  const pluginsDir = process.env.HAY_PLUGINS_DIR ?? join(dirname(runner), '..', '..', '..', '..', 'plugins', 'core')
  const pluginId = process.env.HAY_PLUGIN_ID ?? 'email'
  if (!existsSync(join(pluginsDir, pluginId, 'package.json'))) {
    return { skipped: `no plugin ${pluginId} in ${pluginsDir} (set HAY_PLUGINS_DIR / HAY_PLUGIN_ID)` }
  }
  return { runner, pluginsDir, pluginId, route: process.env.HAY_PLUGIN_ROUTE }
}
