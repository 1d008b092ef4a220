// The only door into metadata/: fetch with retry/timeout, validation, the cache state machine, and
// the policy of what is known about a plugin's routes and when a worker is asked.
export { fetchMetadata } from './fetch-metadata.js'
export type { FetchMetadataOptions, FetchMetadataResult, MetadataFailureReason, MetadataFetchConfig } from './fetch-metadata.js'
export { createMetadataPolicy } from './policy.js'
export type { MetadataPolicy, MetadataPolicyDeps } from './policy.js'
export { createMetadataService } from './service.js'
export type { MetadataService, MetadataServiceDeps } from './service.js'
