export * as Database from "./Database.ts"
export * from "./EmbeddedPostgres.ts"
export * from "./Migrations.ts"
export * from "./AppendEvents.ts"
