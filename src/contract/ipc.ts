import * as z from 'zod/mini'

// CONTRACT.md §2: every message the gateway and our runner exchange over the worker's IPC channel.
// zod/mini, not zod: the runner bundle includes these schemas. Bundled, the full zod is ~750 KB and
// took ~60 ms to load; zod/mini is ~45 KB and still ~4 ms of CPU to evaluate (BENCHMARKS.md), so
// the runner evaluates them only in prewarmed mode, while it waits for the gateway anyway.

/** Runner → gateway, once it listens (push readiness). */
export const ReadyMessage = z.object({ type: z.literal('ready'), port: z.int().check(z.positive(), z.lte(65_535)) })
export type ReadyMessage = z.infer<typeof ReadyMessage>

/** Runner → gateway: a runner started with `--prewarm` has booted and waits for a specialize message. */
export const PrewarmedMessage = z.object({ type: z.literal('prewarmed') })
export type PrewarmedMessage = z.infer<typeof PrewarmedMessage>

/**
 * Gateway → prewarmed runner: become the worker a fresh spawn with this argv would have been, with
 * these variables added to the environment and this working directory.
 */
export const SpecializeMessage = z.object({
  type: z.literal('specialize'),
  argv: z.array(z.string()),
  env: z.record(z.string(), z.string()),
  cwd: z.string().check(z.minLength(1)),
})
export type SpecializeMessage = z.infer<typeof SpecializeMessage>
