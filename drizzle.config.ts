import { defineConfig } from 'drizzle-kit'

// Only `drizzle-kit generate` is used (npm run db:generate): it reads the schema and writes SQL
// migrations to ./drizzle, which openDatabase() applies at start-up. `turso` is drizzle-kit's
// dialect for libSQL; dbCredentials are only read by push/studio, so they name the embedded
// default database and never come from the environment.
export default defineConfig({
  dialect: 'turso',
  schema: './src/db/schema.ts',
  out: './drizzle',
  dbCredentials: { url: 'file:./data/gateway.db' },
})
