// The only door into db/: other folders get repositories and row types, never drizzle itself.
export { findMigrationsFolder, localFilePath, openDatabase } from './open.js'
export type { DatabaseHandle, OpenDatabaseOptions } from './open.js'
export { isBusyError, withBusyRetry } from './busy.js'
export type { BusyRetryOptions } from './busy.js'
export { createPluginsRepo } from './plugins-repo.js'
export type { CatalogPlugin, PluginsRepo, SaveMetadataOptions } from './plugins-repo.js'
export { createInstancesRepo } from './instances-repo.js'
export type {
  ActivityEntry,
  InstancePatch,
  InstancesRepo,
  ResetOrphanedOptions,
  RuntimePatch,
  StoredSecrets,
} from './instances-repo.js'
export { createCatalogRepo } from './catalog-repo.js'
export type { CatalogGenerations, CatalogRepo } from './catalog-repo.js'
export { createClusterRepo } from './cluster-repo.js'
export type { ClusterRepo, LeaseRef } from './cluster-repo.js'
export { METADATA_STATES, RUNTIME_STATES } from './schema.js'
export type {
  AuthState,
  GatewayRow,
  InstanceConfig,
  MetadataState,
  PluginInstanceRow,
  PluginRow,
  RuntimeState,
  WorkerLeaseRow,
} from './schema.js'
export type { Database } from './types.js'
