// The only door into catalog/: plugin discovery, manifest parsing, SDK v1/v2 detection, checksums,
// and watching the plugin directories for changes.
export { scanPlugins } from './scan.js'
export { checksumPlugin, MAX_CHECKSUM_FILES } from './checksum.js'
export { MAX_WATCHED_DIRS, watchPlugins } from './watch.js'
export type { PluginWatcher, WatchPluginsDeps } from './watch.js'
export type { CatalogEntry, InvalidCatalogEntry, ValidCatalogEntry } from './types.js'
