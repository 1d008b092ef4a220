import { integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core'
import type { HayPluginBlock, Metadata, SdkVersion } from '../contract/index.js'
import { SDK_VERSIONS } from '../contract/index.js'

export const METADATA_STATES = ['missing', 'fresh', 'stale', 'error'] as const
export type MetadataState = (typeof METADATA_STATES)[number]

export const RUNTIME_STATES = ['stopped', 'starting', 'ready', 'stopping', 'error'] as const
export type RuntimeState = (typeof RUNTIME_STATES)[number]

/** Per-org plugin config; values of fields marked `encrypted` are stored sealed (see db/secrets). */
export type InstanceConfig = Record<string, unknown>
export interface AuthState {
  methodId: string
  credentials: Record<string, unknown>
}

// Plugin-global: one row per plugin id, shared by every org and every gateway instance.
export const plugins = sqliteTable('plugins', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  version: text('version').notNull(),
  path: text('path').notNull(),
  manifest: text('manifest', { mode: 'json' }).$type<HayPluginBlock>().notNull(),
  sdkVersion: text('sdk_version', { enum: SDK_VERSIONS }).$type<SdkVersion>().notNull(),
  checksum: text('checksum').notNull(),
  metadata: text('metadata', { mode: 'json' }).$type<Metadata>(),
  metadataState: text('metadata_state', { enum: METADATA_STATES }).notNull().default('missing'),
  metadataFetchedAt: integer('metadata_fetched_at', { mode: 'timestamp_ms' }),
  metadataError: text('metadata_error'),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
})
export type PluginRow = typeof plugins.$inferSelect

// Org-scoped: one row per (org, plugin); runtime columns describe the live worker, if any.
export const pluginInstances = sqliteTable(
  'plugin_instances',
  {
    orgId: text('org_id').notNull(),
    pluginId: text('plugin_id').notNull(),
    enabled: integer('enabled', { mode: 'boolean' }).notNull().default(false),
    config: text('config', { mode: 'json' }).$type<InstanceConfig>().notNull().default({}),
    authState: text('auth_state', { mode: 'json' }).$type<AuthState>(),
    runtimeState: text('runtime_state', { enum: RUNTIME_STATES }).notNull().default('stopped'),
    sdkVersion: text('sdk_version', { enum: SDK_VERSIONS }).$type<SdkVersion>(),
    lastError: text('last_error'),
    lastStartedAt: integer('last_started_at', { mode: 'timestamp_ms' }),
    lastActivityAt: integer('last_activity_at', { mode: 'timestamp_ms' }),
    ownerGatewayId: text('owner_gateway_id'),
    port: integer('port'),
    pid: integer('pid'),
    restarts: integer('restarts').notNull().default(0),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.pluginId] })],
)
export type PluginInstanceRow = typeof pluginInstances.$inferSelect

// Multi-instance: every gateway sharing the database registers here and heartbeats.
export const gateways = sqliteTable('gateways', {
  id: text('id').primaryKey(),
  /** Internal base URL other gateways forward to (INTERNAL_URL). */
  address: text('address').notNull(),
  startedAt: integer('started_at', { mode: 'timestamp_ms' }).notNull(),
  heartbeatAt: integer('heartbeat_at', { mode: 'timestamp_ms' }).notNull(),
})
export type GatewayRow = typeof gateways.$inferSelect

// One owner per (org, plugin) across the cluster. `generation` is the fencing token: it grows on
// every change of owner, so a stale owner's writes and forwarded requests can be told apart.
export const workerLeases = sqliteTable(
  'worker_leases',
  {
    orgId: text('org_id').notNull(),
    pluginId: text('plugin_id').notNull(),
    ownerGatewayId: text('owner_gateway_id').notNull(),
    generation: integer('generation').notNull(),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.pluginId] })],
)
export type WorkerLeaseRow = typeof workerLeases.$inferSelect

// Catalog changes every gateway on the database follows: scope '*' counts rescans of the plugin
// directories, a plugin id counts restarts of that plugin's workers. A gateway that sees a count grow
// rescans its own directories, or rolls its own workers of that plugin.
export const catalogGenerations = sqliteTable('catalog_generations', {
  scope: text('scope').primaryKey(),
  generation: integer('generation').notNull(),
})
