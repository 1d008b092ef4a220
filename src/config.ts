import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseShell } from 'shell-quote'
import { z } from 'zod'
import { peerHeaderBytes } from './cluster/index.js'
import { HOP_HEADER_BYTES } from './contract/index.js'
import { MAX_TIMER_MS } from './core/index.js'

// The only module that reads the environment. Everything else receives a slice of Config.

const packageRoot = findPackageRoot(dirname(fileURLToPath(import.meta.url)))
const defaultRunner = join(packageRoot, 'sdk', 'dist', 'runner.cjs')
const watchdogPath = join(packageRoot, 'runtime', 'watchdog.cjs')

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max)
const KEY_FORMAT = 'must be 32 bytes given as 64 hex characters or base64 (e.g. `openssl rand -hex 32`)'
// Millisecond settings end up in timers, which hold at most MAX_TIMER_MS (~24.8 days).
const ms = (min: number) => int(min, MAX_TIMER_MS)
const msList = z
  .string()
  .regex(/^\d+(,\d+)*$/, 'must be a comma-separated list of milliseconds')
  .transform((s) => s.split(',').map(Number))
  .refine((list) => list.every((n) => n <= MAX_TIMER_MS), `each value must be at most ${MAX_TIMER_MS}`)

/** CONTRACT.md §6: how a worker's GET /metadata is fetched unless METADATA_* say otherwise. */
export const METADATA_FETCH_DEFAULTS = {
  attempts: 3,
  /** Pause after failed attempt n (the last entry repeats); none follows the final attempt. */
  backoffMs: [1_000, 2_000, 3_000],
  timeoutMs: 5_000,
} as const

/** The variables a worker may inherit from the host (CONTRACT.md §2), besides its allow-list. */
export const WORKER_BASE_ENV = ['PATH', 'NODE_ENV', 'HOME', 'TMPDIR'] as const

/** The contract's minimal worker environment: the WORKER_BASE_ENV variables env has. */
export function workerBaseEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const base: Record<string, string> = {}
  for (const name of WORKER_BASE_ENV) {
    const value = env[name]
    if (value !== undefined) base[name] = value
  }
  return base
}

const Env = z
  .object({
    PORT: int(0, 65535).default(8787),
    HOST: z.string().min(1).default('127.0.0.1'),
    DATABASE_URL: z
      .string()
      .regex(/^(file:|libsql:|https?:|wss?:)/, 'must be a file:, libsql://, http(s):// or ws(s):// URL')
      .default('file:./data/gateway.db'),
    DATABASE_AUTH_TOKEN: z.string().min(1).optional(),
    PLUGINS_DIR: z
      .string()
      .min(1)
      .default(join(packageRoot, 'examples', 'plugins')),
    // Rescan the plugin directories when files in them change, once they have been quiet for WATCH_DEBOUNCE_MS.
    WATCH_PLUGINS: z.stringbool().default(false),
    WATCH_DEBOUNCE_MS: ms(0).default(1_000),
    RUNNER_COMMAND: z.string().min(1).optional(),
    ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    SECRET_KEY: z
      .string()
      .optional()
      .transform((s, ctx) => {
        if (s === undefined) return undefined
        const hex = secretKeyHex(s)
        if (hex === null) ctx.addIssue({ code: 'custom', message: KEY_FORMAT })
        return hex ?? undefined
      }),
    // Key rotation: older keys that still open what they sealed; start-up seals those values again under SECRET_KEY.
    SECRET_KEY_PREVIOUS: z
      .string()
      .optional()
      .transform((s, ctx) => {
        const keys = (s ?? '')
          .split(',')
          .map((k) => k.trim())
          .filter(Boolean)
        return keys.map((k, i) => {
          const hex = secretKeyHex(k)
          if (hex === null) ctx.addIssue({ code: 'custom', message: `key ${i + 1}: ${KEY_FORMAT}; separate several keys with commas` })
          return hex ?? ''
        })
      }),
    IDLE_TIMEOUT_MS: ms(1).default(300_000),
    START_TIMEOUT_MS: ms(1).default(10_000),
    STOP_TIMEOUT_MS: ms(1).default(5_000),
    DISABLE_TIMEOUT_MS: ms(1).default(1_000),
    UPSTREAM_TIMEOUT_MS: ms(1).default(30_000),
    // Once a response's headers (or a 101) are through, the longest a stream or tunnel may stay silent; 0: no bound.
    STREAM_IDLE_TIMEOUT_MS: ms(0).default(300_000),
    DRAIN_TIMEOUT_MS: ms(0).default(30_000),
    PORT_RANGE: z
      .string()
      .regex(/^\d{1,5}-\d{1,5}$/, 'must look like 5000-65535')
      .default('5000-65535')
      .transform((s) => s.split('-').map(Number) as [number, number])
      .refine(([min, max]) => min >= 1024 && max <= 65535 && min <= max, 'must be an ascending range within 1024-65535'),
    MAX_WORKERS: int(1).default(100),
    MAX_WORKERS_PER_ORG: int(1).optional(),
    MAX_PENDING_PER_KEY: int(1).default(2_000),
    MAX_PENDING_PER_ORG: int(1).default(5_000),
    // Our runner buffers at most 5 MiB of a body: the gateway refuses more itself, before reading it.
    MAX_BODY_BYTES: int(0).default(5 * 1024 * 1024),
    MAX_HEADER_BYTES: int(1024).default(16 * 1024),
    RESTART_BACKOFF_MS: ms(0).default(1_000),
    RESTART_BACKOFF_MAX_MS: ms(0).default(30_000),
    ACTIVITY_FLUSH_MS: ms(1).default(5_000),
    METADATA_ATTEMPTS: int(1, 10).default(METADATA_FETCH_DEFAULTS.attempts),
    METADATA_BACKOFF_MS: msList.default([...METADATA_FETCH_DEFAULTS.backoffMs]),
    METADATA_TIMEOUT_MS: ms(1).default(METADATA_FETCH_DEFAULTS.timeoutMs),
    // How often a plugin without usable metadata is asked for it again; its 503s say Retry-After that long.
    METADATA_RETRY_MS: ms(1).default(5_000),
    // Admin control calls (/config-update, /validate-auth, /mcp/*) and calls between gateways wait at most this long.
    CONTROL_TIMEOUT_MS: ms(1).default(10_000),
    WORKER_MAX_OLD_SPACE_MB: int(16).optional(),
    WORKER_SANDBOX: z.enum(['on', 'off']).default('on'),
    WORKER_UID: z
      .string()
      .regex(/^\d+(-\d+)?$/, 'must be a uid or a range of uids like 100000-100999')
      .transform((s) => {
        const [min, max = min] = s.split('-').map(Number) as [number, number?]
        return { min, max }
      })
      .refine(({ min, max }) => min >= 1 && min <= max && max < 2 ** 32 - 1, 'must be an ascending range of uids above 0')
      .optional(),
    WORKER_GID: int(1, 2 ** 32 - 2).optional(),
    WORKER_CPU_SECONDS: int(1).optional(),
    PREWARM_POOL_SIZE: int(0, 64).default(1),
    GATEWAY_ID: z
      .string()
      .regex(/^[\w.-]{1,64}$/, 'must be 1-64 letters, digits, dots, dashes or underscores')
      .optional(),
    INTERNAL_URL: z.url({ protocol: /^https?$/ }).optional(),
    TRUST_FORWARDED: z.stringbool().default(false),
    // The public path on Node without building a Hono context (same rules); false: through the Hono app.
    PUBLIC_FAST_PATH: z.stringbool().default(true),
    CLUSTER_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
    LEASE_TTL_MS: ms(500).default(10_000),
    HEARTBEAT_MS: ms(100).default(2_000),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .refine((e) => e.SECRET_KEY !== undefined || e.SECRET_KEY_PREVIOUS.length === 0, {
    path: ['SECRET_KEY_PREVIOUS'],
    message: 'needs SECRET_KEY: previous keys only open old values, the current key seals',
  })

export type Env = z.input<typeof Env>

// Workers of a root gateway run in group nogroup unless WORKER_GID says otherwise.
const NOGROUP = 65_534
// And each with a uid of its own (one shared uid would let any worker signal every other) from the
// first 65536 uids above systemd's container range (524288-1879048191): unused in systemd's table of
// uid ranges (systemd.io/UIDS-GIDS), far above regular users and above the subordinate uids useradd
// hands out (/etc/subuid, 100000 up to login.defs' SUB_UID_MAX 600100000), below 2^31 for tools that
// keep uids in a signed int. Gateways of one host share it: each uid is claimed (worker-users.ts).
const DEFAULT_WORKER_UIDS = { min: 0x7000_0000, max: 0x7000_ffff }

// CONTRACT.md §2: no admin token, database URL or key reaches a worker, even when a manifest's
// env allow-list names one; they are left out of the host env that allow-lists draw from.
const GATEWAY_SECRET_ENV = new Set([
  'ADMIN_TOKEN',
  'SECRET_KEY',
  'SECRET_KEY_PREVIOUS',
  'CLUSTER_SECRET',
  'DATABASE_URL',
  'DATABASE_AUTH_TOKEN',
])

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly code = 'CONFIG_INVALID'
}

/** `uid`: the gateway's own; workers get users of their own only when it is root (0). */
export function loadConfig(env: NodeJS.ProcessEnv, cwd = process.cwd(), uid = process.getuid?.() ?? -1) {
  const parsed = Env.superRefine((e, ctx) => {
    for (const name of ['WORKER_UID', 'WORKER_GID'] as const) {
      if (e[name] === undefined) continue
      if (e.WORKER_SANDBOX === 'off') ctx.addIssue({ code: 'custom', path: [name], message: 'has no effect with WORKER_SANDBOX=off' })
      else if (uid !== 0)
        ctx.addIssue({ code: 'custom', path: [name], message: `needs the gateway to run as root (it runs as uid ${uid})` })
    }
    const uids = e.WORKER_UID ?? (uid === 0 ? DEFAULT_WORKER_UIDS : undefined)
    // Live workers and prewarmed runners: one being stopped keeps its uid a while, and a start that needs it waits for it (pool.ts).
    if (uids && uids.max > uids.min && uids.max - uids.min + 1 < e.MAX_WORKERS + e.PREWARM_POOL_SIZE) {
      ctx.addIssue({
        code: 'custom',
        path: ['WORKER_UID'],
        message: 'a range needs one uid per worker: at least MAX_WORKERS + PREWARM_POOL_SIZE',
      })
    }
  }).safeParse(env)
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`)
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`)
  }
  const e = parsed.data
  const isSandboxed = e.WORKER_SANDBOX === 'on'
  const runnerCommand = e.RUNNER_COMMAND ? parseCommand(e.RUNNER_COMMAND) : [process.execPath, defaultRunner]
  const hostEnv = Object.fromEntries(
    Object.entries(env).filter((kv): kv is [string, string] => kv[1] !== undefined && !GATEWAY_SECRET_ENV.has(kv[0])),
  )
  const secretKey = e.SECRET_KEY
  const previousKeys = e.SECRET_KEY_PREVIOUS
  const baseEnv = workerBaseEnv(hostEnv)
  // README: MAX_HEADER_BYTES. In a cluster a request may come through a peer, which added its headers;
  // a worker gets what this gateway accepted and what it adds in turn.
  const serverHeaderBytes = e.MAX_HEADER_BYTES + (e.CLUSTER_SECRET ? HOP_HEADER_BYTES + peerHeaderBytes(e.CLUSTER_SECRET) : 0)

  return deepFreeze({
    /** Where this gateway is installed: its processes run scripts from here (orphan checks). */
    installDir: packageRoot,
    server: { host: e.HOST, port: e.PORT, maxHeaderBytes: serverHeaderBytes, publicFastPath: e.PUBLIC_FAST_PATH },
    database: { url: resolveFileUrl(e.DATABASE_URL, cwd), authToken: e.DATABASE_AUTH_TOKEN },
    pluginDirs: e.PLUGINS_DIR.split(':')
      .filter(Boolean)
      .map((dir) => resolve(cwd, dir)),
    /** WATCH_PLUGINS: file changes under the plugin directories start a rescan, debounced. */
    watchPlugins: e.WATCH_PLUGINS ? { debounceMs: e.WATCH_DEBOUNCE_MS } : undefined,
    adminToken: e.ADMIN_TOKEN,
    secrets: {
      /** The AES-256 key as 64 hex chars, or undefined. A function, so a logged config never shows it. */
      key: secretKey === undefined ? undefined : () => secretKey,
      /** Older keys (hex) that still open what they sealed, while a rotation completes. */
      previousKeys: () => previousKeys,
    },
    logLevel: e.LOG_LEVEL,
    pool: {
      runnerCommand,
      /**
       * Our runner pushes readiness over IPC, leaves with its parent and can be prewarmed; any other
       * runner is probed on /health and gets the watchdog preloaded.
       */
      ownRunner: !e.RUNNER_COMMAND,
      /** Preloaded into node workers so they exit with the gateway even if the runner ignores it. */
      watchdogPath,
      baseEnv,
      hostEnv,
      portRange: { min: e.PORT_RANGE[0], max: e.PORT_RANGE[1] },
      idleMs: e.IDLE_TIMEOUT_MS,
      startTimeoutMs: e.START_TIMEOUT_MS,
      stopTimeoutMs: e.STOP_TIMEOUT_MS,
      disableTimeoutMs: e.DISABLE_TIMEOUT_MS,
      maxWorkers: e.MAX_WORKERS,
      maxWorkersPerOrg: e.MAX_WORKERS_PER_ORG ?? e.MAX_WORKERS,
      maxPendingPerKey: e.MAX_PENDING_PER_KEY,
      maxPendingPerOrg: e.MAX_PENDING_PER_ORG,
      restartBackoffMs: e.RESTART_BACKOFF_MS,
      restartBackoffMaxMs: e.RESTART_BACKOFF_MAX_MS,
      maxOldSpaceMb: e.WORKER_MAX_OLD_SPACE_MB,
      /** The request header limit of node workers' HTTP servers: all the gateway may send them. */
      maxHeaderBytes: serverHeaderBytes + HOP_HEADER_BYTES,
      sandbox: {
        enabled: isSandboxed,
        /** A root gateway never runs plugins as root: a uid of their own each, or WORKER_UID / WORKER_GID. */
        users: isSandboxed && uid === 0 ? { uids: e.WORKER_UID ?? DEFAULT_WORKER_UIDS, gid: e.WORKER_GID ?? NOGROUP } : undefined,
        cpuSeconds: e.WORKER_CPU_SECONDS,
        /** Where prlimit (WORKER_CPU_SECONDS) is looked for. */
        path: hostEnv.PATH ?? '',
      },
      /** Runners kept booted for the next cold starts (our runner only; 0 turns it off). */
      prewarmPoolSize: e.PREWARM_POOL_SIZE,
      drainTimeoutMs: e.DRAIN_TIMEOUT_MS,
    },
    /** Keep x-forwarded-proto/host from the client: only behind a proxy you run (the edge entry). */
    trustForwarded: e.TRUST_FORWARDED,
    proxy: {
      upstreamTimeoutMs: e.UPSTREAM_TIMEOUT_MS,
      // A peer owner's answer may wait for its cold start first, as a request sent to it does: the
      // start, the worst metadata fetch (every attempt timing out, the pauses between), then the plugin.
      peerTimeoutMs:
        e.START_TIMEOUT_MS +
        e.METADATA_ATTEMPTS * e.METADATA_TIMEOUT_MS +
        pausesBetween(e.METADATA_ATTEMPTS, e.METADATA_BACKOFF_MS) +
        e.UPSTREAM_TIMEOUT_MS,
      streamIdleTimeoutMs: e.STREAM_IDLE_TIMEOUT_MS,
      maxBodyBytes: e.MAX_BODY_BYTES,
    },
    activityFlushMs: e.ACTIVITY_FLUSH_MS,
    /** Several gateways on one database coordinate only when CLUSTER_SECRET is set. */
    cluster: e.CLUSTER_SECRET
      ? {
          secret: e.CLUSTER_SECRET,
          gatewayId: e.GATEWAY_ID ?? `gw-${randomUUID().slice(0, 8)}`,
          /** Defaults to the address the gateway listens on, known once it listens. */
          internalUrl: e.INTERNAL_URL?.replace(/\/$/, ''),
          leaseTtlMs: e.LEASE_TTL_MS,
          heartbeatMs: e.HEARTBEAT_MS,
          /** A gateway silent for this long is dead: its leases may be taken and its rows reset. */
          gatewayTtlMs: Math.max(e.LEASE_TTL_MS, 3 * e.HEARTBEAT_MS),
        }
      : undefined,
    metadata: {
      fetch: { attempts: e.METADATA_ATTEMPTS, backoffMs: e.METADATA_BACKOFF_MS, timeoutMs: e.METADATA_TIMEOUT_MS },
      retryMs: e.METADATA_RETRY_MS,
    },
    controlTimeoutMs: e.CONTROL_TIMEOUT_MS,
  })
}

export type Config = ReturnType<typeof loadConfig>
export type PoolConfig = Config['pool']

function parseCommand(command: string): string[] {
  const parts = parseShell(command)
  if (parts.length === 0 || !parts.every((p): p is string => typeof p === 'string')) {
    throw new ConfigError('invalid configuration:\n  RUNNER_COMMAND: must be a plain command line (no pipes, redirects or globs)')
  }
  return parts
}

/** SECRET_KEY as 64 lowercase hex chars: given as hex, or as base64 / base64url of exactly 32 bytes. */
function secretKeyHex(value: string): string | null {
  const s = value.trim()
  if (/^[0-9a-fA-F]{64}$/.test(s)) return s.toLowerCase()
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(s)) return null
  const bytes = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
  return bytes.length === 32 ? bytes.toString('hex') : null
}

/** The pauses a metadata fetch makes between its attempts (the last listed pause repeats). */
const pausesBetween = (attempts: number, backoffMs: readonly number[]): number =>
  Array.from({ length: attempts - 1 }, (_, i) => backoffMs[Math.min(i, backoffMs.length - 1)] ?? 0).reduce((a, b) => a + b, 0)

// A relative file: URL is taken relative to the working directory, like any CLI path.
function resolveFileUrl(url: string, cwd: string): string {
  if (!url.startsWith('file:')) return url
  const path = url.slice('file:'.length)
  return isAbsolute(path) ? url : `file:${resolve(cwd, path)}`
}

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) return from
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
