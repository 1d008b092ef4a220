export { ID_PATTERN, OrgId, PluginId, isValidId } from './ids.js'
export {
  AuthMethod,
  CONFIG_FIELD_TYPES,
  ConfigField,
  ConfigSchema,
  createRouteRouter,
  HTTP_METHODS,
  Metadata,
  RouteDecl,
} from './metadata.js'
export type { HttpMethod } from './metadata.js'
export { HayPluginBlock, PackageManifest, PLUGIN_CAPABILITIES, PLUGIN_CATEGORIES, SDK_VERSIONS } from './manifest.js'
export type { SdkVersion } from './manifest.js'
export { ReadyMessage } from './ipc.js'
export { connectionTokens, HOP_BY_HOP_HEADERS } from './hop-by-hop.js'
