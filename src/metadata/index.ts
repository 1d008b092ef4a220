// The only door into metadata/: fetch with retry/timeout, validation, and the cache state machine.
export { fetchMetadata, METADATA_FETCH_DEFAULTS } from './fetch-metadata.js'
export type { FetchMetadataOptions, FetchMetadataResult, MetadataFailureReason } from './fetch-metadata.js'
export { createMetadataService } from './service.js'
export type { MetadataFetchConfig, MetadataService, MetadataServiceDeps } from './service.js'
