import { z } from 'zod'

// CONTRACT.md §1: plugin ids are directory names matching this pattern. Org ids use the same
// alphabet so neither can ever smuggle a path separator, a dot-segment or a NUL into a key.
export const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/

export const PluginId = z.string().regex(ID_PATTERN, 'must match [a-z0-9][a-z0-9_-]{0,63}')
export const OrgId = z.string().regex(ID_PATTERN, 'must match [a-z0-9][a-z0-9_-]{0,63}')

export const isValidId = (value: string): boolean => ID_PATTERN.test(value)
