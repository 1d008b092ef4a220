import { z } from 'zod'
import { AuthMethod, ConfigSchema, RouteDecl } from './metadata.js'

export const PLUGIN_CATEGORIES = ['integration', 'channel', 'tool', 'analytics'] as const
export const PLUGIN_CAPABILITIES = ['routes', 'mcp', 'auth', 'config', 'ui'] as const
/**
 * What a sandboxed worker may do beyond reading its code and writing its temp dir, each only when
 * its manifest asks (README: Sandbox). Not in `capabilities`: Hay's runner refuses values it does
 * not know there. `child-process` is what a local MCP server over stdio needs.
 */
export const WORKER_PERMISSIONS = ['child-process', 'worker-threads', 'native-addons', 'wasi'] as const
export type WorkerPermission = (typeof WORKER_PERMISSIONS)[number]

// CONTRACT.md §1: the `hay-plugin` block of a plugin's package.json. Legacy v1 manifests embed
// configSchema/auth (and maybe routes); SDK v2 manifests carry only `entry` and descriptive fields.
export const HayPluginBlock = z.looseObject({
  entry: z.string().min(1).optional(),
  displayName: z.string().optional(),
  category: z.enum(PLUGIN_CATEGORIES).optional(),
  capabilities: z.array(z.enum(PLUGIN_CAPABILITIES)).optional(),
  env: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')).default([]),
  permissions: z.array(z.enum(WORKER_PERMISSIONS)).default([]),
  configSchema: ConfigSchema.optional(),
  auth: z.union([z.array(AuthMethod), AuthMethod]).optional(),
  routes: z.array(RouteDecl).optional(),
})
export type HayPluginBlock = z.infer<typeof HayPluginBlock>

export const PackageManifest = z.looseObject({
  name: z.string().min(1),
  version: z.string().default('0.0.0'),
  'hay-plugin': HayPluginBlock,
})
export type PackageManifest = z.infer<typeof PackageManifest>

export type SdkVersion = 'v1' | 'v2'
export const SDK_VERSIONS = ['v1', 'v2'] as const
