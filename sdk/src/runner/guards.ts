// Reading values of unknown shape: plugin hooks, request bodies, the org environment.

export const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err))

export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
