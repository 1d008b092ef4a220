// CONTRACT.md §2: what a worker is told through its environment, and how much of it a process can take.

/** HAY_ORG_CONFIG: the org and its plaintext config. */
export const orgConfigJson = (orgId: string, config: unknown): string => JSON.stringify({ org: { id: orgId }, config })

// Linux refuses to start a process one of whose environment strings (`NAME=value`) is over 32 pages
// (MAX_ARG_STRLEN: 128 KiB, its NUL included): spawn() throws E2BIG.
const MAX_ENV_STRING_BYTES = 128 * 1024 - 1

/** Whether a worker can be started with variable name set to value. */
export const fitsWorkerEnv = (name: string, value: string): boolean =>
  Buffer.byteLength(name) + 1 + Buffer.byteLength(value) <= MAX_ENV_STRING_BYTES
