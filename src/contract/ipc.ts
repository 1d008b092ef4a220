import { z } from 'zod'

// CONTRACT.md §2: a runner spawned with an IPC channel pushes this once it listens.
export const ReadyMessage = z.object({ type: z.literal('ready'), port: z.number().int().positive() })
export type ReadyMessage = z.infer<typeof ReadyMessage>
