import type { HayPluginBlock, Metadata, SdkVersion } from '../contract/index.js'

export interface ValidCatalogEntry {
  ok: true
  /** The directory name, validated against the contract id pattern. */
  id: string
  /** Absolute plugin directory. */
  dir: string
  /** package.json `name`. */
  name: string
  version: string
  manifest: HayPluginBlock
  sdkVersion: SdkVersion
  /** Absolute, inside dir, an existing file. */
  entryPath: string
  /** sha256 (hex) over package.json and the entry's directory. */
  checksum: string
  /** Host variables the worker may see (CONTRACT.md §2). */
  envAllowList: string[]
  /** v1 only: metadata built from the manifest (CONTRACT.md §1). */
  legacyMetadata?: Metadata
}

export interface InvalidCatalogEntry {
  ok: false
  /** The raw directory name: NOT validated, so never build a path or key from it. */
  id: string
  dir: string
  error: string
}

export type CatalogEntry = ValidCatalogEntry | InvalidCatalogEntry
