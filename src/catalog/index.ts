// The only door into catalog/: plugin discovery, manifest parsing, SDK v1/v2 detection, checksums.
export { scanPlugins } from './scan.js'
export { checksumPlugin, MAX_CHECKSUM_FILES } from './checksum.js'
export type { CatalogEntry, InvalidCatalogEntry, ValidCatalogEntry } from './types.js'
