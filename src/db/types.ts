import type { LibSQLDatabase } from 'drizzle-orm/libsql'
import type * as schema from './schema.js'

/** The drizzle handle; only the repositories in this folder use it. */
export type Database = LibSQLDatabase<typeof schema>
