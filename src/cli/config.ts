import { z } from 'zod'

// The CLI's only reader of the environment (the gateway's is src/config.ts; `start` hands over to it).

export const DEFAULT_GATEWAY_URL = 'http://127.0.0.1:8787'

const Url = z
  .string()
  .trim()
  .refine((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), 'must be an http(s) URL, e.g. http://127.0.0.1:8787')
  .transform((s) => s.replace(/\/+$/, ''))

export interface CliConfig {
  /** Gateway base URL, no trailing slash. */
  url: string
  token: string | undefined
}

export class CliConfigError extends Error {
  override readonly name = 'CliConfigError'
}

/** Flags win over the environment (`GATEWAY_URL`, `ADMIN_TOKEN`), which wins over the default. */
export function cliConfig(
  flags: { url?: string | undefined; token?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): CliConfig {
  const url = Url.safeParse(flags.url ?? env.GATEWAY_URL ?? DEFAULT_GATEWAY_URL)
  if (!url.success) throw new CliConfigError(`${flags.url ? '--url' : 'GATEWAY_URL'} ${url.error.issues[0]?.message ?? 'is invalid'}`)
  const token = flags.token ?? env.ADMIN_TOKEN
  return { url: url.data, token: token === '' ? undefined : token }
}
